#include "net/exec/qmp_client.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "google/protobuf/util/json_util.h"

namespace blixard::net {
namespace {

// The negotiation's id: commands from Execute start at 1.
constexpr uint64_t kCapabilitiesId = 0;
// Bytes read per read() call; a burst is read until EAGAIN.
constexpr size_t kReadChunkBytes = 4096;

bool IsCommandName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_' ||
          c == '-')) {
      return false;
    }
  }
  return true;
}

std::string CommandLine(absl::string_view name, uint64_t id) {
  return absl::StrCat("{\"execute\":\"", name, "\",\"id\":", id, "}\r\n");
}

// A reply's "id" as we sent it (a JSON number; ours are small integers,
// exact in a double), or false when missing or not one of ours.
bool ReplyId(const google::protobuf::Struct& message, uint64_t* id) {
  auto it = message.fields().find("id");
  if (it == message.fields().end() || !it->second.has_number_value()) {
    return false;
  }
  const double value = it->second.number_value();
  if (value < 0 || value > 1e15) return false;
  *id = static_cast<uint64_t>(value);
  return static_cast<double>(*id) == value;
}

}  // namespace

absl::string_view QmpStateName(QmpClient::State state) {
  switch (state) {
    case QmpClient::State::kConnecting:
      return "kConnecting";
    case QmpClient::State::kGreeting:
      return "kGreeting";
    case QmpClient::State::kNegotiating:
      return "kNegotiating";
    case QmpClient::State::kReady:
      return "kReady";
    case QmpClient::State::kClosed:
      return "kClosed";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<QmpClient>> QmpClient::Connect(
    EventLoop* loop, const std::string& dir, Handlers handlers) {
  CHECK(loop != nullptr);
  // sun_path holds 108 bytes; a VM folder's path may be longer. The
  // /proc/self/fd link to the folder is short and resolves the same.
  UniqueFd dir_fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return ErrnoStatus("open", errno, dir);
  const std::string path =
      absl::StrCat("/proc/self/fd/", dir_fd.get(), "/", kQmpSocketName);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  CHECK_LT(path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, path.data(), path.size());

  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket", errno, "AF_UNIX");
  State state = State::kGreeting;
  if (connect(fd.get(), reinterpret_cast<const struct sockaddr*>(&addr),
              sizeof(addr)) != 0) {
    const int error = errno;
    if (error == EINPROGRESS) {
      state = State::kConnecting;
    } else if (error == ENOENT || error == ECONNREFUSED || error == EAGAIN) {
      return absl::UnavailableError(
          absl::StrCat("qmp ", dir, ": not listening (", strerror(error), ")"));
    } else {
      return ErrnoStatus("connect", error, absl::StrCat(dir, "/", kQmpSocketName));
    }
  }
  std::unique_ptr<QmpClient> client(
      new QmpClient(loop, dir, std::move(fd), std::move(handlers)));
  client->state_ = state;
  client->interest_ = state == State::kConnecting ? EventLoop::kWritable
                                                  : EventLoop::kReadable;
  QmpClient* raw = client.get();
  absl::Status added =
      loop->AddFd(raw->fd_.get(), raw->interest_,
                  [raw](uint32_t events) { raw->OnEvents(events); });
  if (!added.ok()) return added;
  return client;
}

QmpClient::QmpClient(EventLoop* loop, std::string dir, UniqueFd fd,
                     Handlers handlers)
    : loop_(loop),
      dir_(std::move(dir)),
      fd_(std::move(fd)),
      handlers_(std::move(handlers)) {}

QmpClient::~QmpClient() {
  if (fd_.valid()) (void)loop_->RemoveFd(fd_.get());
  if (closed_timer_ != 0) loop_->CancelTimer(closed_timer_);
}

absl::StatusOr<uint64_t> QmpClient::Execute(absl::string_view command) {
  CHECK(IsCommandName(command)) << command;
  if (state_ == State::kClosed) {
    return absl::FailedPreconditionError(
        absl::StrCat("qmp ", dir_, ": session closed"));
  }
  if (commands_.size() >= kCommandsQueuedMax) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "qmp ", dir_, ": ", kCommandsQueuedMax, " commands already wait"));
  }
  const uint64_t id = next_id_++;
  commands_.push_back(Command{id, std::string(command), false});
  if (state_ == State::kReady) {
    Send(commands_.back());
    UpdateInterest();
  }
  return id;
}

void QmpClient::Send(Command& command) {
  CHECK(!command.sent);
  command.sent = true;
  out_ += CommandLine(command.name, command.id);
}

void QmpClient::UpdateInterest() {
  if (state_ == State::kClosed) return;
  const uint32_t want =
      state_ == State::kConnecting
          ? EventLoop::kWritable
          : EventLoop::kReadable | (out_.empty() ? 0u : EventLoop::kWritable);
  if (want == interest_) return;
  if (absl::Status s = loop_->ModifyFd(fd_.get(), want); !s.ok()) {
    (void)Close(s);
    return;
  }
  interest_ = want;
}

void QmpClient::OnEvents(uint32_t events) {
  std::weak_ptr<bool> alive = alive_;
  if (state_ == State::kConnecting) {
    if (!FinishConnect()) return;
  }
  if ((events & (EventLoop::kReadable | EventLoop::kHangup |
                 EventLoop::kError)) != 0) {
    if (!ReadAvailable()) return;
  }
  if (alive.expired() || state_ == State::kClosed) return;
  if (!Flush()) return;
  UpdateInterest();
}

bool QmpClient::FinishConnect() {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
    error = errno;
  }
  if (error != 0) return Close(ErrnoStatus("connect", error, dir_));
  state_ = State::kGreeting;
  UpdateInterest();
  return state_ != State::kClosed;
}

bool QmpClient::ReadAvailable() {
  std::weak_ptr<bool> alive = alive_;
  char buffer[kReadChunkBytes];
  for (;;) {
    const ssize_t n = read(fd_.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      return Close(ErrnoStatus("read", errno, absl::StrCat("qmp ", dir_)));
    }
    if (n == 0) {
      return Close(absl::UnavailableError(
          absl::StrCat("qmp ", dir_, ": QEMU closed the connection")));
    }
    in_.append(buffer, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t end; (end = in_.find('\n', start)) != std::string::npos;
         start = end + 1) {
      absl::string_view line(in_.data() + start, end - start);
      if (!HandleLine(absl::StripAsciiWhitespace(line))) return false;
      // A handler may have destroyed or closed the client.
      if (alive.expired() || state_ == State::kClosed) return false;
    }
    in_.erase(0, start);
    if (in_.size() > kLineBytesMax) {
      return Close(absl::ResourceExhaustedError(absl::StrCat(
          "qmp ", dir_, ": a line longer than ", kLineBytesMax, " bytes")));
    }
  }
}

bool QmpClient::HandleLine(absl::string_view line) {
  if (line.empty()) return true;
  google::protobuf::Struct message;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      std::string(line), &message);
  if (!parsed.ok()) {
    return Close(absl::DataLossError(absl::StrCat(
        "qmp ", dir_, ": not a JSON object: ", parsed.ToString())));
  }
  const auto& fields = message.fields();
  if (state_ == State::kGreeting) {
    if (fields.count("QMP") == 0) {
      return Close(absl::DataLossError(
          absl::StrCat("qmp ", dir_, ": no greeting: ", line)));
    }
    state_ = State::kNegotiating;
    out_ += CommandLine("qmp_capabilities", kCapabilitiesId);
    return true;
  }
  if (auto event = fields.find("event"); event != fields.end()) {
    if (handlers_.on_event) handlers_.on_event(event->second.string_value());
    return true;
  }
  const bool is_return = fields.count("return") > 0;
  if (!is_return && fields.count("error") == 0) {
    return Close(absl::DataLossError(
        absl::StrCat("qmp ", dir_, ": neither reply nor event: ", line)));
  }
  uint64_t id = 0;
  if (!ReplyId(message, &id)) {
    return Close(absl::DataLossError(
        absl::StrCat("qmp ", dir_, ": reply without our id: ", line)));
  }
  Reply reply;
  reply.id = id;
  reply.ok = is_return;
  if (!is_return) {
    const auto& error = fields.at("error").struct_value().fields();
    auto cls = error.find("class");
    auto desc = error.find("desc");
    reply.error = absl::StrCat(
        cls == error.end() ? "?" : cls->second.string_value(), ": ",
        desc == error.end() ? "" : desc->second.string_value());
  }
  if (state_ == State::kNegotiating) {
    if (id != kCapabilitiesId) {
      return Close(absl::DataLossError(
          absl::StrCat("qmp ", dir_, ": unexpected reply ", id)));
    }
    if (!reply.ok) {
      return Close(absl::FailedPreconditionError(absl::StrCat(
          "qmp ", dir_, ": qmp_capabilities refused: ", reply.error)));
    }
    state_ = State::kReady;
    for (Command& command : commands_) Send(command);
    if (handlers_.on_ready) handlers_.on_ready();
    return true;
  }
  if (commands_.empty() || !commands_.front().sent ||
      commands_.front().id != id) {
    return Close(absl::DataLossError(
        absl::StrCat("qmp ", dir_, ": reply ", id, " out of order")));
  }
  reply.command = std::move(commands_.front().name);
  commands_.pop_front();
  if (reply.ok) {
    const google::protobuf::Value& value = fields.at("return");
    if (value.has_struct_value()) reply.result = value.struct_value();
  }
  if (handlers_.on_reply) handlers_.on_reply(reply);
  return true;
}

bool QmpClient::Flush() {
  while (!out_.empty()) {
    const ssize_t n = send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      return Close(ErrnoStatus("send", errno, absl::StrCat("qmp ", dir_)));
    }
    out_.erase(0, static_cast<size_t>(n));
  }
  return true;
}

bool QmpClient::Close(absl::Status why) {
  if (state_ == State::kClosed) return false;
  state_ = State::kClosed;
  (void)loop_->RemoveFd(fd_.get());
  fd_.Reset();
  out_.clear();
  in_.clear();
  commands_.clear();
  if (handlers_.on_closed) {
    closed_timer_ = loop_->AddTimerAt(
        loop_->clock().NowMicros(), [this, why = std::move(why)] {
          closed_timer_ = 0;
          // Moved out first: the handler may destroy this client.
          std::function<void(const absl::Status&)> on_closed =
              std::move(handlers_.on_closed);
          on_closed(why);
        });
  }
  return false;
}

std::string QmpClient::DebugString() const {
  size_t waiting = 0;
  for (const Command& command : commands_) waiting += command.sent ? 1 : 0;
  return absl::StrCat("qmp ", dir_, ": ", QmpStateName(state_), ", ",
                      commands_.size() - waiting, " queued, ", waiting,
                      " waiting for a reply, ", out_.size(), " bytes unsent");
}

void QmpClient::CheckInvariants() const {
  CHECK_LE(commands_.size(), kCommandsQueuedMax);
  CHECK_LE(in_.size(), kLineBytesMax);
  CHECK_EQ(fd_.valid(), state_ != State::kClosed) << DebugString();
  CHECK(closed_timer_ == 0 || state_ == State::kClosed) << DebugString();
  if (fd_.valid()) CHECK(loop_->HasFd(fd_.get())) << DebugString();
  uint64_t previous = 0;
  bool unsent_seen = false;
  for (const Command& command : commands_) {
    CHECK_GT(command.id, previous);
    previous = command.id;
    // Sent in order: no sent command after an unsent one.
    CHECK(!(command.sent && unsent_seen)) << DebugString();
    unsent_seen = unsent_seen || !command.sent;
    CHECK(command.sent || state_ != State::kReady) << DebugString();
  }
}

}  // namespace blixard::net
