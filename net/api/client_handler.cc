#include "net/api/client_handler.h"

#include <utility>

#include "core/base/check.h"

namespace blixard::net {

ClientHandler ServeWithNodeStatus(std::function<api::NodeStatus()> status,
                                  ClientHandler submit) {
  CHECK(status != nullptr);
  return ServeWithNodeStatus(
      [status = std::move(status)](const api::NodeStatusRequest&) { return status(); },
      std::move(submit));
}

ClientHandler ServeWithNodeStatus(
    std::function<api::NodeStatus(const api::NodeStatusRequest&)> status, ClientHandler submit) {
  CHECK(status != nullptr);
  CHECK(submit != nullptr);
  return [status = std::move(status), submit = std::move(submit)](
             api::ClientRequest request, ClientReplyFn reply) {
    if (!request.has_status()) {
      submit(std::move(request), std::move(reply));
      return;
    }
    api::ClientResponse response;
    if (request.op_case() != api::ClientRequest::OP_NOT_SET) {
      // Ambiguous: answering either half would leave the other unanswered.
      response.set_status(api::ClientResponse::STATUS_REJECTED);
      response.set_error(
          "a status request must not carry an operation as well");
    } else {
      response.set_status(api::ClientResponse::STATUS_OK);
      *response.mutable_node_status() = status(request.status());
    }
    reply(response);
  };
}

}  // namespace blixard::net
