#include "cli/task_command.h"

#include "absl/time/time.h"
#include "cli/client_flags.h"
#include "core/proto/cluster.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(TaskCommandTest, StatesParseInAnyCaseSortedAndUnique) {
  absl::StatusOr<std::vector<cluster::TaskState>> states =
      ParseTaskStates("running,Pending, timed-out,running");
  ASSERT_TRUE(states.ok()) << states.status();
  EXPECT_THAT(*states,
              ElementsAre(cluster::TASK_PENDING, cluster::TASK_RUNNING, cluster::TASK_TIMED_OUT));
}

TEST(TaskCommandTest, UnknownEmptyAndUnspecifiedStatesAreRefused) {
  for (const char* bad : {"", "bogus", "running,", "state_unspecified", "task_running"}) {
    absl::StatusOr<std::vector<cluster::TaskState>> states = ParseTaskStates(bad);
    EXPECT_FALSE(states.ok()) << "'" << bad << "' parsed";
  }
  EXPECT_THAT(std::string(ParseTaskStates("running,bogus").status().message()),
              HasSubstr("'bogus' is not a task state"));
}

TEST(TaskCommandTest, StateNamesReadBackAsStates) {
  for (int s = cluster::TASK_PENDING; s <= cluster::TASK_CANCELLED; ++s) {
    const auto state = static_cast<cluster::TaskState>(s);
    absl::StatusOr<std::vector<cluster::TaskState>> parsed = ParseTaskStates(TaskStateName(state));
    ASSERT_TRUE(parsed.ok()) << TaskStateName(state);
    EXPECT_THAT(*parsed, ElementsAre(state));
  }
  EXPECT_EQ(TaskStateName(cluster::TASK_TIMED_OUT), "timed_out");
}

TEST(TaskCommandTest, FinalStatesAreTheFourATaskNeverLeaves) {
  EXPECT_FALSE(IsFinal(cluster::TASK_PENDING));
  EXPECT_FALSE(IsFinal(cluster::TASK_ASSIGNED));
  EXPECT_FALSE(IsFinal(cluster::TASK_RUNNING));
  EXPECT_TRUE(IsFinal(cluster::TASK_SUCCEEDED));
  EXPECT_TRUE(IsFinal(cluster::TASK_FAILED));
  EXPECT_TRUE(IsFinal(cluster::TASK_TIMED_OUT));
  EXPECT_TRUE(IsFinal(cluster::TASK_CANCELLED));
}

TEST(TaskCommandTest, TimeoutIsWholeSecondsUpToTheStateMachinesLimit) {
  EXPECT_EQ(*TaskTimeoutSecs(absl::ZeroDuration()), 0u);
  EXPECT_EQ(*TaskTimeoutSecs(absl::Seconds(60)), 60u);
  EXPECT_EQ(*TaskTimeoutSecs(absl::Minutes(5)), 300u);
  EXPECT_EQ(*TaskTimeoutSecs(absl::Hours(168)), 168u * 3600);
  EXPECT_FALSE(TaskTimeoutSecs(absl::Hours(168) + absl::Seconds(1)).ok());
  EXPECT_FALSE(TaskTimeoutSecs(absl::Milliseconds(1500)).ok());
  EXPECT_FALSE(TaskTimeoutSecs(absl::Seconds(-1)).ok());
  EXPECT_FALSE(TaskTimeoutSecs(absl::InfiniteDuration()).ok());
}

// The JSON contract scripts read: proto field names, zero scalars present,
// 64-bit numbers as strings, enums by name, bytes base64, no key for a
// result not reported yet.
TEST(TaskCommandTest, TaskJsonKeepsProtoFieldNames) {
  cluster::TaskRecord task;
  task.set_task_id("t1");
  task.set_state(cluster::TASK_PENDING);
  task.mutable_spec()->set_command("echo");
  task.mutable_spec()->add_args("hello");
  task.mutable_spec()->set_max_attempts(1);
  const std::string pending = ProtoJson(task);
  EXPECT_THAT(pending, HasSubstr("\"task_id\":\"t1\""));
  EXPECT_THAT(pending, HasSubstr("\"state\":\"TASK_PENDING\""));
  EXPECT_THAT(pending, HasSubstr("\"worker_id\":\"0\""));
  EXPECT_THAT(pending, HasSubstr("\"failed_attempts\":0"));
  EXPECT_THAT(pending, HasSubstr("\"args\":[\"hello\"]"));
  EXPECT_THAT(pending, Not(HasSubstr("\"result\"")));
  EXPECT_THAT(pending, Not(HasSubstr("\n")));

  task.set_state(cluster::TASK_SUCCEEDED);
  task.mutable_result()->set_output_tail("hello\n");
  task.mutable_result()->set_success(true);
  const std::string done = ProtoJson(task);
  EXPECT_THAT(done, HasSubstr("\"output_tail\":\"aGVsbG8K\""));
  EXPECT_THAT(done, HasSubstr("\"exit_code\":0"));
  EXPECT_THAT(done, HasSubstr("\"success\":true"));
}

}  // namespace
}  // namespace blixard::cli
