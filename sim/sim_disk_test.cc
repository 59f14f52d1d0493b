// SimDisk: the shared LogStore conformance suite, then what only the
// simulated disk has: latency from its own Rng, FIFO completion of writes
// that land out of order, crashes that lose unsynced writes and tear the one
// in flight, injected errors, determinism.
#include "sim/sim_disk.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/base/rng.h"
#include "core/base/status_matchers.h"
#include "core/testing/log_store_conformance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::LogModel;
using ::blixard::testing::LogStoreConformanceParam;
using ::blixard::testing::LogStoreConformanceTest;
using ::blixard::testing::LogStoreHarness;
using ::blixard::testing::LogWorkload;
using ::blixard::testing::LogWorkloadOptions;
using ::blixard::testing::MakeEntries;
using ::blixard::testing::StatusIs;
using ::blixard::testing::StoreDigest;
using ::blixard::testing::StoreMatchesModel;
using ::testing::HasSubstr;

// The trivial event queue the tests drive SimDisk with: events ordered by
// (virtual time, insertion order).
class EventQueue {
 public:
  void Schedule(uint64_t delay_us, std::function<void()> fn) {
    events_.emplace(std::make_pair(now_us_ + delay_us, next_seq_++),
                    std::move(fn));
  }
  // Runs the earliest event; false when there is none.
  bool RunOne() {
    if (events_.empty()) return false;
    auto it = events_.begin();
    now_us_ = it->first.first;
    std::function<void()> fn = std::move(it->second);
    events_.erase(it);
    fn();
    return true;
  }
  void RunAll() {
    while (RunOne()) {
    }
  }
  void Clear() { events_.clear(); }
  uint64_t now_us() const { return now_us_; }
  size_t size() const { return events_.size(); }

  std::function<void(uint64_t, std::function<void()>)> Hook() {
    return [this](uint64_t delay_us, std::function<void()> fn) {
      Schedule(delay_us, std::move(fn));
    };
  }

 private:
  uint64_t now_us_ = 0;
  uint64_t next_seq_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, std::function<void()>> events_;
};

class SimDiskHarness : public LogStoreHarness {
 public:
  SimDiskHarness() {
    SimDiskOptions options;
    options.schedule = queue_.Hook();
    options.seed = 42;
    disk_ = std::make_unique<SimDisk>(std::move(options));
  }
  LogStore& store() override { return *disk_; }
  void Settle() override {
    queue_.RunAll();
    disk_->CheckInvariants();
  }
  // A clean restart: nothing is pending, so a crash loses nothing.
  void Reopen() override {
    ASSERT_EQ(disk_->pending_write_count(), 0u);
    disk_->Crash(/*tear=*/false);
  }

 private:
  EventQueue queue_;
  std::unique_ptr<SimDisk> disk_;
};

INSTANTIATE_TEST_SUITE_P(
    SimDisk, LogStoreConformanceTest,
    ::testing::Values(LogStoreConformanceParam{
        "SimDisk", [] { return std::make_unique<SimDiskHarness>(); }}),
    ::blixard::testing::LogStoreConformanceParamName);

class SimDiskTest : public ::testing::Test {
 protected:
  SimDiskOptions Options(uint64_t seed = 1) {
    SimDiskOptions options;
    options.schedule = queue_.Hook();
    options.seed = seed;
    return options;
  }
  EventQueue queue_;
};

LogWrite Append(uint64_t first, uint64_t count, uint64_t term) {
  LogWrite write;
  write.entries = MakeEntries(first, count, term);
  return write;
}

LogWrite IdentityOnly(const StoreIdentity& identity) {
  LogWrite write;
  write.identity = identity;
  return write;
}

TEST_F(SimDiskTest, CompletionsAreFifoAlthoughWritesLandOutOfOrder) {
  SimDiskOptions options = Options();
  options.write_latency_us_min = 1;
  options.write_latency_us_max = 100000;  // wide: landings reorder
  SimDisk disk(std::move(options));
  std::vector<int> done;
  std::vector<uint64_t> done_at_us;
  for (int i = 0; i < 200; ++i) {
    disk.Write(Append(static_cast<uint64_t>(i) + 1, 1, 1), [&, i] {
      done.push_back(i);
      done_at_us.push_back(queue_.now_us());
    });
  }
  EXPECT_TRUE(done.empty());
  queue_.RunAll();
  ASSERT_EQ(done.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(done[i], i);
  // Several writes completed in the same event: a late landing released a
  // prefix of writes that had landed before it.
  int batched = 0;
  for (size_t i = 1; i < done_at_us.size(); ++i) {
    if (done_at_us[i] == done_at_us[i - 1]) ++batched;
  }
  EXPECT_GT(batched, 0);
  disk.CheckInvariants();
}

TEST_F(SimDiskTest, LatencyStaysWithinBounds) {
  SimDiskOptions options = Options();
  options.write_latency_us_min = 300;
  options.write_latency_us_max = 400;
  SimDisk disk(std::move(options));
  uint64_t done_at_us = 0;
  disk.Write(Append(1, 1, 1), [&] { done_at_us = queue_.now_us(); });
  queue_.RunAll();
  EXPECT_GE(done_at_us, 300u);
  EXPECT_LE(done_at_us, 400u);
}

// Runs a workload with the given seed and returns the completion times.
std::vector<uint64_t> CompletionTrace(uint64_t seed) {
  EventQueue queue;
  SimDiskOptions options;
  options.schedule = queue.Hook();
  options.seed = seed;
  SimDisk disk(std::move(options));
  std::vector<uint64_t> trace;
  for (uint64_t i = 0; i < 100; ++i) {
    disk.Write(Append(i + 1, 1, 1), [&] { trace.push_back(queue.now_us()); });
    if (i % 7 == 0) queue.RunOne();
  }
  queue.RunAll();
  return trace;
}

TEST_F(SimDiskTest, SameSeedSameRun) {
  EXPECT_EQ(CompletionTrace(9), CompletionTrace(9));
  EXPECT_NE(CompletionTrace(9), CompletionTrace(10));
}

TEST_F(SimDiskTest, CrashLosesUnsyncedWritesAndTheirCallbacks) {
  SimDisk disk(Options());
  int done = 0;
  disk.Write(Append(1, 5, 1), [&] { ++done; });
  queue_.RunAll();
  disk.Write(Append(6, 5, 1), [&] { ++done; });
  disk.Write(Append(11, 5, 1), [&] { ++done; });
  disk.Crash(/*tear=*/false);
  queue_.RunAll();  // stale events do nothing
  EXPECT_EQ(done, 1);
  EXPECT_EQ(*disk.LastIndex(), Index(5));
  disk.CheckInvariants();
}

TEST_F(SimDiskTest, TornWriteIsDroppedOrAppliedWholeNeverHalf) {
  // Many crashes with a tear: afterwards the disk holds exactly the state
  // after the completed writes, or after one more (the torn record was
  // complete). Never anything in between.
  Rng rng(5);
  int dropped = 0;
  int applied = 0;
  for (int round = 0; round < 300; ++round) {
    EventQueue queue;
    SimDiskOptions options;
    options.schedule = queue.Hook();
    options.seed = rng.Next();
    SimDisk disk(std::move(options));
    LogWorkloadOptions workload_options;
    // Unconfirmed: some rounds tear the write that confirms it.
    workload_options.identity =
        StoreIdentity{0xabcdef0123456789, NodeId(2), 0x5eed, false};
    LogWorkload workload(rng.Fork(static_cast<uint64_t>(round)),
                         workload_options);
    std::vector<uint64_t> digests;  // digests[k]: state after k writes
    LogModel model;
    digests.push_back(model.Digest());
    uint64_t completed = 0;
    const uint64_t writes = rng.Range(1, 30);
    for (uint64_t i = 0; i < writes; ++i) {
      LogWrite write = workload.Next(model);
      model.Apply(write);
      digests.push_back(model.Digest());
      disk.Write(std::move(write), [&] { ++completed; });
      if (rng.Chance(1, 2)) queue.RunOne();
    }
    disk.Crash(/*tear=*/true);
    ASSERT_OK_AND_ASSIGN(uint64_t digest, StoreDigest(disk));
    if (digest == digests[completed]) {
      ++dropped;
    } else {
      ASSERT_LT(completed + 1, digests.size()) << "round " << round;
      ASSERT_EQ(digest, digests[completed + 1]) << "round " << round;
      ++applied;
    }
    disk.CheckInvariants();
  }
  EXPECT_GT(dropped, 0);
  EXPECT_GT(applied, 0);
}

TEST_F(SimDiskTest, TornWriteCanBeReportedAsDataLoss) {
  SimDiskOptions options = Options(3);
  options.report_torn_writes = true;
  SimDisk disk(std::move(options));
  disk.Write(Append(1, 3, 1), [] {});
  queue_.RunAll();
  // Large enough that a random cut almost surely tears it; retry until torn.
  bool reported = false;
  for (int attempt = 0; attempt < 20 && !reported; ++attempt) {
    disk.Write(Append(4, 8, 1), [] {});
    disk.Crash(/*tear=*/true);
    absl::StatusOr<Index> last = disk.LastIndex();
    if (!last.ok()) {
      EXPECT_THAT(last, StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("torn write at index 4")));
      reported = true;
    } else {
      // The record was whole: the write landed.
      EXPECT_EQ(*last, Index(11));
      disk.Write(Append(4, 1, 2), [] {});
      queue_.RunAll();
    }
  }
  EXPECT_TRUE(reported);
}

TEST_F(SimDiskTest, IdentityOfAWriteLostAtACrashWasNeverRecorded) {
  SimDisk disk(Options());
  disk.Write(Append(1, 3, 1), [] {});
  queue_.RunAll();
  LogWrite write = Append(4, 2, 1);
  write.identity = StoreIdentity{7, NodeId(1)};
  disk.Write(std::move(write), [] {});
  disk.Crash(/*tear=*/false);
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       disk.ReadIdentity());
  EXPECT_FALSE(identity.has_value());
  EXPECT_EQ(*disk.LastIndex(), Index(3));
  // Never recorded, so the store has no owner yet: another may claim it.
  LogWrite other;
  other.identity = StoreIdentity{8, NodeId(2)};
  disk.Write(std::move(other), [] {});
  queue_.RunAll();
  ASSERT_OK_AND_ASSIGN(identity, disk.ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(StoreIdentity{8, NodeId(2)}));
}

TEST_F(SimDiskTest, IdentityInATornWriteIsKeptOrDroppedWithTheWrite) {
  // The record in flight at a crash is applied whole or not at all; the
  // identity it carries goes the same way as its entries.
  const StoreIdentity identity{0xfeed, NodeId(5)};
  int kept = 0;
  int dropped = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    EventQueue queue;
    SimDiskOptions options;
    options.schedule = queue.Hook();
    options.seed = seed;
    SimDisk disk(std::move(options));
    disk.Write(Append(1, 2, 1), [] {});
    queue.RunAll();
    LogWrite write = Append(3, 4, 1);
    write.identity = identity;
    disk.Write(std::move(write), [] {});
    disk.Crash(/*tear=*/true);
    ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> read,
                         disk.ReadIdentity());
    ASSERT_OK_AND_ASSIGN(Index last, disk.LastIndex());
    if (read.has_value()) {
      EXPECT_EQ(*read, identity);
      EXPECT_EQ(last, Index(6)) << "seed " << seed;
      ++kept;
    } else {
      EXPECT_EQ(last, Index(2)) << "seed " << seed;
      ++dropped;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(dropped, 0);
}

constexpr StoreIdentity kUnconfirmed{0xfeed, NodeId(5), 0x8000000000000001,
                                     /*confirmed=*/false};
constexpr StoreIdentity kConfirmed{0xfeed, NodeId(5), 0x8000000000000001,
                                   /*confirmed=*/true};

TEST_F(SimDiskTest, ConfirmationLostAtACrashReadsUnconfirmed) {
  SimDisk disk(Options());
  LogWrite first = Append(1, 2, 1);
  first.identity = kUnconfirmed;
  disk.Write(std::move(first), [] {});
  queue_.RunAll();
  LogWrite confirm = Append(3, 1, 1);
  confirm.identity = kConfirmed;
  disk.Write(std::move(confirm), [] {});
  disk.Crash(/*tear=*/false);
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       disk.ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kUnconfirmed));
  // The lost confirmation does not count: the store may be written
  // unconfirmed again, then confirmed for good.
  disk.Write(IdentityOnly(kUnconfirmed), [] {});
  disk.Write(IdentityOnly(kConfirmed), [] {});
  queue_.RunAll();
  disk.Crash(/*tear=*/false);
  ASSERT_OK_AND_ASSIGN(identity, disk.ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kConfirmed));
  disk.CheckInvariants();
}

TEST_F(SimDiskTest, TornConfirmationIsKeptOrDroppedWhole) {
  int kept = 0;
  int dropped = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    EventQueue queue;
    SimDiskOptions options;
    options.schedule = queue.Hook();
    options.seed = seed;
    SimDisk disk(std::move(options));
    disk.Write(IdentityOnly(kUnconfirmed), [] {});
    queue.RunAll();
    disk.Write(IdentityOnly(kConfirmed), [] {});
    disk.Crash(/*tear=*/true);
    ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> read,
                         disk.ReadIdentity());
    ASSERT_TRUE(read.has_value());
    if (read->confirmed) {
      EXPECT_EQ(*read, kConfirmed) << "seed " << seed;
      ++kept;
    } else {
      EXPECT_EQ(*read, kUnconfirmed) << "seed " << seed;
      ++dropped;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(dropped, 0);
}

TEST(SimDiskRecordTest, IdentityBytesComeLastAndCoverNonceAndConfirmed) {
  LogWrite write = Append(1, 2, 1);
  raft::HardState hs;
  hs.set_term(1);
  hs.set_commit(2);
  write.hard_state = hs;
  const std::string plain = SimDiskRecordBytes(write);
  // Pinned: a write without an identity keeps the bytes (so the tear points
  // and every simulation trace) it had before stores recorded identities.
  EXPECT_EQ(plain.size(), 72u);
  EXPECT_EQ(StableHash64(plain), 0xc3d9cab374591e68u);
  write.identity = kUnconfirmed;
  const std::string unconfirmed = SimDiskRecordBytes(write);
  ASSERT_EQ(unconfirmed.size(), plain.size() + 4 * 8);
  EXPECT_EQ(unconfirmed.substr(0, plain.size()), plain);
  write.identity = kConfirmed;
  const std::string confirmed = SimDiskRecordBytes(write);
  ASSERT_EQ(confirmed.size(), unconfirmed.size());
  EXPECT_NE(confirmed, unconfirmed);
  write.identity->store_nonce += 1;
  EXPECT_NE(SimDiskRecordBytes(write), confirmed);
}

TEST_F(SimDiskTest, CorruptEntryIsDataLossNamingTheIndex) {
  SimDisk disk(Options());
  disk.Write(Append(1, 10, 1), [] {});
  queue_.RunAll();
  disk.CorruptEntryForTesting(Index(6));
  EXPECT_THAT(disk.ReadEntries(Index(1), Index(11)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("index 6")));
  EXPECT_THAT(disk.ReadTerm(Index(6)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("index 6")));
  EXPECT_THAT(disk.ReadEntries(Index(1), Index(6)), IsOk());
}

TEST_F(SimDiskTest, InjectedReadErrors) {
  SimDiskOptions options = Options();
  options.read_error_per_million = kSimDiskPerMillion;
  SimDisk disk(std::move(options));
  EXPECT_THAT(disk.ReadHardState(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(disk.ReadEntries(Index(1), Index(1)),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(SimDiskTest, ReadErrorRateIsRoughlyRespected) {
  SimDiskOptions options = Options();
  options.read_error_per_million = 100000;  // 10%
  SimDisk disk(std::move(options));
  int errors = 0;
  for (int i = 0; i < 10000; ++i) {
    if (!disk.ReadHardState().ok()) ++errors;
  }
  EXPECT_GT(errors, 800);
  EXPECT_LT(errors, 1200);
}

TEST_F(SimDiskTest, InjectedWriteErrorIsFatalThroughTheHook) {
  SimDiskOptions options = Options();
  options.write_error_per_million = kSimDiskPerMillion;
  int fatal = 0;
  options.on_write_error = [&] { ++fatal; };
  SimDisk disk(std::move(options));
  int done = 0;
  disk.Write(Append(1, 1, 1), [&] { ++done; });
  disk.Write(Append(2, 1, 1), [&] { ++done; });
  queue_.RunAll();
  EXPECT_EQ(fatal, 1);
  EXPECT_EQ(done, 0);
  EXPECT_TRUE(disk.failed());
  disk.Crash(/*tear=*/false);
  EXPECT_FALSE(disk.failed());
  EXPECT_EQ(*disk.LastIndex(), Index(0));
}

TEST(SimDiskDeathTest, InjectedWriteErrorWithoutHookCrashes) {
  EventQueue queue;
  SimDiskOptions options;
  options.schedule = queue.Hook();
  options.write_error_per_million = kSimDiskPerMillion;
  SimDisk disk(std::move(options));
  disk.Write(Append(1, 1, 1), [] {});
  EXPECT_DEATH(queue.RunAll(), "injected write error");
}

TEST(SimDiskDeathTest, GapIsACallerBug) {
  EventQueue queue;
  SimDiskOptions options;
  options.schedule = queue.Hook();
  SimDisk disk(std::move(options));
  disk.Write(Append(5, 1, 1), [] {});
  EXPECT_DEATH(queue.RunAll(), "gap");
}

TEST_F(SimDiskTest, CrashRecoveryUnderRandomWorkloadKeepsEveryAckedWrite) {
  // 2,000 crash points: after each crash the disk holds the state after
  // exactly the completed writes, or one more whose record was whole.
  Rng rng(11);
  SimDiskOptions options = Options(77);
  SimDisk disk(std::move(options));
  LogWorkloadOptions workload_options;
  // Unconfirmed: crashes fall before, around and after the write that
  // confirms it (and may lose it: the workload then confirms again).
  workload_options.identity =
      StoreIdentity{0xabcdef0123456789, NodeId(2), 0x5eed, false};
  workload_options.identity_percent = 3;  // first recorded some crashes in
  LogWorkload workload(rng.Fork("workload"), workload_options);
  LogModel acked;  // state after the completed writes
  int crashes = 0;
  while (crashes < 2000) {
    std::vector<LogWrite> queued;
    LogModel tip = acked;
    std::vector<LogModel> after;  // after[i]: state after queued[0..i]
    const uint64_t writes = rng.Range(1, 6);
    uint64_t completed = 0;
    for (uint64_t i = 0; i < writes; ++i) {
      LogWrite write = workload.Next(tip);
      tip.Apply(write);
      after.push_back(tip);
      disk.Write(std::move(write), [&] { ++completed; });
    }
    const uint64_t events = rng.Range(0, writes + 1);
    for (uint64_t i = 0; i < events; ++i) queue_.RunOne();
    disk.Crash(rng.Chance(1, 2));
    queue_.Clear();
    ++crashes;
    LogModel expected = completed == 0 ? acked : after[completed - 1];
    if (!StoreMatchesModel(disk, expected).ok()) {
      ASSERT_LT(completed, after.size()) << "crash " << crashes;
      expected = after[completed];
      ASSERT_OK(StoreMatchesModel(disk, expected)) << "crash " << crashes;
    }
    acked = expected;
    disk.CheckInvariants();
  }
  EXPECT_EQ(crashes, 2000);
}

TEST_F(SimDiskTest, EventsOutlivingTheDiskDoNothing) {
  int done = 0;
  {
    SimDisk disk(Options());
    disk.Write(Append(1, 1, 1), [&] { ++done; });
  }
  EXPECT_EQ(queue_.size(), 1u);
  queue_.RunAll();  // must not touch the destroyed disk (ASan checks)
  EXPECT_EQ(done, 0);
}

}  // namespace
}  // namespace blixard::sim
