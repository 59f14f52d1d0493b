#include "sim/swarm.h"

#include <set>
#include <string>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"

namespace blixard::sim {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;

// The text form is the run's record: every drawn value must come back.
TEST(SwarmParamsTest, TextRoundTripsForManySeeds) {
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    const SwarmParams drawn = DrawSwarmParams(SwarmStream(seed));
    ASSERT_OK(drawn.Validate()) << drawn.ToText();
    const std::string text = drawn.ToText();
    EXPECT_EQ(text.find('\n'), std::string::npos);
    ASSERT_OK_AND_ASSIGN(const SwarmParams parsed, SwarmParams::Parse(text));
    EXPECT_EQ(parsed, drawn) << text;
    EXPECT_EQ(parsed.ToText(), text);
  }
}

TEST(SwarmParamsTest, DrawDependsOnlyOnTheSeed) {
  EXPECT_EQ(DrawSwarmParams(SwarmStream(42)), DrawSwarmParams(SwarmStream(42)));
  EXPECT_NE(DrawSwarmParams(SwarmStream(42)), DrawSwarmParams(SwarmStream(43)));
}

// Over many seeds the draw covers the ranges the swarm promises.
TEST(SwarmParamsTest, DrawsCoverTheRanges) {
  std::set<int> sizes;
  std::set<WorkloadKind> workloads;
  bool spares = false, fifo = false, lossless = false, lossy = false, membership = false;
  uint64_t loss_max = 0, duplicate_max = 0;
  for (uint64_t seed = 1; seed <= 1000; ++seed) {
    const SwarmParams p = DrawSwarmParams(SwarmStream(seed));
    sizes.insert(p.nodes);
    workloads.insert(p.workload);
    spares |= p.spares > 0;
    fifo |= p.fifo_links;
    lossless |= p.loss_max_per_million == 0;
    lossy |= p.loss_max_per_million > 200'000;
    membership |= p.w_membership > 0;
    loss_max = std::max(loss_max, p.loss_max_per_million);
    duplicate_max = std::max(duplicate_max, p.duplicate_max_per_million);
    EXPECT_LE(p.nodes + p.spares, kSwarmNodesMax);
    EXPECT_LT(p.heartbeat_ticks, p.election_ticks);
  }
  EXPECT_EQ(sizes, (std::set<int>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(workloads.size(), 4u);  // kv, cluster, mixed, kv_reads
  EXPECT_TRUE(spares && fifo && lossless && lossy && membership);
  EXPECT_LE(loss_max, 300'000u);
  EXPECT_GT(duplicate_max, 400'000u);
  EXPECT_LE(duplicate_max, 500'000u);
}

TEST(SwarmParamsTest, ParseNamesWhatIsWrong) {
  const std::string good = DrawSwarmParams(SwarmStream(7)).ToText();
  EXPECT_THAT(SwarmParams::Parse(good + " bogus=1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown key \"bogus\"")));
  EXPECT_THAT(SwarmParams::Parse(good + " keys=2"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"keys\" given twice")));
  std::string missing = good;
  missing.erase(missing.find("clients="), missing.find(' ', missing.find("clients=")) -
                                              missing.find("clients=") + 1);
  EXPECT_THAT(SwarmParams::Parse(missing),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing key \"clients\"")));
  SwarmParams p = DrawSwarmParams(SwarmStream(7));
  std::string text = p.ToText();
  const std::string nodes = absl::StrCat("nodes=", p.nodes);
  text.replace(text.find(nodes), nodes.size(), "nodes=x");
  EXPECT_THAT(SwarmParams::Parse(text),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad value \"x\" for nodes")));
  p.nodes = 8;
  EXPECT_THAT(p.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nodes=8")));
  p = DrawSwarmParams(SwarmStream(7));
  p.heartbeat_ticks = p.election_ticks;
  EXPECT_THAT(p.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("heartbeat")));
  p = DrawSwarmParams(SwarmStream(7));
  p.spares = kSwarmNodesMax;
  EXPECT_THAT(p.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spares")));
}

// A generated swarm schedule is valid, stays inside the run, and its
// membership changes name only spares to add and members to remove.
TEST(SwarmParamsTest, ScheduleWithMembershipChangesIsValid) {
  uint64_t added = 0, removed = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SwarmParams p = DrawSwarmParams(SwarmStream(seed));
    p.w_membership = 4;
    std::vector<NodeId> voters, spares;
    for (int i = 1; i <= p.nodes; ++i) voters.push_back(NodeId(static_cast<uint64_t>(i)));
    for (int i = 1; i <= p.spares; ++i) {
      spares.push_back(NodeId(static_cast<uint64_t>(p.nodes + i)));
    }
    const FaultSchedule s =
        GenerateFaultSchedule(Rng(seed), p.Mix(), voters, spares, 60'000'000);
    ASSERT_OK(s.Validate());
    ASSERT_OK_AND_ASSIGN(const FaultSchedule parsed, FaultSchedule::Parse(s.ToText()));
    EXPECT_EQ(parsed.faults, s.faults);
    int64_t voters_left = p.nodes;
    for (const Fault& f : s.faults) {
      EXPECT_LT(f.at_us, 60'000'000);
      if (f.kind == FaultKind::kAddLearner) {
        ++added;
        ASSERT_EQ(f.nodes.size(), 1u);
        EXPECT_GT(f.nodes[0].value(), static_cast<uint64_t>(p.nodes));
      }
      if (f.kind == FaultKind::kPromote) ++voters_left;
      if (f.kind == FaultKind::kRemove || f.kind == FaultKind::kRemoveLeader) {
        ++removed;
        --voters_left;
        EXPECT_GE(voters_left, 1) << s.ToText();
      }
    }
  }
  EXPECT_GT(added, 50u);
  EXPECT_GT(removed, 50u);
}

}  // namespace
}  // namespace blixard::sim
