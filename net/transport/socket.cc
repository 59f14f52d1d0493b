#include "net/transport/socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"

namespace blixard::net {
namespace {

absl::StatusOr<sockaddr_in> ToSockaddr(const SocketAddress& address) {
  sockaddr_in out{};
  out.sin_family = AF_INET;
  out.sin_port = htons(address.port);
  if (inet_pton(AF_INET, address.host.c_str(), &out.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address.host,
                     "\" is not a numeric IPv4 address"));
  }
  return out;
}

std::string ToString(const sockaddr_in& address) {
  char text[INET_ADDRSTRLEN] = {};
  CHECK(inet_ntop(AF_INET, &address.sin_addr, text, sizeof(text)) != nullptr);
  return absl::StrCat(text, ":", ntohs(address.sin_port));
}

absl::Status SetIntOption(int fd, int level, int option, int value,
                          absl::string_view name) {
  if (setsockopt(fd, level, option, &value, sizeof(value)) != 0) {
    return ErrnoStatus(absl::StrCat("setsockopt(", name, ")"), errno,
                       absl::StrCat("fd ", fd));
  }
  return absl::OkStatus();
}

UniqueFd NewTcpSocket() {
  return UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

}  // namespace

std::string SocketAddress::ToString() const {
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<SocketAddress> ParseSocketAddress(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("address '", text, "' is not HOST:PORT"));
  }
  SocketAddress address;
  address.host = std::string(text.substr(0, colon));
  in_addr ignored;
  if (inet_pton(AF_INET, address.host.c_str(), &ignored) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", text, "': '", address.host,
                     "' is not a numeric IPv4 address (names would block the loop on DNS)"));
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", text, "': port '", text.substr(colon + 1), "' is not 0..65535"));
  }
  address.port = static_cast<uint16_t>(port);
  return address;
}

absl::Status ValidateSocketAddress(const SocketAddress& address) {
  return ToSockaddr(address).status();
}

absl::StatusOr<UniqueFd> ListenTcp(const SocketAddress& address, int backlog,
                                   const SocketOptions& options) {
  ASSIGN_OR_RETURN(const sockaddr_in where, ToSockaddr(address));
  UniqueFd fd = NewTcpSocket();
  if (!fd.valid()) return ErrnoStatus("socket", errno, address.ToString());
  RETURN_IF_ERROR(SetIntOption(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1,
                               "SO_REUSEADDR"));
  // Set on the listener so that accepted sockets inherit them before their
  // handshake (the window scale is fixed then).
  if (options.send_buffer_bytes > 0) {
    RETURN_IF_ERROR(SetSendBufferBytes(fd.get(), options.send_buffer_bytes));
  }
  if (options.receive_buffer_bytes > 0) {
    RETURN_IF_ERROR(
        SetReceiveBufferBytes(fd.get(), options.receive_buffer_bytes));
  }
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&where),
           sizeof(where)) != 0) {
    return ErrnoStatus("bind", errno, address.ToString());
  }
  if (listen(fd.get(), backlog) != 0) {
    return ErrnoStatus("listen", errno, address.ToString());
  }
  return fd;
}

absl::StatusOr<uint16_t> LocalPort(int fd) {
  sockaddr_in where{};
  socklen_t size = sizeof(where);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&where), &size) != 0) {
    return ErrnoStatus("getsockname", errno, absl::StrCat("fd ", fd));
  }
  return ntohs(where.sin_port);
}

absl::StatusOr<std::vector<uint16_t>> FreeLoopbackPorts(size_t count) {
  std::vector<UniqueFd> held;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(UniqueFd fd, ListenTcp({"127.0.0.1", 0}, 1));
    ASSIGN_OR_RETURN(const uint16_t port, LocalPort(fd.get()));
    ports.push_back(port);
    held.push_back(std::move(fd));
  }
  return ports;  // `held` closes them
}

absl::StatusOr<std::optional<AcceptedSocket>> AcceptTcp(int listen_fd) {
  while (true) {
    sockaddr_in remote{};
    socklen_t size = sizeof(remote);
    UniqueFd fd(accept4(listen_fd, reinterpret_cast<sockaddr*>(&remote), &size,
                        SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.valid()) {
      return std::optional<AcceptedSocket>(
          AcceptedSocket{std::move(fd), ToString(remote)});
    }
    switch (errno) {
      case EINTR:
        continue;
      case EAGAIN:
#if EAGAIN != EWOULDBLOCK
      case EWOULDBLOCK:
#endif
      // accept(2): these are the new connection's own errors, already
      // pending on it; the listener is fine.
      case ECONNABORTED:
      case EPROTO:
      case ENETDOWN:
      case ENOPROTOOPT:
      case EHOSTDOWN:
      case ENONET:
      case EHOSTUNREACH:
      case EOPNOTSUPP:
      case ENETUNREACH:
        return std::optional<AcceptedSocket>();
      default:
        return ErrnoStatus("accept4", errno,
                           absl::StrCat("listening fd ", listen_fd));
    }
  }
}

absl::StatusOr<Dialing> StartConnect(const SocketAddress& address,
                                     const SocketOptions& options) {
  ASSIGN_OR_RETURN(const sockaddr_in where, ToSockaddr(address));
  UniqueFd fd = NewTcpSocket();
  if (!fd.valid()) return ErrnoStatus("socket", errno, address.ToString());
  if (options.send_buffer_bytes > 0) {
    RETURN_IF_ERROR(SetSendBufferBytes(fd.get(), options.send_buffer_bytes));
  }
  if (options.receive_buffer_bytes > 0) {
    RETURN_IF_ERROR(
        SetReceiveBufferBytes(fd.get(), options.receive_buffer_bytes));
  }
  if (options.no_delay) RETURN_IF_ERROR(SetNoDelay(fd.get()));
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&where),
              sizeof(where)) == 0) {
    return Dialing{std::move(fd), true};
  }
  // EINTR: the connect goes on asynchronously, exactly like EINPROGRESS
  // (calling connect again would only say EALREADY).
  if (errno == EINPROGRESS || errno == EINTR) {
    return Dialing{std::move(fd), false};
  }
  return ErrnoStatus("connect", errno, address.ToString());
}

absl::Status FinishConnect(int fd, const SocketAddress& address) {
  int error = 0;
  socklen_t size = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) {
    return ErrnoStatus("getsockopt(SO_ERROR)", errno, address.ToString());
  }
  if (error != 0) return ErrnoStatus("connect", error, address.ToString());
  return absl::OkStatus();
}

absl::StatusOr<bool> IsConnectedToItself(int fd) {
  sockaddr_in local{};
  socklen_t local_size = sizeof(local);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0) {
    return ErrnoStatus("getsockname", errno, absl::StrCat("fd ", fd));
  }
  sockaddr_in remote{};
  socklen_t remote_size = sizeof(remote);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &remote_size) !=
      0) {
    return ErrnoStatus("getpeername", errno, absl::StrCat("fd ", fd));
  }
  return local.sin_port == remote.sin_port &&
         local.sin_addr.s_addr == remote.sin_addr.s_addr;
}

absl::Status SetNoDelay(int fd) {
  return SetIntOption(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
}

absl::Status SetSendBufferBytes(int fd, int bytes) {
  return SetIntOption(fd, SOL_SOCKET, SO_SNDBUF, bytes, "SO_SNDBUF");
}

absl::Status SetReceiveBufferBytes(int fd, int bytes) {
  return SetIntOption(fd, SOL_SOCKET, SO_RCVBUF, bytes, "SO_RCVBUF");
}

}  // namespace blixard::net
