#include "core/raft/config.h"

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;

TEST(ConfigTest, ValidateNamesEachBadOption) {
  MemoryStorage storage;
  NullLogger logger;
  Config ok;
  ok.id = NodeId(1);
  ok.storage = &storage;
  ok.logger = &logger;
  EXPECT_THAT(ok.Validate(), IsOk());
  auto bad = [&](auto mutate) {
    Config c = ok;
    mutate(c);
    return c.Validate();
  };
  EXPECT_THAT(bad([](Config& c) { c.id = kNoNode; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad([](Config& c) { c.heartbeat_tick = 0; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad([](Config& c) { c.election_tick = kElectionTickMax + 1; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad([](Config& c) { c.storage = nullptr; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad([](Config& c) { c.logger = nullptr; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad([](Config& c) { c.max_inflight_msgs = kInflightMsgsMax + 1; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad([](Config& c) { c.max_inflight_bytes = 1; }),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ConfigTest, ValidateConfigNeedsNoStorageAndNamesTheField) {
  // What HostOptions::Validate checks before any storage exists.
  Config ok;
  ok.id = NodeId(1);
  EXPECT_THAT(ValidateConfig(ok), IsOk());
  // The pointers are Validate()'s business, not ValidateConfig's.
  EXPECT_THAT(ok.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                      ::testing::HasSubstr("storage")));
  auto bad = [&](auto mutate) {
    Config c = ok;
    mutate(c);
    return ValidateConfig(c);
  };
  auto names = [](const std::string& field) {
    return StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr(field));
  };
  EXPECT_THAT(bad([](Config& c) { c.id = kNoNode; }), names("id must not be 0"));
  EXPECT_THAT(bad([](Config& c) { c.id = NodeId(kNodeIdMax + 1); }),
              names("id 9223372036854775808 exceeds kNodeIdMax"));
  EXPECT_THAT(bad([](Config& c) { c.heartbeat_tick = 0; }), names("heartbeat_tick"));
  EXPECT_THAT(bad([](Config& c) { c.heartbeat_tick = -3; }), names("heartbeat_tick"));
  EXPECT_THAT(bad([](Config& c) { c.election_tick = c.heartbeat_tick; }),
              names("election_tick (1) must be greater than heartbeat_tick (1)"));
  EXPECT_THAT(bad([](Config& c) {
                c.heartbeat_tick = 5;
                c.election_tick = 4;
              }),
              names("election_tick (4) must be greater than heartbeat_tick (5)"));
  EXPECT_THAT(bad([](Config& c) { c.election_tick = kElectionTickMax + 1; }),
              names("election_tick"));
  EXPECT_THAT(bad([](Config& c) { c.max_size_per_msg = 0; }), names("max_size_per_msg"));
  EXPECT_THAT(bad([](Config& c) { c.max_inflight_msgs = 0; }), names("max_inflight_msgs"));
  EXPECT_THAT(bad([](Config& c) { c.max_inflight_msgs = kInflightMsgsMax + 1; }),
              names("max_inflight_msgs"));
  EXPECT_THAT(bad([](Config& c) { c.max_inflight_bytes = 1; }),
              names("max_inflight_bytes (1) must be >= max_size_per_msg"));
  EXPECT_THAT(bad([](Config& c) { c.applied = Index(kIndexMax + 1); }),
              names("applied 9223372036854775807 exceeds kIndexMax"));
  EXPECT_THAT(bad([](Config& c) { c.read_only_option = ReadOnlyOption::kLeaseBased; }),
              names("check_quorum"));
  // Boundaries that are fine.
  EXPECT_THAT(bad([](Config& c) { c.max_inflight_bytes = 0; }), IsOk());
  EXPECT_THAT(bad([](Config& c) { c.max_inflight_msgs = kInflightMsgsMax; }), IsOk());
  EXPECT_THAT(bad([](Config& c) { c.election_tick = kElectionTickMax; }), IsOk());
  EXPECT_THAT(bad([](Config& c) { c.id = NodeId(kNodeIdMax); }), IsOk());
  EXPECT_THAT(bad([](Config& c) {
                c.read_only_option = ReadOnlyOption::kLeaseBased;
                c.check_quorum = true;
              }),
              IsOk());
}

}  // namespace
}  // namespace blixard::raft
