#include "storage/sqlite_log_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <libdeflate.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"

namespace blixard::storage {
namespace {

constexpr const char* kSchemaSql = R"sql(
CREATE TABLE meta(
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL) STRICT;
CREATE TABLE entries(
  idx INTEGER PRIMARY KEY,
  term INTEGER NOT NULL,
  type INTEGER NOT NULL,
  data BLOB NOT NULL,
  crc INTEGER NOT NULL) STRICT;
CREATE TABLE hard_state(
  id INTEGER PRIMARY KEY CHECK (id = 0),
  term INTEGER NOT NULL,
  vote INTEGER NOT NULL,
  commit_index INTEGER NOT NULL,
  crc INTEGER NOT NULL) STRICT;
CREATE TABLE snapshot(
  id INTEGER PRIMARY KEY CHECK (id = 0),
  idx INTEGER NOT NULL,
  term INTEGER NOT NULL,
  conf_state BLOB NOT NULL,
  data_size INTEGER NOT NULL,
  chunk_count INTEGER NOT NULL,
  data_crc INTEGER NOT NULL,
  crc INTEGER NOT NULL) STRICT;
CREATE TABLE snapshot_chunks(
  seq INTEGER PRIMARY KEY,
  data BLOB NOT NULL,
  crc INTEGER NOT NULL) STRICT;
)sql";

// The store identity: added by schema version 2 (cluster id, node id),
// given its store nonce and confirmed bit by version 3 (both migrated at
// Open()). Like hard_state and snapshot, the table always holds exactly its
// row 0, so a row lost to damage cannot pass for a store that never
// recorded an identity; a row of zeros means "none recorded". `confirmed`
// is 0 or 1. The crc covers all four fields, so no field can change alone.
constexpr const char* kIdentitySchemaSql = R"sql(
CREATE TABLE identity(
  id INTEGER PRIMARY KEY CHECK (id = 0),
  cluster_id INTEGER NOT NULL,
  node_id INTEGER NOT NULL,
  store_nonce INTEGER NOT NULL,
  confirmed INTEGER NOT NULL,
  crc INTEGER NOT NULL) STRICT;
)sql";

// The versions Open() accepts: kSchemaVersion as it is, the older ones by
// migrating them (after validation) to kSchemaVersion.
constexpr int64_t kSchemaVersionMigratableMin = 1;
static_assert(kSchemaVersionMigratableMin <= kSchemaVersion);

void PutLe64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

// CRC-32 with the zlib (IEEE 802.3) polynomial: values equal zlib's crc32,
// so files written before the switch to libdeflate still verify.
uint32_t Crc(uint32_t crc, absl::string_view bytes) {
  // An empty view may have a null data(); keep the library away from it.
  if (bytes.empty()) return crc;
  return libdeflate_crc32(crc, bytes.data(), bytes.size());
}

// The entries table's columns, in the order the insert statements bind them.
constexpr int kEntryColumns = 5;
constexpr size_t kEntriesPerInsert = 64;

uint32_t HardStateCrc(const raft::HardState& hs) {
  std::string bytes;
  PutLe64(bytes, hs.term());
  PutLe64(bytes, hs.vote());
  PutLe64(bytes, hs.commit());
  return Crc(0, bytes);
}

uint32_t SnapshotMetaCrc(uint64_t index, uint64_t term,
                         absl::string_view conf_state, uint64_t data_size,
                         uint64_t chunk_count, uint64_t data_crc) {
  std::string bytes;
  PutLe64(bytes, index);
  PutLe64(bytes, term);
  PutLe64(bytes, data_size);
  PutLe64(bytes, chunk_count);
  PutLe64(bytes, data_crc);
  return Crc(Crc(0, bytes), conf_state);
}

// Identity ids and the store nonce are labels, never compared or ordered in
// SQL, and a cluster id or nonce is random over all 64 bits: they are stored
// as their bit pattern (two's complement), so every uint64 round-trips.
int64_t BitsToSql(uint64_t value) { return static_cast<int64_t>(value); }

// SQLite stores signed 64-bit integers; indexes and terms stay below 2^63.
// Every index, term and vote the store writes is CHECKed against this, so
// the Raft core must keep them at most kSqlIntMax (and an index the log
// will append at, last + 1, too).
constexpr uint64_t kSqlIntMax = (uint64_t{1} << 63) - 1;
int64_t ToSql(uint64_t value) {
  CHECK_LE(value, kSqlIntMax) << "value too large for SQLite";
  return static_cast<int64_t>(value);
}
uint64_t FromSql(int64_t value) { return static_cast<uint64_t>(value); }

absl::Status DataLoss(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("log store ", path, ": ", what));
}

absl::Status ValidateOptions(const SqliteLogStoreOptions& options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("SqliteLogStore: empty path");
  }
  if (options.snapshot_chunk_size_bytes < kSnapshotChunkSizeBytesMin ||
      options.snapshot_chunk_size_bytes > kSnapshotChunkSizeBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SqliteLogStore: snapshot_chunk_size_bytes ",
        options.snapshot_chunk_size_bytes, " outside [",
        kSnapshotChunkSizeBytesMin, ", ", kSnapshotChunkSizeBytesMax, "]"));
  }
  if (options.wal_autocheckpoint_pages < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("SqliteLogStore: wal_autocheckpoint_pages ",
                     options.wal_autocheckpoint_pages, " < 1"));
  }
  return absl::OkStatus();
}

// Journal mode WAL, synchronous FULL: a COMMIT fsyncs the WAL.
absl::Status ConfigureConnection(Db& db, const SqliteLogStoreOptions& options) {
  RETURN_IF_ERROR(db.Exec("PRAGMA busy_timeout=10000"));
  ASSIGN_OR_RETURN(Statement mode, db.Prepare("PRAGMA journal_mode=WAL"));
  ASSIGN_OR_RETURN(bool row, mode.Step());
  if (!row || mode.ColumnBlob(0) != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        "log store ", db.path(), ": cannot switch to journal_mode=WAL (got '",
        row ? mode.ColumnBlob(0) : "", "')"));
  }
  mode.Reset();
  RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(db.Exec(absl::StrCat("PRAGMA wal_autocheckpoint=",
                                       options.wal_autocheckpoint_pages)));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> QueryInt(Db& db, absl::string_view sql) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError(absl::StrCat("no row from ", sql));
  return stmt.ColumnInt64(0);
}

// Reads only: 0 for an empty database (no tables); the schema version
// for one of ours at a version this build opens (kSchemaVersion, or one it
// migrates from); an error otherwise. Runs before anything is written, so a
// file that is not ours is left untouched.
absl::StatusOr<int64_t> CheckSchema(Db& db) {
  ASSIGN_OR_RETURN(int64_t tables,
                   QueryInt(db, "SELECT count(*) FROM sqlite_schema"));
  if (tables == 0) return 0;
  ASSIGN_OR_RETURN(int64_t has_meta,
                   QueryInt(db,
                            "SELECT count(*) FROM sqlite_schema WHERE "
                            "type='table' AND name='meta'"));
  if (has_meta == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "log store ", db.path(),
        ": a SQLite database but not a Blixard log store (no meta table)"));
  }
  ASSIGN_OR_RETURN(Statement version, db.Prepare("SELECT value FROM meta WHERE "
                                                 "key='schema_version'"));
  ASSIGN_OR_RETURN(bool row, version.Step());
  if (!row || version.ColumnType(0) != SQLITE_INTEGER) {
    return DataLoss(db.path(), "no schema_version row in table meta");
  }
  const int64_t found = version.ColumnInt64(0);
  if (found < kSchemaVersionMigratableMin || found > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "log store ", db.path(), ": schema version ", found,
        " is not supported (this build reads versions ",
        kSchemaVersionMigratableMin, " to ", kSchemaVersion,
        "); refusing to open"));
  }
  // The single-row tables always hold exactly their row 0 (created with the
  // schema), so a row lost to damage cannot pass for a fresh store.
  std::vector<const char*> single_row_tables = {"hard_state", "snapshot"};
  if (found >= 2) single_row_tables.push_back("identity");
  for (const char* table : single_row_tables) {
    ASSIGN_OR_RETURN(int64_t rows,
                     QueryInt(db, absl::StrCat("SELECT count(*) FROM ", table,
                                               " WHERE id = 0")));
    ASSIGN_OR_RETURN(
        int64_t all,
        QueryInt(db, absl::StrCat("SELECT count(*) FROM ", table)));
    if (rows != 1 || all != 1) {
      return DataLoss(db.path(), absl::StrCat("table ", table, " holds ", all,
                                              " rows, ", rows,
                                              " of them row 0; expected "
                                              "exactly row 0"));
    }
  }
  ASSIGN_OR_RETURN(int64_t hints,
                   QueryInt(db,
                            "SELECT count(*) FROM meta WHERE "
                            "key='applied_index_hint' AND typeof(value) = "
                            "'integer'"));
  if (hints != 1) return DataLoss(db.path(), "applied_index_hint row missing");
  return found;
}

// Binds the identity row's cluster_id, node_id, store_nonce, confirmed and
// crc (parameters `first` .. first + 4, 1-based) for `identity`, or for
// "none recorded" (zeros).
void BindIdentityRow(Statement& stmt, int first,
                     const std::optional<StoreIdentity>& identity) {
  const uint64_t cluster_id = identity ? identity->cluster_id : 0;
  const uint64_t node_id = identity ? identity->node_id.value() : 0;
  const uint64_t store_nonce = identity ? identity->store_nonce : 0;
  const uint64_t confirmed = identity && identity->confirmed ? 1 : 0;
  stmt.BindInt64(first, BitsToSql(cluster_id));
  stmt.BindInt64(first + 1, BitsToSql(node_id));
  stmt.BindInt64(first + 2, BitsToSql(store_nonce));
  stmt.BindInt64(first + 3, BitsToSql(confirmed));
  stmt.BindInt64(first + 4,
                 IdentityCrc(cluster_id, node_id, store_nonce, confirmed));
}

// The identity table in its current shape, holding `identity` (nullopt:
// the "none recorded" row), inside the caller's transaction.
absl::Status CreateIdentityTable(Db& db,
                                 const std::optional<StoreIdentity>& identity) {
  if (identity) CHECK(identity->valid()) << StoreIdentityDetail(*identity);
  RETURN_IF_ERROR(db.Exec(kIdentitySchemaSql));
  ASSIGN_OR_RETURN(Statement insert,
                   db.Prepare("INSERT INTO identity(id, cluster_id, node_id, "
                              "store_nonce, confirmed, crc) "
                              "VALUES(0, ?, ?, ?, ?, ?)"));
  BindIdentityRow(insert, 1, identity);
  return insert.Run();
}

// Reads the identity row of a version-2 file (cluster id, node id, a crc
// over the two) as a version-3 identity: a store from before nonces, so
// nonce 0 and confirmed (core/env.h). Reads only. DATA_LOSS naming the file
// for a missing, corrupt or half-set row, as ReadIdentity() says.
absl::StatusOr<std::optional<StoreIdentity>> ReadVersion2Identity(Db& db) {
  ASSIGN_OR_RETURN(Statement stmt,
                   db.Prepare("SELECT cluster_id, node_id, crc FROM identity "
                              "WHERE id = 0"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return DataLoss(db.path(), "store identity row missing");
  StoreIdentity identity;
  identity.cluster_id = FromSql(stmt.ColumnInt64(0));
  identity.node_id = NodeId(FromSql(stmt.ColumnInt64(1)));
  identity.store_nonce = 0;
  identity.confirmed = true;
  const uint32_t crc = static_cast<uint32_t>(stmt.ColumnInt64(2));
  if (IdentityCrcVersion2(identity.cluster_id, identity.node_id.value()) !=
      crc) {
    return DataLoss(db.path(), "store identity fails its checksum");
  }
  if (identity.cluster_id == 0 && identity.node_id == kNoNode) {
    return std::optional<StoreIdentity>();  // none recorded
  }
  if (!identity.valid()) {
    return DataLoss(db.path(),
                    absl::StrCat("store identity is half set (",
                                 StoreIdentityString(identity), ")"));
  }
  return std::optional<StoreIdentity>(identity);
}

// Version 1 or 2 -> kSchemaVersion. `identity` is what the old file holds,
// already read and validated by the caller (none for version 1: it has no
// identity table). Version 1 gains the identity table; version 2's table,
// of the old shape and under the old checksum, is replaced by one of the
// current shape holding the same identity. One transaction: the file is
// either still at its old version or fully at kSchemaVersion.
absl::Status MigrateToCurrentVersion(
    Db& db, int64_t from, const std::optional<StoreIdentity>& identity) {
  CHECK_GE(from, kSchemaVersionMigratableMin);
  CHECK_LT(from, kSchemaVersion);
  if (from == 1) CHECK(!identity.has_value());
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  if (from >= 2) RETURN_IF_ERROR(db.Exec("DROP TABLE identity"));
  RETURN_IF_ERROR(CreateIdentityTable(db, identity));
  RETURN_IF_ERROR(db.Exec(
      absl::StrCat("UPDATE meta SET value = ", kSchemaVersion,
                   " WHERE key = 'schema_version' AND value = ", from)));
  ASSIGN_OR_RETURN(int64_t version,
                   QueryInt(db,
                            "SELECT value FROM meta WHERE "
                            "key = 'schema_version'"));
  if (version != kSchemaVersion) {
    return absl::InternalError(absl::StrCat(
        "log store ", db.path(), ": migration left schema version ", version));
  }
  return txn.Commit();
}

absl::Status CreateSchema(Db& db) {
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  RETURN_IF_ERROR(db.Exec(kSchemaSql));
  RETURN_IF_ERROR(db.Exec(
      absl::StrCat("INSERT INTO meta(key, value) VALUES('schema_version', ",
                   kSchemaVersion, "), ('applied_index_hint', 0)")));
  const raft::HardState empty;
  RETURN_IF_ERROR(db.Exec(
      absl::StrCat("INSERT INTO hard_state(id, term, vote, commit_index, crc) "
                   "VALUES(0, 0, 0, 0, ",
                   HardStateCrc(empty), ")")));
  // Index 0: no snapshot yet.
  RETURN_IF_ERROR(db.Exec(
      absl::StrCat("INSERT INTO snapshot(id, idx, term, conf_state, data_size, "
                   "chunk_count, data_crc, crc) VALUES(0, 0, 0, x'', 0, 0, 0, ",
                   SnapshotMetaCrc(0, 0, "", 0, 0, 0), ")")));
  RETURN_IF_ERROR(CreateIdentityTable(db, std::nullopt));
  return txn.Commit();
}

// fsync()s the directory holding `path`, making its directory entries (the
// database, its WAL) durable.
absl::Status SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos
                              ? "."
                              : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("log store directory ", dir, ": ", std::strerror(errno)));
  }
  const int rc = fsync(fd);
  const int error = errno;
  close(fd);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("log store directory ", dir,
                                            ": fsync: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

// Opens (creating) `path` and takes an exclusive, non-blocking flock on it.
absl::StatusOr<int> LockFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    return absl::Status(
        error == ENOENT ? absl::StatusCode::kNotFound
                        : absl::StatusCode::kPermissionDenied,
        absl::StrCat("log store lock ", path, ": ", std::strerror(error)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "log store lock ", path,
          ": the log is in use by another store (another node process, or "
          "this one opened it twice)"));
    }
    return absl::InternalError(
        absl::StrCat("log store lock ", path, ": ", std::strerror(error)));
  }
  return fd;
}

absl::Status QuickCheck(Db& db) {
  ASSIGN_OR_RETURN(Statement check, db.Prepare("PRAGMA quick_check"));
  ASSIGN_OR_RETURN(bool row, check.Step());
  if (!row) return DataLoss(db.path(), "quick_check returned nothing");
  const std::string first(check.ColumnBlob(0));
  if (first != "ok") {
    return DataLoss(db.path(), absl::StrCat("quick_check: ", first));
  }
  return absl::OkStatus();
}

}  // namespace

uint32_t IdentityCrc(uint64_t cluster_id, uint64_t node_id,
                     uint64_t store_nonce, uint64_t confirmed) {
  std::string bytes;
  PutLe64(bytes, cluster_id);
  PutLe64(bytes, node_id);
  PutLe64(bytes, store_nonce);
  PutLe64(bytes, confirmed);
  return Crc(0, bytes);
}

uint32_t IdentityCrcVersion2(uint64_t cluster_id, uint64_t node_id) {
  std::string bytes;
  PutLe64(bytes, cluster_id);
  PutLe64(bytes, node_id);
  return Crc(0, bytes);
}

uint32_t EntryCrc(uint64_t index, uint64_t term, uint64_t type,
                  absl::string_view data) {
  // Hot: once per entry on every write and read.
  constexpr size_t kHeaderBytes = 24;
  char header[kHeaderBytes];
  const uint64_t fields[3] = {index, term, type};
  for (size_t f = 0; f < 3; ++f) {
    for (size_t i = 0; i < 8; ++i) {
      header[f * 8 + i] = static_cast<char>((fields[f] >> (8 * i)) & 0xff);
    }
  }
  return Crc(Crc(0, absl::string_view(header, kHeaderBytes)), data);
}

namespace {

// Binds one entry's row at parameters first+1 .. first+kEntryColumns.
void BindEntry(Statement& insert, int first, const raft::Entry& entry) {
  insert.BindInt64(first + 1, ToSql(entry.index()));
  insert.BindInt64(first + 2, ToSql(entry.term()));
  insert.BindInt64(first + 3, static_cast<int64_t>(entry.type()));
  insert.BindBlob(first + 4, entry.data());
  insert.BindInt64(first + 5,
                   EntryCrc(entry.index(), entry.term(),
                            static_cast<uint64_t>(entry.type()), entry.data()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteLogStore>> SqliteLogStore::Open(
    SqliteLogStoreOptions options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  // One owner per log: two nodes (or two instances of one) appending to the
  // same file would interleave two Raft logs into one lie. An advisory lock
  // beside the database, held for the store's life, released by the kernel
  // when the process dies (so a crash never leaves it stuck).
  ASSIGN_OR_RETURN(int lock_fd, LockFile(options.path + ".lock"));
  absl::Cleanup unlock = [lock_fd] { close(lock_fd); };
  ASSIGN_OR_RETURN(Db writer,
                   Db::Open(options.path, Db::kCreate, options.vfs_name));
  // Check before changing anything: a file that is not ours, or damaged,
  // must be refused as it is.
  ASSIGN_OR_RETURN(const int64_t schema_version, CheckSchema(writer));
  const bool is_new = schema_version == 0;
  if (!is_new && options.quick_check_on_open) {
    RETURN_IF_ERROR(QuickCheck(writer));
  }
  RETURN_IF_ERROR(ConfigureConnection(writer, options));
  if (is_new) RETURN_IF_ERROR(CreateSchema(writer));
  ASSIGN_OR_RETURN(Db reader,
                   Db::Open(options.path, Db::kReadWrite, options.vfs_name));
  RETURN_IF_ERROR(ConfigureConnection(reader, options));

  std::unique_ptr<SqliteLogStore> store(new SqliteLogStore(
      std::move(options), std::move(writer), std::move(reader)));
  std::move(unlock).Cancel();
  store->lock_fd_ = lock_fd;
  RETURN_IF_ERROR(store->PrepareStatements());

  // Validate everything the node will recover from, through the same reads
  // the Host uses, and learn the bounds the I/O thread keeps.
  const std::string& path = store->options_.path;
  ASSIGN_OR_RETURN(raft::HardState hard_state, store->ReadHardState());
  ASSIGN_OR_RETURN(std::optional<raft::Snapshot> snapshot,
                   store->ReadSnapshot());
  StoredBounds bounds;
  if (snapshot) {
    bounds.snapshot_index = Index(snapshot->metadata().index());
    bounds.snapshot_term = Term(snapshot->metadata().term());
  }
  bounds.last_index = bounds.snapshot_index;
  bounds.last_term = bounds.snapshot_term;
  {
    ASSIGN_OR_RETURN(
        Statement scan,
        store->writer_.Prepare("SELECT idx, term, type, data, crc FROM entries "
                               "ORDER BY idx"));
    bool first = true;
    while (true) {
      ASSIGN_OR_RETURN(bool row, scan.Step());
      if (!row) break;
      const uint64_t index = FromSql(scan.ColumnInt64(0));
      const uint64_t term = FromSql(scan.ColumnInt64(1));
      if (first && snapshot && index != bounds.snapshot_index.value() + 1) {
        return DataLoss(path, absl::StrCat("first entry index ", index,
                                           " does not follow the snapshot at "
                                           "index ",
                                           bounds.snapshot_index.value()));
      }
      if (first && !snapshot && index != 1) {
        return DataLoss(path, absl::StrCat("first entry index ", index,
                                           " but no snapshot covers the "
                                           "entries before it"));
      }
      if (!first && index != bounds.last_index.value() + 1) {
        return DataLoss(path, absl::StrCat("gap in the log after index ",
                                           bounds.last_index.value(),
                                           ": next entry is index ", index));
      }
      if (term < bounds.last_term.value()) {
        return DataLoss(
            path, absl::StrCat("entry at index ", index, " has term ", term,
                               " below the term before it (",
                               bounds.last_term.value(), ")"));
      }
      const uint64_t type = FromSql(scan.ColumnInt64(2));
      const uint32_t crc = static_cast<uint32_t>(scan.ColumnInt64(4));
      if (EntryCrc(index, term, type, scan.ColumnBlob(3)) != crc ||
          !raft::EntryType_IsValid(static_cast<int>(type))) {
        return DataLoss(path, absl::StrCat("entry at index ", index,
                                           " fails its checksum"));
      }
      bounds.last_index = Index(index);
      bounds.last_term = Term(term);
      first = false;
    }
  }
  // Raft never commits past its log; a commit index beyond it means the
  // log lost its tail.
  if (hard_state.commit() > bounds.last_index.value()) {
    return DataLoss(
        path, absl::StrCat("hard state commit index ", hard_state.commit(),
                           " is beyond the last index ",
                           bounds.last_index.value(), ": entries are missing"));
  }
  bounds.commit = Index(hard_state.commit());
  // The identity, as the file's version records it (version 1: none).
  if (is_new || schema_version == kSchemaVersion) {
    ASSIGN_OR_RETURN(bounds.identity, store->ReadIdentity());
  } else if (schema_version == 2) {
    ASSIGN_OR_RETURN(bounds.identity, ReadVersion2Identity(store->writer_));
  }
  if (!is_new && schema_version != kSchemaVersion) {
    // Everything validated: only now may Open() change the file.
    RETURN_IF_ERROR(MigrateToCurrentVersion(store->writer_, schema_version,
                                            bounds.identity));
    // Paired check: the rewritten row reads back as the identity it kept.
    ASSIGN_OR_RETURN(std::optional<StoreIdentity> migrated,
                     store->ReadIdentity());
    CHECK(migrated == bounds.identity)
        << "log store " << path << ": the migration from schema version "
        << schema_version << " changed the identity to "
        << (migrated ? StoreIdentityDetail(*migrated) : "none");
  }
  store->queued_identity_ = bounds.identity;
  RETURN_IF_ERROR(store->PrepareIdentityStatement());
  store->bounds_ = bounds;
  store->CheckInvariants();
  store->io_thread_ = std::thread([s = store.get()] { s->IoThreadMain(); });
  return store;
}

absl::Status SqliteLogStore::PrepareIdentityStatement() {
  ASSIGN_OR_RETURN(Statement stmt,
                   writer_.Prepare("INSERT OR REPLACE INTO identity(id, "
                                   "cluster_id, node_id, store_nonce, "
                                   "confirmed, crc) VALUES(0, ?, ?, ?, ?, ?)"));
  upsert_identity_.emplace(std::move(stmt));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<StoreIdentity>> SqliteLogStore::ReadIdentity() {
  // Prepared per call: the Host reads it once, at start-up.
  ASSIGN_OR_RETURN(
      Statement stmt,
      reader_.Prepare("SELECT cluster_id, node_id, store_nonce, "
                      "confirmed, crc FROM identity WHERE id = 0"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return DataLoss(options_.path, "store identity row missing");
  const uint64_t cluster_id = FromSql(stmt.ColumnInt64(0));
  const uint64_t node_id = FromSql(stmt.ColumnInt64(1));
  const uint64_t store_nonce = FromSql(stmt.ColumnInt64(2));
  const uint64_t confirmed = FromSql(stmt.ColumnInt64(3));
  const uint32_t crc = static_cast<uint32_t>(stmt.ColumnInt64(4));
  if (IdentityCrc(cluster_id, node_id, store_nonce, confirmed) != crc) {
    return DataLoss(options_.path, "store identity fails its checksum");
  }
  if (confirmed > 1) {
    return DataLoss(options_.path,
                    absl::StrCat("store identity has confirmed = ", confirmed,
                                 " (neither 0 nor 1)"));
  }
  StoreIdentity identity;
  identity.cluster_id = cluster_id;
  identity.node_id = NodeId(node_id);
  identity.store_nonce = store_nonce;
  identity.confirmed = confirmed == 1;
  if (cluster_id == 0 && node_id == 0 && store_nonce == 0 && confirmed == 0) {
    return std::optional<StoreIdentity>();  // none recorded
  }
  if (!identity.valid()) {
    return DataLoss(options_.path, absl::StrCat("store identity is half set (",
                                                StoreIdentityDetail(identity), ")"));
  }
  return std::optional<StoreIdentity>(identity);
}

SqliteLogStore::SqliteLogStore(SqliteLogStoreOptions options, Db writer,
                               Db reader)
    : options_(std::move(options)),
      writer_(std::move(writer)),
      reader_(std::move(reader)) {}

absl::Status SqliteLogStore::PrepareStatements() {
  auto prep = [](Db& db, std::optional<Statement>& out,
                 absl::string_view sql) -> absl::Status {
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
    out.emplace(std::move(stmt));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(prep(writer_, insert_entry_,
                       "INSERT INTO entries(idx, term, type, data, crc) "
                       "VALUES(?, ?, ?, ?, ?)"));
  std::vector<std::string> rows(kEntriesPerInsert, "(?, ?, ?, ?, ?)");
  RETURN_IF_ERROR(prep(writer_, insert_entries_,
                       absl::StrCat("INSERT INTO entries(idx, term, type, "
                                    "data, crc) VALUES",
                                    absl::StrJoin(rows, ", "))));
  RETURN_IF_ERROR(prep(writer_, delete_entries_from_,
                       "DELETE FROM entries WHERE idx >= ?"));
  RETURN_IF_ERROR(prep(writer_, delete_entries_through_,
                       "DELETE FROM entries WHERE idx <= ?"));
  RETURN_IF_ERROR(prep(writer_, delete_all_entries_, "DELETE FROM entries"));
  RETURN_IF_ERROR(
      prep(writer_, select_term_w_, "SELECT term FROM entries WHERE idx = ?"));
  RETURN_IF_ERROR(prep(writer_, upsert_hard_state_,
                       "INSERT OR REPLACE INTO hard_state(id, term, vote, "
                       "commit_index, crc) VALUES(0, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(prep(writer_, upsert_snapshot_,
                       "INSERT OR REPLACE INTO snapshot(id, idx, term, "
                       "conf_state, data_size, chunk_count, data_crc, crc) "
                       "VALUES(0, ?, ?, ?, ?, ?, ?, ?)"));
  RETURN_IF_ERROR(prep(writer_, delete_chunks_, "DELETE FROM snapshot_chunks"));
  RETURN_IF_ERROR(prep(writer_, insert_chunk_,
                       "INSERT INTO snapshot_chunks(seq, data, crc) "
                       "VALUES(?, ?, ?)"));
  RETURN_IF_ERROR(prep(writer_, update_applied_hint_,
                       "UPDATE meta SET value = ? WHERE "
                       "key = 'applied_index_hint'"));
  RETURN_IF_ERROR(prep(reader_, select_applied_hint_,
                       "SELECT value FROM meta WHERE "
                       "key = 'applied_index_hint'"));
  RETURN_IF_ERROR(prep(reader_, select_hard_state_,
                       "SELECT term, vote, commit_index, crc FROM hard_state "
                       "WHERE id = 0"));
  RETURN_IF_ERROR(prep(reader_, select_entries_,
                       "SELECT idx, term, type, data, crc FROM entries "
                       "WHERE idx >= ? AND idx <= ? ORDER BY idx"));
  RETURN_IF_ERROR(
      prep(reader_, select_term_r_,
           "SELECT idx, term, type, data, crc FROM entries WHERE idx = ?"));
  RETURN_IF_ERROR(
      prep(reader_, select_bounds_, "SELECT min(idx), max(idx) FROM entries"));
  return absl::OkStatus();
}

SqliteLogStore::~SqliteLogStore() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  if (io_thread_.joinable()) io_thread_.join();
  // Close the database (statements first) before giving up the lock.
  insert_entry_.reset();
  insert_entries_.reset();
  delete_entries_from_.reset();
  delete_entries_through_.reset();
  delete_all_entries_.reset();
  select_term_w_.reset();
  upsert_hard_state_.reset();
  upsert_snapshot_.reset();
  delete_chunks_.reset();
  insert_chunk_.reset();
  update_applied_hint_.reset();
  upsert_identity_.reset();
  select_hard_state_.reset();
  select_entries_.reset();
  select_term_r_.reset();
  select_bounds_.reset();
  select_applied_hint_.reset();
  writer_.Close();
  reader_.Close();
  if (lock_fd_ >= 0) close(lock_fd_);
}

void SqliteLogStore::Write(LogWrite write, Done done) {
  CHECK(!write.empty()) << "empty LogWrite";
  CHECK(done != nullptr) << "LogWrite without a callback";
  for (size_t i = 1; i < write.entries.size(); ++i) {
    CHECK_EQ(write.entries[i].index(), write.entries[i - 1].index() + 1)
        << "entries in one write must be consecutive";
    CHECK_GE(write.entries[i].term(), write.entries[i - 1].term())
        << "entry terms must not decrease";
  }
  if (write.identity) {
    // Checked here, on the caller's thread, so the crash names the caller;
    // the I/O thread checks again against the file's row.
    CHECK(write.identity->valid())
        << "log store " << options_.path << ": invalid identity "
        << StoreIdentityString(*write.identity);
    CHECK(!queued_identity_ || queued_identity_->MayBecome(*write.identity))
        << "log store " << options_.path
        << ": a store never changes owner or nonce, nor is un-confirmed: it "
           "holds "
        << StoreIdentityDetail(*queued_identity_) << ", the write says "
        << StoreIdentityDetail(*write.identity);
    queued_identity_ = write.identity;
  }
  {
    MutexLock lock(&mu_);
    CHECK(!stopping_);
    CHECK_LT(queued_.size(), kQueuedWritesMax) << "write queue overflow";
    queued_.push_back(PendingWrite{std::move(write), std::move(done)});
    ++writes_queued_;
  }
  work_cv_.notify_one();
}

void SqliteLogStore::PollCompletions() {
  std::deque<Done> ready;
  {
    MutexLock lock(&mu_);
    ready.swap(completed_);
  }
  // Outside the lock: a callback may queue the next write.
  for (Done& done : ready) done();
}

void SqliteLogStore::SetAppliedIndexHint(Index applied) {
  MutexLock lock(&mu_);
  CHECK(!stopping_);
  applied_hint_ = applied;
  applied_hint_dirty_ = true;
}

absl::StatusOr<Index> SqliteLogStore::ReadAppliedIndexHint() {
  Statement& stmt = *select_applied_hint_;
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) {
    stmt.Reset();
    return row.status();
  }
  if (!*row || stmt.ColumnType(0) != SQLITE_INTEGER ||
      stmt.ColumnInt64(0) < 0) {
    stmt.Reset();
    return DataLoss(options_.path, "applied_index_hint row missing or bad");
  }
  const Index hint(FromSql(stmt.ColumnInt64(0)));
  stmt.Reset();
  return hint;
}

void SqliteLogStore::WaitForDurable() {
  MutexLock lock(&mu_);
  const uint64_t target = writes_queued_;
  // The predicate runs with mu_ held (the analysis cannot see that).
  durable_cv_.wait(mu_, [this, target]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return writes_announced_ >= target;
  });
}

uint64_t SqliteLogStore::commit_count() const {
  MutexLock lock(&mu_);
  return commits_;
}

void SqliteLogStore::IoThreadMain() {
  while (true) {
    std::deque<PendingWrite> batch;
    std::optional<Index> hint;
    {
      MutexLock lock(&mu_);
      work_cv_.wait(mu_, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return !queued_.empty() || stopping_;
      });
      // Group commit: everything queued so far goes into one transaction and
      // one fsync.
      batch.swap(queued_);
      if (applied_hint_dirty_) hint = applied_hint_;
      applied_hint_dirty_ = false;
      // Stopping with nothing left to write (a last hint still goes out).
      if (batch.empty() && !hint) return;
    }
    {
      absl::StatusOr<Transaction> txn = Transaction::Begin(writer_);
      CHECK_OK(txn.status()) << "durable write failed; stopping";
      for (const PendingWrite& pending : batch) {
        const absl::Status status = ApplyWrite(pending.write);
        CHECK_OK(status) << "durable write failed; stopping";
      }
      if (hint) {
        update_applied_hint_->BindInt64(1, ToSql(hint->value()));
        const absl::Status status = update_applied_hint_->Run();
        CHECK_OK(status) << "durable write failed; stopping";
      }
      const absl::Status committed = txn->Commit();
      CHECK_OK(committed) << "durable write (commit/fsync) failed; stopping";
    }
    if (!directory_synced_) {
      // SQLite fsyncs the files but not the directory that names them, and
      // the WAL may have been created by this session: until the directory
      // entry is durable a power loss could lose the whole file. Once per
      // store, before the first completion (the WAL is then never deleted
      // while the store is open).
      const absl::Status synced = SyncDirectoryOf(options_.path);
      CHECK_OK(synced) << "durable write (directory fsync) failed; stopping";
      directory_synced_ = true;
    }
    CheckIoInvariants();
    bool was_empty = false;
    {
      MutexLock lock(&mu_);
      was_empty = completed_.empty();
      for (PendingWrite& pending : batch) {
        completed_.push_back(std::move(pending.done));
      }
      writes_durable_ += batch.size();
      ++commits_;
    }
    if (batch.empty()) continue;  // a hint alone completes nothing
    // Only when the queue goes from empty to non-empty: completions that
    // join a queue the owner has not drained yet ride on the wakeup that
    // made it non-empty (PollCompletions takes the whole queue). So a slow
    // owner costs one eventfd write, not one per commit.
    if (was_empty && options_.wakeup) options_.wakeup();
    {
      // Counted after the wakeup so WaitForDurable() also means "the owner
      // has been told".
      MutexLock lock(&mu_);
      writes_announced_ += batch.size();
    }
    durable_cv_.notify_all();
  }
}

absl::Status SqliteLogStore::ApplyWrite(const LogWrite& write) {
  if (write.identity) RETURN_IF_ERROR(ApplyIdentity(*write.identity));
  if (write.snapshot) RETURN_IF_ERROR(ApplySnapshot(*write.snapshot));
  if (!write.entries.empty()) RETURN_IF_ERROR(ApplyEntries(write.entries));
  if (write.hard_state) RETURN_IF_ERROR(ApplyHardState(*write.hard_state));
  if (write.compact_to) RETURN_IF_ERROR(ApplyCompaction(*write.compact_to));
  CHECK_LE(bounds_.commit, bounds_.last_index) << "commit index beyond the log";
  return absl::OkStatus();
}

absl::Status SqliteLogStore::ApplyIdentity(const StoreIdentity& identity) {
  CHECK(identity.valid());
  if (bounds_.identity) {
    // Write() checked this against the queue; this checks it against the
    // file's row, which the queue's checks assumed.
    CHECK(bounds_.identity->MayBecome(identity))
        << "log store " << options_.path
        << ": a store never changes owner or nonce, nor is un-confirmed: "
           "identity changes from "
        << StoreIdentityDetail(*bounds_.identity) << " to "
        << StoreIdentityDetail(identity);
    if (*bounds_.identity == identity) return absl::OkStatus();  // recorded
  }
  // The first identity, or the same store now confirmed.
  BindIdentityRow(*upsert_identity_, 1, identity);
  RETURN_IF_ERROR(upsert_identity_->Run());
  bounds_.identity = identity;
  return absl::OkStatus();
}

absl::Status SqliteLogStore::ApplySnapshot(const raft::Snapshot& snapshot) {
  const uint64_t index = snapshot.metadata().index();
  const uint64_t term = snapshot.metadata().term();
  CHECK_GT(index, 0u) << "a snapshot at index 0";
  CHECK_GE(index, bounds_.snapshot_index.value())
      << "a snapshot older than the stored one";
  // Raft Figure 13, steps 6-7: entries after the snapshot survive only when
  // the log holds the snapshot's last entry with the snapshot's term;
  // otherwise the whole log is discarded. Entries at or below the index
  // always go.
  bool keep_suffix = false;
  if (index <= bounds_.last_index.value() &&
      index > bounds_.snapshot_index.value()) {
    select_term_w_->BindInt64(1, ToSql(index));
    ASSIGN_OR_RETURN(bool row, select_term_w_->Step());
    keep_suffix = row && FromSql(select_term_w_->ColumnInt64(0)) == term;
    select_term_w_->Reset();
  } else if (index == bounds_.snapshot_index.value()) {
    keep_suffix = term == bounds_.snapshot_term.value();
  }
  if (keep_suffix) {
    delete_entries_through_->BindInt64(1, ToSql(index));
    RETURN_IF_ERROR(delete_entries_through_->Run());
  } else {
    RETURN_IF_ERROR(delete_all_entries_->Run());
    bounds_.last_index = Index(index);
    bounds_.last_term = Term(term);
  }
  bounds_.snapshot_index = Index(index);
  bounds_.snapshot_term = Term(term);

  const std::string conf_state =
      snapshot.metadata().conf_state().SerializeAsString();
  const std::string& data = snapshot.data();
  const uint64_t chunk_size = options_.snapshot_chunk_size_bytes;
  const uint64_t chunk_count = (data.size() + chunk_size - 1) / chunk_size;
  RETURN_IF_ERROR(delete_chunks_->Run());
  for (uint64_t seq = 0; seq < chunk_count; ++seq) {
    const absl::string_view chunk =
        absl::string_view(data).substr(seq * chunk_size, chunk_size);
    insert_chunk_->BindInt64(1, ToSql(seq));
    insert_chunk_->BindBlob(2, chunk);
    insert_chunk_->BindInt64(3, Crc(0, chunk));
    RETURN_IF_ERROR(insert_chunk_->Run());
  }
  const uint32_t data_crc = Crc(0, data);
  upsert_snapshot_->BindInt64(1, ToSql(index));
  upsert_snapshot_->BindInt64(2, ToSql(term));
  upsert_snapshot_->BindBlob(3, conf_state);
  upsert_snapshot_->BindInt64(4, ToSql(data.size()));
  upsert_snapshot_->BindInt64(5, ToSql(chunk_count));
  upsert_snapshot_->BindInt64(6, data_crc);
  upsert_snapshot_->BindInt64(
      7, SnapshotMetaCrc(index, term, conf_state, data.size(), chunk_count,
                         data_crc));
  return upsert_snapshot_->Run();
}

absl::Status SqliteLogStore::ApplyEntries(
    const std::vector<raft::Entry>& entries) {
  const uint64_t first = entries.front().index();
  CHECK_GT(first, bounds_.snapshot_index.value())
      << "entries at or below the snapshot index";
  CHECK_LE(first, bounds_.last_index.value() + 1) << "a gap in the log";
  if (first <= bounds_.last_index.value()) {
    // Truncate the conflicting suffix (Raft Figure 2, AppendEntries step 3).
    delete_entries_from_->BindInt64(1, ToSql(first));
    RETURN_IF_ERROR(delete_entries_from_->Run());
  }
  // Whole groups through the multi-row statement, the rest one by one.
  size_t next = 0;
  for (; entries.size() - next >= kEntriesPerInsert; next += kEntriesPerInsert) {
    for (size_t row = 0; row < kEntriesPerInsert; ++row) {
      BindEntry(*insert_entries_, static_cast<int>(row * kEntryColumns),
                entries[next + row]);
    }
    RETURN_IF_ERROR(insert_entries_->Run());
  }
  for (; next < entries.size(); ++next) {
    BindEntry(*insert_entry_, 0, entries[next]);
    RETURN_IF_ERROR(insert_entry_->Run());
  }
  bounds_.last_index = Index(entries.back().index());
  bounds_.last_term = Term(entries.back().term());
  return absl::OkStatus();
}

absl::Status SqliteLogStore::ApplyHardState(const raft::HardState& hs) {
  bounds_.commit = Index(hs.commit());
  upsert_hard_state_->BindInt64(1, ToSql(hs.term()));
  upsert_hard_state_->BindInt64(2, ToSql(hs.vote()));
  upsert_hard_state_->BindInt64(3, ToSql(hs.commit()));
  upsert_hard_state_->BindInt64(4, HardStateCrc(hs));
  return upsert_hard_state_->Run();
}

absl::Status SqliteLogStore::ApplyCompaction(Index compact_to) {
  CHECK_LE(compact_to, bounds_.snapshot_index)
      << "compaction past the stored snapshot";
  // Entries at or below the snapshot index are already gone (a snapshot
  // drops them), so this is a cheap no-op kept for the contract's sake.
  delete_entries_through_->BindInt64(1, ToSql(compact_to.value()));
  return delete_entries_through_->Run();
}

absl::StatusOr<raft::HardState> SqliteLogStore::ReadHardState() {
  Statement& stmt = *select_hard_state_;
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  raft::HardState hs;
  if (!row) {
    stmt.Reset();
    return DataLoss(options_.path, "hard state row missing");
  }
  hs.set_term(FromSql(stmt.ColumnInt64(0)));
  hs.set_vote(FromSql(stmt.ColumnInt64(1)));
  hs.set_commit(FromSql(stmt.ColumnInt64(2)));
  const uint32_t crc = static_cast<uint32_t>(stmt.ColumnInt64(3));
  stmt.Reset();
  if (HardStateCrc(hs) != crc) {
    return DataLoss(options_.path, "hard state fails its checksum");
  }
  return hs;
}

absl::StatusOr<std::optional<raft::SnapshotMetadata>>
SqliteLogStore::ReadSnapshotMetadata(Db& db, uint64_t* data_size,
                                     uint64_t* chunk_count,
                                     uint32_t* data_crc) {
  ASSIGN_OR_RETURN(Statement stmt,
                   db.Prepare("SELECT idx, term, conf_state, data_size, "
                              "chunk_count, data_crc, crc FROM snapshot "
                              "WHERE id = 0"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return DataLoss(options_.path, "snapshot row missing");
  const uint64_t index = FromSql(stmt.ColumnInt64(0));
  const uint64_t term = FromSql(stmt.ColumnInt64(1));
  const absl::string_view conf_state = stmt.ColumnBlob(2);
  *data_size = FromSql(stmt.ColumnInt64(3));
  *chunk_count = FromSql(stmt.ColumnInt64(4));
  *data_crc = static_cast<uint32_t>(stmt.ColumnInt64(5));
  const uint32_t crc = static_cast<uint32_t>(stmt.ColumnInt64(6));
  raft::SnapshotMetadata meta;
  if (SnapshotMetaCrc(index, term, conf_state, *data_size, *chunk_count,
                      *data_crc) != crc ||
      !meta.mutable_conf_state()->ParseFromArray(
          conf_state.data(), static_cast<int>(conf_state.size()))) {
    return DataLoss(options_.path, absl::StrCat("snapshot metadata (index ",
                                                index, ") fails its checksum"));
  }
  if (index == 0) return std::optional<raft::SnapshotMetadata>();  // none
  meta.set_index(index);
  meta.set_term(term);
  return std::optional<raft::SnapshotMetadata>(std::move(meta));
}

absl::StatusOr<std::optional<raft::Snapshot>> SqliteLogStore::ReadSnapshot() {
  uint64_t data_size = 0;
  uint64_t chunk_count = 0;
  uint32_t data_crc = 0;
  // One read transaction so the metadata and the chunks are one version.
  RETURN_IF_ERROR(reader_.Exec("BEGIN"));
  absl::StatusOr<std::optional<raft::Snapshot>> result =
      [&]() -> absl::StatusOr<std::optional<raft::Snapshot>> {
    ASSIGN_OR_RETURN(
        std::optional<raft::SnapshotMetadata> meta,
        ReadSnapshotMetadata(reader_, &data_size, &chunk_count, &data_crc));
    if (!meta) return std::optional<raft::Snapshot>();
    const uint64_t index = meta->index();
    raft::Snapshot snapshot;
    *snapshot.mutable_metadata() = std::move(*meta);
    std::string* data = snapshot.mutable_data();
    ASSIGN_OR_RETURN(Statement chunks,
                     reader_.Prepare("SELECT seq, data, crc FROM "
                                     "snapshot_chunks ORDER BY seq"));
    uint64_t seq = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool row, chunks.Step());
      if (!row) break;
      const absl::string_view chunk = chunks.ColumnBlob(1);
      if (FromSql(chunks.ColumnInt64(0)) != seq ||
          Crc(0, chunk) != static_cast<uint32_t>(chunks.ColumnInt64(2)) ||
          data->size() + chunk.size() > data_size) {
        return DataLoss(options_.path, absl::StrCat("snapshot at index ", index,
                                                    ": chunk ", seq,
                                                    " is missing or fails its "
                                                    "checksum"));
      }
      data->append(chunk.data(), chunk.size());
      ++seq;
    }
    if (seq != chunk_count || data->size() != data_size ||
        Crc(0, *data) != data_crc) {
      return DataLoss(options_.path,
                      absl::StrCat("snapshot at index ", index,
                                   ": data incomplete or fails its checksum (",
                                   seq, " of ", chunk_count, " chunks)"));
    }
    return std::optional<raft::Snapshot>(std::move(snapshot));
  }();
  (void)reader_.Exec("COMMIT");
  return result;
}

absl::StatusOr<Index> SqliteLogStore::FirstIndex() {
  ASSIGN_OR_RETURN(bool row, select_bounds_->Step());
  CHECK(row);
  const bool empty = select_bounds_->ColumnIsNull(0);
  const uint64_t min = FromSql(select_bounds_->ColumnInt64(0));
  select_bounds_->Reset();
  if (!empty) return Index(min);
  uint64_t size = 0, count = 0;
  uint32_t crc = 0;
  ASSIGN_OR_RETURN(std::optional<raft::SnapshotMetadata> meta,
                   ReadSnapshotMetadata(reader_, &size, &count, &crc));
  return meta ? Index(meta->index() + 1) : Index(1);
}

absl::StatusOr<Index> SqliteLogStore::LastIndex() {
  ASSIGN_OR_RETURN(bool row, select_bounds_->Step());
  CHECK(row);
  const bool empty = select_bounds_->ColumnIsNull(1);
  const uint64_t max = FromSql(select_bounds_->ColumnInt64(1));
  select_bounds_->Reset();
  if (!empty) return Index(max);
  uint64_t size = 0, count = 0;
  uint32_t crc = 0;
  ASSIGN_OR_RETURN(std::optional<raft::SnapshotMetadata> meta,
                   ReadSnapshotMetadata(reader_, &size, &count, &crc));
  return meta ? Index(meta->index()) : Index(0);
}

absl::StatusOr<std::vector<raft::Entry>> SqliteLogStore::ReadEntries(Index lo,
                                                                     Index hi) {
  CHECK_LE(lo, hi);
  std::vector<raft::Entry> entries;
  if (lo == hi) return entries;
  entries.reserve(hi.Since(lo));
  // Bounds beyond what SQLite can hold: nothing is stored there (writes
  // CHECK every index < 2^63), so the range is not all held.
  if (lo.value() > kSqlIntMax) {
    return absl::OutOfRangeError(absl::StrCat(
        "log store ", options_.path, ": entries [", lo.value(), ", ",
        hi.value(), ") lie beyond the largest storable index ", kSqlIntMax));
  }
  // The inclusive last index: hi itself may be 2^63 (one past the largest
  // storable index, which the log may hold), not a SQLite integer.
  Statement& stmt = *select_entries_;
  stmt.BindInt64(1, ToSql(lo.value()));
  stmt.BindInt64(2, ToSql(std::min(hi.value() - 1, kSqlIntMax)));
  uint64_t expected = lo.value();
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) {
      stmt.Reset();
      return row.status();
    }
    if (!*row) break;
    const uint64_t index = FromSql(stmt.ColumnInt64(0));
    const uint64_t term = FromSql(stmt.ColumnInt64(1));
    const uint64_t type = FromSql(stmt.ColumnInt64(2));
    const absl::string_view data = stmt.ColumnBlob(3);
    const uint32_t crc = static_cast<uint32_t>(stmt.ColumnInt64(4));
    if (index != expected) {
      stmt.Reset();
      uint64_t size = 0, count = 0;
      uint32_t snapshot_crc = 0;
      ASSIGN_OR_RETURN(
          std::optional<raft::SnapshotMetadata> meta,
          ReadSnapshotMetadata(reader_, &size, &count, &snapshot_crc));
      if (meta && expected <= meta->index()) {
        return absl::OutOfRangeError(absl::StrCat(
            "log store ", options_.path, ": entries from index ", expected,
            " are compacted (snapshot at index ", meta->index(), ")"));
      }
      return DataLoss(options_.path,
                      absl::StrCat("entry at index ", expected, " is missing"));
    }
    if (EntryCrc(index, term, type, data) != crc ||
        !raft::EntryType_IsValid(static_cast<int>(type))) {
      stmt.Reset();
      return DataLoss(options_.path, absl::StrCat("entry at index ", index,
                                                  " fails its checksum"));
    }
    raft::Entry& entry = entries.emplace_back();
    entry.set_index(index);
    entry.set_term(term);
    entry.set_type(static_cast<raft::EntryType>(type));
    entry.set_data(data.data(), data.size());
    ++expected;
  }
  stmt.Reset();
  if (expected != hi.value()) {
    return absl::OutOfRangeError(absl::StrCat(
        "log store ", options_.path, ": entries [", lo.value(), ", ",
        hi.value(), ") not all held; ends before index ", expected));
  }
  return entries;
}

absl::StatusOr<Term> SqliteLogStore::ReadTerm(Index index) {
  if (index.value() > kSqlIntMax) {
    // Beyond any storable index, so beyond the log (LogStore's contract:
    // OUT_OF_RANGE, not a crash).
    return absl::OutOfRangeError(absl::StrCat(
        "log store ", options_.path, ": no term for index ", index.value()));
  }
  Statement& stmt = *select_term_r_;
  stmt.BindInt64(1, ToSql(index.value()));
  absl::StatusOr<bool> row = stmt.Step();
  if (!row.ok()) {
    stmt.Reset();
    return row.status();
  }
  if (*row) {
    const uint64_t term = FromSql(stmt.ColumnInt64(1));
    const bool intact =
        EntryCrc(index.value(), term, FromSql(stmt.ColumnInt64(2)),
                 stmt.ColumnBlob(3)) ==
        static_cast<uint32_t>(stmt.ColumnInt64(4));
    stmt.Reset();
    if (!intact) {
      return DataLoss(options_.path,
                      absl::StrCat("entry at index ", index.value(),
                                   " fails its checksum"));
    }
    return Term(term);
  }
  stmt.Reset();
  uint64_t size = 0, count = 0;
  uint32_t crc = 0;
  ASSIGN_OR_RETURN(std::optional<raft::SnapshotMetadata> meta,
                   ReadSnapshotMetadata(reader_, &size, &count, &crc));
  if (meta && meta->index() == index.value()) return Term(meta->term());
  // Without a snapshot, index 0 is the empty log's last index, of term 0.
  if (!meta && index.value() == 0) return Term(0);
  return absl::OutOfRangeError(absl::StrCat(
      "log store ", options_.path, ": no term for index ", index.value()));
}

void SqliteLogStore::CheckIoInvariants() {
  CHECK_LE(bounds_.snapshot_index, bounds_.last_index);
  CHECK_LE(bounds_.snapshot_term, bounds_.last_term);
  CHECK_LE(bounds_.commit, bounds_.last_index);
  if (kExpensiveChecks) {
    // The cached bounds match the file (one b-tree seek each).
    absl::StatusOr<int64_t> last =
        QueryInt(writer_, "SELECT coalesce(max(idx), -1) FROM entries");
    CHECK_OK(last.status());
    if (*last >= 0) {
      CHECK_EQ(FromSql(*last), bounds_.last_index.value());
    } else {
      CHECK_EQ(bounds_.last_index, bounds_.snapshot_index);
    }
  }
}

void SqliteLogStore::CheckInvariants() const {
  MutexLock lock(&mu_);
  CHECK_LE(writes_announced_, writes_durable_);
  CHECK_LE(writes_durable_, writes_queued_);
  CHECK_LE(commits_, writes_durable_);
  // Writes leave queued_ when the I/O thread takes them, and become durable
  // only after that.
  CHECK_LE(queued_.size(), writes_queued_ - writes_durable_);
  CHECK(!options_.path.empty());
}

}  // namespace blixard::storage
