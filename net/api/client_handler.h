// ClientHandler: what an ApiServer (api_server.h) hands each client request
// to, and the handler a node serves clients with.
//
// A handler is called on the server's loop thread with the request and a
// `reply` that must run at most once, on that thread, now or later (the
// Host answers a write only once it is applied): Host::Submit has exactly
// this shape. A reply that runs after its connection closed, or after the
// server is gone, is dropped safely.
//
//   ApiServer::Create(loop, options,
//                     ServeWithNodeStatus([&] { return Status(host); },
//                                         [&](api::ClientRequest request,
//                                             ClientReplyFn reply) {
//                                           host.Submit(std::move(request),
//                                                       std::move(reply));
//                                         }));
//
// Thread: the server's loop thread.
#ifndef BLIXARD_NET_API_CLIENT_HANDLER_H_
#define BLIXARD_NET_API_CLIENT_HANDLER_H_

#include <functional>

#include "core/proto/api.pb.h"

namespace blixard::net {

using ClientReplyFn = std::function<void(const api::ClientResponse& response)>;
using ClientHandler =
    std::function<void(api::ClientRequest request, ClientReplyFn reply)>;

// A node's handler: a status request (ClientRequest.status) is answered at
// once with STATUS_OK and `status()` (the node's own view; never through
// Raft, never forwarded); a request that carries a status request and an
// operation is REJECTED; everything else goes to `submit` (Host::Submit).
// REQUIRES: both non-empty.
ClientHandler ServeWithNodeStatus(
    std::function<api::NodeStatus(const api::NodeStatusRequest&)> status, ClientHandler submit);
// The same for a status that ignores what the request asks for.
ClientHandler ServeWithNodeStatus(std::function<api::NodeStatus()> status,
                                  ClientHandler submit);

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_CLIENT_HANDLER_H_
