#include "net/api/put_bench.h"

#include <utility>

#include "net/api/kv_load.h"

namespace blixard::net {

absl::StatusOr<PutBenchResult> RunPutBench(const PutBenchOptions& options) {
  if (options.ops < static_cast<uint64_t>(options.clients)) {
    return absl::InvalidArgumentError("ops must be at least the number of clients");
  }
  KvLoadOptions load;
  load.endpoint = options.endpoint;
  load.op = KvLoadOptions::Op::kPut;
  load.clients = options.clients;
  load.ops = options.ops;
  load.keys = KvLoadOptions::Keys::kIndexed;
  load.key_bytes = options.key_bytes;
  load.value_bytes = options.value_bytes;
  load.connect_timeout_us = options.timeout_us;
  load.timeout_us = options.timeout_us;
  load.seed = options.seed;
  absl::StatusOr<KvLoadResult> run = RunKvLoad(load);
  if (!run.ok()) return run.status();
  PutBenchResult result;
  result.ok = run->ok;
  result.failed = run->failed;
  if (!run->errors.empty()) result.first_error = run->errors.begin()->first;
  result.elapsed_us = run->elapsed_us;
  result.latencies_us = std::move(run->latencies_us);
  return result;
}

}  // namespace blixard::net
