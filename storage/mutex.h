// Mutex and MutexLock: std::mutex with clang's thread-safety annotations.
//
// For the code that has threads: storage's I/O thread, and the event loop's
// cross-thread post queue in net/ (which may depend on storage). core/ runs
// on one thread and may not use it (tools/core_purity_test).
// Why not absl::Mutex: Debian's Abseil is not built with ThreadSanitizer,
// so TSan cannot see absl::Mutex's happens-before edges and flags every
// hand-off; std::mutex goes through pthread calls that TSan intercepts.
// Why not bare std::mutex: libstdc++'s carries no capability annotation,
// so -Wthread-safety could not check ABSL_GUARDED_BY fields. This wrapper
// gives both.
//
// A condition variable waits with std::condition_variable_any on the Mutex
// itself (it is BasicLockable); the analysis treats the wait as holding the
// lock throughout, which is what the caller's code may assume.
#ifndef BLIXARD_STORAGE_MUTEX_H_
#define BLIXARD_STORAGE_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace blixard {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // BasicLockable, for std::condition_variable_any.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace blixard

#endif  // BLIXARD_STORAGE_MUTEX_H_
