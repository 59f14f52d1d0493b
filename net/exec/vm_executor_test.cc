// VMs through ProcessExecutor, on a real loop: the process driver (runs
// everywhere) and the QEMU driver (skipped, saying why, where QEMU is not
// installed). Every wait is bounded by a loop deadline; nothing asserts on
// how long something took.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/logger.h"
#include "core/base/status_matchers.h"
#include "core/env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/exec/exec_test_util.h"
#include "net/exec/process_executor.h"
#include "net/exec/vm_driver.h"
#include "net/loop/event_loop.h"

namespace blixard::net {
namespace {

using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class VmExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    ASSERT_OK(loop.status());
    loop_ = std::move(*loop);
    dir_ = testing::MakeTempDir();
    options_.data_dir = absl::StrCat(dir_, "/exec");
    options_.logger = &logger_;
    options_.vm_driver = "process";
    options_.vm_powerdown_grace_us = 300 * kMicrosPerMilli;
    options_.vm_quit_grace_us = 3 * kMicrosPerSecond;
    options_.vm_boot_timeout_us = 60 * kMicrosPerSecond;
    image_ = absl::StrCat(dir_, "/disk.img");
    std::string touch = absl::StrCat(": > '", image_, "'");
    ASSERT_EQ(system(touch.c_str()), 0);
  }
  void TearDown() override {
    if (executor_ != nullptr) {
      Track();
      executor_->CheckInvariants();
      executor_.reset();
    }
  }

  void NewExecutor() {
    absl::StatusOr<std::unique_ptr<ProcessExecutor>> executor =
        ProcessExecutor::Create(loop_.get(), options_);
    ASSERT_OK(executor.status());
    executor_ = std::move(*executor);
    events_.clear();
    executor_->SetCallback([this](const WorkEvent& e) { events_.push_back(e); });
  }
  void Crash() {
    Track();
    executor_->CheckInvariants();
    executor_.reset();
  }
  void Track() {
    for (const std::string& name : executor_->Running(WorkKind::kVm)) {
      if (std::optional<pid_t> pid = executor_->VmPid(name)) reaper_.Track(*pid);
    }
  }
  bool RunUntil(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(60)) {
    return testing::RunUntil(
        *loop_,
        [&] {
          Track();
          executor_->CheckInvariants();
          return done();
        },
        limit);
  }
  bool Heard(const std::string& name, WorkEvent::State state) const {
    for (const WorkEvent& e : events_) {
      if (e.kind == WorkKind::kVm && e.id == name && e.state == state) return true;
    }
    return false;
  }
  int Count(const std::string& name, WorkEvent::State state) const {
    int n = 0;
    for (const WorkEvent& e : events_) {
      n += e.kind == WorkKind::kVm && e.id == name && e.state == state ? 1 : 0;
    }
    return n;
  }
  const WorkEvent& Exit(const std::string& name) const {
    for (const WorkEvent& e : events_) {
      if (e.id == name && e.state == WorkEvent::State::kExited) return e;
    }
    ADD_FAILURE() << "no exit for " << name;
    return events_.front();
  }
  WorkSpec Vm(const std::string& name, const std::string& image) const {
    WorkSpec spec;
    spec.kind = WorkKind::kVm;
    spec.id = name;
    spec.command = image;
    spec.vcpus = 1;
    spec.memory_mb = 128;
    spec.disk_gb = 1;
    return spec;
  }
  bool Gone(pid_t pid) { return testing::WaitProcessEnded(pid, absl::Seconds(10)); }

  // Destroyed last: kills whatever a failed check left running.
  testing::ProcessReaper reaper_;
  NullLogger logger_;
  std::unique_ptr<EventLoop> loop_;
  std::string dir_;
  std::string image_;
  ProcessExecutorOptions options_;
  std::unique_ptr<ProcessExecutor> executor_;
  std::vector<WorkEvent> events_;
};

TEST_F(VmExecutorTest, ProcessVmRunsUntilStoppedAndLeavesNothing) {
  NewExecutor();
  EXPECT_EQ(executor_->vm_host().driver, VmDriverKind::kProcess);
  ASSERT_OK(executor_->Start(Vm("web", image_)));
  EXPECT_TRUE(events_.empty());  // never inside Start
  EXPECT_EQ(executor_->Running(WorkKind::kVm), std::vector<std::string>{"web"});
  EXPECT_TRUE(executor_->Running(WorkKind::kTask).empty());
  EXPECT_EQ(executor_->Start(Vm("web", image_)).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kRunning); }));
  std::optional<pid_t> pid = executor_->VmPid("web");
  ASSERT_TRUE(pid.has_value());
  EXPECT_TRUE(testing::ProcessAlive(*pid));
  const std::string folder = executor_->VmDir("web");
  EXPECT_TRUE(Exists(folder));

  EXPECT_TRUE(executor_->Stop(WorkKind::kVm, "web"));
  EXPECT_FALSE(executor_->Stop(WorkKind::kVm, "web"));
  EXPECT_FALSE(executor_->Stop(WorkKind::kTask, "web"));
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kExited); }));
  EXPECT_EQ(Exit("web").reason, WorkEvent::Reason::kStopped);
  EXPECT_EQ(Count("web", WorkEvent::State::kExited), 1);
  EXPECT_TRUE(executor_->Running(WorkKind::kVm).empty());
  EXPECT_TRUE(Gone(*pid));
  EXPECT_FALSE(testing::ProcessAlive(*pid));
  EXPECT_FALSE(Exists(folder));  // a VM's folder lives one run
}

TEST_F(VmExecutorTest, BadSpecsStartNothing) {
  NewExecutor();
  WorkSpec spec = Vm("", image_);
  EXPECT_EQ(executor_->Start(spec).code(), absl::StatusCode::kInvalidArgument);
  spec = Vm("a", "");
  EXPECT_EQ(executor_->Start(spec).code(), absl::StatusCode::kInvalidArgument);
  spec = Vm("a", image_);
  spec.vcpus = kVmVcpusMax + 1;
  EXPECT_EQ(executor_->Start(spec).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(executor_->Running(WorkKind::kVm).empty());
}

TEST_F(VmExecutorTest, MissingImageFailsWithTheReason) {
  NewExecutor();
  ASSERT_OK(executor_->Start(Vm("lost", "/no/such/disk.qcow2")));
  EXPECT_EQ(executor_->Running(WorkKind::kVm), std::vector<std::string>{"lost"});
  ASSERT_TRUE(RunUntil([&] { return Heard("lost", WorkEvent::State::kExited); }));
  EXPECT_FALSE(Heard("lost", WorkEvent::State::kRunning));
  EXPECT_EQ(Exit("lost").reason, WorkEvent::Reason::kFailed);
  EXPECT_THAT(Exit("lost").output_tail, HasSubstr("no such image '/no/such/disk.qcow2'"));
  EXPECT_TRUE(executor_->Running(WorkKind::kVm).empty());
}

TEST_F(VmExecutorTest, ProcessVmThatDiesFails) {
  NewExecutor();
  ASSERT_OK(executor_->Start(Vm("web", image_)));
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kRunning); }));
  const pid_t pid = *executor_->VmPid("web");
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kExited); }));
  EXPECT_EQ(Exit("web").reason, WorkEvent::Reason::kFailed);
  EXPECT_THAT(Exit("web").output_tail, HasSubstr("killed by signal 9 without a Stop"));
}

TEST_F(VmExecutorTest, ProcessVmIsAdoptedAfterACrashAndStopsThere) {
  NewExecutor();
  ASSERT_OK(executor_->Start(Vm("web", image_)));
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kRunning); }));
  const pid_t pid = *executor_->VmPid("web");
  Crash();
  EXPECT_TRUE(testing::ProcessAlive(pid));  // work outlives the node process

  NewExecutor();
  EXPECT_EQ(executor_->Running(WorkKind::kVm), std::vector<std::string>{"web"});
  EXPECT_EQ(executor_->Start(Vm("web", image_)).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kRunning); }));
  EXPECT_EQ(executor_->VmPid("web"), pid);
  EXPECT_TRUE(executor_->Stop(WorkKind::kVm, "web"));
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kExited); }));
  EXPECT_EQ(Exit("web").reason, WorkEvent::Reason::kStopped);
  EXPECT_EQ(Count("web", WorkEvent::State::kExited), 1);
  EXPECT_TRUE(Gone(pid));
}

TEST_F(VmExecutorTest, ProcessVmLostWhileTheNodeWasDownEndsOnce) {
  NewExecutor();
  ASSERT_OK(executor_->Start(Vm("web", image_)));
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kRunning); }));
  const pid_t pid = *executor_->VmPid("web");
  Crash();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);  // ours: reap it, as init would

  NewExecutor();
  EXPECT_EQ(executor_->Running(WorkKind::kVm), std::vector<std::string>{"web"});
  ASSERT_TRUE(RunUntil([&] { return Heard("web", WorkEvent::State::kExited); }));
  EXPECT_EQ(Exit("web").reason, WorkEvent::Reason::kFailed);
  EXPECT_THAT(Exit("web").output_tail, HasSubstr("lost while the node was down"));
  EXPECT_EQ(events_.size(), 1u);
  EXPECT_TRUE(executor_->Running(WorkKind::kVm).empty());
  Crash();
  NewExecutor();  // delivered: nothing comes back
  EXPECT_TRUE(executor_->Running(WorkKind::kVm).empty());
}

// --- QEMU ---

class QemuVmTest : public VmExecutorTest {
 protected:
  void SetUp() override {
    VmExecutorTest::SetUp();
    absl::StatusOr<VmHost> host = ProbeVmHost("qemu", options_.task_path, options_.qemu_binary,
                                              options_.qemu_img_binary);
    if (!host.ok()) {
      GTEST_SKIP() << "QEMU cannot run here: " << host.status();
    }
    std::printf("[ qemu     ] %s\n", host->description.c_str());
    base_ = absl::StrCat(dir_, "/base.qcow2");
    const std::string create =
        absl::StrCat(host->qemu_img_binary, " create -q -f qcow2 '", base_, "' 64M");
    ASSERT_EQ(system(create.c_str()), 0) << create;
    options_.vm_driver = "qemu";
  }
  std::string base_;
};

TEST_F(QemuVmTest, BootsThenStopsThroughTheEscalation) {
  NewExecutor();
  ASSERT_EQ(executor_->vm_host().driver, VmDriverKind::kQemu);
  ASSERT_OK(executor_->Start(Vm("q1", base_)));
  // An empty disk: the BIOS finds nothing to boot and idles; QMP still
  // says running.
  ASSERT_TRUE(RunUntil([&] {
    return Heard("q1", WorkEvent::State::kRunning) || Heard("q1", WorkEvent::State::kExited);
  }));
  ASSERT_TRUE(Heard("q1", WorkEvent::State::kRunning))
      << "QEMU failed: " << Exit("q1").output_tail;
  const pid_t pid = *executor_->VmPid("q1");
  const std::string folder = executor_->VmDir("q1");
  EXPECT_TRUE(Exists(absl::StrCat(folder, "/overlay.qcow2")));
  EXPECT_TRUE(testing::ProcessAlive(pid));

  // The guest ignores system_powerdown; quit ends it after the grace.
  EXPECT_TRUE(executor_->Stop(WorkKind::kVm, "q1"));
  ASSERT_TRUE(RunUntil([&] { return Heard("q1", WorkEvent::State::kExited); }));
  EXPECT_EQ(Exit("q1").reason, WorkEvent::Reason::kStopped);
  EXPECT_EQ(Count("q1", WorkEvent::State::kExited), 1);
  EXPECT_TRUE(Gone(pid));
  EXPECT_FALSE(testing::ProcessAlive(pid));
  EXPECT_FALSE(Exists(folder));  // overlay included
}

TEST_F(QemuVmTest, QemuThatDiesFails) {
  NewExecutor();
  ASSERT_OK(executor_->Start(Vm("q2", base_)));
  ASSERT_TRUE(RunUntil([&] {
    return Heard("q2", WorkEvent::State::kRunning) || Heard("q2", WorkEvent::State::kExited);
  }));
  ASSERT_TRUE(Heard("q2", WorkEvent::State::kRunning)) << Exit("q2").output_tail;
  ASSERT_EQ(kill(*executor_->VmPid("q2"), SIGKILL), 0);
  ASSERT_TRUE(RunUntil([&] { return Heard("q2", WorkEvent::State::kExited); }));
  EXPECT_EQ(Exit("q2").reason, WorkEvent::Reason::kFailed);
  EXPECT_EQ(Exit("q2").exit_code, 128 + SIGKILL);
  EXPECT_THAT(Exit("q2").output_tail, HasSubstr("killed by signal 9 without a Stop"));
}

TEST_F(QemuVmTest, QemuIsAdoptedAfterACrashThroughQmp) {
  NewExecutor();
  ASSERT_OK(executor_->Start(Vm("q3", base_)));
  ASSERT_TRUE(RunUntil([&] {
    return Heard("q3", WorkEvent::State::kRunning) || Heard("q3", WorkEvent::State::kExited);
  }));
  ASSERT_TRUE(Heard("q3", WorkEvent::State::kRunning)) << Exit("q3").output_tail;
  const pid_t pid = *executor_->VmPid("q3");
  Crash();
  EXPECT_TRUE(testing::ProcessAlive(pid));

  NewExecutor();
  EXPECT_EQ(executor_->Running(WorkKind::kVm), std::vector<std::string>{"q3"});
  // Reported running again once QMP (reconnected) says so.
  ASSERT_TRUE(RunUntil([&] {
    return Heard("q3", WorkEvent::State::kRunning) || Heard("q3", WorkEvent::State::kExited);
  }));
  ASSERT_TRUE(Heard("q3", WorkEvent::State::kRunning)) << Exit("q3").output_tail;
  EXPECT_TRUE(executor_->Stop(WorkKind::kVm, "q3"));
  ASSERT_TRUE(RunUntil([&] { return Heard("q3", WorkEvent::State::kExited); }));
  EXPECT_EQ(Exit("q3").reason, WorkEvent::Reason::kStopped);
  EXPECT_TRUE(Gone(pid));
}

TEST_F(QemuVmTest, MissingImageFailsBeforeQemuRuns) {
  NewExecutor();
  ASSERT_OK(executor_->Start(Vm("q4", absl::StrCat(dir_, "/none.qcow2"))));
  ASSERT_TRUE(RunUntil([&] { return Heard("q4", WorkEvent::State::kExited); }));
  EXPECT_EQ(Exit("q4").reason, WorkEvent::Reason::kFailed);
  EXPECT_THAT(Exit("q4").output_tail, HasSubstr("no such image"));
}

}  // namespace
}  // namespace blixard::net
