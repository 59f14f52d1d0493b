// FaultVfs: a SQLite VFS for tests that wraps SQLite's default (unix) VFS
// and remembers what a power loss would take away. Test-only.
//
// Every write and truncate of a file opened through it is recorded, with the
// bytes it replaced, until the file is synced (xSync = fsync). So at any
// moment the VFS can produce the files as they would be after a crash:
// every unsynced change dropped, or the most recent unsynced write torn (a
// random prefix of it kept), or any subset of unsynced changes kept. A crash
// image is written beside the live files (WriteCrashImage) so the live database
// keeps running and one workload yields thousands of crash points. The -shm
// file is not tracked or imaged: SQLite rebuilds it from the WAL, as after a
// reboot.
//
// Faults on command: the next write or the next sync fails with
// SQLITE_IOERR_WRITE / SQLITE_IOERR_FSYNC and changes nothing.
//
// File creation and deletion are treated as durable at once: directory
// entries are not modelled (a weaker crash model than a file system that
// loses a new file whose directory was never fsync'd). Reads see the live
// files, as a process sees its page cache.
//
// Thread-safety: all methods may be called from any thread; the mutation
// hook runs on the thread doing the I/O, with no VFS lock held.
//
//   FaultVfs vfs("fault");
//   vfs.SetBeforeMutationHook([&](uint64_t op) {
//     CHECK_OK(vfs.WriteCrashImage(absl::StrCat(dir, "/crash", op),
//                                  FaultVfs::CrashMode::kTearLast, rng));
//   });
//   options.vfs_name = vfs.name();
#ifndef BLIXARD_STORAGE_FAULT_VFS_H_
#define BLIXARD_STORAGE_FAULT_VFS_H_

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/base/rng.h"

namespace blixard::storage {

class FaultVfs {
 public:
  // Registers the VFS under `name` (not as the default). CHECK-fails if
  // SQLite refuses: test scaffolding.
  explicit FaultVfs(std::string name);
  // Unregisters. REQUIRES: no connection is open through this VFS.
  ~FaultVfs();
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  const std::string& name() const { return name_; }

  // Called before every write, truncate and sync of a tracked file, with a
  // sequence number counting them from 0. Replaces any earlier hook.
  void SetBeforeMutationHook(std::function<void(uint64_t op)> hook);

  // What of the unsynced changes a power loss leaves on disk.
  enum class CrashMode {
    // Nothing: the files as of their last fsync.
    kDropUnsynced,
    // Nothing but a random prefix of the most recent write (the one in
    // flight): a torn write.
    kTearLast,
    // Each unsynced change independently, as write-back in any order would
    // (the most recent write maybe torn): the harshest model, and the one
    // fsync-ordered designs such as SQLite's WAL are built to survive.
    kRandomSubset,
  };

  // Writes into directory `dir` (which must exist) every tracked file that
  // exists, under its base name, as it would be after a power loss now, by
  // `mode`; the choices are drawn from `rng`.
  absl::Status WriteCrashImage(const std::string& dir, CrashMode mode,
                               Rng& rng);

  // The next write (or sync) to a tracked file fails and changes nothing.
  void FailNextWrite() { fail_next_write_.store(true); }
  void FailNextSync() { fail_next_sync_.store(true); }

  uint64_t mutation_count() const { return mutations_.load(); }
  uint64_t sync_count() const { return syncs_.load(); }
  // Unsynced changes recorded across all files.
  uint64_t unsynced_change_count() const;

  void CheckInvariants() const;

 private:
  struct Change {
    uint64_t seq = 0;  // global order of changes
    bool is_write = false;
    int64_t offset = 0;
    std::string old_bytes;  // what the change overwrote or cut off
    int64_t old_size = 0;   // file size before the change
    std::string new_bytes;  // writes only
  };
  struct FileState {
    std::vector<Change> unsynced;  // oldest first
  };
  struct File;

  // sqlite3_io_methods / sqlite3_vfs entry points.
  static int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file,
                  int flags, int* out_flags);
  static int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir);
  static int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out);
  static int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out);
  static void* DlOpen(sqlite3_vfs* vfs, const char* name);
  static void DlError(sqlite3_vfs* vfs, int n, char* out);
  static void (*DlSym(sqlite3_vfs* vfs, void* handle,
                      const char* symbol))(void);
  static void DlClose(sqlite3_vfs* vfs, void* handle);
  static int Randomness(sqlite3_vfs* vfs, int n, char* out);
  static int Sleep(sqlite3_vfs* vfs, int micros);
  static int CurrentTime(sqlite3_vfs* vfs, double* out);
  static int GetLastError(sqlite3_vfs* vfs, int n, char* out);
  static int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out);

  static int Close(sqlite3_file* file);
  static int Read(sqlite3_file* file, void* buf, int amount,
                  sqlite3_int64 offset);
  static int Write(sqlite3_file* file, const void* buf, int amount,
                   sqlite3_int64 offset);
  static int Truncate(sqlite3_file* file, sqlite3_int64 size);
  static int Sync(sqlite3_file* file, int flags);
  static int FileSize(sqlite3_file* file, sqlite3_int64* size);
  static int Lock(sqlite3_file* file, int level);
  static int Unlock(sqlite3_file* file, int level);
  static int CheckReservedLock(sqlite3_file* file, int* out);
  static int FileControl(sqlite3_file* file, int op, void* arg);
  static int SectorSize(sqlite3_file* file);
  static int DeviceCharacteristics(sqlite3_file* file);
  static int ShmMap(sqlite3_file* file, int region, int size, int extend,
                    void volatile** out);
  static int ShmLock(sqlite3_file* file, int offset, int n, int flags);
  static void ShmBarrier(sqlite3_file* file);
  static int ShmUnmap(sqlite3_file* file, int delete_flag);
  static int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount,
                   void** out);
  static int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* p);

  static FaultVfs* Self(sqlite3_vfs* vfs);
  void BeforeMutation();

  const std::string name_;
  sqlite3_vfs* real_;
  sqlite3_vfs vfs_;
  sqlite3_io_methods methods_;

  mutable absl::Mutex mu_;
  std::map<std::string, FileState> files_ ABSL_GUARDED_BY(mu_);
  uint64_t next_change_seq_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex hook_mu_;
  std::function<void(uint64_t)> hook_ ABSL_GUARDED_BY(hook_mu_);

  std::atomic<uint64_t> mutations_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<bool> fail_next_write_{false};
  std::atomic<bool> fail_next_sync_{false};
};

}  // namespace blixard::storage

#endif  // BLIXARD_STORAGE_FAULT_VFS_H_
