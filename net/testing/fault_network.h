// FaultNetwork: one FaultProxy per directed peer link of an N-node test
// cluster, all on one EventLoop that runs on a thread the network owns.
//
// Why a thread (test-only code): the tests block for seconds at a time in
// Client::Call, in waitpid and in sleeps between faults, and the proxies
// must keep forwarding all that time. A Pump(duration) the test calls while
// it waits would have to be threaded through every one of those waits (and
// could not run inside Client::Call, which runs its own loop). So the loop
// runs on its own thread, every proxy lives only there, and each control
// call posts a closure to the loop and waits (bounded) until it ran: no
// proxy state is shared between threads, and when a control returns, the
// fault is in force.
//
// Links: the proxy for (from, to) is where node `from` dials node `to`;
// give node `from` ProxyAddress(from, to) for `to` in its --initial_cluster
// (ProcessCluster::SetPeerRoute). Reachability is per direction: "from can
// send to to" governs the bytes `from` writes on its own connections to `to`
// (forward on proxy (from, to)) and the bytes it writes back on `to`'s
// connections (backward on proxy (to, from)).
//
// Thread: the control methods may be called from any one thread at a time
// (the test's); the proxies run on the network's thread.
#ifndef BLIXARD_NET_TESTING_FAULT_NETWORK_H_
#define BLIXARD_NET_TESTING_FAULT_NETWORK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <future>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "net/loop/event_loop.h"
#include "net/testing/fault_proxy.h"
#include "net/transport/socket.h"

namespace blixard::net::testing {

class FaultNetwork {
 public:
  // How long a control waits for the loop thread; a loop that takes longer
  // is stuck (CHECK).
  static constexpr int64_t kControlWaitMaxMs = 10'000;

  // Starts the loop thread and a proxy for every ordered pair of distinct
  // ids in `targets` (node id -> its real peer address), every link passing.
  // Errors: the loop's or a proxy's creation.
  static absl::StatusOr<std::unique_ptr<FaultNetwork>> Create(
      std::map<int, SocketAddress> targets, uint64_t seed);
  // Stops the loop, closes every proxy and connection, joins the thread.
  ~FaultNetwork();
  FaultNetwork(const FaultNetwork&) = delete;
  FaultNetwork& operator=(const FaultNetwork&) = delete;

  // "127.0.0.1:PORT" of the proxy where `from` dials `to`. REQUIRES: both
  // ids known and distinct.
  std::string ProxyAddress(int from, int to) const;

  // Sets, for every ordered pair, whether `from` can send to `to` (see the
  // file comment), keeping delays. Bytes blocked are dropped (FaultProxy).
  void SetReachable(const std::function<bool(int from, int to)>& can_send);
  // Delay and jitter on every link, both directions.
  void SetDelay(int64_t delay_us, int64_t jitter_us);
  // Connection reset ("drop") chance per forwarded chunk on every link.
  void SetResetChance(uint32_t per_million);
  // Closes every connection of every link now (the nodes reconnect).
  void ResetAll();
  // Every link passes with no delay and no resets.
  void HealAll();

  // Counters summed over all links.
  FaultProxyCounters Totals();

 private:
  FaultNetwork() = default;
  // Runs `fn` on the loop thread and waits until it ran.
  void RunOnLoop(std::function<void()> fn);
  void Apply();  // loop thread: pushes can_send_/delays into the proxies

  std::map<int, SocketAddress> targets_;
  std::map<std::pair<int, int>, uint16_t> ports_;
  std::thread thread_;
  // Set by the destructor once Stop() has returned; the loop thread
  // destroys the loop only then.
  std::promise<void> stopped_;
  EventLoop* loop_ = nullptr;  // owned by the thread
  // Loop thread only.
  std::map<std::pair<int, int>, std::unique_ptr<FaultProxy>> proxies_;
  std::map<std::pair<int, int>, bool> can_send_;
  int64_t delay_us_ = 0;
  int64_t jitter_us_ = 0;
  uint32_t reset_per_million_ = 0;
};

}  // namespace blixard::net::testing

#endif  // BLIXARD_NET_TESTING_FAULT_NETWORK_H_
