#include "core/base/logger.h"

#include "gtest/gtest.h"

namespace blixard {
namespace {

TEST(LoggerTest, CapturingLoggerKeepsLinesAtOrAboveItsLevel) {
  CapturingLogger logger(LogLevel::kInfo);
  logger.Debug("hidden ", 1);
  logger.Info("became leader at term ", 3);
  logger.Error("disk ", "full");
  ASSERT_EQ(logger.lines().size(), 2u);
  EXPECT_EQ(logger.lines()[0], "INFO became leader at term 3");
  EXPECT_EQ(logger.lines()[1], "ERROR disk full");
  EXPECT_EQ(logger.TakeLines().size(), 2u);
  EXPECT_TRUE(logger.lines().empty());
}

TEST(LoggerTest, NullLoggerIsDisabled) {
  NullLogger logger;
  EXPECT_FALSE(logger.Enabled(LogLevel::kError));
  logger.Error("dropped");
}

TEST(LoggerTest, StderrLoggerFiltersByLevel) {
  StderrLogger logger(LogLevel::kWarning, "[n1] ");
  EXPECT_FALSE(logger.Enabled(LogLevel::kInfo));
  EXPECT_TRUE(logger.Enabled(LogLevel::kError));
  ::testing::internal::CaptureStderr();
  logger.Info("quiet");
  logger.Warning("slow fsync ", 12, "ms");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "WARN [n1] slow fsync 12ms\n");
}

}  // namespace
}  // namespace blixard
