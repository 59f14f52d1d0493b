#include "core/sm/cluster_state_machine.h"

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/rng.h"
#include "core/base/status_matchers.h"
#include "core/sm/testing/command_generator.h"
#include "core/sm/transitions.h"
#include "gmock/gmock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"

namespace blixard {
namespace {

using ::testing::HasSubstr;
using testing::StatusIs;

cluster::Command RegisterCmd(uint64_t id, uint64_t cpu, uint64_t mem,
                             uint64_t disk,
                             std::vector<std::string> features = {}) {
  cluster::Command c;
  auto& r = *c.mutable_register_worker();
  r.set_node_id(id);
  r.set_address("10.0.0.1:7000");
  r.mutable_capacity()->set_cpu_cores(cpu);
  r.mutable_capacity()->set_memory_mb(mem);
  r.mutable_capacity()->set_disk_gb(disk);
  for (auto& f : features) r.add_features(f);
  return c;
}
cluster::Command StatusCmd(uint64_t id, cluster::WorkerStatus status) {
  cluster::Command c;
  c.mutable_set_worker_status()->set_node_id(id);
  c.mutable_set_worker_status()->set_status(status);
  return c;
}
cluster::TaskSpec Spec(uint64_t cpu, uint64_t mem = 100, uint64_t disk = 1,
                       std::vector<std::string> features = {},
                       uint32_t priority = 0, uint32_t max_attempts = 1) {
  cluster::TaskSpec s;
  s.set_command("/bin/true");
  s.mutable_resources()->set_cpu_cores(cpu);
  s.mutable_resources()->set_memory_mb(mem);
  s.mutable_resources()->set_disk_gb(disk);
  for (auto& f : features) s.mutable_resources()->add_required_features(f);
  s.set_priority(priority);
  s.set_max_attempts(max_attempts);
  return s;
}
cluster::Command SubmitCmd(const std::string& id,
                           const cluster::TaskSpec& spec) {
  cluster::Command c;
  c.mutable_submit_task()->set_task_id(id);
  *c.mutable_submit_task()->mutable_spec() = spec;
  return c;
}
cluster::Command StartedCmd(const std::string& id, uint64_t worker,
                            uint32_t attempt) {
  cluster::Command c;
  c.mutable_task_started()->set_task_id(id);
  c.mutable_task_started()->set_worker_id(worker);
  c.mutable_task_started()->set_attempt(attempt);
  return c;
}
cluster::Command FinishedCmd(const std::string& id, uint64_t worker,
                             uint32_t attempt, bool success,
                             bool timed_out = false) {
  cluster::Command c;
  auto& f = *c.mutable_task_finished();
  f.set_task_id(id);
  f.set_worker_id(worker);
  f.mutable_result()->set_attempt(attempt);
  f.mutable_result()->set_success(success);
  f.mutable_result()->set_timed_out(timed_out);
  f.mutable_result()->set_exit_code(success ? 0 : 1);
  return c;
}
cluster::Command CancelCmd(const std::string& id) {
  cluster::Command c;
  c.mutable_cancel_task()->set_task_id(id);
  return c;
}
cluster::VmSpec VmSpecOf(uint64_t vcpus,
                         std::vector<std::string> features = {}) {
  cluster::VmSpec s;
  s.set_vcpus(vcpus);
  s.set_memory_mb(512);
  s.set_disk_gb(10);
  s.set_image("debian-12");
  for (auto& f : features) s.add_features(f);
  return s;
}
cluster::Command CreateVmCmd(const std::string& name,
                             const cluster::VmSpec& s) {
  cluster::Command c;
  c.mutable_create_vm()->set_name(name);
  *c.mutable_create_vm()->mutable_spec() = s;
  return c;
}
cluster::Command ObservedCmd(const std::string& name, uint64_t worker,
                             uint64_t generation,
                             cluster::VmObservedState state) {
  cluster::Command c;
  auto& o = *c.mutable_vm_observed();
  o.set_name(name);
  o.set_worker_id(worker);
  o.set_generation(generation);
  o.set_state(state);
  return c;
}
cluster::Command PutCmd(const std::string& key, const std::string& value) {
  cluster::Command c;
  c.mutable_kv_put()->set_key(key);
  c.mutable_kv_put()->set_value(value);
  return c;
}
cluster::Command CasCmd(const std::string& key, uint64_t expected,
                        const std::string& value) {
  cluster::Command c;
  auto& cas = *c.mutable_kv_compare_and_swap();
  cas.set_key(key);
  cas.set_expected_version(expected);
  cas.set_value(value);
  return c;
}

class ClusterStateMachineTest : public ::testing::Test {
 protected:
  cluster::Result Apply(cluster::Command c, uint64_t advance_ms = 0) {
    now_ms_ += advance_ms;
    c.set_log_time_ms(now_ms_);
    cluster::Result r = sm_.Apply(Index(++index_), c);
    sm_.CheckInvariants();
    return r;
  }
  // Applies an invalid command and checks that no record changed.
  void ExpectRejected(const cluster::Command& c, cluster::ResultCode code,
                      const std::string& message_part) {
    cluster::StateSnapshot before = sm_.ToProto();
    const cluster::Result r = Apply(c);
    EXPECT_EQ(r.code(), code) << r.message();
    EXPECT_THAT(r.message(), HasSubstr(message_part));
    cluster::StateSnapshot after = sm_.ToProto();
    // The applied index and the clock move with every entry (see the header).
    before.clear_applied_index();
    after.clear_applied_index();
    before.clear_now_ms();
    after.clear_now_ms();
    EXPECT_EQ(before.SerializeAsString(), after.SerializeAsString())
        << "a rejected command changed the state: " << c.ShortDebugString();
  }
  const cluster::TaskRecord& Task(const std::string& id) {
    const cluster::TaskRecord* t = sm_.FindTask(id);
    CHECK(t != nullptr);
    return *t;
  }
  const cluster::VmRecord& Vm(const std::string& name) {
    const cluster::VmRecord* v = sm_.FindVm(name);
    CHECK(v != nullptr);
    return *v;
  }

  ClusterStateMachine sm_;
  uint64_t index_ = 0;
  uint64_t now_ms_ = 1000;
};

TEST(ClusterStateMachineOptionsTest, ValidateNamesTheBadField) {
  ClusterStateMachineOptions o;
  EXPECT_OK(o.Validate());
  o.offline_grace_ms = 0;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("offline_grace_ms")));
  o = {};
  o.retry_backoff_max_ms = o.retry_backoff_base_ms - 1;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("retry_backoff_max_ms")));
  o = {};
  o.pending_tasks_max = o.tasks_max + 1;
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("pending_tasks_max")));
  o = {};
  o.client_sessions_max = 0;
  EXPECT_FALSE(o.Validate().ok());
}

TEST(ResultToStatusTest, MapsCodesAndKeepsTheMessage) {
  cluster::Result r;
  EXPECT_OK(ResultToStatus(r));
  r.set_code(cluster::RESULT_ALREADY_EXISTS);
  r.set_message("task 't' already exists");
  EXPECT_THAT(ResultToStatus(r),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'t'")));
  r.set_code(cluster::RESULT_OUT_OF_RANGE);
  EXPECT_THAT(ResultToStatus(r), StatusIs(absl::StatusCode::kOutOfRange));
  r.set_code(cluster::RESULT_FAILED_PRECONDITION);
  EXPECT_THAT(ResultToStatus(r),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ClusterStateMachineTest, ApplyEntryParsesOrRejectsBytes) {
  cluster::Command put = PutCmd("k", "v");
  put.set_log_time_ms(5);
  EXPECT_EQ(sm_.ApplyEntry(Index(1), put.SerializeAsString()).code(),
            cluster::RESULT_OK);
  const uint64_t digest_before = sm_.FindKv("k")->mod_index();
  const cluster::Result bad =
      sm_.ApplyEntry(Index(2), std::string("\xff\xff\xff", 3));
  EXPECT_EQ(bad.code(), cluster::RESULT_INVALID_ARGUMENT);
  EXPECT_THAT(bad.message(), HasSubstr("not a cluster command"));
  EXPECT_EQ(sm_.applied_index(), Index(2));
  EXPECT_EQ(sm_.FindKv("k")->mod_index(), digest_before);
  sm_.CheckInvariants();
}

TEST_F(ClusterStateMachineTest, EmptyCommandIsInvalid) {
  ExpectRejected(cluster::Command{}, cluster::RESULT_INVALID_ARGUMENT,
                 "no operation");
}

TEST_F(ClusterStateMachineTest, RegisterWorkerValidation) {
  ExpectRejected(RegisterCmd(0, 4, 1024, 10), cluster::RESULT_INVALID_ARGUMENT,
                 "node_id");
  cluster::Command no_address = RegisterCmd(1, 4, 1024, 10);
  no_address.mutable_register_worker()->clear_address();
  ExpectRejected(no_address, cluster::RESULT_INVALID_ARGUMENT, "address");
  ExpectRejected(RegisterCmd(1, 0, 0, 0), cluster::RESULT_INVALID_ARGUMENT,
                 "all 0");
  ExpectRejected(RegisterCmd(1, kWorkerCpuCoresMax + 1, 1, 1),
                 cluster::RESULT_INVALID_ARGUMENT, "cpu_cores");
  ExpectRejected(RegisterCmd(1, 1, kWorkerMemoryMbMax + 1, 1),
                 cluster::RESULT_INVALID_ARGUMENT, "memory_mb");
  ExpectRejected(RegisterCmd(1, 1, 1, kWorkerDiskGbMax + 1),
                 cluster::RESULT_INVALID_ARGUMENT, "disk_gb");
  ExpectRejected(RegisterCmd(1, 4, 1024, 10, {""}),
                 cluster::RESULT_INVALID_ARGUMENT, "feature");
  ExpectRejected(
      RegisterCmd(1, 4, 1024, 10, {std::string(kFeatureBytesMax + 1, 'f')}),
      cluster::RESULT_INVALID_ARGUMENT, "feature");
  ExpectRejected(RegisterCmd(1, 4, 1024, 10, {"\xff"}),
                 cluster::RESULT_INVALID_ARGUMENT, "UTF-8");
  cluster::Command bad_address = RegisterCmd(1, 4, 1024, 10);
  bad_address.mutable_register_worker()->set_address("\xc0\x80");  // overlong
  ExpectRejected(bad_address, cluster::RESULT_INVALID_ARGUMENT, "UTF-8");
  std::vector<std::string> many(kWorkerFeaturesMax + 1, "f");
  ExpectRejected(RegisterCmd(1, 4, 1024, 10, many),
                 cluster::RESULT_INVALID_ARGUMENT, "features");
  EXPECT_EQ(sm_.workers().size(), 0u);
}

TEST_F(ClusterStateMachineTest, RegisterIsIdempotentForTheSameDefinition) {
  ASSERT_EQ(Apply(RegisterCmd(1, 4, 1024, 10, {"ssd", "gpu", "ssd"})).code(),
            cluster::RESULT_OK);
  const cluster::WorkerRecord& w = *sm_.FindWorker(1);
  EXPECT_EQ(w.status(), cluster::WORKER_ONLINE);
  EXPECT_THAT(w.features(), ::testing::ElementsAre("gpu", "ssd"));
  const cluster::Result again =
      Apply(RegisterCmd(1, 4, 1024, 10, {"gpu", "ssd"}));
  EXPECT_EQ(again.code(), cluster::RESULT_OK);
  EXPECT_EQ(again.worker().node_id(), 1u);
  ExpectRejected(RegisterCmd(1, 8, 1024, 10), cluster::RESULT_ALREADY_EXISTS,
                 "worker 1");
}

TEST_F(ClusterStateMachineTest, WorkerTableIsBounded) {
  ClusterStateMachineOptions o;
  o.workers_max = 1;
  sm_ = ClusterStateMachine(o);
  ASSERT_EQ(Apply(RegisterCmd(1, 4, 1024, 10)).code(), cluster::RESULT_OK);
  ExpectRejected(RegisterCmd(2, 4, 1024, 10),
                 cluster::RESULT_RESOURCE_EXHAUSTED, "full");
}

TEST_F(ClusterStateMachineTest, SetWorkerStatusValidation) {
  ExpectRejected(StatusCmd(9, cluster::WORKER_BUSY), cluster::RESULT_NOT_FOUND,
                 "worker 9");
  Apply(RegisterCmd(1, 4, 1024, 10));
  ExpectRejected(StatusCmd(1, cluster::WORKER_STATUS_UNSPECIFIED),
                 cluster::RESULT_INVALID_ARGUMENT, "not a valid status");
  ExpectRejected(StatusCmd(1, static_cast<cluster::WorkerStatus>(42)),
                 cluster::RESULT_INVALID_ARGUMENT, "not a valid status");
  ExpectRejected(StatusCmd(1, cluster::WORKER_ONLINE),
                 cluster::RESULT_FAILED_PRECONDITION, "ONLINE -> ONLINE");
  ASSERT_EQ(Apply(StatusCmd(1, cluster::WORKER_FAILED)).code(),
            cluster::RESULT_OK);
  ExpectRejected(StatusCmd(1, cluster::WORKER_ONLINE),
                 cluster::RESULT_FAILED_PRECONDITION, "FAILED -> ONLINE");
}

TEST_F(ClusterStateMachineTest, WorkerLostMarksOfflineAndValidates) {
  cluster::Command lost;
  lost.mutable_worker_lost()->set_node_id(1);
  ExpectRejected(lost, cluster::RESULT_NOT_FOUND, "worker 1");
  Apply(RegisterCmd(1, 4, 1024, 10));
  lost.mutable_worker_lost()->set_reason(
      std::string(kTaskErrorBytesMax + 1, 'r'));
  ExpectRejected(lost, cluster::RESULT_INVALID_ARGUMENT, "reason");
  lost.mutable_worker_lost()->set_reason("ttl");
  ASSERT_EQ(Apply(lost).code(), cluster::RESULT_OK);
  EXPECT_EQ(sm_.FindWorker(1)->status(), cluster::WORKER_OFFLINE);
  ExpectRejected(lost, cluster::RESULT_FAILED_PRECONDITION,
                 "OFFLINE -> OFFLINE");
}

TEST_F(ClusterStateMachineTest, MemberJoinedRecordsTheFirstStoreOfEachNodeId) {
  const auto joined = [](uint64_t node_id, uint64_t nonce) {
    cluster::Command c;
    c.mutable_member_joined()->set_node_id(node_id);
    c.mutable_member_joined()->set_store_nonce(nonce);
    return c;
  };
  ExpectRejected(joined(0, 5), cluster::RESULT_INVALID_ARGUMENT, "node_id");
  ExpectRejected(joined(4, 0), cluster::RESULT_INVALID_ARGUMENT, "store_nonce");
  EXPECT_EQ(sm_.FindMember(4), nullptr);
  ASSERT_EQ(Apply(joined(4, 77)).code(), cluster::RESULT_OK);
  const Index joined_at(index_);
  ASSERT_NE(sm_.FindMember(4), nullptr);
  EXPECT_EQ(sm_.FindMember(4)->store_nonce(), 77u);
  EXPECT_EQ(sm_.FindMember(4)->joined_index(), joined_at.value());
  // The same store again (a retry) changes nothing; another store of the
  // same id (a wiped disk) is refused and changes nothing.
  EXPECT_EQ(Apply(joined(4, 77)).code(), cluster::RESULT_OK);
  ExpectRejected(joined(4, 78), cluster::RESULT_FAILED_PRECONDITION, "another store");
  EXPECT_EQ(sm_.FindMember(4)->store_nonce(), 77u);
  EXPECT_EQ(sm_.FindMember(4)->joined_index(), joined_at.value());
  // Members are part of the snapshot, checked on restore.
  ClusterStateMachine restored;
  ASSERT_OK(restored.Restore(sm_.Snapshot()));
  ASSERT_NE(restored.FindMember(4), nullptr);
  EXPECT_EQ(restored.FindMember(4)->store_nonce(), 77u);
  cluster::StateSnapshot bad = sm_.ToProto();
  bad.mutable_members(0)->set_store_nonce(0);
  EXPECT_THAT(restored.RestoreFromProto(bad), StatusIs(absl::StatusCode::kDataLoss));
  bad = sm_.ToProto();
  *bad.add_members() = bad.members(0);
  EXPECT_THAT(restored.RestoreFromProto(bad),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("twice")));
}

TEST_F(ClusterStateMachineTest, RemoveWorkerValidationAndRequeue) {
  cluster::Command remove;
  remove.mutable_remove_worker()->set_node_id(3);
  ExpectRejected(remove, cluster::RESULT_NOT_FOUND, "worker 3");
  Apply(RegisterCmd(3, 4, 1024, 10));
  Apply(SubmitCmd("a", Spec(2)));
  ASSERT_EQ(Task("a").state(), cluster::TASK_ASSIGNED);
  const cluster::Result r = Apply(remove);
  ASSERT_EQ(r.code(), cluster::RESULT_OK);
  EXPECT_EQ(r.worker().node_id(), 3u);
  EXPECT_EQ(sm_.FindWorker(3), nullptr);
  EXPECT_EQ(Task("a").state(), cluster::TASK_PENDING);
  EXPECT_EQ(Task("a").failed_attempts(), 0u);
  // A new worker takes the requeued task at once.
  Apply(RegisterCmd(4, 4, 1024, 10));
  EXPECT_EQ(Task("a").state(), cluster::TASK_ASSIGNED);
  EXPECT_EQ(Task("a").worker_id(), 4u);
  EXPECT_EQ(Task("a").attempt(), 2u);
}

TEST_F(ClusterStateMachineTest, SubmitTaskValidation) {
  ExpectRejected(SubmitCmd("", Spec(1)), cluster::RESULT_INVALID_ARGUMENT,
                 "task_id");
  ExpectRejected(SubmitCmd(std::string(kTaskIdBytesMax + 1, 't'), Spec(1)),
                 cluster::RESULT_INVALID_ARGUMENT, "task_id");
  cluster::TaskSpec s = Spec(1);
  s.clear_command();
  ExpectRejected(SubmitCmd("t", s), cluster::RESULT_INVALID_ARGUMENT,
                 "command");
  s = Spec(1);
  for (size_t i = 0; i <= kTaskArgsMax; ++i) s.add_args("x");
  ExpectRejected(SubmitCmd("t", s), cluster::RESULT_INVALID_ARGUMENT, "args");
  s = Spec(1);
  s.add_args(std::string(kTaskArgBytesMax + 1, 'x'));
  ExpectRejected(SubmitCmd("t", s), cluster::RESULT_INVALID_ARGUMENT, "arg");
  ExpectRejected(SubmitCmd("\xed\xa0\x80", Spec(1)),  // a surrogate
                 cluster::RESULT_INVALID_ARGUMENT, "UTF-8");
  s = Spec(1);
  s.set_command("/bin/\xfe");
  ExpectRejected(SubmitCmd("t", s), cluster::RESULT_INVALID_ARGUMENT, "UTF-8");
  ExpectRejected(SubmitCmd("t", Spec(0, 0, 0)),
                 cluster::RESULT_INVALID_ARGUMENT, "all 0");
  ExpectRejected(SubmitCmd("t", Spec(kWorkerCpuCoresMax + 1)),
                 cluster::RESULT_INVALID_ARGUMENT, "cpu_cores");
  ExpectRejected(SubmitCmd("t", Spec(1, 1, 1, {""})),
                 cluster::RESULT_INVALID_ARGUMENT, "feature");
  s = Spec(1);
  s.set_timeout_secs(kTaskTimeoutSecsMax + 1);
  ExpectRejected(SubmitCmd("t", s), cluster::RESULT_INVALID_ARGUMENT,
                 "timeout_secs");
  ExpectRejected(SubmitCmd("t", Spec(1, 1, 1, {}, 0, 0)),
                 cluster::RESULT_INVALID_ARGUMENT, "max_attempts");
  ExpectRejected(SubmitCmd("t", Spec(1, 1, 1, {}, 0, kTaskMaxAttemptsMax + 1)),
                 cluster::RESULT_INVALID_ARGUMENT, "max_attempts");
  ExpectRejected(SubmitCmd("t", Spec(1, 1, 1, {}, kTaskPriorityMax + 1)),
                 cluster::RESULT_INVALID_ARGUMENT, "priority");
  EXPECT_TRUE(sm_.tasks().empty());
}

TEST_F(ClusterStateMachineTest, SubmitTaskIsIdempotentPerId) {
  const cluster::Result first =
      Apply(SubmitCmd("t", Spec(2, 100, 1, {"b", "a"})));
  ASSERT_EQ(first.code(), cluster::RESULT_OK);
  EXPECT_EQ(first.task().state(), cluster::TASK_PENDING);
  // Feature order is normalized, so this is the same spec.
  const cluster::Result same =
      Apply(SubmitCmd("t", Spec(2, 100, 1, {"a", "b"})));
  EXPECT_EQ(same.code(), cluster::RESULT_OK);
  EXPECT_EQ(same.task().submit_index(), first.task().submit_index());
  ExpectRejected(SubmitCmd("t", Spec(3)), cluster::RESULT_ALREADY_EXISTS,
                 "'t'");
}

TEST_F(ClusterStateMachineTest, TaskTablesAreBounded) {
  ClusterStateMachineOptions o;
  o.pending_tasks_max = 1;
  o.tasks_max = 2;
  sm_ = ClusterStateMachine(o);
  Apply(SubmitCmd("a", Spec(1)));
  ExpectRejected(SubmitCmd("b", Spec(1)), cluster::RESULT_RESOURCE_EXHAUSTED,
                 "pending queue");
  Apply(RegisterCmd(1, 8, 4096, 100));
  ASSERT_EQ(Apply(SubmitCmd("b", Spec(1))).code(), cluster::RESULT_OK);
  ExpectRejected(SubmitCmd("c", Spec(1)), cluster::RESULT_RESOURCE_EXHAUSTED,
                 "task table");
}

TEST_F(ClusterStateMachineTest, PlacementIsBestFitWithLowestIdOnTies) {
  Apply(RegisterCmd(5, 16, 8192, 100));
  Apply(RegisterCmd(3, 4, 8192, 100));
  Apply(RegisterCmd(2, 4, 8192, 100, {"gpu"}));
  EXPECT_EQ(Apply(SubmitCmd("a", Spec(3))).task().worker_id(),
            2u);  // tie: 2 < 3
  EXPECT_EQ(Apply(SubmitCmd("b", Spec(3))).task().worker_id(), 3u);
  EXPECT_EQ(Apply(SubmitCmd("c", Spec(3))).task().worker_id(), 5u);
  EXPECT_EQ(Apply(SubmitCmd("d", Spec(1, 100, 1, {"gpu"}))).task().worker_id(),
            2u);
  EXPECT_EQ(Apply(SubmitCmd("e", Spec(1, 100, 1, {"gpu"}))).task().state(),
            cluster::TASK_PENDING);
  EXPECT_EQ(sm_.FindWorker(5)->reserved().cpu_cores(), 3u);
}

TEST_F(ClusterStateMachineTest,
       PendingScanUsesPriorityThenSubmitOrderWithBackfill) {
  Apply(SubmitCmd("big-low", Spec(4, 100, 1, {}, 0)));
  Apply(SubmitCmd("small-low", Spec(1, 100, 1, {}, 0)));
  Apply(SubmitCmd("big-high", Spec(4, 100, 1, {}, 5)));
  Apply(SubmitCmd("mid-high", Spec(3, 100, 1, {}, 5)));
  // One worker with 5 cores: big-high (4) first, then mid-high (3) does not
  // fit, big-low does not fit, small-low (1) backfills.
  Apply(RegisterCmd(1, 5, 8192, 100));
  EXPECT_EQ(Task("big-high").state(), cluster::TASK_ASSIGNED);
  EXPECT_EQ(Task("mid-high").state(), cluster::TASK_PENDING);
  EXPECT_EQ(Task("big-low").state(), cluster::TASK_PENDING);
  EXPECT_EQ(Task("small-low").state(), cluster::TASK_ASSIGNED);
  // Capacity frees: mid-high goes before big-low.
  Apply(FinishedCmd("big-high", 1, 1, true));
  EXPECT_EQ(Task("big-high").state(), cluster::TASK_SUCCEEDED);
  EXPECT_EQ(Task("mid-high").state(), cluster::TASK_ASSIGNED);
  EXPECT_EQ(Task("big-low").state(), cluster::TASK_PENDING);
}

TEST_F(ClusterStateMachineTest, TaskStartedValidation) {
  ExpectRejected(StartedCmd("x", 1, 1), cluster::RESULT_NOT_FOUND, "'x'");
  Apply(SubmitCmd("t", Spec(1)));
  ExpectRejected(StartedCmd("t", 1, 1), cluster::RESULT_FAILED_PRECONDITION,
                 "PENDING");
  Apply(RegisterCmd(1, 4, 1024, 10));
  ExpectRejected(StartedCmd("t", 2, 1), cluster::RESULT_FAILED_PRECONDITION,
                 "assigned to worker 1");
  ExpectRejected(StartedCmd("t", 1, 2), cluster::RESULT_FAILED_PRECONDITION,
                 "stale");
  ASSERT_EQ(Apply(StartedCmd("t", 1, 1)).code(), cluster::RESULT_OK);
  EXPECT_EQ(Task("t").state(), cluster::TASK_RUNNING);
  ExpectRejected(StartedCmd("t", 1, 1), cluster::RESULT_FAILED_PRECONDITION,
                 "RUNNING");
}

TEST_F(ClusterStateMachineTest, TaskFinishedValidationAndResultTruncation) {
  ExpectRejected(FinishedCmd("x", 1, 1, true), cluster::RESULT_NOT_FOUND,
                 "'x'");
  Apply(SubmitCmd("t", Spec(1)));
  ExpectRejected(FinishedCmd("t", 1, 1, true),
                 cluster::RESULT_FAILED_PRECONDITION, "PENDING");
  Apply(RegisterCmd(1, 4, 1024, 10));
  ExpectRejected(FinishedCmd("t", 7, 1, true),
                 cluster::RESULT_FAILED_PRECONDITION, "assigned to worker 1");
  ExpectRejected(FinishedCmd("t", 1, 3, true),
                 cluster::RESULT_FAILED_PRECONDITION, "stale");
  cluster::Command bad_error = FinishedCmd("t", 1, 1, false);
  bad_error.mutable_task_finished()->mutable_result()->set_error("\x80oops");
  ExpectRejected(bad_error, cluster::RESULT_INVALID_ARGUMENT, "UTF-8");
  cluster::Command done = FinishedCmd("t", 1, 1, true);
  std::string output(kTaskOutputTailBytesMax + 10, 'a');
  output.append("END");
  done.mutable_task_finished()->mutable_result()->set_output_tail(output);
  done.mutable_task_finished()->mutable_result()->set_execution_time_ms(1234);
  ASSERT_EQ(Apply(done).code(), cluster::RESULT_OK);
  const cluster::TaskRecord& t = Task("t");
  EXPECT_EQ(t.state(), cluster::TASK_SUCCEEDED);
  EXPECT_EQ(t.result().output_tail().size(), kTaskOutputTailBytesMax);
  EXPECT_THAT(t.result().output_tail(), ::testing::EndsWith("END"));
  EXPECT_EQ(t.result().execution_time_ms(), 1234u);
  EXPECT_EQ(sm_.FindWorker(1)->reserved().cpu_cores(), 0u);
  ExpectRejected(FinishedCmd("t", 1, 1, true),
                 cluster::RESULT_FAILED_PRECONDITION, "SUCCEEDED");
}

TEST_F(ClusterStateMachineTest, FailuresRetryWithExponentialBackoffInLogTime) {
  ClusterStateMachineOptions o;
  o.retry_backoff_base_ms = 1000;
  o.retry_backoff_max_ms = 3000;
  sm_ = ClusterStateMachine(o);
  Apply(RegisterCmd(1, 4, 1024, 10));
  Apply(SubmitCmd("t", Spec(1, 100, 1, {}, 0, 4)));
  ASSERT_EQ(Apply(FinishedCmd("t", 1, 1, false)).code(), cluster::RESULT_OK);
  EXPECT_EQ(Task("t").state(), cluster::TASK_PENDING);
  EXPECT_EQ(Task("t").failed_attempts(), 1u);
  EXPECT_EQ(Task("t").not_before_ms(), now_ms_ + 1000);
  cluster::Command tick;
  tick.mutable_advance_time();
  Apply(tick, 999);
  EXPECT_EQ(Task("t").state(), cluster::TASK_PENDING);  // not yet due
  Apply(tick, 1);
  EXPECT_EQ(Task("t").state(), cluster::TASK_ASSIGNED);
  EXPECT_EQ(Task("t").attempt(), 2u);
  Apply(FinishedCmd("t", 1, 2, false));
  EXPECT_EQ(Task("t").not_before_ms(), now_ms_ + 2000);  // doubled
  Apply(tick, 2000);
  Apply(FinishedCmd("t", 1, 3, false));
  EXPECT_EQ(Task("t").not_before_ms(), now_ms_ + 3000);  // capped
  Apply(tick, 3000);
  ASSERT_EQ(Task("t").state(), cluster::TASK_ASSIGNED);
  Apply(FinishedCmd("t", 1, 4, false, /*timed_out=*/true));
  EXPECT_EQ(Task("t").state(), cluster::TASK_TIMED_OUT);  // out of attempts
  EXPECT_EQ(Task("t").failed_attempts(), 4u);
  EXPECT_TRUE(Task("t").result().timed_out());
}

TEST_F(ClusterStateMachineTest, SingleAttemptFailureIsFinal) {
  Apply(RegisterCmd(1, 4, 1024, 10));
  Apply(SubmitCmd("t", Spec(1)));
  Apply(FinishedCmd("t", 1, 1, false));
  EXPECT_EQ(Task("t").state(), cluster::TASK_FAILED);
  EXPECT_EQ(Task("t").result().exit_code(), 1);
}

TEST_F(ClusterStateMachineTest, CancelTaskValidationAndRelease) {
  cluster::Command cancel;
  cancel.mutable_cancel_task()->set_task_id("t");
  ExpectRejected(cancel, cluster::RESULT_NOT_FOUND, "'t'");
  Apply(RegisterCmd(1, 4, 1024, 10));
  Apply(SubmitCmd("t", Spec(4)));
  Apply(SubmitCmd("u", Spec(4)));
  EXPECT_EQ(Task("u").state(), cluster::TASK_PENDING);
  ASSERT_EQ(Apply(cancel).code(), cluster::RESULT_OK);
  EXPECT_EQ(Task("t").state(), cluster::TASK_CANCELLED);
  EXPECT_EQ(Task("u").state(), cluster::TASK_ASSIGNED);  // backfilled
  ExpectRejected(cancel, cluster::RESULT_FAILED_PRECONDITION,
                 "already CANCELLED");
  // Cancelling a pending task in backoff.
  ClusterStateMachineOptions o;
  sm_ = ClusterStateMachine(o);
  Apply(RegisterCmd(1, 4, 1024, 10));
  Apply(SubmitCmd("r", Spec(1, 100, 1, {}, 0, 3)));
  Apply(FinishedCmd("r", 1, 1, false));
  cancel.mutable_cancel_task()->set_task_id("r");
  ASSERT_EQ(Apply(cancel).code(), cluster::RESULT_OK);
  EXPECT_EQ(Task("r").state(), cluster::TASK_CANCELLED);
}

TEST_F(ClusterStateMachineTest, OfflineWorkerKeepsTasksUntilGraceEnds) {
  ClusterStateMachineOptions o;
  o.offline_grace_ms = 10'000;
  sm_ = ClusterStateMachine(o);
  Apply(RegisterCmd(1, 4, 1024, 10));
  Apply(RegisterCmd(2, 2, 1024, 10));
  Apply(SubmitCmd("t", Spec(2)));
  ASSERT_EQ(Task("t").worker_id(), 2u);
  Apply(StatusCmd(2, cluster::WORKER_OFFLINE));
  cluster::Command tick;
  tick.mutable_advance_time();
  Apply(tick, 9'999);
  EXPECT_EQ(Task("t").worker_id(), 2u);
  Apply(tick, 1);
  EXPECT_EQ(Task("t").state(), cluster::TASK_ASSIGNED);
  EXPECT_EQ(Task("t").worker_id(), 1u);
  EXPECT_EQ(Task("t").failed_attempts(), 0u);
  // Back ONLINE before the grace ends: nothing moves.
  Apply(SubmitCmd("u", Spec(2)));
  ASSERT_EQ(Task("u").worker_id(), 1u);
  Apply(StatusCmd(1, cluster::WORKER_OFFLINE));
  Apply(tick, 5'000);
  Apply(StatusCmd(1, cluster::WORKER_ONLINE));
  Apply(tick, 10'000);
  EXPECT_EQ(Task("u").worker_id(), 1u);
}

TEST_F(ClusterStateMachineTest, FailedWorkerRequeuesAtOnce) {
  Apply(RegisterCmd(1, 4, 1024, 100));
  Apply(SubmitCmd("t", Spec(2)));
  Apply(CreateVmCmd("v", VmSpecOf(1)));
  ASSERT_EQ(Vm("v").worker_id(), 1u);
  Apply(StatusCmd(1, cluster::WORKER_FAILED));
  EXPECT_EQ(Task("t").state(), cluster::TASK_PENDING);
  EXPECT_EQ(Vm("v").worker_id(), 0u);
  Apply(RegisterCmd(2, 4, 1024, 100));
  EXPECT_EQ(Task("t").worker_id(), 2u);
  EXPECT_EQ(Vm("v").worker_id(), 2u);
  EXPECT_EQ(Vm("v").generation(), 2u);
}

TEST_F(ClusterStateMachineTest, DrainingTakesNoWorkTasksFinishVmsMigrate) {
  Apply(RegisterCmd(1, 4, 1024, 100));
  Apply(SubmitCmd("t", Spec(2)));
  Apply(CreateVmCmd("v", VmSpecOf(1)));
  ASSERT_EQ(Vm("v").worker_id(), 1u);
  Apply(StatusCmd(1, cluster::WORKER_DRAINING));
  Apply(SubmitCmd("u", Spec(1)));
  EXPECT_EQ(Task("u").state(), cluster::TASK_PENDING);  // no new work
  EXPECT_EQ(Task("t").worker_id(), 1u);                 // tasks finish there
  EXPECT_EQ(Vm("v").worker_id(), 1u);                   // nowhere to go yet
  Apply(RegisterCmd(2, 4, 1024, 100));
  EXPECT_EQ(Vm("v").worker_id(), 2u);  // migrated
  EXPECT_EQ(Vm("v").generation(), 2u);
  EXPECT_EQ(Task("u").worker_id(), 2u);
  EXPECT_EQ(Task("t").worker_id(), 1u);
  Apply(FinishedCmd("t", 1, 1, true));
  EXPECT_EQ(sm_.FindWorker(1)->reserved().cpu_cores(), 0u);
}

// The scan tries a VM that was already waiting at the last scan only on the
// workers that gained room since; these check that such a VM is placed as
// soon as one does, and that new or newly movable VMs still see every worker.
TEST_F(ClusterStateMachineTest, WaitingVmIsPlacedWhenAWorkerGainsRoom) {
  Apply(RegisterCmd(1, 4, 4096, 100));
  ASSERT_EQ(Apply(SubmitCmd("t", Spec(3))).task().worker_id(), 1u);
  Apply(CreateVmCmd("a", VmSpecOf(2)));
  EXPECT_EQ(Vm("a").worker_id(), 0u);
  Apply(RegisterCmd(2, 1, 4096, 100));  // gains room, but too little for "a"
  EXPECT_EQ(Vm("a").worker_id(), 0u);
  // A new VM behind "a" still sees every worker: best fit is worker 1.
  EXPECT_EQ(Apply(CreateVmCmd("b", VmSpecOf(1))).vm().worker_id(), 1u);
  // Worker 1 gains 3 cores: "a", waiting since before, goes there.
  Apply(FinishedCmd("t", 1, 1, true));
  EXPECT_EQ(Vm("a").worker_id(), 1u);
  EXPECT_EQ(Vm("a").generation(), 1u);
}

TEST_F(ClusterStateMachineTest, VmThatStartsWaitingWhileOthersWaitSeesAllWorkers) {
  Apply(RegisterCmd(1, 4, 4096, 100));
  Apply(RegisterCmd(2, 2, 4096, 100));
  Apply(CreateVmCmd("big", VmSpecOf(8)));  // fits nowhere, ever
  ASSERT_EQ(Apply(CreateVmCmd("v", VmSpecOf(2))).vm().worker_id(), 2u);
  ASSERT_EQ(Apply(CreateVmCmd("w", VmSpecOf(2))).vm().worker_id(), 1u);
  // Worker 2 fails: "v" waits again, and goes to worker 1, which has not
  // gained room since the last scan.
  Apply(StatusCmd(2, cluster::WORKER_FAILED));
  EXPECT_EQ(Vm("v").worker_id(), 1u);
  EXPECT_EQ(Vm("v").generation(), 2u);
  EXPECT_EQ(Vm("big").worker_id(), 0u);
}

TEST_F(ClusterStateMachineTest, VmOnDrainingWorkerMigratesWhenRoomFrees) {
  Apply(RegisterCmd(1, 2, 4096, 100));
  Apply(RegisterCmd(2, 2, 4096, 100));
  ASSERT_EQ(Apply(SubmitCmd("t", Spec(2))).task().worker_id(), 1u);
  ASSERT_EQ(Apply(CreateVmCmd("v", VmSpecOf(2))).vm().worker_id(), 2u);
  Apply(CreateVmCmd("big", VmSpecOf(8)));
  Apply(StatusCmd(2, cluster::WORKER_DRAINING));
  EXPECT_EQ(Vm("v").worker_id(), 2u);  // worker 1 is full
  Apply(SubmitCmd("u", Spec(1)));      // scans with no room gained
  EXPECT_EQ(Vm("v").worker_id(), 2u);
  // Worker 1 gains room: the VM, on a worker that was already draining at
  // the last scan, migrates there.
  Apply(FinishedCmd("t", 1, 1, true));
  EXPECT_EQ(Vm("v").worker_id(), 1u);
  EXPECT_EQ(Vm("v").generation(), 2u);
  EXPECT_EQ(Task("u").state(), cluster::TASK_PENDING);  // the VM went first
  EXPECT_EQ(Vm("big").worker_id(), 0u);
}

TEST_F(ClusterStateMachineTest, WorkerThatStartsDrainingMovesVmsToAnyWorker) {
  Apply(RegisterCmd(1, 4, 4096, 100));
  Apply(RegisterCmd(2, 1, 4096, 100));
  Apply(CreateVmCmd("big", VmSpecOf(8)));
  ASSERT_EQ(Apply(CreateVmCmd("v", VmSpecOf(1))).vm().worker_id(), 2u);
  // No worker gained room, but the VMs of a newly draining worker are tried
  // everywhere.
  Apply(StatusCmd(2, cluster::WORKER_DRAINING));
  EXPECT_EQ(Vm("v").worker_id(), 1u);
  EXPECT_EQ(Vm("big").worker_id(), 0u);
}

TEST_F(ClusterStateMachineTest, CreateVmValidationAndIdempotency) {
  ExpectRejected(CreateVmCmd("", VmSpecOf(1)), cluster::RESULT_INVALID_ARGUMENT,
                 "vm name");
  cluster::VmSpec s = VmSpecOf(1);
  s.clear_image();
  ExpectRejected(CreateVmCmd("v", s), cluster::RESULT_INVALID_ARGUMENT,
                 "image");
  s = VmSpecOf(0);
  s.set_memory_mb(0);
  s.set_disk_gb(0);
  ExpectRejected(CreateVmCmd("v", s), cluster::RESULT_INVALID_ARGUMENT,
                 "all 0");
  ExpectRejected(CreateVmCmd("v", VmSpecOf(kWorkerCpuCoresMax + 1)),
                 cluster::RESULT_INVALID_ARGUMENT, "cpu_cores");
  ExpectRejected(CreateVmCmd("v", VmSpecOf(1, {""})),
                 cluster::RESULT_INVALID_ARGUMENT, "feature");
  const cluster::Result r = Apply(CreateVmCmd("v", VmSpecOf(1)));
  ASSERT_EQ(r.code(), cluster::RESULT_OK);
  EXPECT_EQ(r.vm().desired(), cluster::VM_DESIRED_STOPPED);
  EXPECT_EQ(r.vm().worker_id(), 0u);  // no workers yet
  EXPECT_EQ(Apply(CreateVmCmd("v", VmSpecOf(1))).code(), cluster::RESULT_OK);
  ExpectRejected(CreateVmCmd("v", VmSpecOf(2)), cluster::RESULT_ALREADY_EXISTS,
                 "'v'");
  ClusterStateMachineOptions o;
  o.vms_max = 1;
  sm_ = ClusterStateMachine(o);
  Apply(CreateVmCmd("v", VmSpecOf(1)));
  ExpectRejected(CreateVmCmd("w", VmSpecOf(1)),
                 cluster::RESULT_RESOURCE_EXHAUSTED, "vm table");
}

TEST_F(ClusterStateMachineTest, StartStopDeleteVmValidation) {
  cluster::Command start, stop, del;
  start.mutable_start_vm()->set_name("v");
  stop.mutable_stop_vm()->set_name("v");
  del.mutable_delete_vm()->set_name("v");
  ExpectRejected(start, cluster::RESULT_NOT_FOUND, "'v'");
  ExpectRejected(stop, cluster::RESULT_NOT_FOUND, "'v'");
  ExpectRejected(del, cluster::RESULT_NOT_FOUND, "'v'");
  Apply(RegisterCmd(1, 4, 4096, 100));
  Apply(CreateVmCmd("v", VmSpecOf(2)));
  ExpectRejected(stop, cluster::RESULT_FAILED_PRECONDITION,
                 "already desired STOPPED");
  ASSERT_EQ(Apply(start).code(), cluster::RESULT_OK);
  EXPECT_EQ(Vm("v").desired(), cluster::VM_DESIRED_RUNNING);
  ExpectRejected(start, cluster::RESULT_FAILED_PRECONDITION,
                 "already desired RUNNING");
  ASSERT_EQ(Apply(stop).code(), cluster::RESULT_OK);
  EXPECT_EQ(sm_.FindWorker(1)->reserved().cpu_cores(),
            2u);  // reserved while it exists
  const cluster::Result r = Apply(del);
  ASSERT_EQ(r.code(), cluster::RESULT_OK);
  EXPECT_EQ(r.vm().name(), "v");
  EXPECT_EQ(sm_.FindVm("v"), nullptr);
  EXPECT_EQ(sm_.FindWorker(1)->reserved().cpu_cores(), 0u);
}

TEST_F(ClusterStateMachineTest, MigrateVmValidation) {
  cluster::Command migrate;
  migrate.mutable_migrate_vm()->set_name("v");
  ExpectRejected(migrate, cluster::RESULT_NOT_FOUND, "'v'");
  Apply(CreateVmCmd("v", VmSpecOf(2, {"kvm"})));
  ExpectRejected(migrate, cluster::RESULT_FAILED_PRECONDITION, "not placed");
  Apply(RegisterCmd(1, 4, 4096, 100, {"kvm"}));
  ASSERT_EQ(Vm("v").worker_id(), 1u);
  ExpectRejected(migrate, cluster::RESULT_RESOURCE_EXHAUSTED,
                 "no other ONLINE");
  migrate.mutable_migrate_vm()->set_target_worker_id(1);
  ExpectRejected(migrate, cluster::RESULT_FAILED_PRECONDITION,
                 "already on worker 1");
  migrate.mutable_migrate_vm()->set_target_worker_id(9);
  ExpectRejected(migrate, cluster::RESULT_NOT_FOUND, "worker 9");
  Apply(RegisterCmd(2, 4, 4096, 100));  // lacks kvm
  migrate.mutable_migrate_vm()->set_target_worker_id(2);
  ExpectRejected(migrate, cluster::RESULT_FAILED_PRECONDITION,
                 "lacks a feature");
  Apply(RegisterCmd(3, 1, 4096, 100, {"kvm"}));  // too small
  migrate.mutable_migrate_vm()->set_target_worker_id(3);
  ExpectRejected(migrate, cluster::RESULT_RESOURCE_EXHAUSTED, "no room");
  Apply(RegisterCmd(4, 8, 4096, 100, {"kvm"}));
  Apply(StatusCmd(4, cluster::WORKER_BUSY));
  migrate.mutable_migrate_vm()->set_target_worker_id(4);
  ExpectRejected(migrate, cluster::RESULT_FAILED_PRECONDITION,
                 "BUSY, not ONLINE");
  Apply(StatusCmd(4, cluster::WORKER_ONLINE));
  const cluster::Result r = Apply(migrate);
  ASSERT_EQ(r.code(), cluster::RESULT_OK);
  EXPECT_EQ(r.vm().worker_id(), 4u);
  EXPECT_EQ(r.vm().generation(), 2u);
  EXPECT_EQ(sm_.FindWorker(1)->reserved().cpu_cores(), 0u);
  EXPECT_EQ(sm_.FindWorker(4)->reserved().cpu_cores(), 2u);
}

TEST_F(ClusterStateMachineTest, VmObservedValidation) {
  ExpectRejected(ObservedCmd("v", 1, 1, cluster::VM_CREATING),
                 cluster::RESULT_NOT_FOUND, "'v'");
  Apply(RegisterCmd(1, 4, 4096, 100));
  Apply(CreateVmCmd("v", VmSpecOf(1)));
  ExpectRejected(ObservedCmd("v", 1, 1, cluster::VM_OBSERVED_UNSPECIFIED),
                 cluster::RESULT_INVALID_ARGUMENT, "not valid");
  ExpectRejected(ObservedCmd("v", 2, 1, cluster::VM_CREATING),
                 cluster::RESULT_FAILED_PRECONDITION, "placed on worker 1");
  ExpectRejected(ObservedCmd("v", 1, 7, cluster::VM_CREATING),
                 cluster::RESULT_FAILED_PRECONDITION, "stale");
  ExpectRejected(ObservedCmd("v", 1, 1, cluster::VM_RUNNING),
                 cluster::RESULT_FAILED_PRECONDITION, "UNSPECIFIED -> RUNNING");
  EXPECT_EQ(Apply(ObservedCmd("v", 1, 1, cluster::VM_CREATING)).code(),
            cluster::RESULT_OK);
  EXPECT_EQ(Apply(ObservedCmd("v", 1, 1, cluster::VM_STARTING)).code(),
            cluster::RESULT_OK);
  EXPECT_EQ(Apply(ObservedCmd("v", 1, 1, cluster::VM_RUNNING)).code(),
            cluster::RESULT_OK);
  EXPECT_EQ(Vm("v").observed(), cluster::VM_RUNNING);
}

TEST_F(ClusterStateMachineTest, KvPutGetDelete) {
  const cluster::Result put = Apply(PutCmd("k", "v1"));
  ASSERT_EQ(put.code(), cluster::RESULT_OK);
  EXPECT_EQ(put.kv().mod_index(), index_);
  EXPECT_EQ(put.kv().create_index(), index_);
  Apply(PutCmd("k", "v2"));
  ASSERT_NE(sm_.FindKv("k"), nullptr);
  EXPECT_EQ(sm_.FindKv("k")->value(), "v2");
  EXPECT_EQ(sm_.FindKv("k")->create_index(), put.kv().create_index());
  cluster::Query q;
  q.set_kv_get("k");
  EXPECT_EQ(sm_.Query(q).kv().value(), "v2");
  cluster::Command del;
  del.mutable_kv_delete()->set_key("k");
  EXPECT_EQ(Apply(del).kv().value(), "v2");
  ExpectRejected(del, cluster::RESULT_NOT_FOUND, "'k'");
  EXPECT_EQ(sm_.Query(q).code(), cluster::RESULT_NOT_FOUND);
  ExpectRejected(PutCmd("", "v"), cluster::RESULT_INVALID_ARGUMENT, "kv key");
  ExpectRejected(PutCmd("\xf8", "v"), cluster::RESULT_INVALID_ARGUMENT,
                 "UTF-8");
  EXPECT_EQ(Apply(PutCmd("caf\xc3\xa9 \xf0\x9f\x98\x80", "\xff binary")).code(),
            cluster::RESULT_OK);  // valid UTF-8 key; values are bytes
  ExpectRejected(PutCmd(std::string(kKvKeyBytesMax + 1, 'k'), "v"),
                 cluster::RESULT_INVALID_ARGUMENT, "kv key");
  ExpectRejected(PutCmd("k", std::string(kKvValueBytesMax + 1, 'v')),
                 cluster::RESULT_INVALID_ARGUMENT, "kv value");
  del.mutable_kv_delete()->clear_key();
  ExpectRejected(del, cluster::RESULT_INVALID_ARGUMENT, "kv key");
  ClusterStateMachineOptions o;
  o.kv_keys_max = 1;
  sm_ = ClusterStateMachine(o);
  Apply(PutCmd("a", "1"));
  EXPECT_EQ(Apply(PutCmd("a", "2")).code(),
            cluster::RESULT_OK);  // overwrite fits
  ExpectRejected(PutCmd("b", "1"), cluster::RESULT_RESOURCE_EXHAUSTED,
                 "kv table");
  ExpectRejected(CasCmd("b", 0, "1"), cluster::RESULT_RESOURCE_EXHAUSTED,
                 "kv table");
}

TEST_F(ClusterStateMachineTest, CompareAndSwapSemantics) {
  // Version 0 means "absent": creates only when the key does not exist.
  const cluster::Result created = Apply(CasCmd("k", 0, "a"));
  ASSERT_EQ(created.code(), cluster::RESULT_OK);
  const uint64_t v1 = created.kv().mod_index();
  EXPECT_EQ(v1, index_);
  // A second create loses and reports the current entry.
  const cluster::Result lost = Apply(CasCmd("k", 0, "b"));
  EXPECT_EQ(lost.code(), cluster::RESULT_FAILED_PRECONDITION);
  EXPECT_THAT(lost.message(), HasSubstr("expected version 0"));
  EXPECT_EQ(lost.kv().value(), "a");
  EXPECT_EQ(lost.kv().mod_index(), v1);
  // The right version wins once; the same version again loses.
  const cluster::Result swapped = Apply(CasCmd("k", v1, "c"));
  ASSERT_EQ(swapped.code(), cluster::RESULT_OK);
  EXPECT_GT(swapped.kv().mod_index(), v1);
  ExpectRejected(CasCmd("k", v1, "d"), cluster::RESULT_FAILED_PRECONDITION,
                 "found");
  EXPECT_EQ(sm_.FindKv("k")->value(), "c");
  // A wrong version on an absent key fails without creating it.
  ExpectRejected(CasCmd("absent", 5, "x"), cluster::RESULT_FAILED_PRECONDITION,
                 "found 0");
  EXPECT_EQ(sm_.FindKv("absent"), nullptr);
  // No ABA: delete and re-create gives a new version, so an old one fails.
  const uint64_t v2 = swapped.kv().mod_index();
  cluster::Command del;
  del.mutable_kv_delete()->set_key("k");
  Apply(del);
  Apply(CasCmd("k", 0, "again"));
  EXPECT_NE(sm_.FindKv("k")->mod_index(), v2);
  ExpectRejected(CasCmd("k", v2, "stale"), cluster::RESULT_FAILED_PRECONDITION,
                 "expected version");
  // Plain puts bump the version too.
  const uint64_t v3 = sm_.FindKv("k")->mod_index();
  Apply(PutCmd("k", "put"));
  ExpectRejected(CasCmd("k", v3, "x"), cluster::RESULT_FAILED_PRECONDITION,
                 "found");
  ExpectRejected(CasCmd("", 0, "x"), cluster::RESULT_INVALID_ARGUMENT,
                 "kv key");
  ExpectRejected(CasCmd("k", 0, std::string(kKvValueBytesMax + 1, 'v')),
                 cluster::RESULT_INVALID_ARGUMENT, "kv value");
}

TEST_F(ClusterStateMachineTest, RetriedWriteReturnsRecordedResult) {
  Apply(RegisterCmd(1, 4, 1024, 10));
  cluster::Command submit = SubmitCmd("t", Spec(1));
  submit.mutable_request_id()->set_client_id(7);
  submit.mutable_request_id()->set_sequence(1);
  const cluster::Result first = Apply(submit);
  ASSERT_EQ(first.code(), cluster::RESULT_OK);
  Apply(StartedCmd("t", 1, 1));
  // The retry returns the answer recorded then (ASSIGNED), not today's.
  const cluster::Result retry = Apply(submit);
  EXPECT_EQ(retry.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(Task("t").state(), cluster::TASK_RUNNING);
  // A KV put retried does not write twice (the version would move).
  cluster::Command put = PutCmd("k", "v");
  put.mutable_request_id()->set_client_id(7);
  put.mutable_request_id()->set_sequence(2);
  const uint64_t version = Apply(put).kv().mod_index();
  Apply(put);
  EXPECT_EQ(sm_.FindKv("k")->mod_index(), version);
  // Errors are recorded too.
  cluster::Command bad = CasCmd("k", 1, "x");
  bad.mutable_request_id()->set_client_id(7);
  bad.mutable_request_id()->set_sequence(3);
  const cluster::Result failed = Apply(bad);
  EXPECT_EQ(Apply(bad).SerializeAsString(), failed.SerializeAsString());
  // Stale sequences are rejected; sequence 0 is invalid.
  ExpectRejected(put, cluster::RESULT_OUT_OF_RANGE, "stale");
  bad.mutable_request_id()->set_sequence(0);
  ExpectRejected(bad, cluster::RESULT_INVALID_ARGUMENT, "sequence 0");
}

TEST_F(ClusterStateMachineTest, SessionTableEvictsLeastRecentlyUsed) {
  ClusterStateMachineOptions o;
  o.client_sessions_max = 2;
  sm_ = ClusterStateMachine(o);
  auto put = [](uint64_t client, uint64_t seq) {
    cluster::Command c = PutCmd("k", "v");
    c.mutable_request_id()->set_client_id(client);
    c.mutable_request_id()->set_sequence(seq);
    return c;
  };
  Apply(put(1, 1));
  Apply(put(2, 1));
  Apply(put(1, 2));  // client 1 is now the most recent
  Apply(put(3, 1));  // evicts client 2
  EXPECT_EQ(sm_.sessions().size(), 2u);
  EXPECT_EQ(sm_.sessions().count(1), 1u);
  EXPECT_EQ(sm_.sessions().count(2), 0u);
  EXPECT_EQ(sm_.sessions().count(3), 1u);
  // Sessions are part of the snapshot.
  ClusterStateMachine restored(o);
  ASSERT_OK(restored.Restore(sm_.Snapshot()));
  EXPECT_EQ(restored.sessions().size(), 2u);
  EXPECT_EQ(restored.Digest(), sm_.Digest());
}

TEST_F(ClusterStateMachineTest, AbsurdLogTimesAreClamped) {
  Apply(RegisterCmd(1, 4, 1024, 10));
  cluster::Command off = StatusCmd(1, cluster::WORKER_OFFLINE);
  off.set_log_time_ms(UINT64_MAX);
  sm_.Apply(Index(++index_), off);
  EXPECT_EQ(sm_.now_ms(), kLogTimeMsMax);
  sm_.CheckInvariants();
  ClusterStateMachine restored;
  ASSERT_OK(restored.Restore(sm_.Snapshot()));
}

TEST_F(ClusterStateMachineTest, LogTimeIsMonotonic) {
  cluster::Command tick;
  tick.mutable_advance_time();
  tick.set_log_time_ms(5000);
  sm_.Apply(Index(1), tick);
  tick.set_log_time_ms(3000);  // a new leader with a slower clock
  sm_.Apply(Index(2), tick);
  EXPECT_EQ(sm_.now_ms(), 5000u);
  EXPECT_EQ(sm_.applied_index(), Index(2));
}

TEST_F(ClusterStateMachineTest, QueriesListAndSummarize) {
  Apply(RegisterCmd(1, 4, 1024, 10));
  Apply(RegisterCmd(2, 8, 2048, 10));
  Apply(SubmitCmd("a", Spec(4)));
  Apply(SubmitCmd("b", Spec(4)));
  Apply(SubmitCmd("c", Spec(4)));
  Apply(SubmitCmd("d", Spec(4)));        // no room left: PENDING
  Apply(CreateVmCmd("v", VmSpecOf(1)));  // no room left: waiting
  cluster::Query q;
  q.mutable_list_tasks()->set_state(cluster::TASK_ASSIGNED);
  EXPECT_EQ(sm_.Query(q).tasks_size(), 3);
  q.mutable_list_tasks()->set_state(cluster::TASK_STATE_UNSPECIFIED);
  q.mutable_list_tasks()->set_worker_id(1);
  ASSERT_EQ(sm_.Query(q).tasks_size(), 1);
  EXPECT_EQ(sm_.Query(q).tasks(0).task_id(), "a");
  q.mutable_list_tasks()->set_worker_id(0);
  q.mutable_list_tasks()->set_limit(2);
  EXPECT_EQ(sm_.Query(q).tasks_size(), 2);
  q.set_get_task("zzz");
  EXPECT_EQ(sm_.Query(q).code(), cluster::RESULT_NOT_FOUND);
  q.set_get_worker(2);
  EXPECT_EQ(sm_.Query(q).workers(0).reserved().cpu_cores(), 8u);
  q.mutable_list_workers();
  EXPECT_EQ(sm_.Query(q).workers_size(), 2);
  q.mutable_list_vms();
  EXPECT_EQ(sm_.Query(q).vms_size(), 1);
  q.set_get_vm("v");
  EXPECT_EQ(sm_.Query(q).vms(0).name(), "v");
  q.mutable_summary();
  const cluster::ClusterSummary s = sm_.Query(q).summary();
  ASSERT_EQ(s.workers_size(), 2);
  EXPECT_EQ(s.workers(1).free().cpu_cores(), 0u);
  EXPECT_EQ(s.workers(1).free().memory_mb(), 2048u - 200u);
  EXPECT_EQ(s.workers(0).tasks(), 1u);
  EXPECT_EQ(s.workers(1).tasks(), 2u);
  EXPECT_EQ(s.tasks_by_state(cluster::TASK_PENDING), 1u);
  EXPECT_EQ(s.tasks_by_state(cluster::TASK_ASSIGNED), 3u);
  EXPECT_EQ(s.capacity_total().cpu_cores(), 12u);
  EXPECT_EQ(s.reserved_total().cpu_cores(), 12u);
  EXPECT_EQ(s.vms(), 1u);
  EXPECT_EQ(s.vms_waiting(), 1u);
  EXPECT_EQ(sm_.Query(cluster::Query{}).code(),
            cluster::RESULT_INVALID_ARGUMENT);
}

TEST_F(ClusterStateMachineTest, RestoreRejectsBadSnapshotsAndKeepsState) {
  Apply(RegisterCmd(1, 4, 1024, 10));
  Apply(SubmitCmd("a", Spec(2)));
  const uint64_t digest = sm_.Digest();
  EXPECT_THAT(sm_.Restore("\xff\xff\xff"),
              StatusIs(absl::StatusCode::kDataLoss));
  cluster::StateSnapshot s = sm_.ToProto();
  s.set_format_version(99);
  EXPECT_THAT(
      sm_.RestoreFromProto(s),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("format")));
  s = sm_.ToProto();
  s.mutable_workers(0)->mutable_reserved()->set_cpu_cores(3);
  EXPECT_THAT(sm_.RestoreFromProto(s),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("reservation")));
  s = sm_.ToProto();
  s.mutable_tasks(0)->set_worker_id(9);
  EXPECT_THAT(sm_.RestoreFromProto(s), StatusIs(absl::StatusCode::kDataLoss,
                                                HasSubstr("unknown worker")));
  s = sm_.ToProto();
  *s.add_workers() = s.workers(0);
  EXPECT_THAT(sm_.RestoreFromProto(s),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("twice")));
  s = sm_.ToProto();
  s.mutable_workers(0)->mutable_capacity()->set_cpu_cores(1);
  s.mutable_workers(0)->mutable_reserved()->set_cpu_cores(2);
  EXPECT_THAT(sm_.RestoreFromProto(s), StatusIs(absl::StatusCode::kDataLoss));
  s = sm_.ToProto();
  s.mutable_tasks(0)->set_failed_attempts(5);
  EXPECT_THAT(sm_.RestoreFromProto(s),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("failed more")));
  // A pending task that fits somewhere: no Apply leaves that behind.
  s = sm_.ToProto();
  cluster::TaskRecord* pending = s.add_tasks();
  *pending = s.tasks(0);
  pending->set_task_id("b");
  pending->set_state(cluster::TASK_PENDING);
  pending->set_worker_id(0);
  EXPECT_THAT(sm_.RestoreFromProto(s),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("fits")));
  // Feature lists must be stored sorted and without duplicates.
  for (const std::vector<std::string>& features :
       std::vector<std::vector<std::string>>{{"b", "a"}, {"a", "a"}}) {
    s = sm_.ToProto();
    for (const std::string& f : features) {
      s.mutable_tasks(0)->mutable_spec()->mutable_resources()->add_required_features(f);
    }
    EXPECT_THAT(sm_.RestoreFromProto(s),
                StatusIs(absl::StatusCode::kDataLoss,
                         HasSubstr("task 'a' spec is not normalized")));
    s = sm_.ToProto();
    cluster::VmRecord* vm = s.add_vms();
    vm->set_name("v");
    *vm->mutable_spec() = VmSpecOf(64);
    for (const std::string& f : features) vm->mutable_spec()->add_features(f);
    EXPECT_THAT(sm_.RestoreFromProto(s),
                StatusIs(absl::StatusCode::kDataLoss,
                         HasSubstr("vm 'v' spec is not normalized")));
  }
  EXPECT_EQ(sm_.Digest(), digest);
  sm_.CheckInvariants();
  ClusterStateMachine other;
  ASSERT_OK(other.Restore(sm_.Snapshot()));
  EXPECT_EQ(other.Digest(), digest);
  EXPECT_EQ(other.Snapshot(), sm_.Snapshot());
}

// ---------------------------------------------------------------------------
// The deadline index (TasksPastDeadline)

cluster::TaskSpec TimedSpec(uint64_t timeout_secs) {
  cluster::TaskSpec s = Spec(1);
  s.set_timeout_secs(timeout_secs);
  return s;
}

std::vector<std::string> Ids(const std::vector<const cluster::TaskRecord*>& tasks) {
  std::vector<std::string> ids;
  for (const cluster::TaskRecord* t : tasks) ids.push_back(t->task_id());
  return ids;
}

// What the Host's timeout controller computed by scanning every record:
// RUNNING tasks with a timeout whose assigned time + timeout + slack <= now.
std::vector<std::string> ScanPastDeadline(const ClusterStateMachine& sm,
                                          uint64_t now_ms, uint64_t slack_ms) {
  std::vector<std::pair<uint64_t, std::string>> due;
  for (const auto& [id, t] : sm.tasks()) {
    if (t.state() != cluster::TASK_RUNNING || t.spec().timeout_secs() == 0) continue;
    const uint64_t deadline = t.assigned_time_ms() + t.spec().timeout_secs() * 1000;
    if (deadline + slack_ms <= now_ms) due.emplace_back(deadline, id);
  }
  std::sort(due.begin(), due.end());
  std::vector<std::string> ids;
  for (auto& [deadline, id] : due) ids.push_back(std::move(id));
  return ids;
}

TEST_F(ClusterStateMachineTest, TasksPastDeadlineListsOverdueRunningTasksInDeadlineOrder) {
  Apply(RegisterCmd(1, 16, 8192, 100));
  // All assigned at log time 1000 (the fixture's clock).
  Apply(SubmitCmd("a", TimedSpec(10)));
  Apply(SubmitCmd("b", TimedSpec(5)));
  Apply(SubmitCmd("c", Spec(1)));        // no timeout: never listed
  Apply(SubmitCmd("d", TimedSpec(5)));   // stays ASSIGNED: not listed
  Apply(SubmitCmd("e", TimedSpec(5)));
  for (const char* id : {"a", "b", "c", "e"}) {
    ASSERT_EQ(Apply(StartedCmd(id, 1, 1)).code(), cluster::RESULT_OK) << id;
  }
  const uint64_t t0 = 1000;
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 4999, 0, 10)), ::testing::IsEmpty());
  // b and e share a deadline: by task id.
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 5000, 0, 10)),
              ::testing::ElementsAre("b", "e"));
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 10'000, 0, 10)),
              ::testing::ElementsAre("b", "e", "a"));
  // The slack delays every deadline; `max` bounds the answer.
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 10'000, 5001, 10)), ::testing::IsEmpty());
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 10'000, 5000, 10)),
              ::testing::ElementsAre("b", "e"));
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 10'000, 0, 1)), ::testing::ElementsAre("b"));
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 10'000, 0, 0)), ::testing::IsEmpty());
  // A slack larger than the time itself does not wrap around.
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(100, ~uint64_t{0}, 10)), ::testing::IsEmpty());
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(~uint64_t{0}, 0, 10)),
              ::testing::ElementsAre("b", "e", "a"));

  // A restored replica rebuilds the same index.
  ClusterStateMachine restored;
  ASSERT_OK(restored.Restore(sm_.Snapshot()));
  EXPECT_THAT(Ids(restored.TasksPastDeadline(t0 + 10'000, 0, 10)),
              ::testing::ElementsAre("b", "e", "a"));

  // Leaving RUNNING leaves the index: finishing, cancelling, and a retry
  // (requeued, then running again with a new deadline).
  Apply(FinishedCmd("b", 1, 1, true));
  Apply(CancelCmd("e"));
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 10'000, 0, 10)), ::testing::ElementsAre("a"));
  // Worker 1 fails: a, c, d requeue; worker 2 takes them at a later time.
  Apply(StatusCmd(1, cluster::WORKER_FAILED), /*advance_ms=*/2000);
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(~uint64_t{0}, 0, 10)), ::testing::IsEmpty());
  Apply(RegisterCmd(2, 16, 8192, 100));
  ASSERT_EQ(Task("a").state(), cluster::TASK_ASSIGNED);
  ASSERT_EQ(Apply(StartedCmd("a", 2, 2)).code(), cluster::RESULT_OK);
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 2000 + 9999, 0, 10)), ::testing::IsEmpty());
  EXPECT_THAT(Ids(sm_.TasksPastDeadline(t0 + 2000 + 10'000, 0, 10)),
              ::testing::ElementsAre("a"));
}

// The index answers what scanning every record answered, across random
// command sequences (start, finish, retry, cancel, worker loss, restores).
TEST(ClusterStateMachineDeadlineTest, AgreesWithAScanOfEveryRecord) {
  uint64_t listed = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    sm::testing::CommandGeneratorOptions gen_options;
    gen_options.invalid_per_mille = 20;
    sm::testing::CommandGenerator gen(rng.Fork("commands"), gen_options);
    ClusterStateMachine sm;
    for (uint64_t i = 1; i <= 200; ++i) {
      sm.Apply(Index(i), gen.Next(sm));
      if (rng.Chance(1, 50)) {
        ClusterStateMachine restored;
        ASSERT_OK(restored.Restore(sm.Snapshot()));
        sm = std::move(restored);
      }
      sm.CheckInvariants();
      const uint64_t now = sm.now_ms() + rng.Uniform(4'000'000);
      const uint64_t slack = rng.Uniform(60'000);
      const std::vector<std::string> expected = ScanPastDeadline(sm, now, slack);
      ASSERT_EQ(Ids(sm.TasksPastDeadline(now, slack, kListResultsMax)), expected)
          << "seed " << seed << " step " << i;
      listed += expected.size();
    }
  }
  EXPECT_GT(listed, 1000u);  // the sequences do reach overdue tasks
}

// ---------------------------------------------------------------------------
// Retention of finished tasks

ClusterStateMachineOptions RetentionOptions(size_t count, uint64_t age_ms) {
  ClusterStateMachineOptions o;
  o.finished_tasks_retained_max = count;
  o.finished_task_retention_ms = age_ms;
  return o;
}

TEST(ClusterStateMachineOptionsTest, RetentionBoundsAreValidated) {
  ClusterStateMachineOptions o = RetentionOptions(0, 1000);
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("finished_tasks_retained_max")));
  o = RetentionOptions(1, 0);
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("finished_task_retention_ms")));
  o = RetentionOptions(1, (uint64_t{1} << 40) + 1);
  EXPECT_THAT(o.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("finished_task_retention_ms")));
  EXPECT_OK(RetentionOptions(1, uint64_t{1} << 40).Validate());
}

TEST_F(ClusterStateMachineTest, FinishedTasksBeyondTheCountAreEvictedOldestFirst) {
  sm_ = ClusterStateMachine(RetentionOptions(3, 3'600'000));
  Apply(RegisterCmd(1, 16, 8192, 100));
  for (const char* id : {"e", "d", "c", "b", "a", "f", "g"}) {
    Apply(SubmitCmd(id, Spec(1)));
  }
  // Finish order and times: e@+10, d@+20, then c and b in the same log
  // time (ties go by task id: b before c), then a@+40.
  Apply(FinishedCmd("e", 1, 1, true), 10);
  Apply(FinishedCmd("d", 1, 1, false), 10);  // FAILED (one attempt)
  Apply(FinishedCmd("c", 1, 1, true), 10);
  Apply(CancelCmd("b"));                     // CANCELLED, same log time
  EXPECT_EQ(sm_.finished_tasks(), 3u);
  EXPECT_EQ(sm_.FindTask("e"), nullptr);  // oldest of four
  EXPECT_NE(sm_.FindTask("d"), nullptr);
  Apply(FinishedCmd("a", 1, 1, true), 10);
  EXPECT_EQ(sm_.FindTask("d"), nullptr);
  EXPECT_NE(sm_.FindTask("b"), nullptr);
  // b and c finished at the same log time: b goes first (task id).
  Apply(FinishedCmd("f", 1, 1, true), 10);
  EXPECT_EQ(sm_.FindTask("b"), nullptr);
  EXPECT_NE(sm_.FindTask("c"), nullptr);
  EXPECT_NE(sm_.FindTask("a"), nullptr);
  EXPECT_NE(sm_.FindTask("f"), nullptr);
  EXPECT_NE(sm_.FindTask("g"), nullptr);  // not finished: never evicted
  EXPECT_EQ(sm_.finished_tasks(), 3u);
  // The summary counts what is kept.
  const cluster::ClusterSummary summary = sm_.Summary();
  EXPECT_EQ(summary.tasks_by_state(cluster::TASK_SUCCEEDED), 3u);
  EXPECT_EQ(summary.tasks_by_state(cluster::TASK_CANCELLED), 0u);
  // With a count bound of 1, the reply shows the task its own entry kept,
  // and the one it evicted is gone.
  sm_ = ClusterStateMachine(RetentionOptions(1, 3'600'000));
  index_ = 0;
  Apply(RegisterCmd(1, 16, 8192, 100));
  Apply(SubmitCmd("x", Spec(1)));
  Apply(SubmitCmd("y", Spec(1)));
  Apply(FinishedCmd("x", 1, 1, true));
  const cluster::Result r = Apply(FinishedCmd("y", 1, 1, true), 1);
  EXPECT_EQ(r.task().task_id(), "y");
  EXPECT_EQ(r.task().state(), cluster::TASK_SUCCEEDED);
  EXPECT_EQ(sm_.FindTask("x"), nullptr);
}

TEST_F(ClusterStateMachineTest, FinishedTasksOlderThanTheAgeAreEvictedByAnyEntry) {
  sm_ = ClusterStateMachine(RetentionOptions(100, 10'000));
  Apply(RegisterCmd(1, 16, 8192, 100));
  Apply(SubmitCmd("t", Spec(1)));
  Apply(FinishedCmd("t", 1, 1, true));  // finished at 1000
  Apply(SubmitCmd("u", Spec(1)), 5000);
  Apply(FinishedCmd("u", 1, 1, true));  // finished at 6000
  cluster::Command tick;
  tick.mutable_advance_time();
  Apply(tick, 4999);  // 10'999: t is 9'999 ms old
  EXPECT_NE(sm_.FindTask("t"), nullptr);
  // An invalid command moves the clock too, and the rule runs after it.
  const cluster::Result bad = Apply(cluster::Command{}, 1);  // 11'000
  EXPECT_EQ(bad.code(), cluster::RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(sm_.FindTask("t"), nullptr);
  EXPECT_NE(sm_.FindTask("u"), nullptr);
  // Bytes that do not decode carry no time: nothing more is evicted.
  EXPECT_EQ(sm_.ApplyEntry(Index(++index_), "\xff\xff").code(),
            cluster::RESULT_INVALID_ARGUMENT);
  EXPECT_NE(sm_.FindTask("u"), nullptr);
  Apply(tick, 5000);  // 16'000: u is 10'000 ms old
  EXPECT_EQ(sm_.FindTask("u"), nullptr);
  EXPECT_EQ(sm_.finished_tasks(), 0u);
}

TEST_F(ClusterStateMachineTest, ResubmittingAnEvictedTaskIdCreatesANewTask) {
  sm_ = ClusterStateMachine(RetentionOptions(1, 3'600'000));
  Apply(RegisterCmd(1, 16, 8192, 100));
  const uint64_t first_submit = Apply(SubmitCmd("t", Spec(1))).task().submit_index();
  Apply(FinishedCmd("t", 1, 1, true));
  // Within the window: the same id and spec is the same task.
  EXPECT_EQ(Apply(SubmitCmd("t", Spec(1))).task().state(), cluster::TASK_SUCCEEDED);
  Apply(SubmitCmd("u", Spec(1)));
  Apply(FinishedCmd("u", 1, 1, true));  // evicts t (count bound 1)
  ASSERT_EQ(sm_.FindTask("t"), nullptr);
  ExpectRejected(FinishedCmd("t", 1, 1, true), cluster::RESULT_NOT_FOUND, "'t'");
  const cluster::Result again = Apply(SubmitCmd("t", Spec(1)));
  ASSERT_EQ(again.code(), cluster::RESULT_OK);
  EXPECT_EQ(again.task().state(), cluster::TASK_ASSIGNED);  // runs again
  EXPECT_EQ(again.task().attempt(), 1u);
  EXPECT_GT(again.task().submit_index(), first_submit);
}

// Two replicas fed the same commands, one of them restored from a snapshot
// of the other mid-way, evict the same tasks at the same entries.
TEST(ClusterStateMachineRetentionTest, ReplicasAndRestoredReplicasEvictAlike) {
  uint64_t evicted = 0;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    Rng rng(seed);
    sm::testing::CommandGeneratorOptions gen_options;
    gen_options.task_ids_max = 400;  // ids rarely collide: tasks accumulate
    gen_options.weight_submit_task = 30;
    const ClusterStateMachineOptions options = RetentionOptions(
        rng.Range(1, 12), rng.Range(1, 3) * 60'000);
    sm::testing::CommandGenerator gen(rng.Fork("commands"), gen_options);
    ClusterStateMachine a(options), b(options);
    std::unique_ptr<ClusterStateMachine> restored;
    const uint64_t mid = rng.Range(50, 250);
    std::set<std::string> finished_seen;
    for (uint64_t i = 1; i <= 300; ++i) {
      const cluster::Command command = gen.Next(a);
      const cluster::Result ra = a.Apply(Index(i), command);
      const cluster::Result rb = b.Apply(Index(i), command);
      ASSERT_EQ(ra.SerializeAsString(), rb.SerializeAsString());
      if (restored != nullptr) {
        ASSERT_EQ(restored->Apply(Index(i), command).SerializeAsString(),
                  ra.SerializeAsString());
      }
      if (i == mid) {
        restored = std::make_unique<ClusterStateMachine>(options);
        ASSERT_OK(restored->Restore(a.Snapshot()));
      }
      a.CheckInvariants();
      ASSERT_EQ(a.Digest(), b.Digest()) << "seed " << seed << " entry " << i;
      if (restored != nullptr) {
        restored->CheckInvariants();
        ASSERT_EQ(restored->Digest(), a.Digest()) << "seed " << seed << " entry " << i;
      }
      for (const auto& [id, t] : a.tasks()) {
        if (sm::IsTerminal(t.state())) finished_seen.insert(id);
      }
    }
    evicted += finished_seen.size() - a.finished_tasks();
  }
  EXPECT_GT(evicted, 1000u);  // the rule did evict, often
}

TEST_F(ClusterStateMachineTest, RestoreWithASmallerBoundEvictsDownToIt) {
  Apply(RegisterCmd(1, 16, 8192, 100));
  for (const char* id : {"a", "b", "c"}) {
    Apply(SubmitCmd(id, Spec(1)));
    Apply(FinishedCmd(id, 1, 1, true), 10);
  }
  ClusterStateMachine smaller(RetentionOptions(1, 3'600'000));
  ASSERT_OK(smaller.Restore(sm_.Snapshot()));
  smaller.CheckInvariants();
  EXPECT_EQ(smaller.finished_tasks(), 1u);
  EXPECT_NE(smaller.FindTask("c"), nullptr);
  // A snapshot whose finished time is ahead of its clock is refused.
  cluster::StateSnapshot s = sm_.ToProto();
  s.mutable_tasks(0)->set_finished_time_ms(s.now_ms() + 1);
  EXPECT_THAT(sm_.RestoreFromProto(s),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("after the state clock")));
}

// ---------------------------------------------------------------------------
// No poison pill: ApplyEntry turns any bytes into a Result

TEST_F(ClusterStateMachineTest, ApplyEntryRejectsAnyBadBytesAlikeAndChangesNothing) {
  Apply(RegisterCmd(1, 16, 8192, 100));
  Apply(SubmitCmd("t", Spec(1)));
  // Applies `bytes` through ApplyEntry; checks that only the applied index
  // (and, for bytes that decode, the clock) moved.
  auto expect_rejected = [&](const std::string& bytes, cluster::ResultCode code,
                             const std::string& message_part) {
    cluster::StateSnapshot before = sm_.ToProto();
    const cluster::Result r = sm_.ApplyEntry(Index(++index_), bytes);
    sm_.CheckInvariants();
    EXPECT_EQ(r.code(), code) << r.message();
    EXPECT_THAT(r.message(), HasSubstr(message_part));
    EXPECT_EQ(sm_.applied_index(), Index(index_));
    cluster::StateSnapshot after = sm_.ToProto();
    before.clear_applied_index();
    after.clear_applied_index();
    before.clear_now_ms();
    after.clear_now_ms();
    EXPECT_EQ(before.SerializeAsString(), after.SerializeAsString());
  };
  const uint64_t clock = sm_.now_ms();
  // Garbage, a truncated command, an oversize entry: not commands at all.
  expect_rejected(std::string("\x0a\xff\xff\xff\xff\x0f", 6),
                  cluster::RESULT_INVALID_ARGUMENT, "not a cluster command");
  cluster::Command submit = SubmitCmd("u", Spec(1));
  submit.set_log_time_ms(clock + 50'000);
  const std::string whole = submit.SerializeAsString();
  expect_rejected(whole.substr(0, whole.size() - 3), cluster::RESULT_INVALID_ARGUMENT,
                  "not a cluster command");
  // A KvPut that would apply but for its size (unknown field 99 pads it).
  std::string oversize = PutCmd("big", "v").SerializeAsString();
  {
    google::protobuf::io::StringOutputStream raw(&oversize);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.WriteTag((99 << 3) | 2);
    coded.WriteVarint32(static_cast<uint32_t>(kCommandBytesMax));
    coded.WriteString(std::string(kCommandBytesMax, 'p'));
  }
  expect_rejected(oversize, cluster::RESULT_INVALID_ARGUMENT,
                  absl::StrCat("more than ", kCommandBytesMax, " bytes"));
  EXPECT_EQ(sm_.FindKv("big"), nullptr);
  EXPECT_EQ(sm_.now_ms(), clock);  // no log time was read
  // Valid protobuf, invalid command: no op, bad enum values, oversize and
  // out-of-range fields.
  expect_rejected(cluster::Command{}.SerializeAsString(), cluster::RESULT_INVALID_ARGUMENT,
                  "no operation");
  expect_rejected(StatusCmd(1, static_cast<cluster::WorkerStatus>(77)).SerializeAsString(),
                  cluster::RESULT_INVALID_ARGUMENT, "not a valid status");
  expect_rejected(SubmitCmd(std::string(kTaskIdBytesMax + 1, 'x'), Spec(1)).SerializeAsString(),
                  cluster::RESULT_INVALID_ARGUMENT, "task_id");
  cluster::TaskSpec huge = Spec(1);
  huge.set_timeout_secs(kTaskTimeoutSecsMax + 1);
  expect_rejected(SubmitCmd("v", huge).SerializeAsString(), cluster::RESULT_INVALID_ARGUMENT,
                  "timeout_secs");
  expect_rejected(ObservedCmd("nope", 1, 1, static_cast<cluster::VmObservedState>(99))
                      .SerializeAsString(),
                  cluster::RESULT_NOT_FOUND, "'nope'");
  cluster::Command no_sequence = PutCmd("k", "v");
  no_sequence.mutable_request_id()->set_client_id(5);
  expect_rejected(no_sequence.SerializeAsString(), cluster::RESULT_INVALID_ARGUMENT,
                  "sequence 0");
  EXPECT_EQ(sm_.FindKv("k"), nullptr);
}

TEST_F(ClusterStateMachineTest, ApplyEntryDropsUnknownFieldsBeforeTheyReachTheRecords) {
  Apply(RegisterCmd(1, 16, 8192, 100));
  const std::string plain = SubmitCmd("t", Spec(1)).SerializeAsString();
  // The spec (field 2 of SubmitTask, field 13 of Command) with an unknown
  // field 99 appended: a length-delimited blob of 1000 bytes.
  cluster::TaskSpec spec = Spec(1);
  std::string spec_bytes = spec.SerializeAsString();
  spec_bytes += std::string("\x9a\x06\xe8\x07", 4) + std::string(1000, 'z');
  ASSERT_TRUE(spec.ParseFromString(spec_bytes));
  ASSERT_FALSE(spec.GetReflection()->GetUnknownFields(spec).empty());
  const cluster::Result r =
      sm_.ApplyEntry(Index(++index_), SubmitCmd("t", spec).SerializeAsString());
  ASSERT_EQ(r.code(), cluster::RESULT_OK) << r.message();
  const cluster::TaskSpec& stored = Task("t").spec();
  EXPECT_TRUE(stored.GetReflection()->GetUnknownFields(stored).empty());
  EXPECT_EQ(Task("t").SerializeAsString().find(std::string(100, 'z')), std::string::npos);
  // And the same task submitted without them is the same task.
  EXPECT_EQ(sm_.ApplyEntry(Index(++index_), plain).code(), cluster::RESULT_OK);
  EXPECT_EQ(Task("t").submit_index(), r.task().submit_index());
}

TEST_F(ClusterStateMachineTest, SnapshotToReplacesTheStringWithTheSnapshot) {
  Apply(RegisterCmd(1, 16, 8192, 100));
  Apply(SubmitCmd("t", Spec(1)));
  std::string out = "left over from before";
  sm_.SnapshotTo(&out);
  EXPECT_EQ(out, sm_.Snapshot());
  EXPECT_EQ(StableHash64(out), sm_.Digest());
}

// Hostile input: generator commands whose bytes are corrupted (bit flips,
// extreme varints spliced in) go through ApplyEntry. Nothing may crash, every
// invariant holds after each entry, and snapshots round-trip exactly.
TEST(ClusterStateMachineHostileTest, CorruptedEntriesNeverBreakInvariants) {
  // Parsing corrupted strings logs a libprotobuf error each time; mute it.
  google::protobuf::LogSilencer silence_protobuf_errors;
  uint64_t parsed = 0, rejected = 0;
  for (uint64_t seed = 1; seed <= 1000; ++seed) {
    Rng rng(seed);
    sm::testing::CommandGenerator gen(rng.Fork("commands"));
    ClusterStateMachine sm;
    for (uint64_t i = 1; i <= 60; ++i) {
      std::string bytes = gen.Next(sm).SerializeAsString();
      const uint64_t flips = rng.Uniform(4);
      for (uint64_t f = 0; f < flips && !bytes.empty(); ++f) {
        bytes[rng.Uniform(bytes.size())] ^=
            static_cast<char>(1u << rng.Uniform(8));
      }
      if (rng.Chance(1, 8)) {
        // A huge varint where a field value was.
        bytes.insert(
            rng.Uniform(bytes.size() + 1),
            std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10));
      }
      const cluster::Result r = sm.ApplyEntry(Index(i), bytes);
      if (r.code() == cluster::RESULT_INVALID_ARGUMENT &&
          r.message().find("not a cluster command") != std::string::npos) {
        ++rejected;
      } else {
        ++parsed;
      }
      sm.CheckInvariants();
    }
    // Snapshot() writes the records directly; it must give the bytes of the
    // snapshot message serialized deterministically.
    std::string expected;
    {
      google::protobuf::io::StringOutputStream raw(&expected);
      google::protobuf::io::CodedOutputStream coded(&raw);
      coded.SetSerializationDeterministic(true);
      ASSERT_TRUE(sm.ToProto().SerializeToCodedStream(&coded));
    }
    ASSERT_EQ(sm.Snapshot(), expected) << "seed " << seed;
    // Digest hashes the bytes as they are written: the hash of them all.
    ASSERT_EQ(sm.Digest(), StableHash64(expected)) << "seed " << seed;
    ClusterStateMachine copy;
    const absl::Status status = copy.Restore(sm.Snapshot());
    ASSERT_TRUE(status.ok()) << "seed " << seed << ": " << status;
    ASSERT_EQ(copy.Snapshot(), sm.Snapshot()) << "seed " << seed;
  }
  EXPECT_GT(parsed, 10000u);
  EXPECT_GT(rejected, 100u);
}

}  // namespace
}  // namespace blixard
