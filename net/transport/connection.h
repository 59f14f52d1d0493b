// Connection: one established, non-blocking byte stream to a peer, as the
// transport sees it. The transport frames, queues and schedules; a
// Connection only moves bytes, so TLS (OpenSSL 3, ARCHITECTURE.md
// "Production runtime") can slot in as another implementation without the
// transport changing: plaintext today (PlaintextConnection, below).
//
// Every call returns at once (the socket is O_NONBLOCK): a call that cannot
// make progress says kWouldBlock, and the transport waits for the fd to be
// ready in its EventLoop. A TLS implementation whose Read needs to write (or
// Write to read) will add a readiness hint here; plaintext needs none.
//
// Errors are outcomes, not absl errors of the caller's making: an I/O error
// or a hang-up ends the connection, and the transport closes it with a
// logged reason.
//
// Thread: the loop thread that owns it; one owner.
#ifndef BLIXARD_NET_TRANSPORT_CONNECTION_H_
#define BLIXARD_NET_TRANSPORT_CONNECTION_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {

struct IoResult {
  enum class Kind : uint8_t {
    kOk = 0,          // `bytes` > 0 moved
    kWouldBlock = 1,  // nothing moved; wait for readiness
    kEof = 2,         // Read only: the peer closed its sending side
    kError = 3,       // the connection is broken; `error` says how
  };
  Kind kind = Kind::kOk;
  size_t bytes = 0;
  absl::Status error;  // kError only: the syscall's ErrnoStatus

  static IoResult Ok(size_t n) { return IoResult{Kind::kOk, n, {}}; }
  static IoResult WouldBlock() { return IoResult{Kind::kWouldBlock, 0, {}}; }
  static IoResult Eof() { return IoResult{Kind::kEof, 0, {}}; }
  static IoResult Error(absl::Status error) {
    return IoResult{Kind::kError, 0, std::move(error)};
  }
};

class Connection {
 public:
  // At most this many pieces per Write (one writev; Linux's IOV_MAX is
  // 1024). The transport gathers at most this many frames per call.
  static constexpr size_t kWritePiecesMax = 64;

  virtual ~Connection() = default;

  // The fd to watch in the EventLoop (readable: Read may progress;
  // writable: Write may). Valid until Close or destruction.
  virtual int fd() const = 0;

  // Reads at most buffer.size() bytes into `buffer`. REQUIRES: open;
  // !buffer.empty().
  virtual IoResult Read(absl::Span<char> buffer) = 0;

  // Writes a prefix of the concatenation of `pieces` (gathered: one
  // syscall for plaintext) and returns how many bytes went. kOk may be
  // short: the caller keeps the rest. REQUIRES: open; 1 <= pieces.size()
  // <= kWritePiecesMax; the total is > 0.
  virtual IoResult Write(absl::Span<const absl::string_view> pieces) = 0;

  // Closes the stream (the fd too). Idempotent. REQUIRES: the fd is no
  // longer registered with the loop.
  virtual void Close() = 0;

  virtual bool is_open() const = 0;

  // For logs: "plaintext fd 7 to 127.0.0.1:40123".
  virtual std::string DebugString() const = 0;
};

// Plain TCP (any connected stream socket): read(2) and sendmsg(2), gathered
// like writev(2) but with MSG_NOSIGNAL
// (a write to a reset peer is an error, never SIGPIPE).
class PlaintextConnection final : public Connection {
 public:
  // REQUIRES: fd is valid and O_NONBLOCK. `remote` is for logs.
  PlaintextConnection(UniqueFd fd, std::string remote);

  int fd() const override { return fd_.get(); }
  IoResult Read(absl::Span<char> buffer) override;
  IoResult Write(absl::Span<const absl::string_view> pieces) override;
  void Close() override { fd_.Reset(); }
  bool is_open() const override { return fd_.valid(); }
  std::string DebugString() const override;

 private:
  UniqueFd fd_;
  const std::string remote_;
};

// Wraps a connected socket as a Connection: the transport calls it once per
// connection, after connect(2) completed (outbound) or accept(2) returned
// (inbound), with the remote address for logs. The slot a TLS layer fills;
// an error closes the socket and counts as a failed connection.
using ConnectionFactory = std::function<absl::StatusOr<std::unique_ptr<Connection>>(
    UniqueFd fd, bool outbound, std::string remote)>;

// The default factory: PlaintextConnection.
ConnectionFactory PlaintextConnectionFactory();

}  // namespace blixard::net

#endif  // BLIXARD_NET_TRANSPORT_CONNECTION_H_
