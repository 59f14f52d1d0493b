// The RAII wrappers: errors name the file and the SQL; transactions roll
// back unless committed.
#include "storage/sqlite.h"

#include <cstdlib>
#include <string>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::storage {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
}

TEST(SqliteTest, ErrorsNameFileAndSql) {
  const std::string path = TempPath("errors.db");
  std::remove(path.c_str());
  ASSERT_OK_AND_ASSIGN(Db db, Db::Open(path, Db::kCreate));
  EXPECT_THAT(db.Exec("SELEC nonsense"),
              StatusIs(absl::StatusCode::kInternal,
                       AllOf(HasSubstr(path), HasSubstr("SELEC nonsense"))));
  EXPECT_THAT(
      db.Prepare("SELECT * FROM missing_table"),
      StatusIs(absl::StatusCode::kInternal, HasSubstr("missing_table")));
}

TEST(SqliteTest, TransactionRollsBackUnlessCommitted) {
  const std::string path = TempPath("txn.db");
  std::remove(path.c_str());
  ASSERT_OK_AND_ASSIGN(Db db, Db::Open(path, Db::kCreate));
  ASSERT_OK(db.Exec("CREATE TABLE t(v INTEGER) STRICT"));
  ASSERT_OK_AND_ASSIGN(Statement insert, db.Prepare("INSERT INTO t VALUES(?)"));
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(db));
    insert.BindInt64(1, 1);
    ASSERT_OK(insert.Run());
  }  // dropped: rolled back
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(db));
    insert.BindInt64(1, 2);
    ASSERT_OK(insert.Run());
    ASSERT_OK(txn.Commit());
  }
  ASSERT_OK_AND_ASSIGN(Statement sum,
                       db.Prepare("SELECT sum(v), count(*) FROM t"));
  ASSERT_OK_AND_ASSIGN(bool row, sum.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(sum.ColumnInt64(0), 2);
  EXPECT_EQ(sum.ColumnInt64(1), 1);
}

TEST(SqliteTest, StrictTableRejectsWrongType) {
  const std::string path = TempPath("strict.db");
  std::remove(path.c_str());
  ASSERT_OK_AND_ASSIGN(Db db, Db::Open(path, Db::kCreate));
  ASSERT_OK(db.Exec("CREATE TABLE t(v INTEGER) STRICT"));
  EXPECT_THAT(db.Exec("INSERT INTO t VALUES('text')"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("t.v")));
}

TEST(SqliteTest, OpeningMissingFileReadOnlyIsNotFound) {
  EXPECT_THAT(Db::Open(TempPath("absent/x.db"), Db::kReadOnly),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent/x.db")));
}

}  // namespace
}  // namespace blixard::storage
