#include "sim/simulation.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/check.h"
#include "core/base/coverage_mark.h"
#include "core/base/logger.h"
#include "core/base/rng.h"
#include "core/host/host.h"
#include "core/host/membership.h"
#include "core/proto/raft.pb.h"
#include "sim/checker/execution_checker.h"
#include "sim/checker/log_time_checker.h"
#include "sim/checker/safety_checker.h"
#include "sim/checker/scheduler_checker.h"
#include "sim/checker/trace_order.h"
#include "sim/sim_disk.h"
#include "sim/sim_logger.h"
#include "sim/sim_node_env.h"
#include "sim/sim_network.h"
#include "sim/timeline.h"
#include "sim/trace.h"
#include "sim/world.h"

namespace blixard::sim {
namespace {

constexpr int64_t kTickUs = 100'000;
// Events the liveness phase may run before it is declared stuck: a bound on
// a livelock, far above what a healthy cluster needs.
constexpr uint64_t kLivenessEventsMax = 50'000'000;

uint64_t EntryHash(const raft::Entry& entry) {
  std::string bytes;
  bytes.push_back(static_cast<char>(entry.type()));
  bytes += entry.data();
  return StableHash64(bytes);
}

EntryDigest Digest(const raft::Entry& entry) {
  return EntryDigest{Index(entry.index()), Term(entry.term()), EntryHash(entry)};
}

}  // namespace

WorkloadOptions SimulationOptions::ClientOptions() const {
  WorkloadOptions clients;
  if (swarm.has_value()) {
    clients = swarm->ClientOptions();
  } else {
    clients.kind = workload;
  }
  clients.ops = ops;
  return clients;
}

absl::Status SimulationOptions::Validate() const {
  if (nodes < 1 || nodes > kSimNodesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("nodes must be in [1, ", kSimNodesMax, "], got ", nodes));
  }
  if (duration_us <= 0) {
    return absl::InvalidArgumentError("duration must be positive");
  }
  if (liveness_us <= 0) {
    return absl::InvalidArgumentError("liveness bound must be positive");
  }
  if (snapshot_interval_entries == 0) {
    return absl::InvalidArgumentError("snapshot interval must be positive");
  }
  if (swarm.has_value()) {
    if (faults != FaultProfile::kSwarm) {
      return absl::InvalidArgumentError("swarm params given without faults=swarm");
    }
    if (absl::Status s = swarm->Validate(); !s.ok()) return s;
  }
  if (schedule.has_value()) {
    if (absl::Status s = schedule->Validate(); !s.ok()) return s;
  }
  if (ops.has_value()) {
    // Swarm runs draw their own number of clients.
    const WorkloadOptions clients = ClientOptions();
    absl::Status valid = ValidateClientOps(*ops, clients.client_id_base, clients.clients);
    if (!valid.ok()) return valid;
  }
  return absl::OkStatus();
}

std::string PropertyId(absl::string_view property) {
  std::string id;
  for (char c : property) {
    id.push_back(c == ' ' || c == '-' ? '_' : absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  return id;
}

std::optional<std::string> QuorumCannotRun(const raft::ConfState& config,
                                           const std::set<NodeId>& refused) {
  for (const auto* set : {&config.voters(), &config.voters_outgoing()}) {
    if (set->empty()) continue;
    std::vector<std::string> lost;
    for (uint64_t v : *set) {
      if (refused.count(NodeId(v)) > 0) lost.push_back(absl::StrCat("n", v));
    }
    const size_t size = static_cast<size_t>(set->size());
    const size_t runnable = size - lost.size();
    const size_t quorum = size / 2 + 1;
    if (runnable < quorum) {
      return absl::StrCat("voters {", absl::StrJoin(*set, ","), "}: ", absl::StrJoin(lost, ", "),
                          " refused to start after losing data; ", runnable, " of ", size,
                          " can run, a quorum needs ", quorum);
    }
  }
  if (config.voters().empty()) return std::string("no voters in the configuration");
  return std::nullopt;
}

SimulationOptions ResolveSwarm(SimulationOptions options) {
  if (options.faults != FaultProfile::kSwarm) return options;
  if (!options.swarm.has_value()) options.swarm = DrawSwarmParams(SwarmStream(options.seed));
  options.nodes = options.swarm->nodes;
  options.workload = options.swarm->workload;
  return options;
}

namespace {

class Simulation final : public ClusterAccess,
                         public host::HostObserver,
                         public WorkloadListener {
 public:
  explicit Simulation(const SimulationOptions& options)
      : options_(options),
        world_(options.seed),
        trace_(options.trace),
        network_(&world_, options.swarm.has_value() ? options.swarm->NetworkOptions()
                                                    : SimNetworkOptions{}) {
    const int spares = options_.swarm.has_value() ? options_.swarm->spares : 0;
    for (int i = 1; i <= options_.nodes + spares; ++i) {
      const NodeId id(static_cast<uint64_t>(i));
      (i <= options_.nodes ? node_ids_ : spare_ids_).push_back(id);
      all_ids_.push_back(id);
    }
    if (options_.timeline != nullptr) {
      timeline_ = std::make_unique<Timeline>(options_.seed, all_ids_);
    }
    for (NodeId id : all_ids_) world_.AddNode(id);
    world_.AddLifecycleListener(
        [this](NodeId node, LifecycleChange change) { OnLifecycle(node, change); });
    if (options_.log != nullptr) {
      log_sink_ = std::make_unique<OstreamLogger>(options_.log);
    } else {
      log_sink_ = std::make_unique<NullLogger>();
    }
    for (NodeId id : all_ids_) BuildNode(id);
    if (options_.check_trace_order) {
      // The reader sees every line as written, byte for byte, and knows
      // nothing of how it was produced.
      trace_.SetLineListener(
          [this](absl::string_view line) { (void)trace_order_.AddLine(line); });
    }
    // Vote grants, as the voters issue them (the oracle's vote safety): a
    // grant counts when sent, whether or not the network delivers it.
    network_.SetObserver([this](const Packet& packet, PacketFate fate) {
      if (packet.kind != Packet::Kind::kRaft ||
          packet.raft.type() != raft::MSG_VOTE_RESPONSE || packet.raft.reject()) {
        return;
      }
      if (fate == PacketFate::kSent || fate == PacketFate::kQueueFull ||
          fate == PacketFate::kUnknownPeer) {
        checker_.OnVoteGranted(packet.from, packet.to, Term(packet.raft.term()));
      }
    });
  }

  SimulationReport Run() {
    JsonLine header;
    header.Int("duration_us", options_.duration_us)
        .Str("faults", FaultProfileName(options_.faults))
        .Str("workload", WorkloadKindName(options_.workload));
    // Every drawn parameter, so the trace alone says what world ran.
    if (options_.swarm.has_value()) header.Str("swarm", options_.swarm->ToText());
    trace_.Header(options_.seed, static_cast<uint64_t>(options_.nodes), header);
    for (NodeId id : all_ids_) StartHost(id);

    workload_ = std::make_unique<Workload>(&world_, this, this, options_.ClientOptions());
    workload_->Start();

    FaultInjector::Targets targets;
    targets.world = &world_;
    targets.network = &network_;
    for (auto& [id, node] : nodes_) targets.clocks[id] = &node.env->clock();
    targets.trace = &trace_;
    targets.other = [this](const Fault& fault) {
      return IsMembershipChange(fault.kind) ? ApplyMembership(fault) : ApplyDiskFault(fault);
    };
    injector_ = std::make_unique<FaultInjector>(std::move(targets));
    FaultSchedule schedule;
    if (options_.schedule.has_value()) {
      schedule = *options_.schedule;
    } else if (options_.swarm.has_value()) {
      schedule = GenerateFaultSchedule(world_.Stream("faults"), options_.swarm->Mix(), node_ids_,
                                       spare_ids_, options_.duration_us);
    } else {
      schedule = GenerateFaultSchedule(world_.Stream("faults"), options_.faults, node_ids_,
                                       options_.duration_us, /*disk_faults=*/true);
    }
    // Each fault is applied (counted and traced) by the injector, and drawn
    // on the timeline when it took effect. Schedule() would do the same
    // without the drawing; equal times still apply in list order.
    CHECK_OK(schedule.Validate());
    report_.schedule = schedule;
    for (const Fault& fault : schedule.faults) {
      world_.Schedule(fault.at_us, kNoNode, [this, fault] {
        if (injector_->Apply(fault) && timeline_ != nullptr) {
          timeline_->Fault(world_.now_us(), FaultKindName(fault.kind), fault.nodes);
        }
      });
    }

    if (options_.membership_changes) ScheduleMembershipChange();

    // Safety phase: faults at will, every check after every event.
    RunPhase(options_.duration_us);
    membership_stopped_ = true;
    // Liveness phase: heal everything; then, within the bound, a leader,
    // every client operation ended, and every live member at the same
    // applied index with the same state.
    if (report_.passed) {
      workload_->Stop();
      HealAll();
      const int64_t deadline = world_.now_us() + options_.liveness_us;
      uint64_t events = 0;
      std::string waiting;
      while (report_.passed && !Recovered(&waiting) && world_.now_us() < deadline &&
             events < kLivenessEventsMax && world_.Step()) {
        ++events;
        AfterEvent();
      }
      if (report_.passed && !Recovered(&waiting)) {
        std::string why_impossible;
        if (RecoveryImpossible(&why_impossible)) {
          // Not a bug: the fault model destroyed what recovery needs. The
          // operations still open are abandoned as a client would (their
          // writes may or may not have happened), and the history that
          // exists must still be linearizable.
          report_.recovery_impossible = true;
          report_.recovery_detail = why_impossible;
          Note("recovery_impossible", {}, JsonLine().Str("why", why_impossible));
          workload_->Abandon();
        } else {
          std::vector<std::string> stuck = workload_->InFlight();
          Fail(kNoNode, "liveness",
               absl::StrCat("not recovered ", options_.liveness_us / 1'000'000,
                            " s after every fault was healed: ", waiting,
                            "\n  stuck requests: ",
                            stuck.empty() ? "none" : absl::StrJoin(stuck, "; "),
                            "\n  cluster:\n", ClusterState()));
        }
      }
    }
    // Lines written between events (the liveness phase's notes) are read
    // here at the latest.
    FailOnTraceOrder();
    if (report_.passed) {
      report_.linearizability = CheckLinearizable(workload_->kv_history());
      if (report_.linearizability.verdict !=
          LinearizabilityResult::Verdict::kLinearizable) {
        Fail(kNoNode, "linearizability",
             absl::StrCat(VerdictName(report_.linearizability.verdict), ": ",
                          report_.linearizability.detail));
      }
    }

    report_.seed = options_.seed;
    report_.nodes = options_.nodes;
    report_.coverage_marks = ReadCoverageMarks();
    report_.planted_bug = ActivePlantedBug();
    report_.spares = static_cast<int>(spare_ids_.size());
    report_.virtual_us = world_.now_us();
    report_.events = world_.events_run();
    report_.messages_sent = network_.stats().sent;
    report_.messages_delivered = network_.stats().delivered;
    for (const auto& [id, node] : nodes_) report_.disk_writes += node.disk->completed_write_count();
    report_.entries_committed = checker_.committed_index().value();
    report_.clients = workload_->counts();
    report_.ops = workload_->recorded();
    report_.checks = checker_.checks() + scheduler_.checks() + log_time_.checks() +
                     executions_.checks() + invariant_checks_;
    for (const auto& [kind, count] : injector_->applied()) report_.faults[kind] += count;
    const SimNetworkStats& net = network_.stats();
    if (net.lost > 0) report_.faults["lost_packets"] = net.lost;
    if (net.duplicated > 0) report_.faults["duplicated_packets"] = net.duplicated;
    if (net.tail_delayed > 0) report_.faults["delayed_packets"] = net.tail_delayed;
    JsonLine result;
    result.Int("virtual_us", report_.virtual_us)
        .Uint("events", report_.events)
        .Uint("entries_committed", report_.entries_committed)
        .Uint("ops_ok", report_.clients.ok)
        .Uint("ops_failed", report_.clients.failed)
        .Uint("ops_unknown", report_.clients.unknown)
        .Uint("checks", report_.checks);
    if (!report_.passed) result.Str("violation", report_.failure);
    if (report_.recovery_impossible) result.Str("recovery_impossible", report_.recovery_detail);
    report_.trace_hash = trace_.Result(report_.passed, result);
    if (timeline_ != nullptr) {
      if (!report_.passed) timeline_->Violation(world_.now_us(), report_.failure);
      *options_.timeline << timeline_->Render(world_.now_us());
    }
    return report_;
  }

  // ClusterAccess.
  host::Host* HostFor(NodeId node) override {
    auto it = nodes_.find(node);
    if (it == nodes_.end() || world_.IsCrashed(node)) return nullptr;
    return it->second.host.get();
  }
  // Clients know every address, spares and removed members included: they
  // learn who leads from redirects, as real ones do.
  std::vector<NodeId> Nodes() const override { return all_ids_; }
  uint64_t KnownCommittedIndex() const override { return checker_.committed_index().value(); }

  // HostObserver.
  void OnRole(NodeId node, host::NodeRole role, Term term, NodeId leader) override {
    const absl::string_view name = host::NodeRoleName(role);
    trace_.Role(world_.now_us(), node, name, term);
    if (timeline_ != nullptr) timeline_->Role(world_.now_us(), node, name, term);
    if (role == host::NodeRole::kCandidate) ++report_.elections;
    const bool is_leader = role == host::NodeRole::kLeader;
    if (is_leader && leaders_seen_.insert({term, node}).second) ++report_.leader_changes;
    (void)leader;
    checker_.OnRole(node, is_leader, term);
  }
  void OnAppend(NodeId node, const std::vector<raft::Entry>& entries) override {
    std::vector<EntryDigest> digests;
    digests.reserve(entries.size());
    for (const raft::Entry& entry : entries) digests.push_back(Digest(entry));
    checker_.OnAppend(node, digests);
  }
  void OnSnapshot(NodeId node, Index index, Term term, bool installed) override {
    // The simulator knows what the node cannot: a partition is active.
    if (installed && network_.blocked_links() > 0) {
      COVERAGE_MARK(snapshot_installed_while_partitioned);
    }
    checker_.OnSnapshot(node, index, term, installed);
  }
  bool WantsDigests() const override { return true; }
  void OnSnapshotApplied(NodeId node, Index index, Term term, uint64_t digest) override {
    // Without this line a reader would see the applied index jump.
    trace_.Snapshot(world_.now_us(), node, index, term, digest);
  }
  void OnBoot(NodeId node, Term term, NodeId vote) override { checker_.OnBoot(node, term, vote); }
  void OnRecover(NodeId node, Index snapshot_index, Term snapshot_term,
                 const std::vector<raft::Entry>& entries) override {
    std::vector<EntryDigest> digests;
    for (const raft::Entry& entry : entries) digests.push_back(Digest(entry));
    checker_.OnRecover(node, snapshot_index, snapshot_term, digests);
  }
  void OnCommit(NodeId node, Index commit) override { checker_.OnCommit(node, commit); }
  void OnApply(NodeId node, const raft::Entry& entry) override {
    const EntryDigest digest = Digest(entry);
    trace_.Apply(world_.now_us(), node, digest.index, digest.term, digest.hash);
    checker_.OnApply(node, digest);
  }
  void OnStateApplied(NodeId node, Index index, const cluster::Command& command,
                      const ClusterStateMachine& state_machine) override {
    scheduler_.OnApplied(node, index, command, state_machine);
    // The clock model's bound so far (LogTimeChecker): the fastest drift any
    // clock ran at and every jump.
    int64_t drift_ppm_max = 0, jumped_us = 0;
    for (const auto& [id, n] : nodes_) {
      drift_ppm_max = std::max(drift_ppm_max, n.env->clock().drift_ppm_abs_max());
      jumped_us += n.env->clock().jumped_us();
    }
    log_time_.SetTime(world_.now_us(), drift_ppm_max, jumped_us);
    log_time_.OnApplied(node, index, command, state_machine);
  }
  void OnDigest(NodeId node, Index applied, uint64_t digest) override {
    checker_.OnDigest(node, applied, digest);
  }
  void OnAcknowledge(NodeId node, Index index, Term term) override {
    checker_.OnAcknowledge(node, index, term);
  }

  // WorkloadListener.
  void OnInvoke(uint64_t client, uint64_t op_id, absl::string_view op,
                const std::vector<std::pair<std::string, std::string>>& fields) override {
    std::string key;
    std::optional<std::string> value, expected;
    for (const auto& [name, field] : fields) {
      if (name == "key") key = field;
      if (name == "value") value = field;
      if (name == "expected") expected = field;
    }
    trace_.Invoke(world_.now_us(), client, op_id, op, key, value, expected);
    if (timeline_ != nullptr) timeline_->Invoke(world_.now_us(), client, op_id, op);
  }
  void OnComplete(uint64_t client, uint64_t op_id, absl::string_view status,
                  absl::string_view value) override {
    trace_.Complete(world_.now_us(), client, op_id, status,
                    value.empty() ? std::nullopt : std::optional<std::string>(value));
    if (timeline_ != nullptr) timeline_->Complete(world_.now_us(), client, op_id, status);
  }

 private:
  struct Node {
    std::unique_ptr<SimNodeEnv> env;
    std::unique_ptr<SimLogger> logger;
    std::unique_ptr<SimDisk> disk;
    std::unique_ptr<host::Host> host;
    // The last start was refused (the store did not open): the node stopped
    // itself. A restart (the schedule's, or the liveness phase's) tries
    // again; only `data_lost` counts toward recovery_impossible.
    bool refused = false;
    // The last refusal was DATA_LOSS (a torn or corrupt log): the store
    // will say so again, so the node can never run.
    bool data_lost = false;
    std::string refused_why;
  };

  // Writes node log lines to the simulation's log stream.
  class OstreamLogger final : public Logger {
   public:
    explicit OstreamLogger(std::ostream* out) : out_(out) {}
    bool Enabled(LogLevel level) const override { return level >= LogLevel::kInfo; }
    void Log(LogLevel level, absl::string_view message) override {
      *out_ << LogLevelName(level) << " " << message << "\n";
    }

   private:
    std::ostream* out_;
  };

  void BuildNode(NodeId id) {
    Node& node = nodes_[id];
    node.env = std::make_unique<SimNodeEnv>(&world_, &network_, id, SimNodeEnvOptions{});
    // Ground truth of what runs where, for the no-double-run oracle.
    node.env->executor().SetLiveObserver(
        [this](NodeId on, const WorkSpec& spec, bool live, bool survived_crash) {
          executions_.SetTime(world_.now_us());
          executions_.OnLive(on, spec, live, survived_crash);
        });
    node.logger = std::make_unique<SimLogger>(&world_, id, log_sink_.get());
    SimDiskOptions disk;
    disk.seed = world_.NodeStream(id, "disk").Next();
    disk.schedule = [this, id](uint64_t delay_us, std::function<void()> fn) {
      world_.ScheduleAfter(static_cast<int64_t>(delay_us), id, std::move(fn));
    };
    // A failed durable write is fatal: the node stops itself and restarts
    // when the schedule (or the liveness phase) says.
    disk.on_write_error = [this, id] { StopNode(id, "a durable write failed"); };
    node.disk = std::make_unique<SimDisk>(std::move(disk));
  }

  bool ApplyDiskFault(const Fault& fault) {
    if (fault.kind != FaultKind::kDiskWriteErrors && fault.kind != FaultKind::kDiskReadErrors) {
      return false;
    }
    bool applied = false;
    for (NodeId id : fault.nodes) {
      auto it = nodes_.find(id);
      if (it == nodes_.end()) continue;
      const uint64_t rate = static_cast<uint64_t>(std::max<int64_t>(fault.value, 0));
      if (fault.kind == FaultKind::kDiskWriteErrors) {
        it->second.disk->SetWriteErrorPerMillion(rate);
      } else {
        it->second.disk->SetReadErrorPerMillion(rate);
      }
      applied = true;
    }
    return applied;
  }

  host::HostOptions HostOptionsFor(NodeId id) {
    host::HostOptions o;
    o.id = id;
    // Spares are not named, so they start empty and wait to be added.
    o.initial_voters = node_ids_;
    o.cluster_id = (options_.seed << 1) | 1;
    o.initial_cluster_state =
        std::find(node_ids_.begin(), node_ids_.end(), id) != node_ids_.end()
            ? host::InitialClusterState::kNew
            : host::InitialClusterState::kExisting;
    o.tick_us = kTickUs;
    o.election_ticks = 10;
    o.heartbeat_ticks = 1;
    // Small enough that the simulator's snapshots (KiBs) stream in several
    // chunks; the swarm draws it per seed.
    o.snapshot_chunk_bytes = 1024;
    if (options_.swarm.has_value()) {
      o.election_ticks = options_.swarm->election_ticks;
      o.heartbeat_ticks = options_.swarm->heartbeat_ticks;
      o.max_size_per_msg = options_.swarm->max_size_per_msg;
      o.max_inflight_msgs = static_cast<size_t>(options_.swarm->max_inflight_msgs);
      o.snapshot_chunk_bytes = options_.swarm->snapshot_chunk_bytes;
    }
    o.raft_seed = nodes_[id].env->RaftRng(world_.epoch(id)).Next();
    o.snapshot_interval_entries = options_.snapshot_interval_entries;
    o.digest_interval_entries = 250;
    o.log_retain_entries = options_.log_retain_entries;
    cluster::RegisterWorker worker;
    worker.set_address(absl::StrCat("10.0.0.", id.value(), ":7000"));
    worker.mutable_capacity()->set_cpu_cores(8 + 4 * (id.value() % 3));
    worker.mutable_capacity()->set_memory_mb(16384 * (1 + id.value() % 2));
    worker.mutable_capacity()->set_disk_gb(200);
    if (id.value() % 2 == 1) worker.add_features("ssd");
    o.worker = worker;
    return o;
  }

  // Runs at the start of the run, and as the node's first event after each
  // restart (OnLifecycle), so the `restart` line is in the trace before the
  // lines of the replay.
  void StartHost(NodeId id) {
    Node& node = nodes_[id];
    node.host = std::make_unique<host::Host>(HostOptionsFor(id), node.env->MakeEnv(node.disk.get()),
                                             node.logger.get(), this);
    const absl::Status started = node.host->Start();
    node.refused = !started.ok();
    node.data_lost = absl::IsDataLoss(started);
    node.refused_why.clear();
    if (!started.ok()) {
      // The store did not open. A real node process exits; whether it can
      // ever run again is the store's to say at the next attempt (an
      // injected read error passes, a torn log stays torn).
      node.host.reset();
      node.refused_why = started.ToString();
      Note("refused_start", {id}, JsonLine().Str("error", started.ToString()));
      StopNode(id, absl::StrCat("refused to start: ", started.ToString()));
    }
  }

  // The node stops itself (the `stop` line says why): crashed in a world
  // event after the running one returns, never under its own Host's feet.
  // Nothing happens if something else took it down first (even if it was
  // restarted since: the new lifetime did not ask to stop).
  void StopNode(NodeId id, std::string why) {
    const uint64_t epoch = world_.epoch(id);
    world_.ScheduleAfter(0, kNoNode, [this, id, epoch, why = std::move(why)] {
      if (world_.epoch(id) != epoch || !world_.Crash(id)) return;
      trace_.Stop(world_.now_us(), id, why);
      if (timeline_ != nullptr) timeline_->Fault(world_.now_us(), "stop", {id});
    });
  }

  void OnLifecycle(NodeId node, LifecycleChange change) {
    Node& n = nodes_[node];
    switch (change) {
      case LifecycleChange::kCrash:
        n.host.reset();  // its memory is gone; callbacks die with it
        n.disk->Crash(/*tear=*/tear_rng_.Chance(1, 4));
        break;
      case LifecycleChange::kRestart:
        // The node's first event of its new epoch, not a call from inside
        // World::Restart: whoever restarted it (the fault injector, the
        // liveness phase) writes its `restart` line first.
        world_.ScheduleAfter(0, node, [this, node] { StartHost(node); });
        break;
      case LifecycleChange::kPause:
      case LifecycleChange::kResume:
        break;
    }
  }

  // Membership churn (SimulationOptions::membership_changes). Draws the
  // same numbers whatever happens, so the stream never shifts.
  void ScheduleMembershipChange() {
    const int64_t gap_us = static_cast<int64_t>(membership_rng_.Range(1'000'000, 5'000'000));
    const uint64_t pick = membership_rng_.Next();
    world_.ScheduleAfter(gap_us, kNoNode, [this, pick] {
      if (membership_stopped_) return;
      ChangeMembership(pick);
      ScheduleMembershipChange();
    });
  }

  void ChangeMembership(uint64_t pick) {
    host::Host* leader = nullptr;
    for (NodeId id : node_ids_) {
      host::Host* host = HostFor(id);
      if (host != nullptr && world_.IsUp(id) && host->is_leader()) {
        leader = host;
        break;
      }
    }
    if (leader == nullptr) return;
    const raft::ConfState config = leader->raw_node().GetStatus().config;
    if (config.voters_outgoing_size() > 0) return;  // joint: not one of ours
    raft::ConfChange change;
    raft::ConfChangeSingle* single = change.add_changes();
    if (config.learners_size() > 0) {
      single->set_type(raft::CONF_CHANGE_ADD_NODE);  // promote the learner back
      single->set_node_id(config.learners(0));
    } else if (config.voters_size() >= 3) {
      single->set_type(raft::CONF_CHANGE_ADD_LEARNER_NODE);  // demote a voter
      single->set_node_id(config.voters(static_cast<int>(
          pick % static_cast<uint64_t>(config.voters_size()))));
    } else {
      return;
    }
    if (leader->ProposeConfChange(change)) {
      Note("conf_change", {NodeId(single->node_id())},
           JsonLine().Str("change", single->type() == raft::CONF_CHANGE_ADD_NODE
                                        ? "promote"
                                        : "demote"));
    }
  }

  void Note(absl::string_view kind, const std::vector<NodeId>& nodes,
            const JsonLine& extra = {}) {
    ++report_.faults[std::string(kind)];
    trace_.Fault(world_.now_us(), kind, nodes, extra);
    if (timeline_ != nullptr) timeline_->Fault(world_.now_us(), kind, nodes);
  }

  void HealAll() {
    network_.Heal();
    network_.SetLossPerMillion(0);
    network_.SetDuplicatePerMillion(0);
    for (auto& [id, node] : nodes_) {
      node.disk->SetWriteErrorPerMillion(0);
      node.disk->SetReadErrorPerMillion(0);
    }
    Note("heal", all_ids_, JsonLine().Str("why", "liveness phase"));
    // Every crashed node restarts, those that stopped themselves included
    // (a failed write, a start refused by a transient error); its Host
    // starts in its first event, after this `restart` line.
    for (NodeId id : all_ids_) {
      if (world_.state(id) == NodeState::kPaused && world_.Resume(id)) Note("resume", {id});
      if (world_.IsCrashed(id) && world_.Restart(id)) Note("restart", {id});
    }
  }

  // The live Host that leads in the highest term (a deposed leader in a
  // minority can still think it leads an older one), or null.
  host::Host* CurrentLeader() {
    host::Host* best = nullptr;
    for (auto& [id, node] : nodes_) {
      host::Host* h = node.host.get();
      if (h == nullptr || !world_.IsUp(id) || !h->booted() || !h->is_leader()) continue;
      if (best == nullptr || h->term() > best->term()) best = h;
    }
    return best;
  }

  static std::vector<uint64_t> Members(const raft::ConfState& c) {
    std::set<uint64_t> all(c.voters().begin(), c.voters().end());
    all.insert(c.learners().begin(), c.learners().end());
    all.insert(c.voters_outgoing().begin(), c.voters_outgoing().end());
    all.insert(c.learners_next().begin(), c.learners_next().end());
    return std::vector<uint64_t>(all.begin(), all.end());
  }

  // Proposes `fault`'s membership change through the current leader, after
  // the checks a careful operator makes (etcd's strict reconfiguration
  // check): one change at a time, only changes that make sense in the
  // leader's configuration, a learner promoted only once it has caught up,
  // and no change that leaves the new voters without a quorum the leader
  // currently hears from. Anything else is skipped and traced with why.
  bool ApplyMembership(const Fault& fault) {
    const absl::string_view kind = FaultKindName(fault.kind);
    auto skip = [&](absl::string_view why) {
      ++report_.membership_skipped;
      trace_.Fault(world_.now_us(), "membership_skipped", fault.nodes,
                   JsonLine().Str("change", kind).Str("why", why));
      return false;
    };
    host::Host* leader = CurrentLeader();
    if (leader == nullptr) return skip("no leader");
    const raft::Status status = leader->raw_node().GetStatus();
    NodeId target = fault.kind == FaultKind::kRemoveLeader ? leader->id() : fault.nodes.front();
    if (nodes_.count(target) == 0) return skip("no such node");
    raft::ConfChange change;
    raft::ConfChangeSingle* single = change.add_changes();
    single->set_node_id(target.value());
    host::MemberChangeKind change_kind = host::MemberChangeKind::kAddLearner;
    switch (fault.kind) {
      case FaultKind::kAddLearner:
        change_kind = host::MemberChangeKind::kAddLearner;
        single->set_type(raft::CONF_CHANGE_ADD_LEARNER_NODE);
        break;
      case FaultKind::kPromote:
        change_kind = host::MemberChangeKind::kPromote;
        single->set_type(raft::CONF_CHANGE_ADD_NODE);
        break;
      case FaultKind::kRemove:
      case FaultKind::kRemoveLeader:
        change_kind = host::MemberChangeKind::kRemove;
        single->set_type(raft::CONF_CHANGE_REMOVE_NODE);
        break;
      default:
        CHECK(false) << kind;
    }
    const absl::Status allowed = host::CheckMemberChange(status, change_kind, target);
    if (!allowed.ok()) return skip(allowed.message());
    if (!leader->ProposeConfChange(change)) return skip("not accepted");
    ++report_.membership_proposed;
    return true;
  }

  std::string NodeState(NodeId id) {
    Node& node = nodes_[id];
    std::string out = absl::StrCat("    n", id.value(), ": ");
    if (node.data_lost) {
      return absl::StrCat(out, "down, its store lost data (", node.refused_why, ")");
    }
    if (world_.IsCrashed(id)) {
      if (!node.refused) return absl::StrCat(out, "crashed");
      return absl::StrCat(out, "crashed after refusing to start (", node.refused_why, ")");
    }
    host::Host* h = node.host.get();
    if (h == nullptr || !h->booted()) return absl::StrCat(out, "starting");
    const raft::Status st = h->raw_node().GetStatus();
    return absl::StrCat(out, world_.IsUp(id) ? "" : "paused ", raft::RoleName(st.role), " term ",
                        h->term().value(), " leader n", h->leader().value(), " commit ",
                        h->commit_index().value(), " applied ", h->applied_index().value(),
                        " config ", DescribeConf(st.config),
                        st.conf_change_pending ? " (change pending)" : "");
  }

  static std::string DescribeConf(const raft::ConfState& c) {
    std::string out = absl::StrCat("voters=", absl::StrJoin(c.voters(), ","));
    if (c.voters_outgoing_size() > 0) {
      absl::StrAppend(&out, "&", absl::StrJoin(c.voters_outgoing(), ","));
    }
    if (c.learners_size() > 0) absl::StrAppend(&out, " learners=", absl::StrJoin(c.learners(), ","));
    return out;
  }

  std::string ClusterState() {
    std::vector<std::string> lines;
    for (NodeId id : all_ids_) lines.push_back(NodeState(id));
    return absl::StrJoin(lines, "\n");
  }

  // The liveness goal: clients done, a leader, and every live member of
  // the leader's configuration applied to the leader's commit index with
  // one state digest. `waiting` says what is still missing.
  bool Recovered(std::string* waiting) {
    if (!workload_->idle()) {
      *waiting = "client requests pending";
      return false;
    }
    host::Host* leader = CurrentLeader();
    if (leader == nullptr) {
      *waiting = "no leader";
      return false;
    }
    const Index commit = leader->commit_index();
    std::vector<host::Host*> live;
    for (uint64_t m : Members(leader->raw_node().GetStatus().config)) {
      auto it = nodes_.find(NodeId(m));
      if (it == nodes_.end() || it->second.data_lost) continue;  // can never run
      host::Host* h = it->second.host.get();
      if (h == nullptr || !world_.IsUp(NodeId(m)) || h->applied_index() != commit) {
        *waiting = absl::StrCat("n", m, " has not applied the leader's commit index ",
                                commit.value());
        return false;
      }
      live.push_back(h);
    }
    if (commit != liveness_digest_index_) {
      liveness_digest_index_ = commit;
      const uint64_t digest = leader->state_machine().Digest();
      for (host::Host* h : live) {
        const uint64_t d = h->state_machine().Digest();
        if (d != digest) {
          Fail(h->id(), "state machine safety",
               absl::StrCat("after recovery n", h->id().value(), " has state digest ",
                            absl::Hex(d), " at applied index ", commit.value(),
                            " but leader n", leader->id().value(), " has ", absl::Hex(digest)));
          return false;
        }
      }
      ++invariant_checks_;
    }
    return true;
  }

  // Whether the liveness goal was out of reach under the fault model:
  // the newest configuration any runnable node knows has, in its incoming
  // or outgoing voters, no majority of nodes that can run (the others'
  // stores said DATA_LOSS at their last start). Every other node was
  // restarted by HealAll (a transient refusal, such as an injected read
  // error, is retried there, with the error rates healed), so without
  // data loss recovery is always possible and a stall is a bug.
  bool RecoveryImpossible(std::string* why) {
    const Node* newest = nullptr;
    NodeId newest_id;
    for (auto& [id, node] : nodes_) {
      if (node.host == nullptr || !node.host->booted()) continue;
      if (newest == nullptr || node.host->applied_index() > newest->host->applied_index()) {
        newest = &node;
        newest_id = id;
      }
    }
    std::set<NodeId> refused;
    for (const auto& [id, node] : nodes_) {
      if (node.data_lost) refused.insert(id);
    }
    if (newest == nullptr) {
      // Not one node runs: excused only if every store lost data.
      if (refused.size() < nodes_.size()) return false;
      *why = "no node can run: every store lost data";
      return true;
    }
    const raft::ConfState config = newest->host->raw_node().GetStatus().config;
    std::optional<std::string> lost = QuorumCannotRun(config, refused);
    if (!lost.has_value()) return false;
    *why = absl::StrCat(*lost, " (the configuration of n", newest_id.value(), ", applied ",
                        newest->host->applied_index().value(), ")");
    return true;
  }

  void RunPhase(int64_t until_us) {
    while (report_.passed) {
      if (!world_.Step()) break;
      if (world_.now_us() > until_us) break;
      AfterEvent();
    }
  }

  // A violation of the trace's own order (SimulationOptions::
  // check_trace_order) fails the run like any oracle.
  void FailOnTraceOrder() {
    if (options_.check_trace_order && !trace_order_.status().ok()) {
      Fail(kNoNode, "trace order", trace_order_.status().message());
    }
  }

  void AfterEvent() {
    checker_.SetTime(world_.now_us());
    FailOnTraceOrder();
    if (workload_ != nullptr && workload_->stale_read().has_value()) {
      Fail(kNoNode, "linearizable reads", *workload_->stale_read());
      return;
    }
    for (const std::optional<Violation>* v :
         {&checker_.violation(), &scheduler_.violation(), &log_time_.violation(),
          &executions_.violation()}) {
      if (v->has_value()) {
        Fail((*v)->node, (*v)->property, (*v)->detail);
        return;
      }
    }
    if (options_.extra_oracle) {
      SimulationProbe probe;
      probe.now_us = world_.now_us();
      probe.faults_applied = &injector_->applied();
      probe.ops_invoked = &workload_->recorded();
      if (std::optional<OracleFailure> failure = options_.extra_oracle(probe)) {
        Fail(kNoNode, failure->property, failure->detail);
        return;
      }
    }
    // Only the event's owner can have changed (the world's own events,
    // faults among them, can touch anyone).
    const NodeId owner = world_.current_event().owner;
    for (auto& [id, node] : nodes_) {
      if (!owner.is_none() && id != owner) continue;
      if (node.host != nullptr && world_.IsUp(id)) {
        // With expensive checks on, this includes the state machine's own
        // O(state) invariants whenever it changed (Host::CheckInvariants);
        // the scheduler oracle covers its promises on every apply
        // regardless.
        node.host->CheckInvariants();
        ++invariant_checks_;
      }
    }
  }

  void Fail(NodeId node, absl::string_view property, absl::string_view detail) {
    if (!report_.passed) return;
    report_.passed = false;
    report_.violation_property = PropertyId(property);
    report_.violation_us = world_.now_us();
    report_.failure = absl::StrCat(property, " violated at t=", world_.now_us(), " us",
                                   node.is_none() ? "" : absl::StrCat(" on n", node.value()),
                                   ": ", detail);
  }

  SimulationOptions options_;
  World world_;
  TraceWriter trace_;
  SimNetwork network_;
  std::vector<NodeId> node_ids_;   // initial voters
  std::vector<NodeId> spare_ids_;  // not members at the start
  std::vector<NodeId> all_ids_;    // both, sorted
  std::map<NodeId, Node> nodes_;
  // Liveness: the applied index whose digests were last compared (digests
  // serialize the whole state; compare once per index).
  Index liveness_digest_index_;
  std::unique_ptr<Workload> workload_;
  std::unique_ptr<Timeline> timeline_;
  SafetyChecker checker_;
  SchedulerChecker scheduler_;
  LogTimeChecker log_time_;
  ExecutionChecker executions_;
  TraceOrderChecker trace_order_;  // fed only with check_trace_order
  Rng tear_rng_ = world_.Stream("disk_tear");
  Rng membership_rng_ = world_.Stream("membership");
  bool membership_stopped_ = false;
  std::unique_ptr<Logger> log_sink_;
  std::unique_ptr<FaultInjector> injector_;
  std::set<std::pair<Term, NodeId>> leaders_seen_;
  uint64_t invariant_checks_ = 0;
  SimulationReport report_;
};

}  // namespace

SimulationReport RunSimulation(const SimulationOptions& options) {
  const SimulationOptions resolved = ResolveSwarm(options);
  CHECK_OK(resolved.Validate());
  // Marks count this run only (hits during construction included).
  ResetCoverageMarks();
  Simulation simulation(resolved);
  return simulation.Run();
}

}  // namespace blixard::sim
