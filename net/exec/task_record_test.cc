#include "net/exec/task_record.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;

TaskRecord Sample() {
  TaskRecord r;
  r.pid = 4242;
  r.proc_start_ticks = 987654321;
  r.boot_id = "7815de72-d531-44a9-b6bc-e1038afee641";
  r.start_mono_us = 123456789;
  r.start_real_us = 1700000000000000;
  r.timeout_us = 5000000;
  r.cgroup = "/sys/fs/cgroup/blixard/task-a b";
  return r;
}

TEST(TaskRecordTest, RunningAndExitedRecordsRoundTrip) {
  TaskRecord running = Sample();
  ASSERT_OK_AND_ASSIGN(TaskRecord back,
                       ParseTaskRecord(SerializeTaskRecord(running)));
  EXPECT_EQ(back, running);

  TaskRecord exited = Sample();
  exited.cgroup.clear();
  exited.vm_driver = "qemu";
  exited.exited = true;
  exited.exit_reason = WorkEvent::Reason::kFailed;
  exited.exit_code = -1;
  exited.duration_us = 77;
  exited.exit_note = "lost while\nthe node was down";
  ASSERT_OK_AND_ASSIGN(back, ParseTaskRecord(SerializeTaskRecord(exited)));
  EXPECT_EQ(back, exited);
}

TEST(TaskRecordTest, DamagedRecordsAreDataLoss) {
  const std::string good = SerializeTaskRecord(Sample());
  EXPECT_THAT(ParseTaskRecord(""), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ParseTaskRecord("blixard-task-record 2\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header")));
  // Torn: a prefix of a good record.
  EXPECT_THAT(ParseTaskRecord(good.substr(0, good.size() / 2)),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(ParseTaskRecord(good + "pid 1\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("repeated")));
  EXPECT_THAT(ParseTaskRecord(good + "colour blue\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("unknown key")));
  EXPECT_THAT(ParseTaskRecord(good + "exit_code 3\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("incomplete")));
  EXPECT_THAT(ParseTaskRecord(good + "exit_reason 9\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("exit_reason")));
}

TEST(TaskRecordTest, IdsEncodeToOneReversiblePathComponent) {
  for (const std::string& id :
       std::vector<std::string>{"task-1_A", ".", "..", "a/b", "a b", "%41",
                                std::string("\0\xff", 2)}) {
    const std::string encoded = EncodePathComponent(id);
    EXPECT_EQ(encoded.find('/'), std::string::npos) << encoded;
    EXPECT_NE(encoded, ".");
    EXPECT_NE(encoded, "..");
    EXPECT_EQ(DecodePathComponent(encoded), id) << encoded;
  }
  EXPECT_EQ(EncodePathComponent("a.b"), "a%2Eb");
  // Only the one spelling decodes.
  EXPECT_EQ(DecodePathComponent("%41"), std::nullopt);  // 'A' escaped
  EXPECT_EQ(DecodePathComponent("%2e"), std::nullopt);  // lower case
  EXPECT_EQ(DecodePathComponent("a%2"), std::nullopt);
  EXPECT_EQ(DecodePathComponent("a.b"), std::nullopt);
}

TEST(TaskRecordTest, FilesAreReplacedAtomicallyAndReadBack) {
  const char* tmp = getenv("TEST_TMPDIR");
  const std::string path =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/record_", getpid());
  ASSERT_OK(WriteFileAtomically(path, "one"));
  ASSERT_OK(WriteFileAtomically(path, "two"));
  EXPECT_EQ(ReadSmallFile(path, 16).value_or(""), "two");
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
  EXPECT_THAT(ReadSmallFile(path, 2), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(ReadSmallFile(path + ".missing", 16),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(WriteFileAtomically("/nonexistent-dir/x", "y"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nonexistent")));
}

TEST(TaskRecordTest, ProcStatNamesAProcessForItsLifetime) {
  ASSERT_OK_AND_ASSIGN(ProcStat self, ReadProcStat(getpid()));
  EXPECT_EQ(self.state, 'R');
  EXPECT_EQ(self.pgid, getpgrp());
  EXPECT_GT(self.start_ticks, 0u);
  ASSERT_OK_AND_ASSIGN(ProcStat again, ReadProcStat(getpid()));
  EXPECT_EQ(again.start_ticks, self.start_ticks);
  // pid_max is at most 2^22: this pid never exists.
  EXPECT_THAT(ReadProcStat(1 << 23), StatusIs(absl::StatusCode::kNotFound));
}

TEST(TaskRecordTest, BootIdAndClocks) {
  ASSERT_OK_AND_ASSIGN(std::string boot, ReadBootId());
  EXPECT_EQ(boot.size(), 36u) << boot;
  const int64_t mono = MonotonicNowMicros();
  EXPECT_GE(MonotonicNowMicros(), mono);
  EXPECT_GT(RealtimeNowMicros(), 1'500'000'000LL * kMicrosPerSecond);
}

}  // namespace
}  // namespace blixard::net
