#include "net/exec/task_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

// The last `bytes_max` bytes of `path` ("" when missing or unreadable).
std::string FileTail(const std::string& path, size_t bytes_max) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || st.st_size <= 0) return "";
  const auto size = static_cast<uint64_t>(st.st_size);
  const uint64_t from = size > bytes_max ? size - bytes_max : 0;
  std::string out(static_cast<size_t>(size - from), '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = pread(fd.get(), out.data() + got, out.size() - got,
                            static_cast<off_t>(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // error, or the file shrank (a rotation)
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

}  // namespace

absl::StatusOr<bool> RotateOutputIfOver(const std::string& task_dir,
                                        uint64_t bytes_max) {
  CHECK_GT(bytes_max, 0u);
  const std::string path = absl::StrCat(task_dir, "/", kOutputFileName);
  UniqueFd source(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!source.valid()) {
    if (errno == ENOENT) return false;
    return ErrnoStatus("open", errno, path);
  }
  struct stat st;
  if (fstat(source.get(), &st) != 0) return ErrnoStatus("fstat", errno, path);
  if (static_cast<uint64_t>(st.st_size) <= bytes_max) return false;

  const std::string rotated =
      absl::StrCat(task_dir, "/", kOutputRotatedFileName);
  const std::string tmp = absl::StrCat(rotated, ".tmp");
  UniqueFd target(
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!target.valid()) return ErrnoStatus("open", errno, tmp);
  // Copy until EOF, including what the task appends meanwhile, but never
  // more than twice the cap: a task that writes faster than the kernel
  // copies must not keep the loop here.
  const uint64_t copy_max = 2 * bytes_max;
  uint64_t copied = 0;
  loff_t offset = 0;
  while (copied < copy_max) {
    const ssize_t n =
        copy_file_range(source.get(), &offset, target.get(), nullptr,
                        static_cast<size_t>(copy_max - copied), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("copy_file_range", errno,
                         absl::StrCat(path, " -> ", tmp));
    }
    if (n == 0) break;
    copied += static_cast<uint64_t>(n);
  }
  target.Reset();
  if (rename(tmp.c_str(), rotated.c_str()) != 0) {
    return ErrnoStatus("rename", errno, absl::StrCat(tmp, " -> ", rotated));
  }
  if (ftruncate(source.get(), 0) != 0) {
    return ErrnoStatus("ftruncate", errno, path);
  }
  return true;
}

std::string ReadOutputTail(const std::string& task_dir, size_t bytes_max) {
  std::string tail =
      FileTail(absl::StrCat(task_dir, "/", kOutputFileName), bytes_max);
  if (tail.size() < bytes_max) {
    std::string before =
        FileTail(absl::StrCat(task_dir, "/", kOutputRotatedFileName),
                 bytes_max - tail.size());
    tail = before + tail;
  }
  CHECK_LE(tail.size(), bytes_max);
  return tail;
}

std::string AppendNote(std::string tail, absl::string_view note,
                       size_t bytes_max) {
  if (!tail.empty() && tail.back() != '\n') tail.push_back('\n');
  absl::StrAppend(&tail, "[blixard] ", note, "\n");
  if (tail.size() > bytes_max) tail.erase(0, tail.size() - bytes_max);
  return tail;
}

}  // namespace blixard::net
