#include "cli/worker_command.h"

#include "cli/client_flags.h"
#include "core/proto/cluster.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

cluster::WorkerRecord Worker() {
  cluster::WorkerRecord w;
  w.set_node_id(3);
  w.set_address("127.0.0.1:7003");
  w.set_status(cluster::WORKER_DRAINING);
  w.mutable_capacity()->set_cpu_cores(4);
  w.mutable_capacity()->set_memory_mb(8192);
  w.mutable_capacity()->set_disk_gb(100);
  w.mutable_reserved()->set_cpu_cores(2);
  w.mutable_reserved()->set_memory_mb(512);
  w.add_features("gpu");
  w.add_features("ssd");
  return w;
}

TEST(WorkerCommandTest, RowShowsReservedOverCapacity) {
  EXPECT_THAT(WorkerRow(Worker()),
              MatchesRegex("3 +draining +2/4 +512/8192 +0/100 +gpu,ssd +127.0.0.1:7003"));
}

TEST(WorkerCommandTest, RowMarksMissingFeaturesAndAddress) {
  cluster::WorkerRecord w = Worker();
  w.clear_features();
  w.clear_address();
  EXPECT_THAT(WorkerRow(w), MatchesRegex("3 +draining +2/4 +512/8192 +0/100 +- +-"));
}

TEST(WorkerCommandTest, StatusNamesAreLowerCase) {
  EXPECT_EQ(WorkerStatusName(cluster::WORKER_ONLINE), "online");
  EXPECT_EQ(WorkerStatusName(cluster::WORKER_DRAINING), "draining");
  EXPECT_EQ(WorkerStatusName(cluster::WORKER_OFFLINE), "offline");
}

TEST(WorkerCommandTest, JsonKeepsProtoFieldNames) {
  const std::string json = ProtoJson(Worker());
  EXPECT_THAT(json, HasSubstr("\"node_id\":\"3\""));
  EXPECT_THAT(json, HasSubstr("\"status\":\"WORKER_DRAINING\""));
  EXPECT_THAT(json, HasSubstr("\"features\":[\"gpu\",\"ssd\"]"));
  EXPECT_THAT(json, HasSubstr("\"reserved\":{\"cpu_cores\":\"2\",\"memory_mb\":\"512\","
                              "\"disk_gb\":\"0\"}"));
}

}  // namespace
}  // namespace blixard::cli
