#include "net/exec/isolation.h"

#include <linux/magic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

using ::testing::HasSubstr;

TEST(IsolationTest, NoRootMeansRlimits) {
  const Isolation isolation = ProbeIsolation("");
  EXPECT_EQ(isolation.kind, IsolationKind::kRlimits);
  EXPECT_THAT(isolation.description, HasSubstr("no cgroup_root given"));
  EXPECT_THAT(isolation.description, HasSubstr("RLIMIT_CORE=0"));
}

TEST(IsolationTest, ARootThatIsNotCgroupV2FallsBackAndSaysWhy) {
  EXPECT_THAT(ProbeIsolation("relative/path").description,
              HasSubstr("not an absolute path"));
  EXPECT_THAT(ProbeIsolation("/nonexistent/cgroup").description,
              HasSubstr("statfs"));
  const char* tmp = getenv("TEST_TMPDIR");
  const Isolation isolation = ProbeIsolation(tmp != nullptr ? tmp : "/tmp");
  EXPECT_EQ(isolation.kind, IsolationKind::kRlimits);
  EXPECT_THAT(isolation.description, HasSubstr("not on a cgroup2 mount"));
}

// Needs a writable cgroup v2 hierarchy (a delegated subtree, or root on a
// cgroup2 /sys/fs/cgroup); skipped, with the reason, elsewhere.
TEST(IsolationTest, ACgroupV2LeafTakesLimitsAndIsRemoved) {
  struct statfs fs;
  if (statfs("/sys/fs/cgroup", &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
    GTEST_SKIP() << "/sys/fs/cgroup is not a cgroup2 mount here";
  }
  const std::string root =
      absl::StrCat("/sys/fs/cgroup/blixard-test-", getpid());
  if (mkdir(root.c_str(), 0755) != 0) {
    GTEST_SKIP() << "cannot make a cgroup under /sys/fs/cgroup (not delegated)";
  }
  const Isolation isolation = ProbeIsolation(root);
  if (isolation.kind != IsolationKind::kCgroupV2) {
    rmdir(root.c_str());
    GTEST_SKIP() << isolation.description;
  }
  ASSERT_OK_AND_ASSIGN(std::string leaf,
                       CreateTaskCgroup(isolation, "task-x", 1, 64));
  EXPECT_OK(KillTaskCgroup(leaf));
  EXPECT_OK(RemoveTaskCgroup(leaf));
  EXPECT_THAT(RemoveTaskCgroup(leaf),
              blixard::testing::StatusIs(absl::StatusCode::kNotFound));
  rmdir(root.c_str());
}

}  // namespace
}  // namespace blixard::net
