#include "core/sm/cluster_records.h"

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/sm/cluster_limits.h"
#include "google/protobuf/util/message_differencer.h"

namespace blixard::sm {

Amounts ToAmounts(const cluster::Resources& r) {
  return Amounts{r.cpu_cores(), r.memory_mb(), r.disk_gb()};
}
Amounts TaskNeed(const cluster::TaskRecord& task) {
  const cluster::TaskResources& r = task.spec().resources();
  return Amounts{r.cpu_cores(), r.memory_mb(), r.disk_gb()};
}
Amounts VmNeed(const cluster::VmRecord& vm) {
  return Amounts{vm.spec().vcpus(), vm.spec().memory_mb(), vm.spec().disk_gb()};
}
Amounts FreeOf(const cluster::WorkerRecord& worker) {
  const Amounts cap = ToAmounts(worker.capacity());
  const Amounts used = ToAmounts(worker.reserved());
  CHECK(cap.Covers(used)) << "worker " << worker.node_id() << " over-committed";
  return Amounts{cap.cpu_cores - used.cpu_cores, cap.memory_mb - used.memory_mb,
                 cap.disk_gb - used.disk_gb};
}
void SetResources(cluster::Resources& r, const Amounts& a) {
  r.set_cpu_cores(a.cpu_cores);
  r.set_memory_mb(a.memory_mb);
  r.set_disk_gb(a.disk_gb);
}
bool IsPlacedState(cluster::TaskState state) {
  return state == cluster::TASK_ASSIGNED || state == cluster::TASK_RUNNING;
}

bool ValidWorkerStatus(int status) {
  return status >= cluster::WORKER_ONLINE && status <= cluster::WORKER_FAILED;
}

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, at
// most U+10FFFF). Proto3 `string` fields must be, or a snapshot holding them
// would not parse again; commands built in memory (fuzzers) may not be.
bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > text.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string ValidateText(absl::string_view text, absl::string_view what) {
  if (!IsValidUtf8(text)) return absl::StrCat(what, " is not valid UTF-8");
  return "";
}

// Validates a feature list; on success writes it sorted and unique.
std::string ValidateFeatures(
    const google::protobuf::RepeatedPtrField<std::string>& features,
    absl::string_view what, std::vector<std::string>& normalized) {
  if (static_cast<size_t>(features.size()) > kWorkerFeaturesMax) {
    return absl::StrCat(what, ": ", features.size(), " features, more than ",
                        kWorkerFeaturesMax);
  }
  normalized.assign(features.begin(), features.end());
  for (const std::string& f : normalized) {
    if (f.empty() || f.size() > kFeatureBytesMax) {
      return absl::StrCat(what, ": feature of ", f.size(),
                          " bytes; features must have 1 to ", kFeatureBytesMax,
                          " bytes");
    }
    if (!IsValidUtf8(f))
      return absl::StrCat(what, ": feature is not valid UTF-8");
  }
  std::sort(normalized.begin(), normalized.end());
  normalized.erase(std::unique(normalized.begin(), normalized.end()),
                   normalized.end());
  return "";
}

std::string ValidateAmounts(const Amounts& a, absl::string_view what) {
  if (a.cpu_cores > kWorkerCpuCoresMax) {
    return absl::StrCat(what, ": cpu_cores ", a.cpu_cores, " exceeds ",
                        kWorkerCpuCoresMax);
  }
  if (a.memory_mb > kWorkerMemoryMbMax) {
    return absl::StrCat(what, ": memory_mb ", a.memory_mb, " exceeds ",
                        kWorkerMemoryMbMax);
  }
  if (a.disk_gb > kWorkerDiskGbMax) {
    return absl::StrCat(what, ": disk_gb ", a.disk_gb, " exceeds ",
                        kWorkerDiskGbMax);
  }
  if (a.cpu_cores == 0 && a.memory_mb == 0 && a.disk_gb == 0) {
    return absl::StrCat(what, ": cpu_cores, memory_mb and disk_gb are all 0");
  }
  return "";
}

std::string ValidateId(absl::string_view id, absl::string_view what,
                       size_t max_bytes) {
  if (id.empty() || id.size() > max_bytes) {
    return absl::StrCat(what, " must have 1 to ", max_bytes, " bytes, has ",
                        id.size());
  }
  return ValidateText(id, what);
}

// Validates a task spec; on success writes the normalized spec (sorted
// required features) to `out`.
std::string ValidateTaskSpec(const cluster::TaskSpec& spec,
                             cluster::TaskSpec& out) {
  if (spec.command().empty() || spec.command().size() > kTaskCommandBytesMax) {
    return absl::StrCat("task command must have 1 to ", kTaskCommandBytesMax,
                        " bytes, has ", spec.command().size());
  }
  if (static_cast<size_t>(spec.args_size()) > kTaskArgsMax) {
    return absl::StrCat("task has ", spec.args_size(), " args, more than ",
                        kTaskArgsMax);
  }
  if (!IsValidUtf8(spec.command())) return "task command is not valid UTF-8";
  for (const std::string& arg : spec.args()) {
    if (arg.size() > kTaskArgBytesMax) {
      return absl::StrCat("task arg of ", arg.size(), " bytes exceeds ",
                          kTaskArgBytesMax);
    }
    if (!IsValidUtf8(arg)) return "task arg is not valid UTF-8";
  }
  const cluster::TaskResources& r = spec.resources();
  std::string error = ValidateAmounts(
      Amounts{r.cpu_cores(), r.memory_mb(), r.disk_gb()}, "task resources");
  if (!error.empty()) return error;
  std::vector<std::string> features;
  error = ValidateFeatures(r.required_features(), "task required_features",
                           features);
  if (!error.empty()) return error;
  if (spec.timeout_secs() > kTaskTimeoutSecsMax) {
    return absl::StrCat("task timeout_secs ", spec.timeout_secs(), " exceeds ",
                        kTaskTimeoutSecsMax);
  }
  if (spec.max_attempts() < 1 || spec.max_attempts() > kTaskMaxAttemptsMax) {
    return absl::StrCat("task max_attempts ", spec.max_attempts(),
                        " must be 1 to ", kTaskMaxAttemptsMax);
  }
  if (spec.priority() > kTaskPriorityMax) {
    return absl::StrCat("task priority ", spec.priority(), " exceeds ",
                        kTaskPriorityMax);
  }
  out = spec;
  out.mutable_resources()->clear_required_features();
  for (std::string& f : features) {
    out.mutable_resources()->add_required_features(std::move(f));
  }
  return "";
}

std::string ValidateVmSpec(const cluster::VmSpec& spec, cluster::VmSpec& out) {
  std::string error = ValidateAmounts(
      Amounts{spec.vcpus(), spec.memory_mb(), spec.disk_gb()}, "vm spec");
  if (!error.empty()) return error;
  error = ValidateId(spec.image(), "vm image", kVmImageBytesMax);
  if (!error.empty()) return error;
  std::vector<std::string> features;
  error = ValidateFeatures(spec.features(), "vm features", features);
  if (!error.empty()) return error;
  out = spec;
  out.clear_features();
  for (std::string& f : features) out.add_features(std::move(f));
  return "";
}

std::string ValidateKey(absl::string_view key) {
  return ValidateId(key, "kv key", kKvKeyBytesMax);
}

// Keeps at most `max_bytes` of `text`, cut on a UTF-8 character boundary
// (proto3 strings must stay valid UTF-8 for the snapshot to parse).
void TruncateUtf8Prefix(std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  text.resize(cut);
}

bool SameMessage(const google::protobuf::Message& a,
                 const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

}  // namespace blixard::sm
