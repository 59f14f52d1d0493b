// SqliteLogStore: the production LogStore (core/env.h), one SQLite database
// per node.
//
// Durability. The database runs with journal_mode=WAL and synchronous=FULL,
// so a COMMIT returns only after the WAL is fsync'd. One I/O thread owns the
// writing connection; it drains every queued write into one transaction and
// one fsync (group commit), then hands the writes' callbacks back to the
// owner. A callback therefore runs only after its write and every earlier
// write are on disk (the first commit of each store also fsyncs the
// directory, so a WAL this session created cannot vanish with its
// directory entry). Callbacks run on the owner's thread inside
// PollCompletions(); the I/O thread calls `options.wakeup` (production: write
// an eventfd) when the completion queue goes from empty to non-empty, so the
// owner's event loop never blocks on disk and never polls blindly.
//
// A failed commit is fatal: the I/O thread CHECK-fails with the SQLite error,
// because Raft has already acted (sent messages) on writes it queued.
//
// Integrity. Every entry, the hard state, the snapshot metadata, each
// snapshot chunk and the store identity (cluster id, node id, store nonce
// and the confirmed bit, recorded with the write that carries it; rewritten
// only when the store is confirmed) carry a CRC-32 (zlib polynomial) over
// their canonical bytes, checked on every read. Open() validates the
// whole database before the node may start: SQLite's own quick_check, the
// schema version, the hard state, the identity, the snapshot (all chunks)
// and every entry (checksum, no gap, indexes after the snapshot, terms
// never decreasing), and that the commit index is within the log. Any lie
// is DATA_LOSS naming the file and the index; the node must refuse to start
// rather than run on a log that lies. Snapshots are stored in chunks of at most
// `snapshot_chunk_size_bytes`, so no single SQLite value approaches its size
// limit.
//
// Threads. Write(), PollCompletions() and the reads belong to the owner's
// thread (one thread). `wakeup` runs on the I/O thread and must be
// thread-safe and quick. Reads use their own connection: WAL lets them run
// while the I/O thread commits; they see every committed write (at least all
// whose callbacks have run, perhaps later ones).
//
//   SqliteLogStoreOptions options;
//   options.path = "/var/lib/blixard/node1.db";
//   options.wakeup = [fd] { uint64_t one = 1; (void)write(fd, &one, 8); };
//   ASSIGN_OR_RETURN(std::unique_ptr<SqliteLogStore> store,
//                    SqliteLogStore::Open(options));
//   store->Write(std::move(write), [] { /* durable: send acks */ });
//   ... on wakeup: read the eventfd, then store->PollCompletions();
#ifndef BLIXARD_STORAGE_SQLITE_LOG_STORE_H_
#define BLIXARD_STORAGE_SQLITE_LOG_STORE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/types.h"
#include "core/env.h"
#include "core/proto/raft.pb.h"
#include "storage/mutex.h"
#include "storage/sqlite.h"

namespace blixard::storage {

// The schema this build writes and reads. Version 2 added the store
// identity (cluster id, node id); version 3 added its store nonce and
// confirmed bit, under one checksum with the ids. Older versions are
// migrated to version 3 by Open(), in one transaction, once the whole file
// has been validated: a version-1 file then holds no identity, a version-2
// file keeps its identity as a store from before nonces (nonce 0,
// confirmed). Any other version is refused at Open() (FAILED_PRECONDITION).
// An older build refuses a migrated file, so an old binary can never run a
// store without checking whose it is, nor drop its nonce or confirmation.
inline constexpr int64_t kSchemaVersion = 3;

// Bound on writes queued and not yet taken by the I/O thread. The Host
// keeps far fewer in flight (one per Ready); reaching it means the Host
// outran the disk without limit, a bug (CHECK), not a workload.
inline constexpr uint64_t kQueuedWritesMax = 1 << 16;

inline constexpr uint64_t kSnapshotChunkSizeBytesMin = 1024;
inline constexpr uint64_t kSnapshotChunkSizeBytesMax = 64ull << 20;

struct SqliteLogStoreOptions {
  // The database file; created (with its schema) when absent.
  std::string path;
  // Called on the I/O thread when completions become available: after a
  // commit that finds the completion queue empty (not for completions that
  // join a queue PollCompletions() has not taken yet). So an owner that
  // sleeps until woken must, on each wake, first consume the wake signal
  // (read its eventfd) and then call PollCompletions(), which takes the
  // whole queue; the other way round, a completion that lands in between
  // would wait for an unrelated wake (net/loop/notifier.h does it right).
  // May be empty (the owner then polls on its own).
  std::function<void()> wakeup;
  // The SQLite VFS to open the database through; empty: SQLite's default.
  // Tests pass a FaultVfs name.
  std::string vfs_name;
  // Snapshot data is stored in chunks of at most this many bytes.
  // Validated in [kSnapshotChunkSizeBytesMin, kSnapshotChunkSizeBytesMax].
  uint64_t snapshot_chunk_size_bytes = 1 << 20;
  // WAL pages before SQLite checkpoints into the main file (SQLite's default
  // is 1000). Validated >= 1.
  int64_t wal_autocheckpoint_pages = 1000;
  // Run PRAGMA quick_check at Open(): O(database size), catches structural
  // damage that checksums on our rows would only find when a row is read.
  bool quick_check_on_open = true;
};

class SqliteLogStore final : public LogStore {
 public:
  // Opens or creates the store and validates everything in it (see the file
  // comment). Errors: INVALID_ARGUMENT for bad options; NOT_FOUND when the
  // file cannot be opened; FAILED_PRECONDITION for a SQLite database that is
  // not a Blixard store or has another schema version; DATA_LOSS (naming the
  // file and, where there is one, the index) for damage or a log that lies,
  // or a corrupt identity. On error nothing was written to an existing file
  // (a missing one is created empty before the error, if any); on success a
  // version-1 or version-2 file has been migrated to kSchemaVersion.
  static absl::StatusOr<std::unique_ptr<SqliteLogStore>> Open(
      SqliteLogStoreOptions options);

  // Waits until every queued write (and the applied-index hint) is durable,
  // then stops the I/O thread.
  // Callbacks not yet run by PollCompletions() are destroyed without running:
  // the owner is going away.
  ~SqliteLogStore() override;

  SqliteLogStore(const SqliteLogStore&) = delete;
  SqliteLogStore& operator=(const SqliteLogStore&) = delete;

  // LogStore. Write() never blocks on disk. REQUIRES (CHECKed; on the I/O
  // thread for those that need the stored log): !write.empty(); entries have
  // consecutive indexes and non-decreasing terms; the first new index is
  // above the snapshot index and at most the last index + 1; compact_to is at
  // most the stored snapshot's index; an identity is valid and one the
  // identity stored or queued before it, if any, MayBecome (checked on the
  // caller's thread, and again on the I/O thread against the file's); fewer
  // than kQueuedWritesMax queued.
  void Write(LogWrite write, Done done) override;
  void PollCompletions() override;
  absl::StatusOr<raft::HardState> ReadHardState() override;
  absl::StatusOr<std::optional<raft::Snapshot>> ReadSnapshot() override;
  absl::StatusOr<Index> FirstIndex() override;
  absl::StatusOr<Index> LastIndex() override;
  absl::StatusOr<std::vector<raft::Entry>> ReadEntries(Index lo,
                                                       Index hi) override;
  absl::StatusOr<Term> ReadTerm(Index index) override;
  // DATA_LOSS naming the file when the identity row is missing, fails its
  // checksum, holds only one of the two ids (or a nonce or confirmed bit
  // without them), or a confirmed bit other than 0 or 1.
  absl::StatusOr<std::optional<StoreIdentity>> ReadIdentity() override;

  // Blocks until every write queued so far is durable and the owner has
  // been woken for it (by `wakeup` for its commit, or for an earlier one
  // whose completions PollCompletions() has not taken yet); its callback is
  // then ready for PollCompletions(). For tests, tools and orderly
  // shutdown; never on the event loop.
  void WaitForDurable();

  // The applied-index hint: the last index the state machine had applied,
  // so a restart can skip re-applying what the snapshot does not cover (the
  // first Blixard re-applied everything). Not Raft state and no fsync of its
  // own: it is written in the next write's transaction, or at destruction.
  // After a crash it may be older than what was applied (re-apply from it is
  // then needed), never newer than the durable log. REQUIRES: `applied` is
  // at most the commit index of a durable hard state.
  void SetAppliedIndexHint(Index applied);
  // The stored hint; Index(0) for a new store. DATA_LOSS if its row is gone.
  absl::StatusOr<Index> ReadAppliedIndexHint();

  // Number of transactions (fsyncs) committed so far; with group commit this
  // is at most the number of writes. Thread-safe.
  uint64_t commit_count() const;

  void CheckInvariants() const;

 private:
  struct PendingWrite {
    LogWrite write;
    Done done;
  };
  // The I/O thread's view of what is stored, exact because the I/O thread is
  // the only writer.
  struct StoredBounds {
    Index snapshot_index{0};
    Term snapshot_term{0};
    Index last_index{0};  // snapshot_index when the log is empty
    Term last_term{0};
    Index commit{0};  // of the stored hard state
    std::optional<StoreIdentity> identity;
  };

  SqliteLogStore(SqliteLogStoreOptions options, Db writer, Db reader);
  absl::Status PrepareStatements();
  // Needs the identity table in its current shape, which an older file has
  // only once Open() has migrated it.
  absl::Status PrepareIdentityStatement();
  void IoThreadMain();
  // The I/O thread's own invariants (its cached bounds), after each commit.
  void CheckIoInvariants();
  // Applies one queued write inside the open transaction.
  absl::Status ApplyWrite(const LogWrite& write);
  absl::Status ApplyIdentity(const StoreIdentity& identity);
  absl::Status ApplySnapshot(const raft::Snapshot& snapshot);
  absl::Status ApplyEntries(const std::vector<raft::Entry>& entries);
  absl::Status ApplyHardState(const raft::HardState& hard_state);
  absl::Status ApplyCompaction(Index compact_to);
  absl::StatusOr<std::optional<raft::SnapshotMetadata>> ReadSnapshotMetadata(
      Db& db, uint64_t* data_size, uint64_t* chunk_count, uint32_t* data_crc);

  const SqliteLogStoreOptions options_;
  Db writer_;  // I/O thread only (and Open() before the thread starts).
  Db reader_;  // Owner's thread only.

  // Writer statements (I/O thread).
  std::optional<Statement> insert_entry_;
  // kEntriesPerInsert rows per statement: one VDBE run, one reset and one
  // b-tree descent setup per group instead of per entry.
  std::optional<Statement> insert_entries_;
  std::optional<Statement> delete_entries_from_;
  std::optional<Statement> delete_entries_through_;
  std::optional<Statement> delete_all_entries_;
  std::optional<Statement> select_term_w_;
  std::optional<Statement> upsert_hard_state_;
  std::optional<Statement> upsert_snapshot_;
  std::optional<Statement> delete_chunks_;
  std::optional<Statement> insert_chunk_;
  std::optional<Statement> update_applied_hint_;
  std::optional<Statement> upsert_identity_;
  // Reader statements (owner's thread).
  std::optional<Statement> select_hard_state_;
  std::optional<Statement> select_entries_;
  std::optional<Statement> select_term_r_;
  std::optional<Statement> select_bounds_;
  std::optional<Statement> select_applied_hint_;

  StoredBounds bounds_;            // I/O thread (Open() before it starts).
  bool directory_synced_ = false;  // I/O thread
  // The identity the store holds once every queued write is durable: what
  // Write() checks a new write's identity against. Owner's thread.
  std::optional<StoreIdentity> queued_identity_;

  // Shared by the owner and the I/O thread. blixard::Mutex (storage/
  // mutex.h): TSan sees its hand-offs and -Wthread-safety checks the fields
  // below.
  mutable Mutex mu_;
  // The I/O thread waits on it for queued writes or stopping_.
  std::condition_variable_any work_cv_;
  // WaitForDurable() waits on it for writes_announced_.
  std::condition_variable_any durable_cv_;
  std::deque<PendingWrite> queued_ ABSL_GUARDED_BY(mu_);
  std::deque<Done> completed_ ABSL_GUARDED_BY(mu_);
  uint64_t writes_queued_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t writes_durable_ ABSL_GUARDED_BY(mu_) = 0;
  // Durable writes the owner has been woken for (see WaitForDurable).
  uint64_t writes_announced_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Index applied_hint_ ABSL_GUARDED_BY(mu_){0};
  bool applied_hint_dirty_ ABSL_GUARDED_BY(mu_) = false;

  std::thread io_thread_;
  int lock_fd_ = -1;  // flock'd "<path>.lock", held for the store's life
};

// The CRC-32 (zlib polynomial) of an entry's canonical bytes: index, term and type as
// little-endian integers, then the data. Exposed for tests that forge rows.
uint32_t EntryCrc(uint64_t index, uint64_t term, uint64_t type,
                  absl::string_view data);

// The CRC-32 of a store identity row: cluster id, node id, store nonce and
// confirmed (0 or 1) as little-endian 64-bit integers (all 0 for "none
// recorded"). Exposed for tests that forge rows.
uint32_t IdentityCrc(uint64_t cluster_id, uint64_t node_id,
                     uint64_t store_nonce, uint64_t confirmed);

// The CRC-32 of a schema-version-2 identity row (cluster id and node id
// only), checked when Open() migrates such a row. Exposed for tests that
// forge version-2 files.
uint32_t IdentityCrcVersion2(uint64_t cluster_id, uint64_t node_id);

}  // namespace blixard::storage

#endif  // BLIXARD_STORAGE_SQLITE_LOG_STORE_H_
