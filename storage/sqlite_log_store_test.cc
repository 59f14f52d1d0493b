// SqliteLogStore: the shared LogStore conformance suite, plus what only the
// SQLite store has: group commit, the wakeup hook, option validation and
// refusing bad files with a clear error.
#include "storage/sqlite_log_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/base/status_matchers.h"
#include "core/testing/log_store_conformance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/sqlite.h"
#include "storage/test_util.h"

namespace blixard::storage {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::LogModel;
using ::blixard::testing::LogStoreConformanceParam;
using ::blixard::testing::LogStoreConformanceTest;
using ::blixard::testing::LogStoreHarness;
using ::blixard::testing::LogWorkload;
using ::blixard::testing::MakeEntries;
using ::blixard::testing::MakeSnapshot;
using ::blixard::testing::StatusIs;
using ::blixard::testing::StoreMatchesModel;
using ::testing::AllOf;
using ::testing::HasSubstr;

class SqliteHarness : public LogStoreHarness {
 public:
  SqliteHarness() : dir_(/*prefer_tmpfs=*/true) { Reopen(); }

  LogStore& store() override { return *store_; }
  void Settle() override {
    store_->WaitForDurable();
    store_->PollCompletions();
  }
  void Reopen() override {
    store_.reset();
    SqliteLogStoreOptions options;
    options.path = dir_.File("node.db");
    // Small chunks so the suite's snapshots span several of them.
    options.snapshot_chunk_size_bytes = 64 << 10;
    absl::StatusOr<std::unique_ptr<SqliteLogStore>> store =
        SqliteLogStore::Open(options);
    CHECK_OK(store.status());
    store_ = std::move(*store);
  }

 private:
  ScratchDir dir_;
  std::unique_ptr<SqliteLogStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Sqlite, LogStoreConformanceTest,
                         ::testing::Values(LogStoreConformanceParam{
                             "Sqlite",
                             [] { return std::make_unique<SqliteHarness>(); }}),
                         ::blixard::testing::LogStoreConformanceParamName);

class SqliteLogStoreTest : public ::testing::Test {
 protected:
  SqliteLogStoreOptions Options() {
    SqliteLogStoreOptions options;
    options.path = dir_.File("node.db");
    return options;
  }
  // Creates a store holding entries 1..20 (term 1) and a hard state, closed.
  void MakeStore() {
    auto store = SqliteLogStore::Open(Options());
    ASSERT_OK(store.status());
    LogWrite write;
    write.entries = MakeEntries(1, 20, 1);
    raft::HardState hs;
    hs.set_term(1);
    hs.set_commit(20);
    write.hard_state = hs;
    (*store)->Write(std::move(write), [] {});
    (*store)->WaitForDurable();
  }

  ScratchDir dir_{/*prefer_tmpfs=*/true};
};

TEST_F(SqliteLogStoreTest, OptionsAreValidated) {
  SqliteLogStoreOptions options = Options();
  options.path = "";
  EXPECT_THAT(SqliteLogStore::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = Options();
  options.snapshot_chunk_size_bytes = 1;
  EXPECT_THAT(SqliteLogStore::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("snapshot_chunk_size_bytes")));
  options = Options();
  options.wal_autocheckpoint_pages = 0;
  EXPECT_THAT(SqliteLogStore::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SqliteLogStoreTest, WakeupRunsAndGroupCommitBatchesWrites) {
  // The first wakeup holds the I/O thread until every other write is
  // queued, so group commit must put all of them into the second commit.
  // That commit's completions join the first one's, still not polled, so
  // they wake no one: the first wakeup covers them.
  absl::Notification first_durable;
  absl::Notification all_queued;
  std::atomic<int> wakeups{0};
  SqliteLogStoreOptions options = Options();
  options.wakeup = [&] {
    if (wakeups.fetch_add(1) == 0) {
      first_durable.Notify();
      all_queued.WaitForNotification();
    }
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(options));
  std::vector<int> done;
  constexpr int kWrites = 500;
  for (int i = 0; i < kWrites; ++i) {
    LogWrite write;
    write.entries = MakeEntries(static_cast<uint64_t>(i) + 1, 1, 1);
    store->Write(std::move(write), [&done, i] { done.push_back(i); });
    if (i == 0) first_durable.WaitForNotification();
  }
  all_queued.Notify();
  store->WaitForDurable();
  EXPECT_TRUE(done.empty()) << "callbacks must wait for PollCompletions()";
  store->PollCompletions();
  ASSERT_EQ(done.size(), static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) EXPECT_EQ(done[i], i);
  EXPECT_EQ(wakeups.load(), 1);
  EXPECT_EQ(store->commit_count(), 2u);
  store->CheckInvariants();
}

TEST_F(SqliteLogStoreTest, WakeupRunsOnlyWhenCompletionsGoFromNoneToSome) {
  std::atomic<int> wakeups{0};
  SqliteLogStoreOptions options = Options();
  options.wakeup = [&wakeups] { wakeups.fetch_add(1); };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(options));
  int done = 0;
  auto write = [&](uint64_t index) {
    LogWrite w;
    w.entries = MakeEntries(index, 1, 1);
    store->Write(std::move(w), [&done] { ++done; });
    store->WaitForDurable();  // one commit per write
  };
  write(1);
  EXPECT_EQ(wakeups.load(), 1);
  write(2);  // joins write 1's completion, not yet polled: no new wakeup
  EXPECT_EQ(wakeups.load(), 1);
  store->PollCompletions();
  EXPECT_EQ(done, 2);
  write(3);  // the queue was drained: this one wakes the owner again
  EXPECT_EQ(wakeups.load(), 2);
  store->PollCompletions();
  EXPECT_EQ(done, 3);
  EXPECT_EQ(store->commit_count(), 3u);
  store->CheckInvariants();
}

TEST_F(SqliteLogStoreTest, EventfdWakeupDrivesAnEventLoop) {
  // The production shape: the I/O thread writes an eventfd, the loop sleeps
  // in poll() until then and runs the callbacks; nothing blocks on disk and
  // nothing polls blindly.
  const int efd = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  SqliteLogStoreOptions options = Options();
  options.wakeup = [efd] {
    const uint64_t one = 1;
    CHECK_EQ(write(efd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(options));
  constexpr uint64_t kWrites = 200;
  uint64_t next = 1;
  uint64_t done = 0;
  uint64_t in_flight = 0;
  uint64_t loop_turns = 0;
  // Keep up to 4 writes in flight; each callback lets the loop queue more.
  while (done < kWrites) {
    while (in_flight < 4 && next <= kWrites) {
      LogWrite write;
      write.entries = MakeEntries(next++, 1, 1);
      ++in_flight;
      store->Write(std::move(write), [&] {
        ++done;
        --in_flight;
      });
    }
    pollfd pfd{efd, POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, -1), 1);
    uint64_t count = 0;
    ASSERT_EQ(read(efd, &count, sizeof(count)),
              static_cast<ssize_t>(sizeof(count)));
    store->PollCompletions();
    ++loop_turns;
  }
  EXPECT_EQ(done, kWrites);
  EXPECT_LE(loop_turns, kWrites);
  EXPECT_EQ(*store->LastIndex(), Index(kWrites));
  store.reset();
  close(efd);
}

TEST_F(SqliteLogStoreTest, SecondOpenOfTheSameLogIsRefused) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> first,
                       SqliteLogStore::Open(Options()));
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("in use"), HasSubstr(Options().path))));
  first.reset();  // the lock goes with the store
  EXPECT_OK(SqliteLogStore::Open(Options()).status());
}

TEST_F(SqliteLogStoreTest, MissingDirectoryIsNotFound) {
  SqliteLogStoreOptions options = Options();
  options.path = dir_.File("no/such/dir/node.db");
  EXPECT_THAT(SqliteLogStore::Open(options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no/such/dir")));
}

TEST_F(SqliteLogStoreTest, RandomBytesAreDataLoss) {
  Rng rng(3);
  std::string junk(64 << 10, '\0');
  for (char& c : junk) c = static_cast<char>(rng.Uniform(256));
  WriteFileOrDie(Options().path, junk);
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(Options().path)));
}

TEST_F(SqliteLogStoreTest, TruncatedDatabaseIsDataLoss) {
  // Enough rows that the database spans many pages.
  {
    auto store = SqliteLogStore::Open(Options());
    ASSERT_OK(store.status());
    LogWrite write;
    write.entries = MakeEntries(1, 2000, 1);
    (*store)->Write(std::move(write), [] {});
  }
  const std::string bytes = ReadFileOrDie(Options().path);
  ASSERT_GT(bytes.size(), 8192u);
  WriteFileOrDie(Options().path, bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(Options().path)));
}

TEST_F(SqliteLogStoreTest, OtherSchemaVersionIsRefused) {
  MakeStore();
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(
        db.Exec("UPDATE meta SET value = 99 WHERE key = 'schema_version'"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("schema version 99"),
                             HasSubstr(Options().path))));
}

TEST_F(SqliteLogStoreTest, ForeignSqliteDatabaseIsRefused) {
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kCreate));
    ASSERT_OK(db.Exec("CREATE TABLE users(name TEXT)"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not a Blixard log store")));
}

TEST_F(SqliteLogStoreTest, FlippedByteInEntryIsDataLossNamingTheIndex) {
  MakeStore();
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    // Flip one byte of entry 7's data, as a bad sector would.
    ASSERT_OK(
        db.Exec("UPDATE entries SET data = "
                "CAST(substr(data, 1, 1) || 'X' || substr(data, 3) AS "
                "BLOB) WHERE idx = 7"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("index 7"), HasSubstr(Options().path))));
}

TEST_F(SqliteLogStoreTest, FlippedTermIsDataLoss) {
  MakeStore();
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("UPDATE entries SET term = 5 WHERE idx = 20"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("index 20")));
}

TEST_F(SqliteLogStoreTest, GapInLogIsDataLossNamingTheIndex) {
  MakeStore();
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("DELETE FROM entries WHERE idx = 12"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("gap"), HasSubstr("index 11"))));
}

TEST_F(SqliteLogStoreTest, LostTailBelowCommitIsDataLoss) {
  MakeStore();  // entries 1..20, commit 20
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("DELETE FROM entries WHERE idx > 14"));
  }
  EXPECT_THAT(
      SqliteLogStore::Open(Options()),
      StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr("commit index 20"),
                                                  HasSubstr("last index 14"))));
}

TEST_F(SqliteLogStoreTest, EntryNotFollowingSnapshotIsDataLoss) {
  MakeStore();
  {
    auto store = SqliteLogStore::Open(Options());
    ASSERT_OK(store.status());
    LogWrite write;
    write.snapshot = MakeSnapshot(10, 1, "state");
    (*store)->Write(std::move(write), [] {});
  }
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    // Entries 11..20 remain; make the snapshot claim index 5.
    ASSERT_OK(db.Exec("DELETE FROM entries WHERE idx = 11"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("index 12"),
                             HasSubstr("snapshot at index 10"))));
}

TEST_F(SqliteLogStoreTest, CorruptHardStateAndSnapshotAreDataLoss) {
  MakeStore();
  {
    auto store = SqliteLogStore::Open(Options());
    ASSERT_OK(store.status());
    LogWrite write;
    write.snapshot = MakeSnapshot(10, 1, std::string(5000, 's'));
    (*store)->Write(std::move(write), [] {});
  }
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("UPDATE hard_state SET vote = 3"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("hard state")));
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("UPDATE hard_state SET vote = 0"));
    ASSERT_OK(db.Exec("UPDATE snapshot_chunks SET data = CAST('x' AS BLOB)"));
  }
  EXPECT_THAT(
      SqliteLogStore::Open(Options()),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("snapshot at index 10")));
}

TEST_F(SqliteLogStoreTest, SnapshotIsStoredInChunks) {
  SqliteLogStoreOptions options = Options();
  options.snapshot_chunk_size_bytes = 4096;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(options));
    LogWrite write;
    write.snapshot = MakeSnapshot(3, 1, std::string(10000, 'z'));
    store->Write(std::move(write), [] {});
    store->WaitForDurable();
  }
  ASSERT_OK_AND_ASSIGN(Db db, Db::Open(options.path, Db::kReadOnly));
  ASSERT_OK_AND_ASSIGN(Statement count,
                       db.Prepare("SELECT count(*), max(length(data)) FROM "
                                  "snapshot_chunks"));
  ASSERT_OK_AND_ASSIGN(bool row, count.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(count.ColumnInt64(0), 3);
  EXPECT_EQ(count.ColumnInt64(1), 4096);
}

TEST_F(SqliteLogStoreTest, AppliedIndexHintRidesWithWritesAndSurvives) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(Options()));
    ASSERT_OK_AND_ASSIGN(Index hint, store->ReadAppliedIndexHint());
    EXPECT_EQ(hint, Index(0));
    LogWrite write;
    write.entries = MakeEntries(1, 5, 1);
    store->Write(std::move(write), [] {});
    store->WaitForDurable();
    store->SetAppliedIndexHint(Index(3));
    // No write yet: the hint has no fsync of its own.
    ASSERT_OK_AND_ASSIGN(hint, store->ReadAppliedIndexHint());
    EXPECT_EQ(hint, Index(0));
    LogWrite next;
    next.entries = MakeEntries(6, 1, 1);
    store->Write(std::move(next), [] {});
    store->WaitForDurable();
    ASSERT_OK_AND_ASSIGN(hint, store->ReadAppliedIndexHint());
    EXPECT_EQ(hint, Index(3));
    store->SetAppliedIndexHint(Index(6));
  }  // written at shutdown
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(Index hint, store->ReadAppliedIndexHint());
  EXPECT_EQ(hint, Index(6));
}

// The largest term, index and node id the Raft core accepts (core/base/
// types.h) fit SQLite's signed 64-bit INTEGER: a hard state, a snapshot and
// an entry at those limits are written and read back unchanged, including
// the range read whose exclusive end is kIndexMax + 1.
TEST_F(SqliteLogStoreTest, LargestAcceptedTermIndexAndVoteRoundTrip) {
  raft::HardState hs;
  hs.set_term(kTermMax);
  hs.set_vote(kNodeIdMax);
  hs.set_commit(kIndexMax);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(Options()));
    LogWrite write;
    write.snapshot = MakeSnapshot(kIndexMax - 1, kTermMax, "state");
    write.entries = MakeEntries(kIndexMax, 1, kTermMax);
    write.hard_state = hs;
    store->Write(std::move(write), [] {});
    store->WaitForDurable();
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(raft::HardState read_hs, store->ReadHardState());
  EXPECT_EQ(read_hs.SerializeAsString(), hs.SerializeAsString());
  ASSERT_OK_AND_ASSIGN(std::optional<raft::Snapshot> snap, store->ReadSnapshot());
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ(snap->metadata().index(), kIndexMax - 1);
  EXPECT_EQ(snap->metadata().term(), kTermMax);
  EXPECT_EQ(snap->data(), "state");
  ASSERT_OK_AND_ASSIGN(Index first, store->FirstIndex());
  ASSERT_OK_AND_ASSIGN(Index last, store->LastIndex());
  EXPECT_EQ(first, Index(kIndexMax));
  EXPECT_EQ(last, Index(kIndexMax));
  ASSERT_OK_AND_ASSIGN(std::vector<raft::Entry> entries,
                       store->ReadEntries(Index(kIndexMax), Index(kIndexMax).Next()));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].index(), kIndexMax);
  EXPECT_EQ(entries[0].term(), kTermMax);
  ASSERT_OK_AND_ASSIGN(Term term, store->ReadTerm(Index(kIndexMax)));
  EXPECT_EQ(term, Term(kTermMax));
}

TEST_F(SqliteLogStoreTest, MissingHardStateRowIsDataLossNotAFreshStore) {
  MakeStore();
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("DELETE FROM hard_state"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("hard_state")));
}

// A store of this build's kind: a nonce with the top bit set (all 64 bits
// must round-trip), not yet confirmed.
constexpr StoreIdentity kIdentity{0xc0ffee0000000001, NodeId(3),
                                  0x8e5a11ce00c0ffee, /*confirmed=*/false};
// A store recorded before nonces: what a version-2 file can hold.
constexpr StoreIdentity kLegacyIdentity{0xc0ffee0000000002, NodeId(5)};
static_assert(kLegacyIdentity.store_nonce == 0 && kLegacyIdentity.confirmed);

// Opens the store at `options`, records `identity` in it and closes it.
void RecordIdentity(const SqliteLogStoreOptions& options,
                    const StoreIdentity& identity = kIdentity) {
  absl::StatusOr<std::unique_ptr<SqliteLogStore>> store =
      SqliteLogStore::Open(options);
  ASSERT_OK(store.status());
  LogWrite write;
  write.identity = identity;
  (*store)->Write(std::move(write), [] {});
  (*store)->WaitForDurable();
}

std::optional<StoreIdentity> ReadIdentityOrDie(SqliteLogStore& store) {
  absl::StatusOr<std::optional<StoreIdentity>> identity = store.ReadIdentity();
  CHECK_OK(identity.status());
  return *identity;
}

// Turns a store of this build into the version-1 file the build before
// store identities wrote: the same tables without `identity`.
void DowngradeToVersion1(const std::string& path) {
  ASSERT_OK_AND_ASSIGN(Db db, Db::Open(path, Db::kReadWrite));
  ASSERT_OK(db.Exec("DROP TABLE identity"));
  ASSERT_OK(db.Exec("UPDATE meta SET value = 1 WHERE key = 'schema_version'"));
}

// Turns a store of this build into the version-2 file the build before
// store nonces wrote: the identity table without store_nonce and confirmed,
// its crc over the two ids only. REQUIRES: the store holds no identity or
// one from before nonces (nonce 0, confirmed), all a version-2 file can
// hold.
void DowngradeToVersion2(const std::string& path) {
  ASSERT_OK_AND_ASSIGN(Db db, Db::Open(path, Db::kReadWrite));
  uint64_t cluster_id = 0;
  uint64_t node_id = 0;
  {
    ASSERT_OK_AND_ASSIGN(Statement row,
                         db.Prepare("SELECT cluster_id, node_id, store_nonce, "
                                    "confirmed FROM identity WHERE id = 0"));
    ASSERT_OK_AND_ASSIGN(bool found, row.Step());
    ASSERT_TRUE(found);
    cluster_id = static_cast<uint64_t>(row.ColumnInt64(0));
    node_id = static_cast<uint64_t>(row.ColumnInt64(1));
    const bool none = cluster_id == 0 && node_id == 0;
    ASSERT_EQ(row.ColumnInt64(2), 0) << "a version-2 file holds no nonce";
    ASSERT_EQ(row.ColumnInt64(3), none ? 0 : 1)
        << "a version-2 file's stores are confirmed";
  }
  ASSERT_OK(db.Exec("DROP TABLE identity"));
  ASSERT_OK(db.Exec(R"sql(
CREATE TABLE identity(
  id INTEGER PRIMARY KEY CHECK (id = 0),
  cluster_id INTEGER NOT NULL,
  node_id INTEGER NOT NULL,
  crc INTEGER NOT NULL) STRICT;
)sql"));
  ASSERT_OK(db.Exec(absl::StrCat(
      "INSERT INTO identity(id, cluster_id, node_id, crc) VALUES(0, ",
      static_cast<int64_t>(cluster_id), ", ", static_cast<int64_t>(node_id),
      ", ", IdentityCrcVersion2(cluster_id, node_id), ")")));
  ASSERT_OK(db.Exec("UPDATE meta SET value = 2 WHERE key = 'schema_version'"));
}

int64_t SchemaVersionOf(const std::string& path) {
  absl::StatusOr<Db> db = Db::Open(path, Db::kReadOnly);
  CHECK_OK(db.status());
  absl::StatusOr<Statement> stmt =
      db->Prepare("SELECT value FROM meta WHERE key = 'schema_version'");
  CHECK_OK(stmt.status());
  absl::StatusOr<bool> row = stmt->Step();
  CHECK_OK(row.status());
  CHECK(*row);
  return stmt->ColumnInt64(0);
}

TEST_F(SqliteLogStoreTest, CorruptIdentityIsDataLossNamingTheFile) {
  MakeStore();
  RecordIdentity(Options());
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("UPDATE identity SET node_id = 4"));  // crc now stale
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("identity fails its checksum"),
                             HasSubstr(Options().path))));
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("UPDATE identity SET node_id = 3, crc = crc + 1"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("identity"), HasSubstr(Options().path))));
  {
    // Half an identity with a checksum that matches: still not an owner.
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec(absl::StrCat(
        "UPDATE identity SET cluster_id = 0, crc = ",
        IdentityCrc(0, 3, kIdentity.store_nonce, /*confirmed=*/0))));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("half set"), HasSubstr(Options().path))));
}

TEST_F(SqliteLogStoreTest, IdentityCorruptedUnderAnOpenStoreIsDataLossOnRead) {
  MakeStore();
  RecordIdentity(Options());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store->ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kIdentity));
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("UPDATE identity SET cluster_id = cluster_id + 1"));
  }
  EXPECT_THAT(store->ReadIdentity(),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("identity"), HasSubstr(Options().path))));
}

TEST_F(SqliteLogStoreTest, MissingIdentityRowIsDataLossNotAStoreWithoutOwner) {
  MakeStore();
  RecordIdentity(Options());
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("DELETE FROM identity"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("identity")));
}

TEST_F(SqliteLogStoreTest, VersionOneStoreIsMigratedAndHasNoIdentity) {
  MakeStore();  // entries 1..20, commit 20
  DowngradeToVersion1(Options().path);
  ASSERT_EQ(SchemaVersionOf(Options().path), 1);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(Options()));
    ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                         store->ReadIdentity());
    EXPECT_FALSE(identity.has_value());
    ASSERT_OK_AND_ASSIGN(std::vector<raft::Entry> entries,
                         store->ReadEntries(Index(1), Index(21)));
    EXPECT_EQ(entries.size(), 20u);
    ASSERT_OK_AND_ASSIGN(raft::HardState hs, store->ReadHardState());
    EXPECT_EQ(hs.commit(), 20u);
    // The migrated store records an identity like any other.
    LogWrite write;
    write.identity = kIdentity;
    store->Write(std::move(write), [] {});
    store->WaitForDurable();
  }
  EXPECT_EQ(SchemaVersionOf(Options().path), kSchemaVersion);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store->ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kIdentity));
}

TEST_F(SqliteLogStoreTest, VersionOneStoreThatLiesIsRefusedAndNotMigrated) {
  MakeStore();
  DowngradeToVersion1(Options().path);
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("DELETE FROM entries WHERE idx = 12"));
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("gap")));
  // Refused as it was: still version 1, no identity table.
  EXPECT_EQ(SchemaVersionOf(Options().path), 1);
  ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadOnly));
  ASSERT_OK_AND_ASSIGN(Statement tables,
                       db.Prepare("SELECT count(*) FROM sqlite_schema WHERE "
                                  "name = 'identity'"));
  ASSERT_OK_AND_ASSIGN(bool row, tables.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(tables.ColumnInt64(0), 0);
}

TEST_F(SqliteLogStoreTest, NonceAndConfirmedRoundTripThroughTheFile) {
  // Every bit of the nonce, both values of confirmed, across a reopen (the
  // first identity of a store is recorded by one write, so one file each).
  const StoreIdentity identities[] = {
      kIdentity,
      StoreIdentity{~uint64_t{0}, NodeId(1), ~uint64_t{0}, true},
      StoreIdentity{1, NodeId(2), 1, false},
      kLegacyIdentity,
  };
  int file = 0;
  for (const StoreIdentity& identity : identities) {
    SqliteLogStoreOptions options = Options();
    options.path = dir_.File(absl::StrCat("store", file++, ".db"));
    RecordIdentity(options, identity);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(options));
    const std::optional<StoreIdentity> read = ReadIdentityOrDie(*store);
    ASSERT_TRUE(read.has_value());
    EXPECT_EQ(read->cluster_id, identity.cluster_id);
    EXPECT_EQ(read->node_id, identity.node_id);
    EXPECT_EQ(read->store_nonce, identity.store_nonce);
    EXPECT_EQ(read->confirmed, identity.confirmed);
  }
}

TEST_F(SqliteLogStoreTest, ConfirmingIsAllowedAndDurableAcrossReopen) {
  MakeStore();
  RecordIdentity(Options(), kIdentity);  // unconfirmed
  StoreIdentity confirmed = kIdentity;
  confirmed.confirmed = true;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(Options()));
    EXPECT_EQ(ReadIdentityOrDie(*store), kIdentity);
    // Confirmed with Raft state, then again alone: both allowed.
    LogWrite write;
    write.entries = MakeEntries(21, 2, 2);
    write.identity = confirmed;
    store->Write(std::move(write), [] {});
    LogWrite again;
    again.identity = confirmed;
    store->Write(std::move(again), [] {});
    store->WaitForDurable();
    EXPECT_EQ(ReadIdentityOrDie(*store), confirmed);
  }
  // Open() checks the rewritten row's checksum before it serves it.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(Options()));
  EXPECT_EQ(ReadIdentityOrDie(*store), confirmed);
  EXPECT_EQ(*store->LastIndex(), Index(22));
}

TEST_F(SqliteLogStoreTest, CorruptVersionThreeIdentityIsDataLossNamingTheFile) {
  MakeStore();
  RecordIdentity(Options(), kIdentity);
  ASSERT_EQ(SchemaVersionOf(Options().path), 3);
  auto expect_data_loss = [&](absl::string_view sql, absl::string_view what) {
    {
      ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
      ASSERT_OK(db.Exec(sql));
    }
    EXPECT_THAT(SqliteLogStore::Open(Options()),
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr(what), HasSubstr(Options().path))))
        << sql;
  };
  // Each new field is under the checksum: neither changes alone.
  expect_data_loss("UPDATE identity SET store_nonce = store_nonce + 1",
                   "identity fails its checksum");
  expect_data_loss(
      "UPDATE identity SET store_nonce = store_nonce - 1, "
      "confirmed = 1",
      "identity fails its checksum");
  // A row whose checksum matches but that no store writes.
  expect_data_loss(
      absl::StrCat("UPDATE identity SET confirmed = 2, crc = ",
                   IdentityCrc(kIdentity.cluster_id, kIdentity.node_id.value(),
                               kIdentity.store_nonce, 2)),
      "confirmed = 2");
  expect_data_loss(absl::StrCat("UPDATE identity SET cluster_id = 0, "
                                "node_id = 0, confirmed = 0, crc = ",
                                IdentityCrc(0, 0, kIdentity.store_nonce, 0)),
                   "half set");
  // Restored, the file opens again: the refusals changed nothing.
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec(absl::StrCat(
        "UPDATE identity SET cluster_id = ",
        static_cast<int64_t>(kIdentity.cluster_id),
        ", node_id = ", kIdentity.node_id.value(), ", confirmed = 0, crc = ",
        IdentityCrc(kIdentity.cluster_id, kIdentity.node_id.value(),
                    kIdentity.store_nonce, 0))));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(Options()));
  EXPECT_EQ(ReadIdentityOrDie(*store), kIdentity);
}

TEST_F(SqliteLogStoreTest, VersionTwoStoreIsMigratedWithItsIdentityConfirmed) {
  MakeStore();  // entries 1..20, commit 20
  RecordIdentity(Options(), kLegacyIdentity);
  DowngradeToVersion2(Options().path);
  ASSERT_EQ(SchemaVersionOf(Options().path), 2);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(Options()));
    const std::optional<StoreIdentity> identity = ReadIdentityOrDie(*store);
    ASSERT_TRUE(identity.has_value());
    EXPECT_EQ(identity->cluster_id, kLegacyIdentity.cluster_id);
    EXPECT_EQ(identity->node_id, kLegacyIdentity.node_id);
    EXPECT_EQ(identity->store_nonce, 0u);
    EXPECT_TRUE(identity->confirmed);
    ASSERT_OK_AND_ASSIGN(std::vector<raft::Entry> entries,
                         store->ReadEntries(Index(1), Index(21)));
    EXPECT_EQ(entries.size(), 20u);
    ASSERT_OK_AND_ASSIGN(raft::HardState hs, store->ReadHardState());
    EXPECT_EQ(hs.commit(), 20u);
    // The node goes on writing its identity as it always did.
    LogWrite write;
    write.entries = MakeEntries(21, 1, 1);
    write.identity = kLegacyIdentity;
    store->Write(std::move(write), [] {});
    store->WaitForDurable();
  }
  EXPECT_EQ(SchemaVersionOf(Options().path), kSchemaVersion);
  // The rewritten row carries the version-3 checksum: Open() accepts it.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(Options()));
  EXPECT_EQ(ReadIdentityOrDie(*store), kLegacyIdentity);
  EXPECT_EQ(*store->LastIndex(), Index(21));
}

TEST_F(SqliteLogStoreTest, VersionTwoStoreWithoutIdentityIsMigratedWithout) {
  MakeStore();
  DowngradeToVersion2(Options().path);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(Options()));
    EXPECT_FALSE(ReadIdentityOrDie(*store).has_value());
  }
  EXPECT_EQ(SchemaVersionOf(Options().path), kSchemaVersion);
  // Such a store may still be claimed by a node of this build.
  RecordIdentity(Options(), kIdentity);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                       SqliteLogStore::Open(Options()));
  EXPECT_EQ(ReadIdentityOrDie(*store), kIdentity);
}

TEST_F(SqliteLogStoreTest, VersionTwoStoreWithCorruptIdentityIsNotMigrated) {
  MakeStore();
  RecordIdentity(Options(), kLegacyIdentity);
  DowngradeToVersion2(Options().path);
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec("UPDATE identity SET node_id = 6"));  // crc now stale
  }
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("identity fails its checksum"),
                             HasSubstr(Options().path))));
  EXPECT_EQ(SchemaVersionOf(Options().path), 2);
  {
    // Half an identity under a matching version-2 checksum.
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kReadWrite));
    ASSERT_OK(db.Exec(absl::StrCat("UPDATE identity SET cluster_id = 0, crc = ",
                                   IdentityCrcVersion2(0, 6))));
  }
  EXPECT_THAT(
      SqliteLogStore::Open(Options()),
      StatusIs(absl::StatusCode::kDataLoss,
               AllOf(HasSubstr("half set"), HasSubstr(Options().path))));
  EXPECT_EQ(SchemaVersionOf(Options().path), 2);
}

TEST_F(SqliteLogStoreTest, ForeignDatabaseIsLeftUntouched) {
  {
    ASSERT_OK_AND_ASSIGN(Db db, Db::Open(Options().path, Db::kCreate));
    ASSERT_OK(db.Exec("CREATE TABLE users(name TEXT)"));
  }
  const std::string before = ReadFileOrDie(Options().path);
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ReadFileOrDie(Options().path), before)
      << "refusing a file must not switch it to WAL or write to it";
}

// Writes a store whose entry data carries a findable marker, closed cleanly
// so everything is checkpointed into the main file.
void MakeMarkedStore(const std::string& path, uint64_t count) {
  SqliteLogStoreOptions options;
  options.path = path;
  auto store = SqliteLogStore::Open(options);
  CHECK_OK(store.status());
  LogWrite write;
  for (uint64_t i = 1; i <= count; ++i) {
    write.entries.push_back(::blixard::testing::MakeEntry(
        i, 1,
        absl::StrCat("MARK", std::string(4 - std::to_string(i).size(), '0'), i,
                     std::string(100, 'd'))));
  }
  raft::HardState hs;
  hs.set_term(1);
  hs.set_commit(count);
  write.hard_state = hs;
  (*store)->Write(std::move(write), [] {});
}

TEST_F(SqliteLogStoreTest, FlippedByteOnDiskIsDataLossNamingTheIndex) {
  MakeMarkedStore(Options().path, 50);
  std::string bytes = ReadFileOrDie(Options().path);
  const size_t at = bytes.find("MARK0037");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 20] ^= 0x04;  // inside entry 37's data: SQLite cannot tell
  WriteFileOrDie(Options().path, bytes);
  EXPECT_THAT(SqliteLogStore::Open(Options()),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("index 37"), HasSubstr("checksum"))));
}

TEST_F(SqliteLogStoreTest, RandomByteFlipsNeverCrashAndNeverLie) {
  // Damage anywhere in the file: Open either refuses (any error, with the
  // file named) or serves exactly the original state.
  const std::string pristine_path = dir_.File("pristine.db");
  MakeMarkedStore(pristine_path, 200);
  const std::string pristine = ReadFileOrDie(pristine_path);
  uint64_t pristine_digest = 0;
  {
    SqliteLogStoreOptions options;
    options.path = pristine_path;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(options));
    ASSERT_OK_AND_ASSIGN(pristine_digest,
                         ::blixard::testing::StoreDigest(*store));
  }
  Rng rng(99);
  int refused = 0;
  int served = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = pristine;
    const uint64_t flips = rng.Range(1, 3);
    for (uint64_t i = 0; i < flips; ++i) {
      bytes[rng.Uniform(bytes.size())] ^=
          static_cast<char>(1 << rng.Uniform(8));
    }
    const std::string path = dir_.File(absl::StrCat("flip", trial, ".db"));
    WriteFileOrDie(path, bytes);
    SqliteLogStoreOptions options;
    options.path = path;
    absl::StatusOr<std::unique_ptr<SqliteLogStore>> store =
        SqliteLogStore::Open(options);
    if (!store.ok()) {
      EXPECT_THAT(store.status().message(), HasSubstr(path));
      ++refused;
      continue;
    }
    absl::StatusOr<uint64_t> digest = ::blixard::testing::StoreDigest(**store);
    if (!digest.ok()) {
      ++refused;
      continue;
    }
    EXPECT_EQ(*digest, pristine_digest)
        << "trial " << trial << ": damaged file served a different state";
    ++served;
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(served, 0);  // flips in unused space are harmless
}

}  // namespace
}  // namespace blixard::storage
