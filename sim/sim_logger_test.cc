#include "sim/sim_logger.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

TEST(SimLoggerTest, StampsVirtualTimeAndNode) {
  World world(1);
  CapturingLogger sink(LogLevel::kInfo);
  SimLogger n3(&world, NodeId(3), &sink);
  SimLogger w(&world, kNoNode, &sink);
  world.RunUntil(1'234'567);
  n3.Info("became leader at term ", 2);
  n3.Debug("not kept");
  w.Warning("partition");
  EXPECT_FALSE(n3.Enabled(LogLevel::kDebug));
  ASSERT_EQ(sink.lines().size(), 2u);
  EXPECT_NE(sink.lines()[0].find("t=1.234567 n3 became leader at term 2"),
            std::string::npos)
      << sink.lines()[0];
  EXPECT_NE(sink.lines()[1].find("t=1.234567 world partition"),
            std::string::npos)
      << sink.lines()[1];
}

TEST(SimLoggerTest, FormatsTimeWithIntegers) {
  EXPECT_EQ(FormatVirtualTime(0), "0.000000");
  EXPECT_EQ(FormatVirtualTime(5), "0.000005");
  EXPECT_EQ(FormatVirtualTime(60 * kMicrosPerSecond), "60.000000");
}

}  // namespace
}  // namespace blixard::sim
