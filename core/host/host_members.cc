// The Host's membership: changes a client asks for (checked, then proposed
// as Raft conf changes carrying the request id and the new member's
// address), conf changes applied (recorded in the state machine), this
// node's addresses published, and removed members told so. See host.h.
#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/host/host.h"
#include "core/host/host_internal.h"
#include "core/host/membership.h"
#include "core/sm/cluster_limits.h"

namespace blixard::host {

using internal::Response;

namespace {

// A peer address as a member record holds it: "HOST:PORT", printable
// ASCII without spaces, at most kAddressBytesMax bytes. The Host cannot
// resolve it (no I/O); the runtime that dials it reports what is wrong.
bool PlausibleAddress(absl::string_view address) {
  if (address.empty() || address.size() > kAddressBytesMax) return false;
  for (char c : address) {
    if (c <= ' ' || c > '~') return false;
  }
  const size_t colon = address.rfind(':');
  return colon != absl::string_view::npos && colon > 0 && colon + 1 < address.size();
}

api::ClientResponse Refused(absl::string_view why) {
  return Response(api::ClientResponse::STATUS_REJECTED, why);
}

}  // namespace

void Host::SubmitMemberChange(const api::MemberChangeRequest& request, Reply reply) {
  const cluster::RequestId& id = request.request_id();
  if (id.client_id() == 0 || id.sequence() == 0) {
    reply(Refused("a membership change needs a request id (client id and sequence, both non-zero)"));
    return;
  }
  const RequestKey key(id.client_id(), id.sequence());
  // A retry of a change already applied gets the recorded answer; an older
  // request is stale (the session table's rule for commands).
  if (const cluster::ClientSession* session = sm_->FindSession(key.first)) {
    if (session->last_sequence() == key.second) {
      api::ClientResponse response;
      response.set_status(api::ClientResponse::STATUS_OK);
      *response.mutable_result() = session->last_result();
      response.set_index(session->last_index());
      reply(response);
      return;
    }
    if (session->last_sequence() > key.second) {
      reply(Refused(absl::StrCat("request ", key.second, " of client ", key.first,
                                 " is stale: the last one applied is ",
                                 session->last_sequence())));
      return;
    }
  }
  // A retry of a change in flight here: its entry answers the retry.
  if (auto it = pending_writes_.find(key); it != pending_writes_.end()) {
    Reply earlier = std::move(it->second);
    it->second = std::move(reply);
    earlier(Response(api::ClientResponse::STATUS_UNKNOWN, "superseded by a retry"));
    return;
  }
  const raft::Status status = raw_node_->GetStatus();
  if (status.conf_change_pending) {
    // Maybe this very request, proposed by an earlier leader: the client
    // retries with the same ids until it applied (then the session answers).
    reply(Response(api::ClientResponse::STATUS_UNKNOWN,
                   "a membership change is in progress: retry with the same request id"));
    return;
  }
  NodeId target(request.node_id());
  MemberChangeKind kind;
  raft::ConfChangeType type;
  switch (request.type()) {
    case api::MemberChangeRequest::TYPE_ADD_LEARNER: {
      kind = MemberChangeKind::kAddLearner;
      type = raft::CONF_CHANGE_ADD_LEARNER_NODE;
      if (!PlausibleAddress(request.peer_address())) {
        reply(Refused(absl::StrCat("peer address '", request.peer_address(),
                                   "' is not HOST:PORT (printable, at most ", kAddressBytesMax,
                                   " bytes)")));
        return;
      }
      uint64_t highest = 0;
      for (const auto& [member_id, member] : sm_->members()) {
        highest = std::max(highest, member.node_id());
        if (member.role() != cluster::MEMBER_ROLE_REMOVED &&
            member.peer_address() == request.peer_address()) {
          reply(Refused(absl::StrCat("member ", member.node_id(), " already listens on ",
                                     request.peer_address())));
          return;
        }
      }
      for (uint64_t v : status.config.voters()) highest = std::max(highest, v);
      for (uint64_t l : status.config.learners()) highest = std::max(highest, l);
      if (target.is_none()) target = NodeId(highest + 1);
      if (target.value() > kNodeIdMax) {
        reply(Refused(absl::StrCat("node id ", target.value(), " is above ", kNodeIdMax)));
        return;
      }
      if (const cluster::MemberRecord* used = sm_->FindMember(target.value())) {
        reply(Refused(absl::StrCat(
            "node id ", target.value(), " was used before (",
            cluster::MemberRole_Name(used->role()), " since index ", used->changed_index(),
            "): ids are never reused; add the node under a new id")));
        return;
      }
      break;
    }
    case api::MemberChangeRequest::TYPE_PROMOTE:
      kind = MemberChangeKind::kPromote;
      type = raft::CONF_CHANGE_ADD_NODE;
      break;
    case api::MemberChangeRequest::TYPE_REMOVE:
      kind = MemberChangeKind::kRemove;
      type = raft::CONF_CHANGE_REMOVE_NODE;
      break;
    default:
      reply(Refused("membership change without a type (add_learner, promote or remove)"));
      return;
  }
  if (absl::Status allowed = CheckMemberChange(status, kind, target); !allowed.ok()) {
    reply(Refused(allowed.message()));
    return;
  }
  if (kind == MemberChangeKind::kPromote) {
    const cluster::MemberRecord* record = sm_->FindMember(target.value());
    if (record == nullptr || record->store_nonce() == 0) {
      // A voter whose store the cluster has not recorded would never vote
      // (may_vote): it would only weaken the quorum.
      reply(Refused(absl::StrCat("learner ", target.value(),
                                 " has not recorded its store yet: is it running?")));
      return;
    }
  }
  raft::ConfChange change;
  raft::ConfChangeSingle* single = change.add_changes();
  single->set_type(type);
  single->set_node_id(target.value());
  cluster::MemberChangeContext context;
  *context.mutable_request_id() = id;
  if (kind == MemberChangeKind::kAddLearner) context.set_peer_address(request.peer_address());
  change.set_context(context.SerializeAsString());
  const raft::ProposalResult result = raw_node_->ProposeConfChange(change);
  if (result != raft::ProposalResult::kAccepted) {
    api::ClientResponse response = NotLeader();
    response.set_error(absl::StrCat("membership change dropped: ", raft::ProposalResultName(result)));
    reply(response);
    return;
  }
  logger_->Info("n", options_.id.value(), " proposed: ",
                api::MemberChangeRequest::Type_Name(request.type()), " node ", target.value(),
                kind == MemberChangeKind::kAddLearner
                    ? absl::StrCat(" at ", request.peer_address())
                    : std::string());
  pending_writes_.emplace(key, std::move(reply));
}

void Host::ApplyConfChangeEntry(const raft::Entry& entry) {
  const Index index(entry.index());
  raft::ConfChange change;
  if (!change.ParseFromString(entry.data())) {
    // No poison pill: every replica skips the same bytes the same way
    // (the core already ignores a conf change it cannot apply).
    logger_->Error("n", options_.id.value(), " skipped committed conf change at ",
                   index.value(), ": ", entry.data().size(), " bytes do not decode");
    return;
  }
  conf_state_ = raw_node_->ApplyConfChange(change);
  CheckJoined(conf_state_, index);

  cluster::MembershipChange membership;
  cluster::MemberChangeContext context;
  if (!change.context().empty() && context.ParseFromString(change.context())) {
    *membership.mutable_request_id() = context.request_id();
    membership.set_subject_peer_address(context.peer_address());
  }
  std::set<uint64_t> voters(conf_state_.voters().begin(), conf_state_.voters().end());
  voters.insert(conf_state_.voters_outgoing().begin(), conf_state_.voters_outgoing().end());
  std::set<uint64_t> learners(conf_state_.learners().begin(), conf_state_.learners().end());
  learners.insert(conf_state_.learners_next().begin(), conf_state_.learners_next().end());
  for (uint64_t v : voters) {
    membership.add_voters(v);
    learners.erase(v);
  }
  for (uint64_t l : learners) membership.add_learners(l);
  const NodeId subject(change.changes_size() > 0 ? change.changes(0).node_id() : 0);
  membership.set_subject_node_id(subject.value());
  cluster::Result result = sm_->ApplyMembership(index, membership);

  const RequestKey key(context.request_id().client_id(), context.request_id().sequence());
  auto it = key.first != 0 ? pending_writes_.find(key) : pending_writes_.end();
  if (it != pending_writes_.end()) {
    api::ClientResponse response;
    response.set_status(api::ClientResponse::STATUS_OK);
    *response.mutable_result() = std::move(result);
    response.set_index(index.value());
    response.set_term(entry.term());
    deferred_replies_.emplace_back(std::move(it->second), std::move(response));
    pending_writes_.erase(it);
  }
  MembersChanged();
  if (voters.count(options_.id.value()) > 0 || learners.count(options_.id.value()) > 0) {
    removed_ = false;  // added back (the simulator reuses ids; production never does)
  }
  if (!subject.is_none() && subject != options_.id) {
    const cluster::MemberRecord* record = sm_->FindMember(subject.value());
    if (record != nullptr && record->role() == cluster::MEMBER_ROLE_REMOVED) {
      told_removed_.erase(subject);
      TellRemoved(subject);
    }
  }
}

void Host::MembersChanged() {
  observer_->OnMembers(options_.id, *sm_);
  CheckMemberRecord();
}

void Host::TellRemoved(NodeId to) {
  const cluster::MemberRecord* record = sm_->FindMember(to.value());
  if (record == nullptr || record->role() != cluster::MEMBER_ROLE_REMOVED) return;
  // Once per election timeout per node: a removed node that keeps
  // campaigning must not make us flood it.
  const MonoMicros now = Now();
  auto [it, first] = told_removed_.emplace(to, now);
  if (!first) {
    if (now - it->second < options_.tick_us * options_.election_ticks) return;
    it->second = now;
  }
  HostMessage message;
  message.mutable_member_removed()->set_index(record->changed_index());
  SendHostMessage(to, message);
}

void Host::NoteRemoved(Index index, NodeId told_by) {
  if (removed_) return;
  removed_ = true;
  logger_->Warning("n", options_.id.value(), " is no longer a member: removed by the conf change at index ",
                   index.value(),
                   told_by == options_.id ? std::string()
                                          : absl::StrCat(" (told by n", told_by.value(), ")"),
                   "; its id is never used again");
  observer_->OnRemoved(options_.id, index);
}

void Host::MaybePublishAttributes() {
  if (options_.advertise_peer_address.empty() || options_.advertise_client_address.empty() ||
      !may_vote() || leader_.is_none() || removed_) {
    return;
  }
  const cluster::MemberRecord* record = sm_->FindMember(options_.id.value());
  if (record == nullptr || record->role() == cluster::MEMBER_ROLE_REMOVED ||
      (record->peer_address() == options_.advertise_peer_address &&
       record->client_address() == options_.advertise_client_address)) {
    return;
  }
  const MonoMicros now = Now();
  if (attributes_proposed_ &&
      now - last_attributes_proposal_ < options_.tick_us * options_.election_ticks) {
    return;
  }
  attributes_proposed_ = true;
  last_attributes_proposal_ = now;
  api::ClientRequest request;
  cluster::MemberAttributes* attributes = request.mutable_command()->mutable_member_attributes();
  attributes->set_node_id(options_.id.value());
  attributes->set_peer_address(options_.advertise_peer_address);
  attributes->set_client_address(options_.advertise_client_address);
  request.set_allow_forward(true);
  Submit(std::move(request), [](const api::ClientResponse&) {});  // resent until applied
}

}  // namespace blixard::host
