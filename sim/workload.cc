#include "sim/workload.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {




constexpr size_t kOwnedObjectsMax = 32;  // tasks and VMs a client keeps track of

}  // namespace

absl::StatusOr<WorkloadKind> ParseWorkloadKind(absl::string_view name) {
  if (name == "kv") return WorkloadKind::kKv;
  if (name == "cluster") return WorkloadKind::kCluster;
  if (name == "mixed") return WorkloadKind::kMixed;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown workload '", name, "' (kv, cluster, mixed)"));
}

absl::string_view WorkloadKindName(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kKv:
      return "kv";
    case WorkloadKind::kCluster:
      return "cluster";
    case WorkloadKind::kMixed:
      return "mixed";
  }
  return "?";
}

class Workload::Client {
 public:
  Client(Workload* workload, uint64_t client_id, Rng rng)
      : w_(workload), client_id_(client_id), rng_(std::move(rng)) {}

  void Start() {
    const std::vector<NodeId> nodes = w_->cluster_->Nodes();
    target_ = nodes[rng_.Uniform(nodes.size())];
    ScheduleNext();
  }

  bool busy() const { return op_.has_value(); }

  void Abandon() {
    if (!op_) return;
    Finish(op_->is_write ? "unknown" : "fail", "");
  }

  std::string Describe() const {
    if (!op_) return "";
    return absl::StrCat("client ", client_id_, " op ", op_->op_id, " ", op_->name,
                        " invoked at ", op_->invoke_us, " us, ", op_->attempt,
                        " attempts, last to n", target_.value());
  }

 private:
  struct Op {
    uint64_t op_id = 0;
    std::string name;
    api::ClientRequest request;
    bool is_write = false;
    std::optional<KvOperation> kv;  // set for KV operations
    SimMicros invoke_us = 0;
    SimMicros deadline_us = 0;
    bool maybe_applied = false;
    uint64_t attempt = 0;
    EventId timeout;
  };

  World& world() { return *w_->world_; }
  const WorkloadOptions& options() const { return w_->options_; }

  void ScheduleNext() {
    if (w_->stopped_) return;
    const int64_t think = static_cast<int64_t>(
        rng_.Uniform(static_cast<uint64_t>(options().think_us_max) + 1));
    world().ScheduleAfter(think, kNoNode, [this] { Issue(); });
  }

  std::string Key() {
    return absl::StrCat("k", rng_.Uniform(static_cast<uint64_t>(options().keys)));
  }

  cluster::Command* NewWrite(Op& op) {
    op.is_write = true;
    cluster::Command* command = op.request.mutable_command();
    command->mutable_request_id()->set_client_id(client_id_);
    command->mutable_request_id()->set_sequence(++sequence_);
    return command;
  }

  void MakeKvOp(Op& op) {
    const std::string key = Key();
    KvOperation kv;
    kv.client = client_id_;
    kv.key = key;
    const uint64_t roll = rng_.Uniform(100);
    auto seen = seen_.find(key);
    if (roll < 40) {
      op.name = "put";
      kv.kind = KvOperation::Kind::kPut;
      kv.value = absl::StrCat("c", client_id_, "-", sequence_ + 1);
      cluster::KvPut* put = NewWrite(op)->mutable_kv_put();
      put->set_key(key);
      put->set_value(kv.value);
    } else if (roll < 50) {
      op.name = "delete";
      kv.kind = KvOperation::Kind::kDelete;
      NewWrite(op)->mutable_kv_delete()->set_key(key);
    } else if (roll < 65 && seen != seen_.end()) {
      op.name = "cas";
      kv.kind = KvOperation::Kind::kCas;
      kv.value = absl::StrCat("c", client_id_, "-", sequence_ + 1);
      kv.expected = seen->second.first;
      cluster::KvCompareAndSwap* cas = NewWrite(op)->mutable_kv_compare_and_swap();
      cas->set_key(key);
      cas->set_expected_version(seen->second.second);
      cas->set_value(kv.value);
    } else {
      op.name = "get";
      kv.kind = KvOperation::Kind::kGet;
      op.request.mutable_query()->set_kv_get(key);
    }
    op.kv = std::move(kv);
  }

  void MakeClusterOp(Op& op) {
    const uint64_t roll = rng_.Uniform(100);
    const std::vector<NodeId> nodes = w_->cluster_->Nodes();
    if (roll < 35 || (roll < 40 && tasks_.empty())) {
      op.name = "submit_task";
      const std::string id = absl::StrCat("t", client_id_, "-", sequence_ + 1);
      cluster::SubmitTask* submit = NewWrite(op)->mutable_submit_task();
      submit->set_task_id(id);
      cluster::TaskSpec* spec = submit->mutable_spec();
      spec->set_command("work");
      spec->add_args(absl::StrCat(rng_.Range(1, 20)));
      spec->mutable_resources()->set_cpu_cores(rng_.Range(1, 4));
      spec->mutable_resources()->set_memory_mb(rng_.Range(1, 16) * 256);
      spec->mutable_resources()->set_disk_gb(rng_.Range(1, 20));
      if (rng_.Chance(1, 5)) spec->mutable_resources()->add_required_features("ssd");
      spec->set_timeout_secs(rng_.Range(5, 30));
      spec->set_max_attempts(static_cast<uint32_t>(rng_.Range(1, 3)));
      spec->set_priority(static_cast<uint32_t>(rng_.Uniform(10)));
      Remember(tasks_, id);
    } else if (roll < 40) {
      op.name = "cancel_task";
      NewWrite(op)->mutable_cancel_task()->set_task_id(Pick(tasks_));
    } else if (roll < 55 || (roll < 75 && vms_.empty())) {
      op.name = "create_vm";
      const std::string name = absl::StrCat("vm", client_id_, "-", sequence_ + 1);
      cluster::CreateVm* create = NewWrite(op)->mutable_create_vm();
      create->set_name(name);
      create->mutable_spec()->set_vcpus(rng_.Range(1, 4));
      create->mutable_spec()->set_memory_mb(rng_.Range(1, 8) * 512);
      create->mutable_spec()->set_disk_gb(rng_.Range(5, 40));
      create->mutable_spec()->set_image("debian-12");
      Remember(vms_, name);
    } else if (roll < 65) {
      op.name = "start_vm";
      NewWrite(op)->mutable_start_vm()->set_name(Pick(vms_));
    } else if (roll < 72) {
      op.name = "stop_vm";
      NewWrite(op)->mutable_stop_vm()->set_name(Pick(vms_));
    } else if (roll < 75) {
      op.name = "delete_vm";
      const std::string name = Pick(vms_);
      NewWrite(op)->mutable_delete_vm()->set_name(name);
      Forget(vms_, name);
    } else if (roll < 80) {
      op.name = "migrate_vm";
      NewWrite(op)->mutable_migrate_vm()->set_name(Pick(vms_));
    } else if (roll < 85) {
      op.name = "set_worker_status";
      cluster::SetWorkerStatus* set = NewWrite(op)->mutable_set_worker_status();
      set->set_node_id(nodes[rng_.Uniform(nodes.size())].value());
      set->set_status(rng_.Chance(1, 2) ? cluster::WORKER_DRAINING
                                        : cluster::WORKER_ONLINE);
    } else {
      op.name = "summary";
      op.request.mutable_query()->mutable_summary();
    }
  }

  std::string Pick(const std::vector<std::string>& ids) {
    if (ids.empty()) return "none";
    return ids[rng_.Uniform(ids.size())];
  }
  static void Remember(std::vector<std::string>& ids, const std::string& id) {
    if (ids.size() >= kOwnedObjectsMax) ids.erase(ids.begin());
    ids.push_back(id);
  }
  static void Forget(std::vector<std::string>& ids, const std::string& id) {
    for (auto it = ids.begin(); it != ids.end(); ++it) {
      if (*it == id) {
        ids.erase(it);
        return;
      }
    }
  }

  void Issue() {
    if (w_->stopped_ || op_) return;
    Op op;
    op.op_id = ++op_count_;
    op.invoke_us = world().now_us();
    op.deadline_us = op.invoke_us + options().op_deadline_us;
    const WorkloadKind kind = options().kind;
    const bool kv = kind == WorkloadKind::kKv ||
                    (kind == WorkloadKind::kMixed && rng_.Chance(1, 2));
    if (kv) {
      MakeKvOp(op);
    } else {
      MakeClusterOp(op);
    }
    // Writes may be forwarded by a follower; reads are redirected.
    op.request.set_allow_forward(op.is_write && rng_.Chance(1, 2));
    std::vector<std::pair<std::string, std::string>> fields;
    if (op.kv) {
      fields.emplace_back("key", op.kv->key);
      if (op.kv->kind == KvOperation::Kind::kPut || op.kv->kind == KvOperation::Kind::kCas) {
        fields.emplace_back("value", op.kv->value);
      }
      if (op.kv->kind == KvOperation::Kind::kCas) {
        fields.emplace_back("expected", op.kv->expected.value_or(""));
      }
      op.kv->id = op.op_id;
      op.kv->invoke_us = op.invoke_us;
    }
    ++w_->counts_.invoked;
    w_->listener_->OnInvoke(client_id_, op.op_id, op.name, fields);
    op_ = std::move(op);
    Send();
  }

  void Send() {
    Op& op = *op_;
    // Replies and timeouts are matched on (op id, attempt): attempts count
    // from 1 in every operation, so a late reply to the previous operation's
    // first attempt would otherwise answer this one's (found by swarm seed
    // 163: a get's reply completed the next operation, a CAS, as ok).
    const uint64_t op_id = op.op_id;
    const uint64_t attempt = ++op.attempt;
    ++w_->counts_.attempts;
    const NodeId target = target_;
    const int64_t there = Latency();
    const int64_t back = Latency();
    api::ClientRequest request = op.request;
    world().ScheduleAfter(there, target, [this, target, op_id, attempt, back,
                                          request = std::move(request)]() mutable {
      host::Host* host = w_->cluster_->HostFor(target);
      if (host == nullptr) return;  // the node is down: the request is lost
      host->Submit(std::move(request),
                   [this, op_id, attempt, back](const api::ClientResponse& r) {
                     world().ScheduleAfter(back, kNoNode, [this, op_id, attempt, r] {
                       OnReply(op_id, attempt, r);
                     });
                   });
    });
    op.timeout = world().ScheduleAfter(options().request_timeout_us, kNoNode,
                                       [this, op_id, attempt] { OnTimeout(op_id, attempt); });
  }

  int64_t Latency() {
    return static_cast<int64_t>(rng_.Range(static_cast<uint64_t>(options().latency_us_min),
                                           static_cast<uint64_t>(options().latency_us_max)));
  }

  void NextTarget() {
    const std::vector<NodeId> nodes = w_->cluster_->Nodes();
    target_ = nodes[rng_.Uniform(nodes.size())];
  }

  // Whether (op_id, attempt) is the operation in flight's current attempt.
  bool Current(uint64_t op_id, uint64_t attempt) const {
    return op_.has_value() && op_->op_id == op_id && op_->attempt == attempt;
  }

  void OnReply(uint64_t op_id, uint64_t attempt, const api::ClientResponse& response) {
    if (!Current(op_id, attempt)) return;  // a stale attempt's answer
    Op& op = *op_;
    world().Cancel(op.timeout);
    switch (response.status()) {
      case api::ClientResponse::STATUS_OK:
        Succeed(response);
        return;
      case api::ClientResponse::STATUS_NOT_LEADER:
        ++w_->counts_.redirects;
        if (response.leader_hint() != 0) {
          target_ = NodeId(response.leader_hint());
        } else {
          NextTarget();
        }
        Retry();
        return;
      case api::ClientResponse::STATUS_UNKNOWN:
        if (op.is_write) op.maybe_applied = true;
        Retry();
        return;
      case api::ClientResponse::STATUS_REJECTED:
      default:
        Finish(op.maybe_applied ? "unknown" : "fail", "");
        return;
    }
  }

  void OnTimeout(uint64_t op_id, uint64_t attempt) {
    if (!Current(op_id, attempt)) return;
    ++w_->counts_.timeouts;
    if (op_->is_write) op_->maybe_applied = true;
    NextTarget();
    Retry();
  }

  void Retry() {
    Op& op = *op_;
    if (world().now_us() >= op.deadline_us) {
      Finish(op.maybe_applied ? "unknown" : "fail", "");
      return;
    }
    const uint64_t op_id = op.op_id;
    const uint64_t attempt = op.attempt;
    world().ScheduleAfter(options().retry_backoff_us, kNoNode, [this, op_id, attempt] {
      if (Current(op_id, attempt)) Send();
    });
  }

  void Succeed(const api::ClientResponse& response) {
    Op& op = *op_;
    if (op.request.has_query()) {
      const cluster::QueryResult& result = response.query_result();
      if (op.kv) {
        if (result.code() == cluster::RESULT_OK && result.has_kv()) {
          op.kv->read = result.kv().value();
          seen_[op.kv->key] = {result.kv().value(), result.kv().mod_index()};
        } else if (result.code() == cluster::RESULT_NOT_FOUND) {
          op.kv->read = std::nullopt;
          seen_[op.kv->key] = {std::nullopt, 0};
        } else {
          Finish("fail", "");
          return;
        }
        Finish("ok", op.kv->read.value_or(""));
        return;
      }
      Finish(result.code() == cluster::RESULT_OK ? "ok" : "fail", "");
      return;
    }
    const cluster::ResultCode code = response.result().code();
    if (op.kv && op.kv->kind == KvOperation::Kind::kDelete &&
        code == cluster::RESULT_NOT_FOUND) {
      Finish("ok", "");  // deleting an absent key leaves it absent
      return;
    }
    Finish(code == cluster::RESULT_OK ? "ok" : "fail", "");
  }

  void Finish(absl::string_view status, absl::string_view value) {
    Op op = std::move(*op_);
    op_.reset();
    world().Cancel(op.timeout);
    if (status == "ok") {
      ++w_->counts_.ok;
    } else if (status == "fail") {
      ++w_->counts_.failed;
    } else {
      ++w_->counts_.unknown;
    }
    if (op.kv) {
      KvOperation kv = std::move(*op.kv);
      kv.outcome = status == "ok"     ? KvOperation::Outcome::kOk
                   : status == "fail" ? KvOperation::Outcome::kFail
                                      : KvOperation::Outcome::kUnknown;
      kv.complete_us = kv.outcome == KvOperation::Outcome::kUnknown
                           ? KvOperation::kNeverCompleted
                           : world().now_us();
      // A CAS answered with a mismatch is a definite, observed failure; any
      // other failed write took no effect and says nothing about the state.
      w_->history_.push_back(std::move(kv));
    }
    w_->listener_->OnComplete(client_id_, op.op_id, status, value);
    ScheduleNext();
  }

  Workload* w_;
  uint64_t client_id_;
  Rng rng_;
  NodeId target_;
  uint64_t sequence_ = 0;
  uint64_t op_count_ = 0;
  std::optional<Op> op_;
  // Last value and version read per key, for compare-and-swap.
  std::map<std::string, std::pair<std::optional<std::string>, uint64_t>> seen_;
  std::vector<std::string> tasks_;
  std::vector<std::string> vms_;
};

Workload::Workload(World* world, ClusterAccess* cluster, WorkloadListener* listener,
                   WorkloadOptions options)
    : world_(world), cluster_(cluster), listener_(listener), options_(options) {
  CHECK_GT(options_.clients, 0);
  CHECK_GT(options_.keys, 0);
  CHECK_LE(options_.latency_us_min, options_.latency_us_max);
  Rng rng = world_->Stream("workload");
  for (int i = 0; i < options_.clients; ++i) {
    const uint64_t id = options_.client_id_base + static_cast<uint64_t>(i);
    clients_.push_back(std::make_unique<Client>(this, id, rng.Fork(id)));
  }
}

Workload::~Workload() = default;

void Workload::Start() {
  for (auto& client : clients_) client->Start();
}

void Workload::Stop() { stopped_ = true; }

void Workload::Abandon() {
  CHECK(stopped_);
  for (auto& client : clients_) client->Abandon();
}

bool Workload::idle() const {
  if (!stopped_) return false;
  for (const auto& client : clients_) {
    if (client->busy()) return false;
  }
  return true;
}

std::vector<std::string> Workload::InFlight() const {
  std::vector<std::string> out;
  for (const auto& client : clients_) {
    if (client->busy()) out.push_back(client->Describe());
  }
  return out;
}

}  // namespace blixard::sim
