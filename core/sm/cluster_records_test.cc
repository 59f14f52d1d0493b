#include "core/sm/cluster_records.h"

#include <string>
#include <vector>

#include "core/sm/cluster_limits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(ClusterRecordsTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

TEST(ClusterRecordsTest, TruncateKeepsWholeCharacters) {
  std::string text = "ab\xc3\xa9";  // 4 bytes, the last character is 2 bytes
  TruncateUtf8Prefix(text, 3);
  EXPECT_EQ(text, "ab");
  std::string short_text = "abc";
  TruncateUtf8Prefix(short_text, 10);
  EXPECT_EQ(short_text, "abc");
}

TEST(ClusterRecordsTest, FeaturesAreSortedAndDeduplicated) {
  google::protobuf::RepeatedPtrField<std::string> features;
  features.Add("ssd");
  features.Add("gpu");
  features.Add("ssd");
  std::vector<std::string> normalized;
  EXPECT_THAT(ValidateFeatures(features, "worker", normalized), IsEmpty());
  EXPECT_THAT(normalized, ElementsAre("gpu", "ssd"));
  features.Add("");
  EXPECT_THAT(ValidateFeatures(features, "worker", normalized),
              HasSubstr("worker: feature of 0 bytes"));
}

TEST(ClusterRecordsTest, TaskSpecIsNormalized) {
  cluster::TaskSpec spec;
  spec.set_command("/bin/true");
  spec.set_max_attempts(1);
  spec.mutable_resources()->set_cpu_cores(1);
  spec.mutable_resources()->add_required_features("b");
  spec.mutable_resources()->add_required_features("a");
  cluster::TaskSpec out;
  ASSERT_THAT(ValidateTaskSpec(spec, out), IsEmpty());
  EXPECT_THAT(out.resources().required_features(), ElementsAre("a", "b"));
  spec.mutable_resources()->set_memory_mb(kWorkerMemoryMbMax + 1);
  EXPECT_THAT(ValidateTaskSpec(spec, out), HasSubstr("memory_mb"));
}

TEST(ClusterRecordsTest, AmountsOfRecords) {
  cluster::WorkerRecord w;
  w.mutable_capacity()->set_cpu_cores(8);
  w.mutable_capacity()->set_memory_mb(100);
  w.mutable_reserved()->set_cpu_cores(3);
  const Amounts free = FreeOf(w);
  EXPECT_EQ(free.cpu_cores, 5u);
  EXPECT_EQ(free.memory_mb, 100u);
  EXPECT_TRUE(IsPlacedState(cluster::TASK_RUNNING));
  EXPECT_FALSE(IsPlacedState(cluster::TASK_PENDING));
  EXPECT_TRUE(ValidWorkerStatus(cluster::WORKER_FAILED));
  EXPECT_FALSE(ValidWorkerStatus(0));
}

}  // namespace
}  // namespace blixard::sm
