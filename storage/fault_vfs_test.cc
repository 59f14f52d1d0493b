// FaultVfs: crash images drop unsynced changes, keep synced ones, tear only
// the latest write, and faults on command fail without changing anything.
#include "storage/fault_vfs.h"

#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/sqlite.h"
#include "storage/test_util.h"

namespace blixard::storage {
namespace {

using ::testing::StartsWith;

// A raw file opened through the VFS, as SQLite would.
class RawFile {
 public:
  RawFile(sqlite3_vfs* vfs, const std::string& path)
      : path_(path), mem_(static_cast<size_t>(vfs->szOsFile), '\0') {
    int out = 0;
    CHECK_EQ(vfs->xOpen(vfs, path_.c_str(), file(),
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_MAIN_DB,
                        &out),
             SQLITE_OK);
  }
  ~RawFile() { file()->pMethods->xClose(file()); }
  int Write(const std::string& bytes, int64_t offset) {
    return file()->pMethods->xWrite(file(), bytes.data(),
                                    static_cast<int>(bytes.size()), offset);
  }
  int Sync() { return file()->pMethods->xSync(file(), SQLITE_SYNC_NORMAL); }
  int Truncate(int64_t size) {
    return file()->pMethods->xTruncate(file(), size);
  }
  sqlite3_file* file() { return reinterpret_cast<sqlite3_file*>(mem_.data()); }

 private:
  std::string path_;
  std::string mem_;
};

class FaultVfsTest : public ::testing::Test {
 protected:
  FaultVfsTest() : vfs_(absl::StrCat("fault_vfs_test_", counter_++)) {}
  sqlite3_vfs* raw_vfs() { return sqlite3_vfs_find(vfs_.name().c_str()); }
  std::string Image(bool tear, uint64_t seed = 1) {
    return Image(tear ? FaultVfs::CrashMode::kTearLast
                      : FaultVfs::CrashMode::kDropUnsynced,
                 seed);
  }
  std::string Image(FaultVfs::CrashMode mode, uint64_t seed) {
    const std::string image_dir = dir_.File(absl::StrCat("img", images_++));
    std::filesystem::create_directories(image_dir);
    Rng rng(seed);
    CHECK_OK(vfs_.WriteCrashImage(image_dir, mode, rng));
    const std::string path = image_dir + "/f";
    return FileExists(path) ? ReadFileOrDie(path) : "<absent>";
  }

  static inline int counter_ = 0;
  ScratchDir dir_{/*prefer_tmpfs=*/true};
  FaultVfs vfs_;
  int images_ = 0;
};

TEST_F(FaultVfsTest, UnsyncedWritesAreDroppedSyncedOnesKept) {
  RawFile f(raw_vfs(), dir_.File("f"));
  ASSERT_EQ(f.Write("hello", 0), SQLITE_OK);
  EXPECT_EQ(Image(false), "");
  ASSERT_EQ(f.Sync(), SQLITE_OK);
  EXPECT_EQ(Image(false), "hello");
  ASSERT_EQ(f.Write("J", 0), SQLITE_OK);
  ASSERT_EQ(f.Write(" world", 5), SQLITE_OK);
  EXPECT_EQ(ReadFileOrDie(dir_.File("f")), "Jello world");  // live file
  EXPECT_EQ(Image(false), "hello");
  ASSERT_EQ(f.Truncate(2), SQLITE_OK);
  EXPECT_EQ(Image(false), "hello");
  EXPECT_EQ(vfs_.unsynced_change_count(), 3u);
  vfs_.CheckInvariants();
}

TEST_F(FaultVfsTest, TearKeepsAPrefixOfTheLatestWriteOnly) {
  RawFile f(raw_vfs(), dir_.File("f"));
  ASSERT_EQ(f.Write("AAAAAAAA", 0), SQLITE_OK);
  ASSERT_EQ(f.Sync(), SQLITE_OK);
  ASSERT_EQ(f.Write("BB", 0), SQLITE_OK);        // dropped
  ASSERT_EQ(f.Write("CCCCCCCC", 8), SQLITE_OK);  // torn
  bool saw_partial = false;
  for (uint64_t seed = 1; seed < 40; ++seed) {
    const std::string image = Image(true, seed);
    ASSERT_THAT(image, StartsWith("AAAAAAAA"));
    const std::string tail = image.substr(8);
    EXPECT_EQ(tail, std::string(tail.size(), 'C'));
    if (!tail.empty() && tail.size() < 8) saw_partial = true;
  }
  EXPECT_TRUE(saw_partial);
}

TEST_F(FaultVfsTest, RandomSubsetKeepsAnyCombinationOfUnsyncedWrites) {
  RawFile f(raw_vfs(), dir_.File("f"));
  ASSERT_EQ(f.Write("........", 0), SQLITE_OK);
  ASSERT_EQ(f.Sync(), SQLITE_OK);
  ASSERT_EQ(f.Write("AA", 0), SQLITE_OK);
  ASSERT_EQ(f.Write("BB", 4), SQLITE_OK);
  std::set<std::string> seen;
  for (uint64_t seed = 1; seed < 200; ++seed) {
    const std::string image = Image(FaultVfs::CrashMode::kRandomSubset, seed);
    ASSERT_EQ(image.size(), 8u);
    // "BB" may be torn to "B." or ".." (prefix kept); "AA" is whole or gone.
    ASSERT_TRUE(image.substr(0, 2) == "AA" || image.substr(0, 2) == "..")
        << image;
    seen.insert(image);
  }
  EXPECT_TRUE(seen.count("........"));
  EXPECT_TRUE(seen.count("AA......"));
  EXPECT_TRUE(seen.count("....BB.."));
  EXPECT_TRUE(seen.count("AA..BB.."));
  EXPECT_TRUE(seen.count("AA..B...") || seen.count("....B..."));
}

TEST_F(FaultVfsTest, FailedWriteAndSyncChangeNothing) {
  RawFile f(raw_vfs(), dir_.File("f"));
  ASSERT_EQ(f.Write("abc", 0), SQLITE_OK);
  ASSERT_EQ(f.Sync(), SQLITE_OK);
  vfs_.FailNextWrite();
  EXPECT_EQ(f.Write("xyz", 0), SQLITE_IOERR_WRITE);
  EXPECT_EQ(ReadFileOrDie(dir_.File("f")), "abc");
  ASSERT_EQ(f.Write("d", 3), SQLITE_OK);
  vfs_.FailNextSync();
  EXPECT_EQ(f.Sync(), SQLITE_IOERR_FSYNC);
  EXPECT_EQ(Image(false), "abc");  // the failed sync synced nothing
  EXPECT_EQ(f.Sync(), SQLITE_OK);
  EXPECT_EQ(Image(false), "abcd");
}

TEST_F(FaultVfsTest, HookSeesEveryMutation) {
  uint64_t calls = 0;
  vfs_.SetBeforeMutationHook([&](uint64_t op) { EXPECT_EQ(op, calls++); });
  RawFile f(raw_vfs(), dir_.File("f"));
  ASSERT_EQ(f.Write("a", 0), SQLITE_OK);
  ASSERT_EQ(f.Truncate(0), SQLITE_OK);
  ASSERT_EQ(f.Sync(), SQLITE_OK);
  EXPECT_EQ(calls, 3u);
  EXPECT_EQ(vfs_.mutation_count(), 3u);
  EXPECT_EQ(vfs_.sync_count(), 1u);
  vfs_.SetBeforeMutationHook(nullptr);
}

TEST_F(FaultVfsTest, SqliteRunsInWalModeThroughIt) {
  ASSERT_OK_AND_ASSIGN(Db db,
                       Db::Open(dir_.File("db"), Db::kCreate, vfs_.name()));
  ASSERT_OK(
      db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
              "CREATE TABLE t(v INTEGER) STRICT;"
              "INSERT INTO t VALUES(1);"));
  EXPECT_GT(vfs_.sync_count(), 0u);
  EXPECT_EQ(vfs_.unsynced_change_count(), 0u)
      << "a FULL-sync WAL commit leaves nothing unsynced";
}

}  // namespace
}  // namespace blixard::storage
