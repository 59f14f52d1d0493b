// One test per claim of the Raft paper (Ongaro and Ousterhout, "In Search of
// an Understandable Consensus Algorithm", 2014), sections 5.1 to 5.4.2, in
// the spirit of etcd-raft's raft_paper_test.go. Each test names its section.
//
// Nodes run behind the real RawNode and a Host loop (testing::Cluster) that
// persists before releasing acks, so these also exercise the asynchronous
// storage contract. Peers that are not in the cluster are "fake": messages
// to them stay queued for inspection.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/raft/raw_node.h"
#include "core/raft/testing/cluster.h"
#include "gtest/gtest.h"

namespace blixard::raft {
namespace {

using testing::Cluster;
using testing::ClusterOptions;

// Persists and collects every message `id` sent (removing it from the net).
std::vector<Message> Out(Cluster& c, uint64_t id) {
  c.ProcessReady(id);
  std::vector<Message> out;
  std::vector<Message> rest;
  for (Message& m : c.in_flight()) {
    if (m.from() == id) {
      out.push_back(std::move(m));
    } else {
      rest.push_back(std::move(m));
    }
  }
  c.in_flight() = std::move(rest);
  return out;
}

Message Msg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

Message Append(uint64_t from, uint64_t to, uint64_t term, uint64_t prev_index,
               uint64_t prev_term, const std::vector<uint64_t>& entry_terms,
               uint64_t commit) {
  Message m = Msg(MSG_APPEND, from, to, term);
  m.set_index(prev_index);
  m.set_log_term(prev_term);
  m.set_commit(commit);
  for (size_t i = 0; i < entry_terms.size(); ++i) {
    Entry* e = m.add_entries();
    e->set_index(prev_index + 1 + i);
    e->set_term(entry_terms[i]);
  }
  return m;
}

std::vector<uint64_t> LogTerms(Cluster& c, uint64_t id) {
  const RaftLog& log = c.raw(id).raft().log();
  std::vector<uint64_t> terms;
  for (Index i(1); i <= log.LastIndex(); i = i.Next()) {
    terms.push_back(log.ZeroTermOnError(i).value());
  }
  return terms;
}

class RaftPaperTest : public ::testing::Test {
 protected:
  // A single real node 1 with fake peers 2 and 3 (or more).
  Cluster& One(std::vector<uint64_t> voters = {1, 2, 3},
               std::vector<uint64_t> log_terms = {}, uint64_t term = 0) {
    cluster_.AddNode(1, voters, {}, log_terms, term);
    return cluster_;
  }
  // Elects node 1 among fake peers by feeding it vote grants.
  void ElectOne(Cluster& c, size_t voters = 3) {
    c.raw(1).Campaign();
    Out(c, 1);
    const uint64_t term = c.raw(1).raft().term().value();
    for (uint64_t p = 2; p <= voters / 2 + 1; ++p) {
      ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE_RESPONSE, p, 1, term)).ok());
    }
    ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
  }
  NullLogger logger_;
  Cluster cluster_{ClusterOptions{}, &logger_};
};

// 5.1: "If one server's current term is smaller than the other's, then it
// updates its current term to the larger value" and a candidate or leader
// "immediately reverts to follower state". Follower case.
TEST_F(RaftPaperTest, FollowerUpdatesTermFromMessage) {
  Cluster& c = One();
  ASSERT_TRUE(c.raw(1).Step(Append(2, 1, 2, 0, 0, {}, 0)).ok());
  EXPECT_EQ(c.raw(1).raft().term(), Term(2));
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
  EXPECT_EQ(c.raw(1).raft().lead(), NodeId(2));
}

// 5.1: a candidate that sees a larger term reverts to follower.
TEST_F(RaftPaperTest, CandidateUpdatesTermFromMessage) {
  Cluster& c = One();
  c.raw(1).Campaign();
  ASSERT_EQ(c.raw(1).raft().role(), Role::kCandidate);
  ASSERT_TRUE(c.raw(1).Step(Msg(MSG_HEARTBEAT, 2, 1, 5)).ok());
  EXPECT_EQ(c.raw(1).raft().term(), Term(5));
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
}

// 5.1: a leader that sees a larger term reverts to follower.
TEST_F(RaftPaperTest, LeaderUpdatesTermFromMessage) {
  Cluster& c = One();
  ElectOne(c);
  ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE, 3, 1, 7)).ok());
  EXPECT_EQ(c.raw(1).raft().term(), Term(7));
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
}

// 5.1: "If a server receives a request with a stale term number, it rejects
// the request."
TEST_F(RaftPaperTest, StaleTermMessageIsIgnored) {
  Cluster& c = One({1, 2, 3}, {}, 2);
  Out(c, 1);
  ASSERT_TRUE(c.raw(1).Step(Append(2, 1, 1, 0, 0, {1}, 1)).ok());
  EXPECT_EQ(c.raw(1).raft().term(), Term(2));
  EXPECT_EQ(c.raw(1).raft().log().LastIndex(), Index(0));
  EXPECT_TRUE(Out(c, 1).empty());
}

// 5.2: "When servers start up, they begin as followers."
TEST_F(RaftPaperTest, StartsAsFollower) {
  Cluster& c = One();
  EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
  EXPECT_EQ(c.raw(1).raft().term(), Term(0));
}

// 5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no
// log entries) to all followers in order to maintain their authority."
TEST_F(RaftPaperTest, LeaderBroadcastsHeartbeats) {
  Cluster& c = One();
  ElectOne(c);
  Out(c, 1);
  c.TickHeartbeat(1);
  std::vector<Message> msgs = Out(c, 1);
  std::set<uint64_t> to;
  for (const Message& m : msgs) {
    EXPECT_EQ(m.type(), MSG_HEARTBEAT);
    EXPECT_EQ(m.entries_size(), 0);
    to.insert(m.to());
  }
  EXPECT_EQ(to, (std::set<uint64_t>{2, 3}));
}

// 5.2: "If a follower receives no communication over a period of time called
// the election timeout, then it ... begins an election": it increments its
// term, votes for itself and issues RequestVote RPCs in parallel.
TEST_F(RaftPaperTest, FollowerStartsElectionOnTimeout) {
  Cluster& c = One();
  c.TickElection(1);
  EXPECT_EQ(c.raw(1).raft().role(), Role::kCandidate);
  EXPECT_EQ(c.raw(1).raft().term(), Term(1));
  EXPECT_EQ(c.raw(1).raft().vote(), NodeId(1));
  std::set<uint64_t> to;
  for (const Message& m : Out(c, 1)) {
    EXPECT_EQ(m.type(), MSG_VOTE);
    EXPECT_EQ(m.term(), 1u);
    to.insert(m.to());
  }
  EXPECT_EQ(to, (std::set<uint64_t>{2, 3}));
}

// 5.2: "If many followers become candidates at the same time, votes could be
// split ... each candidate will time out and start a new election by
// incrementing its term."
TEST_F(RaftPaperTest, CandidateStartsNewElectionOnTimeout) {
  Cluster& c = One();
  c.TickElection(1);
  Out(c, 1);
  ASSERT_EQ(c.raw(1).raft().term(), Term(1));
  c.TickElection(1);
  EXPECT_EQ(c.raw(1).raft().role(), Role::kCandidate);
  EXPECT_EQ(c.raw(1).raft().term(), Term(2));
  for (const Message& m : Out(c, 1)) EXPECT_EQ(m.term(), 2u);
}

// 5.2: "A candidate wins an election if it receives votes from a majority of
// the servers in the full cluster for the same term"; it loses when a
// majority rejects; otherwise it stays a candidate.
TEST_F(RaftPaperTest, ElectionOutcomeByMajority) {
  struct Case {
    size_t size;
    std::vector<bool> votes;  // from peers 2..; true = granted
    Role want;
  };
  const std::vector<Case> cases = {
      {1, {}, Role::kLeader},
      {3, {true, true}, Role::kLeader},
      {3, {true}, Role::kLeader},
      {5, {true, true, true, true}, Role::kLeader},
      {5, {true, true}, Role::kLeader},
      {3, {}, Role::kCandidate},
      {5, {true}, Role::kCandidate},
      {3, {false, false}, Role::kFollower},
      {5, {false, false, false}, Role::kFollower},
      {5, {true, false, false}, Role::kCandidate},
  };
  for (const Case& tc : cases) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    std::vector<uint64_t> voters;
    for (uint64_t i = 1; i <= tc.size; ++i) voters.push_back(i);
    c.AddNode(1, voters);
    c.raw(1).Campaign();
    Out(c, 1);
    for (size_t i = 0; i < tc.votes.size(); ++i) {
      Message m = Msg(MSG_VOTE_RESPONSE, 2 + i, 1, 1);
      m.set_reject(!tc.votes[i]);
      ASSERT_TRUE(c.raw(1).Step(m).ok());
    }
    Out(c, 1);
    EXPECT_EQ(c.raw(1).raft().role(), tc.want) << "size " << tc.size;
    EXPECT_EQ(c.raw(1).raft().term(), Term(1));
  }
}

// 5.2: "Each server will vote for at most one candidate in a given term, on a
// first-come-first-served basis."
TEST_F(RaftPaperTest, FollowerVotesFirstComeFirstServed) {
  struct Case {
    uint64_t voted;  // 0 = none yet
    uint64_t from;
    bool reject;
  };
  for (const Case& tc : std::vector<Case>{{0, 2, false}, {0, 3, false},
                                          {2, 2, false}, {3, 3, false},
                                          {2, 3, true}, {3, 2, true}}) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    c.AddNode(1, {1, 2, 3}, {}, {}, 1);
    if (tc.voted != 0) {
      ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE, tc.voted, 1, 1)).ok());
      Out(c, 1);
    }
    ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE, tc.from, 1, 1)).ok());
    std::vector<Message> msgs = Out(c, 1);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type(), MSG_VOTE_RESPONSE);
    EXPECT_EQ(msgs[0].reject(), tc.reject) << tc.voted << " " << tc.from;
  }
}

// 5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC
// from another server claiming to be leader. If the leader's term is at
// least as large as the candidate's current term, then the candidate
// recognizes the leader as legitimate and returns to follower state."
TEST_F(RaftPaperTest, CandidateFallsBackOnAppendFromLeader) {
  for (uint64_t term : {1u, 2u}) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    c.AddNode(1, {1, 2, 3});
    c.raw(1).Campaign();
    Out(c, 1);
    ASSERT_TRUE(c.raw(1).Step(Append(2, 1, term, 0, 0, {}, 0)).ok());
    EXPECT_EQ(c.raw(1).raft().role(), Role::kFollower);
    EXPECT_EQ(c.raw(1).raft().term(), Term(term));
    EXPECT_EQ(c.raw(1).raft().lead(), NodeId(2));
  }
}

// 5.2: "Raft uses randomized election timeouts ... chosen randomly from a
// fixed interval" (follower).
TEST_F(RaftPaperTest, FollowerElectionTimeoutIsRandomized) {
  std::set<int> timeouts;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    NullLogger logger;
    ClusterOptions opts;
    opts.seed = seed;
    Cluster c(opts, &logger);
    c.AddNode(1, {1, 2, 3});
    int ticks = 0;
    while (c.raw(1).raft().role() == Role::kFollower && ticks < 100) {
      c.Tick(1);
      ++ticks;
    }
    EXPECT_GE(ticks, opts.election_tick);
    EXPECT_LT(ticks, 2 * opts.election_tick);
    timeouts.insert(ticks);
  }
  EXPECT_EQ(timeouts.size(), 10u) << "every timeout in [et, 2et) occurs";
}

// 5.2: the same for a candidate's timeout before its next election.
TEST_F(RaftPaperTest, CandidateElectionTimeoutIsRandomized) {
  std::set<int> timeouts;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    NullLogger logger;
    ClusterOptions opts;
    opts.seed = seed;
    Cluster c(opts, &logger);
    c.AddNode(1, {1, 2, 3});
    c.raw(1).Campaign();
    int ticks = 0;
    while (c.raw(1).raft().term() == Term(1) && ticks < 100) {
      c.Tick(1);
      ++ticks;
    }
    EXPECT_GE(ticks, opts.election_tick);
    EXPECT_LT(ticks, 2 * opts.election_tick);
    timeouts.insert(ticks);
  }
  EXPECT_EQ(timeouts.size(), 10u);
}

// 5.2: randomization "spreads out the servers so that in most cases only a
// single server will time out" (followers).
TEST_F(RaftPaperTest, FollowersRarelyTimeOutTogether) {
  int conflicts = 0;
  const int rounds = 500;
  for (int round = 0; round < rounds; ++round) {
    NullLogger logger;
    ClusterOptions opts;
    opts.seed = static_cast<uint64_t>(round) + 1;
    Cluster c(opts, &logger);
    c.AddVoters(5);
    int timed_out = 0;
    while (timed_out == 0) {
      for (uint64_t id = 1; id <= 5; ++id) {
        c.Tick(id);
        if (c.raw(id).raft().role() != Role::kFollower) ++timed_out;
      }
    }
    if (timed_out > 1) ++conflicts;
  }
  // Five draws from ten slots: collisions happen, but the minimum is
  // usually unique (etcd-raft asserts <= 30%).
  EXPECT_LE(conflicts * 10, rounds * 3) << conflicts;
}

// 5.2: the same for candidates after a split vote.
TEST_F(RaftPaperTest, CandidatesRarelyTimeOutTogether) {
  int conflicts = 0;
  const int rounds = 500;
  for (int round = 0; round < rounds; ++round) {
    NullLogger logger;
    ClusterOptions opts;
    opts.seed = static_cast<uint64_t>(round) + 7;
    Cluster c(opts, &logger);
    c.AddVoters(5);
    for (uint64_t id = 1; id <= 5; ++id) c.raw(id).Campaign();
    int timed_out = 0;
    while (timed_out == 0) {
      for (uint64_t id = 1; id <= 5; ++id) {
        c.Tick(id);
        if (c.raw(id).raft().term() == Term(2)) ++timed_out;
      }
    }
    if (timed_out > 1) ++conflicts;
  }
  EXPECT_LE(conflicts * 10, rounds * 3) << conflicts;
}

// 5.3: "Once a leader has been elected ... The leader appends the command to
// its log as a new entry, then issues AppendEntries RPCs in parallel to each
// of the other servers to replicate the entry."
TEST_F(RaftPaperTest, LeaderStartsReplication) {
  Cluster& c = One();
  ElectOne(c);
  Out(c, 1);
  // The followers acknowledge the leader's empty entry (probe -> replicate).
  for (uint64_t p : {2u, 3u}) {
    Message ack = Msg(MSG_APPEND_RESPONSE, p, 1, 1);
    ack.set_index(1);
    ASSERT_TRUE(c.raw(1).Step(ack).ok());
  }
  Out(c, 1);
  const Index li = c.raw(1).raft().log().LastIndex();
  ASSERT_EQ(c.raw(1).Propose("some data"), ProposalResult::kAccepted);
  EXPECT_EQ(c.raw(1).raft().log().LastIndex(), li.Next());
  std::set<uint64_t> to;
  for (const Message& m : Out(c, 1)) {
    ASSERT_EQ(m.type(), MSG_APPEND);
    EXPECT_EQ(m.index(), li.value());
    EXPECT_EQ(m.log_term(), 1u);
    ASSERT_EQ(m.entries_size(), 1);
    EXPECT_EQ(m.entries(0).data(), "some data");
    EXPECT_EQ(m.entries(0).index(), li.Next().value());
    to.insert(m.to());
  }
  EXPECT_EQ(to, (std::set<uint64_t>{2, 3}));
}

// 5.3: "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers ... the leader applies the
// entry to its state machine" and includes the commit index in future
// AppendEntries.
TEST_F(RaftPaperTest, LeaderCommitsEntryReplicatedOnMajority) {
  Cluster& c = One();
  ElectOne(c);
  // Acknowledge the leader's empty entry.
  ASSERT_TRUE(c.raw(1).Step([] {
    Message m = Msg(MSG_APPEND_RESPONSE, 2, 1, 1);
    m.set_index(1);
    return m;
  }()).ok());
  Out(c, 1);
  ASSERT_EQ(c.raw(1).Propose("some data"), ProposalResult::kAccepted);
  Out(c, 1);
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(1));
  Message ack = Msg(MSG_APPEND_RESPONSE, 2, 1, 1);
  ack.set_index(2);
  ASSERT_TRUE(c.raw(1).Step(ack).ok());
  std::vector<Message> msgs = Out(c, 1);
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(2));
  ASSERT_FALSE(c.node(1).applied.empty());
  EXPECT_EQ(c.node(1).applied.back().data(), "some data");
  bool told = false;
  for (const Message& m : msgs) {
    if (m.type() == MSG_APPEND && m.commit() == 2) told = true;
  }
  EXPECT_TRUE(told) << "followers learn the new commit index";
}

// 5.3: the leader counts acknowledgements: with a majority of acks the entry
// commits, without it does not.
TEST_F(RaftPaperTest, LeaderAcknowledgesCommitOnlyWithMajority) {
  struct Case {
    size_t size;
    std::vector<uint64_t> acks;
    bool committed;
  };
  for (const Case& tc : std::vector<Case>{{1, {}, true},
                                          {3, {}, false},
                                          {3, {2}, true},
                                          {3, {2, 3}, true},
                                          {5, {}, false},
                                          {5, {2}, false},
                                          {5, {2, 3}, true},
                                          {5, {2, 3, 4, 5}, true}}) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    std::vector<uint64_t> voters;
    for (uint64_t i = 1; i <= tc.size; ++i) voters.push_back(i);
    c.AddNode(1, voters);
    c.raw(1).Campaign();
    Out(c, 1);
    for (uint64_t p = 2; p <= tc.size / 2 + 1; ++p) {
      ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE_RESPONSE, p, 1, 1)).ok());
    }
    Out(c, 1);
    ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
    c.raw(1).Propose("x");
    Out(c, 1);
    for (uint64_t p : tc.acks) {
      Message m = Msg(MSG_APPEND_RESPONSE, p, 1, 1);
      m.set_index(2);
      ASSERT_TRUE(c.raw(1).Step(m).ok());
    }
    Out(c, 1);
    EXPECT_EQ(c.raw(1).raft().log().committed() == Index(2), tc.committed)
        << "size " << tc.size << " acks " << tc.acks.size();
  }
}

// 5.3: "When the leader commits an entry it also commits all preceding
// entries in the leader's log, including entries created by previous
// leaders."
TEST_F(RaftPaperTest, LeaderCommitsPrecedingEntries) {
  for (const std::vector<uint64_t>& prior :
       std::vector<std::vector<uint64_t>>{{}, {2}, {1, 1}, {1, 2}}) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    c.AddNode(1, {1, 2, 3}, {}, prior, 2);
    c.raw(1).Campaign();
    Out(c, 1);
    ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE_RESPONSE, 2, 1, 3)).ok());
    Out(c, 1);
    ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
    const uint64_t last = c.raw(1).raft().log().LastIndex().value();
    Message ack = Msg(MSG_APPEND_RESPONSE, 2, 1, 3);
    ack.set_index(last);
    ASSERT_TRUE(c.raw(1).Step(ack).ok());
    Out(c, 1);
    EXPECT_EQ(c.raw(1).raft().log().committed(), Index(last));
    EXPECT_EQ(c.node(1).applied.size(), prior.size() + 1);
  }
}

// 5.3: "Once a follower learns that a log entry is committed, it applies the
// entry to its local state machine (in log order)."
TEST_F(RaftPaperTest, FollowerAppliesCommittedEntriesInOrder) {
  Cluster& c = One();
  ASSERT_TRUE(c.raw(1).Step(Append(2, 1, 1, 0, 0, {1, 1, 1}, 2)).ok());
  Out(c, 1);
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(2));
  ASSERT_EQ(c.node(1).applied.size(), 2u);
  EXPECT_EQ(c.node(1).applied[0].index(), 1u);
  EXPECT_EQ(c.node(1).applied[1].index(), 2u);
}

// 5.3: "When sending an AppendEntries RPC, the leader includes the index and
// term of the entry in its log that immediately precedes the new entries. If
// the follower does not find an entry in its log with the same index and
// term, then it refuses the new entries."
TEST_F(RaftPaperTest, FollowerChecksPrecedingEntry) {
  struct Case {
    uint64_t prev_term, prev_index;
    bool reject;
  };
  for (const Case& tc : std::vector<Case>{{0, 0, false},
                                          {1, 1, false},
                                          {2, 2, false},
                                          {1, 2, true},
                                          {3, 3, true}}) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    c.AddNode(1, {1, 2, 3}, {}, {1, 2}, 2);
    ASSERT_TRUE(c.raw(1).Step(Append(2, 1, 3, tc.prev_index, tc.prev_term, {}, 0)).ok());
    std::vector<Message> msgs = Out(c, 1);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].type(), MSG_APPEND_RESPONSE);
    EXPECT_EQ(msgs[0].reject(), tc.reject) << tc.prev_term << "/" << tc.prev_index;
    if (tc.reject) {
      EXPECT_LE(msgs[0].reject_hint(), 2u) << "hint is within our log";
    }
  }
}

// 5.3: "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it;
// append any new entries not already in the log."
TEST_F(RaftPaperTest, FollowerReplacesConflictingEntries) {
  struct Case {
    uint64_t prev_index, prev_term;
    std::vector<uint64_t> entries;
    std::vector<uint64_t> want;
  };
  for (const Case& tc : std::vector<Case>{
           {2, 2, {3}, {1, 2, 3}},
           {1, 1, {3, 4}, {1, 3, 4}},
           {0, 0, {1}, {1, 2}},
           {0, 0, {3}, {3}},
       }) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    c.AddNode(1, {1, 2, 3}, {}, {1, 2}, 2);
    ASSERT_TRUE(c.raw(1).Step(Append(2, 1, 4, tc.prev_index, tc.prev_term,
                                     tc.entries, 0)).ok());
    Out(c, 1);
    EXPECT_EQ(LogTerms(c, 1), tc.want);
    // And what was persisted matches.
    EXPECT_EQ(c.node(1).storage.LastIndex(), Index(tc.want.size()));
  }
}

// 5.3 and Figure 7: whatever the follower's log (missing entries, extra
// uncommitted entries, both), the leader "forces the followers' logs to
// duplicate its own" by finding the latest point of agreement.
TEST_F(RaftPaperTest, LeaderSyncsDivergentFollowerLogs) {
  const std::vector<uint64_t> leader = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<uint64_t>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},                    // (a)
      {1, 1, 1, 4},                                   // (b)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},              // (c)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},           // (d)
      {1, 1, 1, 4, 4, 4, 4},                          // (e)
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},              // (f)
  };
  for (size_t f = 0; f < followers.size(); ++f) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    c.AddNode(1, {1, 2, 3}, {}, leader, 8);
    c.AddNode(2, {1, 2, 3}, {}, followers[f], 8);
    // A third voter with the leader's log grants the vote, so the leader of
    // term 9 can be elected whatever the follower's log.
    c.AddNode(3, {1, 2, 3}, {}, leader, 8);
    c.raw(1).Campaign();
    c.Stabilize();
    ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader) << f;
    std::vector<uint64_t> want = leader;
    want.push_back(9);  // the new leader's empty entry
    EXPECT_EQ(LogTerms(c, 2), want) << "follower (" << char('a' + f) << ")";
  }
}

// 5.4.1: "the RequestVote RPC ... includes information about the
// candidate's log": its last log index and term.
TEST_F(RaftPaperTest, VoteRequestCarriesLastLogPosition) {
  for (const std::vector<uint64_t>& log :
       std::vector<std::vector<uint64_t>>{{1}, {1, 2}, {1, 1, 3}}) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    c.AddNode(1, {1, 2, 3}, {}, log, log.back());
    c.TickElection(1);
    for (const Message& m : Out(c, 1)) {
      EXPECT_EQ(m.type(), MSG_VOTE);
      EXPECT_EQ(m.index(), log.size());
      EXPECT_EQ(m.log_term(), log.back());
      EXPECT_EQ(m.term(), log.back() + 1);
    }
  }
}

// 5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate": compare last terms, then lengths.
TEST_F(RaftPaperTest, VoterGrantsOnlyToUpToDateCandidates) {
  struct Case {
    std::vector<uint64_t> log;
    uint64_t log_term, index;
    bool reject;
  };
  for (const Case& tc : std::vector<Case>{
           {{1}, 1, 1, false},
           {{1}, 1, 2, false},
           {{1, 1}, 1, 1, true},
           {{1}, 2, 1, false},
           {{1}, 2, 2, false},
           {{1, 1}, 2, 1, false},
           {{2}, 1, 1, true},
           {{2}, 1, 2, true},
           {{1, 2}, 1, 1, true},
       }) {
    NullLogger logger;
    Cluster c(ClusterOptions{}, &logger);
    c.AddNode(1, {1, 2, 3}, {}, tc.log, 2);
    Message m = Msg(MSG_VOTE, 2, 1, 3);
    m.set_log_term(tc.log_term);
    m.set_index(tc.index);
    ASSERT_TRUE(c.raw(1).Step(m).ok());
    std::vector<Message> msgs = Out(c, 1);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].reject(), tc.reject)
        << tc.log_term << "/" << tc.index << " vs log of " << tc.log.size();
  }
}

// 5.4.2 and Figure 8: "Raft never commits log entries from previous terms by
// counting replicas. Only log entries from the leader's current term are
// committed by counting replicas."
TEST_F(RaftPaperTest, LeaderOnlyCommitsEntriesOfCurrentTermByCounting) {
  Cluster& c = One({1, 2, 3}, {1, 2}, 2);
  c.raw(1).Campaign();
  Out(c, 1);
  ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE_RESPONSE, 2, 1, 3)).ok());
  Out(c, 1);
  ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
  // An ack for the old-term entries only: not enough to commit them.
  Message ack = Msg(MSG_APPEND_RESPONSE, 2, 1, 3);
  ack.set_index(2);
  ASSERT_TRUE(c.raw(1).Step(ack).ok());
  Out(c, 1);
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(0));
  // Once the entry of term 3 is replicated, everything before it commits.
  ack.set_index(3);
  ASSERT_TRUE(c.raw(1).Step(ack).ok());
  Out(c, 1);
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(3));
}

// 5.4.2, Figure 8 end to end: an entry from term 2 replicated on a majority
// by a later leader is still overwritten if it was never committed, and a
// committed entry is never lost.
TEST_F(RaftPaperTest, Figure8OldTermEntryOnMajorityCanBeOverwritten) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  // (a) S1 leader of term 2 replicated index 2 to S2 only.
  c.AddNode(1, {1, 2, 3, 4, 5}, {}, {1, 2}, 2);
  c.AddNode(2, {1, 2, 3, 4, 5}, {}, {1, 2}, 2);
  c.AddNode(3, {1, 2, 3, 4, 5}, {}, {1}, 3);
  c.AddNode(4, {1, 2, 3, 4, 5}, {}, {1}, 3);
  // (b) S5 was elected in term 3 (by S3, S4) and appended index 2 in term 3.
  c.AddNode(5, {1, 2, 3, 4, 5}, {}, {1, 3}, 3);
  // (c) S1 is elected by S2, S3, S4 (not S5; here in term 3, since our S3
  // and S4 recorded no vote), and replicates its term-2 entry to S3 - but
  // commits nothing from term 2 by counting.
  c.Isolate(5);
  c.raw(1).Campaign();
  c.Stabilize();
  if (c.raw(1).raft().role() != Role::kLeader) {
    c.raw(1).Campaign();
    c.Stabilize();
  }
  ASSERT_EQ(c.raw(1).raft().role(), Role::kLeader);
  EXPECT_EQ(c.raw(1).raft().term(), Term(3));
  // The leader's empty entry of term 4 is what commits index 2 (and with it
  // the old entry), so "commit only current term" is safe.
  EXPECT_EQ(c.raw(1).raft().log().committed(), Index(3));
  EXPECT_EQ(LogTerms(c, 3), (std::vector<uint64_t>{1, 2, 3}));
  // S5 can no longer win: its log is behind the committed entry.
  c.Heal();
  c.Isolate(1);
  c.raw(5).Campaign();
  c.Stabilize();
  EXPECT_NE(c.raw(5).raft().role(), Role::kLeader);
}

// 5.3 Leader Append-Only: "a leader never overwrites or deletes entries in
// its own log; it only appends new entries."
TEST_F(RaftPaperTest, LeaderNeverOverwritesItsLog) {
  Cluster& c = One({1, 2, 3}, {1, 1}, 1);
  ElectOne(c);
  Out(c, 1);
  const std::vector<uint64_t> before = LogTerms(c, 1);
  // A follower claims a conflicting log; the leader only moves its probe.
  Message rej = Msg(MSG_APPEND_RESPONSE, 2, 1, 2);
  rej.set_reject(true);
  rej.set_index(3);
  rej.set_reject_hint(1);
  rej.set_log_term(1);
  ASSERT_TRUE(c.raw(1).Step(rej).ok());
  c.raw(1).Propose("x");
  Out(c, 1);
  std::vector<uint64_t> after = LogTerms(c, 1);
  ASSERT_GE(after.size(), before.size());
  EXPECT_TRUE(std::equal(before.begin(), before.end(), after.begin()));
}

// 5.3 Log Matching: "if two logs contain an entry with the same index and
// term, then the logs are identical in all entries up through the given
// index", across a leader change with concurrent proposals.
TEST_F(RaftPaperTest, LogMatchingAcrossLeaderChanges) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(5);
  c.raw(1).Campaign();
  c.Stabilize();
  for (int i = 0; i < 5; ++i) c.raw(1).Propose("a" + std::to_string(i));
  c.ProcessReady(1);
  c.DeliverTo(2);  // only node 2 gets the appends
  c.in_flight().clear();
  c.Isolate(1);
  c.raw(3).Campaign();
  c.Stabilize();
  ASSERT_EQ(c.raw(3).raft().role(), Role::kLeader);
  c.raw(3).Propose("b");
  c.Heal();
  c.Stabilize();
  c.TickHeartbeat(3);
  c.Stabilize();
  const std::vector<uint64_t> want = LogTerms(c, 3);
  for (uint64_t id = 1; id <= 5; ++id) EXPECT_EQ(LogTerms(c, id), want) << id;
  for (uint64_t id = 1; id <= 5; ++id) {
    EXPECT_EQ(c.node(id).applied_hash(), c.node(3).applied_hash()) << id;
  }
}

// 5.2: a follower keeps its term and vote across a restart (they are
// persistent state in Figure 2), so it cannot vote twice in one term.
TEST_F(RaftPaperTest, TermAndVoteArePersistentState) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE, 2, 1, 4)).ok());
  Out(c, 1);
  c.Crash(1);
  c.Restart(1);
  EXPECT_EQ(c.raw(1).raft().term(), Term(4));
  EXPECT_EQ(c.raw(1).raft().vote(), NodeId(2));
  ASSERT_TRUE(c.raw(1).Step(Msg(MSG_VOTE, 3, 1, 4)).ok());
  std::vector<Message> msgs = Out(c, 1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].reject());
}

// 5.3: "If followers crash or run slowly, or if network packets are lost, the
// leader retries AppendEntries RPCs indefinitely ... until all followers
// eventually store all log entries."
TEST_F(RaftPaperTest, LeaderRetriesUntilFollowersCatchUp) {
  NullLogger logger;
  Cluster c(ClusterOptions{}, &logger);
  c.AddVoters(3);
  c.raw(1).Campaign();
  c.Stabilize();
  c.Isolate(3);
  for (int i = 0; i < 3; ++i) c.raw(1).Propose("p" + std::to_string(i));
  c.Stabilize();
  EXPECT_EQ(c.raw(3).raft().log().LastIndex(), Index(1));
  c.Heal();
  for (int i = 0; i < 3; ++i) {
    c.TickHeartbeat(1);
    c.Stabilize();
  }
  EXPECT_EQ(c.raw(3).raft().log().LastIndex(), c.raw(1).raft().log().LastIndex());
  EXPECT_EQ(c.raw(3).raft().log().committed(), Index(4));
}

// 5.2: "a candidate continues in this state until ... another server
// establishes itself as leader": a candidate rejecting stale-term leaders
// stays candidate.
TEST_F(RaftPaperTest, CandidateIgnoresStaleLeader) {
  Cluster& c = One({1, 2, 3}, {}, 3);
  c.raw(1).Campaign();
  Out(c, 1);
  ASSERT_EQ(c.raw(1).raft().term(), Term(4));
  ASSERT_TRUE(c.raw(1).Step(Append(2, 1, 3, 0, 0, {}, 0)).ok());
  EXPECT_EQ(c.raw(1).raft().role(), Role::kCandidate);
  EXPECT_EQ(c.raw(1).raft().term(), Term(4));
}

}  // namespace
}  // namespace blixard::raft
