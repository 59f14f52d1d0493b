#include "storage/sqlite.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::storage {

absl::StatusCode SqliteCodeToStatusCode(int rc) {
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return absl::StatusCode::kOk;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kNotFound;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::StatusOr<Db> Db::Open(const std::string& path, OpenMode mode,
                            const std::string& vfs) {
  int flags = SQLITE_OPEN_NOMUTEX;
  switch (mode) {
    case kReadWrite:
      flags |= SQLITE_OPEN_READWRITE;
      break;
    case kCreate:
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
      break;
    case kReadOnly:
      flags |= SQLITE_OPEN_READONLY;
      break;
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags,
                                 vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string message =
        raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close_v2(raw);
    return absl::Status(SqliteCodeToStatusCode(rc),
                        absl::StrCat("sqlite ", path, ": cannot open: ",
                                     message, " (code ", rc, ")"));
  }
  // Extended codes tell SQLITE_IOERR_FSYNC from SQLITE_IOERR_WRITE.
  sqlite3_extended_result_codes(raw, 1);
  return Db(raw, path);
}

Db::Db(Db&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

void Db::Close() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Db::~Db() {
  if (db_ != nullptr) {
    // close_v2 defers the close if statements are still alive; we require
    // none are, so this closes now.
    sqlite3_close_v2(db_);
  }
}

absl::Status Db::Error(int rc, absl::string_view sql) const {
  const absl::StatusCode code = SqliteCodeToStatusCode(rc);
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  return absl::Status(
      code, absl::StrCat("sqlite ", path_, ": ",
                         db_ != nullptr ? sqlite3_errmsg(db_) : "closed",
                         " (code ", rc, ") in `", sql, "`"));
}

absl::Status Db::Exec(absl::string_view sql) {
  CHECK(db_ != nullptr);
  const std::string text(sql);
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  return Error(rc, sql);
}

absl::StatusOr<Statement> Db::Prepare(absl::string_view sql) {
  CHECK(db_ != nullptr);
  sqlite3_stmt* stmt = nullptr;
  const int rc =
      sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, sql);
  }
  CHECK(stmt != nullptr) << "empty SQL: " << sql;
  return Statement(this, stmt, std::string(sql));
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      sql_(std::move(other.sql_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    sql_ = std::move(other.sql_);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::BindInt64(int param, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, param, value);
  // A bind fails only on a wrong parameter number or a statement in use:
  // both are bugs in our SQL, not operating errors.
  CHECK_EQ(rc, SQLITE_OK) << db_->Error(rc, sql_);
}

void Statement::BindBlob(int param, absl::string_view bytes, bool copy) {
  // A zero-length blob must still be a blob, not NULL: pass a valid pointer.
  static const char kEmpty = 0;
  const char* data = bytes.empty() ? &kEmpty : bytes.data();
  const int rc = sqlite3_bind_blob64(stmt_, param, data, bytes.size(),
                                     copy ? SQLITE_TRANSIENT : SQLITE_STATIC);
  CHECK_EQ(rc, SQLITE_OK) << db_->Error(rc, sql_);
}

absl::StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  absl::Status status = db_->Error(rc, sql_);
  sqlite3_reset(stmt_);
  return status;
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) {
      Reset();
      return row.status();
    }
    if (!*row) break;
  }
  Reset();
  return absl::OkStatus();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::ColumnInt64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

absl::string_view Statement::ColumnBlob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr || size <= 0) return absl::string_view();
  return absl::string_view(static_cast<const char*>(data),
                           static_cast<size_t>(size));
}

bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int Statement::ColumnType(int column) const {
  return sqlite3_column_type(stmt_, column);
}

absl::StatusOr<Transaction> Transaction::Begin(Db& db) {
  absl::Status status = db.Exec("BEGIN IMMEDIATE");
  if (!status.ok()) return status;
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(other.db_), open_(std::exchange(other.open_, false)) {}

Transaction::~Transaction() {
  if (open_) {
    // Best effort: a failed rollback leaves SQLite to roll back on the next
    // open (the journal/WAL is the source of truth).
    (void)db_->Exec("ROLLBACK");
  }
}

absl::Status Transaction::Commit() {
  CHECK(open_) << "commit of a finished transaction";
  open_ = false;
  absl::Status status = db_->Exec("COMMIT");
  if (!status.ok()) (void)db_->Exec("ROLLBACK");
  return status;
}

}  // namespace blixard::storage
