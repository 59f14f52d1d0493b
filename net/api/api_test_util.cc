#include "net/api/api_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "net/transport/socket.h"

namespace blixard::net::testing {

ApiServerOptions TestServerOptions(Logger* logger) {
  ApiServerOptions options;
  options.listen = {"127.0.0.1", 0};
  options.logger = logger;
  return options;
}

std::unique_ptr<ApiServer> NewServer(EventLoop* loop, ApiServerOptions options,
                                     ClientHandler handler) {
  absl::StatusOr<std::unique_ptr<ApiServer>> server =
      ApiServer::Create(loop, std::move(options), std::move(handler));
  CHECK(server.ok()) << server.status();
  return std::move(*server);
}

std::unique_ptr<FakeNode> NewFakeNode(EventLoop* loop, Logger* logger,
                                      uint64_t node_id,
                                      api::NodeStatus::Role role,
                                      uint64_t leader_id, uint64_t term) {
  auto node = std::make_unique<FakeNode>();
  node->status.set_node_id(node_id);
  node->status.set_cluster_id(7);
  node->status.set_role(role);
  node->status.set_term(term);
  node->status.set_leader_id(leader_id);
  FakeNode* raw = node.get();
  ApiServerOptions options = TestServerOptions(logger);
  options.name = absl::StrCat("node ", node_id, " api");
  node->server = NewServer(
      loop, std::move(options),
      ServeWithNodeStatus(
          [raw] {
            api::NodeStatus status = raw->status;
            status.set_client_address(raw->endpoint());
            return status;
          },
          [raw](api::ClientRequest request, ClientReplyFn reply) {
            raw->requests.push_back(request);
            if (raw->answer) {
              raw->answer(raw->requests.back(), std::move(reply));
            } else {
              reply(Response(api::ClientResponse::STATUS_OK));
            }
          }));
  return node;
}

api::ClientResponse Response(api::ClientResponse::Status status,
                             uint64_t leader_hint, absl::string_view error) {
  api::ClientResponse response;
  response.set_status(status);
  response.set_leader_hint(leader_hint);
  response.set_error(std::string(error));
  return response;
}

api::ClientRequest PutRequest(absl::string_view key, absl::string_view value) {
  api::ClientRequest request;
  cluster::KvPut* put = request.mutable_command()->mutable_kv_put();
  put->set_key(std::string(key));
  put->set_value(std::string(value));
  return request;
}

std::string CallFrame(uint64_t call_id, const api::ClientRequest& request) {
  api::ClientCall call;
  call.set_call_id(call_id);
  *call.mutable_request() = request;
  return EncodeCallFrame(call);
}

bool RawClient::ReadReplies(std::vector<api::ClientReply>* replies) {
  if (closed_) return false;
  std::string bytes;
  closed_ = !raw_.ReadAvailable(&bytes);
  decoder_.Feed(bytes);
  while (true) {
    absl::StatusOr<std::optional<api::ClientReply>> next = decoder_.Next();
    CHECK(next.ok()) << "the server sent a bad reply: " << next.status();
    if (!next->has_value()) break;
    replies->push_back(std::move(**next));
  }
  return !closed_;
}

bool RawClient::ClosedByPeer() {
  std::vector<api::ClientReply> ignored;
  return !ReadReplies(&ignored);
}

RefusingPort::RefusingPort() {
  fd_ = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  CHECK(fd_.valid()) << "socket: errno " << errno;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&address),
                sizeof(address)),
           0)
      << "bind: errno " << errno;
  absl::StatusOr<uint16_t> port = LocalPort(fd_.get());
  CHECK(port.ok()) << port.status();
  port_ = *port;
}

std::string RefusingPort::endpoint() const {
  return absl::StrCat("127.0.0.1:", port_);
}

}  // namespace blixard::net::testing
