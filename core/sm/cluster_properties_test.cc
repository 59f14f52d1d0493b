// The six scheduler properties Blixard's users rely on (issue 4), each as a
// seeded randomized test of kSequences random command sequences through
// Apply. Every step also runs CheckInvariants(). The checks here are written
// against the records alone (an independent model of what must hold), not
// against the state machine's derived indexes.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/rng.h"
#include "core/sm/cluster_state_machine.h"
#include "core/sm/placement_index.h"
#include "core/sm/testing/command_generator.h"
#include "core/sm/transitions.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard {
namespace {

using sm::testing::CommandGenerator;
using sm::testing::CommandGeneratorOptions;

constexpr uint64_t kSequences = 1000;

ClusterStateMachineOptions SmallOptions() {
  ClusterStateMachineOptions o;
  o.offline_grace_ms = 30'000;
  o.retry_backoff_base_ms = 500;
  o.retry_backoff_max_ms = 20'000;
  o.client_sessions_max = 6;  // smaller than the clients: eviction happens
  return o;
}

struct Totals {
  uint64_t commands = 0;
  uint64_t ok = 0;
};

// Runs kSequences sequences; `check` sees the state before (as a snapshot
// proto), the command, its result and the state machine after.
template <typename Check>
Totals RunSequences(uint64_t property,
                    const CommandGeneratorOptions& gen_options, Check&& check) {
  Totals totals;
  for (uint64_t seq = 1; seq <= kSequences; ++seq) {
    Rng rng(property * 1'000'003 + seq);
    CommandGenerator gen(rng.Fork("commands"), gen_options);
    ClusterStateMachine sm(SmallOptions());
    const uint64_t length = rng.Range(40, 160);
    uint64_t index = 0;
    for (uint64_t i = 0; i < length; ++i) {
      const cluster::Command command = gen.Next(sm);
      index += rng.Range(1, 2);  // gaps: entries that carry no command
      const cluster::StateSnapshot before = sm.ToProto();
      const cluster::Result result = sm.Apply(Index(index), command);
      sm.CheckInvariants();
      ++totals.commands;
      if (result.code() == cluster::RESULT_OK) ++totals.ok;
      check(before, command, result, sm);
      if (::testing::Test::HasFatalFailure() || ::testing::Test::HasFailure()) {
        ADD_FAILURE() << "property " << property << " sequence " << seq
                      << " step " << i << " command "
                      << command.ShortDebugString() << " result "
                      << result.ShortDebugString();
        return totals;
      }
    }
  }
  return totals;
}

sm::Amounts Need(const cluster::TaskRecord& t) {
  return {t.spec().resources().cpu_cores(), t.spec().resources().memory_mb(),
          t.spec().resources().disk_gb()};
}
sm::Amounts Need(const cluster::VmRecord& v) {
  return {v.spec().vcpus(), v.spec().memory_mb(), v.spec().disk_gb()};
}
bool Placed(const cluster::TaskRecord& t) {
  return t.state() == cluster::TASK_ASSIGNED ||
         t.state() == cluster::TASK_RUNNING;
}
template <typename A, typename B>
bool HasAll(const A& have, const B& need) {
  std::set<std::string> h(have.begin(), have.end());
  for (const std::string& f : need) {
    if (h.count(f) == 0) return false;
  }
  return true;
}
bool IsDuplicate(const cluster::StateSnapshot& before,
                 const cluster::Command& c) {
  if (c.request_id().client_id() == 0) return false;
  for (const cluster::ClientSession& s : before.sessions()) {
    if (s.client_id() == c.request_id().client_id()) {
      return c.request_id().sequence() <= s.last_sequence();
    }
  }
  return false;
}

// The naive reference rule over a state: ONLINE workers, free = capacity -
// reserved (placement_index.h states the rule; NaiveBestFit is its loop).
std::vector<sm::NaiveCandidate> Candidates(
    const google::protobuf::RepeatedPtrField<cluster::WorkerRecord>& workers) {
  std::vector<sm::NaiveCandidate> out;
  for (const cluster::WorkerRecord& w : workers) {
    sm::NaiveCandidate c;
    c.node_id = w.node_id();
    c.online = w.status() == cluster::WORKER_ONLINE;
    c.free = {w.capacity().cpu_cores() - w.reserved().cpu_cores(),
              w.capacity().memory_mb() - w.reserved().memory_mb(),
              w.capacity().disk_gb() - w.reserved().disk_gb()};
    c.features.assign(w.features().begin(), w.features().end());
    out.push_back(std::move(c));
  }
  return out;
}
std::vector<std::string> Required(const cluster::TaskRecord& t) {
  return {t.spec().resources().required_features().begin(),
          t.spec().resources().required_features().end()};
}

// Property 1: never over-committed, required features present; every
// placement is the naive rule's answer, and backfill is complete.
TEST(ClusterPropertiesTest, AssignmentRespectsResourcesAndFeatures) {
  uint64_t placements = 0, reference_checked = 0;
  const Totals totals = RunSequences(
      1, CommandGeneratorOptions{},
      [&](const cluster::StateSnapshot& before, const cluster::Command& command,
          const cluster::Result& result, const ClusterStateMachine& sm) {
        // Reference: a new task placed by its own SubmitTask, with no other
        // placement in the same apply, went where the naive rule says.
        if (command.has_submit_task() && result.code() == cluster::RESULT_OK &&
            !IsDuplicate(before, command)) {
          bool existed = false;
          for (const auto& t : before.tasks()) {
            existed |= t.task_id() == command.submit_task().task_id();
          }
          uint64_t placed_now = 0;
          std::map<std::string, uint32_t> attempts;
          for (const auto& t : before.tasks())
            attempts[t.task_id()] = t.attempt();
          for (const auto& [id, t] : sm.tasks()) {
            if (id != command.submit_task().task_id() &&
                t.attempt() != attempts[id]) {
              ++placed_now;  // another task placed in the same apply
            }
          }
          for (const auto& [name, v] : sm.vms()) {
            for (const auto& b : before.vms()) {
              if (b.name() == name && b.generation() != v.generation())
                ++placed_now;
            }
          }
          const cluster::TaskRecord& t = result.task();
          if (!existed && placed_now == 0) {
            const uint64_t expected = sm::NaiveBestFit(
                Candidates(before.workers()), Need(t), Required(t));
            EXPECT_EQ(t.worker_id(), expected) << "task " << t.task_id();
            ++reference_checked;
          }
        }
        // Backfill is complete: no eligible pending task fits anywhere.
        cluster::StateSnapshot after = sm.ToProto();
        const auto candidates = Candidates(after.workers());
        for (const auto& t : after.tasks()) {
          if (t.state() != cluster::TASK_PENDING ||
              t.not_before_ms() > sm.now_ms()) {
            continue;
          }
          EXPECT_EQ(sm::NaiveBestFit(candidates, Need(t), Required(t)), 0u)
              << "pending task " << t.task_id() << " fits but was not placed";
        }
        std::map<uint64_t, sm::Amounts> used;
        auto add = [&used](uint64_t id, const sm::Amounts& a) {
          used[id].cpu_cores += a.cpu_cores;
          used[id].memory_mb += a.memory_mb;
          used[id].disk_gb += a.disk_gb;
        };
        std::map<std::string, uint32_t> attempts_before;
        for (const auto& t : before.tasks())
          attempts_before[t.task_id()] = t.attempt();
        for (const auto& [id, t] : sm.tasks()) {
          if (!Placed(t)) continue;
          const cluster::WorkerRecord* w = sm.FindWorker(t.worker_id());
          ASSERT_NE(w, nullptr);
          EXPECT_TRUE(
              HasAll(w->features(), t.spec().resources().required_features()))
              << "task " << id << " on worker " << w->node_id();
          add(t.worker_id(), Need(t));
          if (t.attempt() != attempts_before[id]) ++placements;
        }
        for (const auto& [name, v] : sm.vms()) {
          if (v.worker_id() == 0) continue;
          const cluster::WorkerRecord* w = sm.FindWorker(v.worker_id());
          ASSERT_NE(w, nullptr);
          EXPECT_TRUE(HasAll(w->features(), v.spec().features()));
          add(v.worker_id(), Need(v));
        }
        for (const auto& [id, w] : sm.workers()) {
          const sm::Amounts u = used[id];
          EXPECT_LE(u.cpu_cores, w.capacity().cpu_cores()) << "worker " << id;
          EXPECT_LE(u.memory_mb, w.capacity().memory_mb()) << "worker " << id;
          EXPECT_LE(u.disk_gb, w.capacity().disk_gb()) << "worker " << id;
        }
      });
  EXPECT_GT(placements, kSequences * 5)
      << "too few placements to mean anything";
  EXPECT_GT(reference_checked, kSequences * 2);
  EXPECT_GT(totals.ok, totals.commands / 3);
}

// Property 2: placements only on ONLINE workers; work on a lost worker is
// requeued (FAILED or removed: at once; OFFLINE: once the grace period ends).
TEST(ClusterPropertiesTest, OnlyOnlineWorkersGetWorkAndLostWorkIsRequeued) {
  uint64_t new_placements = 0, requeued = 0;
  RunSequences(
      2, CommandGeneratorOptions{},
      [&](const cluster::StateSnapshot& before, const cluster::Command& command,
          const cluster::Result&, const ClusterStateMachine& sm) {
        std::map<std::string, const cluster::TaskRecord*> prev_tasks;
        for (const auto& t : before.tasks()) prev_tasks[t.task_id()] = &t;
        std::map<std::string, const cluster::VmRecord*> prev_vms;
        for (const auto& v : before.vms()) prev_vms[v.name()] = &v;
        for (const auto& [id, t] : sm.tasks()) {
          if (!Placed(t)) continue;
          const cluster::WorkerRecord* w = sm.FindWorker(t.worker_id());
          ASSERT_NE(w, nullptr);
          auto prev = prev_tasks.find(id);
          const bool is_new = prev == prev_tasks.end() ||
                              prev->second->attempt() != t.attempt();
          if (is_new) {
            ++new_placements;
            EXPECT_EQ(w->status(), cluster::WORKER_ONLINE)
                << "task " << id << " placed on a "
                << sm::WorkerStatusName(w->status()) << " worker";
          }
          EXPECT_NE(w->status(), cluster::WORKER_FAILED);
          if (w->status() == cluster::WORKER_OFFLINE) {
            EXPECT_LT(sm.now_ms(),
                      w->status_since_ms() + sm.options().offline_grace_ms)
                << "task " << id << " kept on OFFLINE worker past the grace";
          }
        }
        for (const auto& [name, v] : sm.vms()) {
          if (v.worker_id() == 0) continue;
          const cluster::WorkerRecord* w = sm.FindWorker(v.worker_id());
          ASSERT_NE(w, nullptr);
          auto prev = prev_vms.find(name);
          if (prev == prev_vms.end() ||
              prev->second->generation() != v.generation()) {
            EXPECT_EQ(w->status(), cluster::WORKER_ONLINE);
          }
          EXPECT_NE(w->status(), cluster::WORKER_FAILED);
        }
        // Tasks whose worker failed, went away or ran out of grace were
        // requeued, not lost: PENDING again or placed elsewhere.
        for (const auto& [id, prev] : prev_tasks) {
          if (!Placed(*prev)) continue;
          const cluster::WorkerRecord* w = sm.FindWorker(prev->worker_id());
          const bool lost = w == nullptr ||
                            w->status() == cluster::WORKER_FAILED ||
                            (w->status() == cluster::WORKER_OFFLINE &&
                             sm.now_ms() >= w->status_since_ms() +
                                                sm.options().offline_grace_ms);
          if (!lost) continue;
          const cluster::TaskRecord* now = sm.FindTask(id);
          ASSERT_NE(now, nullptr);
          if (command.has_cancel_task() &&
              command.cancel_task().task_id() == id) {
            continue;
          }
          EXPECT_TRUE(now->state() == cluster::TASK_PENDING ||
                      (Placed(*now) && now->worker_id() != prev->worker_id()))
              << "task " << id << " was lost with its worker";
          EXPECT_EQ(now->failed_attempts(), prev->failed_attempts())
              << "a requeue is not a failed attempt";
          ++requeued;
        }
      });
  EXPECT_GT(new_placements, kSequences * 5);
  EXPECT_GT(requeued, kSequences / 10) << "requeue path barely exercised";
}

// Property 3: task results persist across later commands and through
// snapshot/restore.
TEST(ClusterPropertiesTest, TaskResultsPersist) {
  uint64_t terminal_seen = 0;
  std::map<std::string, std::string> terminal;  // per sequence
  std::map<std::string, std::string> last_result;
  uint64_t restores = 0;
  for (uint64_t seq = 1; seq <= kSequences; ++seq) {
    Rng rng(3 * 1'000'003 + seq);
    CommandGenerator gen(rng.Fork("commands"));
    ClusterStateMachine sm(SmallOptions());
    terminal.clear();
    last_result.clear();
    const uint64_t length = rng.Range(40, 160);
    for (uint64_t i = 1; i <= length; ++i) {
      const cluster::Command command = gen.Next(sm);
      sm.Apply(Index(i), command);
      if (rng.Chance(1, 40)) {
        // A replica restored from a snapshot takes over.
        ClusterStateMachine restored(SmallOptions());
        {
          const absl::Status status = restored.Restore(sm.Snapshot());
          ASSERT_TRUE(status.ok()) << status;
        }
        sm = std::move(restored);
        ++restores;
      }
      sm.CheckInvariants();
      for (const auto& [id, t] : sm.tasks()) {
        if (t.has_result()) {
          // A result only changes when that task reports again.
          auto it = last_result.find(id);
          const std::string bytes = t.result().SerializeAsString();
          if (it != last_result.end() && it->second != bytes) {
            ASSERT_TRUE(command.has_task_finished() &&
                        command.task_finished().task_id() == id)
                << "result of task " << id << " changed by "
                << command.ShortDebugString();
          }
          last_result[id] = bytes;
        }
        if (sm::IsTerminal(t.state())) {
          auto [it, inserted] = terminal.emplace(id, t.SerializeAsString());
          if (inserted) ++terminal_seen;
          ASSERT_EQ(it->second, t.SerializeAsString())
              << "terminal task " << id << " changed";
        }
      }
      for (const auto& [id, bytes] : terminal) {
        ASSERT_NE(sm.FindTask(id), nullptr)
            << "terminal task " << id << " vanished";
      }
      for (const auto& [id, bytes] : last_result) {
        const cluster::TaskRecord* t = sm.FindTask(id);
        ASSERT_NE(t, nullptr);
        ASSERT_TRUE(t->has_result()) << "result of task " << id << " vanished";
      }
    }
    ClusterStateMachine copy(SmallOptions());
    {
      const absl::Status status = copy.Restore(sm.Snapshot());
      ASSERT_TRUE(status.ok()) << status;
    }
    for (const auto& [id, bytes] : terminal) {
      ASSERT_NE(copy.FindTask(id), nullptr);
      ASSERT_EQ(copy.FindTask(id)->SerializeAsString(), bytes);
    }
  }
  EXPECT_GT(terminal_seen, kSequences * 3);
  EXPECT_GT(restores, kSequences);
}

// Property 4: concurrent VM operations from several clients, interleaved,
// yield legal lifecycles and one placement per VM.
TEST(ClusterPropertiesTest, ConcurrentVmOperationsKeepLegalLifecycles) {
  CommandGeneratorOptions o;
  o.clients = 5;
  o.vm_names_max = 4;
  o.weight_submit_task = 3;
  o.weight_task_started = 2;
  o.weight_task_finished = 3;
  o.weight_create_vm = 8;
  o.weight_start_vm = 6;
  o.weight_stop_vm = 6;
  o.weight_delete_vm = 2;
  o.weight_migrate_vm = 5;
  o.weight_vm_observed = 16;
  uint64_t observed_ok = 0, migrations = 0;
  RunSequences(
      4, o,
      [&](const cluster::StateSnapshot& before, const cluster::Command& command,
          const cluster::Result& result, const ClusterStateMachine& sm) {
        std::map<std::string, const cluster::VmRecord*> prev;
        for (const auto& v : before.vms()) prev[v.name()] = &v;
        // One placement per VM: reservations on workers add up to exactly
        // the placed VMs plus placed tasks (counted independently).
        std::map<uint64_t, uint64_t> vms_on;
        for (const auto& [name, v] : sm.vms()) {
          if (v.worker_id() != 0) ++vms_on[v.worker_id()];
          auto p = prev.find(name);
          if (p == prev.end() ||
              p->second->create_index() != v.create_index()) {
            continue;  // new VM (or deleted and created again)
          }
          const cluster::VmRecord& was = *p->second;
          EXPECT_GE(v.generation(), was.generation()) << name;
          if (v.generation() == was.generation()) {
            if (v.worker_id() != was.worker_id()) {
              // Only unplacement keeps the generation: its worker failed or
              // was removed, and the VM waits for a new placement.
              EXPECT_EQ(v.worker_id(), 0u) << name << " moved silently";
              EXPECT_TRUE(command.has_remove_worker() ||
                          (command.has_set_worker_status() &&
                           command.set_worker_status().status() ==
                               cluster::WORKER_FAILED))
                  << name << " unplaced by " << command.ShortDebugString();
            }
            if (v.observed() != was.observed()) {
              const bool unplaced = v.worker_id() == 0;
              EXPECT_TRUE(unplaced || sm::IsLegalVmObservedTransition(
                                          was.observed(), v.observed()))
                  << name << ": " << sm::VmObservedName(was.observed())
                  << " -> " << sm::VmObservedName(v.observed());
            }
          } else {
            EXPECT_EQ(v.generation(), was.generation() + 1);
            EXPECT_NE(v.worker_id(), 0u);
            EXPECT_NE(v.worker_id(), was.worker_id());
            EXPECT_EQ(v.observed(), cluster::VM_OBSERVED_UNSPECIFIED);
            if (was.worker_id() != 0) ++migrations;
          }
          if (v.desired() != was.desired()) {
            EXPECT_TRUE(command.has_start_vm() || command.has_stop_vm());
          }
        }
        cluster::ClusterSummary summary = sm.Summary();
        for (const auto& u : summary.workers()) {
          EXPECT_EQ(u.vms(), vms_on[u.node_id()]) << "worker " << u.node_id();
        }
        if (command.has_vm_observed() && result.code() == cluster::RESULT_OK &&
            !IsDuplicate(before, command)) {
          ++observed_ok;
          const cluster::VmRecord* was = prev[command.vm_observed().name()];
          ASSERT_NE(was, nullptr);
          EXPECT_TRUE(sm::IsLegalVmObservedTransition(
              was->observed(), command.vm_observed().state()));
          EXPECT_EQ(was->generation(), command.vm_observed().generation());
          EXPECT_EQ(was->worker_id(), command.vm_observed().worker_id());
        }
      });
  EXPECT_GT(observed_ok, kSequences * 3);
  EXPECT_GT(migrations, kSequences / 10);
}

// Property 5: worker status transitions follow the table exactly. The table
// here is written out independently of transitions.cc.
TEST(ClusterPropertiesTest, WorkerStatusTransitionsFollowTheTable) {
  using S = cluster::WorkerStatus;
  const std::set<std::pair<S, S>> legal = {
      {cluster::WORKER_ONLINE, cluster::WORKER_BUSY},
      {cluster::WORKER_ONLINE, cluster::WORKER_DRAINING},
      {cluster::WORKER_ONLINE, cluster::WORKER_OFFLINE},
      {cluster::WORKER_ONLINE, cluster::WORKER_FAILED},
      {cluster::WORKER_BUSY, cluster::WORKER_ONLINE},
      {cluster::WORKER_BUSY, cluster::WORKER_DRAINING},
      {cluster::WORKER_BUSY, cluster::WORKER_OFFLINE},
      {cluster::WORKER_BUSY, cluster::WORKER_FAILED},
      {cluster::WORKER_DRAINING, cluster::WORKER_ONLINE},
      {cluster::WORKER_DRAINING, cluster::WORKER_OFFLINE},
      {cluster::WORKER_DRAINING, cluster::WORKER_FAILED},
      {cluster::WORKER_OFFLINE, cluster::WORKER_ONLINE},
      {cluster::WORKER_OFFLINE, cluster::WORKER_FAILED},
  };
  CommandGeneratorOptions o;
  o.weight_set_worker_status = 20;
  o.weight_worker_lost = 6;
  uint64_t accepted = 0, rejected = 0;
  RunSequences(
      5, o,
      [&](const cluster::StateSnapshot& before, const cluster::Command& command,
          const cluster::Result& result, const ClusterStateMachine& sm) {
        std::map<uint64_t, S> prev;
        for (const auto& w : before.workers()) prev[w.node_id()] = w.status();
        // No status changes except through these commands (and removal).
        for (const auto& [id, w] : sm.workers()) {
          auto p = prev.find(id);
          if (p == prev.end()) {
            EXPECT_EQ(w.status(), cluster::WORKER_ONLINE) << "registered";
            continue;
          }
          if (p->second != w.status()) {
            EXPECT_TRUE(command.has_set_worker_status() ||
                        command.has_worker_lost());
          }
        }
        if (IsDuplicate(before, command)) return;
        uint64_t node = 0;
        S to = cluster::WORKER_STATUS_UNSPECIFIED;
        if (command.has_set_worker_status()) {
          node = command.set_worker_status().node_id();
          to = command.set_worker_status().status();
        } else if (command.has_worker_lost()) {
          node = command.worker_lost().node_id();
          to = cluster::WORKER_OFFLINE;
        } else {
          return;
        }
        auto p = prev.find(node);
        const cluster::WorkerRecord* now = sm.FindWorker(node);
        if (p == prev.end()) {
          EXPECT_NE(result.code(), cluster::RESULT_OK);
          return;
        }
        ASSERT_NE(now, nullptr);
        if (legal.count({p->second, to}) == 1) {
          EXPECT_EQ(result.code(), cluster::RESULT_OK) << result.message();
          EXPECT_EQ(now->status(), to);
          ++accepted;
        } else {
          EXPECT_NE(result.code(), cluster::RESULT_OK);
          EXPECT_EQ(now->status(), p->second);
          if (to != cluster::WORKER_STATUS_UNSPECIFIED) {
            EXPECT_EQ(result.code(), cluster::RESULT_FAILED_PRECONDITION);
            EXPECT_THAT(result.message(),
                        ::testing::HasSubstr(
                            absl::StrCat(sm::WorkerStatusName(p->second),
                                         " -> ", sm::WorkerStatusName(to))));
          }
          ++rejected;
        }
      });
  EXPECT_GT(accepted, kSequences * 2);
  EXPECT_GT(rejected, kSequences);
}

// Property 6: deterministic scheduling. Replicas fed the same commands end
// with identical digests; so does a replica restored midway from a snapshot,
// and one restored from a snapshot whose repeated fields were shuffled
// (container insertion order must not matter).
TEST(ClusterPropertiesTest, ReplicasAgreeOnDigests) {
  uint64_t compared = 0;
  for (uint64_t seq = 1; seq <= kSequences; ++seq) {
    Rng rng(6 * 1'000'003 + seq);
    CommandGenerator gen(rng.Fork("commands"));
    ClusterStateMachine a(SmallOptions()), b(SmallOptions());
    std::vector<cluster::Command> commands;
    const uint64_t length = rng.Range(40, 160);
    for (uint64_t i = 1; i <= length; ++i) {
      commands.push_back(gen.Next(a));
      const cluster::Result ra = a.Apply(Index(i), commands.back());
      const cluster::Result rb = b.Apply(Index(i), commands.back());
      ASSERT_EQ(ra.SerializeAsString(), rb.SerializeAsString())
          << seq << "/" << i;
    }
    ASSERT_EQ(a.Digest(), b.Digest()) << "sequence " << seq;
    ASSERT_EQ(a.Snapshot(), b.Snapshot());

    // Restore midway (in order and shuffled), then replay the rest.
    const uint64_t mid = rng.Range(1, length);
    ClusterStateMachine c(SmallOptions());
    for (uint64_t i = 1; i <= mid; ++i) c.Apply(Index(i), commands[i - 1]);
    cluster::StateSnapshot shuffled = c.ToProto();
    auto shuffle = [&rng](auto* repeated) {
      for (int i = repeated->size() - 1; i > 0; --i) {
        repeated->SwapElements(
            i, static_cast<int>(rng.Uniform(static_cast<uint64_t>(i) + 1)));
      }
    };
    shuffle(shuffled.mutable_workers());
    shuffle(shuffled.mutable_tasks());
    shuffle(shuffled.mutable_vms());
    shuffle(shuffled.mutable_kv());
    shuffle(shuffled.mutable_sessions());
    ClusterStateMachine d(SmallOptions()), e(SmallOptions());
    {
      const absl::Status status = d.Restore(c.Snapshot());
      ASSERT_TRUE(status.ok()) << status;
    }
    {
      const absl::Status status = e.RestoreFromProto(shuffled);
      ASSERT_TRUE(status.ok()) << status;
    }
    ASSERT_EQ(d.Digest(), c.Digest());
    ASSERT_EQ(e.Digest(), c.Digest());
    d.CheckInvariants();
    e.CheckInvariants();
    for (uint64_t i = mid + 1; i <= length; ++i) {
      const cluster::Result rc = c.Apply(Index(i), commands[i - 1]);
      const cluster::Result rd = d.Apply(Index(i), commands[i - 1]);
      const cluster::Result re = e.Apply(Index(i), commands[i - 1]);
      ASSERT_EQ(rc.SerializeAsString(), rd.SerializeAsString());
      ASSERT_EQ(rc.SerializeAsString(), re.SerializeAsString());
    }
    ASSERT_EQ(c.Digest(), a.Digest()) << "sequence " << seq;
    ASSERT_EQ(d.Digest(), a.Digest()) << "sequence " << seq;
    ASSERT_EQ(e.Digest(), a.Digest()) << "sequence " << seq;
    ++compared;
  }
  EXPECT_EQ(compared, kSequences);
}

}  // namespace
}  // namespace blixard
