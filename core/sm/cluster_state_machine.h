// The replicated cluster state machine: workers, tasks, VMs, deterministic
// placement, and a small versioned KV store (ARCHITECTURE.md, "Replicated
// cluster state"; issue 4).
//
// The Host applies every committed entry that carries a `cluster::Command`,
// in log order, on every replica:
//
//   ClusterStateMachine sm(ClusterStateMachineOptions{});
//   cluster::Result result = sm.Apply(Index(entry.index()), command);
//   if (result.code() != cluster::RESULT_OK) { /* reply with the error */ }
//   std::string bytes = sm.Snapshot();     // for Raft snapshots
//   uint64_t digest = sm.Digest();         // compare replicas
//   absl::Status s = other.Restore(bytes); // install a snapshot
//
// Determinism. Apply is a pure function of (state, index, command): no clock
// (time is the leader-stamped `log_time_ms`, made monotonic with
// max(previous, entry)), no randomness, no floating point, and no decision
// depends on the iteration order of an unordered container. Two replicas fed
// the same entries end with byte-identical snapshots.
//
// Errors. A command that is invalid against the current state returns a
// Result with a code other than RESULT_OK and a message that names what was
// wrong, and changes no worker, task, VM or KV entry. Three things move with
// *every* applied entry, valid or not, because they belong to the log, not to
// the command: the applied index, the state clock (max of log times), and
// whatever the new clock makes due (retry backoffs ending, offline grace
// periods ending, and the placements those allow). The client session table
// records the result of every write that carries a request id, errors
// included, so a retry returns the same answer.
//
// Client sessions (Raft thesis 6.3). A write with client_id != 0 carries a
// sequence number. The same sequence as the client's last write returns the
// recorded result without applying again; a lower one is OUT_OF_RANGE. The
// table holds at most `client_sessions_max` clients and evicts the one whose
// last write has the lowest log index (least recently used). A client whose
// session was evicted looks new: its retried write would apply again, so the
// bound must comfortably exceed the number of live clients.
//
// Placement happens inside Apply (placement_index.h has the rule). Pending
// work is scanned after every command that can make placement possible
// (capacity freed, a worker becoming ONLINE, a retry coming due, new work),
// VMs first (by create index), then tasks by (priority descending, submit
// index), each placed if it fits anywhere; work that does not fit is skipped
// so smaller work behind it can backfill. After every Apply no eligible
// pending task or waiting VM fits on any ONLINE worker.
//
// Finished tasks (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED) are garbage
// collected by a replicated rule, applied at the end of every entry (valid,
// rejected or undecodable alike): while more than
// `finished_tasks_retained_max` are kept, or the oldest finished at least
// `finished_task_retention_ms` of log time ago, the oldest by (finished log
// time, task id) is erased. Every input of the rule is in the records
// (finished_time_ms, task_id) and the state clock, so every replica, and a
// replica restored from a snapshot, evicts the same records at the same
// index. A task id is remembered only while its record is kept: a SubmitTask
// with the id of an evicted task creates a new task that runs again. So
// resubmitting a task id is idempotent only within the retention window
// (the shorter of the age bound and the time it takes
// `finished_tasks_retained_max` later tasks to finish); clients that need
// exactly-once beyond it use fresh ids, or rely on the session table, which
// answers a retried write with its recorded result whatever became of the
// task. A report (TaskStarted, TaskFinished) about an evicted task is
// NOT_FOUND.
//
// Timeouts. RUNNING tasks with a timeout are indexed by their deadline,
// assigned_time_ms + timeout_secs * 1000 (log time), so the leader finds
// the overdue ones without scanning every record (TasksPastDeadline).
//
// Not thread-safe: the Host calls it from its single thread.
#ifndef BLIXARD_CORE_SM_CLUSTER_STATE_MACHINE_H_
#define BLIXARD_CORE_SM_CLUSTER_STATE_MACHINE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/base/types.h"
#include "core/proto/cluster.pb.h"
#include "core/sm/cluster_limits.h"
#include "core/sm/placement_index.h"

namespace blixard {

// Tunables. Every replica of a cluster must use the same values (they shape
// decisions), so they belong to the cluster's configuration.
struct ClusterStateMachineOptions {
  // How long an OFFLINE worker keeps its tasks before they are requeued.
  uint64_t offline_grace_ms = 30'000;
  // Retry backoff after the n-th failed attempt: base << (n - 1), capped.
  uint64_t retry_backoff_base_ms = 1'000;
  uint64_t retry_backoff_max_ms = 300'000;
  size_t client_sessions_max = 4096;
  size_t workers_max = 100'000;
  size_t tasks_max = 2'000'000;  // records of every state, terminal included
  size_t pending_tasks_max = 200'000;
  size_t vms_max = 100'000;
  size_t kv_keys_max = 1'000'000;
  // Retention of finished tasks (SUCCEEDED, FAILED, TIMED_OUT, CANCELLED):
  // at most this many are kept, and none longer than the age below (in log
  // time since it finished); the oldest go first. See "Finished tasks" in
  // the file comment. >= 1; above tasks_max it never binds (tasks_max
  // bounds the records of every state).
  size_t finished_tasks_retained_max = 10'000;
  // 1 ms .. 2^40 ms (the bound keeps finished time + age from overflowing).
  uint64_t finished_task_retention_ms = 3'600'000;  // one hour

  // INVALID_ARGUMENT naming the first bad field.
  absl::Status Validate() const;
};

class ClusterStateMachine {
 public:
  // REQUIRES: options.Validate().ok() (CHECKed).
  explicit ClusterStateMachine(ClusterStateMachineOptions options = {});
  ClusterStateMachine(const ClusterStateMachine&) = delete;
  ClusterStateMachine& operator=(const ClusterStateMachine&) = delete;
  ClusterStateMachine(ClusterStateMachine&&) = default;
  ClusterStateMachine& operator=(ClusterStateMachine&&) = default;

  // Applies the command of the committed entry at `index`. Returns the typed
  // outcome; see the file comment for what an error leaves unchanged.
  // REQUIRES: index > applied_index() (entries without a command, such as
  // leader no-ops and configuration changes, may leave gaps).
  cluster::Result Apply(Index index, const cluster::Command& command);

  // Parses the data of a committed entry as a cluster::Command and applies
  // it: the Host's path for committed entries, which never crashes on the
  // bytes. Any bytes give a Result; a rejection is the same on every
  // replica and changes only what every replica changes with it:
  //  - more than kCommandBytesMax bytes, or bytes that do not parse as a
  //    Command: RESULT_INVALID_ARGUMENT ("not a cluster command"); only the
  //    applied index moves (there is no log time to read);
  //  - a Command that parses but is invalid (no operation, out-of-range or
  //    oversize fields, bad UTF-8, unknown enum values): what Apply answers
  //    for it; the applied index, the state clock and what the clock makes
  //    due move, as for every command (see the file comment).
  // Fields this build does not know are dropped before applying, so they
  // never reach the records (or the snapshot).
  // When `decoded` is set, it receives the command as applied (unknown
  // fields dropped), or is cleared when the bytes were rejected undecoded:
  // the caller needs no second parse to learn the request id.
  // REQUIRES: index > applied_index().
  cluster::Result ApplyEntry(Index index, absl::string_view data,
                             cluster::Command* decoded = nullptr);

  // Records what a committed Raft conf change did (the Host builds
  // `change` from the entry and the configuration now in force): every
  // member record takes its role from that configuration (a node that
  // left it is REMOVED, and its record stays: ids are never reused), the
  // subject gets the context's peer address, and a change a client asked
  // for is recorded in its session, so that a retry is answered without a
  // second change. Never refused: the change is in force already (a full
  // member table leaves a node without a record, and says so).
  // REQUIRES: index > applied_index().
  cluster::Result ApplyMembership(Index index, const cluster::MembershipChange& change);

  // Read path (serve after ReadIndex or under a lease; never logged).
  cluster::QueryResult Query(const cluster::Query& query) const;
  const cluster::WorkerRecord* FindWorker(uint64_t node_id) const;
  // The member record of `node_id` (role, addresses, the store the cluster
  // knows as its), or null.
  const cluster::MemberRecord* FindMember(uint64_t node_id) const;
  // The session of `client_id`, or null.
  const cluster::ClientSession* FindSession(uint64_t client_id) const {
    auto it = sessions_.find(client_id);
    return it == sessions_.end() ? nullptr : &it->second;
  }
  const cluster::TaskRecord* FindTask(absl::string_view task_id) const;
  const cluster::VmRecord* FindVm(absl::string_view name) const;
  const cluster::KvEntry* FindKv(absl::string_view key) const;
  // Tasks by id; state UNSPECIFIED and worker 0 match any. At most `limit`.
  std::vector<cluster::TaskRecord> ListTasks(
      cluster::TaskState state, uint64_t worker_id,
      size_t limit = kListResultsMax) const;
  cluster::ClusterSummary Summary() const;
  // The ASSIGNED/RUNNING tasks on a worker, by task id, without copying
  // (pointers valid until the next Apply or Restore). For oracles and agents
  // that look at every apply.
  std::vector<const cluster::TaskRecord*> ActiveTasksOn(uint64_t worker_id) const;
  // The VMs placed on a worker, by name, without copying (same validity).
  std::vector<const cluster::VmRecord*> VmsOn(uint64_t worker_id) const;
  // The RUNNING tasks with a timeout (timeout_secs > 0) whose deadline plus
  // `slack_ms` is at or before `now_ms` (deadline + slack <= now_ms, in log
  // time), in (deadline, task id) order, at most `max` of them. The
  // deadline is assigned_time_ms + timeout_secs * 1000. Costs O(log n + the
  // tasks returned): the leader's timeout controller calls it every tick.
  // Pointers valid until the next Apply or Restore. ASSIGNED tasks are not
  // included: their timeout governs a run that has not started (a worker
  // that never starts its task is handled by the worker-lost path).
  std::vector<const cluster::TaskRecord*> TasksPastDeadline(
      uint64_t now_ms, uint64_t slack_ms, size_t max) const;
  // Number of finished tasks currently kept (<= finished_tasks_retained_max
  // after every Apply).
  size_t finished_tasks() const { return finished_.size(); }

  const std::map<uint64_t, cluster::WorkerRecord>& workers() const {
    return workers_;
  }
  const std::map<std::string, cluster::TaskRecord, std::less<>>& tasks() const {
    return tasks_;
  }
  const std::map<std::string, cluster::VmRecord, std::less<>>& vms() const {
    return vms_;
  }
  const std::map<std::string, cluster::KvEntry, std::less<>>& kv() const {
    return kv_;
  }
  const std::map<uint64_t, cluster::ClientSession>& sessions() const {
    return sessions_;
  }
  const std::map<uint64_t, cluster::MemberRecord>& members() const { return members_; }
  Index applied_index() const { return applied_index_; }
  uint64_t now_ms() const { return now_ms_; }
  const ClusterStateMachineOptions& options() const { return options_; }

  // The whole state in key order, and its deterministic serialization.
  cluster::StateSnapshot ToProto() const;
  // Writes the deterministic serialization of ToProto() into `*out`
  // (replacing its contents, reusing its capacity): the Host serializes a
  // snapshot straight into raft::Snapshot's data field, without a copy.
  // O(state). REQUIRES: out != nullptr.
  void SnapshotTo(std::string* out) const;
  // SnapshotTo into a new string.
  std::string Snapshot() const;
  // StableHash64 of Snapshot(): equal on replicas with equal state. O(state)
  // time (it serializes everything, into the hash in 64 KiB pieces, never
  // into one string): call it when a consumer needs it, not per entry.
  uint64_t Digest() const;

  // Replaces the state with a snapshot. Accepts repeated fields in any order
  // (they are re-sorted). On error (malformed bytes, a record outside the
  // limits, dangling references, reservations that do not add up or
  // over-commit) returns INVALID_ARGUMENT or DATA_LOSS and leaves the state
  // unchanged. On success the finished-task retention rule is applied at
  // the snapshot's clock: a no-op for a snapshot taken by a replica with
  // the same options (it held the rule after its last entry).
  absl::Status Restore(absl::string_view bytes);
  absl::Status RestoreFromProto(const cluster::StateSnapshot& snapshot);

  // CHECKs every invariant: reservations equal the sum of assigned tasks and
  // placed VMs and never exceed capacity; placements only on workers with
  // the required features; the derived indexes (placement index, pending
  // queue, timers, per-worker sets) agree with the records; no eligible
  // pending work fits anywhere. O(state); for tests, sim and fuzzers.
  // The deadline and finished-task indexes are checked against a
  // recomputation from the records, and the retention bounds against the
  // clock.
  void CheckInvariants() const;

  // Implementation details (defined in the .cc).
  struct Outcome;
  struct DirtyRoom;

 private:
  using PendingKey = std::tuple<uint32_t, uint64_t, std::string>;
  // Placed work by (worker, id), pointing at its record: the agent and the
  // scan read a worker's work without a lookup by id per record. Records
  // live in std::maps, whose nodes never move (also across a move of the
  // whole state machine); an entry is erased before its record is.
  template <typename Record>
  using ByWorker =
      std::map<std::pair<uint64_t, std::string>, Record*, std::less<>>;
  // [first, last) of `worker`'s entries in a ByWorker index.
  template <typename IndexMap>
  static auto OnWorker(IndexMap& index, uint64_t worker) {
    return std::make_pair(index.lower_bound(std::make_pair(worker, std::string())),
                          index.lower_bound(std::make_pair(worker + 1, std::string())));
  }

  // The bytes of SnapshotTo, written to `out`.
  void WriteSnapshot(google::protobuf::io::ZeroCopyOutputStream& out) const;
  // Apply without the retention rule (Apply runs it after every command).
  cluster::Result ApplyCommand(Index index, const cluster::Command& command);
  Outcome Dispatch(Index index, const cluster::Command& command);
  Outcome DoRegisterWorker(Index index, const cluster::RegisterWorker& c);
  Outcome DoSetWorkerStatus(uint64_t node_id, cluster::WorkerStatus to,
                            absl::string_view reason);
  Outcome DoRemoveWorker(const cluster::RemoveWorker& c);
  Outcome DoSubmitTask(Index index, const cluster::SubmitTask& c);
  Outcome DoTaskStarted(const cluster::TaskStarted& c);
  Outcome DoTaskFinished(const cluster::TaskFinished& c);
  Outcome DoCancelTask(const cluster::CancelTask& c);
  Outcome DoCreateVm(Index index, const cluster::CreateVm& c);
  Outcome DoSetVmDesired(absl::string_view name,
                         cluster::VmDesiredState desired);
  Outcome DoDeleteVm(const cluster::DeleteVm& c);
  Outcome DoMigrateVm(const cluster::MigrateVm& c);
  Outcome DoVmObserved(const cluster::VmObserved& c);
  Outcome DoKvPut(Index index, const cluster::KvPut& c);
  Outcome DoKvDelete(const cluster::KvDelete& c);
  Outcome DoKvCompareAndSwap(Index index, const cluster::KvCompareAndSwap& c);
  Outcome DoMemberJoined(Index index, const cluster::MemberJoined& c);
  Outcome DoMemberAttributes(const cluster::MemberAttributes& c);

  // Status side effects of moving a worker from one status to another.
  void EnterStatus(cluster::WorkerRecord& worker, cluster::WorkerStatus from);
  void ProcessTimers();
  void Scan();
  // The two halves of the scan, in this order (VMs first, see the file
  // comment). Both keep `room` current as they place work.
  void ScanVms(DirtyRoom& room);
  void ScanTasks(DirtyRoom& room);
  // The best fit for work that fit on no ONLINE worker at the last scan: only
  // a worker in `room` can take it now. Same answer as the full index.
  uint64_t BestFitOnDirty(
      const DirtyRoom& room, const sm::Amounts& need,
      const google::protobuf::RepeatedPtrField<std::string>& features,
      uint64_t exclude) const;

  void Reserve(cluster::WorkerRecord& worker, const sm::Amounts& amounts);
  void Release(uint64_t worker_id, const sm::Amounts& amounts);
  void SyncIndex(const cluster::WorkerRecord& worker);
  void AssignTask(cluster::TaskRecord& task, cluster::WorkerRecord& worker);
  // Returns an ASSIGNED/RUNNING task to PENDING (not counted as a failure).
  void RequeueTask(cluster::TaskRecord& task);
  // The deadline index: a task enters it when it becomes RUNNING (if it has
  // a timeout) and leaves it before its state changes again. `key` is the
  // task's key in tasks_ (the index views it).
  void TrackDeadline(const std::string& key, const cluster::TaskRecord& task);
  void UntrackDeadline(const cluster::TaskRecord& task);
  // Sets a task finished in `state` at the current clock and indexes it for
  // the retention rule (`key` as above). REQUIRES: the task holds no
  // reservation and is in no other index.
  void FinishTask(const std::string& key, cluster::TaskRecord& task,
                  cluster::TaskState state);
  // The retention rule (class comment): evicts the oldest finished tasks
  // while over the count bound or past the age bound. O(evicted * log n).
  void CollectFinishedTasks();
  void EnqueuePending(const cluster::TaskRecord& task, bool fresh);
  void DequeuePending(const cluster::TaskRecord& task);
  void RequeueWorkerWork(uint64_t node_id, bool vms_too);
  void UnplaceVm(cluster::VmRecord& vm);
  void PlaceVm(cluster::VmRecord& vm, cluster::WorkerRecord& worker);
  // Adds an unplaced VM to the waiting set (fresh: to be tried on every
  // worker at the next scan), or takes it out.
  void AddWaitingVm(const cluster::VmRecord& vm, bool fresh);
  void EraseWaitingVm(const cluster::VmRecord& vm);
  uint64_t BackoffMs(uint32_t failed_attempts) const;
  void RecordSession(uint64_t client_id, uint64_t sequence, Index index,
                     const cluster::Result& result);
  void FillPayload(Outcome&& outcome, cluster::Result& result) const;
  // Rebuilds every derived structure from the records.
  void RebuildDerived();

  ClusterStateMachineOptions options_;
  Index applied_index_;
  uint64_t now_ms_ = 0;

  // Records: the replicated state (what snapshots hold).
  std::map<uint64_t, cluster::WorkerRecord> workers_;
  std::map<std::string, cluster::TaskRecord, std::less<>> tasks_;
  std::map<std::string, cluster::VmRecord, std::less<>> vms_;
  std::map<std::string, cluster::KvEntry, std::less<>> kv_;
  std::map<uint64_t, cluster::ClientSession> sessions_;
  std::map<uint64_t, cluster::MemberRecord> members_;  // by node id

  // Derived from the records (rebuilt on restore).
  sm::PlacementIndex index_;                   // ONLINE workers
  std::map<PendingKey, sm::Amounts> pending_;  // eligible PENDING tasks -> need
  // Per dimension, the multiset of pending needs: when the room left on the
  // dirty workers is below the smallest need in some dimension, no old
  // pending task can fit and the scan stops early.
  struct NeedFloor {
    std::map<uint64_t, uint64_t> cpu, memory, disk;  // need -> task count
    void Add(const sm::Amounts& need);
    void Remove(const sm::Amounts& need);
    // True when some pending task might fit in `room`: the smallest need of
    // each dimension fits. False when there are no pending tasks.
    bool CoveredBy(const sm::Amounts& room) const;
  };
  NeedFloor need_floor_;
  // Pending tasks that became eligible since the last scan (new, requeued,
  // retry due). Every other pending task fits on no ONLINE worker outside
  // dirty_workers_, so the scan only tries those for it.
  std::set<PendingKey> fresh_;
  std::set<std::pair<uint64_t, std::string>, std::less<>> retry_timers_;
  std::set<std::pair<uint64_t, uint64_t>> offline_timers_;  // (deadline, node)
  ByWorker<cluster::TaskRecord> tasks_by_worker_;  // ASSIGNED/RUNNING tasks
  ByWorker<cluster::VmRecord> vms_by_worker_;      // placed VMs
  // Unplaced VMs by (create index, name) -> need: the need is kept here so
  // the scan can rule a VM out without looking up its record.
  std::map<std::pair<uint64_t, std::string>, sm::Amounts, std::less<>>
      waiting_vms_;
  NeedFloor waiting_vm_floor_;  // the needs of waiting_vms_
  // RUNNING tasks with a timeout by (deadline_ms, task id). The id is a view
  // of the task's key in tasks_ (std::map nodes never move, also across a
  // move of the whole state machine); the entry is erased before the record.
  using TaskKey = std::pair<uint64_t, absl::string_view>;
  std::map<TaskKey, const cluster::TaskRecord*> deadlines_;
  // Finished tasks by (finished_time_ms, task id): the eviction order of the
  // retention rule (same views as deadlines_).
  std::set<TaskKey> finished_;
  std::set<uint64_t> draining_workers_;
  std::set<std::pair<uint64_t, uint64_t>> session_lru_;  // (last_index, client)
  // Workers that gained free capacity or became ONLINE since the last scan.
  std::set<uint64_t> dirty_workers_;
  bool scan_needed_ = false;
  // VMs that started waiting, and workers that started draining, since the
  // last scan. Every other waiting VM, and every other VM on a draining
  // worker, fit on no (other) ONLINE worker at the end of the last scan, and
  // can fit now only on a worker that gained room since (dirty_workers_), so
  // the scan tries those against the dirty workers only (as fresh_ for
  // tasks). Placement only takes room from ONLINE workers during a scan, so
  // what did not fit when tried still does not fit when the scan ends.
  std::set<std::pair<uint64_t, std::string>, std::less<>> fresh_vms_;
  std::set<uint64_t> fresh_draining_;
};

// The canonical absl::Status for a Result's code and message (OK for
// RESULT_OK), for callers that report errors as Status.
absl::Status ResultToStatus(const cluster::Result& result);

}  // namespace blixard

#endif  // BLIXARD_CORE_SM_CLUSTER_STATE_MACHINE_H_
