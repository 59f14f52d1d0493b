#include "net/api/api_server.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "core/sm/cluster_limits.h"

namespace blixard::net {
namespace {

// The default body cap must take the largest command the state machine
// accepts, with room for the envelope around it.
static_assert(kCallBodyBytesDefault >= kCommandBytesMax + 64 * 1024);

constexpr int64_t kTimeoutUsMin = kMicrosPerMilli;
constexpr int64_t kTimeoutUsMax = int64_t{24} * 3600 * kMicrosPerSecond;
constexpr size_t kOutputBytesMaxLimit = size_t{1} << 30;

ApiCloseReason ReasonFor(StreamError error) {
  switch (error) {
    case StreamError::kBadFrame:
      return ApiCloseReason::kBadFrame;
    case StreamError::kFrameTooLarge:
      return ApiCloseReason::kFrameTooLarge;
    case StreamError::kBadChecksum:
      return ApiCloseReason::kBadChecksum;
    case StreamError::kWrongProtocol:
      return ApiCloseReason::kWrongProtocol;
    case StreamError::kUnexpectedFrame:
      return ApiCloseReason::kUnexpectedFrame;
    case StreamError::kBadBody:
      return ApiCloseReason::kBadBody;
    case StreamError::kNone:
      break;
  }
  CHECK(false) << "a failed decoder without an error";
  return ApiCloseReason::kBadFrame;
}

api::ClientResponse ErrorResponse(api::ClientResponse::Status status,
                                  std::string error) {
  api::ClientResponse response;
  response.set_status(status);
  response.set_error(std::move(error));
  return response;
}

}  // namespace

// One accepted client connection.
struct ApiServer::Conn {
  Conn(uint64_t id_in, std::unique_ptr<Connection> connection_in,
       std::string remote_in, size_t body_bytes_max, MonoMicros now)
      : id(id_in),
        connection(std::move(connection_in)),
        remote(std::move(remote_in)),
        decoder(body_bytes_max),
        accepted_at_us(now),
        last_activity_us(now) {}

  const uint64_t id;
  std::unique_ptr<Connection> connection;
  const std::string remote;
  CallDecoder decoder;
  ConnectionState state = ConnectionState::kAwaitingCall;
  // Client call ids handed to the handler and not answered yet, with
  // whether the call was a command (whose outcome an error answer must not
  // misstate).
  std::map<uint64_t, bool> in_flight;
  // Encoded reply frames not yet fully written, oldest first; the front
  // may be partly written.
  std::deque<std::string> output;
  size_t front_written = 0;
  size_t output_bytes = 0;  // sum of the sizes of `output`
  bool write_interest = false;
  const MonoMicros accepted_at_us;
  // The last complete call received or reply queued.
  MonoMicros last_activity_us;
  // The handshake or idle check; 0: none.
  EventLoop::TimerHandle timer = 0;
  uint64_t calls = 0;
};

absl::string_view ApiCloseReasonName(ApiCloseReason reason) {
  switch (reason) {
    case ApiCloseReason::kClientClosed:
      return "client_closed";
    case ApiCloseReason::kIoError:
      return "io_error";
    case ApiCloseReason::kBadFrame:
      return "bad_frame";
    case ApiCloseReason::kWrongProtocol:
      return "wrong_protocol";
    case ApiCloseReason::kFrameTooLarge:
      return "frame_too_large";
    case ApiCloseReason::kBadChecksum:
      return "bad_checksum";
    case ApiCloseReason::kUnexpectedFrame:
      return "unexpected_frame";
    case ApiCloseReason::kBadBody:
      return "bad_body";
    case ApiCloseReason::kDuplicateCallId:
      return "duplicate_call_id";
    case ApiCloseReason::kHandshakeTimeout:
      return "handshake_timeout";
    case ApiCloseReason::kIdleTimeout:
      return "idle_timeout";
    case ApiCloseReason::kOutputFull:
      return "output_full";
    case ApiCloseReason::kTooManyConnections:
      return "too_many_connections";
    case ApiCloseReason::kConnectionSetup:
      return "connection_setup";
    case ApiCloseReason::kStopped:
      return "stopped";
  }
  return "unknown";
}

absl::string_view ApiConnectionStateName(ApiServer::ConnectionState state) {
  switch (state) {
    case ApiServer::ConnectionState::kAwaitingCall:
      return "awaiting_call";
    case ApiServer::ConnectionState::kOpen:
      return "open";
  }
  return "unknown";
}

absl::Status ApiServerOptions::Validate() const {
  RETURN_IF_ERROR(Annotate(ValidateSocketAddress(listen), "listen: "));
  auto bad = [](absl::string_view field, auto value, absl::string_view want) {
    return absl::InvalidArgumentError(
        absl::StrCat("ApiServerOptions.", field, " = ", value, ": want ", want));
  };
  if (listen_backlog < 1 || listen_backlog > 4096) {
    return bad("listen_backlog", listen_backlog, "1..4096");
  }
  if (connections_max < 1 ||
      connections_max > ApiServer::kConnectionsMaxLimit) {
    return bad("connections_max", connections_max,
               absl::StrCat("1..", ApiServer::kConnectionsMaxLimit));
  }
  if (calls_in_flight_max < 1 || calls_in_flight_max > 65536) {
    return bad("calls_in_flight_max", calls_in_flight_max, "1..65536");
  }
  if (frame_body_bytes_max < 1024 || frame_body_bytes_max > kFrameBodyBytesMax) {
    return bad("frame_body_bytes_max", frame_body_bytes_max,
               absl::StrCat("1024..", kFrameBodyBytesMax));
  }
  if (output_bytes_max < FrameBytes(kFrameBodyBytesMax) ||
      output_bytes_max > kOutputBytesMaxLimit) {
    return bad("output_bytes_max", output_bytes_max,
               absl::StrCat(FrameBytes(kFrameBodyBytesMax), "..",
                            kOutputBytesMaxLimit,
                            " (the largest reply fits an empty queue)"));
  }
  const std::string timeout_range =
      absl::StrCat(kTimeoutUsMin, "..", kTimeoutUsMax, " us");
  if (handshake_timeout_us < kTimeoutUsMin ||
      handshake_timeout_us > kTimeoutUsMax) {
    return bad("handshake_timeout_us", handshake_timeout_us, timeout_range);
  }
  if (idle_timeout_us < kTimeoutUsMin || idle_timeout_us > kTimeoutUsMax) {
    return bad("idle_timeout_us", idle_timeout_us, timeout_range);
  }
  if (logger == nullptr) {
    return absl::InvalidArgumentError("ApiServerOptions.logger is null");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Create(
    EventLoop* loop, ApiServerOptions options, ClientHandler handler) {
  CHECK(loop != nullptr);
  CHECK(loop->InLoopThread());
  CHECK(handler != nullptr);
  RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<ApiServer> server(
      new ApiServer(loop, std::move(options), std::move(handler)));
  RETURN_IF_ERROR(server->Listen());
  return server;
}

ApiServer::ApiServer(EventLoop* loop, ApiServerOptions options,
                     ClientHandler handler)
    : loop_(loop),
      options_(std::move(options)),
      logger_(options_.logger),
      factory_(options_.connection_factory ? options_.connection_factory
                                           : PlaintextConnectionFactory()),
      handler_(std::move(handler)),
      life_(std::make_shared<Life>(Life{this})),
      read_buffer_(new char[kReadChunkBytes]) {}

absl::Status ApiServer::Listen() {
  ASSIGN_OR_RETURN(listen_fd_,
                   ListenTcp(options_.listen, options_.listen_backlog));
  ASSIGN_OR_RETURN(port_, LocalPort(listen_fd_.get()));
  RETURN_IF_ERROR(loop_->AddFd(listen_fd_.get(), EventLoop::kReadable,
                               [this](uint32_t) { OnListenerReady(); }));
  logger_->Info(options_.name, ": serving clients on ",
                address().ToString());
  return absl::OkStatus();
}

ApiServer::~ApiServer() {
  CHECK(loop_->InLoopThread());
  Stop();
  // Every reply a handler still holds becomes a no-op from here on.
  life_.reset();
}

void ApiServer::Stop() {
  CHECK(loop_->InLoopThread());
  if (stopped_) return;
  stopped_ = true;
  if (accept_pause_timer_ != 0) {
    loop_->CancelTimer(accept_pause_timer_);
    accept_pause_timer_ = 0;
  }
  if (listen_fd_.valid()) {
    if (loop_->HasFd(listen_fd_.get())) {
      loop_->RemoveFd(listen_fd_.get()).IgnoreError();
    }
    listen_fd_.Reset();
  }
  const size_t connections = connections_.size();
  const size_t in_flight = calls_in_flight();
  while (!connections_.empty()) {
    Close(connections_.begin()->first, ApiCloseReason::kStopped, "");
  }
  logger_->Info(options_.name, ": stopped; closed ", connections,
                " client connections with ", in_flight,
                " calls in flight (their replies will be dropped)");
}

size_t ApiServer::calls_in_flight() const {
  size_t total = 0;
  for (const auto& [id, conn] : connections_) total += conn->in_flight.size();
  return total;
}

// ---------------------------------------------------------------------------
// Accepting.

void ApiServer::OnListenerReady() {
  for (size_t i = 0; i < kAcceptsPerWakeMax && !stopped_; ++i) {
    absl::StatusOr<std::optional<AcceptedSocket>> accepted =
        AcceptTcp(listen_fd_.get());
    if (!accepted.ok()) {
      ++counters_.accept_errors;
      logger_->Warning(options_.name, ": ", accepted.status().ToString(),
                       "; not accepting for ", kAcceptPauseUs, " us");
      // Level-triggered: a listener that fails (EMFILE) stays ready, so
      // stop watching it for a while instead of spinning.
      if (loop_->ModifyFd(listen_fd_.get(), 0).ok()) {
        accept_pause_timer_ = loop_->AddTimerAt(
            loop_->clock().NowMicros() + kAcceptPauseUs, [this] {
              accept_pause_timer_ = 0;
              const absl::Status resumed =
                  loop_->ModifyFd(listen_fd_.get(), EventLoop::kReadable);
              CHECK(resumed.ok()) << "cannot watch the listener again: "
                                  << resumed;
            });
      }
      return;
    }
    if (!accepted->has_value()) return;
    AcceptOne(std::move(**accepted));
  }
}

void ApiServer::AcceptOne(AcceptedSocket accepted) {
  ++counters_.accepted;
  const std::string what = absl::StrCat("connection from ", accepted.remote);
  if (connections_.size() >= options_.connections_max) {
    // Closed by `accepted` going out of scope: the client sees its
    // connection end before any reply and tries another endpoint.
    CountClose(ApiCloseReason::kTooManyConnections);
    LogClose(ApiCloseReason::kTooManyConnections, what,
             absl::StrCat(connections_.size(),
                          " client connections are open (connections_max)"));
    return;
  }
  // Replies are small and latency-bound; Nagle would hold each one back
  // for the client's delayed ack.
  absl::Status setup = SetNoDelay(accepted.fd.get());
  absl::StatusOr<std::unique_ptr<Connection>> connection;
  if (setup.ok()) {
    connection = factory_(std::move(accepted.fd), /*outbound=*/false,
                          accepted.remote);
    setup = connection.status();
  }
  if (!setup.ok()) {
    CountClose(ApiCloseReason::kConnectionSetup);
    LogClose(ApiCloseReason::kConnectionSetup, what, setup.ToString());
    return;
  }
  CHECK(*connection != nullptr);
  const uint64_t id = next_connection_id_++;
  const MonoMicros now = loop_->clock().NowMicros();
  auto conn = std::make_unique<Conn>(id, std::move(*connection),
                                     accepted.remote,
                                     options_.frame_body_bytes_max, now);
  const absl::Status added = loop_->AddFd(
      conn->connection->fd(), EventLoop::kReadable,
      [this, id](uint32_t events) { OnConnectionEvent(id, events); });
  if (!added.ok()) {
    CountClose(ApiCloseReason::kConnectionSetup);
    LogClose(ApiCloseReason::kConnectionSetup, what, added.ToString());
    return;
  }
  Conn& ref = *conn;
  connections_.emplace(id, std::move(conn));
  ArmTimer(ref, now + options_.handshake_timeout_us);
  logger_->Debug(options_.name, ": accepted connection ", id, " from ",
                 accepted.remote);
}

// ---------------------------------------------------------------------------
// Reading calls.

void ApiServer::OnConnectionEvent(uint64_t id, uint32_t events) {
  if ((events & EventLoop::kWritable) != 0) {
    Flush(id);
  }
  if ((events & (EventLoop::kReadable | EventLoop::kError |
                 EventLoop::kHangup)) == 0) {
    return;
  }
  for (size_t i = 0; i < kReadChunksPerWakeMax; ++i) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Conn& conn = *it->second;
    const IoResult read = conn.connection->Read(
        absl::MakeSpan(read_buffer_.get(), kReadChunkBytes));
    switch (read.kind) {
      case IoResult::Kind::kWouldBlock:
        return;
      case IoResult::Kind::kEof:
        Close(id, ApiCloseReason::kClientClosed,
              conn.in_flight.empty()
                  ? ""
                  : absl::StrCat(conn.in_flight.size(),
                                 " calls in flight will not be answered"));
        return;
      case IoResult::Kind::kError:
        Close(id, ApiCloseReason::kIoError, read.error.ToString());
        return;
      case IoResult::Kind::kOk:
        break;
    }
    counters_.bytes_read += read.bytes;
    conn.decoder.Feed(absl::string_view(read_buffer_.get(), read.bytes));
    if (!DrainCalls(id)) return;
  }
  // More may be waiting: the loop reports the fd again next iteration.
}

bool ApiServer::DrainCalls(uint64_t id) {
  while (true) {
    // Looked up each time: the handler may have stopped the server, and a
    // reply it ran at once may have closed this connection.
    auto it = connections_.find(id);
    if (it == connections_.end()) return false;
    Conn& conn = *it->second;
    absl::StatusOr<std::optional<api::ClientCall>> next = conn.decoder.Next();
    if (!next.ok()) {
      Close(id, ReasonFor(conn.decoder.error()), next.status().message());
      return false;
    }
    if (!next->has_value()) return true;
    if (!HandleCall(id, std::move(**next))) return false;
  }
}

bool ApiServer::HandleCall(uint64_t id, api::ClientCall call) {
  Conn& conn = *connections_.at(id);
  const uint64_t call_id = call.call_id();
  CHECK_NE(call_id, 0u);  // the decoder refuses it
  conn.last_activity_us = loop_->clock().NowMicros();
  if (conn.state == ConnectionState::kAwaitingCall) {
    // From the handshake deadline to the idle one (which may be sooner).
    conn.state = ConnectionState::kOpen;
    loop_->CancelTimer(conn.timer);
    conn.timer = 0;
    ArmTimer(conn, conn.last_activity_us + options_.idle_timeout_us);
  }
  if (conn.in_flight.count(call_id) != 0) {
    // Two replies with one id could not be told apart by the client.
    Close(id, ApiCloseReason::kDuplicateCallId,
          absl::StrCat("call id ", call_id, " is already in flight"));
    return false;
  }
  if (conn.in_flight.size() >= options_.calls_in_flight_max) {
    ++counters_.calls_over_limit;
    return QueueReply(
        conn, call_id, /*is_command=*/false,
        ErrorResponse(api::ClientResponse::STATUS_REJECTED,
                      absl::StrCat(conn.in_flight.size(),
                                   " calls in flight on this connection "
                                   "(calls_in_flight_max); wait for replies")));
  }
  conn.in_flight.emplace(call_id, call.request().has_command());
  ++conn.calls;
  ++counters_.calls;

  // The reply holds the server weakly and names the connection by id, so a
  // late reply after a close, a Stop or the server's destruction is
  // dropped. The flag is shared by every copy of the reply function.
  struct Token {
    std::weak_ptr<Life> life;
    uint64_t connection;
    uint64_t call_id;
    bool answered = false;
  };
  auto token = std::make_shared<Token>(Token{life_, id, call_id});
  ClientReplyFn reply = [token](const api::ClientResponse& response) {
    CHECK(!token->answered) << "call " << token->call_id << " on connection "
                            << token->connection << " answered twice";
    token->answered = true;
    const std::shared_ptr<Life> life = token->life.lock();
    if (life == nullptr) return;  // the server is gone
    life->server->OnReply(token->connection, token->call_id, response);
  };
  // `conn` may not survive the handler (a reply at once that overflows the
  // output, a Stop): it is not touched after this.
  handler_(std::move(*call.mutable_request()), std::move(reply));
  return connections_.count(id) != 0;
}

// ---------------------------------------------------------------------------
// Writing replies.

void ApiServer::OnReply(uint64_t id, uint64_t call_id,
                        const api::ClientResponse& response) {
  CHECK(loop_->InLoopThread()) << "a reply must run on the loop thread";
  auto it = connections_.find(id);
  if (it == connections_.end()) {
    ++counters_.replies_dropped;
    logger_->Debug(options_.name, ": dropped the reply to call ", call_id,
                   " of connection ", id, ", which closed before it");
    return;
  }
  Conn& conn = *it->second;
  auto call = conn.in_flight.find(call_id);
  // Only a reply's own token reaches here, once, and the entry goes only
  // with its reply or its connection.
  CHECK(call != conn.in_flight.end())
      << "connection " << id << " has no call " << call_id << " in flight";
  const bool is_command = call->second;
  conn.in_flight.erase(call);
  QueueReply(conn, call_id, is_command, response);
}

bool ApiServer::QueueReply(Conn& conn, uint64_t call_id, bool is_command,
                           const api::ClientResponse& response) {
  api::ClientReply reply;
  reply.set_call_id(call_id);
  *reply.mutable_response() = response;
  if (EnvelopeBytes(reply) > kFrameBodyBytesMax) {
    ++counters_.replies_too_large;
    logger_->Error(options_.name, ": the reply to call ", call_id,
                   " of connection ", conn.id, " is ", EnvelopeBytes(reply),
                   " bytes, above the ", kFrameBodyBytesMax,
                   "-byte frame limit; answering with an error instead");
    // A command's answer comes after apply: REJECTED ("definitely not
    // applied") would be a lie, so the client learns the outcome is
    // unknown and may retry with the same request id.
    *reply.mutable_response() = ErrorResponse(
        is_command ? api::ClientResponse::STATUS_UNKNOWN
                   : api::ClientResponse::STATUS_REJECTED,
        absl::StrCat("the answer (", EnvelopeBytes(reply),
                     " bytes) is too large to send"));
  }
  std::string frame = EncodeReplyFrame(reply);
  if (conn.output_bytes + frame.size() > options_.output_bytes_max) {
    ++counters_.replies_dropped;
    Close(conn.id, ApiCloseReason::kOutputFull,
          absl::StrCat(conn.output_bytes, " reply bytes wait unread; one of ",
                       frame.size(), " more is above output_bytes_max (",
                       options_.output_bytes_max, ")"));
    return false;
  }
  ++counters_.replies;
  conn.output_bytes += frame.size();
  conn.output.push_back(std::move(frame));
  conn.last_activity_us = loop_->clock().NowMicros();
  // Written when the loop reports the socket writable: every reply queued
  // before then leaves in one gathered write.
  return SetWriteInterest(conn, true);
}

void ApiServer::Flush(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Conn& conn = *it->second;
  absl::string_view pieces[Connection::kWritePiecesMax];
  // Bounded: every pass writes at least one byte of a bounded queue, or
  // returns.
  while (!conn.output.empty()) {
    size_t count = 0;
    for (auto frame = conn.output.begin();
         frame != conn.output.end() && count < Connection::kWritePiecesMax;
         ++frame, ++count) {
      pieces[count] = *frame;
    }
    pieces[0].remove_prefix(conn.front_written);
    const IoResult wrote =
        conn.connection->Write(absl::MakeConstSpan(pieces, count));
    if (wrote.kind == IoResult::Kind::kWouldBlock) return;
    if (wrote.kind != IoResult::Kind::kOk) {
      Close(id, ApiCloseReason::kIoError, wrote.error.ToString());
      return;
    }
    CHECK_GT(wrote.bytes, 0u);
    counters_.bytes_written += wrote.bytes;
    size_t left = wrote.bytes;
    while (left > 0) {
      CHECK(!conn.output.empty());
      const size_t front_left = conn.output.front().size() - conn.front_written;
      if (left < front_left) {
        conn.front_written += left;
        break;
      }
      left -= front_left;
      conn.output_bytes -= conn.output.front().size();
      conn.output.pop_front();
      conn.front_written = 0;
    }
  }
  SetWriteInterest(conn, false);
}

bool ApiServer::SetWriteInterest(Conn& conn, bool on) {
  if (conn.write_interest == on) return true;
  const absl::Status modified = loop_->ModifyFd(
      conn.connection->fd(),
      EventLoop::kReadable | (on ? EventLoop::kWritable : 0u));
  if (!modified.ok()) {
    Close(conn.id, ApiCloseReason::kIoError, modified.ToString());
    return false;
  }
  conn.write_interest = on;
  return true;
}

// ---------------------------------------------------------------------------
// Timeouts.

void ApiServer::ArmTimer(Conn& conn, MonoMicros deadline) {
  CHECK_EQ(conn.timer, 0u);
  const uint64_t id = conn.id;
  conn.timer = loop_->AddTimerAt(deadline, [this, id] { OnTimer(id); });
}

void ApiServer::OnTimer(uint64_t id) {
  Conn& conn = *connections_.at(id);  // a close cancels the timer
  conn.timer = 0;
  const MonoMicros now = loop_->clock().NowMicros();
  if (conn.state == ConnectionState::kAwaitingCall) {
    Close(id, ApiCloseReason::kHandshakeTimeout,
          absl::StrCat("no complete call within ", options_.handshake_timeout_us,
                       " us of connecting"));
    return;
  }
  // One timer per connection, moved lazily: activity only updates
  // last_activity_us, and the timer, when it fires early, re-arms itself.
  if (!conn.in_flight.empty()) {
    ArmTimer(conn, now + options_.idle_timeout_us);
    return;
  }
  const MonoMicros deadline = conn.last_activity_us + options_.idle_timeout_us;
  if (now < deadline) {
    ArmTimer(conn, deadline);
    return;
  }
  Close(id, ApiCloseReason::kIdleTimeout,
        absl::StrCat("nothing in flight for ", now - conn.last_activity_us,
                     " us (idle_timeout_us ", options_.idle_timeout_us, ")"));
}

// ---------------------------------------------------------------------------
// Closing.

void ApiServer::Close(uint64_t id, ApiCloseReason reason,
                      absl::string_view detail) {
  auto it = connections_.find(id);
  CHECK(it != connections_.end()) << "connection " << id;
  std::unique_ptr<Conn> conn = std::move(it->second);
  connections_.erase(it);
  CountClose(reason);
  LogClose(reason,
           absl::StrCat("connection ", id, " from ", conn->remote, " (",
                        conn->calls, " calls)"),
           detail);
  if (conn->timer != 0) loop_->CancelTimer(conn->timer);
  if (loop_->HasFd(conn->connection->fd())) {
    loop_->RemoveFd(conn->connection->fd()).IgnoreError();
  }
  conn->connection->Close();
  // The calls still in flight stay with the handler; their replies find no
  // connection and are dropped (OnReply).
}

void ApiServer::LogClose(ApiCloseReason reason, absl::string_view what,
                         absl::string_view detail) {
  if (reason == ApiCloseReason::kStopped) return;  // Stop() logs once
  LogLevel level = LogLevel::kWarning;
  if (reason == ApiCloseReason::kClientClosed) level = LogLevel::kDebug;
  if (reason == ApiCloseReason::kIdleTimeout) level = LogLevel::kInfo;
  if (!logger_->Enabled(level)) return;
  logger_->Log(level, absl::StrCat(options_.name, ": ", what, " closed (",
                                   ApiCloseReasonName(reason), ")",
                                   detail.empty() ? "" : ": ", detail));
}

std::string ApiServer::DebugString() const {
  std::string out = absl::StrCat(options_.name, " on ", address().ToString(),
                                 stopped_ ? " (stopped)" : "", ": ",
                                 connections_.size(), " connections\n");
  for (const auto& [id, conn] : connections_) {
    absl::StrAppend(&out, "  connection ", id, " from ", conn->remote, " ",
                    ApiConnectionStateName(conn->state), " calls=", conn->calls,
                    " in_flight=", conn->in_flight.size(),
                    " queued_bytes=", conn->output_bytes, "\n");
  }
  return out;
}

void ApiServer::CheckInvariants() const {
  CHECK(loop_->InLoopThread());
  CHECK_NE(port_, 0);
  CHECK(life_ != nullptr);
  CHECK_EQ(life_->server, this);
  if (stopped_) {
    CHECK(!listen_fd_.valid());
    CHECK(connections_.empty());
    CHECK_EQ(accept_pause_timer_, 0u);
  } else {
    CHECK(listen_fd_.valid());
    CHECK(loop_->HasFd(listen_fd_.get()));
  }
  CHECK_LE(connections_.size(), options_.connections_max);
  uint64_t closed = 0;
  for (uint64_t count : counters_.closed) closed += count;
  // Every accepted connection is open or was closed exactly once; refusals
  // at accept are closes too.
  CHECK_EQ(counters_.accepted, closed + connections_.size());
  // Every reply, queued or dropped, answers a call taken or refused.
  CHECK_LE(counters_.replies + counters_.replies_dropped,
           counters_.calls + counters_.calls_over_limit);
  for (const auto& [id, conn] : connections_) {
    CHECK_EQ(conn->id, id);
    CHECK_LT(id, next_connection_id_);
    CHECK(conn->connection != nullptr && conn->connection->is_open());
    CHECK(loop_->HasFd(conn->connection->fd()));
    CHECK_NE(conn->timer, 0u) << "connection " << id << " has no timeout";
    CHECK(loop_->IsTimerPending(conn->timer));
    CHECK_LE(conn->in_flight.size(), options_.calls_in_flight_max);
    if (conn->state == ConnectionState::kAwaitingCall) {
      CHECK(conn->in_flight.empty());
      CHECK_EQ(conn->calls, 0u);
    }
    size_t bytes = 0;
    for (const std::string& frame : conn->output) {
      CHECK_GT(frame.size(), kFrameHeaderBytes);
      bytes += frame.size();
    }
    CHECK_EQ(bytes, conn->output_bytes);
    CHECK_LE(conn->output_bytes, options_.output_bytes_max);
    if (conn->output.empty()) {
      CHECK_EQ(conn->front_written, 0u);
    } else {
      CHECK_LT(conn->front_written, conn->output.front().size());
    }
    // Write interest is on exactly while bytes wait (it is switched off
    // only once the queue is empty).
    if (!conn->output.empty()) {
      CHECK(conn->write_interest);
    }
    CHECK(!conn->decoder.failed());
    conn->decoder.CheckInvariants();
  }
}

}  // namespace blixard::net
