// Test helpers for the client protocol: fake nodes (an ApiServer with a
// scripted handler and a fixed NodeStatus), a raw client that writes bytes
// by hand and reads replies, and a port that refuses connections.
//
// Waits run a loop until a condition holds, bounded by
// net/transport/transport_test_util.h's kPatience; nothing sleeps.
//
// Thread: the loop's.
#ifndef BLIXARD_NET_API_API_TEST_UTIL_H_
#define BLIXARD_NET_API_API_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/logger.h"
#include "core/proto/api.pb.h"
#include "net/api/api_server.h"
#include "net/api/client_handler.h"
#include "net/api/client_protocol.h"
#include "net/api/client_protocol.pb.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"
#include "net/transport/transport_test_util.h"

namespace blixard::net::testing {

// Server options for tests: 127.0.0.1, an ephemeral port, `logger`.
ApiServerOptions TestServerOptions(Logger* logger);

// An ApiServer (CHECKs that it could be created).
std::unique_ptr<ApiServer> NewServer(EventLoop* loop, ApiServerOptions options,
                                     ClientHandler handler);

// A node as a client sees it: answers status requests from `status`
// (client_address filled in), records every other request, and answers
// them with `answer` (an OK response when empty).
struct FakeNode {
  api::NodeStatus status;
  std::function<void(const api::ClientRequest&, ClientReplyFn)> answer;
  std::vector<api::ClientRequest> requests;
  std::unique_ptr<ApiServer> server;

  std::string endpoint() const { return server->address().ToString(); }
};

// A fake node `node_id` in `role` that believes `leader_id` leads, at
// `term`, serving on `loop`.
std::unique_ptr<FakeNode> NewFakeNode(EventLoop* loop, Logger* logger,
                                      uint64_t node_id,
                                      api::NodeStatus::Role role,
                                      uint64_t leader_id, uint64_t term = 1);

api::ClientResponse Response(api::ClientResponse::Status status,
                             uint64_t leader_hint = 0,
                             absl::string_view error = "");

// A KV put as a client request (no request_id: the Client sets it).
api::ClientRequest PutRequest(absl::string_view key, absl::string_view value);

// Encoded frames as a client would send them.
std::string CallFrame(uint64_t call_id, const api::ClientRequest& request);

// A hand-driven client connection: writes whatever bytes a test wants and
// decodes what comes back.
class RawClient {
 public:
  // Connects to 127.0.0.1:port (CHECKs; completes from the backlog).
  explicit RawClient(uint16_t port) : raw_(port) {}

  // Writes all of `bytes` (CHECKs; tests write what the socket buffer
  // takes).
  void Write(absl::string_view bytes) { raw_.Write(bytes); }

  // Reads what is there without blocking and appends the decoded replies.
  // False once the server closed the connection (or sent garbage).
  bool ReadReplies(std::vector<api::ClientReply>* replies);

  // True once the other end has closed or reset the connection.
  bool ClosedByPeer();

  // Closes our end.
  void Close() { raw_.Close(); }

 private:
  RawPeer raw_;  // the socket; this class decodes what it reads
  ReplyDecoder decoder_{kFrameBodyBytesMax};
  bool closed_ = false;
};

// A port that refuses connections: a socket bound to 127.0.0.1 that never
// listens (it holds the port, so nothing else takes it during the test).
class RefusingPort {
 public:
  RefusingPort();
  uint16_t port() const { return port_; }
  std::string endpoint() const;

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
};

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_API_API_TEST_UTIL_H_
