// One Raft node (n1 of {1, 2, 3}) fed an arbitrary sequence of messages,
// ticks, proposals, reads and storage completions decoded from the input.
// The messages are well-typed but adversarial: any term, index, log term,
// commit index, entries, sender (members, a stranger, the node itself) and
// flags. Network input is untrusted: whatever arrives, the node never
// crashes, refuses what it cannot accept (counted), and its invariants hold
// after every step. Conf-change entries carry well-formed changes: Raft
// trusts a real leader's log (it is not Byzantine-tolerant), but nothing a
// sender can say about terms, indexes or commits may break the node.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/check.h"
#include "core/base/logger.h"
#include "core/proto/raft.pb.h"
#include "core/raft/raw_node.h"
#include "core/raft/testing/cluster.h"

namespace {

using blixard::raft::Message;
using blixard::raft::MessageType;

constexpr int kStepsMax = 120;
constexpr size_t kEntriesMax = 6;
constexpr uint64_t kTermMax = 12;
constexpr uint64_t kIndexMax = 40;

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
  const uint64_t senders[] = {2, 3, 2, 3, 4, 1, 0};
  m.set_from(in.PickValueInArray(senders));
  m.set_to(in.ConsumeProbability<double>() < 0.95 ? 1 : 2);
  m.set_term(in.ConsumeIntegralInRange<uint64_t>(0, kTermMax));
  m.set_log_term(in.ConsumeIntegralInRange<uint64_t>(0, kTermMax));
  m.set_index(in.ConsumeIntegralInRange<uint64_t>(0, kIndexMax));
  m.set_commit(in.ConsumeIntegralInRange<uint64_t>(0, kIndexMax + 4));
  m.set_reject(in.ConsumeBool());
  m.set_reject_hint(in.ConsumeIntegralInRange<uint64_t>(0, kIndexMax));
  if (in.ConsumeBool()) m.set_context(in.ConsumeBytesAsString(8));
  const size_t entries = in.ConsumeIntegralInRange<size_t>(0, kEntriesMax);
  const bool contiguous = in.ConsumeProbability<double>() < 0.9;
  uint64_t term = m.log_term();
  for (size_t i = 0; i < entries; ++i) {
    blixard::raft::Entry* e = m.add_entries();
    e->set_index(contiguous ? m.index() + 1 + i
                            : in.ConsumeIntegralInRange<uint64_t>(0, kIndexMax));
    if (in.ConsumeBool()) term = in.ConsumeIntegralInRange<uint64_t>(0, kTermMax);
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
    md->set_index(in.ConsumeIntegralInRange<uint64_t>(0, kIndexMax));
    md->set_term(in.ConsumeIntegralInRange<uint64_t>(0, kTermMax));
    for (uint64_t v : {1, 2, 3}) md->mutable_conf_state()->add_voters(v);
    m.mutable_snapshot()->set_data("snapshot");
  }
  return m;
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
        if (!cluster.raw(1).Step(m).ok()) ++refused;
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
