#include "core/raft/config.h"

#include "core/base/status_matchers.h"
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

}  // namespace
}  // namespace blixard::raft
