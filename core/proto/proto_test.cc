// Proves the offline proto rules: each schema compiles, links against
// Debian's libprotobuf and round-trips through its wire format.
#include <string>

#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"
#include "core/proto/raft.pb.h"
#include "gtest/gtest.h"

namespace blixard {
namespace {

TEST(ProtoTest, RaftMessageRoundTrips) {
  raft::Message message;
  message.set_type(raft::MSG_APPEND);
  message.set_from(1);
  message.set_to(2);
  message.set_term(3);
  raft::Entry* entry = message.add_entries();
  entry->set_term(3);
  entry->set_index(10);
  entry->set_data("put x=1");
  std::string wire;
  ASSERT_TRUE(message.SerializeToString(&wire));
  raft::Message decoded;
  ASSERT_TRUE(decoded.ParseFromString(wire));
  EXPECT_EQ(decoded.type(), raft::MSG_APPEND);
  ASSERT_EQ(decoded.entries_size(), 1);
  EXPECT_EQ(decoded.entries(0).data(), "put x=1");
  EXPECT_EQ(decoded.SerializeAsString(), wire);
}

TEST(ProtoTest, ClusterAndApiSchemasLink) {
  cluster::Resources resources;
  resources.set_cpu_cores(8);
  api::ClientRequest request;
  request.mutable_command()->mutable_request_id()->set_client_id(4);
  cluster::Resources copy;
  ASSERT_TRUE(copy.ParseFromString(resources.SerializeAsString()));
  EXPECT_EQ(copy.cpu_cores(), 8u);
  EXPECT_TRUE(request.has_command());
}

TEST(ProtoTest, GarbageDoesNotParseAsAMessage) {
  raft::Message message;
  EXPECT_FALSE(message.ParseFromString(std::string("\xff\xff\xff", 3)));
}

}  // namespace
}  // namespace blixard
