// A conformance suite for LogStore (core/env.h), one suite for every
// implementation: the production SqliteLogStore (storage/) and the
// simulator's SimDisk (sim/) must behave the same, so a bug found in
// simulation is a bug in production code. Test-only.
//
// Also exports the pieces the implementations' own crash tests reuse:
// LogModel (the reference semantics of LogWrite), LogWorkload (a seeded
// generator of valid Raft-shaped writes) and StoreMatchesModel().
//
// Instantiate in the implementation's test:
//
//   class SqliteHarness : public LogStoreHarness { ... };
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, LogStoreConformanceTest,
//       ::testing::Values(LogStoreConformanceParam{
//           "Sqlite", [] { return std::make_unique<SqliteHarness>(); }}),
//       LogStoreConformanceParamName);
#ifndef BLIXARD_CORE_TESTING_LOG_STORE_CONFORMANCE_H_
#define BLIXARD_CORE_TESTING_LOG_STORE_CONFORMANCE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/rng.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/proto/raft.pb.h"
#include "gtest/gtest.h"

namespace blixard::testing {

// The reference semantics of LogStore writes, in memory and obviously
// correct (slow is fine). See core/env.h for the order within one write.
class LogModel {
 public:
  // REQUIRES: the write satisfies LogStore::Write's REQUIRES.
  void Apply(const LogWrite& write);

  const raft::HardState& hard_state() const { return hard_state_; }
  const std::optional<raft::Snapshot>& snapshot() const { return snapshot_; }
  const std::optional<StoreIdentity>& identity() const { return identity_; }
  Index snapshot_index() const;
  Term snapshot_term() const;
  Index FirstIndex() const;
  Index LastIndex() const;
  // Term at `index` in [snapshot index, LastIndex()].
  Term TermAt(Index index) const;
  // Entries [FirstIndex(), LastIndex()].
  const std::vector<raft::Entry>& entries() const { return entries_; }

  // A stable digest of the whole state, equal to StoreDigest() of a store
  // that holds the same state.
  uint64_t Digest() const;

  void CheckInvariants() const;

 private:
  raft::HardState hard_state_;
  std::optional<raft::Snapshot> snapshot_;
  std::vector<raft::Entry> entries_;  // contiguous, from FirstIndex()
  std::optional<StoreIdentity> identity_;
};

// Reads everything a store holds and digests it like LogModel::Digest().
// Errors: whatever the store's reads return.
absl::StatusOr<uint64_t> StoreDigest(LogStore& store);

// OK when the store reads back exactly the model's state; otherwise an
// INTERNAL error describing the first difference (or the read's error).
absl::Status StoreMatchesModel(LogStore& store, const LogModel& model);

struct LogWorkloadOptions {
  uint64_t entry_data_bytes_max = 256;
  uint64_t entries_per_write_max = 8;
  uint64_t snapshot_data_bytes_max = 4096;
  // Out of 100 writes, roughly: this many carry a snapshot, ...
  uint64_t snapshot_percent = 5;
  uint64_t truncate_percent = 10;
  uint64_t hard_state_percent = 40;
  uint64_t compact_percent = 5;
  // When set, roughly identity_percent of the writes carry this identity
  // (a store's one owner). Unset: no write does, and the generator draws
  // exactly the numbers it drew before identities existed. An unconfirmed
  // identity is recorded unconfirmed (as a joiner's store is); once the
  // model holds it, each later identity write confirms the store with
  // chance 1 / confirm_one_in, and once the model holds it confirmed (so
  // not after a crash that lost the confirming write) every one does. A
  // confirmed identity draws exactly the numbers it drew before stores had
  // a confirmed bit.
  std::optional<StoreIdentity> identity;
  uint64_t identity_percent = 10;
  uint64_t confirm_one_in = 4;  // REQUIRES: >= 1
};

// A seeded generator of valid, Raft-shaped writes: appends at the end,
// appends that truncate a suffix under a new term, hard-state changes,
// snapshots that keep or discard the log, compaction, and (optionally) the
// store identity.
class LogWorkload {
 public:
  LogWorkload(Rng rng, LogWorkloadOptions options = {});
  // The next write, valid against `model` (the state after every earlier
  // write). Never empty.
  LogWrite Next(const LogModel& model);

 private:
  std::string RandomBytes(uint64_t max);

  Rng rng_;
  LogWorkloadOptions options_;
  uint64_t term_ = 1;
};

// One implementation under test, with the means to drive it.
class LogStoreHarness {
 public:
  virtual ~LogStoreHarness() = default;
  virtual LogStore& store() = 0;
  // Drives the store until every queued write is durable and its callback
  // has run (SqliteLogStore: wait, then PollCompletions; SimDisk: run the
  // scheduled events).
  virtual void Settle() = 0;
  // A clean restart over the same durable state: drop the store object and
  // open a new one. REQUIRES: settled.
  virtual void Reopen() = 0;
  // The largest snapshot the suite should try (bytes).
  virtual uint64_t large_snapshot_bytes() const { return 3 << 20; }
};

struct LogStoreConformanceParam {
  std::string name;
  std::function<std::unique_ptr<LogStoreHarness>()> make;
};

inline void PrintTo(const LogStoreConformanceParam& param, std::ostream* os) {
  *os << param.name;
}

inline std::string LogStoreConformanceParamName(
    const ::testing::TestParamInfo<LogStoreConformanceParam>& info) {
  return info.param.name;
}

class LogStoreConformanceTest
    : public ::testing::TestWithParam<LogStoreConformanceParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  LogStore& store() { return harness_->store(); }
  // Queues `write`, recording its completion order in `completed_`, and
  // applies it to `model_`.
  void Write(LogWrite write);
  // Settle, then require that the store matches the model.
  void SettleAndCompare();

  std::unique_ptr<LogStoreHarness> harness_;
  LogModel model_;
  std::vector<uint64_t>
      completed_;  // write sequence numbers, in callback order
  uint64_t writes_ = 0;
};

// Helpers for building writes in tests.
raft::Entry MakeEntry(uint64_t index, uint64_t term, absl::string_view data);
std::vector<raft::Entry> MakeEntries(uint64_t first_index, uint64_t count,
                                     uint64_t term);
raft::Snapshot MakeSnapshot(uint64_t index, uint64_t term,
                            absl::string_view data);

}  // namespace blixard::testing

#endif  // BLIXARD_CORE_TESTING_LOG_STORE_CONFORMANCE_H_
