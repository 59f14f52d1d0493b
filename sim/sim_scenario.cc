#include "sim/sim_scenario.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "sim/fault_schedule.h"

namespace blixard::sim {
namespace {

using raft::testing::FormatScenario;
using raft::testing::ParseScenario;
using raft::testing::ScenarioCase;

constexpr absl::string_view kSimKeys = "seed, nodes, duration, workload, liveness, faults, ops";

absl::Status Bad(absl::string_view what) { return absl::InvalidArgumentError(what); }

// "60s", "2.5s", "1500ms" -> microseconds; positive, whole microseconds.
absl::Status ParseMicros(absl::string_view key, absl::string_view value, int64_t* out) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
    return Bad(absl::StrCat(key, "=\"", value, "\" is not a positive duration (e.g. 2.5s)"));
  }
  if (absl::Microseconds(absl::ToInt64Microseconds(d)) != d) {
    return Bad(absl::StrCat(key, "=\"", value, "\" is not a whole number of microseconds"));
  }
  *out = absl::ToInt64Microseconds(d);
  return absl::OkStatus();
}

std::string Duration(int64_t us) { return absl::FormatDuration(absl::Microseconds(us)); }

}  // namespace

absl::StatusOr<std::string> SimScenarioRunner::Run(absl::string_view command) {
  command = absl::StripAsciiWhitespace(command);
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(command, absl::MaxSplits(' ', 1));
  const absl::string_view name = parts.first;
  const absl::string_view rest = absl::StripAsciiWhitespace(parts.second);
  if (name == "sim") return Sim(rest);
  if (name == "fault") return AddFault(rest);
  if (name == "op") return AddOp(rest);
  if (name == "swarm") return Swarm(rest);
  if (name == "run") {
    if (!rest.empty()) return Bad("run takes no arguments");
    return RunSim();
  }
  return Bad(absl::StrCat("unknown command \"", name, "\" (sim, swarm, fault, op, run)"));
}

absl::StatusOr<std::string> SimScenarioRunner::Sim(absl::string_view args) {
  SimulationOptions o;
  // A script describes its run completely: no faults or operations unless
  // listed (or generated on request).
  o.schedule = FaultSchedule{};
  o.ops = std::vector<ClientOp>{};
  bool generated = false, drawn = false;
  for (absl::string_view token : absl::StrSplit(args, ' ', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(token, absl::MaxSplits('=', 1));
    const absl::string_view key = kv.first, value = kv.second;
    if (value.empty()) {
      return Bad(absl::StrCat("\"", token, "\" is not key=value (keys: ", kSimKeys, ")"));
    }
    absl::Status status;
    if (key == "seed") {
      if (!absl::SimpleAtoi(value, &o.seed)) status = Bad(absl::StrCat("bad seed \"", value, "\""));
    } else if (key == "nodes") {
      if (!absl::SimpleAtoi(value, &o.nodes)) status = Bad(absl::StrCat("bad nodes \"", value, "\""));
    } else if (key == "duration") {
      status = ParseMicros(key, value, &o.duration_us);
    } else if (key == "liveness") {
      status = ParseMicros(key, value, &o.liveness_us);
    } else if (key == "workload") {
      absl::StatusOr<WorkloadKind> kind = ParseWorkloadKind(value);
      if (kind.ok()) o.workload = *kind;
      status = kind.status();
    } else if (key == "faults") {
      // Generate the schedule from the seed with this profile.
      absl::StatusOr<FaultProfile> profile = ParseFaultProfile(value);
      if (profile.ok()) {
        o.faults = *profile;
        o.schedule.reset();
        generated = true;
      }
      status = profile.status();
    } else if (key == "ops") {
      if (value != "drawn" && value != "listed") {
        status = Bad(absl::StrCat("ops=\"", value, "\": want drawn or listed"));
      } else {
        drawn = value == "drawn";
        if (drawn) o.ops.reset();
      }
    } else {
      status = Bad(absl::StrCat("unknown key \"", key, "\" (keys: ", kSimKeys, ")"));
    }
    if (!status.ok()) return status;
  }
  absl::Status valid = o.Validate();
  if (!valid.ok()) return valid;
  options_ = std::move(o);
  generated_faults_ = generated;
  drawn_ops_ = drawn;
  return std::string("ok");
}

absl::StatusOr<std::string> SimScenarioRunner::Swarm(absl::string_view params) {
  if (!options_) return Bad("swarm before sim");
  if (options_->swarm.has_value()) return Bad("a second swarm line");
  if (!options_->ops->empty()) return Bad("swarm after op lines (the params set the clients)");
  absl::StatusOr<SwarmParams> parsed = SwarmParams::Parse(params);
  if (!parsed.ok()) return parsed.status();
  SimulationOptions o = *options_;
  o.faults = FaultProfile::kSwarm;
  o.swarm = *std::move(parsed);
  o = ResolveSwarm(std::move(o));
  absl::Status valid = o.Validate();
  if (!valid.ok()) return valid;
  options_ = std::move(o);
  return std::string("ok");
}

absl::StatusOr<std::string> SimScenarioRunner::AddFault(absl::string_view line) {
  if (!options_) return Bad("fault before sim");
  if (generated_faults_) return Bad("fault lines with faults=<profile> (the schedule is generated)");
  absl::StatusOr<FaultSchedule> one = FaultSchedule::Parse(line);
  if (!one.ok()) return one.status();
  if (one->faults.size() != 1) return Bad("want exactly one fault");
  FaultSchedule schedule = *options_->schedule;
  schedule.faults.push_back(one->faults[0]);
  absl::Status valid = schedule.Validate();
  if (!valid.ok()) return valid;
  options_->schedule = std::move(schedule);
  return std::string("ok");
}

absl::StatusOr<std::string> SimScenarioRunner::AddOp(absl::string_view line) {
  if (!options_) return Bad("op before sim");
  if (drawn_ops_) return Bad("op lines with ops=drawn (the workload draws them)");
  absl::StatusOr<ClientOp> op = ClientOp::Parse(line);
  if (!op.ok()) return op.status();
  std::vector<ClientOp> ops = *options_->ops;
  ops.push_back(*std::move(op));
  const WorkloadOptions clients = options_->ClientOptions();
  absl::Status valid = ValidateClientOps(ops, clients.client_id_base, clients.clients);
  if (!valid.ok()) return valid;
  options_->ops = std::move(ops);
  return std::string("ok");
}

absl::StatusOr<std::string> SimScenarioRunner::RunSim() {
  if (!options_) return Bad("run before sim");
  absl::Status valid = options_->Validate();
  if (!valid.ok()) return valid;
  return SimRunOutput(RunSimulation(*options_));
}

std::string SimRunOutput(const SimulationReport& report) {
  std::string out;
  if (report.passed) {
    out = "passed\n";
  } else {
    // "<property> violated at t=<us> us[ on n<id>]" without the detail,
    // which may quote values a reader does not need to pin down.
    const absl::string_view failure = report.failure;
    absl::StrAppend(&out, "violation ", report.violation_property, "\n",
                    failure.substr(0, failure.find(": ")), "\n");
  }
  uint64_t applied = 0;
  for (const auto& [kind, count] : report.faults) {
    if (ParseFaultKind(kind).ok()) applied += count;
  }
  absl::StrAppend(&out, "faults applied ", applied, ", client ops ", report.clients.invoked,
                  " invoked (", report.clients.ok, " ok, ", report.clients.failed, " failed, ",
                  report.clients.unknown, " unknown), ", report.entries_committed,
                  " entries committed");
  return out;
}

std::string SimCommandLine(const SimulationOptions& o) {
  std::string out = absl::StrCat("sim seed=", o.seed, " nodes=", o.nodes, " duration=",
                                 Duration(o.duration_us), " workload=", WorkloadKindName(o.workload),
                                 " liveness=", Duration(o.liveness_us));
  if (!o.schedule) absl::StrAppend(&out, " faults=", FaultProfileName(o.faults));
  if (!o.ops) absl::StrAppend(&out, " ops=drawn");
  return out;
}

absl::StatusOr<SimScriptRun> RunSimScript(absl::string_view file, const std::string& text) {
  SimScriptRun run;
  std::string error;
  run.cases = ParseScenario(text, &error);
  // ParseScenario says "line <n>: <what>"; make it "<file>:<n>: <what>".
  if (!error.empty()) return Bad(absl::StrCat(file, ":", absl::StripPrefix(error, "line ")));
  SimScenarioRunner runner;
  for (const ScenarioCase& c : run.cases) {
    absl::StatusOr<std::string> output = runner.Run(c.command);
    if (!output.ok()) {
      return Bad(absl::StrCat(file, ":", c.line, ": ", output.status().message(), "\n  in: ",
                              c.command));
    }
    run.outputs.push_back(*std::move(output));
  }
  return run;
}

absl::StatusOr<std::string> WriteSimScript(const SimulationOptions& options,
                                           const std::vector<std::string>& header) {
  std::string text;
  for (const std::string& line : header) {
    for (absl::string_view part : absl::StrSplit(line, '\n')) {
      absl::StrAppend(&text, "#", part.empty() ? "" : " ", part, "\n");
    }
  }
  if (!header.empty()) text += "\n";
  auto add = [&text](absl::string_view command) {
    absl::StrAppend(&text, command, "\n----\nok\n\n");
  };
  add(SimCommandLine(options));
  if (options.swarm.has_value()) add(absl::StrCat("swarm ", options.swarm->ToText()));
  if (options.schedule) {
    for (const Fault& fault : options.schedule->faults) add(absl::StrCat("fault ", fault.ToText()));
  }
  if (options.ops) {
    for (const ClientOp& op : *options.ops) add(absl::StrCat("op ", op.ToText()));
  }
  absl::StrAppend(&text, "run\n----\n?\n");
  absl::StatusOr<SimScriptRun> run = RunSimScript("<new script>", text);
  if (!run.ok()) return run.status();
  return FormatScenario(run->cases, run->outputs, "");
}

}  // namespace blixard::sim
