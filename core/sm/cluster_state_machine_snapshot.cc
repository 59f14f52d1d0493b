// The read path, snapshots and restore, and the invariant checker of
// ClusterStateMachine (the apply path is in cluster_state_machine.cc).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/sm/cluster_records.h"
#include "core/sm/cluster_state_machine.h"
#include "core/sm/transitions.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "xxhash.h"

namespace blixard {

using sm::Amounts;
using sm::FreeOf;
using sm::Includes;
using sm::IsPlacedState;
using sm::SetResources;
using sm::TaskNeed;
using sm::ToAmounts;
using sm::ToVector;
using sm::ValidateAmounts;
using sm::ValidateFeatures;
using sm::ValidateId;
using sm::ValidateKey;
using sm::ValidateTaskSpec;
using sm::ValidateVmSpec;
using sm::ValidWorkerStatus;
using sm::VmNeed;

// ---------------------------------------------------------------------------
// Queries

const cluster::WorkerRecord* ClusterStateMachine::FindWorker(
    uint64_t node_id) const {
  auto it = workers_.find(node_id);
  return it == workers_.end() ? nullptr : &it->second;
}
const cluster::TaskRecord* ClusterStateMachine::FindTask(
    absl::string_view task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}
const cluster::VmRecord* ClusterStateMachine::FindVm(
    absl::string_view name) const {
  auto it = vms_.find(name);
  return it == vms_.end() ? nullptr : &it->second;
}
const cluster::KvEntry* ClusterStateMachine::FindKv(
    absl::string_view key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

std::vector<const cluster::TaskRecord*> ClusterStateMachine::ActiveTasksOn(
    uint64_t worker_id) const {
  std::vector<const cluster::TaskRecord*> out;
  for (auto [it, end] = OnWorker(tasks_by_worker_, worker_id); it != end; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<const cluster::VmRecord*> ClusterStateMachine::VmsOn(
    uint64_t worker_id) const {
  std::vector<const cluster::VmRecord*> out;
  for (auto [it, end] = OnWorker(vms_by_worker_, worker_id); it != end; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<cluster::TaskRecord> ClusterStateMachine::ListTasks(
    cluster::TaskState state, uint64_t worker_id, size_t limit) const {
  std::vector<cluster::TaskRecord> out;
  if (worker_id != 0) {
    // Only ASSIGNED/RUNNING tasks have a worker: use the per-worker index.
    for (auto [it, end] = OnWorker(tasks_by_worker_, worker_id);
         it != end && out.size() < limit; ++it) {
      const cluster::TaskRecord& t = *it->second;
      if (state == cluster::TASK_STATE_UNSPECIFIED || t.state() == state) {
        out.push_back(t);
      }
    }
    return out;
  }
  for (const auto& [id, t] : tasks_) {
    if (out.size() >= limit) break;
    if (state == cluster::TASK_STATE_UNSPECIFIED || t.state() == state) {
      out.push_back(t);
    }
  }
  return out;
}

cluster::ClusterSummary ClusterStateMachine::Summary() const {
  cluster::ClusterSummary s;
  s.set_applied_index(applied_index_.value());
  s.set_now_ms(now_ms_);
  Amounts cap_total, used_total;
  for (const auto& [id, w] : workers_) {
    cluster::WorkerUsage& u = *s.add_workers();
    u.set_node_id(id);
    u.set_status(w.status());
    *u.mutable_capacity() = w.capacity();
    *u.mutable_reserved() = w.reserved();
    SetResources(*u.mutable_free(), FreeOf(w));
    const auto tasks = OnWorker(tasks_by_worker_, id);
    u.set_tasks(static_cast<uint64_t>(std::distance(tasks.first, tasks.second)));
    const auto vms = OnWorker(vms_by_worker_, id);
    u.set_vms(static_cast<uint64_t>(std::distance(vms.first, vms.second)));
    cap_total.cpu_cores += w.capacity().cpu_cores();
    cap_total.memory_mb += w.capacity().memory_mb();
    cap_total.disk_gb += w.capacity().disk_gb();
    used_total.cpu_cores += w.reserved().cpu_cores();
    used_total.memory_mb += w.reserved().memory_mb();
    used_total.disk_gb += w.reserved().disk_gb();
  }
  for (int i = 0; i <= cluster::TaskState_MAX; ++i) s.add_tasks_by_state(0);
  for (const auto& [id, t] : tasks_) {
    const int state = static_cast<int>(t.state());
    s.set_tasks_by_state(state, s.tasks_by_state(state) + 1);
  }
  s.set_vms(vms_.size());
  s.set_vms_waiting(waiting_vms_.size());
  s.set_kv_keys(kv_.size());
  SetResources(*s.mutable_capacity_total(), cap_total);
  SetResources(*s.mutable_reserved_total(), used_total);
  return s;
}

cluster::QueryResult ClusterStateMachine::Query(const cluster::Query& q) const {
  cluster::QueryResult r;
  auto not_found = [&r](std::string message) {
    r.set_code(cluster::RESULT_NOT_FOUND);
    r.set_message(std::move(message));
  };
  switch (q.op_case()) {
    case cluster::Query::kGetTask:
      if (const auto* t = FindTask(q.get_task())) {
        *r.add_tasks() = *t;
      } else {
        not_found(absl::StrCat("task '", q.get_task(), "' does not exist"));
      }
      break;
    case cluster::Query::kListTasks: {
      const size_t limit =
          q.list_tasks().limit() == 0
              ? kListResultsMax
              : std::min<size_t>(q.list_tasks().limit(), kListResultsMax);
      for (auto& t : ListTasks(q.list_tasks().state(),
                               q.list_tasks().worker_id(), limit)) {
        *r.add_tasks() = std::move(t);
      }
      break;
    }
    case cluster::Query::kGetWorker:
      if (const auto* w = FindWorker(q.get_worker())) {
        *r.add_workers() = *w;
      } else {
        not_found(
            absl::StrCat("worker ", q.get_worker(), " is not registered"));
      }
      break;
    case cluster::Query::kListWorkers:
      for (const auto& [id, w] : workers_) *r.add_workers() = w;
      break;
    case cluster::Query::kGetVm:
      if (const auto* v = FindVm(q.get_vm())) {
        *r.add_vms() = *v;
      } else {
        not_found(absl::StrCat("vm '", q.get_vm(), "' does not exist"));
      }
      break;
    case cluster::Query::kListVms:
      for (const auto& [name, v] : vms_) *r.add_vms() = v;
      break;
    case cluster::Query::kListMembers:
      for (const auto& [id, m] : members_) *r.add_members() = m;
      break;
    case cluster::Query::kKvGet:
      if (const auto* e = FindKv(q.kv_get())) {
        *r.mutable_kv() = *e;
      } else {
        not_found(absl::StrCat("kv key '", q.kv_get(), "' does not exist"));
      }
      break;
    case cluster::Query::kSummary:
      *r.mutable_summary() = Summary();
      break;
    case cluster::Query::OP_NOT_SET:
      r.set_code(cluster::RESULT_INVALID_ARGUMENT);
      r.set_message("query has no operation");
      break;
  }
  return r;
}

// ---------------------------------------------------------------------------
// Snapshots

cluster::StateSnapshot ClusterStateMachine::ToProto() const {
  cluster::StateSnapshot s;
  s.set_format_version(kSnapshotFormatVersion);
  s.set_applied_index(applied_index_.value());
  s.set_now_ms(now_ms_);
  for (const auto& [id, w] : workers_) *s.add_workers() = w;
  for (const auto& [id, t] : tasks_) *s.add_tasks() = t;
  for (const auto& [name, v] : vms_) *s.add_vms() = v;
  for (const auto& [key, e] : kv_) *s.add_kv() = e;
  for (const auto& [id, session] : sessions_) *s.add_sessions() = session;
  for (const auto& [id, member] : members_) *s.add_members() = member;
  return s;
}

namespace {

// Wire tags of cluster::StateSnapshot's fields ((number << 3) | wire type).
constexpr uint32_t kTagFormatVersion = (1 << 3) | 0;
constexpr uint32_t kTagAppliedIndex = (2 << 3) | 0;
constexpr uint32_t kTagNowMs = (3 << 3) | 0;
constexpr uint32_t kTagWorkers = (4 << 3) | 2;
constexpr uint32_t kTagTasks = (5 << 3) | 2;
constexpr uint32_t kTagVms = (6 << 3) | 2;
constexpr uint32_t kTagKv = (7 << 3) | 2;
constexpr uint32_t kTagSessions = (8 << 3) | 2;
constexpr uint32_t kTagMembers = (9 << 3) | 2;

// Protobuf serializes at most INT_MAX bytes per message; the generated
// serializer failed (and Snapshot CHECKed) beyond it, so this one does too.
constexpr size_t kSerializedBytesMax =
    static_cast<size_t>(std::numeric_limits<int32_t>::max());

// One element of a repeated message field, as the generated serializer
// writes it: tag, length, the message's own bytes.
void WriteRecord(uint32_t tag, const google::protobuf::MessageLite& record,
                 google::protobuf::io::CodedOutputStream& coded) {
  coded.WriteTag(tag);
  const size_t size = record.ByteSizeLong();  // also caches the sizes
  CHECK_LE(size, kSerializedBytesMax) << "record too large to serialize";
  coded.WriteVarint32(static_cast<uint32_t>(size));
  record.SerializeWithCachedSizes(&coded);
}

}  // namespace

// The bytes ToProto().SerializeToString() would give with deterministic
// serialization, written straight from the records: building the
// StateSnapshot copied every record (and then freed the copies), which was
// most of the cost of Snapshot() and Digest(). Proto3 scalars are written
// only when non-zero and fields go in number order, as the generated code
// does; StateSnapshot has no map fields. The tests compare the two.
void ClusterStateMachine::WriteSnapshot(
    google::protobuf::io::ZeroCopyOutputStream& out) const {
  {
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    if (kSnapshotFormatVersion != 0) {
      coded.WriteTag(kTagFormatVersion);
      coded.WriteVarint32(kSnapshotFormatVersion);
    }
    if (applied_index_.value() != 0) {
      coded.WriteTag(kTagAppliedIndex);
      coded.WriteVarint64(applied_index_.value());
    }
    if (now_ms_ != 0) {
      coded.WriteTag(kTagNowMs);
      coded.WriteVarint64(now_ms_);
    }
    for (const auto& [id, w] : workers_) WriteRecord(kTagWorkers, w, coded);
    for (const auto& [id, t] : tasks_) WriteRecord(kTagTasks, t, coded);
    for (const auto& [name, v] : vms_) WriteRecord(kTagVms, v, coded);
    for (const auto& [key, e] : kv_) WriteRecord(kTagKv, e, coded);
    for (const auto& [id, session] : sessions_) {
      WriteRecord(kTagSessions, session, coded);
    }
    for (const auto& [id, member] : members_) WriteRecord(kTagMembers, member, coded);
    CHECK(!coded.HadError());
  }  // the coded stream hands its unused buffer back here
  CHECK_LE(static_cast<uint64_t>(out.ByteCount()), kSerializedBytesMax)
      << "snapshot too large";
}

void ClusterStateMachine::SnapshotTo(std::string* out) const {
  CHECK(out != nullptr);
  out->clear();  // StringOutputStream appends; the capacity is kept
  google::protobuf::io::StringOutputStream raw(out);
  WriteSnapshot(raw);
}

std::string ClusterStateMachine::Snapshot() const {
  std::string bytes;
  SnapshotTo(&bytes);
  return bytes;
}

namespace {

// A sink that hashes what is written, with XXH3's streaming interface: the
// same value as XXH3_64bits (so StableHash64) of all the bytes at once,
// without holding them.
class HashOutputStream final : public google::protobuf::io::ZeroCopyOutputStream {
 public:
  HashOutputStream() : state_(XXH3_createState()) {
    CHECK(state_ != nullptr);
    CHECK(XXH3_64bits_reset(state_) == XXH_OK);
  }
  ~HashOutputStream() override { XXH3_freeState(state_); }
  HashOutputStream(const HashOutputStream&) = delete;
  HashOutputStream& operator=(const HashOutputStream&) = delete;

  bool Next(void** data, int* size) override {
    Flush();
    *data = buffer_;
    *size = static_cast<int>(sizeof(buffer_));
    used_ = sizeof(buffer_);
    return true;
  }
  void BackUp(int count) override {
    CHECK_GE(count, 0);
    CHECK_LE(static_cast<size_t>(count), used_);
    used_ -= static_cast<size_t>(count);
  }
  int64_t ByteCount() const override {
    return static_cast<int64_t>(hashed_ + used_);
  }
  uint64_t Digest() {
    Flush();
    return XXH3_64bits_digest(state_);
  }

 private:
  void Flush() {
    if (used_ == 0) return;
    CHECK(XXH3_64bits_update(state_, buffer_, used_) == XXH_OK);
    hashed_ += used_;
    used_ = 0;
  }

  XXH3_state_t* state_;
  char buffer_[64 * 1024];
  size_t used_ = 0;    // bytes of buffer_ written and not yet hashed
  uint64_t hashed_ = 0;
};

}  // namespace

uint64_t ClusterStateMachine::Digest() const {
  // On the heap: 64 KiB is too much for a stack frame.
  auto sink = std::make_unique<HashOutputStream>();
  WriteSnapshot(*sink);
  return sink->Digest();
}

absl::Status ClusterStateMachine::Restore(absl::string_view bytes) {
  cluster::StateSnapshot s;
  if (!s.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat(
        "cluster snapshot of ", bytes.size(), " bytes does not parse"));
  }
  return RestoreFromProto(s);
}

absl::Status ClusterStateMachine::RestoreFromProto(
    const cluster::StateSnapshot& s) {
  if (s.format_version() != kSnapshotFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster snapshot format ", s.format_version(),
                     " is not the supported ", kSnapshotFormatVersion));
  }
  auto bad = [](auto&&... parts) {
    return absl::DataLossError(absl::StrCat(
        "cluster snapshot: ", std::forward<decltype(parts)>(parts)...));
  };
  ClusterStateMachine fresh(options_);
  fresh.applied_index_ = Index(s.applied_index());
  if (s.now_ms() > kLogTimeMsMax) return bad("now_ms beyond kLogTimeMsMax");
  fresh.now_ms_ = s.now_ms();
  for (const cluster::WorkerRecord& w : s.workers()) {
    if (w.node_id() == 0) return bad("worker with node_id 0");
    if (!ValidWorkerStatus(w.status())) {
      return bad("worker ", w.node_id(), " has invalid status");
    }
    std::string error = ValidateAmounts(ToAmounts(w.capacity()), "capacity");
    std::vector<std::string> features;
    if (error.empty())
      error = ValidateFeatures(w.features(), "worker", features);
    if (!error.empty()) return bad("worker ", w.node_id(), ": ", error);
    if (features != ToVector(w.features())) {
      return bad("worker ", w.node_id(), " features are not sorted and unique");
    }
    cluster::WorkerRecord copy = w;
    copy.mutable_reserved();
    if (!fresh.workers_.emplace(w.node_id(), std::move(copy)).second) {
      return bad("worker ", w.node_id(), " appears twice");
    }
  }
  if (fresh.workers_.size() > options_.workers_max)
    return bad("too many workers");
  std::map<uint64_t, Amounts> used;
  auto add_use = [&used](uint64_t id, const Amounts& a) {
    Amounts& u = used[id];
    u.cpu_cores += a.cpu_cores;
    u.memory_mb += a.memory_mb;
    u.disk_gb += a.disk_gb;
  };
  for (const cluster::TaskRecord& t : s.tasks()) {
    std::string error = ValidateId(t.task_id(), "task_id", kTaskIdBytesMax);
    cluster::TaskSpec spec;
    if (error.empty()) error = ValidateTaskSpec(t.spec(), spec);
    if (!error.empty()) return bad("task '", t.task_id(), "': ", error);
    // ValidateTaskSpec's output differs from its input only by sorting and
    // deduplicating the features (comparing the two messages field by field
    // was most of the cost of a restore).
    if (!sm::SortedUnique(t.spec().resources().required_features())) {
      return bad("task '", t.task_id(), "' spec is not normalized");
    }
    if (t.state() < cluster::TASK_PENDING ||
        t.state() > cluster::TASK_CANCELLED) {
      return bad("task '", t.task_id(), "' has invalid state");
    }
    if (t.failed_attempts() > t.spec().max_attempts()) {
      return bad("task '", t.task_id(), "' failed more often than it may");
    }
    if (t.state() != cluster::TASK_PENDING && t.not_before_ms() != 0) {
      return bad("task '", t.task_id(),
                 "' has a retry time but is not PENDING");
    }
    if (t.not_before_ms() > kLogTimeMsMax + options_.retry_backoff_max_ms) {
      return bad("task '", t.task_id(), "' retry time beyond kLogTimeMsMax");
    }
    // The deadline and retention keys are sums with these times: they are
    // log times the clock has reached.
    if (IsPlacedState(t.state()) && t.assigned_time_ms() > s.now_ms()) {
      return bad("task '", t.task_id(), "' assigned after the state clock");
    }
    if (sm::IsTerminal(t.state()) && t.finished_time_ms() > s.now_ms()) {
      return bad("task '", t.task_id(), "' finished after the state clock");
    }
    if (IsPlacedState(t.state())) {
      auto w = fresh.workers_.find(t.worker_id());
      if (w == fresh.workers_.end()) {
        return bad("task '", t.task_id(), "' is on unknown worker ",
                   t.worker_id());
      }
      if (!Includes(w->second.features(),
                    t.spec().resources().required_features())) {
        return bad("task '", t.task_id(), "' is on worker ", t.worker_id(),
                   " which lacks a required feature");
      }
      add_use(t.worker_id(), TaskNeed(t));
    } else if (t.worker_id() != 0) {
      return bad("task '", t.task_id(), "' is ", sm::TaskStateName(t.state()),
                 " but names worker ", t.worker_id());
    }
    if (!fresh.tasks_.emplace(t.task_id(), t).second) {
      return bad("task '", t.task_id(), "' appears twice");
    }
  }
  if (fresh.tasks_.size() > options_.tasks_max) return bad("too many tasks");
  for (const cluster::VmRecord& v : s.vms()) {
    std::string error = ValidateId(v.name(), "vm name", kVmNameBytesMax);
    cluster::VmSpec spec;
    if (error.empty()) error = ValidateVmSpec(v.spec(), spec);
    if (!error.empty()) return bad("vm '", v.name(), "': ", error);
    if (!sm::SortedUnique(v.spec().features())) {  // as for tasks
      return bad("vm '", v.name(), "' spec is not normalized");
    }
    if (v.desired() != cluster::VM_DESIRED_STOPPED &&
        v.desired() != cluster::VM_DESIRED_RUNNING) {
      return bad("vm '", v.name(), "' has invalid desired state");
    }
    if (v.observed() < cluster::VM_OBSERVED_UNSPECIFIED ||
        v.observed() > cluster::VM_FAILED) {
      return bad("vm '", v.name(), "' has invalid observed state");
    }
    if (v.worker_id() == 0 &&
        v.observed() != cluster::VM_OBSERVED_UNSPECIFIED) {
      return bad("vm '", v.name(), "' is observed but not placed");
    }
    if (v.worker_id() != 0 && v.generation() == 0) {
      return bad("vm '", v.name(), "' is placed with generation 0");
    }
    if (v.worker_id() != 0) {
      auto w = fresh.workers_.find(v.worker_id());
      if (w == fresh.workers_.end()) {
        return bad("vm '", v.name(), "' is on unknown worker ", v.worker_id());
      }
      if (!Includes(w->second.features(), v.spec().features())) {
        return bad("vm '", v.name(), "' is on worker ", v.worker_id(),
                   " which lacks a required feature");
      }
      add_use(v.worker_id(), VmNeed(v));
    }
    if (!fresh.vms_.emplace(v.name(), v).second) {
      return bad("vm '", v.name(), "' appears twice");
    }
  }
  if (fresh.vms_.size() > options_.vms_max) return bad("too many vms");
  for (const auto& [id, w] : fresh.workers_) {
    const Amounts u = used[id];
    if (!(ToAmounts(w.reserved()) == u)) {
      return bad("worker ", id, " reservation does not equal its placed work");
    }
    if (!ToAmounts(w.capacity()).Covers(u)) {
      return bad("worker ", id, " is over-committed");
    }
    if ((w.status() == cluster::WORKER_FAILED) && !(u == Amounts{})) {
      return bad("FAILED worker ", id, " still holds work");
    }
    if (w.status_since_ms() > kLogTimeMsMax) {
      return bad("worker ", id, " status time beyond kLogTimeMsMax");
    }
  }
  for (const cluster::KvEntry& e : s.kv()) {
    if (!ValidateKey(e.key()).empty() || e.value().size() > kKvValueBytesMax) {
      return bad("kv entry outside the limits");
    }
    if (!fresh.kv_.emplace(e.key(), e).second) {
      return bad("kv key '", e.key(), "' appears twice");
    }
  }
  if (fresh.kv_.size() > options_.kv_keys_max) return bad("too many kv keys");
  std::set<uint64_t> last_indexes;
  for (const cluster::ClientSession& session : s.sessions()) {
    if (session.client_id() == 0 || session.last_sequence() == 0) {
      return bad("client session with id or sequence 0");
    }
    if (!last_indexes.insert(session.last_index()).second) {
      return bad("two client sessions share last index ", session.last_index());
    }
    if (!fresh.sessions_.emplace(session.client_id(), session).second) {
      return bad("client ", session.client_id(), " appears twice");
    }
  }
  if (fresh.sessions_.size() > options_.client_sessions_max) {
    return bad("too many client sessions");
  }
  for (const cluster::MemberRecord& member : s.members()) {
    // A store is recorded (nonce and index) or not at all; a record with
    // no store has a role (it came from a conf change).
    if (member.node_id() == 0 || (member.store_nonce() == 0) != (member.joined_index() == 0) ||
        member.joined_index() > s.applied_index() ||
        member.changed_index() > s.applied_index() ||
        (member.store_nonce() == 0 && member.role() == cluster::MEMBER_ROLE_UNSPECIFIED) ||
        !cluster::MemberRole_IsValid(member.role()) ||
        member.peer_address().size() > kAddressBytesMax ||
        member.client_address().size() > kAddressBytesMax) {
      return bad("member record of node ", member.node_id(),
                 " without a node id, a role or a store, or with an index past the applied "
                 "index or an address above ", kAddressBytesMax, " bytes");
    }
    if (!fresh.members_.emplace(member.node_id(), member).second) {
      return bad("member ", member.node_id(), " appears twice");
    }
  }
  if (fresh.members_.size() > kMembersMax) return bad("too many members");
  fresh.RebuildDerived();
  // A no-op for a snapshot from a replica with the same options; with a
  // smaller bound, the restored replica holds it from the start.
  fresh.CollectFinishedTasks();
  // What every Apply leaves true must hold in the snapshot too: OFFLINE
  // workers past their grace hold no tasks, and nothing eligible fits.
  for (const auto& [id, w] : fresh.workers_) {
    if (w.status() != cluster::WORKER_OFFLINE ||
        w.status_since_ms() + options_.offline_grace_ms > fresh.now_ms_) {
      continue;
    }
    const auto tasks = OnWorker(fresh.tasks_by_worker_, id);
    if (tasks.first != tasks.second) {
      return bad("OFFLINE worker ", id, " holds tasks past its grace period");
    }
  }
  for (const auto& [key, need] : fresh.pending_) {
    const cluster::TaskRecord& t = fresh.tasks_.find(std::get<2>(key))->second;
    if (fresh.index_.BestFit(
            need, ToVector(t.spec().resources().required_features())) != 0) {
      return bad("pending task '", t.task_id(), "' fits an ONLINE worker");
    }
  }
  for (const auto& [key, need] : fresh.waiting_vms_) {
    const std::string& name = key.second;
    const cluster::VmRecord& v = fresh.vms_.find(name)->second;
    if (fresh.index_.BestFit(VmNeed(v), ToVector(v.spec().features())) != 0) {
      return bad("waiting vm '", name, "' fits an ONLINE worker");
    }
  }
  for (const uint64_t node_id : fresh.draining_workers_) {
    for (auto [it, end] = OnWorker(fresh.vms_by_worker_, node_id); it != end;
         ++it) {
      const cluster::VmRecord& v = *it->second;
      if (fresh.index_.BestFit(VmNeed(v), ToVector(v.spec().features()),
                               node_id) != 0) {
        return bad("vm '", v.name(), "' on draining worker ", node_id,
                   " could migrate");
      }
    }
  }
  *this = std::move(fresh);
  return absl::OkStatus();
}

void ClusterStateMachine::RebuildDerived() {
  for (const auto& [id, w] : workers_) {
    if (w.status() == cluster::WORKER_ONLINE) {
      index_.Add(id, FreeOf(w), ToVector(w.features()));
    } else if (w.status() == cluster::WORKER_DRAINING) {
      draining_workers_.insert(id);
    } else if (w.status() == cluster::WORKER_OFFLINE) {
      const uint64_t deadline = w.status_since_ms() + options_.offline_grace_ms;
      if (deadline > now_ms_) offline_timers_.insert({deadline, id});
    }
  }
  for (auto& [id, t] : tasks_) {
    if (t.state() == cluster::TASK_PENDING) {
      if (t.not_before_ms() > now_ms_) {
        retry_timers_.insert({t.not_before_ms(), id});
      } else {
        EnqueuePending(t, /*fresh=*/false);
      }
    } else if (IsPlacedState(t.state())) {
      tasks_by_worker_.emplace(std::make_pair(t.worker_id(), id), &t);
      TrackDeadline(id, t);
    } else if (sm::IsTerminal(t.state())) {
      CHECK(finished_.emplace(t.finished_time_ms(), id).second);
    }
  }
  for (auto& [name, v] : vms_) {
    if (v.worker_id() != 0) {
      vms_by_worker_.emplace(std::make_pair(v.worker_id(), name), &v);
    } else {
      AddWaitingVm(v, /*fresh=*/false);
    }
  }
  for (const auto& [id, session] : sessions_) {
    session_lru_.insert({session.last_index(), id});
  }
}

absl::Status ResultToStatus(const cluster::Result& result) {
  switch (result.code()) {
    case cluster::RESULT_OK:
      return absl::OkStatus();
    case cluster::RESULT_INVALID_ARGUMENT:
      return absl::InvalidArgumentError(result.message());
    case cluster::RESULT_NOT_FOUND:
      return absl::NotFoundError(result.message());
    case cluster::RESULT_ALREADY_EXISTS:
      return absl::AlreadyExistsError(result.message());
    case cluster::RESULT_FAILED_PRECONDITION:
      return absl::FailedPreconditionError(result.message());
    case cluster::RESULT_RESOURCE_EXHAUSTED:
      return absl::ResourceExhaustedError(result.message());
    case cluster::RESULT_OUT_OF_RANGE:
      return absl::OutOfRangeError(result.message());
    default:
      return absl::UnknownError(absl::StrCat("result code ",
                                             static_cast<int>(result.code()),
                                             ": ", result.message()));
  }
}

// ---------------------------------------------------------------------------
// Invariants

void ClusterStateMachine::CheckInvariants() const {
  CHECK(fresh_.empty());
  CHECK(fresh_vms_.empty());
  CHECK(fresh_draining_.empty());
  CHECK(dirty_workers_.empty());
  CHECK(!scan_needed_);
  index_.CheckInvariants();

  CHECK_LE(members_.size(), kMembersMax);
  for (const auto& [id, m] : members_) {
    CHECK_EQ(id, m.node_id());
    CHECK_EQ(m.store_nonce() == 0, m.joined_index() == 0) << "member " << id;
    CHECK(m.store_nonce() != 0 || m.role() != cluster::MEMBER_ROLE_UNSPECIFIED) << "member " << id;
    CHECK_LE(m.joined_index(), applied_index_.value());
    CHECK_LE(m.changed_index(), applied_index_.value());
  }

  std::map<uint64_t, Amounts> used;
  auto add_use = [&used](uint64_t id, const Amounts& a) {
    Amounts& u = used[id];
    u.cpu_cores += a.cpu_cores;
    u.memory_mb += a.memory_mb;
    u.disk_gb += a.disk_gb;
  };
  size_t pending_eligible = 0, pending_waiting = 0, placed = 0;
  size_t timed = 0, finished = 0;
  for (const auto& [id, t] : tasks_) {
    CHECK_EQ(id, t.task_id());
    // The deadline and finished indexes, recomputed from the record. Their
    // keys view the map's own key (checked below by address).
    if (t.state() == cluster::TASK_RUNNING && t.spec().timeout_secs() > 0) {
      ++timed;
      const uint64_t deadline =
          t.assigned_time_ms() + t.spec().timeout_secs() * 1000;
      auto indexed = deadlines_.find(TaskKey(deadline, id));
      CHECK(indexed != deadlines_.end() && indexed->second == &t &&
            indexed->first.second.data() == id.data())
          << "task " << id << " missing from the deadline index at "
          << deadline;
    }
    if (sm::IsTerminal(t.state())) {
      ++finished;
      CHECK_LE(t.finished_time_ms(), now_ms_) << "task " << id;
      auto indexed = finished_.find(TaskKey(t.finished_time_ms(), id));
      CHECK(indexed != finished_.end() && indexed->second.data() == id.data())
          << "finished task " << id << " missing from the finished index";
    }
    if (IsPlacedState(t.state())) {
      ++placed;
      auto w = workers_.find(t.worker_id());
      CHECK(w != workers_.end()) << "task " << id << " on unknown worker";
      CHECK(Includes(w->second.features(),
                     t.spec().resources().required_features()))
          << "task " << id << " on a worker without its features";
      auto indexed = tasks_by_worker_.find(std::make_pair(t.worker_id(), id));
      CHECK(indexed != tasks_by_worker_.end() && indexed->second == &t)
          << "task " << id << " missing from its worker's index";
      add_use(t.worker_id(), TaskNeed(t));
    } else {
      CHECK_EQ(t.worker_id(), 0u) << "task " << id;
    }
    if (t.state() == cluster::TASK_PENDING) {
      if (t.not_before_ms() > now_ms_) {
        ++pending_waiting;
        CHECK(retry_timers_.count({t.not_before_ms(), id}) == 1);
      } else {
        ++pending_eligible;
        CHECK(pending_.count(PendingKey{kTaskPriorityMax - t.spec().priority(),
                                        t.submit_index(), id}) == 1);
      }
    }
    CHECK_LE(t.failed_attempts(), t.spec().max_attempts());
    if (t.state() != cluster::TASK_PENDING) {
      CHECK_EQ(t.not_before_ms(), 0u) << "task " << id;
    }
  }
  CHECK_EQ(pending_.size(), pending_eligible);
  {
    NeedFloor floor;
    for (const auto& [key, need] : pending_) floor.Add(need);
    CHECK(floor.cpu == need_floor_.cpu && floor.memory == need_floor_.memory &&
          floor.disk == need_floor_.disk)
        << "pending need floor out of step";
  }
  CHECK_EQ(retry_timers_.size(), pending_waiting);
  CHECK_EQ(tasks_by_worker_.size(), placed);
  CHECK_EQ(deadlines_.size(), timed) << "deadline index holds other tasks";
  CHECK_EQ(finished_.size(), finished) << "finished index holds other tasks";
  // The retention rule held at the end of the last entry.
  CHECK_LE(finished_.size(), options_.finished_tasks_retained_max);
  if (!finished_.empty()) {
    CHECK_GT(finished_.begin()->first + options_.finished_task_retention_ms,
             now_ms_)
        << "finished task " << finished_.begin()->second
        << " outlived its retention";
  }

  size_t vms_placed = 0, vms_waiting = 0;
  for (const auto& [name, v] : vms_) {
    CHECK_EQ(name, v.name());
    if (v.worker_id() != 0) {
      ++vms_placed;
      auto w = workers_.find(v.worker_id());
      CHECK(w != workers_.end()) << "vm " << name << " on unknown worker";
      CHECK(Includes(w->second.features(), v.spec().features()));
      auto indexed = vms_by_worker_.find(std::make_pair(v.worker_id(), name));
      CHECK(indexed != vms_by_worker_.end() && indexed->second == &v)
          << "vm " << name << " missing from its worker's index";
      CHECK_GE(v.generation(), 1u);
      add_use(v.worker_id(), VmNeed(v));
    } else {
      ++vms_waiting;
      auto waiting = waiting_vms_.find(std::make_pair(v.create_index(), name));
      CHECK(waiting != waiting_vms_.end()) << "vm " << name;
      CHECK(waiting->second == VmNeed(v)) << "waiting vm " << name;
      CHECK_EQ(v.observed(), cluster::VM_OBSERVED_UNSPECIFIED);
    }
  }
  CHECK_EQ(vms_by_worker_.size(), vms_placed);
  CHECK_EQ(waiting_vms_.size(), vms_waiting);
  {
    NeedFloor floor;
    for (const auto& [key, need] : waiting_vms_) floor.Add(need);
    CHECK(floor.cpu == waiting_vm_floor_.cpu &&
          floor.memory == waiting_vm_floor_.memory &&
          floor.disk == waiting_vm_floor_.disk)
        << "waiting vm need floor out of step";
  }

  size_t online = 0, draining = 0, offline_timed = 0;
  for (const auto& [id, w] : workers_) {
    CHECK_EQ(id, w.node_id());
    const Amounts u = used[id];
    CHECK(ToAmounts(w.reserved()) == u)
        << "worker " << id << " reservation differs from its placed work";
    CHECK(ToAmounts(w.capacity()).Covers(u))
        << "worker " << id << " over-committed";
    switch (w.status()) {
      case cluster::WORKER_ONLINE:
        ++online;
        CHECK(index_.Contains(id));
        CHECK(index_.Free(id) == FreeOf(w));
        break;
      case cluster::WORKER_DRAINING:
        ++draining;
        CHECK(draining_workers_.count(id) == 1);
        break;
      case cluster::WORKER_OFFLINE: {
        const uint64_t deadline =
            w.status_since_ms() + options_.offline_grace_ms;
        if (deadline > now_ms_) {
          ++offline_timed;
          CHECK(offline_timers_.count({deadline, id}) == 1);
        } else {
          const auto tasks = OnWorker(tasks_by_worker_, id);
          CHECK(tasks.first == tasks.second)
              << "OFFLINE worker " << id << " kept tasks past its grace period";
        }
        break;
      }
      case cluster::WORKER_FAILED:
        CHECK(u == Amounts{}) << "FAILED worker " << id << " holds work";
        break;
      default:
        break;
    }
  }
  CHECK_EQ(index_.size(), online);
  CHECK_EQ(draining_workers_.size(), draining);
  CHECK_EQ(offline_timers_.size(), offline_timed);

  CHECK_LE(sessions_.size(), options_.client_sessions_max);
  CHECK_EQ(session_lru_.size(), sessions_.size());
  for (const auto& [index, client] : session_lru_) {
    auto it = sessions_.find(client);
    CHECK(it != sessions_.end());
    CHECK_EQ(it->second.last_index(), index);
  }

  // Backfill is complete: nothing eligible fits anywhere.
  for (const auto& [key, need] : waiting_vms_) {
    const std::string& name = key.second;
    const cluster::VmRecord& v = vms_.find(name)->second;
    CHECK_EQ(index_.BestFit(VmNeed(v), ToVector(v.spec().features())), 0u)
        << "waiting vm " << name << " fits somewhere";
  }
  for (const uint64_t node_id : draining_workers_) {
    for (auto [it, end] = OnWorker(vms_by_worker_, node_id); it != end; ++it) {
      const cluster::VmRecord& v = *it->second;
      CHECK_EQ(
          index_.BestFit(VmNeed(v), ToVector(v.spec().features()), node_id), 0u)
          << "vm " << v.name() << " on draining worker could migrate";
    }
  }
  for (const auto& [key, need] : pending_) {
    const cluster::TaskRecord& t = tasks_.find(std::get<2>(key))->second;
    CHECK(need == TaskNeed(t)) << "pending task " << t.task_id();
    CHECK_EQ(index_.BestFit(TaskNeed(t),
                            ToVector(t.spec().resources().required_features())),
             0u)
        << "pending task " << t.task_id() << " fits somewhere";
  }
}

}  // namespace blixard
