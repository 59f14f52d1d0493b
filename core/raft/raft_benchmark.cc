// Throughput of the Raft core alone: three RawNodes in one thread, messages
// through an in-memory queue, MemoryStorage as the "disk" (writes complete at
// once), 64-byte proposals in batches of 1, 16 and 256 per round. A round
// proposes a batch at the leader and runs every node's Ready loop until the
// cluster is quiet.
//
// Counters:
//   committed/s    entries committed by the leader per second;
//   applied/s      entries applied per second, summed over the 3 replicas;
//   allocs/entry   heap allocations (global operator new) per committed
//                  entry, for the whole cluster.
//
// Rates are per CPU second of this thread (Google Benchmark's default), so
// other load on the machine does not distort them.
//
// Real runs: bazel run -c opt //core/raft:raft_benchmark
#include <atomic>
#include <cstdlib>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/base/logger.h"
#include "core/raft/raw_node.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace blixard::raft {
namespace {

// Compact each storage once this many entries are applied beyond its start,
// so long runs use bounded memory.
constexpr uint64_t kCompactEveryEntries = 1024;
constexpr size_t kProposalBytes = 64;

class BenchCluster {
 public:
  BenchCluster() {
    ConfState cs;
    for (uint64_t id = 1; id <= 3; ++id) cs.add_voters(id);
    for (uint64_t id = 1; id <= 3; ++id) {
      Node& n = nodes_[id - 1];
      n.storage = std::make_unique<MemoryStorage>();
      CHECK_OK(n.storage->Bootstrap(cs));
      Config c;
      c.id = NodeId(id);
      c.storage = n.storage.get();
      c.logger = &logger_;
      c.seed = id;
      c.max_size_per_msg = 1 << 20;
      c.max_inflight_msgs = 256;
      absl::StatusOr<std::unique_ptr<RawNode>> raw = RawNode::Create(c);
      CHECK_OK(raw.status());
      n.raw = std::move(*raw);
    }
    nodes_[0].raw->Campaign();
    RunUntilQuiet();
    CHECK(nodes_[0].raw->raft().role() == Role::kLeader);
  }

  RawNode& leader() { return *nodes_[0].raw; }
  uint64_t applied_total() const {
    return nodes_[0].applied + nodes_[1].applied + nodes_[2].applied;
  }

  void RunUntilQuiet() {
    bool busy = true;
    while (busy) {
      busy = false;
      for (Node& n : nodes_) busy |= ProcessReady(n);
      while (!queue_.empty()) {
        busy = true;
        Message m = std::move(queue_.front());
        queue_.pop_front();

        Node& to = nodes_[m.to() - 1];
        CHECK_OK(to.raw->Step(std::move(m)));
      }
    }
  }

 private:
  struct Node {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> raw;
    uint64_t applied = 0;
    uint64_t last_applied_index = 0;
  };

  bool ProcessReady(Node& n) {
    if (!n.raw->HasReady()) return false;
    Ready rd = n.raw->GetReady();
    for (Message& m : rd.messages) queue_.push_back(std::move(m));
    // The "disk" write completes at once.
    if (rd.snapshot) CHECK_OK(n.storage->ApplySnapshot(std::move(*rd.snapshot)));
    if (!rd.entries.empty()) CHECK_OK(n.storage->Append(std::move(rd.entries)));
    if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
    for (Message& m : rd.messages_after_persist) queue_.push_back(std::move(m));
    CHECK_OK(n.raw->OnPersisted(rd.number));
    for (const Entry& e : rd.committed_entries) {
      benchmark::DoNotOptimize(e.data().data());
      ++n.applied;
      n.last_applied_index = e.index();
    }
    const Index first = n.storage->FirstIndex();
    if (n.last_applied_index > first.value() + kCompactEveryEntries) {
      CHECK_OK(n.storage->Compact(Index(n.last_applied_index)));
    }
    return true;
  }

  NullLogger logger_;
  Node nodes_[3];
  std::deque<Message> queue_;
};

void BM_ThreeNodeCommit(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  BenchCluster cluster;
  const std::string payload(kProposalBytes, 'x');
  const Index start_commit = cluster.leader().raft().log().committed();
  const uint64_t start_applied = cluster.applied_total();
  const uint64_t start_allocs = g_allocations.load();
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      ProposalResult r = cluster.leader().Propose(payload);
      if (r != ProposalResult::kAccepted) state.SkipWithError("proposal dropped");
    }
    cluster.RunUntilQuiet();
  }
  const uint64_t committed =
      cluster.leader().raft().log().committed().Since(start_commit);
  const uint64_t applied = cluster.applied_total() - start_applied;
  const uint64_t allocs = g_allocations.load() - start_allocs;
  state.counters["committed/s"] = benchmark::Counter(
      static_cast<double>(committed), benchmark::Counter::kIsRate);
  state.counters["applied/s"] = benchmark::Counter(
      static_cast<double>(applied), benchmark::Counter::kIsRate);
  state.counters["allocs/entry"] =
      committed == 0 ? 0.0
                     : static_cast<double>(allocs) / static_cast<double>(committed);
  state.SetItemsProcessed(static_cast<int64_t>(committed));

}

BENCHMARK(BM_ThreeNodeCommit)->Arg(1)->Arg(16)->Arg(256);

}  // namespace
}  // namespace blixard::raft
