#include "sim/fault_schedule.h"

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;

std::vector<NodeId> Nodes(int n) {
  std::vector<NodeId> nodes;
  for (int i = 1; i <= n; ++i)
    nodes.push_back(NodeId(static_cast<uint64_t>(i)));
  return nodes;
}

TEST(FaultScheduleTest, TextRoundTrips) {
  const std::string text =
      "# a comment\n"
      "\n"
      "1500000 crash nodes=2\n"
      "3000000 partition nodes=1,2 others=3,4,5\n"
      "3000000 bridge nodes=1 others=2 value=3\n"
      "3100000 clock_drift nodes=4 value=-800\n"
      "4000000 heal\n"
      "4500000 loss value=250000\n"
      "5200000 restart nodes=2\n";
  absl::StatusOr<FaultSchedule> schedule = FaultSchedule::Parse(text);
  ASSERT_THAT(schedule.status(), IsOk());
  ASSERT_EQ(schedule->faults.size(), 7u);
  EXPECT_EQ(schedule->faults[1].kind, FaultKind::kPartition);
  EXPECT_EQ(schedule->faults[1].others.size(), 3u);
  EXPECT_EQ(schedule->faults[3].value, -800);
  absl::StatusOr<FaultSchedule> again =
      FaultSchedule::Parse(schedule->ToText());
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(again->faults, schedule->faults);
  EXPECT_EQ(schedule->CountByKind().at("crash"), 1u);
}

TEST(FaultScheduleTest, MalformedTextIsRejectedWithTheLine) {
  EXPECT_THAT(FaultSchedule::Parse("10 explode nodes=1").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FaultSchedule::Parse("x crash nodes=1").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FaultSchedule::Parse("10 crash nodes=0").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FaultSchedule::Parse("10 crash").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FaultSchedule::Parse("10 partition nodes=1 others=1").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FaultSchedule::Parse("10 clock_jump nodes=1 value=-5").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FaultSchedule::Parse("10 crash nodes=1 color=red").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::Status unsorted =
      FaultSchedule::Parse("20 crash nodes=1\n10 restart nodes=1").status();
  EXPECT_THAT(unsorted, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(unsorted.message()), HasSubstr("decrease"));
  EXPECT_THAT(std::string(FaultSchedule::Parse("\n\nbad").status().message()),
              HasSubstr("line 3"));
}

// Membership changes are schedule lines like any fault, so a shrinker can
// drop or move them.
TEST(FaultScheduleTest, MembershipChangesHaveATextForm) {
  const std::string text =
      "1000 add_learner nodes=6\n"
      "2000 promote nodes=6\n"
      "3000 remove_leader\n"
      "4000 remove nodes=2\n";
  absl::StatusOr<FaultSchedule> schedule = FaultSchedule::Parse(text);
  ASSERT_THAT(schedule.status(), IsOk());
  ASSERT_EQ(schedule->faults.size(), 4u);
  EXPECT_EQ(schedule->faults[0].kind, FaultKind::kAddLearner);
  EXPECT_EQ(schedule->faults[1].kind, FaultKind::kPromote);
  EXPECT_EQ(schedule->faults[2].kind, FaultKind::kRemoveLeader);
  EXPECT_EQ(schedule->faults[3].kind, FaultKind::kRemove);
  EXPECT_EQ(schedule->ToText(), text);
  for (FaultKind kind : {FaultKind::kAddLearner, FaultKind::kPromote, FaultKind::kRemove,
                         FaultKind::kRemoveLeader}) {
    EXPECT_TRUE(IsMembershipChange(kind));
  }
  EXPECT_FALSE(IsMembershipChange(FaultKind::kCrash));
  // One node per change (a majority never leaves at once), no extras.
  EXPECT_THAT(FaultSchedule::Parse("1 remove nodes=1,2").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exactly one node")));
  EXPECT_THAT(FaultSchedule::Parse("1 add_learner").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs nodes=")));
  EXPECT_THAT(FaultSchedule::Parse("1 remove_leader nodes=1").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("takes no nodes=")));
  EXPECT_THAT(FaultSchedule::Parse("1 promote nodes=4 value=3").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no value=")));
}

// A mix without membership changes draws exactly what a profile draws, and
// the profile overload is that mix.
TEST(FaultScheduleTest, ProfileIsItsMix) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    EXPECT_EQ(GenerateFaultSchedule(Rng(seed), FaultProfile::kHeavy, Nodes(5), 30'000'000, true)
                  .faults,
              GenerateFaultSchedule(Rng(seed), ProfileMix(FaultProfile::kHeavy, true), Nodes(5),
                                    {}, 30'000'000)
                  .faults);
  }
  FaultMix bad = ProfileMix(FaultProfile::kDefault, false);
  bad.gap_min_us = 0;
  EXPECT_THAT(bad.Validate(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gap")));
  FaultMix none;
  EXPECT_THAT(none.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("every weight is 0")));
}

TEST(FaultScheduleTest, GarbageNeverCrashesTheParser) {
  Rng rng(77);
  const std::string alphabet = "0123456789 =,-#\nabcdeghiklmnoprstuvwxy_";
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const uint64_t length = rng.Range(0, 40);
    for (uint64_t j = 0; j < length; ++j) {
      text += alphabet[rng.Uniform(alphabet.size())];
    }
    if (FaultSchedule::Parse(text).ok()) ++accepted;
  }
  EXPECT_GT(accepted, 0);  // blank and comment-only texts at least
  EXPECT_THAT(FaultSchedule::Parse("1 clock_jump nodes=1 value=99999999999999")
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FaultSchedule::Parse("99999999999999999 heal").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FaultScheduleTest, ProfilesParse) {
  EXPECT_EQ(*ParseFaultProfile("swarm"), FaultProfile::kSwarm);
  EXPECT_EQ(*ParseFaultProfile("heavy"), FaultProfile::kHeavy);
  EXPECT_EQ(*ParseFaultProfile("none"), FaultProfile::kNone);
  EXPECT_THAT(ParseFaultProfile("light").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FaultScheduleTest, NoneIsEmpty) {
  EXPECT_TRUE(GenerateFaultSchedule(Rng(1), FaultProfile::kNone, Nodes(5),
                                    60 * kMicrosPerSecond)
                  .faults.empty());
}

TEST(FaultScheduleTest, SameSeedSameSchedule) {
  const FaultSchedule a = GenerateFaultSchedule(
      Rng(5), FaultProfile::kHeavy, Nodes(5), 60 * kMicrosPerSecond);
  const FaultSchedule b = GenerateFaultSchedule(
      Rng(5), FaultProfile::kHeavy, Nodes(5), 60 * kMicrosPerSecond);
  const FaultSchedule c = GenerateFaultSchedule(
      Rng(6), FaultProfile::kHeavy, Nodes(5), 60 * kMicrosPerSecond);
  EXPECT_EQ(a.ToText(), b.ToText());
  EXPECT_NE(a.ToText(), c.ToText());
}

// Replays a generated schedule against a model of node and network state and
// checks the generator's promises.
void CheckGenerated(const FaultSchedule& schedule, int n, SimMicros duration) {
  ASSERT_THAT(schedule.Validate(), IsOk());
  std::set<NodeId> crashed, paused, clogged;
  bool partitioned = false;
  std::map<NodeId, int64_t> drift;
  int64_t loss = 0, duplicate = 0;
  for (const Fault& f : schedule.faults) {
    ASSERT_LT(f.at_us, duration);
    switch (f.kind) {
      case FaultKind::kCrash:
        ASSERT_FALSE(crashed.count(f.nodes[0]) || paused.count(f.nodes[0]));
        crashed.insert(f.nodes[0]);
        break;
      case FaultKind::kRestart:
        ASSERT_EQ(crashed.erase(f.nodes[0]), 1u);
        break;
      case FaultKind::kPause:
        ASSERT_FALSE(crashed.count(f.nodes[0]) || paused.count(f.nodes[0]));
        paused.insert(f.nodes[0]);
        break;
      case FaultKind::kResume:
        ASSERT_EQ(paused.erase(f.nodes[0]), 1u);
        break;
      case FaultKind::kPartition:
      case FaultKind::kPartitionOneWay:
      case FaultKind::kIsolate:
      case FaultKind::kBridge:
        ASSERT_FALSE(partitioned);
        ASSERT_TRUE(clogged.empty());
        partitioned = true;
        break;
      case FaultKind::kHeal:
        partitioned = false;
        break;
      case FaultKind::kClog:
        ASSERT_FALSE(partitioned);
        ASSERT_TRUE(clogged.insert(f.nodes[0]).second);
        break;
      case FaultKind::kUnclog:
        ASSERT_EQ(clogged.erase(f.nodes[0]), 1u);
        break;
      case FaultKind::kClockDrift:
        drift[f.nodes[0]] = f.value;
        break;
      case FaultKind::kLoss:
        loss = f.value;
        break;
      case FaultKind::kDuplicate:
        duplicate = f.value;
        break;
      default:
        break;
    }
    ASSERT_LE(crashed.size() + paused.size(), static_cast<size_t>((n - 1) / 2));
  }
  EXPECT_TRUE(crashed.empty());
  EXPECT_TRUE(paused.empty());
  EXPECT_TRUE(clogged.empty());
  EXPECT_FALSE(partitioned);
  for (const auto& [node, ppm] : drift) EXPECT_EQ(ppm, 0) << node;
  EXPECT_EQ(loss, 0);
  EXPECT_EQ(duplicate, 0);
}

TEST(FaultScheduleTest, GeneratedSchedulesEndWholeAndKeepAMajorityUp) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    for (int n : {1, 2, 3, 5, 7}) {
      for (FaultProfile profile :
           {FaultProfile::kDefault, FaultProfile::kHeavy}) {
        SCOPED_TRACE(::testing::Message() << "seed " << seed << " n " << n);
        CheckGenerated(GenerateFaultSchedule(Rng(seed), profile, Nodes(n),
                                             30 * kMicrosPerSecond),
                       n, 30 * kMicrosPerSecond);
      }
    }
  }
}

TEST(FaultScheduleTest, HeavyProfileInjectsEveryMajorKind) {
  std::map<std::string, uint64_t> total;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const FaultSchedule s = GenerateFaultSchedule(
        Rng(seed), FaultProfile::kHeavy, Nodes(5), 60 * kMicrosPerSecond);
    for (const auto& [kind, count] : s.CountByKind()) total[kind] += count;
    EXPECT_GT(s.faults.size(), 20u);
  }
  for (const char* kind :
       {"crash", "restart", "pause", "resume", "partition", "partition_one_way",
        "isolate", "bridge", "heal", "clog", "unclog", "clock_drift",
        "clock_jump", "loss", "duplicate"}) {
    EXPECT_GT(total[kind], 0u) << kind;
  }
}

TEST(FaultScheduleTest, DiskFaultsOnlyWhenAskedAndAlwaysEnded) {
  std::map<std::string, uint64_t> with, without;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    for (const auto& [kind, count] :
         GenerateFaultSchedule(Rng(seed), FaultProfile::kHeavy, Nodes(5),
                               60 * kMicrosPerSecond)
             .CountByKind()) {
      without[kind] += count;
    }
    const FaultSchedule s = GenerateFaultSchedule(
        Rng(seed), FaultProfile::kHeavy, Nodes(5), 60 * kMicrosPerSecond, true);
    for (const auto& [kind, count] : s.CountByKind()) with[kind] += count;
    std::map<std::pair<FaultKind, NodeId>, int64_t> rate;
    for (const Fault& f : s.faults) {
      if (f.kind == FaultKind::kDiskWriteErrors ||
          f.kind == FaultKind::kDiskReadErrors) {
        rate[{f.kind, f.nodes[0]}] = f.value;
      }
    }
    for (const auto& [key, value] : rate) EXPECT_EQ(value, 0);
  }
  EXPECT_EQ(without.count("disk_write_errors"), 0u);
  EXPECT_EQ(without.count("disk_read_errors"), 0u);
  EXPECT_GT(with["disk_write_errors"], 0u);
  EXPECT_GT(with["disk_read_errors"], 0u);
}

class InjectorTest : public ::testing::Test {
 protected:
  InjectorTest()
      : world_(1), network_(&world_, SimNetworkOptions()), trace_(&out_) {
    for (NodeId id : Nodes(3)) {
      world_.AddNode(id);
      network_.Attach(id);
      clocks_.push_back(std::make_unique<SimClock>(&world_, 0, 0));
    }
    FaultInjector::Targets targets;
    targets.world = &world_;
    targets.network = &network_;
    for (size_t i = 0; i < clocks_.size(); ++i) {
      targets.clocks[NodeId(i + 1)] = clocks_[i].get();
    }
    targets.trace = &trace_;
    targets.other = [this](const Fault& f) {
      disk_faults_.push_back(f);
      return true;
    };
    injector_ = std::make_unique<FaultInjector>(targets);
  }
  World world_;
  SimNetwork network_;
  std::vector<std::unique_ptr<SimClock>> clocks_;
  std::ostringstream out_;
  TraceWriter trace_;
  std::vector<Fault> disk_faults_;
  std::unique_ptr<FaultInjector> injector_;
};

TEST_F(InjectorTest, AppliesAScheduleAtItsTimesAndTracesIt) {
  absl::StatusOr<FaultSchedule> s = FaultSchedule::Parse(
      "100 crash nodes=2\n"
      "200 partition_one_way nodes=1 others=3\n"
      "300 clock_drift nodes=3 value=500\n"
      "400 disk_write_errors nodes=1 value=1000\n"
      "500 restart nodes=2\n"
      "500 restart nodes=2\n"  // no longer applies: skipped
      "600 heal\n");
  ASSERT_THAT(s.status(), IsOk());
  injector_->Schedule(*s);
  world_.RunUntil(250);
  EXPECT_TRUE(world_.IsCrashed(NodeId(2)));
  EXPECT_TRUE(network_.LinkBlocked(NodeId(1), NodeId(3)));
  EXPECT_FALSE(network_.LinkBlocked(NodeId(3), NodeId(1)));
  world_.RunUntil(1000);
  EXPECT_TRUE(world_.IsUp(NodeId(2)));
  EXPECT_EQ(clocks_[2]->drift_ppm(), 500);
  EXPECT_EQ(network_.blocked_links(), 0u);
  ASSERT_EQ(disk_faults_.size(), 1u);
  EXPECT_EQ(injector_->skipped(), 1u);
  EXPECT_EQ(injector_->applied().at("restart"), 1u);
  EXPECT_EQ(
      out_.str(),
      "{\"t\":100,\"type\":\"fault\",\"fault\":\"crash\",\"nodes\":[2]}\n"
      "{\"t\":200,\"type\":\"fault\",\"fault\":\"partition_one_way\","
      "\"nodes\":[1],\"others\":[3]}\n"
      "{\"t\":300,\"type\":\"fault\",\"fault\":\"clock_drift\",\"nodes\":[3],"
      "\"value\":500}\n"
      "{\"t\":400,\"type\":\"fault\",\"fault\":\"disk_write_errors\","
      "\"nodes\":[1],\"value\":1000}\n"
      "{\"t\":500,\"type\":\"fault\",\"fault\":\"restart\",\"nodes\":[2]}\n"
      "{\"t\":600,\"type\":\"fault\",\"fault\":\"heal\",\"nodes\":[]}\n");
}

TEST_F(InjectorTest, GeneratedHeavyScheduleAppliesCleanly) {
  const FaultSchedule s =
      GenerateFaultSchedule(world_.Stream("faults"), FaultProfile::kHeavy,
                            Nodes(3), 20 * kMicrosPerSecond);
  injector_->Schedule(s);
  world_.RunUntil(20 * kMicrosPerSecond);
  EXPECT_EQ(injector_->skipped(), 0u);
  for (NodeId id : Nodes(3)) EXPECT_TRUE(world_.IsUp(id));
  injector_->CheckInvariants();
  EXPECT_EQ(network_.blocked_links(), 0u);
  world_.CheckInvariants();
  network_.CheckInvariants();
}

}  // namespace
}  // namespace blixard::sim
