// The Host's client path: commands proposed and answered after apply,
// queries through ReadIndex, forwarding to the leader. See host.h.
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/planted_bug.h"
#include "core/host/host.h"
#include "core/host/host_internal.h"

namespace blixard::host {

using internal::DecodeReadId;
using internal::EncodeReadId;
using internal::Response;

api::ClientResponse Host::NotLeader() const {
  api::ClientResponse response = Response(api::ClientResponse::STATUS_NOT_LEADER,
                                     "this node is not the leader");
  response.set_leader_hint(leader_.value());
  return response;
}

void Host::Submit(api::ClientRequest request, Reply reply) {
  CHECK(started_);
  if (raw_node_ == nullptr) {
    reply(Response(api::ClientResponse::STATUS_NOT_LEADER, "node is still starting"));
    return;
  }
  if (!is_leader()) {
    if (request.allow_forward() && !leader_.is_none() && leader_ != options_.id) {
      Forward(std::move(request), std::move(reply));
    } else {
      reply(NotLeader());
    }
    ProcessReady();
    return;
  }
  switch (request.op_case()) {
    case api::ClientRequest::kCommand:
      SubmitCommand(std::move(*request.mutable_command()), std::move(reply));
      break;
    case api::ClientRequest::kQuery:
      SubmitQuery(request.query(), std::move(reply));
      break;
    case api::ClientRequest::kMemberChange:
      SubmitMemberChange(request.member_change(), std::move(reply));
      break;
    case api::ClientRequest::OP_NOT_SET:
      reply(Response(api::ClientResponse::STATUS_REJECTED, "request has no operation"));
      break;
  }
  ProcessReady();
}

void Host::SubmitCommand(cluster::Command command, Reply reply) {
  if (command.op_case() == cluster::Command::OP_NOT_SET) {
    reply(Response(api::ClientResponse::STATUS_REJECTED, "command has no operation"));
    return;
  }
  const RequestKey key(command.request_id().client_id(),
                       command.request_id().sequence());
  if (key.first != 0) {
    if (pending_writes_.size() >= kPendingWritesMax) {
      reply(Response(api::ClientResponse::STATUS_REJECTED,
                     absl::StrCat("too many writes in flight (",
                                  kPendingWritesMax, ")")));
      return;
    }
    auto it = pending_writes_.find(key);
    if (it != pending_writes_.end()) {
      // A retry of a write still in flight: the earlier caller will never be
      // answered by this entry twice, so it learns the outcome is unknown.
      Reply earlier = std::move(it->second);
      pending_writes_.erase(it);
      earlier(Response(api::ClientResponse::STATUS_UNKNOWN, "superseded by a retry"));
    }
  }
  command.set_log_time_ms(controllers_.LogTimeMs(Now()));
  std::string data = command.SerializeAsString();
  const raft::ProposalResult result = raw_node_->Propose(std::move(data));
  if (result != raft::ProposalResult::kAccepted) {
    api::ClientResponse response = NotLeader();
    response.set_error(absl::StrCat("proposal dropped: ",
                                    raft::ProposalResultName(result)));
    reply(response);
    return;
  }
  controllers_.OnProposal(Now());
  if (Planted(PlantedBug::kAckBeforeDurable) && key.first != 0) {
    // PLANTED BUG kAckBeforeDurable (core/base/planted_bug.h): the leader
    // answers "done" as soon as the entry is in its own log — not durable
    // anywhere, not committed — with the optimistic answer such a server
    // gives (it cannot know the result before apply).
    const raft::Raft& raft = raw_node_->raft();
    const Index index = raft.log().LastIndex();
    observer_->OnAcknowledge(options_.id, index, raft.term());
    api::ClientResponse response;
    response.set_status(api::ClientResponse::STATUS_OK);
    response.mutable_result()->set_code(cluster::RESULT_OK);
    response.set_index(index.value());
    response.set_term(raft.term().value());
    reply(response);
    return;
  }
  if (key.first != 0) {
    pending_writes_.emplace(key, std::move(reply));
  } else {
    // Writes without a session cannot be matched to their entry (nor
    // deduplicated): the caller learns only that the proposal was accepted.
    reply(Response(api::ClientResponse::STATUS_UNKNOWN, "accepted without a session"));
  }
}

void Host::SubmitQuery(const cluster::Query& query, Reply reply) {
  if (pending_reads_.size() + reads_awaiting_apply_.size() >= kPendingReadsMax) {
    reply(Response(api::ClientResponse::STATUS_REJECTED, "too many reads in flight"));
    return;
  }
  if (Planted(PlantedBug::kReadWithoutReadIndex)) {
    // PLANTED BUG kReadWithoutReadIndex (core/base/planted_bug.h): a node
    // that believes it leads answers from its own state at once, without
    // confirming leadership or its commit index (thesis §6.4).
    api::ClientResponse response;
    response.set_status(api::ClientResponse::STATUS_OK);
    *response.mutable_query_result() = sm_->Query(query);
    response.set_index(applied_.value());
    reply(response);
    return;
  }
  const uint64_t id = next_read_id_++;
  const raft::ProposalResult result = raw_node_->ReadIndex(EncodeReadId(id));
  if (result != raft::ProposalResult::kAccepted) {
    api::ClientResponse response = NotLeader();
    response.set_error(absl::StrCat("read dropped: ",
                                    raft::ProposalResultName(result)));
    reply(response);
    return;
  }
  pending_reads_.emplace(id, PendingRead{query, std::move(reply)});
}

void Host::Forward(api::ClientRequest request, Reply reply) {
  if (forwards_.size() >= kPendingForwardsMax) {
    reply(Response(api::ClientResponse::STATUS_REJECTED, "too many forwards in flight"));
    return;
  }
  const uint64_t id = next_forward_id_++;
  const bool is_query = request.has_query();
  HostMessage message;
  message.mutable_forward()->set_forward_id(id);
  *message.mutable_forward()->mutable_request() = std::move(request);
  forwards_.emplace(id, PendingForward{is_query, Now() + options_.forward_timeout_us,
                                       std::move(reply)});
  SendHostMessage(leader_, message);
}

void Host::SweepForwards() {
  const MonoMicros now = Now();
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    Reply reply = std::move(it->second.reply);
    const bool is_query = it->second.is_query;
    it = forwards_.erase(it);
    reply(is_query ? NotLeader()
                   : Response(api::ClientResponse::STATUS_UNKNOWN,
                              "forwarded request timed out"));
  }
}

void Host::FailPending(api::ClientResponse::Status status, absl::string_view why) {
  // Deferred: this runs while a Ready is being handled.
  for (auto& [key, reply] : pending_writes_) {
    deferred_replies_.emplace_back(std::move(reply), Response(status, why));
  }
  pending_writes_.clear();
  for (auto& [id, read] : pending_reads_) {
    deferred_replies_.emplace_back(std::move(read.reply), NotLeader());
  }
  pending_reads_.clear();
}

bool Host::ProposeConfChange(const raft::ConfChange& change) {
  if (raw_node_ == nullptr || !is_leader()) return false;
  const bool accepted =
      raw_node_->ProposeConfChange(change) == raft::ProposalResult::kAccepted;
  ProcessReady();
  return accepted;
}

bool Host::TransferLeader(NodeId to) {
  if (raw_node_ == nullptr || !is_leader()) return false;
  raw_node_->TransferLeader(to);
  ProcessReady();
  return true;
}


}  // namespace blixard::host
