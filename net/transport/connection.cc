#include "net/transport/connection.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::net {

PlaintextConnection::PlaintextConnection(UniqueFd fd, std::string remote)
    : fd_(std::move(fd)), remote_(std::move(remote)) {
  CHECK(fd_.valid());
  const int flags = fcntl(fd_.get(), F_GETFL);
  CHECK_GE(flags, 0) << "fcntl(F_GETFL) on fd " << fd_.get();
  CHECK_NE(flags & O_NONBLOCK, 0) << "connection fd " << fd_.get()
                                  << " is blocking";
}

IoResult PlaintextConnection::Read(absl::Span<char> buffer) {
  CHECK(is_open());
  CHECK(!buffer.empty());
  while (true) {
    const ssize_t got = read(fd_.get(), buffer.data(), buffer.size());
    if (got > 0) return IoResult::Ok(static_cast<size_t>(got));
    if (got == 0) return IoResult::Eof();
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult::WouldBlock();
    return IoResult::Error(ErrnoStatus("read", errno, DebugString()));
  }
}

IoResult PlaintextConnection::Write(
    absl::Span<const absl::string_view> pieces) {
  CHECK(is_open());
  CHECK(!pieces.empty());
  CHECK_LE(pieces.size(), kWritePiecesMax);
  iovec iov[kWritePiecesMax];
  size_t total = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    iov[i].iov_base = const_cast<char*>(pieces[i].data());
    iov[i].iov_len = pieces[i].size();
    total += pieces[i].size();
  }
  CHECK_GT(total, 0u);
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = pieces.size();
  while (true) {
    // sendmsg rather than writev: MSG_NOSIGNAL turns a write to a reset
    // peer into EPIPE instead of a SIGPIPE that would kill the node.
    const ssize_t sent = sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
    if (sent >= 0) {
      if (sent == 0) return IoResult::WouldBlock();
      CHECK_LE(static_cast<size_t>(sent), total);
      return IoResult::Ok(static_cast<size_t>(sent));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult::WouldBlock();
    return IoResult::Error(ErrnoStatus("sendmsg", errno, DebugString()));
  }
}

std::string PlaintextConnection::DebugString() const {
  return absl::StrCat("plaintext fd ", fd_.get(), " with ", remote_);
}

ConnectionFactory PlaintextConnectionFactory() {
  return [](UniqueFd fd, bool /*outbound*/,
            std::string remote) -> absl::StatusOr<std::unique_ptr<Connection>> {
    return std::unique_ptr<Connection>(
        std::make_unique<PlaintextConnection>(std::move(fd), std::move(remote)));
  };
}

}  // namespace blixard::net
