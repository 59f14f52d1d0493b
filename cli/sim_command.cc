#include "cli/sim_command.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/sim_sweep.h"
#include "core/base/coverage_mark.h"
#include "core/base/planted_bug.h"
#include "sim/shrink.h"
#include "sim/sim_scenario.h"
#include "sim/simulation.h"

// The flags of `blixard sim`: `sim_` prefixes their names in absl's registry
// only; the user types --seed (cli/command.h, SimCommand() below).
ABSL_FLAG(uint64_t, sim_seed, 1, "root seed of the run; the same seed replays it exactly");
ABSL_FLAG(int, sim_nodes, 5, "cluster size (1-9)");
ABSL_FLAG(absl::Duration, sim_duration, absl::Seconds(60),
          "virtual time of the fault phase, e.g. 60s or 2m");
ABSL_FLAG(absl::Duration, sim_liveness, absl::Seconds(30),
          "after the fault phase, the bound within which every client operation must finish");
ABSL_FLAG(std::string, sim_faults, "default",
          "fault profile: none, default, heavy or swarm (cluster, Raft timing, network, "
          "fault mix, membership changes and workload drawn per seed)");
ABSL_FLAG(std::string, sim_swarm_params, "",
          "with --faults=swarm: run these params (the one-line key=value form a swarm run "
          "prints) instead of drawing them from the seed");
ABSL_FLAG(std::string, sim_workload, "mixed",
          "client workload: kv, cluster, mixed or kv_reads (90% reads)");
ABSL_FLAG(std::string, sim_trace, "", "write the JSON-lines trace to this file");
ABSL_FLAG(std::string, sim_timeline, "", "draw the run as one self-contained HTML file");
ABSL_FLAG(bool, sim_verbose, false, "print every node's log lines (virtual time first)");
ABSL_FLAG(std::string, sim_seeds, "",
          "run a sweep of seeds A-B (e.g. 1-2000) instead of one seed; see --jobs");
ABSL_FLAG(int, sim_jobs, 2, "worker processes for --seeds (1-256)");
ABSL_FLAG(bool, sim_membership_changes, false,
          "churn membership in the fault phase: demote a voter to learner, promote it back");
ABSL_FLAG(uint64_t, sim_snapshot_interval, 500,
          "entries each node applies between its snapshots (> 0)");
ABSL_FLAG(uint64_t, sim_log_retain, 100, "entries each node keeps below its snapshot");
ABSL_FLAG(bool, sim_check_trace_order, false,
          "read the run's own trace with the independent trace-order reader (sim/TRACE.md: "
          "per node, apply indexes consecutive within a lifetime or after a snapshot line) "
          "and fail the run on the first line out of order");
ABSL_FLAG(bool, sim_check_determinism, false,
          "run the seed twice and report the first event where the traces differ");
ABSL_FLAG(bool, sim_shrink, false,
          "if the run fails, shrink it (fewer faults, ops, nodes, a shorter run) while the same "
          "property is violated, and write it as a regression script");
ABSL_FLAG(std::string, sim_shrink_out, "",
          "where --shrink writes the script (default testdata/regress/<property>-seed<S>.txt "
          "in the workspace)");
ABSL_FLAG(int, sim_shrink_runs, blixard::sim::kShrinkRunsDefault,
          "--shrink's budget of simulation runs (2-100000)");
ABSL_FLAG(std::string, sim_record_script, "",
          "write this run, faults and client operations made explicit, as a regression script "
          "(whatever its outcome)");

namespace blixard::cli {
namespace {

std::string ReplayFlags(const sim::SimulationOptions& o) {
  const std::string duration = absl::FormatDuration(absl::Microseconds(o.duration_us));
  std::string flags;
  if (o.faults == sim::FaultProfile::kSwarm) {
    // Params drawn from the seed replay from the seed; explicit ones must
    // be repeated. Nodes and workload are the params'.
    flags = absl::StrCat("--duration=", duration, " --faults=swarm");
    const std::string params = absl::GetFlag(FLAGS_sim_swarm_params);
    if (!params.empty()) absl::StrAppend(&flags, " --swarm_params='", params, "'");
  } else {
    flags = absl::StrCat("--nodes=", o.nodes, " --duration=", duration,
                         " --faults=", sim::FaultProfileName(o.faults),
                         " --workload=", sim::WorkloadKindName(o.workload));
  }
  // Options off their defaults only, so existing replay lines stay short.
  const sim::SimulationOptions defaults;
  if (o.membership_changes) absl::StrAppend(&flags, " --membership_changes");
  if (o.snapshot_interval_entries != defaults.snapshot_interval_entries) {
    absl::StrAppend(&flags, " --snapshot_interval=", o.snapshot_interval_entries);
  }
  if (o.log_retain_entries != defaults.log_retain_entries) {
    absl::StrAppend(&flags, " --log_retain=", o.log_retain_entries);
  }
  if (o.liveness_us != sim::SimulationOptions().liveness_us) {
    absl::StrAppend(&flags, " --liveness=",
                    absl::FormatDuration(absl::Microseconds(o.liveness_us)));
  }
  return flags;
}

std::string ReplayLine(const sim::SimulationOptions& o) {
  return absl::StrCat("blixard sim --seed=", o.seed, " ", ReplayFlags(o));
}

// Runs the seed twice; prints the first trace line where they differ.
int CheckDeterminism(sim::SimulationOptions options) {
  std::ostringstream first, second;
  options.trace = &first;
  const sim::SimulationReport a = sim::RunSimulation(options);
  options.trace = &second;
  const sim::SimulationReport b = sim::RunSimulation(options);
  std::istringstream lines_a(first.str()), lines_b(second.str());
  std::string line_a, line_b;
  for (uint64_t n = 1;; ++n) {
    const bool more_a = static_cast<bool>(std::getline(lines_a, line_a));
    const bool more_b = static_cast<bool>(std::getline(lines_b, line_b));
    if (!more_a && !more_b) break;
    if (more_a != more_b || line_a != line_b) {
      std::printf("NOT deterministic: seed %llu diverges at trace line %llu\n  first run:  %s\n  second run: %s\n",
                  static_cast<unsigned long long>(options.seed),
                  static_cast<unsigned long long>(n), more_a ? line_a.c_str() : "<end>",
                  more_b ? line_b.c_str() : "<end>");
      return kExitFailure;
    }
  }
  std::printf("deterministic: seed %llu ran twice with %llu events, trace hash %016llx both times\n",
              static_cast<unsigned long long>(options.seed),
              static_cast<unsigned long long>(a.events),
              static_cast<unsigned long long>(a.trace_hash));
  return a.trace_hash == b.trace_hash ? kExitOk : kExitFailure;
}

// A relative path is taken from the workspace under `bazel run` (which
// runs the binary elsewhere and says where the workspace is), else from the
// current directory.
std::string InWorkspace(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (workspace == nullptr || *workspace == '\0') return path;
  return absl::StrCat(workspace, "/", path);
}

int WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "blixard sim: cannot write '%s'\n", path.c_str());
    return kExitUsage;
  }
  return kExitOk;
}

// Writes an explicit run as a script; kExitOk or an error exit code.
int WriteScript(const sim::SimulationOptions& options, const std::vector<std::string>& header,
                const std::string& path) {
  absl::StatusOr<std::string> text = sim::WriteSimScript(options, header);
  if (!text.ok()) {
    std::fprintf(stderr, "blixard sim: cannot write the script: %s\n",
                 std::string(text.status().message()).c_str());
    return kExitFailure;
  }
  return WriteText(path, *text);
}

// --record_script: the run made explicit, as a script.
int RecordScript(const sim::SimulationOptions& options, const std::string& path) {
  const sim::SimulationReport report = sim::RunSimulation(options);
  sim::SimulationOptions explicit_run = options;
  explicit_run.schedule = report.schedule;
  explicit_run.ops = report.ops;
  const std::string out = InWorkspace(path);
  const int code = WriteScript(
      explicit_run,
      {absl::StrCat("Recorded by `", ReplayLine(options), " --record_script=...`: the run's ",
                    report.schedule.faults.size(), " faults and ", report.ops.size(),
                    " client operations made explicit."),
       report.passed ? "The run passed; the script keeps it passing."
                     : absl::StrCat("Violation: ", report.failure)},
      out);
  if (code != kExitOk) return code;
  std::printf("%s: recorded %zu faults and %zu client ops; wrote %s\n",
              report.passed ? "passed" : "FAILED", report.schedule.faults.size(),
              report.ops.size(), out.c_str());
  return report.passed ? kExitOk : kExitFailure;
}

// --shrink: run; on a failure shrink it and write the regression script.
int ShrinkRun(const sim::SimulationOptions& options) {
  const int runs_max = absl::GetFlag(FLAGS_sim_shrink_runs);
  if (runs_max < 2 || runs_max > 100'000) {
    std::fprintf(stderr, "blixard sim: --shrink_runs must be in [2, 100000]\n");
    return kExitUsage;
  }
  sim::ShrinkOptions shrink;
  shrink.runs_max = runs_max;
  shrink.progress = [](const std::string& line) { std::printf("  %s\n", line.c_str()); };
  std::printf("running seed %llu\n", static_cast<unsigned long long>(options.seed));
  const sim::ShrinkResult result = sim::Shrink(options, shrink);
  if (!result.failed) {
    std::printf("seed %llu passed: nothing to shrink\n",
                static_cast<unsigned long long>(options.seed));
    return kExitOk;
  }
  std::printf("violation        %s\n", result.original_report.failure.c_str());
  if (!result.reproduced) {
    std::printf("the explicit replay of the recorded faults and client operations did not fail "
                "the same way (%s): a determinism bug; not shrunk\n",
                result.shrunk_report.passed ? "it passed"
                                            : result.shrunk_report.violation_property.c_str());
    return kExitFailure;
  }
  std::printf("before           %s\n", result.before.ToString().c_str());
  std::printf("after            %s\n", result.after.ToString().c_str());
  std::printf("runs             %d%s\n", result.runs,
              result.budget_exhausted ? " (budget spent: maybe not minimal; see --shrink_runs)"
                                      : "");
  std::printf("shrunk violation %s\n", result.shrunk_report.failure.c_str());
  std::string path = absl::GetFlag(FLAGS_sim_shrink_out);
  if (path.empty()) {
    path = absl::StrCat("testdata/regress/", result.property, "-seed", options.seed, ".txt");
  }
  path = InWorkspace(path);
  const int code = WriteScript(
      result.shrunk,
      {absl::StrCat("Found by `", ReplayLine(options), "` and shrunk by --shrink in ",
                    result.runs, " runs", result.budget_exhausted ? " (budget spent)" : "", "."),
       absl::StrCat("Property: ", result.property, ". Original violation: ",
                    result.original_report.failure),
       absl::StrCat("Before: ", result.before.ToString(), ". After: ", result.after.ToString(),
                    ".")},
      path);
  if (code != kExitOk) return code;
  std::printf("wrote            %s (replayed by bazel test //sim:regress_test)\n", path.c_str());
  return kExitFailure;
}

int RunSim(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "blixard sim: unexpected argument '%s'\n", args[0].c_str());
    return kExitUsage;
  }
  sim::SimulationOptions options;
  options.seed = absl::GetFlag(FLAGS_sim_seed);
  options.nodes = absl::GetFlag(FLAGS_sim_nodes);
  const absl::Duration duration = absl::GetFlag(FLAGS_sim_duration);
  options.duration_us = absl::ToInt64Microseconds(duration);
  options.membership_changes = absl::GetFlag(FLAGS_sim_membership_changes);
  options.check_trace_order = absl::GetFlag(FLAGS_sim_check_trace_order);
  options.snapshot_interval_entries = absl::GetFlag(FLAGS_sim_snapshot_interval);
  options.log_retain_entries = absl::GetFlag(FLAGS_sim_log_retain);
  options.liveness_us = absl::ToInt64Microseconds(absl::GetFlag(FLAGS_sim_liveness));
  absl::StatusOr<sim::FaultProfile> faults =
      sim::ParseFaultProfile(absl::GetFlag(FLAGS_sim_faults));
  absl::StatusOr<sim::WorkloadKind> workload =
      sim::ParseWorkloadKind(absl::GetFlag(FLAGS_sim_workload));
  absl::Status valid = !faults.ok()     ? faults.status()
                       : !workload.ok() ? workload.status()
                                        : absl::OkStatus();
  if (valid.ok()) {
    options.faults = *faults;
    options.workload = *workload;
    const std::string params = absl::GetFlag(FLAGS_sim_swarm_params);
    if (!params.empty()) {
      absl::StatusOr<sim::SwarmParams> swarm = sim::SwarmParams::Parse(params);
      if (!swarm.ok()) {
        valid = swarm.status();
      } else if (options.faults != sim::FaultProfile::kSwarm) {
        valid = absl::InvalidArgumentError("--swarm_params needs --faults=swarm");
      } else {
        options.swarm = *swarm;
      }
    }
  }
  if (valid.ok()) valid = options.Validate();
  if (!valid.ok()) {
    std::fprintf(stderr, "blixard sim: %s\n", std::string(valid.message()).c_str());
    return kExitUsage;
  }
  const std::string seeds = absl::GetFlag(FLAGS_sim_seeds);
  const bool shrink = absl::GetFlag(FLAGS_sim_shrink);
  const std::string record = absl::GetFlag(FLAGS_sim_record_script);
  if ((shrink || !record.empty()) &&
      (!seeds.empty() || absl::GetFlag(FLAGS_sim_check_determinism))) {
    std::fprintf(stderr,
                 "blixard sim: --shrink and --record_script take one --seed, not --seeds or "
                 "--check_determinism\n");
    return kExitUsage;
  }
  if (shrink && !record.empty()) {
    std::fprintf(stderr, "blixard sim: --shrink writes its script to --shrink_out, not "
                         "--record_script\n");
    return kExitUsage;
  }
  if (shrink) return ShrinkRun(options);
  if (!record.empty()) return RecordScript(options, record);
  if (!seeds.empty()) {
    SweepOptions sweep;
    const absl::Status range = ParseSeedRange(seeds, &sweep.first_seed, &sweep.last_seed);
    const int jobs = absl::GetFlag(FLAGS_sim_jobs);
    if (!range.ok() || jobs < 1 || jobs > 256) {
      std::fprintf(stderr, "blixard sim: %s\n",
                   range.ok() ? "--jobs must be in [1, 256]"
                              : std::string(range.message()).c_str());
      return kExitUsage;
    }
    sweep.jobs = jobs;
    sweep.base = options;  // swarm params, unless explicit, are drawn per seed
    sweep.replay_flags = ReplayFlags(options);
    return RunSweep(sweep);
  }
  // Swarm: the drawn world is printed before anything runs, so even a run
  // that crashes has said what it was.
  options = sim::ResolveSwarm(options);
  if (options.swarm.has_value()) {
    std::printf("swarm            %s\n", options.swarm->ToText().c_str());
    std::fflush(stdout);
  }
  if (absl::GetFlag(FLAGS_sim_check_determinism)) return CheckDeterminism(options);

  std::unique_ptr<std::ofstream> trace;
  const std::string trace_path = absl::GetFlag(FLAGS_sim_trace);
  if (!trace_path.empty()) {
    trace = std::make_unique<std::ofstream>(trace_path, std::ios::binary | std::ios::trunc);
    if (!*trace) {
      std::fprintf(stderr, "blixard sim: cannot write trace file '%s'\n", trace_path.c_str());
      return kExitUsage;
    }
    options.trace = trace.get();
  }
  std::unique_ptr<std::ofstream> timeline;
  const std::string timeline_path = absl::GetFlag(FLAGS_sim_timeline);
  if (!timeline_path.empty()) {
    timeline = std::make_unique<std::ofstream>(timeline_path, std::ios::trunc);
    if (!*timeline) {
      std::fprintf(stderr, "blixard sim: cannot write timeline file '%s'\n",
                   timeline_path.c_str());
      return kExitUsage;
    }
    options.timeline = timeline.get();
  }
  if (absl::GetFlag(FLAGS_sim_verbose)) options.log = &std::cerr;

  const absl::Time start = absl::Now();
  const sim::SimulationReport report = sim::RunSimulation(options);
  const double wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  const double virtual_s = static_cast<double>(report.virtual_us) / 1e6;

  std::string faults_line;
  for (const auto& [kind, count] : report.faults) {
    absl::StrAppend(&faults_line, faults_line.empty() ? "" : ", ", kind, " ", count);
  }
  std::string out;
  absl::StrAppendFormat(&out, "seed             %d\n", report.seed);
  if (report.planted_bug != PlantedBug::kNone) {
    // A failure here is expected: the build carries a known bug (issue 7).
    absl::StrAppendFormat(&out, "planted bug      %s (built with --define=planted_bug=%s)\n",
                          PlantedBugName(report.planted_bug),
                          PlantedBugName(report.planted_bug));
  }
  absl::StrAppendFormat(&out, "nodes            %d voters at the start, %d spares\n",
                        report.nodes, report.spares);
  absl::StrAppendFormat(&out, "virtual time     %.3f s\n", virtual_s);
  absl::StrAppendFormat(&out, "events           %d (%d messages sent, %d delivered; %d disk writes)\n",
                        report.events, report.messages_sent, report.messages_delivered,
                        report.disk_writes);
  absl::StrAppendFormat(&out, "elections        %d campaigns, %d leaders\n",
                        report.elections, report.leader_changes);
  absl::StrAppendFormat(&out, "entries          %d committed\n", report.entries_committed);
  absl::StrAppendFormat(&out, "client ops       %d ok, %d failed, %d indeterminate (of %d; %d attempts, %d redirects, %d timeouts)\n",
                        report.clients.ok, report.clients.failed, report.clients.unknown,
                        report.clients.invoked, report.clients.attempts,
                        report.clients.redirects, report.clients.timeouts);
  absl::StrAppendFormat(&out, "faults           %s\n", faults_line.empty() ? "none" : faults_line);
  absl::StrAppendFormat(&out, "membership       %d changes proposed, %d skipped\n",
                        report.membership_proposed, report.membership_skipped);
  absl::StrAppendFormat(&out, "checks           %d\n", report.checks);
  absl::StrAppendFormat(&out, "linearizability  %s (%d keys, %d operations)\n",
                        sim::VerdictName(report.linearizability.verdict),
                        report.linearizability.keys_checked,
                        report.linearizability.operations_checked);
  absl::StrAppendFormat(&out, "wall time        %.3f s (virtual:wall %.0fx, %.0f events/s)\n",
                        wall_s, wall_s > 0 ? virtual_s / wall_s : 0.0,
                        wall_s > 0 ? static_cast<double>(report.events) / wall_s : 0.0);
  if (absl::GetFlag(FLAGS_sim_verbose)) {
    // Rare paths this run reached (core/base/coverage_mark.h), zeros too.
    for (size_t i = 0; i < kCoverageMarkCount; ++i) {
      absl::StrAppendFormat(&out, "%-16s %-38s %d\n", i == 0 ? "coverage marks" : "",
                            CoverageMarkName(CoverageMarkAt(i)), report.coverage_marks[i]);
    }
  }
  absl::StrAppendFormat(&out, "trace hash       %016x\n", report.trace_hash);
  absl::StrAppendFormat(&out, "result           %s\n",
                        !report.passed              ? "FAIL"
                        : report.recovery_impossible ? "RECOVERY IMPOSSIBLE (not a violation)"
                                                     : "PASS");
  if (report.recovery_impossible) {
    absl::StrAppendFormat(&out, "why              %s\n", report.recovery_detail);
  }
  std::fputs(out.c_str(), stdout);
  if (!report.passed) {
    std::printf("violation        %s\nproperty         %s\nreplay           %s%s\n"
                "shrink           %s --shrink\n",
                report.failure.c_str(), report.violation_property.c_str(),
                ReplayLine(options).c_str(),
                report.planted_bug == PlantedBug::kNone
                    ? ""
                    : absl::StrCat("  (build with --define=planted_bug=",
                                   PlantedBugName(report.planted_bug), ")")
                          .c_str(),
                ReplayLine(options).c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

const Command& SimCommand() {
  static const Command* const command =
      new Command{"sim",
                  "run a seeded simulation of a faulty cluster and check it",
                  "",
                  {
                      BindFlag("seed", FLAGS_sim_seed),
                      BindFlag("nodes", FLAGS_sim_nodes),
                      BindFlag("duration", FLAGS_sim_duration),
                      BindFlag("liveness", FLAGS_sim_liveness),
                      BindFlag("faults", FLAGS_sim_faults),
                      BindFlag("workload", FLAGS_sim_workload),
                      BindFlag("trace", FLAGS_sim_trace),
                      BindFlag("timeline", FLAGS_sim_timeline),
                      BindFlag("verbose", FLAGS_sim_verbose),
                      BindFlag("seeds", FLAGS_sim_seeds),
                      BindFlag("jobs", FLAGS_sim_jobs),
                      BindFlag("check_determinism", FLAGS_sim_check_determinism),
                      BindFlag("check_trace_order", FLAGS_sim_check_trace_order),
                      BindFlag("shrink", FLAGS_sim_shrink),
                      BindFlag("shrink_out", FLAGS_sim_shrink_out),
                      BindFlag("shrink_runs", FLAGS_sim_shrink_runs),
                      BindFlag("record_script", FLAGS_sim_record_script),
                      BindFlag("swarm_params", FLAGS_sim_swarm_params),
                      BindFlag("membership_changes", FLAGS_sim_membership_changes),
                      BindFlag("snapshot_interval", FLAGS_sim_snapshot_interval),
                      BindFlag("log_retain", FLAGS_sim_log_retain),
                  },
                  &RunSim};
  return *command;
}

}  // namespace blixard::cli
