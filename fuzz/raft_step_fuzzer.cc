// One Raft node (n1 of {1, 2, 3}) fed an arbitrary sequence of messages,
// ticks, proposals, reads and storage completions decoded from the input.
// The messages are well-typed but adversarial: any term, index, log term,
// commit index, entries, sender (members, a stranger, the node itself) and
// flags. Network input is untrusted: whatever arrives, the node never
// crashes, refuses what it cannot accept (counted), and its invariants hold
// after every step. Conf-change entries carry well-formed changes: Raft
// trusts a real leader's log (it is not Byzantine-tolerant), but nothing a
// sender can say about terms, indexes or commits may break the node.
// Terms, indexes, commits and hints are mostly small (to reach deep paths)
// but also drawn near the limits of core/base/types.h and from the whole
// 64-bit range. Every message Step refuses must leave the node exactly as
// it was: same hard and soft state, log, commit and applied index, leader
// progress, no new Ready and no message.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "core/base/check.h"
#include "core/base/logger.h"
#include "core/base/types.h"
#include "core/proto/raft.pb.h"
#include "core/raft/raw_node.h"
#include "core/raft/testing/cluster.h"

namespace {

using blixard::raft::Message;
using blixard::raft::MessageType;

constexpr int kStepsMax = 120;
constexpr size_t kEntriesMax = 6;
// The small ranges most values come from.
constexpr uint64_t kSmallTermMax = 12;
constexpr uint64_t kSmallIndexMax = 40;
// How far either side of a limit the boundary draws go.
constexpr uint64_t kLimitSpread = 2;

// A term, index or count: small most of the time, else near `limit` (the
// core's kTermMax / kIndexMax), near 2^64, or anything.
uint64_t DrawU64(FuzzedDataProvider& in, uint64_t small_max, uint64_t limit) {
  constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0:
      return limit - kLimitSpread + in.ConsumeIntegralInRange<uint64_t>(0, 2 * kLimitSpread);
    case 1:
      return kU64Max - in.ConsumeIntegralInRange<uint64_t>(0, kLimitSpread);
    case 2:
      return in.ConsumeIntegral<uint64_t>();
    default:
      return in.ConsumeIntegralInRange<uint64_t>(0, small_max);
  }
}
uint64_t DrawTerm(FuzzedDataProvider& in) {
  return DrawU64(in, kSmallTermMax, blixard::kTermMax);
}
uint64_t DrawIndex(FuzzedDataProvider& in, uint64_t small_max = kSmallIndexMax) {
  return DrawU64(in, small_max, blixard::kIndexMax);
}

const MessageType kNetworkTypes[] = {
    blixard::raft::MSG_PROPOSE,          blixard::raft::MSG_APPEND,
    blixard::raft::MSG_APPEND_RESPONSE,  blixard::raft::MSG_VOTE,
    blixard::raft::MSG_VOTE_RESPONSE,    blixard::raft::MSG_PRE_VOTE,
    blixard::raft::MSG_PRE_VOTE_RESPONSE, blixard::raft::MSG_SNAPSHOT,
    blixard::raft::MSG_HEARTBEAT,        blixard::raft::MSG_HEARTBEAT_RESPONSE,
    blixard::raft::MSG_TRANSFER_LEADER,  blixard::raft::MSG_TIMEOUT_NOW,
    blixard::raft::MSG_READ_INDEX,       blixard::raft::MSG_READ_INDEX_RESPONSE,
    blixard::raft::MSG_HUP,              blixard::raft::MSG_STORAGE_APPEND_DONE,
};

Message RandomMessage(FuzzedDataProvider& in) {
  Message m;
  m.set_type(in.PickValueInArray(kNetworkTypes));
  const uint64_t senders[] = {2, 3, 2, 3, 4, 1, 0, blixard::kNodeIdMax + 1};
  m.set_from(in.PickValueInArray(senders));
  m.set_to(in.ConsumeProbability<double>() < 0.95 ? 1 : 2);
  m.set_term(DrawTerm(in));
  m.set_log_term(DrawTerm(in));
  m.set_index(DrawIndex(in));
  m.set_commit(DrawIndex(in, kSmallIndexMax + 4));
  m.set_reject(in.ConsumeBool());
  m.set_reject_hint(DrawIndex(in));
  if (in.ConsumeBool()) m.set_context(in.ConsumeBytesAsString(8));
  const size_t entries = in.ConsumeIntegralInRange<size_t>(0, kEntriesMax);
  const bool contiguous = in.ConsumeProbability<double>() < 0.9;
  uint64_t term = m.log_term();
  for (size_t i = 0; i < entries; ++i) {
    blixard::raft::Entry* e = m.add_entries();
    // Wraps past 2^64 on purpose when index is near it.
    e->set_index(contiguous ? m.index() + 1 + i : DrawIndex(in));
    if (in.ConsumeBool()) term = DrawTerm(in);
    e->set_term(term);
    if (in.ConsumeProbability<double>() < 0.1) {
      e->set_type(blixard::raft::ENTRY_CONF_CHANGE);
      e->set_data(blixard::raft::testing::Cluster::MakeConfChange(
                      in.ConsumeBool() ? "l4" : "v2", blixard::raft::CONF_CHANGE_TRANSITION_AUTO)
                      .SerializeAsString());
    } else {
      e->set_data(in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, 16)));
    }
  }
  if (m.type() == blixard::raft::MSG_SNAPSHOT) {
    blixard::raft::SnapshotMetadata* md = m.mutable_snapshot()->mutable_metadata();
    md->set_index(DrawIndex(in));
    md->set_term(DrawTerm(in));
    for (uint64_t v : {1, 2, 3}) md->mutable_conf_state()->add_voters(v);
    m.mutable_snapshot()->set_data("snapshot");
  }
  return m;
}

// Everything of n1 a refused message must not change. HasReady() is
// observed by the caller (it flushes pending appends, which is not Step's
// doing).
std::string Observe(blixard::raft::RawNode& node) {
  blixard::raft::Raft& r = node.raft();
  std::string out = absl::StrCat(
      "hs=", r.GetHardState().ShortDebugString(), " role=", blixard::raft::RoleName(r.role()),
      " lead=", r.lead().value(), " transferee=", r.lead_transferee().value(),
      " last=", r.log().LastIndex().value(), "/", r.log().LastTerm().value(),
      " commit=", r.log().committed().value(), " applied=", r.log().applied().value(),
      " msgs=", r.msgs().size(), "/", r.msgs_after_persist().size(), "/",
      r.self_after_persist().size(), " reads=", r.read_states().size(),
      " elapsed=", r.election_elapsed(), " pending_conf=", r.pending_conf_index().value(),
      " uncommitted=", r.uncommitted_size());
  if (r.role() == blixard::raft::Role::kLeader) {
    for (const auto& [id, pr] : node.GetStatus().progress) {
      absl::StrAppend(&out, " [", id.value(), " match=", pr.match.value(),
                      " next=", pr.next.value(), " state=", blixard::raft::ProgressStateName(pr.state),
                      " active=", pr.recent_active, " paused=", pr.paused,
                      " inflight=", pr.inflight_count, "]");
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  blixard::NullLogger logger;
  blixard::raft::testing::ClusterOptions options;
  options.pre_vote = in.ConsumeBool();
  options.check_quorum = in.ConsumeBool();
  options.seed = in.ConsumeIntegral<uint8_t>();
  blixard::raft::testing::Cluster cluster(options, &logger);
  cluster.AddVoters(3);
  uint64_t refused = 0;
  for (int step = 0; step < kStepsMax && in.remaining_bytes() > 0; ++step) {
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
      case 0:
      case 1:
      case 2:
      case 3: {
        const Message m = RandomMessage(in);
        blixard::raft::RawNode& n1 = cluster.raw(1);
        const bool had_ready = n1.HasReady();
        const std::string before = Observe(n1);
        if (!n1.Step(m).ok()) {
          ++refused;
          // A refused message changes nothing.
          CHECK_EQ(Observe(n1), before) << "refused " << m.ShortDebugString();
          if (!had_ready) CHECK(!n1.HasReady()) << "refused " << m.ShortDebugString();
        }
        break;
      }
      case 4:
        cluster.Tick(1);
        break;
      case 5:
        cluster.raw(1).Propose(in.ConsumeBytesAsString(8));
        break;
      case 6:
        cluster.TakeReady(1);
        break;
      case 7:
        cluster.PersistOne(1);
        break;
      case 8:
        cluster.raw(1).ReadIndex(in.ConsumeBytesAsString(4));
        break;
      default:
        cluster.raw(1).Campaign();
        break;
    }
    cluster.CheckNode(1);
    // What n1 sends goes nowhere: the other nodes are the input.
    cluster.in_flight().clear();
  }
  cluster.ProcessReady(1);
  cluster.CheckNode(1);
  (void)refused;
  return 0;
}
