// Identity and bootstrap (issue 13, point 5): a store records whose it is;
// only a node told the cluster is new bootstraps; a node with an empty store
// joins as a learner and never votes before the cluster confirmed its store;
// a wiped member (founder or promoted learner) never votes.
#include <algorithm>
#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "core/host/host.h"
#include "core/host/testing/host_harness.h"
#include "core/proto/cluster.pb.h"

namespace blixard::host {
namespace {

using testing::RaftMessage;
using testing::ScriptedNetwork;
using testing::TestCluster;
using testing::TestNode;

const NodeId kN1(1), kN2(2), kN3(3), kN4(4);

TEST(HostIdentityTest, BootstrapRecordsTheIdentityWithTheMembership) {
  ScriptedNetwork network;
  TestNode node(testing::TestOptions(kN1, {kN1}), &network);
  node.options().cluster_id = 77;
  ASSERT_TRUE(node.Start().ok());
  ASSERT_GE(node.store().writes().size(), 1u);
  const LogWrite& first = node.store().writes()[0].write;
  ASSERT_TRUE(first.identity.has_value()) << "the bootstrap write must record the identity";
  EXPECT_EQ(*first.identity, (StoreIdentity{77, kN1, kFounderStoreNonce, true}));
  EXPECT_FALSE(first.entries.empty()) << "identity and membership land together";
  // The founders' member records come with the membership.
  size_t founders = 0;
  for (const raft::Entry& entry : first.entries) {
    cluster::Command command;
    if (entry.type() != raft::ENTRY_NORMAL || !command.ParseFromString(entry.data())) continue;
    if (!command.has_member_joined()) continue;
    ++founders;
    EXPECT_EQ(command.member_joined().node_id(), kN1.value());
    EXPECT_EQ(command.member_joined().store_nonce(), kFounderStoreNonce);
  }
  EXPECT_EQ(founders, 1u);
}

TEST(HostIdentityTest, StoreOfAnotherClusterIsRefusedAndNothingIsWritten) {
  ScriptedNetwork network;
  TestNode node(testing::TestOptions(kN1, {kN1}), &network);
  ASSERT_TRUE(node.Start().ok());
  node.store().CompleteAll();
  node.Crash();
  const size_t writes = node.store().writes().size();
  node.options().cluster_id = 2;
  const absl::Status status = node.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("belongs to cluster"), absl::string_view::npos) << status;
  EXPECT_FALSE(node.host().booted());
  EXPECT_EQ(node.store().writes().size(), writes) << "wrote to another cluster's store";
}

TEST(HostIdentityTest, NewClusterThatDoesNotNameThisNodeIsRefused) {
  ScriptedNetwork network;
  TestNode node(testing::TestOptions(kN1, {kN2, kN3}), &network);
  node.options().initial_cluster_state = InitialClusterState::kNew;
  const absl::Status status = node.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(node.store().writes().size(), 0u);
}

// Voters 1-3 bootstrap; node 4 starts empty, told the cluster exists.
void ThreeVotersAndAJoiner(HostOptions& options) {
  options.initial_voters = {kN1, kN2, kN3};
  options.initial_cluster_state =
      options.id == kN4 ? InitialClusterState::kExisting : InitialClusterState::kNew;
}

TEST(HostIdentityTest, EmptyStoreToldTheClusterExistsWaitsAndNeverVotesUntilAdded) {
  TestCluster cluster({kN1, kN2, kN3, kN4}, ThreeVotersAndAJoiner);
  cluster.StartAll();
  EXPECT_TRUE(cluster.host(kN4).joining());
  // ElectLeader waits for every node to know the leader; a node that is
  // not a member hears nothing, so look among the voters.
  cluster.AdvanceBy(20 * 1000 * 1000);
  NodeId leader;
  for (NodeId id : {kN1, kN2, kN3}) {
    if (cluster.host(id).is_leader()) leader = id;
  }
  ASSERT_FALSE(leader.is_none()) << "no leader among the voters";
  EXPECT_FALSE(cluster.host(kN4).is_leader());
  // It neither campaigned nor answered a campaign, and recorded nothing.
  const auto from4 = [&](raft::MessageType type) {
    return cluster.network().CountHistory(RaftMessage(type, kN4));
  };
  EXPECT_EQ(from4(raft::MSG_VOTE) + from4(raft::MSG_PRE_VOTE), 0u);
  EXPECT_EQ(from4(raft::MSG_VOTE_RESPONSE) + from4(raft::MSG_PRE_VOTE_RESPONSE), 0u);
  // Its first and only write: a new store's identity, unconfirmed.
  const std::vector<testing::ScriptedLogStore::RecordedWrite>& writes =
      cluster.node(kN4).store().writes();
  ASSERT_EQ(writes.size(), 1u);
  ASSERT_TRUE(writes[0].write.identity.has_value());
  const StoreIdentity first = *writes[0].write.identity;
  EXPECT_GT(first.store_nonce, kFounderStoreNonce);
  EXPECT_FALSE(first.confirmed);
  EXPECT_TRUE(writes[0].write.entries.empty() && !writes[0].write.hard_state);
  // Added as a learner: it joins, the cluster records its store, and the
  // store is confirmed (durably, same nonce).
  raft::ConfChange change;
  raft::ConfChangeSingle* add = change.add_changes();
  add->set_type(raft::CONF_CHANGE_ADD_LEARNER_NODE);
  add->set_node_id(kN4.value());
  ASSERT_TRUE(cluster.host(leader).ProposeConfChange(change));
  cluster.AdvanceBy(5 * 1000 * 1000);
  EXPECT_FALSE(cluster.host(kN4).joining());
  EXPECT_FALSE(cluster.host(kN4).wiped_member());
  EXPECT_TRUE(cluster.host(kN4).may_vote());
  const cluster::MemberRecord* record = cluster.host(leader).state_machine().FindMember(4);
  ASSERT_NE(record, nullptr);
  EXPECT_EQ(record->store_nonce(), first.store_nonce);
  StoreIdentity confirmed = first;
  confirmed.confirmed = true;
  EXPECT_EQ(cluster.node(kN4).store().durable().identity(), std::optional<StoreIdentity>(confirmed));
}

// Promoted from learner to voter, then its disk is wiped: the store it
// comes back with is not the one the cluster recorded, so it never votes
// (with two voters down, its vote would decide an election).
TEST(HostIdentityTest, PromotedLearnerWhoseDiskIsWipedNeverVotesAgain) {
  TestCluster cluster({kN1, kN2, kN3, kN4}, ThreeVotersAndAJoiner);
  cluster.StartAll();
  cluster.AdvanceBy(20 * 1000 * 1000);
  NodeId leader;
  for (NodeId id : {kN1, kN2, kN3}) {
    if (cluster.host(id).is_leader()) leader = id;
  }
  ASSERT_FALSE(leader.is_none());
  for (raft::ConfChangeType type :
       {raft::CONF_CHANGE_ADD_LEARNER_NODE, raft::CONF_CHANGE_ADD_NODE}) {
    raft::ConfChange change;
    raft::ConfChangeSingle* add = change.add_changes();
    add->set_type(type);
    add->set_node_id(kN4.value());
    ASSERT_TRUE(cluster.host(leader).ProposeConfChange(change));
    cluster.AdvanceBy(5 * 1000 * 1000);
  }
  ASSERT_TRUE(cluster.host(kN4).may_vote());
  const std::vector<NodeId> voters = cluster.host(leader).raw_node().raft().tracker().VoterIds();
  ASSERT_NE(std::find(voters.begin(), voters.end(), kN4), voters.end());

  std::vector<NodeId> others;
  for (NodeId id : {kN1, kN2, kN3}) {
    if (id != leader) others.push_back(id);
  }
  TestNode& node = cluster.node(kN4);
  node.Crash();
  node.store().Wipe();
  ASSERT_TRUE(node.Start().ok());
  cluster.AdvanceBy(5 * 1000 * 1000);
  // Unconfirmed (its MemberJoined, if it got that far, is refused: the id
  // is recorded with the old store), so it does not vote.
  EXPECT_FALSE(node.host().may_vote());
  // A new leader probes it from scratch and sends it the log, which says
  // which store member 4 has: not this one.
  ASSERT_TRUE(cluster.host(leader).TransferLeader(others[0]));
  cluster.AdvanceBy(5 * 1000 * 1000);
  ASSERT_TRUE(cluster.host(others[0]).is_leader());
  EXPECT_TRUE(node.host().wiped_member());
  EXPECT_FALSE(node.host().may_vote());
  EXPECT_NE(cluster.host(others[0]).state_machine().FindMember(4)->store_nonce(),
            node.host().store_identity().store_nonce);
  // Still so after another restart, now with a store that holds state.
  node.Crash();
  ASSERT_TRUE(node.Start().ok());
  cluster.AdvanceBy(5 * 1000 * 1000);
  EXPECT_FALSE(node.host().may_vote());

  // Voters 1-4: with the leader and one more down, no election can be won
  // without node 4's vote.
  cluster.node(others[0]).Crash();
  cluster.node(leader).Crash();
  const auto votes_of_4 = [&] {
    return cluster.network().CountHistory(RaftMessage(raft::MSG_VOTE_RESPONSE, kN4)) +
           cluster.network().CountHistory(RaftMessage(raft::MSG_PRE_VOTE_RESPONSE, kN4));
  };
  const size_t before = votes_of_4();
  cluster.AdvanceBy(30 * 1000 * 1000);
  EXPECT_FALSE(cluster.host(others[1]).is_leader());
  EXPECT_EQ(votes_of_4(), before) << "the wiped member voted";
}

TEST(HostIdentityTest, WipedVoterNeverVotesUnderItsOldId) {
  TestCluster cluster({kN1, kN2, kN3}, [](HostOptions& options) {
    options.initial_cluster_state = InitialClusterState::kNew;
  });
  cluster.StartAll();
  const NodeId leader = cluster.ElectLeader();
  const NodeId wiped = leader == kN3 ? kN2 : kN3;
  const NodeId other = (leader != kN1 && wiped != kN1) ? kN1 : (leader != kN2 && wiped != kN2) ? kN2 : kN3;
  TestNode& node = cluster.node(wiped);
  node.Crash();
  node.store().Wipe();
  node.options().initial_cluster_state = InitialClusterState::kExisting;
  ASSERT_TRUE(node.Start().ok());
  EXPECT_TRUE(node.host().joining());
  cluster.AdvanceBy(2 * 1000 * 1000);
  // Either it still waits (the leader, which saw it acknowledge entries it
  // no longer has, cannot probe below that: Progress::MaybeDecrTo) or the
  // log it received named it a voter from the bootstrap on: a wiped member.
  // Either way it does not take part as a voter.
  EXPECT_TRUE(node.host().joining() || node.host().wiped_member());
  EXPECT_FALSE(node.host().may_vote());
  ASSERT_TRUE(node.store().durable().identity().has_value());
  EXPECT_FALSE(node.store().durable().identity()->confirmed);
  // A restart, now with a store of its own, changes nothing.
  node.Crash();
  ASSERT_TRUE(node.Start().ok());
  cluster.AdvanceBy(2 * 1000 * 1000);
  EXPECT_FALSE(node.host().may_vote());
  // With the leader gone, the wiped node's vote is the only one the other
  // voter could win with: there must be no leader.
  cluster.node(leader).Crash();
  const size_t votes_before = cluster.network().CountHistory(RaftMessage(raft::MSG_VOTE_RESPONSE, wiped)) +
                              cluster.network().CountHistory(RaftMessage(raft::MSG_PRE_VOTE_RESPONSE, wiped));
  cluster.AdvanceBy(30 * 1000 * 1000);
  EXPECT_FALSE(cluster.host(other).is_leader());
  EXPECT_FALSE(node.host().is_leader());
  EXPECT_EQ(cluster.network().CountHistory(RaftMessage(raft::MSG_VOTE_RESPONSE, wiped)) +
                cluster.network().CountHistory(RaftMessage(raft::MSG_PRE_VOTE_RESPONSE, wiped)),
            votes_before);
}

}  // namespace
}  // namespace blixard::host
