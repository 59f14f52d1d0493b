#include "storage/fault_vfs.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::storage {

// Our sqlite3_file: SQLite allocates szOsFile bytes; the real VFS's file
// lives right after this header.
struct FaultVfs::File {
  sqlite3_file base;
  FaultVfs* vfs;
  std::string* path;  // null for temporary files (not tracked)
  sqlite3_file* real() {
    return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(this) +
                                           RealOffset());
  }
  static size_t RealOffset() { return (sizeof(File) + 15) & ~size_t{15}; }
};

namespace {

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::Status ReadWholeFile(const std::string& path, std::string* out,
                           bool* exists) {
  std::ifstream in(path, std::ios::binary);
  *exists = in.good();
  out->clear();
  if (!*exists) return absl::OkStatus();
  std::ostringstream bytes;
  bytes << in.rdbuf();
  *out = bytes.str();
  return absl::OkStatus();
}

void Splice(std::string& buf, int64_t offset, absl::string_view bytes) {
  const size_t at = static_cast<size_t>(offset);
  if (buf.size() < at + bytes.size()) buf.resize(at + bytes.size(), '\0');
  std::memcpy(&buf[at], bytes.data(), bytes.size());
}

}  // namespace

FaultVfs* FaultVfs::Self(sqlite3_vfs* vfs) {
  return static_cast<FaultVfs*>(vfs->pAppData);
}

FaultVfs::FaultVfs(std::string name) : name_(std::move(name)) {
  real_ = sqlite3_vfs_find(nullptr);
  CHECK(real_ != nullptr) << "no default SQLite VFS";
  std::memset(&vfs_, 0, sizeof(vfs_));
  vfs_.iVersion = 2;
  vfs_.szOsFile = static_cast<int>(File::RealOffset()) + real_->szOsFile;
  vfs_.mxPathname = real_->mxPathname;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = &FaultVfs::Open;
  vfs_.xDelete = &FaultVfs::Delete;
  vfs_.xAccess = &FaultVfs::Access;
  vfs_.xFullPathname = &FaultVfs::FullPathname;
  vfs_.xDlOpen = &FaultVfs::DlOpen;
  vfs_.xDlError = &FaultVfs::DlError;
  vfs_.xDlSym = &FaultVfs::DlSym;
  vfs_.xDlClose = &FaultVfs::DlClose;
  vfs_.xRandomness = &FaultVfs::Randomness;
  vfs_.xSleep = &FaultVfs::Sleep;
  vfs_.xCurrentTime = &FaultVfs::CurrentTime;
  vfs_.xGetLastError = &FaultVfs::GetLastError;
  vfs_.xCurrentTimeInt64 = &FaultVfs::CurrentTimeInt64;

  std::memset(&methods_, 0, sizeof(methods_));
  methods_.iVersion = 3;
  methods_.xClose = &FaultVfs::Close;
  methods_.xRead = &FaultVfs::Read;
  methods_.xWrite = &FaultVfs::Write;
  methods_.xTruncate = &FaultVfs::Truncate;
  methods_.xSync = &FaultVfs::Sync;
  methods_.xFileSize = &FaultVfs::FileSize;
  methods_.xLock = &FaultVfs::Lock;
  methods_.xUnlock = &FaultVfs::Unlock;
  methods_.xCheckReservedLock = &FaultVfs::CheckReservedLock;
  methods_.xFileControl = &FaultVfs::FileControl;
  methods_.xSectorSize = &FaultVfs::SectorSize;
  methods_.xDeviceCharacteristics = &FaultVfs::DeviceCharacteristics;
  methods_.xShmMap = &FaultVfs::ShmMap;
  methods_.xShmLock = &FaultVfs::ShmLock;
  methods_.xShmBarrier = &FaultVfs::ShmBarrier;
  methods_.xShmUnmap = &FaultVfs::ShmUnmap;
  methods_.xFetch = &FaultVfs::Fetch;
  methods_.xUnfetch = &FaultVfs::Unfetch;

  const int rc = sqlite3_vfs_register(&vfs_, /*makeDflt=*/0);
  CHECK_EQ(rc, SQLITE_OK) << "cannot register VFS " << name_;
}

FaultVfs::~FaultVfs() { sqlite3_vfs_unregister(&vfs_); }

void FaultVfs::SetBeforeMutationHook(std::function<void(uint64_t)> hook) {
  absl::MutexLock lock(&hook_mu_);
  hook_ = std::move(hook);
}

void FaultVfs::BeforeMutation() {
  const uint64_t op = mutations_.fetch_add(1);
  std::function<void(uint64_t)> hook;
  {
    absl::MutexLock lock(&hook_mu_);
    hook = hook_;
  }
  if (hook) hook(op);
}

uint64_t FaultVfs::unsynced_change_count() const {
  absl::MutexLock lock(&mu_);
  uint64_t count = 0;
  for (const auto& [path, state] : files_) count += state.unsynced.size();
  return count;
}

void FaultVfs::CheckInvariants() const {
  absl::MutexLock lock(&mu_);
  for (const auto& [path, state] : files_) {
    for (size_t i = 0; i < state.unsynced.size(); ++i) {
      CHECK_LT(state.unsynced[i].seq, next_change_seq_);
      if (i > 0) {
        CHECK_GT(state.unsynced[i].seq, state.unsynced[i - 1].seq);
      }
      CHECK_GE(state.unsynced[i].offset, 0);
    }
  }
}

absl::Status FaultVfs::WriteCrashImage(const std::string& dir, CrashMode mode,
                                       Rng& rng) {
  absl::MutexLock lock(&mu_);
  // The latest unsynced change across all files: the write in flight.
  const Change* last = nullptr;
  for (const auto& [path, state] : files_) {
    if (!state.unsynced.empty() &&
        (last == nullptr || state.unsynced.back().seq > last->seq)) {
      last = &state.unsynced.back();
    }
  }
  for (const auto& [path, state] : files_) {
    std::string buf;
    bool exists = false;
    absl::Status read = ReadWholeFile(path, &buf, &exists);
    if (!read.ok()) return read;
    if (!exists) continue;
    // Undo every unsynced change, newest first: what the disk held at the
    // last fsync.
    for (auto it = state.unsynced.rbegin(); it != state.unsynced.rend(); ++it) {
      Splice(buf, it->offset, it->old_bytes);
      buf.resize(static_cast<size_t>(it->old_size), '\0');
    }
    // Then replay the changes that reached the disk anyway.
    for (const Change& change : state.unsynced) {
      const bool is_last = &change == last;
      bool lands = false;
      bool torn = false;
      switch (mode) {
        case CrashMode::kDropUnsynced:
          break;
        case CrashMode::kTearLast:
          lands = torn = is_last;
          break;
        case CrashMode::kRandomSubset:
          lands = rng.Chance(1, 2);
          torn = lands && is_last && rng.Chance(1, 2);
          break;
      }
      if (!lands) continue;
      if (change.is_write) {
        const uint64_t keep = torn ? rng.Range(0, change.new_bytes.size())
                                   : change.new_bytes.size();
        Splice(buf, change.offset,
               absl::string_view(change.new_bytes).substr(0, keep));
      } else {
        buf.resize(static_cast<size_t>(change.offset), '\0');
      }
    }
    const std::string out_path = absl::StrCat(dir, "/", BaseName(path));
    std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (!out.good()) {
      return absl::InternalError(absl::StrCat("cannot write ", out_path));
    }
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------ VFS methods

int FaultVfs::Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file,
                   int flags, int* out_flags) {
  FaultVfs* self = Self(vfs);
  File* f = reinterpret_cast<File*>(file);
  f->base.pMethods = nullptr;
  f->vfs = self;
  f->path = nullptr;
  const int rc =
      self->real_->xOpen(self->real_, name, f->real(), flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (name != nullptr) {
    f->path = new std::string(name);
    absl::MutexLock lock(&self->mu_);
    self->files_.try_emplace(*f->path);
  }
  f->base.pMethods = &self->methods_;
  return SQLITE_OK;
}

int FaultVfs::Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  FaultVfs* self = Self(vfs);
  const int rc = self->real_->xDelete(self->real_, name, sync_dir);
  if (rc == SQLITE_OK) {
    absl::MutexLock lock(&self->mu_);
    self->files_.erase(name);
  }
  return rc;
}

int FaultVfs::Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Self(vfs)->real_->xAccess(Self(vfs)->real_, name, flags, out);
}
int FaultVfs::FullPathname(sqlite3_vfs* vfs, const char* name, int n,
                           char* out) {
  return Self(vfs)->real_->xFullPathname(Self(vfs)->real_, name, n, out);
}
void* FaultVfs::DlOpen(sqlite3_vfs* vfs, const char* name) {
  return Self(vfs)->real_->xDlOpen(Self(vfs)->real_, name);
}
void FaultVfs::DlError(sqlite3_vfs* vfs, int n, char* out) {
  Self(vfs)->real_->xDlError(Self(vfs)->real_, n, out);
}
void (*FaultVfs::DlSym(sqlite3_vfs* vfs, void* handle,
                       const char* symbol))(void) {
  return Self(vfs)->real_->xDlSym(Self(vfs)->real_, handle, symbol);
}
void FaultVfs::DlClose(sqlite3_vfs* vfs, void* handle) {
  Self(vfs)->real_->xDlClose(Self(vfs)->real_, handle);
}
int FaultVfs::Randomness(sqlite3_vfs* vfs, int n, char* out) {
  return Self(vfs)->real_->xRandomness(Self(vfs)->real_, n, out);
}
int FaultVfs::Sleep(sqlite3_vfs* vfs, int micros) {
  return Self(vfs)->real_->xSleep(Self(vfs)->real_, micros);
}
int FaultVfs::CurrentTime(sqlite3_vfs* vfs, double* out) {
  return Self(vfs)->real_->xCurrentTime(Self(vfs)->real_, out);
}
int FaultVfs::GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return Self(vfs)->real_->xGetLastError(Self(vfs)->real_, n, out);
}
int FaultVfs::CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Self(vfs)->real_->xCurrentTimeInt64(Self(vfs)->real_, out);
}

// ------------------------------------------------------------ file methods

#define REAL(f) (reinterpret_cast<File*>(f)->real())
#define REAL_CALL(f, method, ...) \
  REAL(f)->pMethods->method(REAL(f), ##__VA_ARGS__)

int FaultVfs::Close(sqlite3_file* file) {
  File* f = reinterpret_cast<File*>(file);
  const int rc = REAL_CALL(file, xClose);
  // Unsynced changes outlive the handle (they sit in the page cache), so
  // the path's record stays until the file is synced or deleted.
  delete f->path;
  f->path = nullptr;
  return rc;
}

int FaultVfs::Read(sqlite3_file* file, void* buf, int amount,
                   sqlite3_int64 offset) {
  return REAL_CALL(file, xRead, buf, amount, offset);
}

int FaultVfs::Write(sqlite3_file* file, const void* buf, int amount,
                    sqlite3_int64 offset) {
  File* f = reinterpret_cast<File*>(file);
  FaultVfs* self = f->vfs;
  if (f->path == nullptr) return REAL_CALL(file, xWrite, buf, amount, offset);
  self->BeforeMutation();
  if (self->fail_next_write_.exchange(false)) return SQLITE_IOERR_WRITE;
  absl::MutexLock lock(&self->mu_);
  sqlite3_int64 size = 0;
  int rc = REAL_CALL(file, xFileSize, &size);
  if (rc != SQLITE_OK) return rc;
  Change change;
  change.seq = self->next_change_seq_++;
  change.is_write = true;
  change.offset = offset;
  change.old_size = size;
  if (offset < size) {
    const int64_t n = std::min<int64_t>(amount, size - offset);
    change.old_bytes.resize(static_cast<size_t>(n));
    rc = REAL_CALL(file, xRead, change.old_bytes.data(), static_cast<int>(n),
                   offset);
    if (rc != SQLITE_OK) return rc;
  }
  change.new_bytes.assign(static_cast<const char*>(buf),
                          static_cast<size_t>(amount));
  rc = REAL_CALL(file, xWrite, buf, amount, offset);
  if (rc == SQLITE_OK) {
    self->files_[*f->path].unsynced.push_back(std::move(change));
  }
  return rc;
}

int FaultVfs::Truncate(sqlite3_file* file, sqlite3_int64 new_size) {
  File* f = reinterpret_cast<File*>(file);
  FaultVfs* self = f->vfs;
  if (f->path == nullptr) return REAL_CALL(file, xTruncate, new_size);
  self->BeforeMutation();
  absl::MutexLock lock(&self->mu_);
  sqlite3_int64 size = 0;
  int rc = REAL_CALL(file, xFileSize, &size);
  if (rc != SQLITE_OK) return rc;
  Change change;
  change.seq = self->next_change_seq_++;
  change.offset = new_size;
  change.old_size = size;
  if (new_size < size) {
    change.old_bytes.resize(static_cast<size_t>(size - new_size));
    rc = REAL_CALL(file, xRead, change.old_bytes.data(),
                   static_cast<int>(size - new_size), new_size);
    if (rc != SQLITE_OK) return rc;
  }
  rc = REAL_CALL(file, xTruncate, new_size);
  if (rc == SQLITE_OK) {
    self->files_[*f->path].unsynced.push_back(std::move(change));
  }
  return rc;
}

int FaultVfs::Sync(sqlite3_file* file, int flags) {
  File* f = reinterpret_cast<File*>(file);
  FaultVfs* self = f->vfs;
  if (f->path == nullptr) return REAL_CALL(file, xSync, flags);
  self->BeforeMutation();
  if (self->fail_next_sync_.exchange(false)) return SQLITE_IOERR_FSYNC;
  const int rc = REAL_CALL(file, xSync, flags);
  if (rc == SQLITE_OK) {
    self->syncs_.fetch_add(1);
    absl::MutexLock lock(&self->mu_);
    self->files_[*f->path].unsynced.clear();
  }
  return rc;
}

int FaultVfs::FileSize(sqlite3_file* file, sqlite3_int64* size) {
  return REAL_CALL(file, xFileSize, size);
}
int FaultVfs::Lock(sqlite3_file* file, int level) {
  return REAL_CALL(file, xLock, level);
}
int FaultVfs::Unlock(sqlite3_file* file, int level) {
  return REAL_CALL(file, xUnlock, level);
}
int FaultVfs::CheckReservedLock(sqlite3_file* file, int* out) {
  return REAL_CALL(file, xCheckReservedLock, out);
}
int FaultVfs::FileControl(sqlite3_file* file, int op, void* arg) {
  return REAL_CALL(file, xFileControl, op, arg);
}
int FaultVfs::SectorSize(sqlite3_file* file) {
  return REAL_CALL(file, xSectorSize);
}
int FaultVfs::DeviceCharacteristics(sqlite3_file* file) {
  // No atomic-write or safe-append promises: a torn write may hit any byte
  // of the region being written.
  return REAL_CALL(file, xDeviceCharacteristics) &
         ~(SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_ATOMIC512 |
           SQLITE_IOCAP_ATOMIC1K | SQLITE_IOCAP_ATOMIC2K |
           SQLITE_IOCAP_ATOMIC4K | SQLITE_IOCAP_ATOMIC8K |
           SQLITE_IOCAP_ATOMIC16K | SQLITE_IOCAP_ATOMIC32K |
           SQLITE_IOCAP_ATOMIC64K | SQLITE_IOCAP_SAFE_APPEND |
           SQLITE_IOCAP_SEQUENTIAL | SQLITE_IOCAP_BATCH_ATOMIC);
}
int FaultVfs::ShmMap(sqlite3_file* file, int region, int size, int extend,
                     void volatile** out) {
  return REAL_CALL(file, xShmMap, region, size, extend, out);
}
int FaultVfs::ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return REAL_CALL(file, xShmLock, offset, n, flags);
}
void FaultVfs::ShmBarrier(sqlite3_file* file) { REAL_CALL(file, xShmBarrier); }
int FaultVfs::ShmUnmap(sqlite3_file* file, int delete_flag) {
  return REAL_CALL(file, xShmUnmap, delete_flag);
}
int FaultVfs::Fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
  // No memory-mapped reads: every read goes through Read().
  *out = nullptr;
  return SQLITE_OK;
}
int FaultVfs::Unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

#undef REAL_CALL
#undef REAL

}  // namespace blixard::storage
