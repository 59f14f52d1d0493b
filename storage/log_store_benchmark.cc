// Durable-append throughput of SqliteLogStore against the raw ceilings of
// the same machine, measured in the same run:
//
//   BM_RawFdatasync/B       append B*128 bytes to a file, fdatasync; repeat.
//   BM_RawSqliteInsert/B    BEGIN; B bare INSERTs of 128-byte blobs; COMMIT;
//                           WAL, synchronous=FULL (one fsync per commit).
//   BM_SqliteLogStoreAppend/B
//                           one LogWrite of B 128-byte entries, wait until
//                           durable, run its callback; repeat.
//   BM_PairedStoreVsRawSqlite/B
//                           the last two alternated commit by commit, so the
//                           ratio survives a disk whose speed drifts.
//   BM_SqliteLogStoreGroupCommit/N
//                           N single-entry writes queued at once: group
//                           commit folds them into few fsyncs.
//
// The store is timed from Write() to its callback; the Entry messages are
// built before (Raft has built them by the time the Host persists a Ready),
// as the raw loop binds bytes it already holds.
//
// Counters: entries_per_s; us_per_commit; for the store, ratio_to_raw_sqlite
// (the figure: >= 0.8 at B = 256 and 1024, and >= 1/1.3 at B = 1,
// i.e. a single durable append costs at most 1.3x a raw insert+fsync) and
// ratio_to_fdatasync. The raw benchmarks are registered first so their
// figures exist when the store's run computes its ratios.
//
//   bazel run -c opt //storage:log_store_benchmark
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "core/base/check.h"
#include "storage/sqlite.h"
#include "storage/sqlite_log_store.h"

namespace blixard::storage {
namespace {

constexpr size_t kEntryBytes = 128;

std::map<int64_t, double> raw_sqlite_entries_per_s;
std::map<int64_t, double> raw_fdatasync_entries_per_s;

std::string ScratchPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp",
                                        "/blixard_bench_", getpid(), "_", name);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::remove((path + suffix).c_str());
  }
  return path;
}

void RemoveDb(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::remove((path + suffix).c_str());
  }
}

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One write of `batch` entries from `first_index`, built as Raft builds
// them (not part of the timed append).
LogWrite MakeWrite(uint64_t first_index, int64_t batch,
                   const std::string& data) {
  LogWrite write;
  write.entries.resize(static_cast<size_t>(batch));
  uint64_t index = first_index;
  for (raft::Entry& entry : write.entries) {
    entry.set_index(index++);
    entry.set_term(1);
    entry.set_data(data);
  }
  return write;
}

// The raw ceiling: a bare SQLite WAL database with synchronous=FULL and an
// (idx, data) table, inserted into row by row.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    absl::StatusOr<Db> db = Db::Open(path, Db::kCreate);
    CHECK_OK(db.status());
    db_.emplace(*std::move(db));
    CHECK_OK(db_->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                       "CREATE TABLE entries(idx INTEGER PRIMARY KEY, "
                       "data BLOB NOT NULL) STRICT;"));
    absl::StatusOr<Statement> insert =
        db_->Prepare("INSERT INTO entries(idx, data) VALUES(?, ?)");
    CHECK_OK(insert.status());
    insert_.emplace(*std::move(insert));
  }

  // One transaction of `batch` rows, committed (fsync'd).
  void Commit(int64_t batch, const std::string& data) {
    CHECK_OK(db_->Exec("BEGIN"));
    for (int64_t i = 0; i < batch; ++i) {
      insert_->BindInt64(1, next_index_++);
      insert_->BindBlob(2, data);
      CHECK_OK(insert_->Run());
    }
    CHECK_OK(db_->Exec("COMMIT"));
  }

 private:
  std::optional<Db> db_;
  std::optional<Statement> insert_;  // declared after db_: closed first
  int64_t next_index_ = 1;
};

std::unique_ptr<SqliteLogStore> OpenStore(const std::string& path) {
  SqliteLogStoreOptions options;
  options.path = path;
  absl::StatusOr<std::unique_ptr<SqliteLogStore>> store =
      SqliteLogStore::Open(options);
  CHECK_OK(store.status());
  return *std::move(store);
}

void Report(benchmark::State& state, uint64_t entries, uint64_t commits,
            double seconds) {
  state.SetItemsProcessed(static_cast<int64_t>(entries));
  state.counters["entries_per_s"] = static_cast<double>(entries) / seconds;
  state.counters["us_per_commit"] =
      seconds * 1e6 / static_cast<double>(commits);
}

void BM_RawFdatasync(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const std::string path = ScratchPath("fdatasync");
  const int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  CHECK_GE(fd, 0);
  const std::string bytes(static_cast<size_t>(batch) * kEntryBytes, 'x');
  uint64_t commits = 0;
  const Clock::time_point start = Clock::now();
  for (auto _ : state) {
    CHECK_EQ(write(fd, bytes.data(), bytes.size()),
             static_cast<ssize_t>(bytes.size()));
    CHECK_EQ(fdatasync(fd), 0);
    ++commits;
  }
  const double seconds = Seconds(start);
  close(fd);
  std::remove(path.c_str());
  const uint64_t entries = commits * static_cast<uint64_t>(batch);
  Report(state, entries, commits, seconds);
  raw_fdatasync_entries_per_s[batch] = static_cast<double>(entries) / seconds;
}

void BM_RawSqliteInsert(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const std::string path = ScratchPath("raw.db");
  uint64_t commits = 0;
  double seconds = 0;
  {
    RawDb db(path);
    const std::string data(kEntryBytes, 'x');
    const Clock::time_point start = Clock::now();
    for (auto _ : state) {
      db.Commit(batch, data);
      ++commits;
    }
    seconds = Seconds(start);
  }
  RemoveDb(path);
  const uint64_t entries = commits * static_cast<uint64_t>(batch);
  Report(state, entries, commits, seconds);
  raw_sqlite_entries_per_s[batch] = static_cast<double>(entries) / seconds;
}

void BM_SqliteLogStoreAppend(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const std::string path = ScratchPath("store.db");
  uint64_t commits = 0;
  double seconds = 0;
  {
    const std::unique_ptr<SqliteLogStore> store = OpenStore(path);
    // The entries exist before the append is timed: the Host hands over the
    // Entry messages Raft already built (by move), just as the raw loop
    // binds bytes it already has. Timed: Write() to callback.
    const std::string data(kEntryBytes, 'x');
    uint64_t index = 1;
    uint64_t done = 0;
    for (auto _ : state) {
      LogWrite write = MakeWrite(index, batch, data);
      index += static_cast<uint64_t>(batch);
      const Clock::time_point start = Clock::now();
      store->Write(std::move(write), [&done] { ++done; });
      store->WaitForDurable();
      store->PollCompletions();
      seconds += Seconds(start);
      ++commits;
    }
    CHECK_EQ(done, commits);
  }
  RemoveDb(path);
  const uint64_t entries = commits * static_cast<uint64_t>(batch);
  Report(state, entries, commits, seconds);
  const double rate = static_cast<double>(entries) / seconds;
  if (raw_sqlite_entries_per_s.count(batch) > 0) {
    state.counters["ratio_to_raw_sqlite"] =
        rate / raw_sqlite_entries_per_s[batch];
  }
  if (raw_fdatasync_entries_per_s.count(batch) > 0) {
    state.counters["ratio_to_fdatasync"] =
        rate / raw_fdatasync_entries_per_s[batch];
  }
}

// The same comparison, paired: each iteration makes one raw SQLite commit
// and one store commit of B entries, alternately, on the same disk, and
// times each. Drifting load (other processes' I/O on a shared disk) then
// hits both sides alike, so the ratio stays meaningful when the absolute
// figures move; this is the figure to quote.
void BM_PairedStoreVsRawSqlite(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const std::string raw_path = ScratchPath("paired_raw.db");
  const std::string store_path = ScratchPath("paired_store.db");
  double raw_seconds = 0;
  double store_seconds = 0;
  double last_raw = 0;
  double last_store = 0;
  std::vector<double> pair_ratios;
  uint64_t commits = 0;
  {
    RawDb db(raw_path);
    const std::unique_ptr<SqliteLogStore> store = OpenStore(store_path);
    const std::string data(kEntryBytes, 'x');
    uint64_t store_index = 1;
    auto raw_commit = [&] {
      const Clock::time_point start = Clock::now();
      db.Commit(batch, data);
      last_raw = Seconds(start);
      raw_seconds += last_raw;
    };
    auto store_commit = [&] {
      LogWrite write = MakeWrite(store_index, batch, data);
      store_index += static_cast<uint64_t>(batch);
      const Clock::time_point start = Clock::now();
      store->Write(std::move(write), [] {});
      store->WaitForDurable();
      store->PollCompletions();
      last_store = Seconds(start);
      store_seconds += last_store;
    };
    for (auto _ : state) {
      // Alternate which goes first: an fsync right after another one may
      // cost a different amount, and neither side should always get it.
      if (commits % 2 == 0) {
        raw_commit();
        store_commit();
      } else {
        store_commit();
        raw_commit();
      }
      pair_ratios.push_back(last_raw / last_store);
      ++commits;
    }
  }
  RemoveDb(raw_path);
  RemoveDb(store_path);
  const double entries =
      static_cast<double>(commits) * static_cast<double>(batch);
  state.SetItemsProcessed(static_cast<int64_t>(entries));
  state.counters["store_entries_per_s"] = entries / store_seconds;
  state.counters["raw_entries_per_s"] = entries / raw_seconds;
  state.counters["store_us_per_commit"] =
      store_seconds * 1e6 / static_cast<double>(commits);
  state.counters["raw_us_per_commit"] =
      raw_seconds * 1e6 / static_cast<double>(commits);
  state.counters["ratio_to_raw_sqlite"] = raw_seconds / store_seconds;
  // The median of per-pair ratios shrugs off the odd multi-millisecond stall
  // of a shared disk that lands on one side of one pair.
  if (!pair_ratios.empty()) {
    std::sort(pair_ratios.begin(), pair_ratios.end());
    state.counters["ratio_median"] = pair_ratios[pair_ratios.size() / 2];
  }
}

// Group commit at work: `in_flight` single-entry writes are queued at once
// (as a leader queues one Ready per proposal burst) before waiting; the I/O
// thread folds whatever is queued into one transaction and one fsync.
// Counters: entries_per_s and writes_per_commit.
void BM_SqliteLogStoreGroupCommit(benchmark::State& state) {
  const int64_t in_flight = state.range(0);
  const std::string path = ScratchPath("group.db");
  uint64_t writes = 0;
  uint64_t commits = 0;
  double seconds = 0;
  {
    const std::unique_ptr<SqliteLogStore> store = OpenStore(path);
    const std::string data(kEntryBytes, 'x');
    uint64_t index = 1;
    const uint64_t commits_before = store->commit_count();
    const Clock::time_point start = Clock::now();
    for (auto _ : state) {
      for (int64_t i = 0; i < in_flight; ++i) {
        LogWrite write;
        raft::Entry& entry = write.entries.emplace_back();
        entry.set_index(index++);
        entry.set_term(1);
        entry.set_data(data);
        store->Write(std::move(write), [] {});
        ++writes;
      }
      store->WaitForDurable();
      store->PollCompletions();
    }
    seconds = Seconds(start);
    commits = store->commit_count() - commits_before;
  }
  RemoveDb(path);
  state.SetItemsProcessed(static_cast<int64_t>(writes));
  state.counters["entries_per_s"] = static_cast<double>(writes) / seconds;
  state.counters["writes_per_commit"] =
      static_cast<double>(writes) / static_cast<double>(commits);
}

// Real time: the work happens in the I/O thread and the kernel.
BENCHMARK(BM_RawFdatasync)->Arg(1)->Arg(16)->Arg(256)->Arg(1024)->UseRealTime();
BENCHMARK(BM_RawSqliteInsert)
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Arg(1024)
    ->UseRealTime();
BENCHMARK(BM_SqliteLogStoreAppend)
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Arg(1024)
    ->UseRealTime();
BENCHMARK(BM_PairedStoreVsRawSqlite)
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Arg(1024)
    ->UseRealTime();
BENCHMARK(BM_SqliteLogStoreGroupCommit)->Arg(16)->Arg(256)->UseRealTime();

}  // namespace
}  // namespace blixard::storage
