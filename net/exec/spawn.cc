#include "net/exec/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

// posix_spawn's attribute and file-action objects, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t files;
  SpawnSetup() {
    CHECK_EQ(posix_spawnattr_init(&attr), 0);
    CHECK_EQ(posix_spawn_file_actions_init(&files), 0);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

absl::StatusOr<pid_t> SpawnSession(const std::string& program, std::vector<std::string> argv,
                                   std::vector<std::string> env, const std::string& output,
                                   const std::string& dir, absl::string_view what) {
  UniqueFd out(open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640));
  if (!out.valid()) return ErrnoStatus("open", errno, output);
  UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null.valid()) return ErrnoStatus("open", errno, "/dev/null");
  std::vector<char*> argv_ptrs, env_ptrs;
  for (std::string& s : argv) argv_ptrs.push_back(s.data());
  argv_ptrs.push_back(nullptr);
  for (std::string& s : env) env_ptrs.push_back(s.data());
  env_ptrs.push_back(nullptr);

  SpawnSetup setup;
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  CHECK_EQ(posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                     POSIX_SPAWN_SETSIGDEF),
           0);
  CHECK_EQ(posix_spawnattr_setsigmask(&setup.attr, &empty), 0);
  CHECK_EQ(posix_spawnattr_setsigdefault(&setup.attr, &all), 0);
  CHECK_EQ(posix_spawn_file_actions_adddup2(&setup.files, null.get(), 0), 0);
  CHECK_EQ(posix_spawn_file_actions_adddup2(&setup.files, out.get(), 1), 0);
  CHECK_EQ(posix_spawn_file_actions_adddup2(&setup.files, out.get(), 2), 0);
  CHECK_EQ(posix_spawn_file_actions_addclosefrom_np(&setup.files, 3), 0);
  CHECK_EQ(posix_spawn_file_actions_addchdir_np(&setup.files, dir.c_str()), 0);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, program.c_str(), &setup.files, &setup.attr,
                                argv_ptrs.data(), env_ptrs.data());
  if (error != 0) return ErrnoStatus("posix_spawn", error, absl::StrCat(program, " for ", what));
  return pid;
}

}  // namespace blixard::net
