// QmpClient: one QMP (QEMU Machine Protocol) session with a running QEMU,
// over the unix socket QEMU listens on (-qmp unix:<path>,server=on,wait=off),
// driven from the node's EventLoop. No threads, no blocking call.
//
// QMP is line-delimited JSON. The session goes
//
//   kConnecting -> kGreeting -> kNegotiating -> kReady -> kClosed
//
//   kConnecting   connect() said EINPROGRESS; waiting for writability
//                 (a local AF_UNIX connect normally completes at once or
//                 fails, so this state is usually skipped);
//   kGreeting     waiting for QEMU's {"QMP": {...}} banner;
//   kNegotiating  {"execute":"qmp_capabilities"} sent, waiting for its
//                 {"return": {}} (QEMU refuses every other command before);
//   kReady        commands flow: each carries an "id" QEMU echoes in its
//                 reply, since events ({"event": ...}) may arrive between a
//                 command and its reply (QEMU sends POWERDOWN before the
//                 reply to system_powerdown);
//   kClosed       the socket is closed (QEMU went away, a protocol error,
//                 or a bound was hit); nothing more happens.
//
// Commands executed before kReady are queued and sent once it is reached,
// in order. Each reply is handed to on_reply with the command's id; events
// to on_event with their name. The first close (for any reason, except the
// owner destroying the client) calls on_closed once with why, from a loop
// timer (so never inside Execute, and with nothing of the client's on the
// stack: on_closed may destroy the client).
//
// Parsing uses Protobuf's JSON utilities (STYLE.md: "JSON (QMP) through
// Protobuf's JSON utilities"): each line is read into a
// google.protobuf.Struct. Bounds: a line is at most kLineBytesMax bytes
// (QEMU's replies to the commands we send are a few hundred), at most
// kCommandsQueuedMax commands wait for a reply; exceeding either closes
// the session with an error rather than buffering without bound.
//
// Handlers run on the loop thread, never inside Connect or Execute. Any
// handler may destroy the client (the client notices, and touches nothing
// of its own after a handler returns into a destroyed object).
//
// Thread: the loop thread only. The loop must outlive the client.
//
//   QmpClient::Handlers h;
//   h.on_ready = [&] { (void)qmp->Execute("query-status"); };
//   h.on_reply = [&](const QmpClient::Reply& r) { ... r.result ... };
//   h.on_closed = [&](const absl::Status& why) { qmp.reset(); };
//   ASSIGN_OR_RETURN(qmp, QmpClient::Connect(loop, "/run/vm1", h));
#ifndef BLIXARD_NET_EXEC_QMP_CLIENT_H_
#define BLIXARD_NET_EXEC_QMP_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {

// The socket's name inside a VM folder.
inline constexpr char kQmpSocketName[] = "qmp.sock";

class QmpClient {
 public:
  enum class State : uint8_t {
    kConnecting = 0,
    kGreeting = 1,
    kNegotiating = 2,
    kReady = 3,
    kClosed = 4,
  };

  // One line can hold at most this many bytes (then the session closes).
  static constexpr size_t kLineBytesMax = 64 * 1024;
  // Commands queued or waiting for their reply.
  static constexpr size_t kCommandsQueuedMax = 16;

  struct Reply {
    uint64_t id = 0;
    std::string command;  // as passed to Execute
    bool ok = false;      // "return" (true) or "error" (false)
    // "return"'s value when it is an object (query-status's), else empty.
    google::protobuf::Struct result;
    // "error": "<class>: <desc>".
    std::string error;
  };

  struct Handlers {
    std::function<void()> on_ready;                  // may be empty
    std::function<void(const Reply&)> on_reply;      // may be empty
    std::function<void(absl::string_view)> on_event;  // may be empty
    std::function<void(const absl::Status&)> on_closed;  // may be empty
  };

  // Opens a non-blocking AF_UNIX socket and connects it to
  // <dir>/qmp.sock. The path is reached through /proc/self/fd/<dir fd>, so
  // a folder whose full path is longer than sun_path (108 bytes) works.
  // Errors (nothing registered, no handler runs): UNAVAILABLE when QEMU
  // does not listen (yet): no socket file, ECONNREFUSED, or a full backlog
  // (EAGAIN), which callers retry; the ErrnoStatus of open/socket/connect/
  // AddFd otherwise. REQUIRES: loop thread.
  static absl::StatusOr<std::unique_ptr<QmpClient>> Connect(
      EventLoop* loop, const std::string& dir, Handlers handlers);

  // Unregisters and closes the socket; no handler runs after.
  ~QmpClient();

  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Queues `command` (a QMP command name without arguments, e.g.
  // "query-status"), sent at once when kReady, else when kReady is
  // reached. Returns the id its reply will carry. Errors:
  // FAILED_PRECONDITION when kClosed; RESOURCE_EXHAUSTED at
  // kCommandsQueuedMax. REQUIRES: command is [a-z0-9_-]+ (CHECKed).
  absl::StatusOr<uint64_t> Execute(absl::string_view command);

  State state() const { return state_; }
  // "qmp <dir>: kReady, 1 command waiting, 0 bytes unsent".
  std::string DebugString() const;
  void CheckInvariants() const;

 private:
  struct Command {
    uint64_t id;
    std::string name;
    bool sent = false;
  };

  QmpClient(EventLoop* loop, std::string dir, UniqueFd fd, Handlers handlers);

  void OnEvents(uint32_t events);
  // Each returns false when the session closed or the client was destroyed
  // (the caller must then return without touching members).
  bool FinishConnect();
  bool ReadAvailable();
  bool HandleLine(absl::string_view line);
  bool Flush();
  void Send(Command& command);
  void UpdateInterest();
  // Closes the session and calls on_closed; returns false.
  bool Close(absl::Status why);

  EventLoop* const loop_;
  const std::string dir_;
  UniqueFd fd_;
  Handlers handlers_;
  State state_ = State::kGreeting;
  std::string in_;   // bytes read, not yet a whole line
  std::string out_;  // bytes not yet written
  std::deque<Command> commands_;  // queued or waiting, in id order
  uint64_t next_id_ = 1;
  uint32_t interest_ = 0;
  EventLoop::TimerHandle closed_timer_ = 0;  // on_closed's, once closed
  // Expires when the client is destroyed: lets a method notice that a
  // handler it called destroyed the client.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

absl::string_view QmpStateName(QmpClient::State state);

}  // namespace blixard::net

#endif  // BLIXARD_NET_EXEC_QMP_CLIENT_H_
