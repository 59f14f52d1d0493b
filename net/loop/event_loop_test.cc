#include "net/loop/event_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/check.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Bounds every wait in these tests: a loop that never wakes fails the test
// (through the watchdog) instead of hanging it. Generous, since nothing here
// measures speed.
constexpr absl::Duration kPatience = absl::Seconds(20);

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
};

Pipe MakePipe() {
  int fds[2];
  CHECK_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void WriteByte(const UniqueFd& fd) {
  const char byte = 'x';
  CHECK_EQ(write(fd.get(), &byte, 1), 1);
}

void ReadByte(const UniqueFd& fd) {
  char byte = 0;
  CHECK_EQ(read(fd.get(), &byte, 1), 1);
}

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    ASSERT_THAT(loop, IsOk());
    loop_ = std::move(*loop);
  }
  void TearDown() override {
    if (loop_ != nullptr) loop_->CheckInvariants();
  }

  // Runs iterations until `done` or kPatience has passed on the loop clock.
  template <typename Done>
  void RunUntil(Done done) {
    const MonoMicros give_up =
        loop_->clock().NowMicros() + absl::ToInt64Microseconds(kPatience);
    while (!done()) {
      ASSERT_LT(loop_->clock().NowMicros(), give_up) << "loop never got there";
      loop_->RunOnce(absl::Milliseconds(100));
    }
  }

  // A timer that stops Run() and fails the test if it is still running
  // after kPatience.
  EventLoop::TimerHandle Watchdog() {
    return loop_->AddTimerAt(
        loop_->clock().NowMicros() + absl::ToInt64Microseconds(kPatience),
        [this] {
          ADD_FAILURE() << "watchdog: the loop did not stop in time";
          loop_->Stop();
        });
  }

  std::unique_ptr<EventLoop> loop_;
};

TEST_F(EventLoopTest, ReadableFdRunsItsCallbackLevelTriggered) {
  Pipe pipe = MakePipe();
  std::vector<uint32_t> seen;
  ASSERT_THAT(
      loop_->AddFd(pipe.read_end.get(), EventLoop::kReadable,
                   [&seen](uint32_t events) { seen.push_back(events); }),
      IsOk());
  EXPECT_TRUE(loop_->HasFd(pipe.read_end.get()));
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 0u);
  EXPECT_TRUE(seen.empty());

  WriteByte(pipe.write_end);
  EXPECT_TRUE(seen.empty());  // nothing runs outside RunOnce
  RunUntil([&] { return !seen.empty(); });
  EXPECT_THAT(seen, ElementsAre(EventLoop::kReadable));
  // Not consumed: level-triggered, so it is reported again.
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(seen.size(), 2u);
  ReadByte(pipe.read_end);
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 0u);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_THAT(loop_->RemoveFd(pipe.read_end.get()), IsOk());
  EXPECT_FALSE(loop_->HasFd(pipe.read_end.get()));
}

TEST_F(EventLoopTest, ModifyFdChangesTheInterest) {
  Pipe pipe = MakePipe();
  std::vector<uint32_t> seen;
  ASSERT_THAT(
      loop_->AddFd(pipe.write_end.get(), EventLoop::kWritable,
                   [&seen](uint32_t events) { seen.push_back(events); }),
      IsOk());
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_THAT(seen, ElementsAre(EventLoop::kWritable));

  ASSERT_THAT(loop_->ModifyFd(pipe.write_end.get(), 0), IsOk());
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 0u);
  ASSERT_THAT(loop_->ModifyFd(pipe.write_end.get(),
                              EventLoop::kReadable | EventLoop::kWritable),
              IsOk());
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_THAT(seen, ElementsAre(EventLoop::kWritable, EventLoop::kWritable));
  EXPECT_THAT(loop_->RemoveFd(pipe.write_end.get()), IsOk());
}

TEST_F(EventLoopTest, HangupIsReportedWhateverTheInterest) {
  Pipe pipe = MakePipe();
  uint32_t seen = 0;
  ASSERT_THAT(loop_->AddFd(pipe.read_end.get(), /*interest=*/0,
                           [&](uint32_t events) {
                             seen = events;
                             // What a connection does on hangup: stop
                             // watching (and close).
                             CHECK_OK(loop_->RemoveFd(pipe.read_end.get()));
                           }),
              IsOk());
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 0u);
  pipe.write_end.Reset();
  RunUntil([&] { return seen != 0; });
  EXPECT_NE(seen & EventLoop::kHangup, 0u);
  EXPECT_FALSE(loop_->HasFd(pipe.read_end.get()));
}

TEST_F(EventLoopTest, FdRemovedByAnEarlierCallbackOfTheBatchGetsNoCallback) {
  Pipe first = MakePipe();
  Pipe second = MakePipe();
  WriteByte(first.write_end);
  WriteByte(second.write_end);
  int calls = 0;
  // Whichever runs first removes the other, which is ready in the same
  // epoll batch: the other's callback must not run.
  ASSERT_THAT(loop_->AddFd(first.read_end.get(), EventLoop::kReadable,
                           [&](uint32_t) {
                             ++calls;
                             CHECK_OK(loop_->RemoveFd(second.read_end.get()));
                             CHECK_OK(loop_->RemoveFd(first.read_end.get()));
                           }),
              IsOk());
  ASSERT_THAT(loop_->AddFd(second.read_end.get(), EventLoop::kReadable,
                           [&](uint32_t) {
                             ++calls;
                             CHECK_OK(loop_->RemoveFd(first.read_end.get()));
                             CHECK_OK(loop_->RemoveFd(second.read_end.get()));
                           }),
              IsOk());
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop_->fd_count(), 0u);
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 0u);
}

TEST_F(EventLoopTest, CallbackMayRemoveItsOwnFdAndKeepUsingItsCaptures) {
  Pipe pipe = MakePipe();
  WriteByte(pipe.write_end);
  // Captures too big for std::function's inline buffer, so a callback
  // destroyed while running would read freed memory.
  const std::string name(100, 'n');
  std::string seen;
  ASSERT_THAT(loop_->AddFd(pipe.read_end.get(), EventLoop::kReadable,
                           [this, &pipe, &seen, name](uint32_t) {
                             CHECK_OK(loop_->RemoveFd(pipe.read_end.get()));
                             seen = name;
                           }),
              IsOk());
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(seen, name);
}

TEST_F(EventLoopTest, AnFdCanBeRemovedAndAddedAgain) {
  Pipe pipe = MakePipe();
  WriteByte(pipe.write_end);
  int old_calls = 0;
  int new_calls = 0;
  ASSERT_THAT(loop_->AddFd(pipe.read_end.get(), EventLoop::kReadable,
                           [&](uint32_t) { ++old_calls; }),
              IsOk());
  ASSERT_THAT(loop_->RemoveFd(pipe.read_end.get()), IsOk());
  ASSERT_THAT(loop_->AddFd(pipe.read_end.get(), EventLoop::kReadable,
                           [&](uint32_t) { ++new_calls; }),
              IsOk());
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(old_calls, 0);
  EXPECT_EQ(new_calls, 1);
  ASSERT_THAT(loop_->RemoveFd(pipe.read_end.get()), IsOk());
}

TEST_F(EventLoopTest, SetupErrorsNameTheSyscallTheFdAndErrno) {
  // A closed fd.
  Pipe pipe = MakePipe();
  const int closed = pipe.read_end.get();
  pipe.read_end.Reset();
  EXPECT_THAT(
      loop_->AddFd(closed, EventLoop::kReadable, [](uint32_t) {}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr(absl::StrCat("fcntl(F_GETFL) fd ", closed)),
                     HasSubstr("Bad file descriptor"))));
  // A regular file: epoll cannot watch it.
  const char* tmpdir = std::getenv("TEST_TMPDIR");
  const std::string path =
      absl::StrCat(tmpdir != nullptr ? tmpdir : "/tmp", "/regular_file");
  UniqueFd file(
      open(path.c_str(), O_CREAT | O_RDWR | O_NONBLOCK | O_CLOEXEC, 0600));
  ASSERT_TRUE(file.valid());
  EXPECT_THAT(
      loop_->AddFd(file.get(), EventLoop::kReadable, [](uint32_t) {}),
      StatusIs(absl::StatusCode::kPermissionDenied,
               AllOf(HasSubstr(absl::StrCat("epoll_ctl(ADD) fd ", file.get())),
                     HasSubstr("errno"))));
  EXPECT_FALSE(loop_->HasFd(file.get()));
  EXPECT_EQ(loop_->fd_count(), 0u);
}

TEST_F(EventLoopTest, BlockingFdIsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);  // blocking
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  EXPECT_DEATH(
      (void)loop_->AddFd(read_end.get(), EventLoop::kReadable, [](uint32_t) {}),
      "is blocking");
}

TEST_F(EventLoopTest, WaitsAtLeastTheTimeoutWhenNothingIsReady) {
  const MonoMicros before = loop_->clock().NowMicros();
  EXPECT_EQ(loop_->RunOnce(absl::Microseconds(2500)), 0u);
  EXPECT_GE(loop_->clock().NowMicros(), before + 2500);
}

// --- Timers. ---

TEST_F(EventLoopTest, TimersFireInDeadlineOrderThenAddOrder) {
  std::vector<std::string> fired;
  bool early = false;
  const MonoMicros base = loop_->clock().NowMicros();
  auto record = [&](std::string what, MonoMicros deadline) {
    return [&, what, deadline] {
      if (loop_->clock().NowMicros() < deadline) early = true;
      fired.push_back(what);
    };
  };
  loop_->AddTimerAt(base + 3000, record("c1", base + 3000));
  loop_->AddTimerAt(base + 1000, record("a", base + 1000));
  loop_->AddTimerAt(base + 3000, record("c2", base + 3000));
  const EventLoop::TimerHandle cancelled =
      loop_->AddTimerAt(base + 2000, record("cancelled", base + 2000));
  loop_->AddTimerAt(base + 3000, record("c3", base + 3000));
  EXPECT_EQ(loop_->timer_count(), 5u);
  EXPECT_TRUE(loop_->IsTimerPending(cancelled));
  EXPECT_TRUE(loop_->CancelTimer(cancelled));
  EXPECT_FALSE(loop_->CancelTimer(cancelled));
  EXPECT_FALSE(loop_->IsTimerPending(cancelled));
  loop_->CheckInvariants();
  RunUntil([&] { return loop_->timer_count() == 0; });
  EXPECT_THAT(fired, ElementsAre("a", "c1", "c2", "c3"));
  EXPECT_FALSE(early);
}

TEST_F(EventLoopTest, LateTimersFireAtOnceInDeadlineOrderButNeverInsideAdd) {
  std::vector<int> fired;
  const MonoMicros now = loop_->clock().NowMicros();
  loop_->AddTimerAt(now - 100, [&] { fired.push_back(100); });
  loop_->AddTimerAt(now - 300, [&] { fired.push_back(300); });
  loop_->AddTimerAt(now - 200, [&] { fired.push_back(200); });
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 3u);
  EXPECT_THAT(fired, ElementsAre(300, 200, 100));
}

TEST_F(EventLoopTest, TimerAddedByATimerWaitsForTheNextIteration) {
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    // Due at once: a loop that ran it in the same batch would spin forever.
    loop_->AddTimerAt(loop_->clock().NowMicros() - 1, tick);
  };
  loop_->AddTimerAt(loop_->clock().NowMicros() - 1, tick);
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(ticks, 1);
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_EQ(ticks, 2);
  EXPECT_EQ(loop_->timer_count(), 1u);
}

TEST_F(EventLoopTest, TimerCancelledByAnEarlierTimerOfTheBatchNeverRuns) {
  const MonoMicros now = loop_->clock().NowMicros();
  bool second_ran = false;
  EventLoop::TimerHandle second = 0;
  loop_->AddTimerAt(now - 2, [&] { EXPECT_TRUE(loop_->CancelTimer(second)); });
  second = loop_->AddTimerAt(now - 1, [&] { second_ran = true; });
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_FALSE(second_ran);
  EXPECT_EQ(loop_->timer_count(), 0u);
}

TEST_F(EventLoopTest, WaitEndsForTheEarliestTimer) {
  bool fired = false;
  const MonoMicros deadline = loop_->clock().NowMicros() + 2000;
  loop_->AddTimerAt(deadline, [&] { fired = true; });
  // An infinite wait still ends: the timer bounds it.
  while (!fired) loop_->RunOnce(absl::InfiniteDuration());
  EXPECT_GE(loop_->clock().NowMicros(), deadline);
}

// --- Cross-thread. ---

TEST_F(EventLoopTest, PostsFromAnotherThreadRunOnTheLoopThreadInOrder) {
  constexpr int kPosts = 10000;
  std::vector<int> ran;  // loop thread only
  bool off_thread = false;
  Watchdog();
  std::thread poster([&] {
    for (int i = 0; i < kPosts; ++i) {
      loop_->Post([&, i] {
        if (!loop_->InLoopThread()) off_thread = true;
        ran.push_back(i);
        if (i == kPosts - 1) loop_->Stop();
      });
    }
  });
  loop_->Run();
  poster.join();
  ASSERT_EQ(ran.size(), static_cast<size_t>(kPosts));
  for (int i = 0; i < kPosts; ++i) ASSERT_EQ(ran[i], i);
  EXPECT_FALSE(off_thread);
}

TEST_F(EventLoopTest, StopFromAnotherThreadWakesRun) {
  Watchdog();
  std::atomic<bool> loop_running{false};
  loop_->Post([&] { loop_running.store(true); });
  std::thread stopper([&] {
    while (!loop_running.load()) std::this_thread::yield();
    // The loop has run the closure and is (about to be) asleep in
    // epoll_wait with no timer due for kPatience: only the wake ends it.
    loop_->Stop();
  });
  loop_->Run();
  stopper.join();
  EXPECT_TRUE(loop_running.load());
}

TEST_F(EventLoopTest, PostOnTheLoopThreadRunsInALaterIteration) {
  std::vector<std::string> ran;
  loop_->Post([&] {
    ran.push_back("first");
    loop_->Post([&] { ran.push_back("posted by first"); });
  });
  EXPECT_TRUE(ran.empty());  // never inside Post
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_THAT(ran, ElementsAre("first"));
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 1u);
  EXPECT_THAT(ran, ElementsAre("first", "posted by first"));
  EXPECT_EQ(loop_->RunOnce(absl::ZeroDuration()), 0u);
}

TEST_F(EventLoopTest, StopBeforeRunMakesRunReturnAtOnce) {
  loop_->Stop();
  loop_->Run();  // returns without waiting
  // The request was consumed: a later Run waits for a new Stop.
  loop_->Post([this] { loop_->Stop(); });
  loop_->Run();
}

// --- Signals. ---

TEST(EventLoopSignalTest, SigtermStopsRunGracefully) {
  EventLoopOptions options;
  options.handle_stop_signals = true;
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create(options);
  ASSERT_THAT(loop, IsOk());
  bool stopped_by_watchdog = false;
  (*loop)->AddTimerAt(
      (*loop)->clock().NowMicros() + absl::ToInt64Microseconds(kPatience), [&] {
        stopped_by_watchdog = true;
        (*loop)->Stop();
      });
  // Blocked in this (the loop) thread by Create, so it waits in the
  // signalfd instead of killing the test.
  ASSERT_EQ(raise(SIGTERM), 0);
  (*loop)->Run();
  EXPECT_FALSE(stopped_by_watchdog);
  (*loop)->CheckInvariants();
}

TEST(EventLoopSignalTest, StopSignalCallbackSeesWhichSignal) {
  std::vector<int> signals;
  EventLoopOptions options;
  options.handle_stop_signals = true;
  options.on_stop_signal = [&signals](int signal) {
    signals.push_back(signal);
  };
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create(options);
  ASSERT_THAT(loop, IsOk());
  ASSERT_EQ(raise(SIGINT), 0);
  const MonoMicros give_up =
      (*loop)->clock().NowMicros() + absl::ToInt64Microseconds(kPatience);
  while (signals.empty() && (*loop)->clock().NowMicros() < give_up) {
    (*loop)->RunOnce(absl::Milliseconds(100));
  }
  EXPECT_THAT(signals, ElementsAre(SIGINT));
  ASSERT_EQ(raise(SIGTERM), 0);
  while (signals.size() < 2 && (*loop)->clock().NowMicros() < give_up) {
    (*loop)->RunOnce(absl::Milliseconds(100));
  }
  EXPECT_THAT(signals, ElementsAre(SIGINT, SIGTERM));
}

}  // namespace
}  // namespace blixard::net
