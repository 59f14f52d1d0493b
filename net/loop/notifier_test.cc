#include "net/loop/notifier.h"

#include <atomic>
#include <memory>
#include <thread>
#include <utility>

#include "absl/time/time.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "net/loop/event_loop.h"

namespace blixard::net {
namespace {

using ::blixard::testing::IsOk;

constexpr int64_t kPatienceUs = 20 * kMicrosPerSecond;

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    ASSERT_THAT(loop, IsOk());
    loop_ = std::move(*loop);
  }
  std::unique_ptr<EventLoop> loop_;
};

TEST_F(NotifierTest, NotifiesBeforeTheLoopLooksCoalesceIntoOneCallback) {
  int calls = 0;
  absl::StatusOr<std::unique_ptr<Notifier>> notifier =
      Notifier::Create(loop_.get(), [&calls] { ++calls; });
  ASSERT_THAT(notifier, IsOk());
  (*notifier)->CheckInvariants();
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 0u);
  (*notifier)->Notify();
  (*notifier)->Notify();
  (*notifier)->Notify();
  EXPECT_EQ(calls, 0);  // never inside Notify
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ((*notifier)->wakes(), 1u);
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 0u);
  notifier->reset();
  EXPECT_EQ(loop_->fd_count(), 0u);
  loop_->CheckInvariants();
}

TEST_F(NotifierTest, NotifyDuringTheCallbackRunsItAgain) {
  int calls = 0;
  Notifier* self = nullptr;
  absl::StatusOr<std::unique_ptr<Notifier>> notifier =
      Notifier::Create(loop_.get(), [&] {
        // The eventfd was consumed before this callback: a Notify now (an
        // item that arrives while we drain) must not be lost.
        if (++calls == 1) self->Notify();
      });
  ASSERT_THAT(notifier, IsOk());
  self = notifier->get();
  self->Notify();
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(calls, 2);
}

TEST_F(NotifierTest, NotifyFromAnotherThreadRunsTheCallbackOnTheLoopThread) {
  constexpr int kRounds = 1000;
  std::atomic<int> handled{0};
  bool off_thread = false;
  absl::StatusOr<std::unique_ptr<Notifier>> notifier =
      Notifier::Create(loop_.get(), [&] {
        if (!loop_->InLoopThread()) off_thread = true;
        handled.fetch_add(1);
      });
  ASSERT_THAT(notifier, IsOk());
  Notifier* raw = notifier->get();
  // Ping-pong: each Notify waits until the loop has handled the one before,
  // so every round is one wake of the loop from the other thread.
  std::thread producer([&] {
    for (int i = 0; i < kRounds; ++i) {
      while (handled.load() < i) std::this_thread::yield();
      raw->Notify();
    }
  });
  const MonoMicros give_up = loop_->clock().NowMicros() + kPatienceUs;
  while (handled.load() < kRounds && loop_->clock().NowMicros() < give_up) {
    loop_->RunOnce(absl::Milliseconds(100));
  }
  producer.join();
  EXPECT_EQ(handled.load(), kRounds);
  EXPECT_FALSE(off_thread);
}

}  // namespace
}  // namespace blixard::net
