#include "core/raft/raw_node.h"

#include "core/base/status_matchers.h"
#include "core/raft/testing/cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;
using testing::Cluster;
using testing::ClusterOptions;

TEST(RawNodeTest, ConfigValidateRejectsBadLimits) {
  MemoryStorage storage;
  NullLogger logger;
  Config c;
  c.id = NodeId(1);
  c.storage = &storage;
  c.logger = &logger;
  EXPECT_TRUE(c.Validate().ok());
  Config bad = c;
  bad.election_tick = 1;
  EXPECT_THAT(bad.Validate(), StatusIs(absl::StatusCode::kInvalidArgument));
  bad = c;
  bad.read_only_option = ReadOnlyOption::kLeaseBased;
  EXPECT_THAT(bad.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("check_quorum")));
  bad = c;
  bad.max_inflight_msgs = 0;
  EXPECT_THAT(RawNode::Create(bad), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RawNodeTest, SingleNodeCommitsOnlyAfterPersist) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(1);
  c.raw(1).Campaign();
  c.Stabilize();
  ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
  EXPECT_EQ(c.raw(1).Propose("x"), ProposalResult::kAccepted);
  // Take the Ready but do not persist: nothing may commit.
  ASSERT_TRUE(c.TakeReady(1));
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(1));
  c.Stabilize();
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(2));
  EXPECT_EQ(c.node(1).applied.back().data(), "x");
}

TEST(RawNodeTest, StepRejectsLocalAndMalformedMessages) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  Message m;
  m.set_type(MSG_HUP);
  m.set_to(1);
  m.set_from(2);
  EXPECT_THAT(c.raw(1).Step(m), StatusIs(absl::StatusCode::kInvalidArgument));
  m.set_type(MSG_APPEND);
  m.set_term(1);
  m.set_index(0);
  Entry* e = m.add_entries();
  e->set_index(5);  // not contiguous with index 0
  e->set_term(1);
  EXPECT_THAT(c.raw(1).Step(m), StatusIs(absl::StatusCode::kInvalidArgument));
  Message resp;
  resp.set_type(MSG_APPEND_RESPONSE);
  resp.set_to(1);
  resp.set_from(9);
  resp.set_term(1);
  EXPECT_THAT(c.raw(1).Step(resp), StatusIs(absl::StatusCode::kNotFound));
  Message wrong_to = resp;
  wrong_to.set_to(2);
  EXPECT_THAT(c.raw(1).Step(wrong_to), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(c.raw(1).raft().term(), Term(0));
}

// A message n1 of {1, 2, 3} accepts, for the bound tests to break one
// field at a time.
Message ValidHeartbeat() {
  Message m;
  m.set_type(MSG_HEARTBEAT);
  m.set_to(1);
  m.set_from(2);
  m.set_term(1);
  return m;
}

// Steps `m` into n1 and expects it refused with INVALID_ARGUMENT whose text
// names `field`, and n1 unchanged.
void ExpectRefused(Cluster& c, const Message& m, const std::string& field) {
  SCOPED_TRACE(field);
  const HardState before = c.raw(1).raft().GetHardState();
  const Index last = c.raw(1).raft().log().LastIndex();
  EXPECT_THAT(c.raw(1).Step(m),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(field)));
  EXPECT_EQ(c.raw(1).raft().GetHardState().SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(c.raw(1).raft().log().LastIndex(), last);
  EXPECT_FALSE(c.raw(1).HasReady());
}

TEST(RawNodeTest, StepRefusesEveryFieldBeyondItsLimit) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.Stabilize();
  ASSERT_FALSE(c.raw(1).HasReady());
  Message m = ValidHeartbeat();
  m.set_from(kNodeIdMax + 1);
  ExpectRefused(c, m, "from 9223372036854775808 exceeds kNodeIdMax");
  m = ValidHeartbeat();
  m.set_term(kTermMax + 1);
  ExpectRefused(c, m, ": term 9223372036854775808 exceeds kTermMax");
  m = ValidHeartbeat();
  m.set_term(UINT64_MAX);
  ExpectRefused(c, m, ": term 18446744073709551615 exceeds kTermMax");
  m = ValidHeartbeat();
  m.set_log_term(kTermMax + 1);
  ExpectRefused(c, m, "log_term 9223372036854775808 exceeds kTermMax");
  m = ValidHeartbeat();
  m.set_index(kIndexMax + 1);
  ExpectRefused(c, m, ": index 9223372036854775807 exceeds kIndexMax");
  m = ValidHeartbeat();
  m.set_commit(kIndexMax + 1);
  ExpectRefused(c, m, "commit 9223372036854775807 exceeds kIndexMax");
  m = ValidHeartbeat();
  m.set_type(MSG_APPEND_RESPONSE);
  m.set_reject(true);
  m.set_reject_hint(kIndexMax + 1);
  ExpectRefused(c, m, "reject_hint 9223372036854775807 exceeds kIndexMax");

  Message app = ValidHeartbeat();
  app.set_type(MSG_APPEND);
  app.set_term(kTermMax);
  app.set_index(kIndexMax - 1);
  app.set_log_term(1);
  Entry* e = app.add_entries();
  e->set_index(kIndexMax);
  e->set_term(kTermMax + 1);
  ExpectRefused(c, app, "entry term 9223372036854775808 exceeds kTermMax");
  e->set_term(kTermMax);
  e->set_index(kIndexMax + 1);
  ExpectRefused(c, app, "entry index 9223372036854775807 exceeds kIndexMax");
  // Two entries after kIndexMax - 1: the second would be kIndexMax + 1,
  // whatever index it claims (here an in-range one).
  e->set_index(kIndexMax);
  Entry* e2 = app.add_entries();
  e2->set_index(kIndexMax);
  e2->set_term(kTermMax);
  ExpectRefused(c, app, "2 entries after index 9223372036854775805 would pass kIndexMax");

  Message snap = ValidHeartbeat();
  snap.set_type(MSG_SNAPSHOT);
  SnapshotMetadata* md = snap.mutable_snapshot()->mutable_metadata();
  md->set_term(1);
  md->set_index(kIndexMax + 1);
  for (uint64_t v : {1, 2, 3}) md->mutable_conf_state()->add_voters(v);
  ExpectRefused(c, snap, "snapshot index 9223372036854775807 exceeds kIndexMax");
  md->set_index(5);
  md->set_term(kTermMax + 1);
  ExpectRefused(c, snap, "snapshot term 9223372036854775808 exceeds kTermMax");
  md->set_term(1);
  md->mutable_conf_state()->add_learners(kNodeIdMax + 1);
  ExpectRefused(c, snap, "snapshot member 9223372036854775808 exceeds kNodeIdMax");
  // The same messages within the limits are accepted.
  md->mutable_conf_state()->clear_learners();
  EXPECT_TRUE(c.raw(1).Step(snap).ok());
  EXPECT_TRUE(c.raw(1).Step(ValidHeartbeat()).ok());
  EXPECT_EQ(c.raw(1).raft().term(), Term(1));
}

TEST(RawNodeTest, TermAtTheLimitIsAcceptedButNeverPassed) {
  NullLogger logger;
  ClusterOptions options;
  options.pre_vote = true;
  Cluster c(options, &logger);
  c.AddVoters(3);
  Message m = ValidHeartbeat();
  m.set_term(kTermMax);
  ASSERT_TRUE(c.raw(1).Step(m).ok());
  EXPECT_EQ(c.raw(1).raft().term(), Term(kTermMax));
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
  c.ProcessReady(1);
  c.in_flight().clear();
  // No campaign: there is no term after kTermMax. Neither by hand, nor by
  // timeout, nor when a leader asks (MsgTimeoutNow).
  c.raw(1).Campaign();
  for (int i = 0; i < 4 * options.election_tick; ++i) c.raw(1).Tick();
  Message timeout_now = ValidHeartbeat();
  timeout_now.set_type(MSG_TIMEOUT_NOW);
  timeout_now.set_term(kTermMax);
  ASSERT_TRUE(c.raw(1).Step(timeout_now).ok());
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
  EXPECT_EQ(c.raw(1).raft().term(), Term(kTermMax));
  c.ProcessReady(1);
  EXPECT_TRUE(c.in_flight().empty());
  c.CheckNode(1);
}

// Drives a lone RawNode over `storage` the way the Host does, until it has
// nothing more to do.
void DriveAlone(RawNode& node, MemoryStorage& storage) {
  while (node.HasReady()) {
    Ready rd = node.GetReady();
    if (rd.snapshot) ASSERT_TRUE(storage.ApplySnapshot(*rd.snapshot).ok());
    if (!rd.entries.empty()) ASSERT_TRUE(storage.Append(rd.entries).ok());
    if (rd.hard_state) storage.SetHardState(*rd.hard_state);
    ASSERT_TRUE(node.OnPersisted(rd.number).ok());
  }
}

TEST(RawNodeTest, LogNeverPassesTheIndexLimit) {
  NullLogger logger;
  MemoryStorage storage;
  Snapshot snap;
  snap.mutable_metadata()->set_index(kIndexMax - 2);
  snap.mutable_metadata()->set_term(3);
  snap.mutable_metadata()->mutable_conf_state()->add_voters(1);
  ASSERT_TRUE(storage.ApplySnapshot(snap).ok());
  HardState hs;
  hs.set_term(3);
  hs.set_commit(kIndexMax - 2);
  storage.SetHardState(hs);
  Config config;
  config.id = NodeId(1);
  config.storage = &storage;
  config.logger = &logger;
  absl::StatusOr<std::unique_ptr<RawNode>> node = RawNode::Create(config);
  ASSERT_TRUE(node.ok()) << node.status();
  RawNode& n = **node;
  n.Campaign();
  DriveAlone(n, storage);
  ASSERT_EQ(n.raft().role(), Role::kLeader);
  // The leader's empty entry took kIndexMax - 1; one more entry fits.
  EXPECT_EQ(n.raft().log().LastIndex(), Index(kIndexMax - 1));
  EXPECT_EQ(n.Propose("last"), ProposalResult::kAccepted);
  DriveAlone(n, storage);
  EXPECT_EQ(n.raft().log().LastIndex(), Index(kIndexMax));
  EXPECT_EQ(n.raft().log().committed(), Index(kIndexMax));
  EXPECT_EQ(n.Propose("too many"), ProposalResult::kDroppedIndexLimit);
  EXPECT_FALSE(n.HasReady());
  EXPECT_EQ(n.raft().log().LastIndex(), Index(kIndexMax));
  n.CheckInvariants();
}

TEST(RawNodeTest, NodeWithAFullLogDoesNotCampaign) {
  NullLogger logger;
  MemoryStorage storage;
  Snapshot snap;
  snap.mutable_metadata()->set_index(kIndexMax);
  snap.mutable_metadata()->set_term(3);
  snap.mutable_metadata()->mutable_conf_state()->add_voters(1);
  ASSERT_TRUE(storage.ApplySnapshot(snap).ok());
  HardState hs;
  hs.set_term(3);
  hs.set_commit(kIndexMax);
  storage.SetHardState(hs);
  Config config;
  config.id = NodeId(1);
  config.storage = &storage;
  config.logger = &logger;
  absl::StatusOr<std::unique_ptr<RawNode>> node = RawNode::Create(config);
  ASSERT_TRUE(node.ok()) << node.status();
  RawNode& n = **node;
  DriveAlone(n, storage);
  n.Campaign();
  for (int i = 0; i < 4 * config.election_tick; ++i) n.Tick();
  EXPECT_EQ(n.raft().role(), Role::kFollower);
  EXPECT_EQ(n.raft().term(), Term(3));
  EXPECT_FALSE(n.HasReady());
  n.CheckInvariants();
}

TEST(RawNodeTest, OnPersistedOutOfOrderIsRefused) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(1);
  c.raw(1).Campaign();
  Ready rd = c.raw(1).GetReady();
  EXPECT_THAT(c.raw(1).OnPersisted(rd.number + 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(c.raw(1).OnPersisted(rd.number).ok());
}

TEST(RawNodeTest, VoteGrantWaitsForPersistence) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.raw(1).Campaign();
  c.ProcessReady(1);
  c.DeliverTo(2);
  Ready rd = c.raw(2).GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_TRUE(rd.messages.empty());
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  EXPECT_EQ(rd.messages_after_persist[0].type(), MSG_VOTE_RESPONSE);
}

TEST(RawNodeTest, RestartNeverVotesTwiceInATerm) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.raw(1).Campaign();
  c.ProcessReady(1);
  c.DeliverTo(2);
  c.ProcessReady(2);  // node 2 persisted its vote for 1 in term 1
  c.Crash(2);
  c.Restart(2);
  EXPECT_EQ(c.raw(2).raft().term(), Term(1));
  EXPECT_EQ(c.raw(2).raft().vote(), NodeId(1));
  Message vote;
  vote.set_type(MSG_VOTE);
  vote.set_from(3);
  vote.set_to(2);
  vote.set_term(1);
  vote.set_index(10);
  vote.set_log_term(1);
  ASSERT_TRUE(c.raw(2).Step(vote).ok());
  Ready rd = c.raw(2).GetReady();
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  EXPECT_TRUE(rd.messages_after_persist[0].reject());
}

TEST(RawNodeTest, CrashBeforePersistLosesVote) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.raw(1).Campaign();
  c.ProcessReady(1);
  c.DeliverTo(2);
  ASSERT_TRUE(c.TakeReady(2));  // write pending, grant held back
  for (const Message& m : c.in_flight()) EXPECT_NE(m.from(), 2u);
  c.Crash(2);
  c.Restart(2);
  EXPECT_EQ(c.raw(2).raft().vote(), kNoNode);
}

}  // namespace
}  // namespace blixard::raft
