#include "net/exec/exec_test_util.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "net/exec/task_record.h"
#include "net/loop/unique_fd.h"

namespace blixard::net::testing {

std::string MakeTempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(base != nullptr ? base : "/tmp", "/exec.XXXXXX");
  CHECK(mkdtemp(pattern.data()) != nullptr) << pattern;
  return pattern;
}

bool RunUntil(EventLoop& loop, const std::function<bool()>& done,
              absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (!done()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    loop.RunOnce(std::min(left, absl::Milliseconds(50)));
  }
  return true;
}

bool ProcessAlive(pid_t pid) {
  absl::StatusOr<ProcStat> stat = ReadProcStat(pid);
  return stat.ok() && stat->state != 'Z';
}

bool WaitProcessEnded(pid_t pid, absl::Duration limit) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return errno == ESRCH;
  struct pollfd p = {pidfd.get(), POLLIN, 0};
  const int n = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(limit)));
  return n == 1;
}

ProcessReaper::~ProcessReaper() {
  for (const auto& [pid, ticks] : tracked_) {
    absl::StatusOr<ProcStat> stat = ReadProcStat(pid);
    if (!stat.ok() || stat->start_ticks != ticks) continue;  // gone or reused
    (void)kill(-pid, SIGKILL);
    (void)kill(pid, SIGKILL);
    // Reaps it if it is our child (a test that crashed its executor).
    if (WaitProcessEnded(pid, absl::Seconds(5))) {
      (void)waitpid(pid, nullptr, WNOHANG);
    }
  }
}

void ProcessReaper::Track(pid_t pid) {
  absl::StatusOr<ProcStat> stat = ReadProcStat(pid);
  if (!stat.ok()) return;
  for (const auto& [p, ticks] : tracked_) {
    if (p == pid && ticks == stat->start_ticks) return;
  }
  tracked_.emplace_back(pid, stat->start_ticks);
}

void ProcessReaper::TrackAll(const ProcessExecutor& executor) {
  for (const std::string& id : executor.Running(WorkKind::kTask)) {
    if (std::optional<pid_t> pid = executor.TaskPid(id)) Track(*pid);
  }
}

WorkSpec TaskSpec(std::string id, std::string command,
                  std::vector<std::string> args, int64_t timeout_us) {
  WorkSpec spec;
  spec.kind = WorkKind::kTask;
  spec.id = std::move(id);
  spec.command = std::move(command);
  spec.args = std::move(args);
  spec.timeout_us = timeout_us;
  return spec;
}

std::vector<std::string> ReadLines(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, 1 << 20);
  if (!text.ok()) return {};
  return absl::StrSplit(*text, '\n', absl::SkipEmpty());
}

}  // namespace blixard::net::testing
