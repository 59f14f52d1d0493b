#include "cli/flag_parser.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, test_count, 5, "a count");
ABSL_FLAG(bool, test_verbose, false, "talk more");
ABSL_FLAG(std::string, test_name, "x", "a name");

namespace blixard::cli {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<absl::string_view> kAllowed = {"test_count", "test_verbose",
                                                 "test_name"};

class FlagParserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_test_count, 5);
    absl::SetFlag(&FLAGS_test_verbose, false);
    absl::SetFlag(&FLAGS_test_name, "x");
  }
};

TEST_F(FlagParserTest, AcceptsEveryForm) {
  absl::StatusOr<ParsedArgs> parsed = ParseFlags(
      {"--test_count=7", "pos", "--test_verbose", "--test_name", "n1", "--",
       "--test_count=9"},
      kAllowed);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_count), 7);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_name), "n1");
  EXPECT_THAT(parsed->positional, ElementsAre("pos", "--test_count=9"));
  EXPECT_FALSE(parsed->help);
}

TEST_F(FlagParserTest, DashesReadAsUnderscores) {
  ASSERT_THAT(ParseFlags({"--test-count=3", "--test-verbose"}, kAllowed), IsOk());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_count), 3);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_verbose));
}

TEST_F(FlagParserTest, NegatedBoolean) {
  absl::SetFlag(&FLAGS_test_verbose, true);
  ASSERT_THAT(ParseFlags({"--notest_verbose"}, kAllowed), IsOk());
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_verbose));
}

TEST_F(FlagParserTest, UnknownFlagIsNamed) {
  EXPECT_THAT(ParseFlags({"--nosuch=1"}, kAllowed),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown flag --nosuch")));
}

TEST_F(FlagParserTest, FlagOfAnotherCommandIsRejected) {
  EXPECT_THAT(ParseFlags({"--test_count=1"}, {"test_name"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--test_count")));
}

TEST_F(FlagParserTest, BadValueChangesNothing) {
  EXPECT_THAT(ParseFlags({"--test_name=y", "--test_count=many"}, kAllowed),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("bad value 'many' for flag --test_count")));
  EXPECT_EQ(absl::GetFlag(FLAGS_test_name), "x");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_count), 5);
}

TEST_F(FlagParserTest, MissingValue) {
  EXPECT_THAT(ParseFlags({"--test_count"}, kAllowed),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("needs a value")));
}

TEST_F(FlagParserTest, HelpIsReported) {
  absl::StatusOr<ParsedArgs> parsed = ParseFlags({"--help"}, kAllowed);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_TRUE(parsed->help);
}

TEST_F(FlagParserTest, DescribeListsDefaultsAndHelp) {
  EXPECT_THAT(DescribeFlags({"test_count"}),
              HasSubstr("--test_count=5\n      a count"));
}

}  // namespace
}  // namespace blixard::cli
