#include "sim/simulation.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/check.h"
#include "core/base/logger.h"
#include "core/base/rng.h"
#include "core/host/host.h"
#include "core/proto/raft.pb.h"
#include "sim/checker/safety_checker.h"
#include "sim/checker/scheduler_checker.h"
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
  return absl::OkStatus();
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
        network_(&world_, SimNetworkOptions{}) {
    for (int i = 1; i <= options_.nodes; ++i) node_ids_.push_back(NodeId(static_cast<uint64_t>(i)));
    if (options_.timeline != nullptr) {
      timeline_ = std::make_unique<Timeline>(options_.seed, node_ids_);
    }
    for (NodeId id : node_ids_) world_.AddNode(id);
    world_.AddLifecycleListener(
        [this](NodeId node, LifecycleChange change) { OnLifecycle(node, change); });
    if (options_.log != nullptr) {
      log_sink_ = std::make_unique<OstreamLogger>(options_.log);
    } else {
      log_sink_ = std::make_unique<NullLogger>();
    }
    for (NodeId id : node_ids_) BuildNode(id);
  }

  SimulationReport Run() {
    trace_.Header(options_.seed, static_cast<uint64_t>(options_.nodes),
                  JsonLine()
                      .Int("duration_us", options_.duration_us)
                      .Str("faults", FaultProfileName(options_.faults))
                      .Str("workload", WorkloadKindName(options_.workload)));
    for (NodeId id : node_ids_) StartHost(id);

    WorkloadOptions workload_options;
    workload_options.kind = options_.workload;
    workload_ = std::make_unique<Workload>(&world_, this, this, workload_options);
    workload_->Start();

    FaultInjector::Targets targets;
    targets.world = &world_;
    targets.network = &network_;
    for (auto& [id, node] : nodes_) targets.clocks[id] = &node.env->clock();
    targets.trace = &trace_;
    targets.other = [this](const Fault& fault) { return ApplyDiskFault(fault); };
    injector_ = std::make_unique<FaultInjector>(std::move(targets));
    const FaultSchedule schedule =
        options_.schedule.has_value()
            ? *options_.schedule
            : GenerateFaultSchedule(world_.Stream("faults"), options_.faults, node_ids_,
                                    options_.duration_us, /*disk_faults=*/true);
    // Each fault is applied (counted and traced) by the injector, and drawn
    // on the timeline when it took effect. Schedule() would do the same
    // without the drawing; equal times still apply in list order.
    CHECK_OK(schedule.Validate());
    for (const Fault& fault : schedule.faults) {
      world_.Schedule(fault.at_us, kNoNode, [this, fault] {
        if (injector_->Apply(fault) && timeline_ != nullptr) {
          timeline_->Fault(world_.now_us(), FaultKindName(fault.kind), fault.nodes);
        }
      });
    }

    // Safety phase: faults at will, every check after every event.
    RunPhase(options_.duration_us);
    // Liveness phase: heal everything, then every client operation must end.
    if (report_.passed) {
      workload_->Stop();
      HealAll();
      const int64_t deadline = world_.now_us() + options_.liveness_us;
      uint64_t events = 0;
      while (report_.passed && !workload_->idle() && world_.now_us() < deadline &&
             events < kLivenessEventsMax && world_.Step()) {
        ++events;
        AfterEvent();
      }
      if (report_.passed && !workload_->idle()) {
        Fail(kNoNode, "liveness",
             absl::StrCat("client operations still pending ",
                          options_.liveness_us / 1'000'000,
                          " s after every fault was healed: ",
                          absl::StrJoin(workload_->InFlight(), "; ")));
      }
    }
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
    report_.virtual_us = world_.now_us();
    report_.events = world_.events_run();
    report_.messages_sent = network_.stats().sent;
    report_.messages_delivered = network_.stats().delivered;
    for (const auto& [id, node] : nodes_) report_.disk_writes += node.disk->completed_write_count();
    report_.entries_committed = checker_.committed_index().value();
    report_.clients = workload_->counts();
    report_.checks = checker_.checks() + scheduler_.checks() + invariant_checks_;
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
  std::vector<NodeId> Nodes() const override { return node_ids_; }

  // HostObserver.
  void OnRole(NodeId node, absl::string_view role, Term term, NodeId leader) override {
    trace_.Role(world_.now_us(), node, role, term);
    if (timeline_ != nullptr) timeline_->Role(world_.now_us(), node, role, term);
    if (role == "candidate") ++report_.elections;
    const bool is_leader = role == "leader";
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
    checker_.OnSnapshot(node, index, term, installed);
    if (installed) scheduler_.OnRecover(node);  // its state was replaced
  }
  void OnRecover(NodeId node, Index snapshot_index, Term snapshot_term,
                 const std::vector<raft::Entry>& entries) override {
    std::vector<EntryDigest> digests;
    for (const raft::Entry& entry : entries) digests.push_back(Digest(entry));
    checker_.OnRecover(node, snapshot_index, snapshot_term, digests);
    scheduler_.OnRecover(node);
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
    Index checked_applied;
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
    node.logger = std::make_unique<SimLogger>(&world_, id, log_sink_.get());
    SimDiskOptions disk;
    disk.seed = world_.NodeStream(id, "disk").Next();
    disk.schedule = [this, id](uint64_t delay_us, std::function<void()> fn) {
      world_.ScheduleAfter(static_cast<int64_t>(delay_us), id, std::move(fn));
    };
    // A failed durable write is fatal: the node crashes (from a world event,
    // never under its own Host's feet) and restarts when the schedule says.
    disk.on_write_error = [this, id] { world_.ScheduleCrash(id); };
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
    o.initial_voters = node_ids_;
    o.tick_us = kTickUs;
    o.election_ticks = 10;
    o.heartbeat_ticks = 1;
    o.raft_seed = nodes_[id].env->RaftRng(world_.epoch(id)).Next();
    o.snapshot_interval_entries = 500;
    o.digest_interval_entries = 250;
    o.log_retain_entries = 100;
    cluster::RegisterWorker worker;
    worker.set_address(absl::StrCat("10.0.0.", id.value(), ":7000"));
    worker.mutable_capacity()->set_cpu_cores(8 + 4 * (id.value() % 3));
    worker.mutable_capacity()->set_memory_mb(16384 * (1 + id.value() % 2));
    worker.mutable_capacity()->set_disk_gb(200);
    if (id.value() % 2 == 1) worker.add_features("ssd");
    o.worker = worker;
    return o;
  }

  void StartHost(NodeId id) {
    Node& node = nodes_[id];
    node.host = std::make_unique<host::Host>(HostOptionsFor(id), node.env->MakeEnv(node.disk.get()),
                                             node.logger.get(), this);
    node.checked_applied = Index(0);
    const absl::Status started = node.host->Start();
    if (!started.ok()) {
      // The store refused to open (a torn or corrupt log reported as
      // DATA_LOSS): the node stays down, as a real one would.
      node.host.reset();
      Note("refused_start", {id}, JsonLine().Str("error", started.ToString()));
    }
  }

  void OnLifecycle(NodeId node, LifecycleChange change) {
    Node& n = nodes_[node];
    switch (change) {
      case LifecycleChange::kCrash:
        n.host.reset();  // its memory is gone; callbacks die with it
        n.disk->Crash(/*tear=*/tear_rng_.Chance(1, 4));
        break;
      case LifecycleChange::kRestart:
        StartHost(node);
        break;
      case LifecycleChange::kPause:
      case LifecycleChange::kResume:
        break;
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
    Note("heal", node_ids_, JsonLine().Str("why", "liveness phase"));
    for (NodeId id : node_ids_) {
      if (world_.state(id) == NodeState::kPaused && world_.Resume(id)) Note("resume", {id});
      if (world_.IsCrashed(id) && world_.Restart(id)) Note("restart", {id});
    }
  }

  void RunPhase(int64_t until_us) {
    while (report_.passed) {
      if (!world_.Step()) break;
      if (world_.now_us() > until_us) break;
      AfterEvent();
    }
  }

  void AfterEvent() {
    checker_.SetTime(world_.now_us());
    for (const std::optional<Violation>* v : {&checker_.violation(), &scheduler_.violation()}) {
      if (v->has_value()) {
        Fail((*v)->node, (*v)->property, (*v)->detail);
        return;
      }
    }
    // Only the event's owner can have changed (the world's own events,
    // faults among them, can touch anyone).
    const NodeId owner = world_.current_event().owner;
    for (auto& [id, node] : nodes_) {
      if (!owner.is_none() && id != owner) continue;
      if (node.host != nullptr && world_.IsUp(id)) {
        node.host->CheckInvariants();
        ++invariant_checks_;
        // The state machine's own O(state) invariants (derived indexes
        // agree, backfill complete) where expensive checks are on; the
        // scheduler oracle covers its promises on every apply regardless.
        if (kExpensiveChecks && node.host->applied_index() != node.checked_applied) {
          node.checked_applied = node.host->applied_index();
          node.host->state_machine().CheckInvariants();
          ++invariant_checks_;
        }
      }
    }
  }

  void Fail(NodeId node, absl::string_view property, absl::string_view detail) {
    if (!report_.passed) return;
    report_.passed = false;
    report_.failure = absl::StrCat(property, " violated at t=", world_.now_us(), " us",
                                   node.is_none() ? "" : absl::StrCat(" on n", node.value()),
                                   ": ", detail);
  }

  SimulationOptions options_;
  World world_;
  TraceWriter trace_;
  SimNetwork network_;
  std::vector<NodeId> node_ids_;
  std::map<NodeId, Node> nodes_;
  std::unique_ptr<Workload> workload_;
  std::unique_ptr<Timeline> timeline_;
  SafetyChecker checker_;
  SchedulerChecker scheduler_;
  Rng tear_rng_ = world_.Stream("disk_tear");
  std::unique_ptr<Logger> log_sink_;
  std::unique_ptr<FaultInjector> injector_;
  std::set<std::pair<Term, NodeId>> leaders_seen_;
  uint64_t invariant_checks_ = 0;
  SimulationReport report_;
};

}  // namespace

SimulationReport RunSimulation(const SimulationOptions& options) {
  CHECK_OK(options.Validate());
  Simulation simulation(options);
  return simulation.Run();
}

}  // namespace blixard::sim
