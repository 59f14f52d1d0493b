#include "net/exec/task_output.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

std::string NewDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(base != nullptr ? base : "/tmp", "/out.XXXXXX");
  EXPECT_NE(mkdtemp(pattern.data()), nullptr);
  return pattern;
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

off_t Size(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST(TaskOutputTest, RotatesOnlyPastTheCap) {
  const std::string dir = NewDir();
  EXPECT_EQ(RotateOutputIfOver(dir, 10).value_or(true), false);  // no file
  Write(dir + "/output.log", std::string(10, 'a'));
  EXPECT_EQ(RotateOutputIfOver(dir, 10).value_or(true), false);
  Write(dir + "/output.log", std::string(11, 'b'));
  EXPECT_EQ(RotateOutputIfOver(dir, 10).value_or(false), true);
  EXPECT_EQ(Size(dir + "/output.log"), 0);
  EXPECT_EQ(Size(dir + "/output.log.1"), 11);
  EXPECT_EQ(Size(dir + "/output.log.1.tmp"), -1);
}

TEST(TaskOutputTest, TheTailSpansTheRotationAndIsBounded) {
  const std::string dir = NewDir();
  EXPECT_EQ(ReadOutputTail(dir, 8), "");
  Write(dir + "/output.log.1", "0123456789");
  Write(dir + "/output.log", "abc");
  EXPECT_EQ(ReadOutputTail(dir, 8), "56789abc");
  EXPECT_EQ(ReadOutputTail(dir, 2), "bc");
  EXPECT_EQ(ReadOutputTail(dir, 100), "0123456789abc");
}

TEST(TaskOutputTest, NotesGoOnTheirOwnLineWithinTheBound) {
  EXPECT_EQ(AppendNote("", "why", 100), "[blixard] why\n");
  EXPECT_EQ(AppendNote("out", "why", 100), "out\n[blixard] why\n");
  EXPECT_EQ(AppendNote("out\n", "why", 100), "out\n[blixard] why\n");
  const std::string cut = AppendNote(std::string(50, 'x'), "why", 20);
  EXPECT_EQ(cut.size(), 20u);
  EXPECT_EQ(cut.substr(cut.size() - 14), "[blixard] why\n");
}

}  // namespace
}  // namespace blixard::net
