// Mutex: mutual exclusion across threads (run under --config=tsan too).
#include "storage/mutex.h"

#include <condition_variable>
#include <thread>

#include "gtest/gtest.h"

namespace blixard {
namespace {

class Counter {
 public:
  void Add() {
    MutexLock lock(&mu_);
    ++value_;
    changed_.notify_all();
  }
  // Waits until the counter reaches `target`.
  void WaitFor(int target) {
    MutexLock lock(&mu_);
    changed_.wait(mu_, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return value_ >= target; });
  }
  int value() {
    MutexLock lock(&mu_);
    return value_;
  }

 private:
  Mutex mu_;
  std::condition_variable_any changed_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(MutexTest, TwoThreadsNeverLoseAnIncrement) {
  constexpr int kPerThread = 20'000;
  Counter counter;
  std::thread a([&] {
    for (int i = 0; i < kPerThread; ++i) counter.Add();
  });
  std::thread b([&] {
    for (int i = 0; i < kPerThread; ++i) counter.Add();
  });
  counter.WaitFor(2 * kPerThread);
  a.join();
  b.join();
  EXPECT_EQ(counter.value(), 2 * kPerThread);
}

}  // namespace
}  // namespace blixard
