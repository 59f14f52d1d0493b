// Contract checks for any implementation of the Env interfaces in
// core/env.h: the simulator's (env_contract_test.cc) and, in wave 2, the
// epoll runtime's, so both are held to the same promises the Host relies on.
//
// A harness gives access to one node's Clock and Timers and to two connected
// Transports on a fault-free network, and can run the event loop. Checks use
// gtest EXPECTs, so call them from inside a TEST.
//
//   TEST(EpollEnvTest, Contract) {
//     EpollHarness h;
//     ExpectClockContract(h);
//     ExpectTimersContract(h);
//     ExpectTransportContract(h);
//   }
#ifndef BLIXARD_SIM_ENV_CONTRACT_H_
#define BLIXARD_SIM_ENV_CONTRACT_H_

#include <cstdint>

#include "core/env.h"

namespace blixard::sim {

class EnvContractHarness {
 public:
  virtual ~EnvContractHarness() = default;
  virtual Clock* clock() = 0;
  virtual Timers* timers() = 0;
  // Two transports on distinct nodes that reach each other with no loss.
  // Neither has a receiver registered yet.
  virtual Transport* transport_a() = 0;
  virtual Transport* transport_b() = 0;
  // A node id neither transport knows.
  virtual NodeId unknown_peer() = 0;
  // Runs the loop (timers and deliveries) until at least `duration_us` has
  // passed on clock().
  virtual void RunFor(int64_t duration_us) = 0;
  // The node's Executor, with no callback registered yet. A task spec's
  // command "sleep" with args {"<seconds>"} must run that long.
  virtual Executor* executor() = 0;
  // Crashes the node process (not the machine) and starts a new one, which
  // has registered no executor callback yet. Clock and executor stay usable.
  virtual void RestartProcess() = 0;
};

void ExpectClockContract(EnvContractHarness& harness);
// Uses timer ids 9000..9099.
void ExpectTimersContract(EnvContractHarness& harness);
// Registers receivers on both transports.
void ExpectTransportContract(EnvContractHarness& harness);
// Registers executor callbacks, and restarts the node process once (run it
// last: timers and receivers do not survive that).
void ExpectExecutorContract(EnvContractHarness& harness);

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_ENV_CONTRACT_H_
