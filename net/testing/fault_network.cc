#include "net/testing/fault_network.h"

#include <chrono>
#include <future>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::net::testing {

absl::StatusOr<std::unique_ptr<FaultNetwork>> FaultNetwork::Create(
    std::map<int, SocketAddress> targets, uint64_t seed) {
  std::unique_ptr<FaultNetwork> network(new FaultNetwork());
  network->targets_ = std::move(targets);
  FaultNetwork* raw = network.get();
  std::promise<absl::Status> started;
  std::future<absl::Status> started_future = started.get_future();
  // The loop is created on the thread that runs it (EventLoop's rule), and
  // everything on it is destroyed there too.
  raw->thread_ = std::thread([raw, seed, &started] {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    if (!loop.ok()) {
      started.set_value(loop.status());
      return;
    }
    Rng rng(seed);
    for (const auto& [from, from_address] : raw->targets_) {
      for (const auto& [to, to_address] : raw->targets_) {
        if (from == to) continue;
        absl::StatusOr<std::unique_ptr<FaultProxy>> proxy =
            FaultProxy::Create(loop->get(), to_address, rng.Next());
        if (!proxy.ok()) {
          raw->proxies_.clear();
          started.set_value(proxy.status());
          return;
        }
        raw->ports_[{from, to}] = (*proxy)->port();
        raw->can_send_[{from, to}] = true;
        raw->proxies_[{from, to}] = *std::move(proxy);
      }
    }
    raw->loop_ = loop->get();
    started.set_value(absl::OkStatus());  // `started` is gone after this
    (*loop)->Run();
    raw->proxies_.clear();
    // The destructor's Stop() may still be writing the loop's wake-up fd:
    // the loop goes only once that call has returned.
    raw->stopped_.get_future().wait();
  });
  const absl::Status status = started_future.get();
  if (!status.ok()) {
    raw->thread_.join();
    return status;
  }
  return network;
}

FaultNetwork::~FaultNetwork() {
  if (loop_ != nullptr) loop_->Stop();
  stopped_.set_value();
  if (thread_.joinable()) thread_.join();
}

std::string FaultNetwork::ProxyAddress(int from, int to) const {
  CHECK_NE(from, to);
  return absl::StrCat("127.0.0.1:", ports_.at({from, to}));
}

void FaultNetwork::RunOnLoop(std::function<void()> fn) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> ran = done->get_future();
  loop_->Post([fn = std::move(fn), done] {
    fn();
    done->set_value();
  });
  CHECK(ran.wait_for(std::chrono::milliseconds(kControlWaitMaxMs)) == std::future_status::ready)
      << "the fault network's loop is stuck";
}

void FaultNetwork::Apply() {
  for (auto& [link, proxy] : proxies_) {
    LinkFaults faults;
    faults.forward_pass = can_send_.at(link);
    faults.backward_pass = can_send_.at({link.second, link.first});
    faults.delay_us = delay_us_;
    faults.jitter_us = jitter_us_;
    faults.reset_per_million = reset_per_million_;
    proxy->SetFaults(faults);
    proxy->CheckInvariants();
  }
}

void FaultNetwork::SetReachable(const std::function<bool(int from, int to)>& can_send) {
  RunOnLoop([this, &can_send] {
    for (auto& [link, value] : can_send_) value = can_send(link.first, link.second);
    Apply();
  });
}

void FaultNetwork::SetDelay(int64_t delay_us, int64_t jitter_us) {
  RunOnLoop([this, delay_us, jitter_us] {
    delay_us_ = delay_us;
    jitter_us_ = jitter_us;
    Apply();
  });
}

void FaultNetwork::SetResetChance(uint32_t per_million) {
  RunOnLoop([this, per_million] {
    reset_per_million_ = per_million;
    Apply();
  });
}

void FaultNetwork::ResetAll() {
  RunOnLoop([this] {
    for (auto& [link, proxy] : proxies_) proxy->ResetAll();
  });
}

void FaultNetwork::HealAll() {
  RunOnLoop([this] {
    for (auto& [link, value] : can_send_) value = true;
    delay_us_ = 0;
    jitter_us_ = 0;
    reset_per_million_ = 0;
    Apply();
  });
}

FaultProxyCounters FaultNetwork::Totals() {
  FaultProxyCounters totals;
  RunOnLoop([this, &totals] {
    for (auto& [link, proxy] : proxies_) {
      const FaultProxyCounters& c = proxy->counters();
      totals.accepted += c.accepted;
      totals.dial_failures += c.dial_failures;
      totals.bytes_forwarded += c.bytes_forwarded;
      totals.bytes_dropped += c.bytes_dropped;
      totals.resets += c.resets;
    }
  });
  return totals;
}

}  // namespace blixard::net::testing
