#include "net/api/client.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"

namespace blixard::net {
namespace {

constexpr int64_t kCallTimeoutUsMax = int64_t{3600} * kMicrosPerSecond;
constexpr int64_t kDeadlineUsMax = int64_t{24} * 3600 * kMicrosPerSecond;
constexpr int64_t kBackoffUsMax = 60 * kMicrosPerSecond;

// 64 bits from the kernel's CSPRNG. Client ids must not collide across
// processes (two CLIs with one id would share a session and deduplicate
// each other's writes); a clock or pid mix would make that likely.
absl::StatusOr<uint64_t> RandomU64() {
  uint64_t value = 0;
  size_t got = 0;
  // Bounded: getrandom(2) returns short only when interrupted.
  for (int i = 0; i < 16 && got < sizeof(value); ++i) {
    const ssize_t n = getrandom(reinterpret_cast<char*>(&value) + got,
                                sizeof(value) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("getrandom", errno);
    }
    got += static_cast<size_t>(n);
  }
  if (got < sizeof(value)) {
    return absl::InternalError("getrandom: kept being interrupted");
  }
  return value;
}

std::string Millis(int64_t us) { return absl::StrCat(us / kMicrosPerMilli, " ms"); }

}  // namespace

// One endpoint: its address, what it said it is, and its connection.
struct Client::Endpoint {
  enum class State : uint8_t { kIdle, kConnecting, kConnected };

  SocketAddress address;
  std::string name;  // "127.0.0.1:7001"
  uint64_t node_id = 0;
  State state = State::kIdle;
  // kConnecting: the socket whose connect is in progress.
  UniqueFd dialing;
  // kConnected: the connection and its reply decoder.
  std::unique_ptr<Connection> connection;
  std::optional<ReplyDecoder> decoder;
  // Encoded call frames not yet fully written (kConnecting, kConnected);
  // the front may be partly written.
  std::deque<std::string> output;
  size_t front_written = 0;
  bool write_interest = false;
  // Call ids sent here whose reply is awaited (keys of pending_, not done).
  std::set<uint64_t> awaited;
  // Why its last connection failed (for Call's errors).
  std::string last_error;
};

struct Client::CallLog {
  // Whether any endpoint sent any reply (a status too) during the call.
  bool answered = false;
  uint64_t attempts = 0;
  // The last thing that went wrong at each endpoint.
  std::map<size_t, std::string> errors;
  // The last non-final answer, described.
  std::string last_answer;
};

absl::StatusOr<SocketAddress> ParseEndpoint(absl::string_view endpoint) {
  ASSIGN_OR_RETURN(SocketAddress address, ParseSocketAddress(endpoint));
  if (address.port == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint \"", endpoint, "\": the port must be 1..65535"));
  }
  return address;
}

absl::Status ClientOptions::Validate() const {
  auto bad = [](absl::string_view field, auto value, absl::string_view want) {
    return absl::InvalidArgumentError(
        absl::StrCat("ClientOptions.", field, " = ", value, ": want ", want));
  };
  if (endpoints.empty() || endpoints.size() > Client::kEndpointsMax) {
    return bad("endpoints (count)", endpoints.size(),
               absl::StrCat("1..", Client::kEndpointsMax));
  }
  std::set<std::string> seen;
  for (const std::string& endpoint : endpoints) {
    ASSIGN_OR_RETURN(SocketAddress address, ParseEndpoint(endpoint));
    if (!seen.insert(address.ToString()).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ClientOptions.endpoints: ", address.ToString(), " is listed twice"));
    }
  }
  if (call_timeout_us < kMicrosPerMilli || call_timeout_us > kCallTimeoutUsMax) {
    return bad("call_timeout_us", call_timeout_us,
               absl::StrCat(kMicrosPerMilli, "..", kCallTimeoutUsMax));
  }
  if (deadline_us < kMicrosPerMilli || deadline_us > kDeadlineUsMax) {
    return bad("deadline_us", deadline_us,
               absl::StrCat(kMicrosPerMilli, "..", kDeadlineUsMax));
  }
  if (next_sequence < 1) return bad("next_sequence", next_sequence, ">= 1");
  if (backoff_min_us < kMicrosPerMilli || backoff_min_us > backoff_max_us ||
      backoff_max_us > kBackoffUsMax) {
    return bad("backoff_min_us..backoff_max_us",
               absl::StrCat(backoff_min_us, "..", backoff_max_us),
               absl::StrCat(kMicrosPerMilli, " <= min <= max <= ", kBackoffUsMax));
  }
  if (reply_body_bytes_max < 1024 || reply_body_bytes_max > kFrameBodyBytesMax) {
    return bad("reply_body_bytes_max", reply_body_bytes_max,
               absl::StrCat("1024..", kFrameBodyBytesMax));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::Create());
  EventLoop* raw = loop.get();
  return Create(std::move(options), raw, std::move(loop));
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options,
                                                       EventLoop* loop) {
  CHECK(loop != nullptr);
  CHECK(loop->InLoopThread());
  return Create(std::move(options), loop, nullptr);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(
    ClientOptions options, EventLoop* loop, std::unique_ptr<EventLoop> own_loop) {
  RETURN_IF_ERROR(options.Validate());
  std::vector<SocketAddress> addresses;
  for (const std::string& endpoint : options.endpoints) {
    ASSIGN_OR_RETURN(SocketAddress address, ParseEndpoint(endpoint));
    addresses.push_back(std::move(address));
  }
  uint64_t client_id = options.client_id;
  // Bounded: a zero draw has probability 2^-64.
  for (int i = 0; i < 4 && client_id == 0; ++i) {
    ASSIGN_OR_RETURN(client_id, RandomU64());
  }
  if (client_id == 0) return absl::InternalError("getrandom kept returning 0");
  uint64_t seed = options.seed;
  if (seed == 0) {
    ASSIGN_OR_RETURN(seed, RandomU64());
  }
  return std::unique_ptr<Client>(
      new Client(std::move(options), std::move(addresses), std::move(own_loop),
                 loop, client_id, seed));
}

Client::Client(ClientOptions options, std::vector<SocketAddress> addresses,
               std::unique_ptr<EventLoop> own_loop, EventLoop* loop,
               uint64_t client_id, uint64_t seed)
    : options_(std::move(options)),
      own_loop_(std::move(own_loop)),
      loop_(loop),
      logger_(options_.logger != nullptr ? options_.logger : &null_logger_),
      factory_(options_.connection_factory ? options_.connection_factory
                                           : PlaintextConnectionFactory()),
      client_id_(client_id),
      next_sequence_(options_.next_sequence),
      rng_(seed),
      read_buffer_(new char[kReadChunkBytes]) {
  for (SocketAddress& address : addresses) {
    auto endpoint = std::make_unique<Endpoint>();
    endpoint->name = address.ToString();
    endpoint->address = std::move(address);
    endpoints_.push_back(std::move(endpoint));
  }
}

Client::~Client() {
  CHECK(loop_->InLoopThread());
  // The loop outlives this body (an own loop goes with the members), but
  // callbacks registered there point here: unregister every fd first.
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i]->state != Endpoint::State::kIdle) Fail(i, "client closed");
  }
}

const SocketAddress& Client::endpoint(size_t index) const {
  CHECK_LT(index, endpoints_.size());
  return endpoints_[index]->address;
}

uint64_t Client::endpoint_node_id(size_t index) const {
  CHECK_LT(index, endpoints_.size());
  return endpoints_[index]->node_id;
}

// ---------------------------------------------------------------------------
// Calls.

absl::StatusOr<api::ClientResponse> Client::Call(api::ClientRequest request) {
  CHECK(loop_->InLoopThread());
  if (request.has_status()) {
    return absl::InvalidArgumentError(
        "a status request is answered by the node that gets it: use "
        "NodeStatusAt");
  }
  std::string write_note;
  cluster::RequestId* id = nullptr;
  switch (request.op_case()) {
    case api::ClientRequest::kCommand:
      if (!request.command().has_request_id()) id = request.mutable_command()->mutable_request_id();
      break;
    case api::ClientRequest::kMemberChange:
      if (!request.member_change().has_request_id()) {
        id = request.mutable_member_change()->mutable_request_id();
      }
      break;
    case api::ClientRequest::kQuery:
      break;
    case api::ClientRequest::OP_NOT_SET:
      return absl::InvalidArgumentError("the request has no operation");
  }
  if (request.has_query()) {
    // Reads carry no ids.
  } else if (id == nullptr) {
    return absl::InvalidArgumentError(
        "the write's request_id is set: the client sets it (its client id and next sequence)");
  } else {
    id->set_client_id(client_id_);
    id->set_sequence(next_sequence_);
    write_note = absl::StrCat(
        "; the write (client id ", client_id_, ", sequence ", next_sequence_,
        ") may or may not have been applied: a retry with the same ids "
        "applies it at most once");
    ++next_sequence_;
  }
  {
    api::ClientCall probe;
    probe.set_call_id(UINT64_MAX);
    *probe.mutable_request() = request;
    probe.mutable_request()->set_allow_forward(true);
    if (EnvelopeBytes(probe) > kCallBodyBytesDefault) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the request is ", EnvelopeBytes(probe), " bytes, above the ",
          kCallBodyBytesDefault, "-byte limit of a call"));
    }
  }
  ++counters_.calls;
  // Take in what happened while no call ran (a server that closed an idle
  // connection), so the first attempt does not go to a dead socket.
  loop_->RunOnce(absl::ZeroDuration());

  const MonoMicros deadline = loop_->clock().NowMicros() + options_.deadline_us;
  CallLog log;
  std::optional<size_t> target;
  bool forward = false;
  uint32_t failures = 0;
  size_t redirects = 0;
  while (loop_->clock().NowMicros() < deadline) {
    if (!target.has_value()) {
      std::set<size_t> answered;
      if (!leader_.has_value()) answered = Discover(deadline, &log);
      if (leader_.has_value()) {
        target = leader_;
        forward = false;
      } else {
        // No leader known: take the endpoints in turn, those that just
        // answered first, and let a follower that knows one forward.
        size_t pick = rotation_ % endpoints_.size();
        for (size_t i = 0; i < endpoints_.size(); ++i) {
          const size_t at = (rotation_ + i) % endpoints_.size();
          if (answered.empty() || answered.count(at) != 0) {
            pick = at;
            break;
          }
        }
        rotation_ = pick + 1;
        target = pick;
        forward = true;
      }
      const MonoMicros now = loop_->clock().NowMicros();
      if (now >= deadline) break;
    }
    const size_t at = *target;
    Endpoint& endpoint = *endpoints_[at];
    request.set_allow_forward(forward);
    ++counters_.attempts;
    ++log.attempts;
    const MonoMicros until = std::min(
        loop_->clock().NowMicros() + options_.call_timeout_us, deadline);
    Outcome outcome = Attempt(at, request, until);
    if (!outcome.replied) {
      log.errors[at] = std::string(outcome.error.message());
      if (leader_ == at) leader_.reset();
      target.reset();  // rediscover: the leader may have moved
    } else {
      log.answered = true;
      const api::ClientResponse& response = outcome.response;
      const std::string said = absl::StrCat(
          endpoint.name, " (node ", endpoint.node_id, ") answered ",
          api::ClientResponse::Status_Name(response.status()),
          response.status() == api::ClientResponse::STATUS_NOT_LEADER
              ? absl::StrCat(" (leader hint ", response.leader_hint(), ")")
              : "",
          response.error().empty() ? "" : ": ", response.error());
      switch (response.status()) {
        case api::ClientResponse::STATUS_OK:
          // A forwarded answer came from the leader, not from `at`.
          if (!forward) leader_ = at;
          return outcome.response;
        case api::ClientResponse::STATUS_REJECTED:
          return outcome.response;
        case api::ClientResponse::STATUS_NOT_LEADER: {
          log.last_answer = said;
          if (leader_ == at) leader_.reset();
          std::optional<size_t> hinted;
          for (size_t i = 0; i < endpoints_.size(); ++i) {
            if (response.leader_hint() != 0 &&
                endpoints_[i]->node_id == response.leader_hint()) {
              hinted = i;
            }
          }
          // Redirects are free but bounded: stale hints could send the
          // call around in circles.
          if (hinted.has_value() && *hinted != at &&
              redirects < endpoints_.size()) {
            ++redirects;
            ++counters_.redirects;
            logger_->Info("client ", client_id_, ": ", said, "; going to ",
                          endpoints_[*hinted]->name);
            leader_ = hinted;
            target = hinted;
            forward = false;
            continue;
          }
          // An unknown hint or none: the next endpoint, asked to forward.
          target = (at + 1) % endpoints_.size();
          forward = true;
          break;
        }
        default:
          // STATUS_UNKNOWN (and any status this client does not know):
          // may or may not have happened; the same ids make a retry safe.
          log.last_answer = said;
          if (leader_ == at) leader_.reset();
          target.reset();
          break;
      }
    }
    ++failures;
    SleepWithBackoff(failures, deadline);
  }

  const std::string waited = Millis(options_.deadline_us);
  if (!log.answered) {
    std::vector<std::string> each;
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      auto error = log.errors.find(i);
      each.push_back(error != log.errors.end()
                         ? error->second
                         : absl::StrCat(endpoints_[i]->name, ": not reached"));
    }
    return absl::UnavailableError(absl::StrCat(
        "no endpoint answered within ", waited, " (", log.attempts,
        " attempts): ", absl::StrJoin(each, "; "), write_note));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "no final answer within ", waited, " (", log.attempts,
      " attempts); last: ",
      log.last_answer.empty() ? "no answer to the call itself"
                              : log.last_answer,
      write_note));
}

std::optional<SocketAddress> Client::FindLeader() {
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    absl::StatusOr<api::NodeStatus> status = NodeStatusAt(i);
    if (status.ok() && status->role() == api::NodeStatus::ROLE_LEADER) return endpoint(i);
  }
  return std::nullopt;
}

absl::StatusOr<api::NodeStatus> Client::NodeStatusAt(size_t index, bool with_digest) {
  CHECK(loop_->InLoopThread());
  CHECK_LT(index, endpoints_.size());
  loop_->RunOnce(absl::ZeroDuration());
  api::ClientRequest request;
  request.mutable_status()->set_with_digest(with_digest);
  ++counters_.status_probes;
  Outcome outcome = Attempt(
      index, request, loop_->clock().NowMicros() + options_.call_timeout_us);
  if (!outcome.replied) return outcome.error;
  Endpoint& endpoint = *endpoints_[index];
  const api::ClientResponse& response = outcome.response;
  if (response.status() != api::ClientResponse::STATUS_OK ||
      !response.has_node_status()) {
    return absl::FailedPreconditionError(absl::StrCat(
        endpoint.name, " answered ",
        api::ClientResponse::Status_Name(response.status()),
        " to a status request", response.error().empty() ? "" : ": ",
        response.error()));
  }
  endpoint.node_id = response.node_status().node_id();
  return response.node_status();
}

std::set<size_t> Client::Discover(MonoMicros deadline, CallLog* log) {
  ++counters_.discoveries;
  api::ClientRequest status;
  status.mutable_status();
  std::map<size_t, uint64_t> probes;  // endpoint -> call id
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    ++counters_.status_probes;
    probes.emplace(i, StartCall(i, status));
  }
  auto says_it_leads = [&](uint64_t id) {
    const Pending& pending = pending_.at(id);
    return pending.done && pending.error.ok() &&
           pending.response.status() == api::ClientResponse::STATUS_OK &&
           pending.response.node_status().role() ==
               api::NodeStatus::ROLE_LEADER;
  };
  // Done when every endpoint answered or failed, or as soon as one says it
  // leads: the others need not be waited for.
  bool leader_answered = false;
  auto done = [&] {
    bool all = true;
    for (const auto& [at, id] : probes) {
      if (says_it_leads(id)) {
        leader_answered = true;
        return true;
      }
      all = all && pending_.at(id).done;
    }
    return all;
  };
  const MonoMicros started = loop_->clock().NowMicros();
  const MonoMicros until =
      std::min(started + options_.call_timeout_us, deadline);
  RunUntil(done, until);

  std::set<size_t> answered;
  std::optional<size_t> leading;
  uint64_t leading_term = 0;
  uint64_t named = 0;
  uint64_t named_term = 0;
  for (const auto& [at, id] : probes) {
    Pending& pending = pending_.at(id);
    if (!pending.done) {
      if (leader_answered) {
        Abandon(id);  // slow, but no longer needed
      } else {
        ++counters_.timeouts;
        Fail(at, absl::StrCat("no reply to a status request within ",
                              Millis(until - started)));
        log->errors[at] = std::string(pending.error.message());
        pending_.erase(id);
      }
      continue;
    }
    if (!pending.error.ok()) {
      log->errors[at] = std::string(pending.error.message());
      pending_.erase(id);
      continue;
    }
    log->answered = true;
    answered.insert(at);
    const api::ClientResponse response = std::move(pending.response);
    pending_.erase(id);
    if (response.status() != api::ClientResponse::STATUS_OK ||
        !response.has_node_status()) {
      // A node that does not answer status requests can still take calls.
      continue;
    }
    const api::NodeStatus& node = response.node_status();
    endpoints_[at]->node_id = node.node_id();
    if (node.role() == api::NodeStatus::ROLE_LEADER &&
        (!leading.has_value() || node.term() > leading_term)) {
      leading = at;
      leading_term = node.term();
    }
    if (node.leader_id() != 0 && node.term() >= named_term) {
      named = node.leader_id();
      named_term = node.term();
    }
  }
  if (leading.has_value()) {
    leader_ = leading;
  } else if (named != 0) {
    // Only an endpoint that just answered: a leader that is down (the
    // others have not noticed yet) would fail the attempt again.
    for (size_t at : answered) {
      if (endpoints_[at]->node_id == named) leader_ = at;
    }
  }
  logger_->Debug("client ", client_id_, ": discovery: ", answered.size(), " of ",
                 endpoints_.size(), " endpoints answered; leader ",
                 leader_.has_value() ? endpoints_[*leader_]->name : "unknown");
  return answered;
}

Client::Outcome Client::Attempt(size_t index, const api::ClientRequest& request,
                                MonoMicros until) {
  const uint64_t id = StartCall(index, request);
  RunUntil([&] { return pending_.at(id).done; }, until);
  Outcome outcome;
  Pending& pending = pending_.at(id);
  if (!pending.done) {
    // The connection may be stuck (a paused node): a fresh one next time,
    // and no late reply to match against a call nobody awaits.
    ++counters_.timeouts;
    const std::string why =
        absl::StrCat("no reply within ", Millis(options_.call_timeout_us));
    Fail(index, why);
    outcome.error = absl::DeadlineExceededError(
        absl::StrCat(endpoints_[index]->name, ": ", why));
  } else if (!pending.error.ok()) {
    outcome.error = pending.error;
  } else {
    outcome.replied = true;
    outcome.response = std::move(pending.response);
  }
  pending_.erase(id);
  logger_->Debug("client ", client_id_, ": call to ", endpoints_[index]->name,
                 ": ",
                 outcome.replied
                     ? api::ClientResponse::Status_Name(outcome.response.status())
                     : outcome.error.ToString());
  return outcome;
}

uint64_t Client::StartCall(size_t index, const api::ClientRequest& request) {
  const uint64_t id = next_call_id_++;
  Pending pending;
  pending.endpoint = index;
  pending_.emplace(id, std::move(pending));
  Endpoint& endpoint = *endpoints_[index];
  if (endpoint.state == Endpoint::State::kIdle) Connect(index);
  if (endpoint.state == Endpoint::State::kIdle) {
    // The connect failed at once (refused on loopback).
    Pending& failed = pending_.at(id);
    failed.done = true;
    failed.error = absl::UnavailableError(
        absl::StrCat(endpoint.name, ": ", endpoint.last_error));
    return id;
  }
  api::ClientCall call;
  call.set_call_id(id);
  *call.mutable_request() = request;
  endpoint.output.push_back(EncodeCallFrame(call));
  endpoint.awaited.insert(id);
  if (endpoint.state == Endpoint::State::kConnected) {
    SetWriteInterest(index, true);
  }
  return id;
}

void Client::Abandon(uint64_t id) {
  auto it = pending_.find(id);
  CHECK(it != pending_.end());
  endpoints_[it->second.endpoint]->awaited.erase(id);
  pending_.erase(it);
}

bool Client::RunUntil(const std::function<bool()>& done, MonoMicros until) {
  // Bounded by the clock: each pass waits until something happens or the
  // time is up.
  while (!done()) {
    const MonoMicros now = loop_->clock().NowMicros();
    if (now >= until) return false;
    loop_->RunOnce(absl::Microseconds(until - now));
  }
  return true;
}

void Client::SleepWithBackoff(uint32_t failures, MonoMicros deadline) {
  CHECK_GT(failures, 0u);
  // min * 2^(failures-1), capped at max (doubling stops at the cap).
  int64_t delay_us = options_.backoff_min_us;
  for (uint32_t i = 1; i < failures && delay_us < options_.backoff_max_us; ++i) {
    delay_us *= 2;
  }
  delay_us = std::min(delay_us, options_.backoff_max_us);
  // Equal jitter: never sooner than half, and clients that failed together
  // spread out.
  const auto jittered_us = static_cast<int64_t>(rng_.Range(
      static_cast<uint64_t>(delay_us / 2), static_cast<uint64_t>(delay_us)));
  ++counters_.retries;
  const MonoMicros until =
      std::min(loop_->clock().NowMicros() + jittered_us, deadline);
  // The loop runs meanwhile: connections that end are noticed.
  RunUntil([] { return false; }, until);
}

// ---------------------------------------------------------------------------
// Connections.

void Client::Connect(size_t index) {
  Endpoint& endpoint = *endpoints_[index];
  CHECK(endpoint.state == Endpoint::State::kIdle);
  absl::StatusOr<Dialing> dialing = StartConnect(endpoint.address);
  if (!dialing.ok()) {
    Fail(index, dialing.status().message());
    return;
  }
  if (dialing->connected) {
    OnConnected(index, std::move(dialing->fd));
    return;
  }
  endpoint.dialing = std::move(dialing->fd);
  endpoint.state = Endpoint::State::kConnecting;
  const absl::Status added =
      loop_->AddFd(endpoint.dialing.get(), EventLoop::kWritable,
                   [this, index](uint32_t) { OnDialReady(index); });
  if (!added.ok()) Fail(index, added.message());
  // No connect timer: the attempt's call_timeout_us covers the connect.
}

void Client::OnDialReady(size_t index) {
  Endpoint& endpoint = *endpoints_[index];
  CHECK(endpoint.state == Endpoint::State::kConnecting);
  // Writable, error or hang-up all end the connect; SO_ERROR says how.
  const absl::Status connected =
      FinishConnect(endpoint.dialing.get(), endpoint.address);
  if (!connected.ok()) {
    Fail(index, connected.message());
    return;
  }
  loop_->RemoveFd(endpoint.dialing.get()).IgnoreError();
  OnConnected(index, std::move(endpoint.dialing));
}

void Client::OnConnected(size_t index, UniqueFd fd) {
  Endpoint& endpoint = *endpoints_[index];
  CHECK(fd.valid());
  // A connect to a local port nobody listens on can complete with itself
  // (TCP simultaneous open): our own calls would come back as garbage.
  absl::StatusOr<bool> itself = IsConnectedToItself(fd.get());
  if (!itself.ok() || *itself) {
    Fail(index, itself.ok() ? "connected to itself (nobody listens there)"
                            : itself.status().message());
    return;
  }
  absl::Status setup = SetNoDelay(fd.get());
  absl::StatusOr<std::unique_ptr<Connection>> connection;
  if (setup.ok()) {
    connection = factory_(std::move(fd), /*outbound=*/true, endpoint.name);
    setup = connection.status();
  }
  if (!setup.ok()) {
    Fail(index, setup.message());
    return;
  }
  CHECK(*connection != nullptr);
  const bool writing = !endpoint.output.empty();
  const absl::Status added = loop_->AddFd(
      (*connection)->fd(),
      EventLoop::kReadable | (writing ? EventLoop::kWritable : 0u),
      [this, index](uint32_t events) { OnConnectionEvent(index, events); });
  if (!added.ok()) {
    (*connection)->Close();
    Fail(index, added.message());
    return;
  }
  endpoint.connection = std::move(*connection);
  endpoint.decoder.emplace(options_.reply_body_bytes_max);
  endpoint.state = Endpoint::State::kConnected;
  endpoint.write_interest = writing;
  ++counters_.connects;
}

void Client::OnConnectionEvent(size_t index, uint32_t events) {
  Endpoint& endpoint = *endpoints_[index];
  if ((events & EventLoop::kWritable) != 0) Flush(index);
  if ((events & (EventLoop::kReadable | EventLoop::kError |
                 EventLoop::kHangup)) == 0) {
    return;
  }
  for (size_t i = 0; i < kReadChunksPerWakeMax; ++i) {
    if (endpoint.state != Endpoint::State::kConnected) return;
    const IoResult read = endpoint.connection->Read(
        absl::MakeSpan(read_buffer_.get(), kReadChunkBytes));
    switch (read.kind) {
      case IoResult::Kind::kWouldBlock:
        return;
      case IoResult::Kind::kEof:
        Fail(index,
             "the server closed the connection (a node's peer port closes "
             "clients at once: is this its client port?)");
        return;
      case IoResult::Kind::kError:
        Fail(index, read.error.message());
        return;
      case IoResult::Kind::kOk:
        break;
    }
    endpoint.decoder->Feed(absl::string_view(read_buffer_.get(), read.bytes));
    while (true) {
      absl::StatusOr<std::optional<api::ClientReply>> next =
          endpoint.decoder->Next();
      if (!next.ok()) {
        Fail(index, absl::StrCat("protocol error: ", next.status().message()));
        return;
      }
      if (!next->has_value()) break;
      api::ClientReply& reply = **next;
      auto it = pending_.find(reply.call_id());
      if (it == pending_.end() || it->second.endpoint != index ||
          it->second.done) {
        ++counters_.stale_replies;
        continue;
      }
      it->second.done = true;
      it->second.response = std::move(*reply.mutable_response());
      endpoint.awaited.erase(reply.call_id());
    }
  }
}

void Client::Flush(size_t index) {
  Endpoint& endpoint = *endpoints_[index];
  if (endpoint.state != Endpoint::State::kConnected) return;
  absl::string_view pieces[Connection::kWritePiecesMax];
  while (!endpoint.output.empty()) {
    size_t count = 0;
    for (auto frame = endpoint.output.begin();
         frame != endpoint.output.end() && count < Connection::kWritePiecesMax;
         ++frame, ++count) {
      pieces[count] = *frame;
    }
    pieces[0].remove_prefix(endpoint.front_written);
    const IoResult wrote =
        endpoint.connection->Write(absl::MakeConstSpan(pieces, count));
    if (wrote.kind == IoResult::Kind::kWouldBlock) return;
    if (wrote.kind != IoResult::Kind::kOk) {
      Fail(index, wrote.error.message());
      return;
    }
    size_t left = wrote.bytes;
    while (left > 0) {
      CHECK(!endpoint.output.empty());
      const size_t front_left =
          endpoint.output.front().size() - endpoint.front_written;
      if (left < front_left) {
        endpoint.front_written += left;
        break;
      }
      left -= front_left;
      endpoint.output.pop_front();
      endpoint.front_written = 0;
    }
  }
  SetWriteInterest(index, false);
}

void Client::SetWriteInterest(size_t index, bool on) {
  Endpoint& endpoint = *endpoints_[index];
  CHECK(endpoint.state == Endpoint::State::kConnected);
  if (endpoint.write_interest == on) return;
  const absl::Status modified = loop_->ModifyFd(
      endpoint.connection->fd(),
      EventLoop::kReadable | (on ? EventLoop::kWritable : 0u));
  if (!modified.ok()) {
    Fail(index, modified.message());
    return;
  }
  endpoint.write_interest = on;
}

void Client::Fail(size_t index, absl::string_view why) {
  Endpoint& endpoint = *endpoints_[index];
  if (endpoint.connection != nullptr) {
    if (loop_->HasFd(endpoint.connection->fd())) {
      loop_->RemoveFd(endpoint.connection->fd()).IgnoreError();
    }
    endpoint.connection->Close();
    endpoint.connection.reset();
  }
  if (endpoint.dialing.valid()) {
    if (loop_->HasFd(endpoint.dialing.get())) {
      loop_->RemoveFd(endpoint.dialing.get()).IgnoreError();
    }
    endpoint.dialing.Reset();
  }
  endpoint.state = Endpoint::State::kIdle;
  endpoint.decoder.reset();
  endpoint.output.clear();
  endpoint.front_written = 0;
  endpoint.write_interest = false;
  endpoint.last_error = std::string(why);
  ++counters_.connection_errors;
  for (uint64_t id : endpoint.awaited) {
    Pending& pending = pending_.at(id);
    pending.done = true;
    pending.error =
        absl::UnavailableError(absl::StrCat(endpoint.name, ": ", why));
  }
  endpoint.awaited.clear();
  logger_->Debug("client ", client_id_, ": ", endpoint.name, ": ", why);
}

std::string Client::DebugString() const {
  std::string out =
      absl::StrCat("client ", client_id_, " next sequence ", next_sequence_,
                   " leader ",
                   leader_.has_value() ? endpoints_[*leader_]->name : "unknown",
                   "\n");
  for (const auto& endpoint : endpoints_) {
    const char* state = endpoint->state == Endpoint::State::kIdle ? "idle"
                        : endpoint->state == Endpoint::State::kConnecting
                            ? "connecting"
                            : "connected";
    absl::StrAppend(&out, "  ", endpoint->name, " node ", endpoint->node_id,
                    " ", state, " awaited=", endpoint->awaited.size(),
                    endpoint->last_error.empty() ? "" : " last error: ",
                    endpoint->last_error, "\n");
  }
  return out;
}

void Client::CheckInvariants() const {
  CHECK(loop_->InLoopThread());
  CHECK_NE(client_id_, 0u);
  CHECK_GE(next_sequence_, 1u);
  CHECK(!endpoints_.empty());
  CHECK_LE(endpoints_.size(), kEndpointsMax);
  if (leader_.has_value()) {
    CHECK_LT(*leader_, endpoints_.size());
  }
  size_t awaited = 0;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const Endpoint& endpoint = *endpoints_[i];
    switch (endpoint.state) {
      case Endpoint::State::kIdle:
        CHECK(!endpoint.dialing.valid());
        CHECK(endpoint.connection == nullptr);
        CHECK(!endpoint.decoder.has_value());
        CHECK(endpoint.output.empty());
        CHECK(endpoint.awaited.empty());
        break;
      case Endpoint::State::kConnecting:
        CHECK(endpoint.dialing.valid());
        CHECK(loop_->HasFd(endpoint.dialing.get()));
        CHECK(endpoint.connection == nullptr);
        break;
      case Endpoint::State::kConnected:
        CHECK(!endpoint.dialing.valid());
        CHECK(endpoint.connection != nullptr && endpoint.connection->is_open());
        CHECK(loop_->HasFd(endpoint.connection->fd()));
        CHECK(endpoint.decoder.has_value());
        CHECK(!endpoint.decoder->failed());
        endpoint.decoder->CheckInvariants();
        if (!endpoint.output.empty()) {
          CHECK(endpoint.write_interest);
        }
        break;
    }
    if (endpoint.output.empty()) {
      CHECK_EQ(endpoint.front_written, 0u);
    }
    for (uint64_t id : endpoint.awaited) {
      auto it = pending_.find(id);
      CHECK(it != pending_.end()) << "call " << id;
      CHECK_EQ(it->second.endpoint, i);
      CHECK(!it->second.done);
    }
    awaited += endpoint.awaited.size();
  }
  // Between calls nothing is pending: every attempt and probe is settled
  // (answered, failed or abandoned) before Call returns.
  size_t open = 0;
  for (const auto& [id, pending] : pending_) {
    CHECK_LT(id, next_call_id_);
    if (!pending.done) ++open;
  }
  CHECK_EQ(open, awaited);
}

}  // namespace blixard::net
