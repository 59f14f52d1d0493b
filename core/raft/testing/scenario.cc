#include "core/raft/testing/scenario.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/raft/util.h"

namespace blixard::raft::testing {
namespace {

// Bound on the Ready/deliver rounds of one stabilize command.
constexpr int kStabilizeRoundsMax = 1000;

bool ParseU64(absl::string_view s, uint64_t* out) {
  return absl::SimpleAtoi(s, out);
}

std::vector<uint64_t> ParseList(absl::string_view s) {
  std::vector<uint64_t> out;
  s = absl::StripPrefix(s, "(");
  s = absl::StripSuffix(s, ")");
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    uint64_t v = 0;
    if (ParseU64(part, &v)) out.push_back(v);
  }
  return out;
}

bool ParseBool(absl::string_view s) { return s == "true" || s == "1"; }

int LevelRank(absl::string_view line) {
  if (absl::StartsWith(line, "DEBUG")) return 0;
  if (absl::StartsWith(line, "INFO")) return 1;
  if (absl::StartsWith(line, "WARN")) return 2;
  return 3;
}

}  // namespace

ScenarioRunner::ScenarioRunner() : logger_(LogLevel::kDebug) {}

std::string ScenarioRunner::TakeLogs() {
  std::string out;
  for (const std::string& line : logger_.TakeLines()) {
    if (LevelRank(line) < static_cast<int>(level_)) continue;
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string ScenarioRunner::Run(const std::string& command) {
  std::vector<std::string> args =
      absl::StrSplit(command, ' ', absl::SkipWhitespace());
  out_.clear();
  std::string result = Dispatch(args);
  std::string all = absl::StrCat(out_, TakeLogs(), result);
  // No blank lines in the output: they end a case in the script format.
  std::vector<std::string> lines = absl::StrSplit(all, '\n', absl::SkipEmpty());
  if (lines.empty()) return "ok";
  return absl::StrJoin(lines, "\n");
}

std::string ScenarioRunner::DescribeReady(uint64_t id, const Ready& rd) {
  std::string out = absl::StrCat("> ", id, " handling Ready #", rd.number, "\n");
  if (rd.soft_state) {
    absl::StrAppend(&out, "  soft: ", RoleName(rd.soft_state->role), " lead=",
                    rd.soft_state->leader.value(), "\n");
  }
  if (rd.hard_state) {
    absl::StrAppend(&out, "  hard: ", DescribeHardState(*rd.hard_state), "\n");
  }
  if (rd.snapshot) {
    absl::StrAppend(&out, "  snapshot: index=", rd.snapshot->metadata().index(),
                    " term=", rd.snapshot->metadata().term(), " ",
                    DescribeConfState(rd.snapshot->metadata().conf_state()), "\n");
  }
  for (const Entry& e : rd.entries) absl::StrAppend(&out, "  entry: ", DescribeEntry(e), "\n");
  for (const Entry& e : rd.committed_entries) {
    absl::StrAppend(&out, "  apply: ", DescribeEntry(e), "\n");
  }
  for (const Message& m : rd.messages) absl::StrAppend(&out, "  send: ", DescribeMessage(m), "\n");
  for (const Message& m : rd.messages_after_persist) {
    absl::StrAppend(&out, "  send-after-persist: ", DescribeMessage(m), "\n");
  }
  for (const ReadState& rs : rd.read_states) {
    absl::StrAppend(&out, "  read-state: index=", rs.index.value(), " ctx=",
                    rs.request_context, "\n");
  }
  return out;
}

std::string ScenarioRunner::ProcessReady(uint64_t id) {
  std::string out;
  // Bounded: each iteration consumes the node's pending work.
  for (int i = 0; i < kStabilizeRoundsMax; ++i) {
    Ready rd;
    absl::StrAppend(&out, TakeLogs());
    if (!cluster_->TakeReady(id, &rd)) break;
    absl::StrAppend(&out, TakeLogs(), DescribeReady(id, rd));
    cluster_->PersistAll(id);
    absl::StrAppend(&out, TakeLogs());
  }
  cluster_->PersistAll(id);
  absl::StrAppend(&out, TakeLogs());
  return out;
}

std::string ScenarioRunner::Deliver(uint64_t id, const std::vector<size_t>& drop) {
  std::string out;
  std::vector<Message>& net = cluster_->in_flight();
  std::vector<Message> mine;
  std::vector<Message> rest;
  for (Message& m : net) (m.to() == id ? mine : rest).push_back(std::move(m));
  net = std::move(rest);
  if (mine.empty()) return out;
  absl::StrAppend(&out, "> ", id, " receiving messages\n");
  for (size_t i = 0; i < mine.size(); ++i) {
    const bool dropped = std::find(drop.begin(), drop.end(), i + 1) != drop.end();
    absl::StrAppend(&out, "  ", DescribeMessage(mine[i]), dropped ? " DROPPED" : "", "\n");
    if (dropped || cluster_->node(id).down) continue;
    absl::Status s = cluster_->raw(id).Step(std::move(mine[i]));
    cluster_->CheckNode(id);
    absl::StrAppend(&out, TakeLogs());
    if (!s.ok()) absl::StrAppend(&out, "  step error: ", s.ToString(), "\n");
  }
  return out;
}

std::string ScenarioRunner::Stabilize(const std::vector<uint64_t>& only) {
  std::vector<uint64_t> ids = only.empty() ? cluster_->ids() : only;
  std::string out;
  for (int round = 0; round < kStabilizeRoundsMax; ++round) {
    bool progress = false;
    for (uint64_t id : ids) {
      if (cluster_->node(id).down) continue;
      std::string r = ProcessReady(id);
      if (!r.empty()) progress = true;
      out += r;
    }
    for (uint64_t id : ids) {
      std::string d = Deliver(id, {});
      if (!d.empty()) progress = true;
      out += d;
    }
    if (!progress) return out;
  }
  return out + "stabilize: did not converge\n";
}

std::string ScenarioRunner::RaftLogOf(uint64_t id) {
  const RaftLog& log = cluster_->raw(id).raft().log();
  if (log.LastIndex() < log.FirstIndex()) {
    return absl::StrCat("log is empty: first index=", log.FirstIndex().value(),
                        ", last index=", log.LastIndex().value(), "\n");
  }
  absl::StatusOr<std::vector<Entry>> ents =
      log.Slice(log.FirstIndex(), log.LastIndex().Next(), kNoLimit);
  if (!ents.ok()) return absl::StrCat("error: ", ents.status().ToString(), "\n");
  std::string out;
  for (const Entry& e : *ents) absl::StrAppend(&out, DescribeEntry(e), "\n");
  return out;
}

std::string ScenarioRunner::StatusOf(uint64_t id) {
  TestNode& n = cluster_->node(id);
  if (n.down) return absl::StrCat(id, ": down\n");
  Status s = n.raw->GetStatus();
  std::string out = absl::StrCat(
      id, ": ", RoleName(s.role), " term=", s.term.value(), " vote=",
      s.vote.value(), " lead=", s.leader.value(), " commit=", s.commit.value(),
      " applied=", n.applied_index().value(), " last=", s.last_index.value(),
      " ", DescribeConfState(s.config), "\n");
  for (const auto& [pid, pr] : n.raw->raft().tracker().progress()) {
    if (s.role != Role::kLeader) break;
    absl::StrAppend(&out, "  ", pid.value(), ": ", pr.ToString(), "\n");
  }
  return out;
}

std::string ScenarioRunner::Dispatch(const std::vector<std::string>& args) {
  if (args.empty()) return "error: empty command";
  const std::string& cmd = args[0];
  std::vector<std::string> pos;
  std::map<std::string, std::string> kv;
  for (size_t i = 1; i < args.size(); ++i) {
    std::vector<std::string> p = absl::StrSplit(args[i], absl::MaxSplits('=', 1));
    if (p.size() == 2) {
      kv[p[0]] = p[1];
    } else {
      pos.push_back(args[i]);
    }
  }
  auto id_at = [&](size_t i, uint64_t* id) -> bool {
    if (i >= pos.size() || !ParseU64(pos[i], id)) return false;
    return cluster_ != nullptr && cluster_->has_node(*id);
  };
  if (cmd == "log-level") {
    if (pos.empty()) return "error: log-level needs a level";
    const std::string& l = pos[0];
    if (l == "debug") level_ = LogLevel::kDebug;
    else if (l == "info") level_ = LogLevel::kInfo;
    else if (l == "warn") level_ = LogLevel::kWarning;
    else if (l == "error") level_ = LogLevel::kError;
    else if (l == "none") level_ = static_cast<LogLevel>(4);
    else return "error: unknown level " + l;
    return "ok";
  }
  if (cmd == "add-nodes") {
    uint64_t count = 0;
    if (pos.empty() || !ParseU64(pos[0], &count) || count == 0) {
      return "error: add-nodes <count> [options]";
    }
    if (cluster_ == nullptr) {
      ClusterOptions o;
      uint64_t v = 0;
      if (kv.count("election-tick") && ParseU64(kv["election-tick"], &v)) o.election_tick = static_cast<int>(v);
      if (kv.count("heartbeat-tick") && ParseU64(kv["heartbeat-tick"], &v)) o.heartbeat_tick = static_cast<int>(v);
      if (kv.count("pre-vote")) o.pre_vote = ParseBool(kv["pre-vote"]);
      if (kv.count("check-quorum")) o.check_quorum = ParseBool(kv["check-quorum"]);
      if (kv.count("read-only") && kv["read-only"] == "lease") {
        o.read_only_option = ReadOnlyOption::kLeaseBased;
      }
      if (kv.count("max-size-per-msg") && ParseU64(kv["max-size-per-msg"], &v)) o.max_size_per_msg = v;
      if (kv.count("max-inflight") && ParseU64(kv["max-inflight"], &v)) o.max_inflight_msgs = v;
      if (kv.count("max-inflight-bytes") && ParseU64(kv["max-inflight-bytes"], &v)) o.max_inflight_bytes = v;
      if (kv.count("max-uncommitted") && ParseU64(kv["max-uncommitted"], &v)) o.max_uncommitted_entries_size = v;
      if (kv.count("max-committed-per-ready") && ParseU64(kv["max-committed-per-ready"], &v)) o.max_committed_size_per_ready = v;
      if (kv.count("disable-forwarding")) o.disable_proposal_forwarding = ParseBool(kv["disable-forwarding"]);
      if (kv.count("step-down-on-removal")) o.step_down_on_removal = ParseBool(kv["step-down-on-removal"]);
      if (kv.count("seed") && ParseU64(kv["seed"], &v)) o.seed = v;
      cluster_ = std::make_unique<Cluster>(o, &logger_);
    }
    const uint64_t first = cluster_->ids().empty() ? 1 : cluster_->ids().back() + 1;
    std::vector<uint64_t> voters;
    std::vector<uint64_t> learners;
    if (kv.count("voters")) {
      voters = ParseList(kv["voters"]);
    } else if (bootstrap_voters_.empty()) {
      for (uint64_t i = 0; i < count; ++i) voters.push_back(first + i);
    } else {
      voters = bootstrap_voters_;  // a joiner replays the log from bootstrap
    }
    if (kv.count("learners")) learners = ParseList(kv["learners"]);
    if (bootstrap_voters_.empty()) bootstrap_voters_ = voters;
    for (uint64_t i = 0; i < count; ++i) cluster_->AddNode(first + i, voters, learners);
    return "";
  }
  if (cluster_ == nullptr) return "error: add-nodes first";
  uint64_t id = 0;
  if (cmd == "campaign") {
    if (!id_at(0, &id)) return "error: campaign <id>";
    cluster_->raw(id).Campaign();
    return "";
  }
  if (cmd == "propose") {
    if (!id_at(0, &id) || pos.size() < 2) return "error: propose <id> <data>";
    ProposalResult r = cluster_->raw(id).Propose(pos[1]);
    return r == ProposalResult::kAccepted ? "" : absl::StrCat("proposal ", ProposalResultName(r));
  }
  if (cmd == "propose-conf-change") {
    if (!id_at(0, &id)) return "error: propose-conf-change <id> [transition=...] v2 r3 l4";
    ConfChangeTransition t = CONF_CHANGE_TRANSITION_AUTO;
    if (kv["transition"] == "implicit") t = CONF_CHANGE_TRANSITION_JOINT_IMPLICIT;
    if (kv["transition"] == "explicit") t = CONF_CHANGE_TRANSITION_JOINT_EXPLICIT;
    std::vector<std::string> specs(pos.begin() + 1, pos.end());
    ConfChange cc = Cluster::MakeConfChange(absl::StrJoin(specs, " "), t);
    ProposalResult r = cluster_->raw(id).ProposeConfChange(cc);
    return r == ProposalResult::kAccepted ? "" : absl::StrCat("proposal ", ProposalResultName(r));
  }
  if (cmd == "process-ready") {
    std::string out;
    for (size_t i = 0; i < pos.size(); ++i) {
      if (!id_at(i, &id)) return "error: process-ready <id>...";
      if (!cluster_->node(id).down) out += ProcessReady(id);
    }
    return out;
  }
  if (cmd == "take-ready") {
    if (!id_at(0, &id)) return "error: take-ready <id>";
    Ready rd;
    std::string logs = TakeLogs();
    if (!cluster_->TakeReady(id, &rd)) return logs + "no Ready";
    return logs + TakeLogs() + DescribeReady(id, rd);
  }
  if (cmd == "persist") {
    if (!id_at(0, &id)) return "error: persist <id>";
    if (!cluster_->PersistOne(id)) return "nothing to persist";
    return absl::StrCat("> ", id, " persisted one write\n", TakeLogs());
  }
  if (cmd == "deliver-msgs") {
    std::vector<size_t> drop;
    for (uint64_t d : ParseList(kv["drop"])) drop.push_back(d);
    std::string out;
    for (size_t i = 0; i < pos.size(); ++i) {
      if (!id_at(i, &id)) return "error: deliver-msgs [drop=(1,2)] <id>...";
      out += Deliver(id, drop);
    }
    return out;
  }
  if (cmd == "drop-msgs") {
    cluster_->in_flight().clear();
    return "";
  }
  if (cmd == "stabilize") {
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < pos.size(); ++i) {
      if (!id_at(i, &id)) return "error: stabilize [<id>...]";
      ids.push_back(id);
    }
    return Stabilize(ids);
  }
  if (cmd == "tick-election" || cmd == "tick-heartbeat" || cmd == "tick") {
    if (!id_at(0, &id)) return "error: " + cmd + " <id>";
    if (cmd == "tick-election") {
      cluster_->TickElection(id);
    } else if (cmd == "tick-heartbeat") {
      cluster_->TickHeartbeat(id);
    } else {
      uint64_t n = 1;
      if (pos.size() > 1) ParseU64(pos[1], &n);
      for (uint64_t i = 0; i < n; ++i) cluster_->Tick(id);
    }
    return "";
  }
  if (cmd == "partition") {
    std::vector<std::vector<uint64_t>> groups;
    for (const std::string& g : pos) groups.push_back(ParseList(g));
    cluster_->Partition(groups);
    return "";
  }
  if (cmd == "isolate") {
    if (!id_at(0, &id)) return "error: isolate <id>";
    cluster_->Isolate(id);
    return "";
  }
  if (cmd == "heal") {
    cluster_->Heal();
    return "";
  }
  if (cmd == "crash") {
    if (!id_at(0, &id)) return "error: crash <id>";
    const size_t lost = cluster_->node(id).pending_writes.size();
    cluster_->Crash(id);
    return absl::StrCat("crashed ", id, " (", lost, " unpersisted writes lost)");
  }
  if (cmd == "restart") {
    if (!id_at(0, &id) || !cluster_->node(id).down) return "error: restart <crashed id>";
    cluster_->Restart(id);
    return "";
  }
  if (cmd == "transfer-leader") {
    uint64_t to = 0;
    if (!id_at(0, &id) || pos.size() < 2 || !ParseU64(pos[1], &to)) {
      return "error: transfer-leader <leader> <transferee>";
    }
    ProposalResult r = cluster_->raw(id).TransferLeader(NodeId(to));
    return IsAccepted(r) ? "" : absl::StrCat("transfer ", ProposalResultName(r));
  }
  if (cmd == "read-index") {
    if (!id_at(0, &id) || pos.size() < 2) return "error: read-index <id> <ctx>";
    ProposalResult r = cluster_->raw(id).ReadIndex(pos[1]);
    return IsAccepted(r) ? "" : absl::StrCat("read-index ", ProposalResultName(r));
  }
  if (cmd == "read-states") {
    if (!id_at(0, &id)) return "error: read-states <id>";
    std::string out;
    for (const ReadState& rs : cluster_->node(id).read_states) {
      absl::StrAppend(&out, "index=", rs.index.value(), " ctx=", rs.request_context, "\n");
    }
    cluster_->node(id).read_states.clear();
    return out.empty() ? "no read states" : out;
  }
  if (cmd == "compact") {
    uint64_t index = 0;
    if (!id_at(0, &id) || pos.size() < 2 || !ParseU64(pos[1], &index)) {
      return "error: compact <id> <index>";
    }
    absl::Status s = cluster_->Compact(id, Index(index));
    if (!s.ok()) return "error: " + s.ToString();
    return RaftLogOf(id);
  }
  if (cmd == "send-snapshot") {
    uint64_t to = 0;
    if (!id_at(0, &id) || pos.size() < 2 || !ParseU64(pos[1], &to)) {
      return "error: send-snapshot <from> <to>";
    }
    absl::StatusOr<Snapshot> snap = cluster_->node(id).storage.GetSnapshot();
    if (!snap.ok() || IsEmptySnapshot(*snap)) return "error: no snapshot";
    Message m;
    m.set_type(MSG_SNAPSHOT);
    m.set_from(id);
    m.set_to(to);
    m.set_term(cluster_->raw(id).raft().term().value());
    *m.mutable_snapshot() = *snap;
    std::string desc = DescribeMessage(m);
    cluster_->Send(std::move(m));
    return "queued " + desc;
  }
  if (cmd == "report-snapshot") {
    uint64_t to = 0;
    if (!id_at(0, &id) || pos.size() < 2 || !ParseU64(pos[1], &to)) {
      return "error: report-snapshot <leader> <follower> [ok=false]";
    }
    cluster_->raw(id).ReportSnapshot(NodeId(to), kv["ok"] != "false");
    return "";
  }
  if (cmd == "report-unreachable") {
    uint64_t to = 0;
    if (!id_at(0, &id) || pos.size() < 2 || !ParseU64(pos[1], &to)) {
      return "error: report-unreachable <leader> <peer>";
    }
    cluster_->raw(id).ReportUnreachable(NodeId(to));
    return "";
  }
  if (cmd == "raft-log") {
    if (!id_at(0, &id)) return "error: raft-log <id>";
    return RaftLogOf(id);
  }
  if (cmd == "status") {
    std::string out;
    if (pos.empty()) {
      for (uint64_t n : cluster_->ids()) out += StatusOf(n);
      return out;
    }
    for (size_t i = 0; i < pos.size(); ++i) {
      if (!id_at(i, &id)) return "error: status [<id>...]";
      out += StatusOf(id);
    }
    return out;
  }
  if (cmd == "applied") {
    if (!id_at(0, &id)) return "error: applied <id>";
    std::string out;
    for (const Entry& e : cluster_->node(id).applied) {
      absl::StrAppend(&out, DescribeEntry(e), "\n");
    }
    return out.empty() ? "nothing applied" : out;
  }
  if (cmd == "msgs") {
    std::string out;
    for (const Message& m : cluster_->in_flight()) {
      absl::StrAppend(&out, DescribeMessage(m), "\n");
    }
    return out.empty() ? "no messages" : out;
  }
  return "error: unknown command " + cmd;
}

}  // namespace blixard::raft::testing
