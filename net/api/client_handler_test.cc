#include "net/api/client_handler.h"

#include <vector>

#include "core/proto/api.pb.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

class ServeWithNodeStatusTest : public ::testing::Test {
 protected:
  ServeWithNodeStatusTest()
      : handler_(ServeWithNodeStatus(
            [] {
              api::NodeStatus status;
              status.set_node_id(3);
              status.set_role(api::NodeStatus::ROLE_LEADER);
              return status;
            },
            [this](api::ClientRequest request, ClientReplyFn reply) {
              submitted_.push_back(request);
              api::ClientResponse response;
              response.set_status(api::ClientResponse::STATUS_UNKNOWN);
              reply(response);
            })) {}

  api::ClientResponse Handle(const api::ClientRequest& request) {
    std::vector<api::ClientResponse> replies;
    handler_(request, [&](const api::ClientResponse& response) {
      replies.push_back(response);
    });
    EXPECT_EQ(replies.size(), 1u);
    return replies.empty() ? api::ClientResponse() : replies[0];
  }

  std::vector<api::ClientRequest> submitted_;
  ClientHandler handler_;
};

TEST_F(ServeWithNodeStatusTest, AStatusRequestIsAnsweredByTheNodeItself) {
  api::ClientRequest request;
  request.mutable_status();
  const api::ClientResponse response = Handle(request);
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_OK);
  EXPECT_EQ(response.node_status().node_id(), 3u);
  EXPECT_EQ(response.node_status().role(), api::NodeStatus::ROLE_LEADER);
  EXPECT_TRUE(submitted_.empty());
}

TEST_F(ServeWithNodeStatusTest, OperationsGoToSubmit) {
  api::ClientRequest request;
  request.mutable_command()->mutable_kv_put()->set_key("k");
  EXPECT_EQ(Handle(request).status(), api::ClientResponse::STATUS_UNKNOWN);
  ASSERT_EQ(submitted_.size(), 1u);
  EXPECT_EQ(submitted_[0].command().kv_put().key(), "k");
}

TEST_F(ServeWithNodeStatusTest, AStatusRequestWithAnOperationIsRejected) {
  api::ClientRequest request;
  request.mutable_status();
  request.mutable_query();
  const api::ClientResponse response = Handle(request);
  EXPECT_EQ(response.status(), api::ClientResponse::STATUS_REJECTED);
  EXPECT_FALSE(response.error().empty());
  EXPECT_TRUE(submitted_.empty());
}

}  // namespace
}  // namespace blixard::net
