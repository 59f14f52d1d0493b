#include "net/api/kv_load.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/proto/api.pb.h"
#include "core/sm/cluster_limits.h"
#include "net/api/client_protocol.h"
#include "net/api/token_bucket.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

// The token bucket may lag the clock this long before it drops tokens: the
// loop's timers fire to the millisecond (token_bucket.h), plus slack for an
// iteration busy with a thousand replies.
constexpr int64_t kPacingLagUs = 2 * kMicrosPerMilli;
// Fds beyond one per client: the loop's own, stdio, the CLI's client.
constexpr uint64_t kSpareFds = 64;
// Bytes taken from a socket per read; a reply is well under it.
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr char kRandomKeyPrefix[] = "check-perf/";
constexpr char kKeyAlphabet[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
static_assert(sizeof(kKeyAlphabet) - 1 == 64);  // 6 bits a character

struct LoadClient {
  UniqueFd fd;
  bool connected = false;
  bool busy = false;  // a request in flight
  uint64_t client_id = 0;
  uint64_t sequence = 0;
  MonoMicros sent_at = 0;
  std::string out;  // bytes not yet written
  std::unique_ptr<EnvelopeDecoder<api::ClientReply>> decoder;
};

absl::Status EnsureOpenFiles(uint64_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", std::strerror(errno)));
  }
  if (limit.rlim_cur >= needed) return absl::OkStatus();
  if (limit.rlim_max < needed) {
    return absl::ResourceExhaustedError(absl::StrCat(
        needed, " open files needed, the hard limit (ulimit -Hn) is ", limit.rlim_max));
  }
  limit.rlim_cur = needed;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("setrlimit(RLIMIT_NOFILE, ", needed, "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

class Load {
 public:
  Load(const KvLoadOptions& options, EventLoop* loop)
      : options_(options), loop_(loop), rng_(options.seed), value_(options.value_bytes, '\0') {}

  ~Load() {
    for (const std::unique_ptr<LoadClient>& client : clients_) {
      if (client->fd.get() >= 0 && loop_->HasFd(client->fd.get())) {
        (void)loop_->RemoveFd(client->fd.get());
      }
    }
  }

  absl::Status Connect() {
    for (int i = 0; i < options_.clients; ++i) {
      absl::StatusOr<Dialing> dialing = StartConnect(options_.endpoint);
      if (!dialing.ok()) return absl::UnavailableError(dialing.status().message());
      auto client = std::make_unique<LoadClient>();
      client->fd = std::move(dialing->fd);
      client->client_id = (rng_.Next() | 1) & ((uint64_t{1} << 62) - 1);
      client->decoder = std::make_unique<EnvelopeDecoder<api::ClientReply>>(kFrameBodyBytesMax);
      const int fd = client->fd.get();
      const size_t index = clients_.size();
      clients_.push_back(std::move(client));
      if (dialing->connected) OnConnected(index);
      const uint32_t interest = dialing->connected ? EventLoop::kReadable : EventLoop::kWritable;
      if (absl::Status s = loop_->AddFd(fd, interest,
                                        [this, index](uint32_t events) { OnEvents(index, events); });
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  bool connected() const { return connected_ == clients_.size(); }

  // The run's clock starts: the generator opens.
  void Start(MonoMicros now) {
    started_ = now;
    has_started_ = true;
    issuing_ = true;
    if (options_.rate_per_second > 0) {
      bucket_.emplace(options_.rate_per_second, now, kPacingLagUs);
    }
    Pump(now);
  }

  // Makes the requests due at `now` and hands them out (see the header).
  void Pump(MonoMicros now) {
    if (!error_.ok()) return;
    // Queued requests first: a client that came free takes the oldest.
    while (queued_ > 0 && !idle_.empty()) {
      --queued_;
      Send(PopIdle(), now);
    }
    if (issuing_ && ((options_.ops > 0 && made_ >= options_.ops) ||
                     (options_.duration_us > 0 && now - started_ >= options_.duration_us))) {
      issuing_ = false;  // etcd closes its channel: the queue drains, no more
    }
    if (!issuing_) return;
    if (!bucket_.has_value()) {
      while (!idle_.empty() && (options_.ops == 0 || made_ < options_.ops)) {
        ++made_;
        Send(PopIdle(), now);
      }
      return;
    }
    blocked_ = false;
    while (bucket_->Due(now) && (options_.ops == 0 || made_ < options_.ops)) {
      if (!idle_.empty()) {
        Send(PopIdle(), now);
      } else if (queued_ < clients_.size()) {
        ++queued_;
      } else {
        blocked_ = true;  // the queue is full: wait for a reply, as etcd's generator does
        return;
      }
      bucket_->Take(now);
      ++made_;
    }
  }

  // How long the loop may sleep before the generator has work.
  absl::Duration NextWait(MonoMicros now) const {
    // Replies wake the loop; only a generator waiting for a token (not for
    // room in the queue) needs a timer.
    if (!issuing_ || !bucket_.has_value() || blocked_) return absl::Milliseconds(100);
    return absl::Microseconds(std::clamp<int64_t>(bucket_->NextDueMicros() - now, 0, 100'000));
  }

  bool done() const {
    return !error_.ok() || (has_started_ && !issuing_ && queued_ == 0 && in_flight_ == 0);
  }
  const absl::Status& error() const { return error_; }
  KvLoadResult& result() { return result_; }

  // Between Pumps: every connected client is idle or busy, never both; a
  // queued request means no client was idle; the queue and the answers
  // stay within their bounds.
  void CheckInvariants() const {
    CHECK_LE(connected_, clients_.size());
    CHECK_EQ(idle_.size() + in_flight_, connected_);
    CHECK_LE(queued_, clients_.size());
    if (queued_ > 0 && error_.ok()) CHECK(idle_.empty());
    CHECK_EQ(result_.ok + result_.failed + in_flight_, result_.sent);
    CHECK_EQ(result_.latencies_us.size(), result_.ok);
    CHECK_EQ(result_.sent + queued_, made_);
  }
  MonoMicros started() const { return started_; }
  MonoMicros last_reply() const { return last_reply_; }

 private:
  void Fail(absl::Status status) {
    if (error_.ok()) error_ = std::move(status);
  }

  std::string Where() const {
    return absl::StrCat(options_.endpoint.host, ":", options_.endpoint.port);
  }

  size_t PopIdle() {
    const size_t index = idle_.back();
    idle_.pop_back();
    return index;
  }

  std::string NextKey() {
    if (options_.keys == KvLoadOptions::Keys::kRandom) {
      std::string key = kRandomKeyPrefix;
      key.reserve(options_.key_bytes);
      uint64_t bits = 0;
      int left = 0;
      while (key.size() < options_.key_bytes) {
        if (left == 0) {
          bits = rng_.Next();
          left = 10;  // 10 characters of 6 bits from 64
        }
        key.push_back(kKeyAlphabet[bits & 63]);
        bits >>= 6;
        --left;
      }
      return key;
    }
    if (options_.op == KvLoadOptions::Op::kGet) {
      return IndexedKey(rng_.Uniform(options_.key_space), options_.key_bytes);
    }
    return IndexedKey(result_.sent, options_.key_bytes);
  }

  void Send(size_t index, MonoMicros now) {
    LoadClient& client = *clients_[index];
    CHECK(!client.busy);
    api::ClientCall call;
    call.set_call_id(++client.sequence);
    if (options_.op == KvLoadOptions::Op::kPut) {
      cluster::Command* command = call.mutable_request()->mutable_command();
      command->mutable_request_id()->set_client_id(client.client_id);
      command->mutable_request_id()->set_sequence(client.sequence);
      command->mutable_kv_put()->set_key(NextKey());
      command->mutable_kv_put()->set_value(value_);
    } else {
      call.mutable_request()->mutable_query()->set_kv_get(NextKey());
    }
    call.mutable_request()->set_allow_forward(options_.forward);
    client.out += EncodeCallFrame(call);
    client.busy = true;
    client.sent_at = now;
    ++in_flight_;
    ++result_.sent;
    Flush(index);
  }

  void Flush(size_t index) {
    LoadClient& client = *clients_[index];
    while (!client.out.empty()) {
      const ssize_t n = write(client.fd.get(), client.out.data(), client.out.size());
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        Fail(absl::UnavailableError(absl::StrCat("write to ", Where(), ": ", std::strerror(errno))));
        return;
      }
      client.out.erase(0, static_cast<size_t>(n));
    }
    // Writable interest only while bytes wait (level-triggered).
    const uint32_t interest = EventLoop::kReadable | (client.out.empty() ? 0 : EventLoop::kWritable);
    if (absl::Status s = loop_->ModifyFd(client.fd.get(), interest); !s.ok()) Fail(s);
  }

  void OnConnected(size_t index) {
    clients_[index]->connected = true;
    ++connected_;
    idle_.push_back(index);
  }

  void OnEvents(size_t index, uint32_t events) {
    LoadClient& client = *clients_[index];
    if (!client.connected) {
      if (absl::Status s = FinishConnect(client.fd.get(), options_.endpoint); !s.ok()) {
        Fail(absl::UnavailableError(s.message()));
        return;
      }
      OnConnected(index);
      if (absl::Status s = loop_->ModifyFd(client.fd.get(), EventLoop::kReadable); !s.ok()) Fail(s);
      return;
    }
    if (events & EventLoop::kWritable) Flush(index);
    if (!(events & (EventLoop::kReadable | EventLoop::kHangup | EventLoop::kError))) return;
    char buffer[kReadChunkBytes];
    const ssize_t n = read(client.fd.get(), buffer, sizeof(buffer));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      Fail(absl::UnavailableError(absl::StrCat("connection to ", Where(), " closed")));
      return;
    }
    if (n < 0) return;
    client.decoder->Feed(absl::string_view(buffer, static_cast<size_t>(n)));
    const MonoMicros now = loop_->clock().NowMicros();
    for (;;) {
      absl::StatusOr<std::optional<api::ClientReply>> reply = client.decoder->Next();
      if (!reply.ok()) {
        Fail(absl::UnavailableError(reply.status().message()));
        return;
      }
      if (!reply->has_value()) break;
      if (!client.busy || (*reply)->call_id() != client.sequence) {
        Fail(absl::UnavailableError(absl::StrCat(Where(), " answered call ", (*reply)->call_id(),
                                                 ", not the one in flight")));
        return;
      }
      OnReply(index, (*reply)->response(), now);
    }
    Pump(now);
  }

  void OnReply(size_t index, const api::ClientResponse& response, MonoMicros now) {
    LoadClient& client = *clients_[index];
    client.busy = false;
    --in_flight_;
    last_reply_ = now;
    idle_.push_back(index);
    if (response.status() == api::ClientResponse::STATUS_NOT_LEADER && !options_.forward) {
      ++result_.failed;
      Fail(absl::UnavailableError(absl::StrCat(Where(), " is not the leader (leader: node ",
                                               response.leader_hint(), ")")));
      return;
    }
    const cluster::ResultCode code = options_.op == KvLoadOptions::Op::kPut
                                         ? response.result().code()
                                         : response.query_result().code();
    if (response.status() == api::ClientResponse::STATUS_OK && code == cluster::RESULT_OK) {
      ++result_.ok;
      result_.latencies_us.push_back(now - client.sent_at);
      return;
    }
    ++result_.failed;
    std::string error = api::ClientResponse::Status_Name(response.status());
    if (!response.error().empty()) absl::StrAppend(&error, " ", response.error());
    if (response.status() == api::ClientResponse::STATUS_OK) {
      absl::StrAppend(&error, " ", cluster::ResultCode_Name(code));
    }
    ++result_.errors[error];
  }

  const KvLoadOptions& options_;
  EventLoop* const loop_;
  Rng rng_;
  const std::string value_;
  std::vector<std::unique_ptr<LoadClient>> clients_;
  size_t connected_ = 0;
  std::vector<size_t> idle_;   // connected clients with nothing in flight
  size_t queued_ = 0;          // requests made, waiting for a client
  size_t in_flight_ = 0;
  uint64_t made_ = 0;          // requests made (sent or queued)
  bool issuing_ = false;
  bool blocked_ = false;       // a token is due, the queue is full
  std::optional<TokenBucket> bucket_;
  bool has_started_ = false;
  MonoMicros started_ = 0;
  MonoMicros last_reply_ = 0;
  absl::Status error_;
  KvLoadResult result_;
};

}  // namespace

absl::Status KvLoadOptions::Validate() const {
  if (clients < 1 || clients > kClientsMax) {
    return absl::InvalidArgumentError(absl::StrCat("clients must be in 1..", kClientsMax));
  }
  if (ops == 0 && duration_us <= 0) {
    return absl::InvalidArgumentError("either ops or a duration must bound the run");
  }
  if (duration_us < 0) return absl::InvalidArgumentError("duration must not be negative");
  if (rate_per_second > TokenBucket::kRatePerSecondMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("rate must be at most ", TokenBucket::kRatePerSecondMax, "/s"));
  }
  if (key_bytes < kKeyBytesMin || key_bytes > kKvKeyBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("key size must be in ", kKeyBytesMin, "..", kKvKeyBytesMax, " bytes"));
  }
  if (value_bytes > kKvValueBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("value size must be at most ", kKvValueBytesMax, " bytes"));
  }
  if (op == Op::kGet && keys == Keys::kRandom) {
    return absl::InvalidArgumentError("random keys are for puts only");
  }
  if (op == Op::kGet && key_space == 0) {
    return absl::InvalidArgumentError("gets need a key space of at least one key");
  }
  if (connect_timeout_us <= 0 || timeout_us <= 0) {
    return absl::InvalidArgumentError("timeouts must be positive");
  }
  return absl::OkStatus();
}

std::string IndexedKey(uint64_t index, size_t key_bytes) {
  CHECK_GE(key_bytes, KvLoadOptions::kKeyBytesMin);
  CHECK_LT(index, uint64_t{1'000'000'000'000'000});
  std::string key = absl::StrFormat("k%015u", index);
  key.resize(key_bytes, '.');
  return key;
}

absl::StatusOr<KvLoadResult> RunKvLoad(const KvLoadOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (absl::Status s = EnsureOpenFiles(static_cast<uint64_t>(options.clients) + kSpareFds);
      !s.ok()) {
    return s;
  }
  std::unique_ptr<EventLoop> own_loop;
  EventLoop* loop = options.loop;
  if (loop == nullptr) {
    absl::StatusOr<std::unique_ptr<EventLoop>> created = EventLoop::Create();
    if (!created.ok()) return created.status();
    own_loop = std::move(*created);
    loop = own_loop.get();
  }
  Load load(options, loop);
  if (absl::Status s = load.Connect(); !s.ok()) return s;
  const MonoMicros connect_deadline = loop->clock().NowMicros() + options.connect_timeout_us;
  while (!load.connected() && load.error().ok()) {
    if (loop->clock().NowMicros() > connect_deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "not every connection to ", options.endpoint.host, ":", options.endpoint.port,
          " was up within ", options.connect_timeout_us / kMicrosPerMilli, " ms"));
    }
    loop->RunOnce(absl::Milliseconds(100));
  }
  if (!load.error().ok()) return load.error();
  load.Start(loop->clock().NowMicros());
  const MonoMicros deadline = load.started() + options.timeout_us;
  while (!load.done()) {
    const MonoMicros now = loop->clock().NowMicros();
    if (now > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the run took longer than ", options.timeout_us / kMicrosPerMilli, " ms (",
          load.result().ok + load.result().failed, " of ", load.result().sent, " answered)"));
    }
    loop->RunOnce(load.NextWait(now));
    load.Pump(loop->clock().NowMicros());
    load.CheckInvariants();
  }
  if (!load.error().ok()) return load.error();
  KvLoadResult result = std::move(load.result());
  result.elapsed_us = std::max<int64_t>(load.last_reply(), load.started()) - load.started();
  std::sort(result.latencies_us.begin(), result.latencies_us.end());
  return result;
}

}  // namespace blixard::net
