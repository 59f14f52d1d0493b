// Small, non-blocking TCP socket helpers for the peer transport: listen,
// accept, start a connect, finish it, and the socket options the transport
// sets. Every fd returned is O_NONBLOCK | O_CLOEXEC and owned by a UniqueFd;
// every error is an ErrnoStatus naming the syscall and the address or fd.
//
// Addresses are numeric IPv4 ("127.0.0.1"): resolving a name could block
// the loop thread (getaddrinfo is synchronous), so names are resolved, if
// ever, before they reach here.
//
// Thread: any (no state).
#ifndef BLIXARD_NET_TRANSPORT_SOCKET_H_
#define BLIXARD_NET_TRANSPORT_SOCKET_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {

struct SocketAddress {
  std::string host;  // numeric IPv4
  uint16_t port = 0;

  // "127.0.0.1:4000".
  std::string ToString() const;
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.host == b.host && a.port == b.port;
  }
};

// INVALID_ARGUMENT unless `host` is a numeric IPv4 address.
absl::Status ValidateSocketAddress(const SocketAddress& address);

// "HOST:PORT" with a numeric IPv4 host (the loop never blocks on DNS) and
// a port in 0..65535 (0: ephemeral, for a listener). INVALID_ARGUMENT
// naming what is wrong.
absl::StatusOr<SocketAddress> ParseSocketAddress(absl::string_view text);

// Socket options set before a socket connects or listens (a buffer size
// set later does not change the window scale negotiated in the handshake).
struct SocketOptions {
  // SO_SNDBUF / SO_RCVBUF in bytes; 0 leaves the kernel's default (and its
  // autotuning). The kernel doubles the value and applies its minimum.
  int send_buffer_bytes = 0;
  int receive_buffer_bytes = 0;
  // TCP_NODELAY (outbound sockets; accepted sockets get it from the caller).
  bool no_delay = true;
};

// A listening TCP socket bound to `address` (port 0: an ephemeral port,
// read it back with LocalPort), with SO_REUSEADDR so a restarted node can
// bind its port again while old connections sit in TIME_WAIT, and the
// buffer sizes of `options`, which accepted sockets inherit.
// Errors: INVALID_ARGUMENT for a bad address; the ErrnoStatus of socket,
// setsockopt, bind (e.g. EADDRINUSE -> INTERNAL) or listen.
absl::StatusOr<UniqueFd> ListenTcp(const SocketAddress& address, int backlog,
                                   const SocketOptions& options = {});

// The port a socket is bound to. Errors: getsockname's ErrnoStatus.
absl::StatusOr<uint16_t> LocalPort(int fd);

// `count` distinct loopback ports that were free a moment ago, for a
// process to pass to children it starts (`blixard dev`, multi-process
// tests): each is bound with port 0 and held until all are chosen, so the
// kernel hands out distinct ones, then released. Another process may take
// one before the child binds it (the child then fails to start). Errors:
// the bind's.
absl::StatusOr<std::vector<uint16_t>> FreeLoopbackPorts(size_t count);

struct AcceptedSocket {
  UniqueFd fd;
  std::string remote;  // "127.0.0.1:53122", for logs
};

// Accepts one pending connection, or nullopt when none is pending. Errors
// that concern only the connection being accepted (it was reset before we
// took it: ECONNABORTED and the like) also return nullopt, so the caller
// just tries again; other errors (EMFILE, ENOBUFS) are returned.
absl::StatusOr<std::optional<AcceptedSocket>> AcceptTcp(int listen_fd);

struct Dialing {
  UniqueFd fd;
  // True when connect(2) completed at once (it may, on loopback); false
  // while it is in progress (wait for writable, then FinishConnect).
  bool connected = false;
};

// Creates a socket with `options` and starts a non-blocking connect to
// `address`. Errors: INVALID_ARGUMENT for a bad address; the ErrnoStatus of
// socket, setsockopt, or connect when it fails at once (ECONNREFUSED on
// loopback).
absl::StatusOr<Dialing> StartConnect(const SocketAddress& address,
                                     const SocketOptions& options = {});

// After a connecting socket became writable: OK when the connect
// succeeded, else its error (SO_ERROR) as an ErrnoStatus naming connect.
absl::Status FinishConnect(int fd, const SocketAddress& address);

// Whether a connected socket is connected to itself (local address ==
// remote address). TCP allows it: a connect to a port of this host on
// which nothing listens can pick that same port as its ephemeral source
// and complete a "simultaneous open" with itself. Errors: the ErrnoStatus
// of getsockname or getpeername.
absl::StatusOr<bool> IsConnectedToItself(int fd);

// TCP_NODELAY: frames are already coalesced by writev; Nagle would only
// add a round trip of latency to every heartbeat.
absl::Status SetNoDelay(int fd);

// SO_SNDBUF / SO_RCVBUF (the kernel doubles the value and applies its
// minimum).
absl::Status SetSendBufferBytes(int fd, int bytes);
absl::Status SetReceiveBufferBytes(int fd, int bytes);

}  // namespace blixard::net

#endif  // BLIXARD_NET_TRANSPORT_SOCKET_H_
