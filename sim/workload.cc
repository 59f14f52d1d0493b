#include "sim/workload.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/check.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace blixard::sim {
namespace {

constexpr size_t kOwnedObjectsMax = 32;  // tasks and VMs a client keeps track of

// One line of protobuf text format (no trailing space).
std::string OneLine(const google::protobuf::Message& message) {
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  std::string out;
  printer.PrintToString(message, &out);
  return std::string(absl::StripTrailingAsciiWhitespace(out));
}

std::string KvName(const api::ClientRequest& request) {
  if (request.has_command()) {
    switch (request.command().op_case()) {
      case cluster::Command::kKvPut:
        return "put";
      case cluster::Command::kKvDelete:
        return "delete";
      case cluster::Command::kKvCompareAndSwap:
        return "cas";
      default:
        return "";
    }
  }
  if (request.has_query() && request.query().op_case() == cluster::Query::kKvGet) return "get";
  return "";
}

// The KV history record of a KV request (nullopt for other requests).
std::optional<KvOperation> KvOf(uint64_t client, const api::ClientRequest& request) {
  const std::string name = KvName(request);
  if (name.empty()) return std::nullopt;
  KvOperation kv;
  kv.client = client;
  if (name == "put") {
    kv.kind = KvOperation::Kind::kPut;
    kv.key = request.command().kv_put().key();
    kv.value = request.command().kv_put().value();
  } else if (name == "delete") {
    kv.kind = KvOperation::Kind::kDelete;
    kv.key = request.command().kv_delete().key();
  } else if (name == "cas") {
    kv.kind = KvOperation::Kind::kCas;
    kv.key = request.command().kv_compare_and_swap().key();
    kv.value = request.command().kv_compare_and_swap().value();
  } else {
    kv.kind = KvOperation::Kind::kGet;
    kv.key = request.query().kv_get();
  }
  return kv;
}

// Keeps text-format parse errors for our own message (the default collector
// logs them to stderr).
class KeepErrors final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    (void)line;
    if (first_.empty()) first_ = absl::StrCat("column ", column + 1, ": ", message);
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

}  // namespace

std::string ClientOp::Name() const {
  const std::string kv = KvName(request);
  if (!kv.empty()) return kv;
  const google::protobuf::FieldDescriptor* field = nullptr;
  if (request.has_command() && request.command().op_case() != cluster::Command::OP_NOT_SET) {
    field = cluster::Command::descriptor()->FindFieldByNumber(request.command().op_case());
  } else if (request.has_query() && request.query().op_case() != cluster::Query::OP_NOT_SET) {
    field = cluster::Query::descriptor()->FindFieldByNumber(request.query().op_case());
  }
  return field == nullptr ? "?" : field->name();
}

std::string ClientOp::ToText() const {
  std::string out = absl::StrCat(at_us, " ", Name(), " client=", client, " id=", op_id);
  if (request.has_command()) {
    absl::StrAppend(&out, " seq=", request.command().request_id().sequence());
    if (request.allow_forward()) absl::StrAppend(&out, " forward=1");
    cluster::Command args = request.command();
    args.clear_request_id();
    absl::StrAppend(&out, " rng=", rng_draws, " ", OneLine(args));
  } else {
    absl::StrAppend(&out, " rng=", rng_draws, " ", OneLine(request.query()));
  }
  return out;
}

absl::StatusOr<ClientOp> ClientOp::Parse(absl::string_view line) {
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("client op \"", line, "\": ", what));
  };
  line = absl::StripAsciiWhitespace(line);
  std::vector<absl::string_view> tokens = absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (tokens.size() < 4) {
    return error("want \"<at_us> <name> client=<id> id=<n> [seq=<s>] [forward=1] rng=<draws> <args>\"");
  }
  ClientOp op;
  if (!absl::SimpleAtoi(tokens[0], &op.at_us) || op.at_us < 0) return error("bad time");
  const absl::string_view name = tokens[1];
  // key=value tokens up to the first that is not one; the rest is text format.
  size_t i = 2;
  uint64_t seq = 0;
  bool forward = false, have_client = false, have_id = false, have_rng = false, have_seq = false;
  for (; i < tokens.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(tokens[i], absl::MaxSplits('=', 1));
    uint64_t* target = nullptr;
    bool* seen = nullptr;
    if (kv.first == "client") {
      target = &op.client, seen = &have_client;
    } else if (kv.first == "id") {
      target = &op.op_id, seen = &have_id;
    } else if (kv.first == "rng") {
      target = &op.rng_draws, seen = &have_rng;
    } else if (kv.first == "seq") {
      target = &seq, seen = &have_seq;
    } else if (kv.first == "forward") {
      if (kv.second != "0" && kv.second != "1") return error("forward must be 0 or 1");
      forward = kv.second == "1";
      continue;
    } else {
      break;
    }
    if (!absl::SimpleAtoi(kv.second, target)) {
      return error(absl::StrCat("bad ", kv.first, "=\"", kv.second, "\""));
    }
    *seen = true;
  }
  if (!have_client || !have_id || !have_rng) return error("needs client=, id= and rng=");
  if (op.op_id == 0) return error("id starts at 1");
  if (i >= tokens.size()) return error("no arguments after the keys");
  // Rejoin the text-format part exactly as written (from its first token).
  const absl::string_view args = line.substr(static_cast<size_t>(tokens[i].data() - line.data()));
  KeepErrors command_errors, query_errors;
  google::protobuf::TextFormat::Parser command_parser, query_parser;
  command_parser.RecordErrorsTo(&command_errors);
  query_parser.RecordErrorsTo(&query_errors);
  cluster::Command command;
  cluster::Query query;
  if (command_parser.ParseFromString(std::string(args), &command) &&
      command.op_case() != cluster::Command::OP_NOT_SET) {
    if (!have_seq || seq == 0) return error("a write needs seq=<s> (from 1)");
    if (command.has_request_id()) return error("the request id belongs in client= and seq=");
    command.mutable_request_id()->set_client_id(op.client);
    command.mutable_request_id()->set_sequence(seq);
    *op.request.mutable_command() = std::move(command);
    op.request.set_allow_forward(forward);
  } else if (query_parser.ParseFromString(std::string(args), &query) &&
             query.op_case() != cluster::Query::OP_NOT_SET) {
    if (have_seq || forward) return error("a read takes no seq= or forward=");
    *op.request.mutable_query() = std::move(query);
  } else {
    return error(absl::StrCat("arguments \"", args,
                              "\" are neither a cluster.Command (", command_errors.first(),
                              ") nor a cluster.Query (", query_errors.first(),
                              ") in text format"));
  }
  if (op.Name() != name) {
    return error(absl::StrCat("name \"", name, "\" does not match its arguments (", op.Name(), ")"));
  }
  return op;
}

bool operator==(const ClientOp& a, const ClientOp& b) {
  return a.at_us == b.at_us && a.client == b.client && a.op_id == b.op_id &&
         a.rng_draws == b.rng_draws &&
         a.request.SerializeAsString() == b.request.SerializeAsString();
}

absl::Status ValidateClientOps(const std::vector<ClientOp>& ops, uint64_t client_id_base,
                               int clients) {
  SimMicros last = 0;
  std::map<uint64_t, uint64_t> last_id;
  for (size_t i = 0; i < ops.size(); ++i) {
    const ClientOp& op = ops[i];
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("client op ", i, " (", op.ToText(), "): ", what));
    };
    if (op.at_us < last) return error("times must not decrease");
    last = op.at_us;
    if (op.client < client_id_base ||
        op.client >= client_id_base + static_cast<uint64_t>(clients)) {
      return error(absl::StrCat("no such client (clients are ", client_id_base, "..",
                                client_id_base + static_cast<uint64_t>(clients) - 1, ")"));
    }
    if (op.Name() == "?") return error("empty request");
    uint64_t& prev = last_id[op.client];
    if (op.op_id <= prev) return error("a client's operation ids must increase");
    prev = op.op_id;
  }
  return absl::OkStatus();
}

absl::StatusOr<WorkloadKind> ParseWorkloadKind(absl::string_view name) {
  if (name == "kv") return WorkloadKind::kKv;
  if (name == "cluster") return WorkloadKind::kCluster;
  if (name == "mixed") return WorkloadKind::kMixed;
  if (name == "kv_reads") return WorkloadKind::kKvReads;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown workload '", name, "' (kv, cluster, mixed, kv_reads)"));
}

absl::string_view WorkloadKindName(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kKv:
      return "kv";
    case WorkloadKind::kCluster:
      return "cluster";
    case WorkloadKind::kMixed:
      return "mixed";
    case WorkloadKind::kKvReads:
      return "kv_reads";
  }
  return "?";
}

class Workload::Client {
 public:
  // `script`: the operations to issue instead of drawing (null: draw).
  Client(Workload* workload, uint64_t client_id, Rng rng,
         std::optional<std::vector<ClientOp>> script)
      : w_(workload),
        client_id_(client_id),
        rng_(rng),
        initial_rng_(std::move(rng)),
        script_(std::move(script)) {}

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
    // Reads: the highest index known committed or acknowledged when
    // invoked; the answer must come from state at least that far.
    uint64_t read_floor_index = 0;
    uint64_t attempt = 0;
    EventId timeout;
  };

  World& world() { return *w_->world_; }
  const WorkloadOptions& options() const { return w_->options_; }

  void ScheduleNext() {
    if (w_->stopped_) return;
    if (script_.has_value()) {
      // The next given operation at its time, or now if this client is
      // late (an earlier operation took longer than when it was recorded).
      // Scheduled from the same places as a drawn one, so a full replay
      // orders its events exactly as the recorded run did.
      if (next_scripted_ < script_->size()) {
        const SimMicros delay =
            std::max<SimMicros>(0, (*script_)[next_scripted_].at_us - world().now_us());
        world().ScheduleAfter(delay, kNoNode, [this] { Issue(); });
        return;
      }
      // Past the script's end a recorded client still drew a think time and
      // woke once more, to find the run stopped: do the same (Issue finds
      // the script done), so a full replay runs event for event as it did.
    }
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
    const uint64_t drawn = rng_.Uniform(100);
    // Read-heavy: 8% puts, 2% deletes, the rest gets (no CAS).
    const uint64_t roll = options().kind != WorkloadKind::kKvReads ? drawn
                          : drawn < 10                             ? drawn * 5
                                                                   : 99;
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

  // Sets up a given operation as if it had just been drawn: the recorded
  // request, and the client's random stream where it was at the recorded
  // invoke, so the operation's own draws repeat.
  void MakeScriptedOp(Op& op, const ClientOp& given) {
    op.op_id = given.op_id;
    op.name = given.Name();
    op.request = given.request;
    op.is_write = op.request.has_command();
    op.kv = KvOf(client_id_, op.request);
    if (op.kv && op.kv->kind == KvOperation::Kind::kCas) {
      // Bind the expected version from what this client last read, as a
      // drawn compare-and-swap does ("absent", version 0, if nothing).
      auto seen = seen_.find(op.kv->key);
      const bool known = seen != seen_.end();
      op.kv->expected = known ? seen->second.first : std::nullopt;
      op.request.mutable_command()->mutable_kv_compare_and_swap()->set_expected_version(
          known ? seen->second.second : 0);
    }
    if (given.rng_draws < rng_.draws()) rng_ = initial_rng_;
    rng_.Discard(given.rng_draws - rng_.draws());
  }

  void Issue() {
    if (w_->stopped_ || op_) return;
    Op op;
    op.invoke_us = world().now_us();
    op.deadline_us = op.invoke_us + options().op_deadline_us;
    if (script_.has_value()) {
      if (next_scripted_ >= script_->size()) return;
      MakeScriptedOp(op, (*script_)[next_scripted_++]);
    } else {
      op.op_id = ++op_count_;
      const WorkloadKind kind = options().kind;
      const bool kv = kind == WorkloadKind::kKv || kind == WorkloadKind::kKvReads ||
                      (kind == WorkloadKind::kMixed && rng_.Chance(1, 2));
      if (kv) {
        MakeKvOp(op);
      } else {
        MakeClusterOp(op);
      }
      // Writes may be forwarded by a follower; reads are redirected.
      op.request.set_allow_forward(op.is_write && rng_.Chance(1, 2));
    }
    ClientOp record;
    record.at_us = op.invoke_us;
    record.client = client_id_;
    record.op_id = op.op_id;
    record.rng_draws = rng_.draws();
    record.request = op.request;
    if (record.request.command().has_kv_compare_and_swap()) {
      record.request.mutable_command()->mutable_kv_compare_and_swap()->clear_expected_version();
    }
    w_->recorded_.push_back(std::move(record));
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
    if (op.request.has_query()) {
      op.read_floor_index =
          std::max(w_->acked_write_index_max_, w_->cluster_->KnownCommittedIndex());
    }
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
      if (response.index() < op.read_floor_index && !w_->stale_read_.has_value()) {
        w_->stale_read_ = absl::StrCat(
            "client ", client_id_, " op ", op.op_id, " ", op.name, " invoked at ", op.invoke_us,
            " us was answered from state at index ", response.index(),
            ", but index ", op.read_floor_index,
            " was committed (or acknowledged) before it was invoked");
      }
    } else {
      // Acknowledged (whatever its result code): its entry is committed at
      // response.index(), and every later read must reflect it.
      w_->acked_write_index_max_ = std::max(w_->acked_write_index_max_, response.index());
    }
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
  const Rng initial_rng_;  // rng_ as created, to rewind it for a given op
  std::optional<std::vector<ClientOp>> script_;
  size_t next_scripted_ = 0;
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
  if (options_.ops.has_value()) {
    CHECK_OK(ValidateClientOps(*options_.ops, options_.client_id_base, options_.clients));
  }
  Rng rng = world_->Stream("workload");
  for (int i = 0; i < options_.clients; ++i) {
    const uint64_t id = options_.client_id_base + static_cast<uint64_t>(i);
    std::optional<std::vector<ClientOp>> script;
    if (options_.ops.has_value()) {
      script.emplace();
      for (const ClientOp& op : *options_.ops) {
        if (op.client == id) script->push_back(op);
      }
    }
    clients_.push_back(std::make_unique<Client>(this, id, rng.Fork(id), std::move(script)));
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
