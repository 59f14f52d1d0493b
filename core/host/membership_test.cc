// Membership changes a client asks for (api::MemberChangeRequest): checked
// by the leader, proposed as conf changes carrying the request id and the
// new member's address, recorded on every replica, applied once however
// often retried; ids never reused; a removed node told and reported.
#include <string>

#include "gtest/gtest.h"
#include "core/host/host.h"
#include "core/host/membership.h"
#include "core/host/testing/host_harness.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"

namespace blixard::host {
namespace {

using testing::SubmitAndSettle;
using testing::TestCluster;

const NodeId kN1(1), kN2(2), kN3(3);

api::ClientRequest Change(api::MemberChangeRequest::Type type, uint64_t node_id,
                          uint64_t sequence, const std::string& peer_address = "") {
  api::ClientRequest request;
  api::MemberChangeRequest* change = request.mutable_member_change();
  change->set_type(type);
  change->set_node_id(node_id);
  change->set_peer_address(peer_address);
  change->mutable_request_id()->set_client_id(99);
  change->mutable_request_id()->set_sequence(sequence);
  return request;
}

class MembershipTest : public ::testing::Test {
 protected:
  MembershipTest() : cluster_({kN1, kN2, kN3}) {
    cluster_.StartAll();
    leader_ = cluster_.ElectLeader();
  }
  api::ClientResponse Send(const api::ClientRequest& request) {
    api::ClientResponse response = SubmitAndSettle(cluster_, leader_, request);
    cluster_.AdvanceBy(1'000'000);  // followers apply what committed
    return response;
  }
  TestCluster cluster_;
  NodeId leader_;
};

TEST_F(MembershipTest, AddALearnerRecordsItsAddressEverywhereAndARetryAppliesOnce) {
  const api::ClientRequest add =
      Change(api::MemberChangeRequest::TYPE_ADD_LEARNER, 0, 1, "10.0.0.4:2380");
  const api::ClientResponse first = Send(add);
  ASSERT_EQ(first.status(), api::ClientResponse::STATUS_OK) << first.error();
  EXPECT_EQ(first.result().member().node_id(), 4u) << "the next id above 1..3";
  EXPECT_EQ(first.result().member().role(), cluster::MEMBER_ROLE_LEARNER);
  for (NodeId id : {kN1, kN2, kN3}) {
    const cluster::MemberRecord* record = cluster_.host(id).state_machine().FindMember(4);
    ASSERT_NE(record, nullptr) << "n" << id.value();
    EXPECT_EQ(record->peer_address(), "10.0.0.4:2380");
    EXPECT_EQ(record->role(), cluster::MEMBER_ROLE_LEARNER);
    const cluster::MemberRecord* founder = cluster_.host(id).state_machine().FindMember(2);
    ASSERT_NE(founder, nullptr);
    EXPECT_EQ(founder->role(), cluster::MEMBER_ROLE_VOTER);
  }
  // The same request again: the recorded answer, no second change.
  const api::ClientResponse retry = Send(add);
  ASSERT_EQ(retry.status(), api::ClientResponse::STATUS_OK) << retry.error();
  EXPECT_EQ(retry.index(), first.index());
  EXPECT_EQ(retry.result().member().node_id(), 4u);
  EXPECT_EQ(cluster_.host(leader_).raw_node().GetStatus().config.learners_size(), 1);
  EXPECT_EQ(cluster_.host(leader_).state_machine().FindMember(5), nullptr);
}

TEST_F(MembershipTest, BadRequestsAreRefusedAndChangeNothing) {
  const Index before = cluster_.host(leader_).commit_index();
  api::ClientRequest no_id =
      Change(api::MemberChangeRequest::TYPE_ADD_LEARNER, 0, 1, "10.0.0.4:2380");
  no_id.mutable_member_change()->clear_request_id();
  const struct {
    api::ClientRequest request;
    std::string says;
  } cases[] = {
      {no_id, "request id"},
      {Change(api::MemberChangeRequest::TYPE_ADD_LEARNER, 0, 1, ""), "not HOST:PORT"},
      {Change(api::MemberChangeRequest::TYPE_ADD_LEARNER, 0, 2, "bad address"), "not HOST:PORT"},
      {Change(api::MemberChangeRequest::TYPE_ADD_LEARNER, 2, 3, "10.0.0.4:2380"), "never reused"},
      {Change(api::MemberChangeRequest::TYPE_UNSPECIFIED, 4, 4), "without a type"},
      {Change(api::MemberChangeRequest::TYPE_PROMOTE, 2, 5), "not a learner"},
      {Change(api::MemberChangeRequest::TYPE_REMOVE, 7, 6), "not a member"},
  };
  for (const auto& c : cases) {
    const api::ClientResponse response = Send(c.request);
    EXPECT_EQ(response.status(), api::ClientResponse::STATUS_REJECTED) << c.says;
    EXPECT_NE(response.error().find(c.says), std::string::npos) << response.error();
  }
  EXPECT_EQ(cluster_.host(leader_).raw_node().GetStatus().config.voters_size(), 3);
  EXPECT_EQ(cluster_.host(leader_).raw_node().GetStatus().config.learners_size(), 0);
  // Only the log clock's entries may have been added since.
  EXPECT_EQ(cluster_.host(leader_).state_machine().FindMember(4), nullptr);
  EXPECT_GE(cluster_.host(leader_).commit_index(), before);
}

TEST_F(MembershipTest, ALearnerThatNeverRanIsNotPromoted) {
  ASSERT_EQ(Send(Change(api::MemberChangeRequest::TYPE_ADD_LEARNER, 0, 1, "10.0.0.4:2380"))
                .status(),
            api::ClientResponse::STATUS_OK);
  // Node 4 does not exist: it matched nothing and recorded no store.
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(SubmitAndSettle(cluster_, leader_, testing::PutRequest("k", "v", 7, i + 1)).status(),
              api::ClientResponse::STATUS_OK);
  }
  const api::ClientResponse promote = Send(Change(api::MemberChangeRequest::TYPE_PROMOTE, 4, 2));
  EXPECT_EQ(promote.status(), api::ClientResponse::STATUS_REJECTED);
  EXPECT_NE(promote.error().find("has not caught up"), std::string::npos) << promote.error();
  EXPECT_EQ(cluster_.host(leader_).raw_node().GetStatus().config.voters_size(), 3);
}

TEST_F(MembershipTest, ARemovedVoterIsToldAndItsIdIsNeverReused) {
  const NodeId victim = leader_ == kN3 ? kN2 : kN3;
  const api::ClientResponse removed =
      Send(Change(api::MemberChangeRequest::TYPE_REMOVE, victim.value(), 1));
  ASSERT_EQ(removed.status(), api::ClientResponse::STATUS_OK) << removed.error();
  EXPECT_EQ(removed.result().member().role(), cluster::MEMBER_ROLE_REMOVED);
  cluster_.AdvanceBy(5'000'000);
  EXPECT_TRUE(cluster_.host(victim).removed());
  ASSERT_FALSE(cluster_.node(victim).observer().removed.empty());
  EXPECT_EQ(cluster_.node(victim).observer().removed.front(), Index(removed.index()));
  // Its id is refused; a new member gets the next one.
  const api::ClientResponse reuse = Send(Change(api::MemberChangeRequest::TYPE_ADD_LEARNER,
                                                victim.value(), 2, "10.0.0.9:2380"));
  EXPECT_EQ(reuse.status(), api::ClientResponse::STATUS_REJECTED);
  EXPECT_NE(reuse.error().find("never reused"), std::string::npos) << reuse.error();
  const api::ClientResponse next =
      Send(Change(api::MemberChangeRequest::TYPE_ADD_LEARNER, 0, 3, "10.0.0.9:2380"));
  ASSERT_EQ(next.status(), api::ClientResponse::STATUS_OK) << next.error();
  EXPECT_EQ(next.result().member().node_id(), 4u);
  // Removing voters down to the last one: the last is refused.
  const NodeId other = victim == kN2 ? kN3 : kN2;
  const NodeId second = leader_ == kN1 ? other : kN1;
  ASSERT_EQ(Send(Change(api::MemberChangeRequest::TYPE_REMOVE, second.value(), 4)).status(),
            api::ClientResponse::STATUS_OK);
  const api::ClientResponse last =
      Send(Change(api::MemberChangeRequest::TYPE_REMOVE, leader_.value(), 5));
  EXPECT_EQ(last.status(), api::ClientResponse::STATUS_REJECTED);
  EXPECT_NE(last.error().find("last voter"), std::string::npos) << last.error();
}

// A learner removed while it was down never campaigns, so it never calls:
// the leader keeps telling removed members, and it learns once it is back.
TEST(MembershipDownTest, ALearnerRemovedWhileDownIsToldOnceBack) {
  const NodeId kN4(4);
  TestCluster cluster({kN1, kN2, kN3, kN4}, [&](HostOptions& options) {
    options.initial_voters = {kN1, kN2, kN3};
    options.initial_cluster_state =
        options.id == kN4 ? InitialClusterState::kExisting : InitialClusterState::kNew;
  });
  cluster.StartAll();
  cluster.AdvanceBy(5'000'000);
  NodeId leader;
  for (NodeId id : {kN1, kN2, kN3}) {
    if (cluster.host(id).is_leader()) leader = id;
  }
  ASSERT_FALSE(leader.is_none());
  ASSERT_EQ(SubmitAndSettle(cluster, leader,
                            Change(api::MemberChangeRequest::TYPE_ADD_LEARNER, 4, 1, "n4:1"))
                .status(),
            api::ClientResponse::STATUS_OK);
  cluster.AdvanceBy(3'000'000);
  ASSERT_EQ(cluster.host(kN4).role(), NodeRole::kLearner);
  cluster.node(kN4).Crash();
  ASSERT_EQ(SubmitAndSettle(cluster, leader, Change(api::MemberChangeRequest::TYPE_REMOVE, 4, 2))
                .status(),
            api::ClientResponse::STATUS_OK);
  cluster.AdvanceBy(3'000'000);
  ASSERT_TRUE(cluster.node(kN4).Start().ok());
  cluster.AdvanceBy(5'000'000);
  EXPECT_TRUE(cluster.host(kN4).removed()) << "the removed learner was never told";
  EXPECT_FALSE(cluster.node(kN4).observer().removed.empty());
}

}  // namespace
}  // namespace blixard::host
