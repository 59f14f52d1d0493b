// ProcessExecutor with real processes on a real loop. Every wait is bounded
// by a deadline and fails the test when it passes; nothing asserts on how
// long anything took. Every process a test starts is killed by pid at the
// end (ProcessReaper), even when the test fails.
#include "net/exec/process_executor.h"

#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/logger.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/exec/exec_test_util.h"
#include "net/exec/task_record.h"

namespace blixard::net {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ProcessAlive;
using testing::TaskSpec;

using State = WorkEvent::State;
using Reason = WorkEvent::Reason;

class ProcessExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(loop_, EventLoop::Create());
    options_.data_dir = testing::MakeTempDir();
    options_.kill_grace_us = 300 * kMicrosPerMilli;
    options_.logger = &logger_;
    NewExecutor();
  }
  void TearDown() override {
    if (executor_ != nullptr) {
      reaper_.TrackAll(*executor_);
      executor_->CheckInvariants();
    }
    executor_.reset();
  }

  // A new executor on the same data dir, listening.
  void NewExecutor(bool listen = true) {
    ASSERT_OK_AND_ASSIGN(executor_,
                         ProcessExecutor::Create(loop_.get(), options_));
    if (listen) Listen();
  }
  void Listen() {
    executor_->SetCallback(
        [this](const WorkEvent& e) { events_.push_back(e); });
  }
  // The executor object goes away without stopping anything.
  void Crash() {
    reaper_.TrackAll(*executor_);
    executor_->CheckInvariants();
    executor_.reset();
  }

  absl::Status Start(WorkSpec spec) {
    absl::Status status = executor_->Start(spec);
    if (status.ok()) reaper_.TrackAll(*executor_);
    return status;
  }

  const WorkEvent* Exit(const std::string& id) const {
    for (const WorkEvent& e : events_) {
      if (e.id == id && e.state == State::kExited) return &e;
    }
    return nullptr;
  }
  // Waits for the task's kExited; fails the test at the deadline.
  WorkEvent WaitExit(const std::string& id) {
    const bool heard =
        testing::RunUntil(*loop_, [&] { return Exit(id) != nullptr; });
    EXPECT_TRUE(heard) << "no kExited for " << id;
    executor_->CheckInvariants();
    return heard ? *Exit(id) : WorkEvent{};
  }
  std::vector<std::string> Heard(const std::string& id) const {
    std::vector<std::string> out;
    for (const WorkEvent& e : events_) {
      if (e.id == id) {
        out.push_back(e.state == State::kRunning ? "running" : "exited");
      }
    }
    return out;
  }
  std::string WorkDir(const std::string& id) const {
    return absl::StrCat(options_.data_dir, "/tasks/", id, "/work");
  }
  // Runs the loop until `path` has `lines` lines.
  std::vector<std::string> WaitLines(const std::string& path, size_t lines) {
    std::vector<std::string> got;
    EXPECT_TRUE(testing::RunUntil(*loop_, [&] {
      got = testing::ReadLines(path);
      return got.size() >= lines;
    })) << path;
    return got;
  }
  void ExpectAllDead(const std::vector<std::string>& pids) {
    for (const std::string& text : pids) {
      pid_t pid = 0;
      ASSERT_TRUE(absl::SimpleAtoi(text, &pid)) << text;
      reaper_.Track(pid);
      EXPECT_TRUE(testing::RunUntil(*loop_, [&] { return !ProcessAlive(pid); }))
          << "pid " << pid << " survived its task";
    }
  }

  testing::ProcessReaper reaper_;  // destroyed last
  NullLogger logger_;
  std::unique_ptr<EventLoop> loop_;
  ProcessExecutorOptions options_;
  std::unique_ptr<ProcessExecutor> executor_;
  std::vector<WorkEvent> events_;
};

TEST_F(ProcessExecutorTest, EchoFinishesWithItsOutputInTheTail) {
  ASSERT_OK(Start(TaskSpec("echo", "echo", {"hello"})));
  EXPECT_TRUE(events_.empty());  // never inside Start
  const WorkEvent exit = WaitExit("echo");
  EXPECT_THAT(Heard("echo"), ElementsAre("running", "exited"));
  EXPECT_EQ(exit.kind, WorkKind::kTask);
  EXPECT_EQ(exit.reason, Reason::kFinished);
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(exit.output_tail, "hello\n");
  EXPECT_GE(exit.duration_us, 0);
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
}

TEST_F(ProcessExecutorTest, ExitCodeAndStderrAreReported) {
  ASSERT_OK(Start(TaskSpec("three", "sh", {"-c", "echo oops >&2; exit 3"})));
  const WorkEvent exit = WaitExit("three");
  EXPECT_EQ(exit.reason, Reason::kFinished);
  EXPECT_EQ(exit.exit_code, 3);
  EXPECT_EQ(exit.output_tail, "oops\n");
}

TEST_F(ProcessExecutorTest, MissingProgramFailsWithAClearReasonAndNoRunning) {
  ASSERT_OK(Start(TaskSpec("ghost", "no-such-program-x")));
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(executor_->Running(WorkKind::kTask),
            std::vector<std::string>{"ghost"});
  EXPECT_THAT(executor_->Start(TaskSpec("ghost", "true")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  const WorkEvent exit = WaitExit("ghost");
  EXPECT_THAT(Heard("ghost"), ElementsAre("exited"));
  EXPECT_EQ(exit.reason, Reason::kFailed);
  EXPECT_THAT(exit.output_tail,
              HasSubstr("no such program 'no-such-program-x'"));
  // A path that is not there fails the same way.
  ASSERT_OK(Start(TaskSpec("ghost2", "/nonexistent/prog")));
  EXPECT_THAT(WaitExit("ghost2").output_tail,
              HasSubstr("no such program '/nonexistent/prog'"));
}

TEST_F(ProcessExecutorTest, BadSpecsAreRefusedAndStartNothing) {
  EXPECT_THAT(executor_->Start(TaskSpec("", "true")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(executor_->Start(TaskSpec("x", "")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(executor_->Start(TaskSpec("x", "true", {}, -1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(executor_->Start(TaskSpec(std::string(300, 'x'), "true")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(executor_->Start(TaskSpec("x", "echo", {std::string("a\0b", 3)})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // VMs have their own checks (vm_executor_test.cc); a bad one starts
  // nothing either.
  WorkSpec vm = TaskSpec("", "/images/base.qcow2");
  vm.kind = WorkKind::kVm;
  EXPECT_THAT(executor_->Start(vm),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(executor_->Stop(WorkKind::kTask, "x"));
  EXPECT_FALSE(executor_->Stop(WorkKind::kVm, "vm1"));
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
  EXPECT_TRUE(executor_->Running(WorkKind::kVm).empty());
  loop_->RunOnce(absl::Milliseconds(10));
  EXPECT_TRUE(events_.empty());
}

TEST_F(ProcessExecutorTest, IdsAreEncodedIntoOneSafePathComponent) {
  ASSERT_OK(Start(TaskSpec("../a b/..", "sh", {"-c", "pwd"})));
  const WorkEvent exit = WaitExit("../a b/..");
  EXPECT_EQ(
      exit.output_tail,
      absl::StrCat(options_.data_dir, "/tasks/%2E%2E%2Fa%20b%2F%2E%2E/work\n"));
}

TEST_F(ProcessExecutorTest, TaskGetsTheDocumentedEnvironmentAndLimits) {
  ASSERT_OK(Start(
      TaskSpec("env", "sh",
               {"-c",
                "echo \"$PATH|$HOME|$BLIXARD_TASK_ID|$(pwd)\"; ulimit -c; "
                "ulimit -n; env | wc -l; trap"})));
  const WorkEvent exit = WaitExit("env");
  EXPECT_EQ(exit.exit_code, 0);
  const std::string work = WorkDir("env");
  std::vector<std::string> lines = absl::StrSplit(exit.output_tail, '\n');
  ASSERT_GE(lines.size(), 4u) << exit.output_tail;
  EXPECT_EQ(lines[0],
            absl::StrCat(options_.task_path, "|", work, "|env|", work));
  EXPECT_EQ(lines[1], "0");     // RLIMIT_CORE
  EXPECT_EQ(lines[2], "1024");  // RLIMIT_NOFILE (task_open_files_max)
  // PATH, HOME, BLIXARD_TASK_ID and what sh itself exports (PWD).
  int env_count = 0;
  ASSERT_TRUE(absl::SimpleAtoi(lines[3], &env_count));
  EXPECT_LE(env_count, 4);
  EXPECT_EQ(executor_->isolation().kind, IsolationKind::kRlimits);
  EXPECT_THAT(executor_->isolation().description,
              HasSubstr("no cgroup_root given"));
}

TEST_F(ProcessExecutorTest, TimeoutKillsTheTaskAndItsBackgroundChildren) {
  ASSERT_OK(Start(TaskSpec(
      "slow", "sh",
      {"-c", "sleep 1000 & echo $! > bg; sleep 1000 & echo $! >> bg; wait"},
      2 * kMicrosPerSecond)));
  const std::vector<std::string> pids = WaitLines(WorkDir("slow") + "/bg", 2);
  const WorkEvent exit = WaitExit("slow");
  EXPECT_EQ(exit.reason, Reason::kTimedOut);
  EXPECT_GE(exit.duration_us, 2 * kMicrosPerSecond);
  EXPECT_EQ(exit.exit_code, 128 + SIGTERM);  // sh died of it, recorded
  ExpectAllDead(pids);
}

TEST_F(ProcessExecutorTest, StopKillsTheWholeProcessGroup) {
  ASSERT_OK(Start(
      TaskSpec("group", "sh",
               {"-c", "sleep 1000 & echo $! > bg; echo $$ >> bg; wait"})));
  const std::vector<std::string> pids = WaitLines(WorkDir("group") + "/bg", 2);
  const std::optional<pid_t> leader = executor_->TaskPid("group");
  ASSERT_TRUE(leader.has_value());
  EXPECT_TRUE(executor_->Stop(WorkKind::kTask, "group"));
  EXPECT_FALSE(executor_->Stop(WorkKind::kTask, "group"));  // already stopping
  EXPECT_EQ(executor_->Running(WorkKind::kTask),
            std::vector<std::string>{"group"});
  const WorkEvent exit = WaitExit("group");
  EXPECT_EQ(exit.reason, Reason::kStopped);
  EXPECT_THAT(Heard("group"), ElementsAre("running", "exited"));
  ExpectAllDead(pids);
  EXPECT_FALSE(ProcessAlive(*leader));
}

TEST_F(ProcessExecutorTest, ATaskThatIgnoresSigtermIsKilledAfterTheGrace) {
  ASSERT_OK(Start(TaskSpec(
      "stubborn", "sh",
      {"-c", "trap '' TERM; echo $$ > me; while :; do sleep 0.05; done"})));
  const std::vector<std::string> pids =
      WaitLines(WorkDir("stubborn") + "/me", 1);
  EXPECT_TRUE(executor_->Stop(WorkKind::kTask, "stubborn"));
  const WorkEvent exit = WaitExit("stubborn");
  EXPECT_EQ(exit.reason, Reason::kStopped);
  EXPECT_EQ(exit.exit_code, 128 + SIGKILL);  // the wrapper's own death
  EXPECT_GE(exit.duration_us, options_.kill_grace_us);
  ExpectAllDead(pids);
}

TEST_F(ProcessExecutorTest, BackgroundChildrenDieWhenTheTaskEndsOnItsOwn) {
  ASSERT_OK(Start(
      TaskSpec("leaver", "sh", {"-c", "sleep 1000 & echo $! > bg; exit 0"})));
  const WorkEvent exit = WaitExit("leaver");
  EXPECT_EQ(exit.reason, Reason::kFinished);
  ExpectAllDead(testing::ReadLines(WorkDir("leaver") + "/bg"));
}

TEST_F(ProcessExecutorTest, OutputIsRotatedAtTheCapAndTheTailStaysBounded) {
  executor_.reset();
  options_.output_file_bytes_max = Executor::kOutputTailBytesMax;
  options_.output_check_interval_us = 10 * kMicrosPerMilli;
  events_.clear();
  NewExecutor();
  ASSERT_OK(Start(
      TaskSpec("chatty", "sh",
               {"-c",
                "i=0; while [ $i -lt 300 ]; do echo line-$i-................; "
                "i=$((i+1)); done; echo done > done; sleep 1000"})));
  const std::string dir = absl::StrCat(options_.data_dir, "/tasks/chatty");
  WaitLines(WorkDir("chatty") + "/done", 1);
  struct stat st;
  EXPECT_TRUE(testing::RunUntil(
      *loop_, [&] { return stat((dir + "/output.log.1").c_str(), &st) == 0; }));
  EXPECT_GE(st.st_size, static_cast<off_t>(Executor::kOutputTailBytesMax));
  ASSERT_TRUE(executor_->Stop(WorkKind::kTask, "chatty"));
  const WorkEvent exit = WaitExit("chatty");
  EXPECT_LE(exit.output_tail.size(), Executor::kOutputTailBytesMax);
  EXPECT_TRUE(absl::EndsWith(exit.output_tail, "line-299-................\n"))
      << exit.output_tail;
}

TEST_F(ProcessExecutorTest, TheCallbackMayStartTheSameIdAgain) {
  int runs = 0;
  executor_.reset();
  NewExecutor(/*listen=*/false);
  executor_->SetCallback([&](const WorkEvent& e) {
    events_.push_back(e);
    if (e.state == State::kExited && ++runs < 2) {
      EXPECT_OK(executor_->Start(TaskSpec("again", "sh", {"-c", "exit 4"})));
    }
  });
  ASSERT_OK(Start(TaskSpec("again", "true")));
  EXPECT_TRUE(testing::RunUntil(*loop_, [&] { return runs == 2; }));
  EXPECT_THAT(Heard("again"),
              ElementsAre("running", "exited", "running", "exited"));
  EXPECT_EQ(events_.back().exit_code, 4);
}

TEST_F(ProcessExecutorTest, AnUnusableCgroupRootFallsBackToRlimits) {
  executor_.reset();
  options_.cgroup_root = testing::MakeTempDir();  // not a cgroup2 mount
  NewExecutor();
  EXPECT_EQ(executor_->isolation().kind, IsolationKind::kRlimits);
  EXPECT_THAT(executor_->isolation().description,
              HasSubstr("not on a cgroup2 mount"));
  ASSERT_OK(Start(TaskSpec("plain", "true")));
  EXPECT_EQ(WaitExit("plain").reason, Reason::kFinished);
}

// Needs a writable cgroup v2 /sys/fs/cgroup; skipped, with the reason,
// elsewhere. The task's child leaves the process group (setsid), which
// only the cgroup can still reach.
TEST_F(ProcessExecutorTest, WithCgroupV2StopAlsoKillsWhatLeftTheGroup) {
  struct statfs fs;
  if (statfs("/sys/fs/cgroup", &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
    GTEST_SKIP() << "/sys/fs/cgroup is not a cgroup2 mount here";
  }
  const std::string root =
      absl::StrCat("/sys/fs/cgroup/blixard-exec-test-", getpid());
  if (mkdir(root.c_str(), 0755) != 0) {
    GTEST_SKIP() << "cannot make a cgroup under /sys/fs/cgroup";
  }
  executor_.reset();
  options_.cgroup_root = root;
  NewExecutor();
  if (executor_->isolation().kind != IsolationKind::kCgroupV2) {
    rmdir(root.c_str());
    GTEST_SKIP() << executor_->isolation().description;
  }
  ASSERT_OK(Start(
      TaskSpec("boxed", "sh",
               {"-c",
                "setsid sleep 1000 & echo $! > bg; cat /proc/self/cgroup > cg; "
                "wait"})));
  const std::vector<std::string> pids = WaitLines(WorkDir("boxed") + "/bg", 1);
  const std::vector<std::string> cg = WaitLines(WorkDir("boxed") + "/cg", 1);
  EXPECT_THAT(cg[0], HasSubstr("/task-boxed"));
  ASSERT_TRUE(executor_->Stop(WorkKind::kTask, "boxed"));
  EXPECT_EQ(WaitExit("boxed").reason, Reason::kStopped);
  ExpectAllDead(pids);
  EXPECT_TRUE(testing::RunUntil(*loop_, [&] {
    return access((root + "/task-boxed").c_str(), F_OK) != 0;
  })) << "the task's leaf was not removed";
  executor_.reset();
  EXPECT_EQ(rmdir(root.c_str()), 0);
}

// --- Restart safety: the executor object goes away (a crash of the node
// process) while its tasks run on.

TEST_F(ProcessExecutorTest, ARestartedExecutorAdoptsARunningTask) {
  ASSERT_OK(Start(TaskSpec("long", "sleep", {"30"})));
  ASSERT_TRUE(testing::RunUntil(*loop_, [&] { return !events_.empty(); }));
  const pid_t pid = *executor_->TaskPid("long");
  ASSERT_OK_AND_ASSIGN(ProcStat before, ReadProcStat(pid));
  Crash();
  EXPECT_TRUE(ProcessAlive(pid));
  events_.clear();

  NewExecutor(/*listen=*/false);
  EXPECT_EQ(executor_->Running(WorkKind::kTask),
            std::vector<std::string>{"long"});
  EXPECT_EQ(executor_->TaskPid("long"),
            pid);  // the same process, not a new one
  ASSERT_OK_AND_ASSIGN(ProcStat after, ReadProcStat(pid));
  EXPECT_EQ(after.start_ticks, before.start_ticks);
  EXPECT_THAT(executor_->Start(TaskSpec("long", "sleep", {"30"})),
              StatusIs(absl::StatusCode::kAlreadyExists));
  Listen();
  EXPECT_TRUE(events_.empty());  // never inside SetCallback
  ASSERT_TRUE(testing::RunUntil(*loop_, [&] { return !events_.empty(); }));
  EXPECT_TRUE(executor_->Stop(WorkKind::kTask, "long"));
  const WorkEvent exit = WaitExit("long");
  EXPECT_EQ(exit.reason, Reason::kStopped);
  EXPECT_THAT(Heard("long"), ElementsAre("running", "exited"));
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
}

TEST_F(ProcessExecutorTest, ATaskThatEndedWhileNoExecutorRanReportsItsCode) {
  ASSERT_OK(Start(TaskSpec("quick", "sh", {"-c", "echo bye; exit 7"})));
  const pid_t pid = *executor_->TaskPid("quick");
  Crash();
  // What init does for an orphan: reap it. The new executor is then not
  // the parent and finds only the exit_code file.
  ASSERT_TRUE(testing::WaitProcessEnded(pid));
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);

  NewExecutor(/*listen=*/false);
  EXPECT_EQ(executor_->Running(WorkKind::kTask),
            std::vector<std::string>{"quick"});
  loop_->RunOnce(absl::Milliseconds(10));
  Listen();
  const WorkEvent exit = WaitExit("quick");
  EXPECT_THAT(Heard("quick"), ElementsAre("exited"));
  EXPECT_EQ(exit.reason, Reason::kFinished);
  EXPECT_EQ(exit.exit_code, 7);
  EXPECT_EQ(exit.output_tail, "bye\n");
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());

  // Delivered once: a third executor hears nothing of it.
  Crash();
  events_.clear();
  NewExecutor();
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
}

TEST_F(ProcessExecutorTest, AnUnreapedChildFoundAtRestartEndsWithItsCode) {
  ASSERT_OK(Start(TaskSpec("zombie", "sh", {"-c", "exit 5"})));
  const pid_t pid = *executor_->TaskPid("zombie");
  Crash();
  ASSERT_TRUE(testing::WaitProcessEnded(pid));  // a zombie: nobody reaps it
  NewExecutor();
  const WorkEvent exit = WaitExit("zombie");
  EXPECT_THAT(Heard("zombie"), ElementsAre("exited"));
  EXPECT_EQ(exit.exit_code, 5);
  EXPECT_FALSE(ReadProcStat(pid).ok());  // and it was reaped
}

TEST_F(ProcessExecutorTest, ATaskKilledWhileNoExecutorRanIsReportedLost) {
  ASSERT_OK(Start(TaskSpec("victim", "sleep", {"30"})));
  const pid_t pid = *executor_->TaskPid("victim");
  Crash();
  ASSERT_EQ(kill(-pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  NewExecutor();
  const WorkEvent exit = WaitExit("victim");
  EXPECT_THAT(Heard("victim"), ElementsAre("exited"));
  EXPECT_EQ(exit.reason, Reason::kFailed);
  EXPECT_THAT(exit.output_tail, HasSubstr("lost while the node was down"));
}

TEST_F(ProcessExecutorTest, AnExitSeenButNotDeliveredIsDeliveredAfterRestart) {
  executor_.reset();
  NewExecutor(/*listen=*/false);
  ASSERT_OK(
      Start(TaskSpec("unheard", "sh", {"-c", "exit 9"}, kMicrosPerSecond)));
  // Seen (reaped, outcome recorded) but never delivered: no callback.
  ASSERT_TRUE(testing::RunUntil(
      *loop_, [&] { return !executor_->TaskPid("unheard").has_value(); }));
  Crash();
  NewExecutor();
  const WorkEvent exit = WaitExit("unheard");
  EXPECT_THAT(Heard("unheard"), ElementsAre("exited"));
  EXPECT_EQ(exit.reason, Reason::kFinished);
  EXPECT_EQ(exit.exit_code, 9);
}

TEST_F(ProcessExecutorTest, RecordsFromAnotherBootAreDropped) {
  executor_.reset();
  TaskRecord record;
  record.pid = getpid();  // alive, but from "another boot": never adopted
  record.proc_start_ticks = 1;
  record.boot_id = "another-boot";
  const std::string dir = absl::StrCat(options_.data_dir, "/tasks/old");
  ASSERT_EQ(mkdir(dir.c_str(), 0750), 0);
  ASSERT_OK(WriteFileAtomically(dir + "/record", SerializeTaskRecord(record)));
  NewExecutor();
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
  loop_->RunOnce(absl::Milliseconds(10));
  EXPECT_TRUE(events_.empty());
  EXPECT_NE(access((dir + "/record").c_str(), F_OK), 0);
}

TEST_F(ProcessExecutorTest, ATornRecordIsDroppedNotFatal) {
  executor_.reset();
  const std::string dir = absl::StrCat(options_.data_dir, "/tasks/torn");
  ASSERT_EQ(mkdir(dir.c_str(), 0750), 0);
  ASSERT_OK(WriteFileAtomically(dir + "/record", "blixard-task-record 1\npid"));
  NewExecutor();
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
}

}  // namespace
}  // namespace blixard::net
