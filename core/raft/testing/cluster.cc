#include "core/raft/testing/cluster.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/raft/util.h"

namespace blixard::raft::testing {

uint64_t HashEntry(uint64_t prev, const Entry& e) {
  uint64_t h = StableHash64(e.data());
  uint64_t state = prev ^ (h + 0x9e3779b97f4a7c15ULL * (e.index() + 1)) ^
                   (e.term() << 1) ^ static_cast<uint64_t>(e.type());
  return SplitMix64(state);
}

Cluster::Cluster(ClusterOptions options, Logger* logger)
    : options_(options), logger_(logger) {}

void Cluster::AddNode(uint64_t id, const std::vector<uint64_t>& voters,
                      const std::vector<uint64_t>& learners,
                      const std::vector<uint64_t>& log_terms, uint64_t term) {
  CHECK(nodes_.count(id) == 0) << "node " << id << " exists";
  auto n = std::make_unique<TestNode>();
  n->id = NodeId(id);
  ConfState cs;
  for (uint64_t v : voters) cs.add_voters(v);
  for (uint64_t l : learners) cs.add_learners(l);
  if (!voters.empty()) CHECK_OK(n->storage.Bootstrap(cs));
  if (!log_terms.empty() || term > 0) {
    std::vector<Entry> entries;
    for (size_t i = 0; i < log_terms.size(); ++i) {
      Entry e;
      e.set_index(i + 1);
      e.set_term(log_terms[i]);
      entries.push_back(std::move(e));
    }
    CHECK_OK(n->storage.Append(std::move(entries)));
    HardState hs;
    hs.set_term(std::max(term, log_terms.empty() ? 0 : log_terms.back()));
    n->storage.SetHardState(hs);
  }
  TestNode& ref = *n;
  nodes_.emplace(id, std::move(n));
  StartNode(ref);
}

void Cluster::AddVoters(size_t count) {
  std::vector<uint64_t> voters;
  for (uint64_t i = 1; i <= count; ++i) voters.push_back(i);
  for (uint64_t i = 1; i <= count; ++i) AddNode(i, voters);
}

TestNode& Cluster::node(uint64_t id) {
  auto it = nodes_.find(id);
  CHECK(it != nodes_.end()) << "no node " << id;
  return *it->second;
}

std::vector<uint64_t> Cluster::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

void Cluster::StartNode(TestNode& n) {
  // The state machine is volatile: it restarts from the stored snapshot.
  absl::StatusOr<Snapshot> snap = n.storage.GetSnapshot();
  CHECK_OK(snap.status());
  n.base_index = Index(snap->metadata().index());
  n.base_hash = 0;
  if (!snap->data().empty()) {
    std::vector<std::string> parts = absl::StrSplit(snap->data(), ':');
    CHECK_EQ(parts.size(), 2u);
    CHECK(absl::SimpleAtoi(parts[1], &n.base_hash));
  }
  n.applied.clear();
  n.applied_hashes.clear();
  n.conf_state = snap->metadata().conf_state();
  n.conf_history.clear();
  n.conf_history[n.base_index.value()] = n.conf_state;
  n.read_states.clear();
  n.pending_writes.clear();

  Config cfg;
  cfg.id = n.id;
  cfg.election_tick = options_.election_tick;
  cfg.heartbeat_tick = options_.heartbeat_tick;
  cfg.storage = &n.storage;
  cfg.logger = logger_;
  cfg.seed = options_.seed * 1000003u + n.id.value() * 7919u +
             static_cast<uint64_t>(n.restarts);
  cfg.applied = n.base_index;
  cfg.max_size_per_msg = options_.max_size_per_msg;
  cfg.max_committed_size_per_ready = options_.max_committed_size_per_ready;
  cfg.max_uncommitted_entries_size = options_.max_uncommitted_entries_size;
  cfg.max_inflight_msgs = options_.max_inflight_msgs;
  cfg.max_inflight_bytes = options_.max_inflight_bytes;
  cfg.check_quorum = options_.check_quorum;
  cfg.pre_vote = options_.pre_vote;
  cfg.read_only_option = options_.read_only_option;
  cfg.disable_proposal_forwarding = options_.disable_proposal_forwarding;
  cfg.step_down_on_removal = options_.step_down_on_removal;
  absl::StatusOr<std::unique_ptr<RawNode>> raw = RawNode::Create(cfg);
  CHECK_OK(raw.status());
  n.raw = std::move(*raw);
  n.down = false;
  CheckNode(n.id.value());
}

void Cluster::CheckNode(uint64_t id) {
  if (!options_.check_invariants) return;
  TestNode& n = node(id);
  if (n.down) return;
  n.raw->CheckInvariants();
  n.storage.CheckInvariants();
}

void Cluster::Apply(TestNode& n, const Entry& e) {
  CHECK_EQ(Index(e.index()), n.applied_index().Next()) << "apply out of order";
  if (e.type() == ENTRY_CONF_CHANGE) {
    ConfChange cc;
    CHECK(cc.ParseFromString(e.data()));
    n.conf_state = n.raw->ApplyConfChange(cc);
    n.conf_history[e.index()] = n.conf_state;
    CheckNode(n.id.value());
  }
  n.applied_hashes.push_back(HashEntry(n.applied_hash(), e));
  n.applied.push_back(e);
}

bool Cluster::TakeReady(uint64_t id, Ready* out) {
  TestNode& n = node(id);
  if (n.down || !n.raw->HasReady()) return false;
  Ready rd = n.raw->GetReady();
  CheckNode(id);
  if (out != nullptr) *out = rd;
  for (Message& m : rd.messages) Send(std::move(m));
  rd.messages.clear();
  for (const Entry& e : rd.committed_entries) Apply(n, e);
  for (ReadState& rs : rd.read_states) n.read_states.push_back(std::move(rs));
  rd.committed_entries.clear();
  rd.read_states.clear();
  n.pending_writes.push_back(std::move(rd));
  return true;
}

bool Cluster::PersistOne(uint64_t id) {
  TestNode& n = node(id);
  if (n.down || n.pending_writes.empty()) return false;
  Ready rd = std::move(n.pending_writes.front());
  n.pending_writes.pop_front();
  if (rd.snapshot) {
    CHECK_OK(n.storage.ApplySnapshot(*rd.snapshot));
    // Restore the state machine from the snapshot.
    n.base_index = Index(rd.snapshot->metadata().index());
    std::vector<std::string> parts = absl::StrSplit(rd.snapshot->data(), ':');
    n.base_hash = 0;
    if (parts.size() == 2) CHECK(absl::SimpleAtoi(parts[1], &n.base_hash));
    n.applied.clear();
    n.applied_hashes.clear();
    n.conf_state = rd.snapshot->metadata().conf_state();
    n.conf_history.clear();
    n.conf_history[n.base_index.value()] = n.conf_state;
  }
  if (!rd.entries.empty()) CHECK_OK(n.storage.Append(std::move(rd.entries)));
  if (rd.hard_state) n.storage.SetHardState(*rd.hard_state);
  for (Message& m : rd.messages_after_persist) Send(std::move(m));
  CHECK_OK(n.raw->OnPersisted(rd.number));
  CheckNode(id);
  return true;
}

void Cluster::PersistAll(uint64_t id) {
  while (PersistOne(id)) {
  }
}

bool Cluster::ProcessReady(uint64_t id) {
  bool any = false;
  // Bounded: each round consumes the node's pending state.
  for (int i = 0; i < 100; ++i) {
    const bool took = TakeReady(id);
    const bool persisted = !node(id).pending_writes.empty();
    PersistAll(id);
    if (!took && !persisted) break;
    any = true;
  }
  return any;
}

void Cluster::ReportSnapshotOutcome(const Message& m, bool ok) {
  // The Host reports the outcome of every snapshot transfer to the sender.
  if (m.type() != MSG_SNAPSHOT || !has_node(m.from())) return;
  TestNode& sender = node(m.from());
  if (sender.down) return;
  sender.raw->ReportSnapshot(NodeId(m.to()), ok);
  CheckNode(m.from());
}

void Cluster::Drop(size_t i) {
  CHECK_LT(i, in_flight_.size());
  Message m = std::move(in_flight_[i]);
  in_flight_.erase(in_flight_.begin() + static_cast<long>(i));
  ReportSnapshotOutcome(m, false);
}

void Cluster::Send(Message m) {
  if (LinkCut(m.from(), m.to())) {
    ReportSnapshotOutcome(m, false);
    return;
  }
  // Messages to unknown nodes stay queued (tests inspect them); delivery
  // drops them.
  auto it = nodes_.find(m.to());
  if (it != nodes_.end() && it->second->down) {
    ReportSnapshotOutcome(m, false);
    return;
  }
  in_flight_.push_back(std::move(m));
}

absl::Status Cluster::DeliverAt(size_t i) {
  CHECK_LT(i, in_flight_.size());
  Message m = std::move(in_flight_[i]);
  in_flight_.erase(in_flight_.begin() + static_cast<long>(i));
  if (!has_node(m.to())) return absl::OkStatus();
  TestNode& n = node(m.to());
  if (n.down) return absl::OkStatus();
  const Message copy_header = m.type() == MSG_SNAPSHOT ? m : Message();
  absl::Status s = n.raw->Step(std::move(m));
  CheckNode(n.id.value());
  if (copy_header.type() == MSG_SNAPSHOT) ReportSnapshotOutcome(copy_header, s.ok());
  return s;
}

size_t Cluster::DeliverTo(uint64_t id, const std::set<size_t>& drop) {
  std::vector<Message> mine;
  std::vector<Message> rest;
  for (Message& m : in_flight_) {
    if (m.to() == id) {
      mine.push_back(std::move(m));
    } else {
      rest.push_back(std::move(m));
    }
  }
  in_flight_ = std::move(rest);
  size_t delivered = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    if (drop.count(i + 1) > 0) continue;
    TestNode& n = node(id);
    if (n.down) continue;
    const bool snap = mine[i].type() == MSG_SNAPSHOT;
    const Message header = snap ? mine[i] : Message();
    absl::Status s = n.raw->Step(std::move(mine[i]));
    CheckNode(id);
    if (snap) ReportSnapshotOutcome(header, s.ok());
    ++delivered;
  }
  return delivered;
}

size_t Cluster::DeliverAll() {
  std::vector<Message> msgs = std::move(in_flight_);
  in_flight_.clear();
  size_t delivered = 0;
  for (Message& m : msgs) {
    if (!has_node(m.to())) continue;
    TestNode& n = node(m.to());
    if (n.down) continue;
    const bool snap = m.type() == MSG_SNAPSHOT;
    const Message header = snap ? m : Message();
    absl::Status s = n.raw->Step(std::move(m));
    CheckNode(n.id.value());
    if (snap) ReportSnapshotOutcome(header, s.ok());
    ++delivered;
  }
  return delivered;
}

void Cluster::Stabilize(size_t max_rounds) {
  for (size_t round = 0; round < max_rounds; ++round) {
    bool progress = false;
    for (uint64_t id : ids()) progress |= ProcessReady(id);
    progress |= DeliverAll() > 0;
    if (!progress) return;
  }
  CHECK(false) << "cluster did not stabilize in " << max_rounds << " rounds";
}

void Cluster::Tick(uint64_t id) {
  TestNode& n = node(id);
  if (n.down) return;
  n.raw->Tick();
  CheckNode(id);
}

void Cluster::TickElection(uint64_t id) {
  TestNode& n = node(id);
  if (n.down) return;
  const Raft& r = n.raw->raft();
  int ticks = r.role() == Role::kLeader
                  ? options_.election_tick
                  : r.randomized_election_timeout() - r.election_elapsed();
  ticks = std::max(ticks, 1);
  for (int i = 0; i < ticks; ++i) Tick(id);
}

void Cluster::TickHeartbeat(uint64_t id) {
  for (int i = 0; i < options_.heartbeat_tick; ++i) Tick(id);
}

void Cluster::Partition(const std::vector<std::vector<uint64_t>>& groups) {
  for (size_t a = 0; a < groups.size(); ++a) {
    for (size_t b = 0; b < groups.size(); ++b) {
      if (a == b) continue;
      for (uint64_t x : groups[a]) {
        for (uint64_t y : groups[b]) cut_.insert({x, y});
      }
    }
  }
}

void Cluster::Isolate(uint64_t id) {
  for (uint64_t other : ids()) {
    if (other == id) continue;
    cut_.insert({id, other});
    cut_.insert({other, id});
  }
}

void Cluster::Crash(uint64_t id) {
  TestNode& n = node(id);
  n.down = true;
  n.raw.reset();
  n.pending_writes.clear();  // unsynced writes are lost
  std::vector<Message> rest;
  std::vector<Message> lost;
  for (Message& m : in_flight_) {
    (m.to() != id ? rest : lost).push_back(std::move(m));
  }
  in_flight_ = std::move(rest);
  for (const Message& m : lost) ReportSnapshotOutcome(m, false);
}

void Cluster::Restart(uint64_t id) {
  TestNode& n = node(id);
  CHECK(n.down) << "restart of a running node " << id;
  ++n.restarts;
  StartNode(n);
}

absl::Status Cluster::Compact(uint64_t id, Index index) {
  TestNode& n = node(id);
  if (index > n.applied_index() || index < n.base_index) {
    return absl::InvalidArgumentError(absl::StrCat(
        "compact ", index.value(), " outside applied range [",
        n.base_index.value(), ", ", n.applied_index().value(), "]"));
  }
  const uint64_t hash = index == n.base_index
                            ? n.base_hash
                            : n.applied_hashes[index.Since(n.base_index) - 1];
  auto it = n.conf_history.upper_bound(index.value());
  CHECK(it != n.conf_history.begin());
  --it;
  const absl::Status created = n.storage.CreateSnapshot(
      index, &it->second, absl::StrCat(index.value(), ":", hash));
  if (!created.ok()) return created;
  return n.storage.Compact(index);
}

ConfChange Cluster::MakeConfChange(const std::string& spec,
                                   ConfChangeTransition transition) {
  ConfChange cc;
  cc.set_transition(transition);
  for (absl::string_view tok : absl::StrSplit(spec, ' ', absl::SkipEmpty())) {
    ConfChangeSingle* c = cc.add_changes();
    switch (tok[0]) {
      case 'v': c->set_type(CONF_CHANGE_ADD_NODE); break;
      case 'l': c->set_type(CONF_CHANGE_ADD_LEARNER_NODE); break;
      case 'r': c->set_type(CONF_CHANGE_REMOVE_NODE); break;
      default: CHECK(false) << "bad conf change token " << std::string(tok);
    }
    uint64_t nid = 0;
    CHECK(absl::SimpleAtoi(tok.substr(1), &nid)) << std::string(tok);
    c->set_node_id(nid);
  }
  return cc;
}

std::string SafetyChecker::Check(Cluster& cluster) {
  std::vector<uint64_t> up;
  for (uint64_t id : cluster.ids()) {
    if (!cluster.node(id).down) up.push_back(id);
  }
  // Election safety: at most one leader per term (paper 5.2).
  for (uint64_t id : up) {
    const Raft& r = cluster.raw(id).raft();
    if (r.role() != Role::kLeader) continue;
    auto [it, inserted] = leader_of_term_.emplace(r.term().value(), id);
    if (!inserted && it->second != id) {
      return absl::StrCat("two leaders in term ", r.term().value(), ": ",
                          it->second, " and ", id);
    }
  }
  // Committed entries never change; record them (State Machine Safety).
  for (uint64_t id : up) {
    const RaftLog& log = cluster.raw(id).raft().log();
    const Index lo = log.FirstIndex();
    const Index hi = log.committed();
    if (lo > hi) continue;
    // Only entries beyond what this node had committed at the last check
    // need reading (reset when the node restarts).
    auto& [restarts, checked] = commit_checked_[id];
    if (restarts != cluster.node(id).restarts) {
      restarts = cluster.node(id).restarts;
      checked = 0;
    }
    const Index from = std::max(lo, Index(checked + 1));
    checked = std::max(checked, hi.value());
    if (from > hi) continue;
    absl::StatusOr<std::vector<Entry>> ents = log.Slice(from, hi.Next(), kNoLimit);
    if (!ents.ok()) return absl::StrCat("node ", id, ": ", ents.status().ToString());
    const uint64_t term = cluster.raw(id).raft().term().value();
    for (const Entry& e : *ents) {
      auto [it, inserted] = committed_.emplace(
          e.index(), Committed{e.term(), e.data(), e.type(), term});
      if (!inserted) {
        if (it->second.term != e.term() || it->second.data != e.data() ||
            it->second.type != e.type()) {
          return absl::StrCat("committed entry ", e.index(), " differs on node ",
                              id, ": term ", e.term(), " vs recorded ",
                              it->second.term);
        }
        it->second.observed_term = std::min(it->second.observed_term, term);
      }
    }
  }
  // Leader completeness (paper 5.4): a leader of term T holds every entry
  // known committed at a term below T.
  for (uint64_t id : up) {
    const Raft& r = cluster.raw(id).raft();
    if (r.role() != Role::kLeader) continue;
    const RaftLog& log = r.log();
    for (auto it = committed_.upper_bound(log.committed().value());
         it != committed_.end(); ++it) {
      if (it->second.observed_term >= r.term().value()) continue;
      if (Index(it->first) < log.FirstIndex()) continue;
      absl::StatusOr<Term> t = log.TermAt(Index(it->first));
      if (!t.ok() || t->value() != it->second.term) {
        return absl::StrCat("leader ", id, " of term ", r.term().value(),
                            " lacks committed entry ", it->first);
      }
    }
  }
  // Log matching (paper 5.3), by induction: wherever two logs hold entries
  // of the same term at an index, the entries are equal and so are the
  // terms just before. Indexes up to both commits are covered above.
  for (size_t a = 0; a < up.size(); ++a) {
    for (size_t b = a + 1; b < up.size(); ++b) {
      const RaftLog& la = cluster.raw(up[a]).raft().log();
      const RaftLog& lb = cluster.raw(up[b]).raft().log();
      Index lo = std::max({std::min(la.committed(), lb.committed()),
                           la.FirstIndex(), lb.FirstIndex(), Index(1)});
      const Index hi = std::min(la.LastIndex(), lb.LastIndex());
      for (Index i = lo; i <= hi; i = i.Next()) {
        absl::StatusOr<std::vector<Entry>> ea = la.Slice(i, i.Next(), kNoLimit);
        absl::StatusOr<std::vector<Entry>> eb = lb.Slice(i, i.Next(), kNoLimit);
        if (!ea.ok() || !eb.ok()) continue;
        const Entry& x = ea->front();
        const Entry& y = eb->front();
        if (x.term() != y.term()) continue;
        if (x.data() != y.data() || x.type() != y.type()) {
          return absl::StrCat("log matching: index ", i.value(), " term ",
                              x.term(), " differs between ", up[a], " and ", up[b]);
        }
        const Index prev = i.Prev();
        if (prev >= la.FirstIndex().Prev() && prev >= lb.FirstIndex().Prev() &&
            la.ZeroTermOnError(prev) != lb.ZeroTermOnError(prev)) {
          return absl::StrCat("log matching: same entry at ", i.value(),
                              " but different terms before it on ", up[a],
                              " and ", up[b]);
        }
      }
    }
  }
  // Applied prefixes identical: same state hash at every applied index.
  for (uint64_t id : cluster.ids()) {
    TestNode& n = cluster.node(id);
    if (n.base_index > Index(0)) {
      auto [it, inserted] = applied_hash_.emplace(n.base_index.value(), n.base_hash);
      if (!inserted && it->second != n.base_hash) {
        return absl::StrCat("node ", id, " restored a snapshot at ",
                            n.base_index.value(), " with a different state");
      }
    }
    // Check the last few applied (earlier ones were checked when applied).
    const size_t count = n.applied_hashes.size();
    const size_t from = count > 64 ? count - 64 : 0;
    for (size_t i = from; i < count; ++i) {
      const uint64_t index = n.base_index.value() + i + 1;
      auto [it, inserted] = applied_hash_.emplace(index, n.applied_hashes[i]);
      if (!inserted && it->second != n.applied_hashes[i]) {
        return absl::StrCat("node ", id, " applied a different entry at ", index);
      }
    }
  }
  return "";
}

}  // namespace blixard::raft::testing
