// The simulator's Env contract checks (sim/env_contract.h) against the real
// transport: two TcpTransports on one EventLoop over 127.0.0.1, with the
// loop's Clock and Timers, so the Host sees one Transport behaviour in
// simulation and production.
//
// The harness has no Executor (net/exec does not exist yet): executor()
// returns nullptr and ExpectExecutorContract is not called here.
#include <memory>
#include <utility>

#include "absl/time/time.h"
#include "core/base/check.h"
#include "core/base/logger.h"
#include "core/env.h"
#include "gtest/gtest.h"
#include "net/loop/event_loop.h"
#include "net/loop/loop_timers.h"
#include "net/transport/tcp_transport.h"
#include "sim/env_contract.h"

namespace blixard::net {
namespace {

constexpr uint64_t kClusterId = 0xe2e2e2e2e2e2e2e2ULL;

std::unique_ptr<TcpTransport> NewTransport(EventLoop* loop, NodeId self,
                                           Logger* logger) {
  TcpTransportOptions options;
  options.cluster_id = kClusterId;
  options.self = self;
  options.listen = {"127.0.0.1", 0};
  options.logger = logger;
  options.seed = self.value();
  absl::StatusOr<std::unique_ptr<TcpTransport>> transport =
      TcpTransport::Create(loop, std::move(options));
  CHECK(transport.ok()) << transport.status();
  return std::move(*transport);
}

class TransportHarness final : public sim::EnvContractHarness {
 public:
  TransportHarness() {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    CHECK(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    timers_ = std::make_unique<LoopTimers>(loop_.get());
    a_ = NewTransport(loop_.get(), NodeId(1), &logger_);
    b_ = NewTransport(loop_.get(), NodeId(2), &logger_);
    CHECK(a_->AddPeer(b_->self(), b_->listen_address()).ok());
    CHECK(b_->AddPeer(a_->self(), a_->listen_address()).ok());
  }
  ~TransportHarness() override {
    a_->CheckInvariants();
    b_->CheckInvariants();
    timers_->CheckInvariants();
    loop_->CheckInvariants();
    // Transports before the loop they are registered with.
    a_.reset();
    b_.reset();
    timers_.reset();
  }

  Clock* clock() override { return &loop_->clock(); }
  Timers* timers() override { return timers_.get(); }
  Transport* transport_a() override { return a_.get(); }
  Transport* transport_b() override { return b_.get(); }
  NodeId unknown_peer() override { return NodeId(99); }
  Executor* executor() override { return nullptr; }
  void RestartProcess() override {
    CHECK(false) << "the transport harness has no executor to restart";
  }
  // Real time: runs the loop (timers and sockets) until the clock has
  // advanced that far.
  void RunFor(int64_t duration_us) override {
    const MonoMicros until = loop_->clock().NowMicros() + duration_us;
    for (MonoMicros now = loop_->clock().NowMicros(); now < until;
         now = loop_->clock().NowMicros()) {
      loop_->RunOnce(absl::Microseconds(until - now));
    }
  }

 private:
  std::unique_ptr<EventLoop> loop_;
  NullLogger logger_;
  std::unique_ptr<LoopTimers> timers_;
  std::unique_ptr<TcpTransport> a_;
  std::unique_ptr<TcpTransport> b_;
};

TEST(TcpTransportEnvContractTest, TcpTransportKeepsTheTransportContract) {
  TransportHarness harness;
  sim::ExpectTransportContract(harness);
}

TEST(TcpTransportEnvContractTest, ClockTimersAndTransportTogether) {
  TransportHarness harness;
  sim::ExpectClockContract(harness);
  sim::ExpectTimersContract(harness);
  sim::ExpectTransportContract(harness);
}

}  // namespace
}  // namespace blixard::net
