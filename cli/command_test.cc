#include "cli/command.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "cli/flag_parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// Two commands that both offer `--output`, with different types and meanings,
// as `node` and a client command might: cli/command.h's convention prefixes
// the absl names with the command's name.
ABSL_FLAG(int, alpha_output, 3, "alpha: how many results to print");
ABSL_FLAG(std::string, beta_output, "", "beta: the file to write");
ABSL_FLAG(bool, beta_verbose, false, "beta: talk more");

namespace blixard::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// What the commands saw when they ran.
int alpha_output_seen = -1;
std::string beta_output_seen;
std::vector<std::string> args_seen;

int RunAlpha(const std::vector<std::string>& args) {
  alpha_output_seen = absl::GetFlag(FLAGS_alpha_output);
  args_seen = args;
  return !args.empty() && args[0] == "fail" ? kExitFailure : kExitOk;
}

int RunBeta(const std::vector<std::string>& args) {
  beta_output_seen = absl::GetFlag(FLAGS_beta_output);
  args_seen = args;
  return kExitOk;
}

std::vector<Command> Table() {
  return {
      {"alpha", "count things", "[fail]", {BindFlag("output", FLAGS_alpha_output)}, &RunAlpha},
      {"beta",
       "write things",
       "",
       {BindFlag("output", FLAGS_beta_output), BindFlag("verbose", FLAGS_beta_verbose)},
       &RunBeta},
  };
}

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_alpha_output, 3);
    absl::SetFlag(&FLAGS_beta_output, "");
    absl::SetFlag(&FLAGS_beta_verbose, false);
    alpha_output_seen = -1;
    beta_output_seen.clear();
    args_seen.clear();
  }

  // Runs `args` against Table(); fills out_ and err_.
  int Run(const std::vector<std::string>& args) {
    std::ostringstream out, err;
    const int code = RunCommandLine(Table(), args, out, err);
    out_ = out.str();
    err_ = err.str();
    return code;
  }

  std::string out_;
  std::string err_;
};

TEST_F(CommandTest, SameFlagNameHasEachCommandsType) {
  EXPECT_EQ(Run({"alpha", "--output=7"}), kExitOk);
  EXPECT_EQ(alpha_output_seen, 7);
  EXPECT_EQ(Run({"beta", "--output=results.txt"}), kExitOk);
  EXPECT_EQ(beta_output_seen, "results.txt");
  // Setting beta's --output did not touch alpha's.
  EXPECT_EQ(absl::GetFlag(FLAGS_alpha_output), 7);
  EXPECT_THAT(err_, IsEmpty());
}

TEST_F(CommandTest, ValueOfTheOtherCommandsTypeIsAUsageError) {
  EXPECT_EQ(Run({"alpha", "--output", "results.txt"}), kExitUsage);
  EXPECT_THAT(err_, HasSubstr("blixard alpha: bad value 'results.txt' for flag --output"));
  EXPECT_THAT(err_, HasSubstr("(see 'blixard alpha --help')"));
  EXPECT_THAT(err_, Not(HasSubstr("alpha_output"))) << "the user typed --output";
  EXPECT_EQ(alpha_output_seen, -1) << "the command must not run";
  EXPECT_EQ(absl::GetFlag(FLAGS_alpha_output), 3);
}

TEST_F(CommandTest, FlagOfAnotherCommandIsUnknown) {
  EXPECT_EQ(Run({"alpha", "--verbose"}), kExitUsage);
  EXPECT_THAT(err_, HasSubstr("unknown flag --verbose"));
  // Nor can a command's flag be reached by its absl name.
  EXPECT_EQ(Run({"alpha", "--alpha_output=4"}), kExitUsage);
  EXPECT_THAT(err_, HasSubstr("unknown flag --alpha_output"));
  EXPECT_EQ(absl::GetFlag(FLAGS_alpha_output), 3);
}

TEST_F(CommandTest, CommandHelpDescribesItsOwnFlags) {
  EXPECT_EQ(Run({"alpha", "--help"}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("usage: blixard alpha [flags] [fail]\n\ncount things\n"));
  EXPECT_THAT(out_, HasSubstr("  --output=3\n      alpha: how many results to print\n"));
  EXPECT_THAT(out_, Not(HasSubstr("beta")));
  EXPECT_EQ(alpha_output_seen, -1) << "--help must not run the command";
  EXPECT_EQ(Run({"beta", "-h"}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("  --output=\n      beta: the file to write\n"));
  EXPECT_THAT(out_, HasSubstr("  --verbose=false\n"));
}

TEST_F(CommandTest, RunsWithPositionalArgumentsAndReturnsItsExitCode) {
  EXPECT_EQ(Run({"beta", "a", "--verbose", "--", "--output=x"}), kExitOk);
  EXPECT_THAT(args_seen, ElementsAre("a", "--output=x"));
  EXPECT_TRUE(absl::GetFlag(FLAGS_beta_verbose));
  EXPECT_EQ(beta_output_seen, "");
  EXPECT_EQ(Run({"alpha", "fail"}), kExitFailure);
  EXPECT_EQ(alpha_output_seen, 3);
}

TEST_F(CommandTest, UsageListsEveryCommand) {
  EXPECT_EQ(Run({"--help"}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("\n  alpha       count things\n  beta        write things\n"));
  EXPECT_EQ(Run({"help"}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("commands:"));
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_THAT(out_, IsEmpty());
  EXPECT_THAT(err_, HasSubstr("usage: blixard <command> [flags]"));
}

TEST_F(CommandTest, UnknownCommandIsOneLine) {
  EXPECT_EQ(Run({"gamma", "--output=1"}), kExitUsage);
  EXPECT_EQ(err_, "blixard: unknown command 'gamma' (see 'blixard --help')\n");
  EXPECT_EQ(absl::GetFlag(FLAGS_alpha_output), 3);
}

TEST(CommandDeathTest, FlagBoundTwiceInOneCommandIsAProgrammingError) {
  const std::vector<Command> table = {
      {"alpha",
       "",
       "",
       {BindFlag("output", FLAGS_alpha_output), BindFlag("output", FLAGS_beta_output)},
       &RunAlpha}};
  std::ostringstream out, err;
  EXPECT_DEATH(RunCommandLine(table, {"alpha"}, out, err), "binds --output twice");
}

}  // namespace
}  // namespace blixard::cli
