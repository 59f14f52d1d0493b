#include "net/exec/vm_driver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/exec/exec_test_util.h"

namespace blixard::net {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;

void WriteFile(const std::string& path, const std::string& bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
}

bool Has(const std::vector<std::string>& argv, const std::string& a, const std::string& b) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == a && argv[i + 1] == b) return true;
  }
  return false;
}

TEST(VmDriverTest, NamesRoundTrip) {
  for (VmDriverKind kind : {VmDriverKind::kQemu, VmDriverKind::kProcess}) {
    EXPECT_EQ(ParseVmDriverName(VmDriverName(kind)), kind);
  }
  EXPECT_EQ(ParseVmDriverName("auto"), std::nullopt);
}

TEST(VmDriverTest, ProbeChoosesByPathAndSetting) {
  const std::string empty_dir = testing::MakeTempDir();
  EXPECT_THAT(ProbeVmHost("firecracker", empty_dir, "qemu-system-x86_64", "qemu-img").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ProbeVmHost("qemu", empty_dir, "qemu-system-x86_64", "qemu-img").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("qemu-system-x86_64")));
  ASSERT_OK_AND_ASSIGN(VmHost automatic,
                       ProbeVmHost("auto", empty_dir, "qemu-system-x86_64", "qemu-img"));
  EXPECT_EQ(automatic.driver, VmDriverKind::kProcess);
  EXPECT_THAT(automatic.description, HasSubstr("no qemu-system-x86_64 and qemu-img"));
  // Any executable stands in for QEMU here: the probe only looks.
  ASSERT_OK_AND_ASSIGN(VmHost qemu, ProbeVmHost("auto", empty_dir, "/bin/true", "/bin/true"));
  EXPECT_EQ(qemu.driver, VmDriverKind::kQemu);
  EXPECT_EQ(qemu.qemu_binary, "/bin/true");
  ASSERT_OK_AND_ASSIGN(VmHost process, ProbeVmHost("process", "/bin", "/bin/true", "/bin/true"));
  EXPECT_EQ(process.driver, VmDriverKind::kProcess);
}

TEST(VmDriverTest, ImagesMustBeAbsolutePathsToFiles) {
  const std::string dir = testing::MakeTempDir();
  const std::string image = absl::StrCat(dir, "/disk.img");
  WriteFile(image, "raw bytes");
  EXPECT_EQ(ImageProblem(image), "");
  EXPECT_THAT(ImageProblem("debian-12"), HasSubstr("no such image 'debian-12'"));
  EXPECT_THAT(ImageProblem(absl::StrCat(dir, "/none")), HasSubstr("no such image"));
  EXPECT_THAT(ImageProblem(dir), HasSubstr("not a regular file"));
  EXPECT_THAT(ImageProblem(""), HasSubstr("no such image ''"));
}

TEST(VmDriverTest, FormatIsSniffedFromTheMagic) {
  const std::string dir = testing::MakeTempDir();
  WriteFile(absl::StrCat(dir, "/a.qcow2"), std::string("QFI\xfb\0\0\0\3", 8));
  WriteFile(absl::StrCat(dir, "/b.img"), std::string(512, '\0'));
  WriteFile(absl::StrCat(dir, "/c.img"), "QF");
  ASSERT_OK_AND_ASSIGN(std::string a, ImageFormat(absl::StrCat(dir, "/a.qcow2")));
  EXPECT_EQ(a, "qcow2");
  ASSERT_OK_AND_ASSIGN(std::string b, ImageFormat(absl::StrCat(dir, "/b.img")));
  EXPECT_EQ(b, "raw");
  ASSERT_OK_AND_ASSIGN(std::string c, ImageFormat(absl::StrCat(dir, "/c.img")));
  EXPECT_EQ(c, "raw");
  EXPECT_THAT(ImageFormat(absl::StrCat(dir, "/none")).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(VmDriverTest, QemuCommandLineAsksForWhatTheSpecSays) {
  VmLaunch launch;
  launch.driver = VmDriverKind::kQemu;
  launch.shell = "/bin/sh";
  launch.encoded_name = "web%2C1";
  launch.image = "/images/base.qcow2";
  launch.image_format = "qcow2";
  launch.vcpus = 2;
  launch.memory_mb = 128;
  launch.disk_gb = 3;
  launch.qemu_binary = "/usr/bin/qemu-system-x86_64";
  launch.qemu_img_binary = "/usr/bin/qemu-img";
  std::vector<std::string> argv = VmWrapperArgv(launch);
  ASSERT_GT(argv.size(), 8u);
  EXPECT_EQ(argv[0], "/bin/sh");
  // The wrapper's arguments: qemu-img, format, image, size, then QEMU.
  EXPECT_EQ(std::vector<std::string>(argv.begin() + 4, argv.begin() + 9),
            (std::vector<std::string>{"/usr/bin/qemu-img", "qcow2", "/images/base.qcow2", "3G",
                                      "/usr/bin/qemu-system-x86_64"}));
  EXPECT_TRUE(Has(argv, "-accel", "tcg"));
  EXPECT_TRUE(Has(argv, "-smp", "2"));
  EXPECT_TRUE(Has(argv, "-m", "128"));
  EXPECT_TRUE(Has(argv, "-name", "guest=web%2C1"));
  EXPECT_TRUE(Has(argv, "-drive", "file=overlay.qcow2,format=qcow2,if=virtio"));
  EXPECT_TRUE(Has(argv, "-qmp", "unix:qmp.sock,server=on,wait=off"));
  EXPECT_TRUE(Has(argv, "-pidfile", "qemu.pid"));
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "-cpu"), 0);
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "-nodefaults"), 1);

  launch.kvm = true;
  launch.disk_gb = 0;
  argv = VmWrapperArgv(launch);
  EXPECT_TRUE(Has(argv, "-accel", "kvm"));
  EXPECT_TRUE(Has(argv, "-cpu", "host"));
  EXPECT_EQ(argv[7], "");  // no size: the image's
}

TEST(VmDriverTest, ProcessDriverRunsAPlaceholderWithoutOverlay) {
  VmLaunch launch;
  launch.driver = VmDriverKind::kProcess;
  launch.shell = "/bin/sh";
  launch.image = "/images/base.qcow2";
  const std::vector<std::string> argv = VmWrapperArgv(launch);
  ASSERT_EQ(argv.size(), 10u) << absl::StrJoin(argv, " ");
  EXPECT_EQ(argv[4], "");  // no qemu-img
  EXPECT_EQ(argv[8], "sleep");
}

}  // namespace
}  // namespace blixard::net
