#include "net/exec/task_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

constexpr absl::string_view kRecordHeader = "blixard-task-record 1";

bool Unreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower case is never produced, so it is not accepted
}

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("task record: ", what));
}

template <typename Int>
bool ParseInt(absl::string_view text, Int* out) {
  return absl::SimpleAtoi(text, out);
}

// Reads all of `path` into *out; 0, an errno, or EFBIG past bytes_max.
int ReadInto(const std::string& path, size_t bytes_max, std::string* out) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    out->append(buffer, static_cast<size_t>(n));
    if (out->size() > bytes_max) return EFBIG;
  }
}

int64_t NowMicros(clockid_t clock) {
  struct timespec ts;
  CHECK_EQ(clock_gettime(clock, &ts), 0);
  return static_cast<int64_t>(ts.tv_sec) * kMicrosPerSecond + ts.tv_nsec / 1000;
}

}  // namespace

bool operator==(const TaskRecord& a, const TaskRecord& b) {
  return a.pid == b.pid && a.proc_start_ticks == b.proc_start_ticks &&
         a.boot_id == b.boot_id && a.start_mono_us == b.start_mono_us &&
         a.start_real_us == b.start_real_us && a.timeout_us == b.timeout_us &&
         a.cgroup == b.cgroup && a.vm_driver == b.vm_driver &&
         a.exited == b.exited &&
         a.exit_reason == b.exit_reason && a.exit_code == b.exit_code &&
         a.duration_us == b.duration_us && a.exit_note == b.exit_note;
}

std::string EncodePathComponent(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (char c : bytes) {
    if (Unreserved(c)) {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
  return out;
}

std::optional<std::string> DecodePathComponent(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (Unreserved(c)) {
      out.push_back(c);
      continue;
    }
    if (c != '%' || i + 2 >= text.size()) return std::nullopt;
    const int hi = HexValue(text[i + 1]);
    const int lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const char decoded = static_cast<char>((hi << 4) | lo);
    // One spelling per byte: an unreserved byte is never escaped.
    if (Unreserved(decoded)) return std::nullopt;
    out.push_back(decoded);
    i += 2;
  }
  return out;
}

std::string SerializeTaskRecord(const TaskRecord& r) {
  std::string out = absl::StrCat(
      kRecordHeader, "\npid ", r.pid, "\nproc_start_ticks ", r.proc_start_ticks,
      "\nboot_id ", EncodePathComponent(r.boot_id), "\nstart_mono_us ",
      r.start_mono_us, "\nstart_real_us ", r.start_real_us, "\ntimeout_us ",
      r.timeout_us, "\n");
  if (!r.cgroup.empty()) {
    absl::StrAppend(&out, "cgroup ", EncodePathComponent(r.cgroup), "\n");
  }
  if (!r.vm_driver.empty()) {
    absl::StrAppend(&out, "vm_driver ", EncodePathComponent(r.vm_driver),
                    "\n");
  }
  if (r.exited) {
    absl::StrAppend(&out, "exit_reason ", static_cast<int>(r.exit_reason),
                    "\nexit_code ", r.exit_code, "\nduration_us ",
                    r.duration_us, "\n");
    if (!r.exit_note.empty()) {
      absl::StrAppend(&out, "exit_note ", EncodePathComponent(r.exit_note),
                      "\n");
    }
  }
  return out;
}

absl::StatusOr<TaskRecord> ParseTaskRecord(absl::string_view text) {
  if (text.size() > kRecordBytesMax) return Corrupt("too long");
  std::vector<absl::string_view> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kRecordHeader) {
    return Corrupt(
        "missing or unknown header (want \"blixard-task-record 1\")");
  }
  TaskRecord r;
  absl::flat_hash_set<std::string> seen;
  int exit_reason = -1;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t space = lines[i].find(' ');
    if (space == absl::string_view::npos) {
      return Corrupt(absl::StrCat("line ", i + 1, " has no value"));
    }
    const absl::string_view key = lines[i].substr(0, space);
    const absl::string_view value = lines[i].substr(space + 1);
    if (!seen.insert(std::string(key)).second) {
      return Corrupt(absl::StrCat("key '", key, "' repeated"));
    }
    bool ok = true;
    if (key == "pid") {
      ok = ParseInt(value, &r.pid) && r.pid > 0;
    } else if (key == "proc_start_ticks") {
      ok = ParseInt(value, &r.proc_start_ticks);
    } else if (key == "start_mono_us") {
      ok = ParseInt(value, &r.start_mono_us);
    } else if (key == "start_real_us") {
      ok = ParseInt(value, &r.start_real_us);
    } else if (key == "timeout_us") {
      ok = ParseInt(value, &r.timeout_us) && r.timeout_us >= 0;
    } else if (key == "exit_reason") {
      ok = ParseInt(value, &exit_reason) && exit_reason >= 1 &&
           exit_reason <= static_cast<int>(WorkEvent::Reason::kFailed);
    } else if (key == "exit_code") {
      ok = ParseInt(value, &r.exit_code);
    } else if (key == "duration_us") {
      ok = ParseInt(value, &r.duration_us) && r.duration_us >= 0;
    } else if (key == "boot_id" || key == "cgroup" || key == "vm_driver" ||
               key == "exit_note") {
      std::optional<std::string> decoded = DecodePathComponent(value);
      ok = decoded.has_value();
      if (ok) {
        std::string& field = key == "boot_id"     ? r.boot_id
                             : key == "cgroup"    ? r.cgroup
                             : key == "vm_driver" ? r.vm_driver
                                                  : r.exit_note;
        field = std::move(*decoded);
      }
    } else {
      return Corrupt(absl::StrCat("unknown key '", key, "'"));
    }
    if (!ok) {
      return Corrupt(absl::StrCat("bad value '", value, "' for ", key));
    }
  }
  for (const char* required :
       {"pid", "proc_start_ticks", "boot_id", "start_mono_us", "start_real_us",
        "timeout_us"}) {
    if (!seen.contains(required)) {
      return Corrupt(absl::StrCat("missing ", required));
    }
  }
  const bool has_exit = seen.contains("exit_reason");
  if (has_exit != seen.contains("exit_code") ||
      has_exit != seen.contains("duration_us") ||
      (!has_exit && seen.contains("exit_note"))) {
    return Corrupt("exit fields incomplete");
  }
  if (has_exit) {
    r.exited = true;
    r.exit_reason = static_cast<WorkEvent::Reason>(exit_reason);
  }
  return r;
}

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  UniqueFd fd(
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!fd.valid()) return ErrnoStatus("open", errno, tmp);
  size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n =
        write(fd.get(), contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", errno, tmp);
    }
    written += static_cast<size_t>(n);
  }
  fd.Reset();
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus("rename", errno, absl::StrCat(tmp, " -> ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          size_t bytes_max) {
  std::string out;
  const int error = ReadInto(path, bytes_max, &out);
  if (error == EFBIG) {
    return absl::OutOfRangeError(
        absl::StrCat(path, ": longer than ", bytes_max, " bytes"));
  }
  if (error != 0) return ErrnoStatus("read", error, path);
  return out;
}

absl::StatusOr<ProcStat> ReadProcStat(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  std::string contents;
  const int error = ReadInto(path, 4096, &contents);
  // A process that is reaped between open and read reads as ESRCH.
  if (error == ENOENT || error == ESRCH) {
    return absl::NotFoundError(absl::StrCat("no process ", pid));
  }
  if (error != 0) return ErrnoStatus("read", error, path);
  const std::string* text = &contents;
  const size_t paren = text->rfind(')');
  if (paren == std::string::npos) {
    return absl::DataLossError(absl::StrCat(path, ": no ')'"));
  }
  // Fields from 3 on, space-separated, after "pid (comm)".
  std::vector<absl::string_view> fields = absl::StrSplit(
      absl::string_view(*text).substr(paren + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3; field N is fields[N - 3].
  ProcStat stat;
  if (fields.size() < 20 || fields[0].size() != 1 ||
      !absl::SimpleAtoi(fields[5 - 3], &stat.pgid) ||
      !absl::SimpleAtoi(fields[22 - 3], &stat.start_ticks)) {
    return absl::DataLossError(absl::StrCat(path, ": does not parse"));
  }
  stat.state = fields[0][0];
  return stat;
}

absl::StatusOr<std::string> ReadBootId() {
  absl::StatusOr<std::string> text =
      ReadSmallFile("/proc/sys/kernel/random/boot_id", 256);
  if (!text.ok()) return text.status();
  std::string id(absl::StripAsciiWhitespace(*text));
  if (id.empty()) return absl::DataLossError("boot_id is empty");
  return id;
}

int64_t MonotonicNowMicros() { return NowMicros(CLOCK_MONOTONIC); }
int64_t RealtimeNowMicros() { return NowMicros(CLOCK_REALTIME); }

}  // namespace blixard::net
