#include "core/raft/util.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace blixard::raft {

bool IsLocalMessage(MessageType type) {
  switch (type) {
    case MSG_HUP:
    case MSG_BEAT:
    case MSG_UNREACHABLE:
    case MSG_SNAPSHOT_STATUS:
    case MSG_CHECK_QUORUM:
    case MSG_STORAGE_APPEND_DONE:
    case MSG_STORAGE_APPLY_DONE:
      return true;
    default:
      return false;
  }
}

bool IsResponseMessage(MessageType type) {
  switch (type) {
    case MSG_APPEND_RESPONSE:
    case MSG_VOTE_RESPONSE:
    case MSG_PRE_VOTE_RESPONSE:
    case MSG_HEARTBEAT_RESPONSE:
    case MSG_UNREACHABLE:
    case MSG_READ_INDEX_RESPONSE:
      return true;
    default:
      return false;
  }
}

MessageType VoteResponseType(MessageType request) {
  return request == MSG_PRE_VOTE ? MSG_PRE_VOTE_RESPONSE : MSG_VOTE_RESPONSE;
}

absl::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MSG_HUP: return "Hup";
    case MSG_BEAT: return "Beat";
    case MSG_PROPOSE: return "Prop";
    case MSG_APPEND: return "App";
    case MSG_APPEND_RESPONSE: return "AppResp";
    case MSG_VOTE: return "Vote";
    case MSG_VOTE_RESPONSE: return "VoteResp";
    case MSG_PRE_VOTE: return "PreVote";
    case MSG_PRE_VOTE_RESPONSE: return "PreVoteResp";
    case MSG_SNAPSHOT: return "Snap";
    case MSG_HEARTBEAT: return "Heartbeat";
    case MSG_HEARTBEAT_RESPONSE: return "HeartbeatResp";
    case MSG_UNREACHABLE: return "Unreachable";
    case MSG_SNAPSHOT_STATUS: return "SnapStatus";
    case MSG_CHECK_QUORUM: return "CheckQuorum";
    case MSG_TRANSFER_LEADER: return "TransferLeader";
    case MSG_TIMEOUT_NOW: return "TimeoutNow";
    case MSG_READ_INDEX: return "ReadIndex";
    case MSG_READ_INDEX_RESPONSE: return "ReadIndexResp";
    case MSG_STORAGE_APPEND_DONE: return "StorageAppendDone";
    case MSG_STORAGE_APPLY_DONE: return "StorageApplyDone";
    default: return "Unknown";
  }
}

std::string DescribeEntry(const Entry& entry) {
  std::string out = absl::StrCat(entry.term(), "/", entry.index());
  if (entry.type() == ENTRY_CONF_CHANGE) {
    ConfChange cc;
    if (cc.ParseFromString(entry.data())) {
      absl::StrAppend(&out, " CC ", DescribeConfChange(cc));
    } else {
      absl::StrAppend(&out, " CC <malformed>");
    }
  } else if (entry.data().empty()) {
    absl::StrAppend(&out, " EntryNormal \"\"");
  } else {
    absl::StrAppend(&out, " EntryNormal \"", entry.data(), "\"");
  }
  return out;
}

std::string DescribeMessage(const Message& m) {
  std::string out = absl::StrCat(m.from(), "->", m.to(), " ",
                                 MessageTypeName(m.type()), " Term:", m.term(),
                                 " Log:", m.log_term(), "/", m.index());
  if (m.reject()) {
    absl::StrAppend(&out, " Rejected");
    if (m.type() == MSG_APPEND_RESPONSE) {
      absl::StrAppend(&out, " (Hint: ", m.reject_hint(), ")");
    }
  }
  if (m.commit() != 0) absl::StrAppend(&out, " Commit:", m.commit());
  if (m.entries_size() > 0) {
    absl::StrAppend(&out, " Entries:[");
    for (int i = 0; i < m.entries_size(); ++i) {
      if (i > 0) absl::StrAppend(&out, ", ");
      absl::StrAppend(&out, DescribeEntry(m.entries(i)));
    }
    absl::StrAppend(&out, "]");
  }
  if (!m.context().empty()) absl::StrAppend(&out, " Context:", m.context());
  if (m.has_snapshot() && m.snapshot().metadata().index() != 0) {
    absl::StrAppend(&out, " Snapshot: Index:", m.snapshot().metadata().index(),
                    " Term:", m.snapshot().metadata().term(), " ",
                    DescribeConfState(m.snapshot().metadata().conf_state()));
  }
  return out;
}

std::string DescribeHardState(const HardState& hs) {
  return absl::StrCat("Term:", hs.term(), " Vote:", hs.vote(),
                      " Commit:", hs.commit());
}

std::string DescribeConfState(const ConfState& cs) {
  std::string out = absl::StrCat("Voters:[", absl::StrJoin(cs.voters(), " "), "]");
  if (cs.voters_outgoing_size() > 0) {
    absl::StrAppend(&out, "&&[", absl::StrJoin(cs.voters_outgoing(), " "), "]");
  }
  absl::StrAppend(&out, " Learners:[", absl::StrJoin(cs.learners(), " "), "]");
  if (cs.learners_next_size() > 0) {
    absl::StrAppend(&out, " LearnersNext:[",
                    absl::StrJoin(cs.learners_next(), " "), "]");
  }
  if (cs.auto_leave()) absl::StrAppend(&out, " AutoLeave:true");
  return out;
}

std::string DescribeConfChange(const ConfChange& cc) {
  if (cc.changes_size() == 0) return "leave-joint";
  std::string out;
  for (int i = 0; i < cc.changes_size(); ++i) {
    const ConfChangeSingle& c = cc.changes(i);
    if (i > 0) out += " ";
    switch (c.type()) {
      case CONF_CHANGE_ADD_NODE: out += "v"; break;
      case CONF_CHANGE_REMOVE_NODE: out += "r"; break;
      case CONF_CHANGE_ADD_LEARNER_NODE: out += "l"; break;
      default: out += "?"; break;
    }
    absl::StrAppend(&out, c.node_id());
  }
  if (cc.transition() == CONF_CHANGE_TRANSITION_JOINT_IMPLICIT) out += " (joint-implicit)";
  if (cc.transition() == CONF_CHANGE_TRANSITION_JOINT_EXPLICIT) out += " (joint-explicit)";
  return out;
}

}  // namespace blixard::raft
