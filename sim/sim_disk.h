// SimDisk: the simulator's LogStore (core/env.h), in memory, deterministic,
// with the failures a real disk has.
//
// Time. SimDisk owns no clock and no thread. Each Write() draws a latency
// from SimDisk's own Rng and asks `options.schedule` to call it back after
// that much virtual time; the simulator's event queue (or a test's trivial
// queue) decides when that is. Writes may land out of order, as concurrent
// I/O does, but they become durable and complete strictly in FIFO order: a
// write completes only when it and every earlier write have landed. Its
// callback then runs at once, inside the scheduled event, on the owner's
// (the simulator's only) thread, so PollCompletions() is a no-op.
//
// Crashes. Crash(tear) models power loss: every write not yet completed is
// lost and its callback never runs. With `tear`, the oldest lost write was
// being written: a random prefix of its bytes reaches the disk as a torn
// record (a quarter of the time all of them). Recovery (on the next read or write) checks the record's checksum:
// a complete record is applied (the write landed; it was just never
// acknowledged), a torn one is dropped, or with `report_torn_writes`
// reported as DATA_LOSS naming the write's first index. Every stored entry
// also carries a checksum checked on each read, so SimDisk never returns a
// silently wrong entry.
//
// Identity. The store's identity (core/env.h: ids, store nonce, confirmed
// bit) is part of the durable state like the hard state: recorded when the
// write carrying it completes, lost with it if that write was not synced at
// a crash (a store confirmed by a lost write reads unconfirmed again), torn
// with it if that write was in flight.
//
// Errors. Reads fail with UNAVAILABLE at `read_error_per_million`. A write
// fails at `write_error_per_million`; a failed durable write is fatal by the
// LogStore contract, so SimDisk calls `on_write_error` (the simulator crashes
// the node; the default CHECK-fails), completes nothing more and waits for
// Crash().
//
// Determinism: no clocks, threads, std random or unordered iteration; the
// same seed and the same schedule give the same run. Not thread-safe.
//
//   SimDiskOptions options;
//   options.seed = world_rng.Fork("disk/n1").Next();
//   options.schedule = [&world](uint64_t delay_us, std::function<void()> fn) {
//     world.After(delay_us, std::move(fn));
//   };
//   options.on_write_error = [&world] { world.CrashNode(1); };
//   SimDisk disk(std::move(options));
#ifndef BLIXARD_SIM_SIM_DISK_H_
#define BLIXARD_SIM_SIM_DISK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/rng.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/proto/raft.pb.h"

namespace blixard::sim {

inline constexpr uint64_t kSimDiskPerMillion = 1'000'000;
// Bound on queued (not yet completed) writes: a Host that outruns its disk
// this far is a bug, not a workload.
inline constexpr uint64_t kSimDiskPendingWritesMax = 1 << 16;

struct SimDiskOptions {
  // Calls `fn` after `delay_us` of virtual time. REQUIRED. Must not call
  // `fn` from inside `schedule` (callbacks never run inside Write()).
  std::function<void(uint64_t delay_us, std::function<void()> fn)> schedule;
  // Seed of SimDisk's own Rng (latencies, errors, tears).
  uint64_t seed = 1;
  // Each write's latency is uniform in [min, max] microseconds.
  uint64_t write_latency_us_min = 50;
  uint64_t write_latency_us_max = 2000;
  // Injected error rates, per million operations. <= kSimDiskPerMillion.
  uint64_t read_error_per_million = 0;
  uint64_t write_error_per_million = 0;
  // Called when an injected write error happens (a failed durable write is
  // fatal). Empty: CHECK-fail, as the production store does.
  std::function<void()> on_write_error;
  // At recovery, a torn write is reported as DATA_LOSS (the node refuses to
  // start) instead of being dropped.
  bool report_torn_writes = false;
};

// The bytes a write occupies on the simulated disk: what a crash can tear
// (their length decides where a tear falls). The identity, when present,
// comes last (cluster id, node id, store nonce, confirmed), so a write
// without one keeps the bytes, the tear points and so every simulation
// trace it had before stores recorded identities. Exposed for tests.
std::string SimDiskRecordBytes(const LogWrite& write);

class SimDisk final : public LogStore {
 public:
  // CHECK-fails on invalid options (a simulator configuration bug): missing
  // schedule, latency min > max, rates above one million.
  explicit SimDisk(SimDiskOptions options);
  // Events already scheduled may still fire later; they do nothing.
  ~SimDisk() override;

  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  // LogStore. REQUIRES (CHECKed; those that need the stored log when the
  // write lands): the REQUIRES of LogWrite in core/env.h (snapshot index > 0;
  // entries consecutive with non-decreasing terms, the first above the
  // snapshot index and at most the last index + 1; commit within the log;
  // compact_to at most the snapshot index; an identity that is valid and
  // one the stored or queued identity, if any, MayBecome, checked when
  // queued and again when it lands); fewer than
  // kSimDiskPendingWritesMax queued writes; and, with report_torn_writes, no
  // torn write reported (a node whose disk said DATA_LOSS must not start).
  void Write(LogWrite write, Done done) override;
  void PollCompletions() override {}
  // Reads see the durable state: every completed write, nothing queued.
  absl::StatusOr<raft::HardState> ReadHardState() override;
  absl::StatusOr<std::optional<raft::Snapshot>> ReadSnapshot() override;
  absl::StatusOr<Index> FirstIndex() override;
  absl::StatusOr<Index> LastIndex() override;
  absl::StatusOr<std::vector<raft::Entry>> ReadEntries(Index lo,
                                                       Index hi) override;
  absl::StatusOr<Term> ReadTerm(Index index) override;
  absl::StatusOr<std::optional<StoreIdentity>> ReadIdentity() override;

  // Power loss (see the file comment). Scheduled events from before the
  // crash become no-ops. The disk then serves the restarted node.
  void Crash(bool tear);

  // Injected error rates, changeable during a run (fault episodes).
  // REQUIRES: per_million <= kSimDiskPerMillion.
  void SetWriteErrorPerMillion(uint64_t per_million);
  void SetReadErrorPerMillion(uint64_t per_million);

  // Flips a byte of the stored entry at `index` (a bad sector), for tests of
  // the checksum path. REQUIRES: the entry is stored and has data.
  void CorruptEntryForTesting(Index index);

  uint64_t pending_write_count() const { return pending_.size(); }
  uint64_t completed_write_count() const { return completed_writes_; }
  bool failed() const { return failed_; }

  void CheckInvariants() const;

 private:
  struct StoredEntry {
    raft::Entry entry;
    uint64_t checksum = 0;
  };
  struct PendingWrite {
    uint64_t seq = 0;
    LogWrite write;
    Done done;
    bool landed = false;
  };
  // The bytes of a write that was being written at a crash.
  struct TornRecord {
    LogWrite write;
    std::string bytes;      // a prefix of the full record, maybe all of it
    uint64_t checksum = 0;  // of the full record
  };

  void Land(uint64_t epoch, uint64_t seq);
  // Makes `write` durable; consumes its entries.
  void Apply(LogWrite&& write);
  // Resolves a torn record left by a crash; DATA_LOSS in report mode.
  absl::Status Recover();
  absl::Status ReadFault();
  Index DurableFirstIndex() const;
  Index DurableLastIndex() const;
  Index snapshot_index() const;
  // The identity the store will hold once every queued write completes.
  std::optional<StoreIdentity> QueuedIdentity() const;

  SimDiskOptions options_;
  // Independent sub-streams of options.seed, so that e.g. adding reads never
  // shifts the latencies of later writes.
  Rng latency_rng_;
  Rng write_error_rng_;
  Rng read_error_rng_;
  Rng tear_rng_;

  // Durable state.
  raft::HardState hard_state_;
  std::optional<raft::Snapshot> snapshot_;
  std::vector<StoredEntry> entries_;  // contiguous from snapshot index + 1
  std::optional<TornRecord> torn_;
  std::optional<StoreIdentity> identity_;

  // Queued writes, oldest first.
  std::deque<PendingWrite> pending_;
  uint64_t next_seq_ = 0;
  uint64_t epoch_ = 0;  // bumped by Crash(): stale events are ignored
  uint64_t completed_writes_ = 0;
  bool failed_ = false;
  // Scheduled events hold a weak_ptr to this; destroying the disk expires it.
  std::shared_ptr<SimDisk*> alive_;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_SIM_DISK_H_
