#include "net/loop/unique_fd.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::net {

void UniqueFd::Reset() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (close(fd) != 0) {
    const int error = errno;
    CHECK_NE(error, EBADF) << "close(" << fd
                           << "): fd was already closed by someone else";
  }
}

absl::Status ErrnoStatus(absl::string_view syscall, int error,
                         absl::string_view context) {
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (error) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOSPC:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case EBADF:
    case EINVAL:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case EPERM:
    case EACCES:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case ENOENT:
      code = absl::StatusCode::kNotFound;
      break;
    case EEXIST:
    case EADDRINUSE:  // a port another process holds: the operator's to fix
      code = absl::StatusCode::kAlreadyExists;
      break;
    case EADDRNOTAVAIL:  // an address this machine does not have
      code = absl::StatusCode::kInvalidArgument;
      break;
    case ENOSYS:
      code = absl::StatusCode::kUnimplemented;
      break;
    default:
      break;
  }
  // The GNU strerror_r (the one glibc declares for C++): thread-safe, and
  // returns a pointer that may or may not be `buffer`.
  char buffer[128];
  const char* text = strerror_r(error, buffer, sizeof(buffer));
  return absl::Status(
      code, absl::StrCat(syscall, context.empty() ? "" : " ", context, ": ",
                         text, " (errno ", error, ")"));
}

absl::Status SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) {
    return ErrnoStatus("fcntl(F_GETFL)", errno, absl::StrCat("fd ", fd));
  }
  if ((flags & O_NONBLOCK) != 0) return absl::OkStatus();
  if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("fcntl(F_SETFL, O_NONBLOCK)", errno,
                       absl::StrCat("fd ", fd));
  }
  return absl::OkStatus();
}

}  // namespace blixard::net
