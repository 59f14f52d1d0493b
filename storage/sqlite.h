// Thin RAII wrappers over the SQLite C API: Db (a connection), Statement (a
// prepared statement) and Transaction (BEGIN ... COMMIT, rolled back when
// dropped uncommitted).
//
// Every error is an absl::Status whose message names the database file, the
// SQL text and SQLite's own message, so an operator can tell which file and
// which statement failed. Codes: SQLITE_CORRUPT and SQLITE_NOTADB map to
// DATA_LOSS (the file lies), SQLITE_CANTOPEN to NOT_FOUND, SQLITE_FULL to
// RESOURCE_EXHAUSTED, SQLITE_BUSY/LOCKED to UNAVAILABLE, the rest to INTERNAL.
//
// Thread-safety: a Db and its Statements belong to one thread at a time.
// REQUIRES: every Statement and Transaction is destroyed before its Db.
//
//   ASSIGN_OR_RETURN(Db db, Db::Open(path, Db::kCreate));
//   RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
//   ASSIGN_OR_RETURN(Statement insert, db.Prepare("INSERT INTO t VALUES(?)"));
//   insert.BindInt64(1, 7);
//   RETURN_IF_ERROR(insert.Run());
#ifndef BLIXARD_STORAGE_SQLITE_H_
#define BLIXARD_STORAGE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blixard::storage {

class Statement;

class Db {
 public:
  enum OpenMode { kReadWrite, kCreate, kReadOnly };

  // Opens (or with kCreate, creates) the database at `path` through the VFS
  // named `vfs` (empty: SQLite's default). Errors: NOT_FOUND when the file
  // cannot be opened, or the mapped SQLite error.
  static absl::StatusOr<Db> Open(const std::string& path, OpenMode mode,
                                 const std::string& vfs = "");

  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Closes the connection now (the destructor then does nothing).
  // REQUIRES: its Statements are already destroyed.
  void Close();

  // Runs one or more statements that return no rows of interest.
  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Statement> Prepare(absl::string_view sql);

  // The status for SQLite result code `rc` from running `sql` on this
  // connection; OK for SQLITE_OK/ROW/DONE.
  absl::Status Error(int rc, absl::string_view sql) const;

  const std::string& path() const { return path_; }
  sqlite3* raw() const { return db_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_ = nullptr;
  std::string path_;
};

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite. Blobs and text are copied
  // (SQLITE_TRANSIENT) only when `copy`; otherwise the bytes must stay alive
  // until Reset().
  void BindInt64(int param, int64_t value);
  void BindBlob(int param, absl::string_view bytes, bool copy = false);

  // One step: true when a row is ready, false when done.
  absl::StatusOr<bool> Step();
  // Steps until done, then resets. For statements that return no rows.
  absl::Status Run();
  // Makes the statement reusable and clears its bindings.
  void Reset();

  int64_t ColumnInt64(int column) const;
  // Valid until the next Step() or Reset().
  absl::string_view ColumnBlob(int column) const;
  bool ColumnIsNull(int column) const;
  int ColumnType(int column) const;

  absl::string_view sql() const { return sql_; }

 private:
  friend class Db;
  Statement(const Db* db, sqlite3_stmt* stmt, std::string sql)
      : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

  const Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

class Transaction {
 public:
  // BEGIN IMMEDIATE: takes the write lock now, so the transaction cannot
  // fail later with SQLITE_BUSY on its first write.
  static absl::StatusOr<Transaction> Begin(Db& db);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();  // ROLLBACK unless committed.

  // COMMIT. With WAL and synchronous=FULL the commit is durable (fsync'd)
  // when this returns OK.
  absl::Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
  bool open_ = true;
};

// Maps a SQLite result code to a canonical absl code (see file comment).
absl::StatusCode SqliteCodeToStatusCode(int rc);

}  // namespace blixard::storage

#endif  // BLIXARD_STORAGE_SQLITE_H_
