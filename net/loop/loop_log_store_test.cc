// A SqliteLogStore driven by the EventLoop, as `blixard node` runs it: the
// store's I/O thread signals a Notifier when its completion queue goes from
// empty to non-empty; the loop wakes and runs PollCompletions(), so write
// callbacks run on the loop thread, in FIFO order, and the loop never
// blocks on disk.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/status_matchers.h"
#include "core/env.h"
#include "core/proto/raft.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/loop/event_loop.h"
#include "net/loop/notifier.h"
#include "storage/sqlite_log_store.h"
#include "storage/test_util.h"

namespace blixard::net {
namespace {

using ::blixard::testing::IsOk;

constexpr int64_t kPatienceUs = 60 * kMicrosPerSecond;

LogWrite EntryWrite(uint64_t index) {
  LogWrite write;
  raft::Entry& entry = write.entries.emplace_back();
  entry.set_index(index);
  entry.set_term(1);
  entry.set_data(absl::StrCat("entry ", index));
  if (index % 10 == 0) {
    raft::HardState hard_state;
    hard_state.set_term(1);
    hard_state.set_commit(index);
    write.hard_state = hard_state;
  }
  return write;
}

class LoopLogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    ASSERT_THAT(loop, IsOk());
    loop_ = std::move(*loop);
    absl::StatusOr<std::unique_ptr<Notifier>> notifier =
        Notifier::Create(loop_.get(), [this] { store_->PollCompletions(); });
    ASSERT_THAT(notifier, IsOk());
    notifier_ = std::move(*notifier);
    storage::SqliteLogStoreOptions options;
    options.path = dir_.File("node.db");
    options.wakeup = [n = notifier_.get()] { n->Notify(); };
    absl::StatusOr<std::unique_ptr<storage::SqliteLogStore>> store =
        storage::SqliteLogStore::Open(options);
    ASSERT_THAT(store, IsOk());
    store_ = std::move(*store);
  }
  void TearDown() override {
    // The store first: its I/O thread is the one calling Notify().
    if (store_ != nullptr) store_->CheckInvariants();
    store_.reset();
    if (notifier_ != nullptr) notifier_->CheckInvariants();
    notifier_.reset();
    if (loop_ != nullptr) loop_->CheckInvariants();
  }

  storage::ScratchDir dir_{/*prefer_tmpfs=*/true};
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<storage::SqliteLogStore> store_;
};

TEST_F(LoopLogStoreTest, WritesCompleteInFifoOrderOnTheLoopThread) {
  constexpr uint64_t kWrites = 300;
  constexpr uint64_t kInFlightMax = 8;
  std::vector<uint64_t> completed;  // loop thread only
  bool off_thread = false;
  uint64_t next = 1;
  uint64_t in_flight = 0;
  // Keeps up to kInFlightMax writes queued; every callback queues more, as
  // the Host queues its next Ready's write from a durability callback.
  std::function<void()> fill = [&] {
    while (in_flight < kInFlightMax && next <= kWrites) {
      const uint64_t index = next++;
      ++in_flight;
      store_->Write(EntryWrite(index), [&, index] {
        if (!loop_->InLoopThread()) off_thread = true;
        completed.push_back(index);
        --in_flight;
        if (completed.size() == kWrites) {
          loop_->Stop();
        } else {
          fill();
        }
      });
    }
  };
  bool watchdog_fired = false;
  loop_->AddTimerAt(loop_->clock().NowMicros() + kPatienceUs, [&] {
    watchdog_fired = true;
    loop_->Stop();
  });
  fill();
  EXPECT_TRUE(completed.empty());  // never inside Write
  loop_->Run();

  EXPECT_FALSE(watchdog_fired) << completed.size() << " of " << kWrites;
  EXPECT_FALSE(off_thread);
  ASSERT_EQ(completed.size(), kWrites);
  for (uint64_t i = 0; i < kWrites; ++i) ASSERT_EQ(completed[i], i + 1);
  ASSERT_OK_AND_ASSIGN(const Index last, store_->LastIndex());
  EXPECT_EQ(last, Index(kWrites));
  // One wake can carry several commits' completions, and one commit
  // carries several writes: never more wakes than commits.
  EXPECT_GE(notifier_->wakes(), 1u);
  EXPECT_LE(notifier_->wakes(), store_->commit_count());
  EXPECT_LE(store_->commit_count(), kWrites);
}

TEST_F(LoopLogStoreTest, ABurstQueuedAtOnceCompletesInOrder) {
  constexpr uint64_t kWrites = 1000;
  std::vector<uint64_t> completed;
  for (uint64_t index = 1; index <= kWrites; ++index) {
    store_->Write(EntryWrite(index), [&, index] {
      completed.push_back(index);
      if (completed.size() == kWrites) loop_->Stop();
    });
  }
  bool watchdog_fired = false;
  loop_->AddTimerAt(loop_->clock().NowMicros() + kPatienceUs, [&] {
    watchdog_fired = true;
    loop_->Stop();
  });
  loop_->Run();
  EXPECT_FALSE(watchdog_fired);
  ASSERT_EQ(completed.size(), kWrites);
  for (uint64_t i = 0; i < kWrites; ++i) ASSERT_EQ(completed[i], i + 1);
  absl::StatusOr<raft::HardState> hard_state = store_->ReadHardState();
  ASSERT_THAT(hard_state, IsOk());
  EXPECT_EQ(hard_state->commit(), kWrites);
}

}  // namespace
}  // namespace blixard::net
