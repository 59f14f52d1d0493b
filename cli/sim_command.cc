// `blixard sim`: one seeded simulation of a faulty cluster (sim/simulation.h),
// with a summary a person can read and a replay line for a failure.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "sim/simulation.h"

ABSL_FLAG(uint64_t, seed, 1, "root seed of the run; the same seed replays it exactly");
ABSL_FLAG(int, nodes, 5, "cluster size (1-9)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(60),
          "virtual time of the fault phase, e.g. 60s or 2m");
ABSL_FLAG(std::string, faults, "default", "fault profile: none, default or heavy");
ABSL_FLAG(std::string, workload, "mixed", "client workload: kv, cluster or mixed");
ABSL_FLAG(std::string, trace, "", "write the JSON-lines trace to this file");
ABSL_FLAG(std::string, timeline, "", "draw the run as one self-contained HTML file");
ABSL_FLAG(bool, verbose, false, "print every node's log lines (virtual time first)");

namespace blixard::cli {
namespace {

std::string ReplayLine(const sim::SimulationOptions& o) {
  return absl::StrCat("blixard sim --seed=", o.seed, " --nodes=", o.nodes,
                      " --duration=", absl::FormatDuration(absl::Microseconds(o.duration_us)),
                      " --faults=", sim::FaultProfileName(o.faults),
                      " --workload=", sim::WorkloadKindName(o.workload));
}

}  // namespace

int RunSim(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "blixard sim: unexpected argument '%s'\n", args[0].c_str());
    return kExitUsage;
  }
  sim::SimulationOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.nodes = absl::GetFlag(FLAGS_nodes);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  options.duration_us = absl::ToInt64Microseconds(duration);
  absl::StatusOr<sim::FaultProfile> faults = sim::ParseFaultProfile(absl::GetFlag(FLAGS_faults));
  absl::StatusOr<sim::WorkloadKind> workload =
      sim::ParseWorkloadKind(absl::GetFlag(FLAGS_workload));
  absl::Status valid = !faults.ok()     ? faults.status()
                       : !workload.ok() ? workload.status()
                                        : absl::OkStatus();
  if (valid.ok()) {
    options.faults = *faults;
    options.workload = *workload;
    valid = options.Validate();
  }
  if (!valid.ok()) {
    std::fprintf(stderr, "blixard sim: %s\n", std::string(valid.message()).c_str());
    return kExitUsage;
  }
  std::unique_ptr<std::ofstream> trace;
  const std::string trace_path = absl::GetFlag(FLAGS_trace);
  if (!trace_path.empty()) {
    trace = std::make_unique<std::ofstream>(trace_path, std::ios::binary | std::ios::trunc);
    if (!*trace) {
      std::fprintf(stderr, "blixard sim: cannot write trace file '%s'\n", trace_path.c_str());
      return kExitUsage;
    }
    options.trace = trace.get();
  }
  std::unique_ptr<std::ofstream> timeline;
  const std::string timeline_path = absl::GetFlag(FLAGS_timeline);
  if (!timeline_path.empty()) {
    timeline = std::make_unique<std::ofstream>(timeline_path, std::ios::trunc);
    if (!*timeline) {
      std::fprintf(stderr, "blixard sim: cannot write timeline file '%s'\n",
                   timeline_path.c_str());
      return kExitUsage;
    }
    options.timeline = timeline.get();
  }
  if (absl::GetFlag(FLAGS_verbose)) options.log = &std::cerr;

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
  absl::StrAppendFormat(&out, "nodes            %d\n", report.nodes);
  absl::StrAppendFormat(&out, "virtual time     %.3f s\n", virtual_s);
  absl::StrAppendFormat(&out, "events           %d\n", report.events);
  absl::StrAppendFormat(&out, "elections        %d campaigns, %d leaders\n",
                        report.elections, report.leader_changes);
  absl::StrAppendFormat(&out, "entries          %d committed\n", report.entries_committed);
  absl::StrAppendFormat(&out, "client ops       %d ok, %d failed, %d indeterminate (of %d; %d attempts, %d redirects, %d timeouts)\n",
                        report.clients.ok, report.clients.failed, report.clients.unknown,
                        report.clients.invoked, report.clients.attempts,
                        report.clients.redirects, report.clients.timeouts);
  absl::StrAppendFormat(&out, "faults           %s\n", faults_line.empty() ? "none" : faults_line);
  absl::StrAppendFormat(&out, "checks           %d\n", report.checks);
  absl::StrAppendFormat(&out, "linearizability  %s (%d keys, %d operations)\n",
                        sim::VerdictName(report.linearizability.verdict),
                        report.linearizability.keys_checked,
                        report.linearizability.operations_checked);
  absl::StrAppendFormat(&out, "wall time        %.3f s (virtual:wall %.0fx, %.0f events/s)\n",
                        wall_s, wall_s > 0 ? virtual_s / wall_s : 0.0,
                        wall_s > 0 ? static_cast<double>(report.events) / wall_s : 0.0);
  absl::StrAppendFormat(&out, "trace hash       %016x\n", report.trace_hash);
  absl::StrAppendFormat(&out, "result           %s\n", report.passed ? "PASS" : "FAIL");
  std::fputs(out.c_str(), stdout);
  if (!report.passed) {
    std::printf("violation        %s\nreplay           %s\n", report.failure.c_str(),
                ReplayLine(options).c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace blixard::cli
