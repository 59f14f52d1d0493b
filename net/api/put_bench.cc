#include "net/api/put_bench.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/proto/api.pb.h"
#include "net/api/client_protocol.h"
#include "net/loop/event_loop.h"

namespace blixard::net {
namespace {

struct BenchClient {
  UniqueFd fd;
  bool connected = false;
  bool sending = false;  // its first put went out
  int index = 0;
  uint64_t client_id = 0;
  uint64_t sequence = 0;
  uint64_t call_id = 0;
  MonoMicros sent_at = 0;
  std::string out;  // bytes not yet written
  std::unique_ptr<EnvelopeDecoder<api::ClientReply>> decoder;
};

class Run {
 public:
  Run(const PutBenchOptions& options, EventLoop* loop)
      : options_(options), loop_(loop), rng_(options.seed) {
    value_.resize(options.value_bytes);
    for (char& c : value_) c = static_cast<char>('a' + rng_.Uniform(26));
  }

  absl::Status Start() {
    for (int i = 0; i < options_.clients; ++i) {
      absl::StatusOr<Dialing> dialing = StartConnect(options_.endpoint);
      if (!dialing.ok()) return absl::UnavailableError(dialing.status().message());
      auto client = std::make_unique<BenchClient>();
      client->fd = std::move(dialing->fd);
      client->connected = dialing->connected;
      client->index = i;
      client->client_id = (rng_.Next() | 1) & ((uint64_t{1} << 62) - 1);
      client->decoder = std::make_unique<EnvelopeDecoder<api::ClientReply>>(kFrameBodyBytesMax);
      const int fd = client->fd.get();
      const size_t index = clients_.size();
      clients_.push_back(std::move(client));
      if (absl::Status s = loop_->AddFd(fd, EventLoop::kReadable | EventLoop::kWritable,
                                        [this, index](uint32_t events) { OnEvents(index, events); });
          !s.ok()) {
        return s;
      }
    }
    started_ = loop_->clock().NowMicros();
    return absl::OkStatus();
  }

  bool done() const { return !error_.ok() || result_.ok + result_.failed >= options_.ops; }
  const absl::Status& error() const { return error_; }
  PutBenchResult& result() { return result_; }
  MonoMicros started() const { return started_; }

 private:
  void Fail(absl::Status status) {
    if (error_.ok()) error_ = std::move(status);
  }

  void SendNext(BenchClient& client) {
    if (issued_ >= options_.ops) return;
    ++issued_;
    api::ClientCall call;
    call.set_call_id(++client.call_id);
    cluster::Command* command = call.mutable_request()->mutable_command();
    command->mutable_request_id()->set_client_id(client.client_id);
    command->mutable_request_id()->set_sequence(++client.sequence);
    // Unique per client and put (16 bytes), padded to the key size.
    std::string key = absl::StrFormat("c%04d-%010llu", client.index,
                                      static_cast<unsigned long long>(client.sequence));
    key.resize(options_.key_bytes, '.');
    command->mutable_kv_put()->set_key(std::move(key));
    command->mutable_kv_put()->set_value(value_);
    client.out += EncodeCallFrame(call);
    client.sent_at = loop_->clock().NowMicros();
  }

  void Flush(size_t index) {
    BenchClient& client = *clients_[index];
    while (!client.out.empty()) {
      const ssize_t n = write(client.fd.get(), client.out.data(), client.out.size());
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        Fail(absl::UnavailableError(absl::StrCat("write to ", options_.endpoint.host, ":",
                                                 options_.endpoint.port, ": ",
                                                 std::strerror(errno))));
        return;
      }
      client.out.erase(0, static_cast<size_t>(n));
    }
    // Writable interest only while bytes wait (level-triggered).
    const uint32_t interest = EventLoop::kReadable | (client.out.empty() ? 0 : EventLoop::kWritable);
    if (absl::Status s = loop_->ModifyFd(client.fd.get(), interest); !s.ok()) Fail(s);
  }

  void OnEvents(size_t index, uint32_t events) {
    BenchClient& client = *clients_[index];
    if (!client.connected) {
      if (absl::Status s = FinishConnect(client.fd.get(), options_.endpoint); !s.ok()) {
        Fail(absl::UnavailableError(s.message()));
        return;
      }
      client.connected = true;
    }
    if (!client.sending) {
      client.sending = true;
      SendNext(client);
      Flush(index);
      return;
    }
    if (events & EventLoop::kWritable) Flush(index);
    if (!(events & (EventLoop::kReadable | EventLoop::kHangup | EventLoop::kError))) return;
    char buffer[64 * 1024];
    const ssize_t n = read(client.fd.get(), buffer, sizeof(buffer));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      Fail(absl::UnavailableError(absl::StrCat("connection to ", options_.endpoint.host, ":",
                                               options_.endpoint.port, " closed")));
      return;
    }
    if (n < 0) return;
    client.decoder->Feed(absl::string_view(buffer, static_cast<size_t>(n)));
    for (;;) {
      absl::StatusOr<std::optional<api::ClientReply>> reply = client.decoder->Next();
      if (!reply.ok()) {
        Fail(absl::UnavailableError(reply.status().message()));
        return;
      }
      if (!reply->has_value()) break;
      const api::ClientResponse& response = (*reply)->response();
      if (response.status() == api::ClientResponse::STATUS_NOT_LEADER) {
        Fail(absl::UnavailableError(absl::StrCat(
            options_.endpoint.host, ":", options_.endpoint.port,
            " is not the leader (leader: node ", response.leader_hint(), ")")));
        return;
      }
      if (response.status() == api::ClientResponse::STATUS_OK &&
          response.result().code() == cluster::RESULT_OK) {
        ++result_.ok;
        result_.latencies_us.push_back(loop_->clock().NowMicros() - client.sent_at);
      } else {
        ++result_.failed;
        if (result_.first_error.empty()) {
          result_.first_error = absl::StrCat(api::ClientResponse::Status_Name(response.status()),
                                             " ", response.error(), " ",
                                             response.result().message());
        }
      }
      SendNext(client);
    }
    Flush(index);
  }

  const PutBenchOptions& options_;
  EventLoop* const loop_;
  Rng rng_;
  std::string value_;
  std::vector<std::unique_ptr<BenchClient>> clients_;
  uint64_t issued_ = 0;
  MonoMicros started_ = 0;
  absl::Status error_;
  PutBenchResult result_;
};

}  // namespace

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

absl::StatusOr<PutBenchResult> RunPutBench(const PutBenchOptions& options) {
  if (options.clients < 1 || options.clients > 4096) {
    return absl::InvalidArgumentError("clients must be in 1..4096");
  }
  if (options.ops < static_cast<uint64_t>(options.clients)) {
    return absl::InvalidArgumentError("ops must be at least the number of clients");
  }
  if (options.key_bytes < 16 || options.key_bytes > 256) {
    return absl::InvalidArgumentError("key size must be in 16..256 bytes");
  }
  if (options.value_bytes > 64 * 1024) {
    return absl::InvalidArgumentError("value size must be at most 64 KiB");
  }
  if (options.timeout_us <= 0) return absl::InvalidArgumentError("timeout must be positive");
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  if (!loop.ok()) return loop.status();
  Run run(options, loop->get());
  if (absl::Status s = run.Start(); !s.ok()) return s;
  const MonoMicros deadline = run.started() + options.timeout_us;
  while (!run.done()) {
    if ((*loop)->clock().NowMicros() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the run took longer than ", options.timeout_us / kMicrosPerMilli, " ms (",
          run.result().ok, " of ", options.ops, " puts acknowledged)"));
    }
    (*loop)->RunOnce(absl::Milliseconds(100));
  }
  if (!run.error().ok()) return run.error();
  PutBenchResult result = std::move(run.result());
  result.elapsed_us = (*loop)->clock().NowMicros() - run.started();
  std::sort(result.latencies_us.begin(), result.latencies_us.end());
  return result;
}

}  // namespace blixard::net
