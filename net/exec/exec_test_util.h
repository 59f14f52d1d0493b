// Test helpers for net/exec: a temporary data dir, a loop that runs until a
// condition holds or a deadline passes, and a reaper that kills every task
// process a test started (by pid, checked against its /proc start time so a
// reused pid is never touched), even when the test fails half-way.
#ifndef BLIXARD_NET_EXEC_EXEC_TEST_UTIL_H_
#define BLIXARD_NET_EXEC_EXEC_TEST_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "core/env.h"
#include "net/exec/process_executor.h"
#include "net/loop/event_loop.h"

namespace blixard::net::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir();

// Runs `loop` until `done()` holds (true) or `limit` of real time passed
// (false). Bounds a wait; never asserts on how long something took.
bool RunUntil(EventLoop& loop, const std::function<bool()>& done,
              absl::Duration limit = absl::Seconds(20));

// True while `pid` exists and is not a zombie (a zombie has ended).
bool ProcessAlive(pid_t pid);

// Waits (bounded, by polling a pidfd, without the loop) until `pid` has
// ended; true when it did.
bool WaitProcessEnded(pid_t pid, absl::Duration limit = absl::Seconds(20));

// Remembers processes and, when destroyed, SIGKILLs the process group of
// each that is still the same process and reaps those that are our
// children.
class ProcessReaper {
 public:
  ProcessReaper() = default;
  ~ProcessReaper();
  ProcessReaper(const ProcessReaper&) = delete;
  ProcessReaper& operator=(const ProcessReaper&) = delete;

  void Track(pid_t pid);
  // Tracks the wrapper of every task the executor runs now.
  void TrackAll(const ProcessExecutor& executor);

 private:
  std::vector<std::pair<pid_t, uint64_t>> tracked_;  // pid, start ticks
};

WorkSpec TaskSpec(std::string id, std::string command,
                  std::vector<std::string> args = {}, int64_t timeout_us = 0);

// Lines of a small file ("" entries skipped); empty when it is missing.
std::vector<std::string> ReadLines(const std::string& path);

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_EXEC_EXEC_TEST_UTIL_H_
