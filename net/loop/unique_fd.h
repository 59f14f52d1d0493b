// UniqueFd: owns one file descriptor and closes it exactly once.
//
// Every fd in net/ lives in one of these (STYLE.md, "Production code"), so an
// early return on an error path never leaks one and nothing closes an fd
// twice (a double close can close a number the kernel already handed to
// someone else: another connection's socket).
//
// Move-only. Not thread-safe (like an int): one owner at a time.
//
//   UniqueFd fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
//   if (!fd.valid()) return ErrnoStatus("eventfd", errno);
#ifndef BLIXARD_NET_LOOP_UNIQUE_FD_H_
#define BLIXARD_NET_LOOP_UNIQUE_FD_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace blixard::net {

class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of `fd`; a negative value means "none" (so the result of
  // a failed syscall can be wrapped directly, then tested with valid()).
  explicit UniqueFd(int fd) : fd_(fd < 0 ? -1 : fd) {}
  ~UniqueFd() { Reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.Release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  bool valid() const { return fd_ >= 0; }
  int get() const { return fd_; }

  // Gives up ownership without closing; returns the fd (-1 when none).
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Closes the owned fd, if any. close() errors other than EBADF are
  // ignored: on Linux the descriptor is released even when close reports
  // EINTR or EIO, and retrying would close someone else's fd. EBADF means
  // something else closed our fd behind our back: a bug (CHECK).
  void Reset();

 private:
  int fd_ = -1;
};

// An operating error from a syscall: "<syscall>: <strerror> (errno N)", with
// `context` (which fd, which peer) after the syscall name when not empty.
// The canonical code follows errno: EMFILE/ENFILE/ENOMEM/ENOSPC ->
// RESOURCE_EXHAUSTED, EBADF/EINVAL -> INVALID_ARGUMENT, EPERM/EACCES ->
// PERMISSION_DENIED, ENOENT -> NOT_FOUND, EEXIST -> ALREADY_EXISTS,
// ENOSYS -> UNIMPLEMENTED, anything else -> INTERNAL.
absl::Status ErrnoStatus(absl::string_view syscall, int error,
                         absl::string_view context = "");

// Sets O_NONBLOCK on `fd`. Errors: ErrnoStatus naming fcntl and the fd.
absl::Status SetNonBlocking(int fd);

}  // namespace blixard::net

#endif  // BLIXARD_NET_LOOP_UNIQUE_FD_H_
