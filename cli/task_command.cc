#include "cli/task_command.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cli/client_flags.h"
#include "core/proto/api.pb.h"
#include "core/sm/cluster_limits.h"

ABSL_FLAG(std::string, task_id, "",
          "submit: the task's id (default: task- and 16 random hex digits); the same id "
          "and spec again is a no-op");
ABSL_FLAG(uint64_t, task_cpu, 1, "submit: CPU cores to reserve");
ABSL_FLAG(uint64_t, task_memory_mb, 0, "submit: memory to reserve, MiB");
ABSL_FLAG(uint64_t, task_disk_gb, 0,
          "submit: disk to reserve, GiB (cpu, memory_mb and disk_gb may not all be 0)");
ABSL_FLAG(std::vector<std::string>, task_features, {},
          "submit: features the worker must have, comma-separated (--features=gpu,ssd; "
          "repeating the flag keeps the last)");
ABSL_FLAG(absl::Duration, task_task_timeout, absl::ZeroDuration(),
          "submit: kill a run this long after it is assigned, in whole seconds (60s, 5m, 1h; "
          "0: no limit; at most 168h). Not --timeout: that is the CLI's wait for the cluster");
ABSL_FLAG(uint32_t, task_max_attempts, 1,
          "submit: runs that may fail before the task is failed (1..100)");
ABSL_FLAG(uint32_t, task_priority, 0, "submit: higher runs first (0..1000)");
ABSL_FLAG(bool, task_wait, false,
          "submit: wait until the task ends and print it; exit 0 only if it succeeded");
ABSL_FLAG(absl::Duration, task_wait_timeout, absl::Seconds(60),
          "submit --wait: stop waiting after this long (exit 3; the task goes on)");
ABSL_FLAG(std::string, task_state, "",
          "list: only tasks in these states, comma-separated: pending, assigned, running, "
          "succeeded, failed, timed_out, cancelled (default: any)");
ABSL_FLAG(uint64_t, task_worker, 0, "list: only tasks assigned to or running on this worker (0: any)");
ABSL_FLAG(uint32_t, task_limit, 0, "list: at most this many tasks, by id (0: the cluster's cap, 10000)");

namespace blixard::cli {
namespace {

// submit --wait reads the task after kWaitPollMin, then doubles the
// interval up to kWaitPollMax: a short task is seen at once, a long one
// costs one read a second. kWaitTimeoutMax bounds the loop: past the
// longest task timeout, waiting means nothing.
constexpr absl::Duration kWaitPollMin = absl::Milliseconds(50);
constexpr absl::Duration kWaitPollMax = absl::Seconds(1);
constexpr absl::Duration kWaitTimeoutMax = absl::Hours(8 * 24);
static_assert(kTaskTimeoutSecsMax < 8 * 24 * 3600);

constexpr char kUsageLine[] =
    "submit [--id=ID] [--cpu=N] [--memory_mb=M] [--disk_gb=D] [--features=F,...] "
    "[--task_timeout=60s] [--max_attempts=K] [--priority=P] [--wait] -- COMMAND [ARGS...] | "
    "get ID | list [--state=S,...] [--worker=N] [--limit=N] | cancel ID | logs ID";

int Usage(const std::string& why) {
  std::fprintf(stderr, "blixard task: %s\nusage: blixard task %s\n", why.c_str(), kUsageLine);
  return kExitUsage;
}

int Fail(const absl::Status& status) { return ReportFailure("task", status); }

absl::StatusOr<std::string> NewTaskId() {
  uint64_t bits = 0;
  // At most 256 bytes come whole once the pool is ready, or not at all.
  if (getrandom(&bits, sizeof bits, 0) != static_cast<ssize_t>(sizeof bits)) {
    return absl::InternalError(absl::StrCat("getrandom: ", std::strerror(errno)));
  }
  return absl::StrCat("task-", absl::Hex(bits, absl::kZeroPad16));
}

// The program and its arguments as one line; arguments that would not
// read back as one word are JSON-quoted.
std::string CommandLine(const cluster::TaskSpec& spec) {
  std::vector<std::string> words = {spec.command()};
  for (const std::string& arg : spec.args()) {
    const bool plain = !arg.empty() && std::none_of(arg.begin(), arg.end(), [](char c) {
      return absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'';
    });
    words.push_back(plain ? arg : JsonString(arg));
  }
  return absl::StrJoin(words, " ");
}

// `get` ends the tail with a newline for the terminal; `logs` does not
// (verbatim: `blixard task logs ID > file` gets the bytes as they were).
void PrintOutputTail(const std::string& tail, bool end_line) {
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  if (end_line && !tail.empty() && tail.back() != '\n') std::fputc('\n', stdout);
}

// `task get`'s table form: one "field value" line each, the tail last.
void PrintTask(const cluster::TaskRecord& t) {
  const auto line = [](const char* field, const std::string& value) {
    std::printf("%-14s %s\n", field, value.c_str());
  };
  line("task", t.task_id());
  line("state", TaskStateName(t.state()));
  line("command", CommandLine(t.spec()));
  line("worker", t.worker_id() == 0 ? "-" : absl::StrCat(t.worker_id()));
  line("attempt", absl::StrCat(t.attempt(), " (", t.failed_attempts(), " failed, ",
                               t.spec().max_attempts(), " allowed)"));
  if (!t.has_result()) {
    line("result", "none yet");
    return;
  }
  const cluster::TaskResult& r = t.result();
  line("exit code", absl::StrCat(r.exit_code(), r.timed_out() ? " (timed out)" : ""));
  line("duration", absl::FormatDuration(absl::Milliseconds(r.execution_time_ms())));
  line("error", r.error().empty() ? "-" : r.error());
  std::printf("output tail (%zu bytes of attempt %u):\n", r.output_tail().size(), r.attempt());
  PrintOutputTail(r.output_tail(), /*end_line=*/true);
}

absl::StatusOr<cluster::TaskRecord> GetTask(net::Client& client, const std::string& id) {
  cluster::Query query;
  query.set_get_task(id);
  absl::StatusOr<cluster::QueryResult> result = QueryOk(client, std::move(query));
  if (!result.ok()) return result.status();
  if (result->tasks_size() != 1) {
    return absl::InternalError(absl::StrCat("get_task answered ", result->tasks_size(), " tasks"));
  }
  return result->tasks(0);
}

// Sends a write and returns the task record of its OK Result.
absl::StatusOr<cluster::TaskRecord> WriteTask(net::Client& client, cluster::Command command) {
  absl::StatusOr<cluster::Result> result = WriteOk(client, std::move(command));
  if (!result.ok()) return result.status();
  return result->task();
}

// Reads the task until it is final or --wait_timeout passes.
int Wait(net::Client& client, cluster::TaskRecord task, Output output) {
  const absl::Duration wait = absl::GetFlag(FLAGS_task_wait_timeout);
  const absl::Time deadline = absl::Now() + wait;
  absl::Duration poll = kWaitPollMin;
  while (!IsFinal(task.state())) {
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      std::fprintf(stderr, "blixard task: %s is still %s after --wait_timeout=%s\n",
                   task.task_id().c_str(), TaskStateName(task.state()).c_str(),
                   absl::FormatDuration(wait).c_str());
      return kExitUnavailable;
    }
    absl::SleepFor(std::min(poll, deadline - now));
    poll = std::min(poll * 2, kWaitPollMax);
    absl::StatusOr<cluster::TaskRecord> read = GetTask(client, task.task_id());
    if (!read.ok()) return Fail(read.status());
    task = *std::move(read);
  }
  if (output == Output::kJson) {
    std::printf("%s\n", ProtoJson(task).c_str());
  } else {
    PrintTask(task);
  }
  return task.state() == cluster::TASK_SUCCEEDED ? kExitOk : kExitFailure;
}

// The spec the submit flags describe, or a usage error's text.
absl::StatusOr<cluster::TaskSpec> SpecFromFlags(const std::vector<std::string>& args) {
  cluster::TaskSpec spec;
  spec.set_command(args[1]);
  for (size_t i = 2; i < args.size(); ++i) spec.add_args(args[i]);
  cluster::TaskResources& r = *spec.mutable_resources();
  r.set_cpu_cores(absl::GetFlag(FLAGS_task_cpu));
  r.set_memory_mb(absl::GetFlag(FLAGS_task_memory_mb));
  r.set_disk_gb(absl::GetFlag(FLAGS_task_disk_gb));
  if (r.cpu_cores() == 0 && r.memory_mb() == 0 && r.disk_gb() == 0) {
    return absl::InvalidArgumentError("--cpu, --memory_mb and --disk_gb may not all be 0");
  }
  for (const std::string& f : absl::GetFlag(FLAGS_task_features)) r.add_required_features(f);
  absl::StatusOr<uint64_t> timeout_secs = TaskTimeoutSecs(absl::GetFlag(FLAGS_task_task_timeout));
  if (!timeout_secs.ok()) return timeout_secs.status();
  spec.set_timeout_secs(*timeout_secs);
  spec.set_max_attempts(absl::GetFlag(FLAGS_task_max_attempts));
  if (spec.max_attempts() < 1 || spec.max_attempts() > kTaskMaxAttemptsMax) {
    return absl::InvalidArgumentError(absl::StrCat("--max_attempts must be 1 to ", kTaskMaxAttemptsMax));
  }
  spec.set_priority(absl::GetFlag(FLAGS_task_priority));
  if (spec.priority() > kTaskPriorityMax) {
    return absl::InvalidArgumentError(absl::StrCat("--priority must be 0 to ", kTaskPriorityMax));
  }
  return spec;
}

// OK when some registered worker could ever run `spec` (capacity and
// features, not what is free now), or when none is registered yet (the
// task waits for one); FAILED_PRECONDITION naming the largest worker
// otherwise: such a task would stay PENDING for good.
absl::Status CheckSomeWorkerFits(net::Client& client, const cluster::TaskSpec& spec) {
  api::ClientRequest request;
  request.mutable_query()->mutable_list_workers();
  absl::StatusOr<api::ClientResponse> response = CallOk(client, std::move(request));
  if (!response.ok()) return response.status();
  const cluster::TaskResources& need = spec.resources();
  std::string largest;
  uint64_t largest_cores = 0;
  for (const cluster::WorkerRecord& w : response->query_result().workers()) {
    const cluster::Resources& have = w.capacity();
    bool features = true;
    for (const std::string& f : need.required_features()) {
      features = features && std::find(w.features().begin(), w.features().end(), f) !=
                                 w.features().end();
    }
    if (features && have.cpu_cores() >= need.cpu_cores() &&
        have.memory_mb() >= need.memory_mb() && have.disk_gb() >= need.disk_gb()) {
      return absl::OkStatus();
    }
    if (largest.empty() || have.cpu_cores() > largest_cores) {
      largest_cores = have.cpu_cores();
      largest = absl::StrCat("worker ", w.node_id(), " has ", have.cpu_cores(), " cores, ",
                             have.memory_mb(), " MiB, ", have.disk_gb(), " GiB");
    }
  }
  if (largest.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "no worker can ever run it (", need.cpu_cores(), " cores, ", need.memory_mb(), " MiB, ",
      need.disk_gb(), " GiB", need.required_features().empty() ? "" : ", features ",
      absl::StrJoin(need.required_features(), ","), "); the largest: ", largest));
}

int Submit(net::Client& client, cluster::SubmitTask submit, Output output) {
  // Only a definite "no worker can" stops the submit here; a cluster that
  // cannot be asked gets the submit itself, which says what it can.
  if (absl::Status fits = CheckSomeWorkerFits(client, submit.spec());
      absl::IsFailedPrecondition(fits)) {
    return Fail(fits);
  }
  cluster::Command command;
  *command.mutable_submit_task() = std::move(submit);
  const std::string id = command.submit_task().task_id();
  absl::StatusOr<cluster::TaskRecord> task = WriteTask(client, std::move(command));
  if (!task.ok()) {
    const int exit_code = Fail(task.status());
    // A drawn id exists nowhere else: without it the user could neither
    // look the task up nor resubmit it safely.
    if (exit_code == kExitUnavailable) {
      std::fprintf(stderr,
                   "blixard task: task %s may or may not have been submitted; 'blixard task get "
                   "%s' tells, and the same submit with --id=%s submits it at most once\n",
                   id.c_str(), id.c_str(), id.c_str());
    }
    return exit_code;
  }
  const bool wait = absl::GetFlag(FLAGS_task_wait);
  // With --wait, JSON is the final record alone: one object, as always.
  if (output == Output::kTable) {
    std::printf("%s %s\n", task->task_id().c_str(), TaskStateName(task->state()).c_str());
    std::fflush(stdout);  // seen before a long wait
  } else if (!wait) {
    std::printf("%s\n", ProtoJson(*task).c_str());
  }
  return wait ? Wait(client, *std::move(task), output) : kExitOk;
}

int List(net::Client& client, const std::vector<cluster::TaskState>& states, Output output) {
  const uint32_t limit = absl::GetFlag(FLAGS_task_limit);
  // The query takes one state: one query per state, merged by id (the
  // order each answer comes in).
  std::map<std::string, cluster::TaskRecord> tasks;
  for (const cluster::TaskState state : states) {
    api::ClientRequest request;
    cluster::Query::ListTasks& list = *request.mutable_query()->mutable_list_tasks();
    list.set_state(state);
    list.set_worker_id(absl::GetFlag(FLAGS_task_worker));
    list.set_limit(limit);
    absl::StatusOr<api::ClientResponse> response = CallOk(client, std::move(request));
    if (!response.ok()) return Fail(response.status());
    const cluster::QueryResult& result = response->query_result();
    if (result.code() != cluster::RESULT_OK) return Fail(Refusal(result.code(), result.message()));
    for (const cluster::TaskRecord& t : result.tasks()) tasks.emplace(t.task_id(), t);
  }
  const size_t keep = std::min(tasks.size(), limit == 0 ? kListResultsMax : size_t{limit});
  std::vector<std::string> json;
  if (output == Output::kTable) {
    std::printf("%-24s %-10s %-7s %-8s %s\n", "ID", "STATE", "WORKER", "ATTEMPT", "EXIT");
  }
  size_t shown = 0;
  for (const auto& [id, t] : tasks) {
    if (shown++ == keep) break;
    if (output == Output::kJson) {
      json.push_back(ProtoJson(t));
      continue;
    }
    std::printf("%-24s %-10s %-7s %-8u %s\n", id.c_str(), TaskStateName(t.state()).c_str(),
                t.worker_id() == 0 ? "-" : absl::StrCat(t.worker_id()).c_str(), t.attempt(),
                t.has_result() ? absl::StrCat(t.result().exit_code()).c_str() : "-");
  }
  if (output == Output::kJson) std::printf("[%s]\n", absl::StrJoin(json, ",").c_str());
  return kExitOk;
}

int RunTask(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("which operation?");
  const std::string& op = args[0];
  absl::StatusOr<Output> output = OutputFormat();
  if (!output.ok()) return Usage(std::string(output.status().message()));
  cluster::SubmitTask submit;
  std::vector<cluster::TaskState> states = {cluster::TASK_STATE_UNSPECIFIED};  // any
  if (op == "submit") {
    if (args.size() < 2) return Usage("'submit' needs a command: task submit [flags] -- COMMAND [ARGS...]");
    absl::StatusOr<cluster::TaskSpec> spec = SpecFromFlags(args);
    if (!spec.ok()) return Usage(std::string(spec.status().message()));
    *submit.mutable_spec() = *std::move(spec);
    if (absl::GetFlag(FLAGS_task_wait_timeout) <= absl::ZeroDuration() ||
        absl::GetFlag(FLAGS_task_wait_timeout) > kWaitTimeoutMax) {
      return Usage(absl::StrCat("--wait_timeout must be above 0 and at most ",
                                absl::FormatDuration(kWaitTimeoutMax)));
    }
    std::string id = absl::GetFlag(FLAGS_task_id);
    if (id.empty()) {
      absl::StatusOr<std::string> drawn = NewTaskId();
      if (!drawn.ok()) return Fail(drawn.status());
      id = *std::move(drawn);
    }
    submit.set_task_id(std::move(id));
  } else if (op == "get" || op == "cancel" || op == "logs") {
    if (args.size() != 2 || args[1].empty()) return Usage(absl::StrCat("'", op, "' takes one task id"));
  } else if (op == "list") {
    if (args.size() != 1) return Usage("'list' takes flags only (--state, --worker, --limit)");
    const std::string state_flag = absl::GetFlag(FLAGS_task_state);
    if (!state_flag.empty()) {
      absl::StatusOr<std::vector<cluster::TaskState>> parsed = ParseTaskStates(state_flag);
      if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
      states = *std::move(parsed);
    }
  } else {
    return Usage(absl::StrCat("unknown operation '", op, "'"));
  }
  absl::StatusOr<std::unique_ptr<net::Client>> client = MakeClient();
  if (!client.ok()) return Usage(std::string(client.status().message()));

  if (op == "submit") return Submit(**client, std::move(submit), *output);
  if (op == "list") return List(**client, states, *output);
  absl::StatusOr<cluster::TaskRecord> task;
  if (op == "cancel") {
    cluster::Command command;
    command.mutable_cancel_task()->set_task_id(args[1]);
    task = WriteTask(**client, std::move(command));
  } else {
    task = GetTask(**client, args[1]);
  }
  if (!task.ok()) return Fail(task.status());
  if (op == "logs") {
    if (!task->has_result()) {
      std::fprintf(stderr, "blixard task: %s has no result yet (it is %s)\n",
                   task->task_id().c_str(), TaskStateName(task->state()).c_str());
      return kExitFailure;
    }
    PrintOutputTail(task->result().output_tail(), /*end_line=*/false);
    return kExitOk;
  }
  if (*output == Output::kJson) {
    std::printf("%s\n", ProtoJson(*task).c_str());
  } else if (op == "cancel") {
    std::printf("%s %s\n", task->task_id().c_str(), TaskStateName(task->state()).c_str());
  } else {
    PrintTask(*task);
  }
  return kExitOk;
}

}  // namespace

absl::StatusOr<std::vector<cluster::TaskState>> ParseTaskStates(absl::string_view list) {
  std::vector<cluster::TaskState> states;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(item));
    absl::StrReplaceAll({{"-", "_"}}, &name);
    cluster::TaskState state = cluster::TASK_STATE_UNSPECIFIED;
    if (name.empty() || !cluster::TaskState_Parse(absl::StrCat("TASK_", name), &state) ||
        state == cluster::TASK_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--state: '", item,
          "' is not a task state (pending, assigned, running, succeeded, failed, timed_out, "
          "cancelled)"));
    }
    states.push_back(state);
  }
  std::sort(states.begin(), states.end());
  states.erase(std::unique(states.begin(), states.end()), states.end());
  return states;
}

absl::StatusOr<uint64_t> TaskTimeoutSecs(absl::Duration timeout) {
  const auto bad = [&timeout](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--task_timeout=", absl::FormatDuration(timeout), " ", why));
  };
  if (timeout < absl::ZeroDuration()) return bad("is negative");
  if (timeout > absl::Seconds(kTaskTimeoutSecsMax)) {
    return bad(absl::StrCat("is above the limit, ", kTaskTimeoutSecsMax / 3600, "h"));
  }
  if (timeout % absl::Seconds(1) != absl::ZeroDuration()) return bad("is not whole seconds");
  return static_cast<uint64_t>(absl::ToInt64Seconds(timeout));
}

std::string TaskStateName(cluster::TaskState state) {
  std::string name(absl::StripPrefix(cluster::TaskState_Name(state), "TASK_"));
  absl::AsciiStrToLower(&name);
  return name;
}

bool IsFinal(cluster::TaskState state) {
  return state == cluster::TASK_SUCCEEDED || state == cluster::TASK_FAILED ||
         state == cluster::TASK_TIMED_OUT || state == cluster::TASK_CANCELLED;
}

const Command& TaskCommand() {
  static const Command* const command = new Command{
      "task",
      "submit a task, wait for it, get, list or cancel tasks, print a task's output tail",
      "submit -- COMMAND [ARGS...] | get ID | list | cancel ID | logs ID\n\n"
      "submit runs COMMAND with ARGS (no shell) on a worker that has room; with --wait\n"
      "it waits for the end (exit 0: succeeded, 1: failed, timed out or cancelled).\n"
      "logs prints the output tail (the last 4 KiB); the whole output is on the\n"
      "worker, in <data_dir>/tasks/<id>/output.log.",
      {EndpointsFlag(), TimeoutFlag(), OutputFlag(), BindFlag("id", FLAGS_task_id),
       BindFlag("cpu", FLAGS_task_cpu), BindFlag("memory_mb", FLAGS_task_memory_mb),
       BindFlag("disk_gb", FLAGS_task_disk_gb), BindFlag("features", FLAGS_task_features),
       BindFlag("task_timeout", FLAGS_task_task_timeout),
       BindFlag("max_attempts", FLAGS_task_max_attempts), BindFlag("priority", FLAGS_task_priority),
       BindFlag("wait", FLAGS_task_wait), BindFlag("wait_timeout", FLAGS_task_wait_timeout),
       BindFlag("state", FLAGS_task_state), BindFlag("worker", FLAGS_task_worker),
       BindFlag("limit", FLAGS_task_limit)},
      &RunTask};
  return *command;
}

}  // namespace blixard::cli
