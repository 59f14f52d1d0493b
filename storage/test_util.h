// Test-only helpers for storage tests: scratch directories.
#ifndef BLIXARD_STORAGE_TEST_UTIL_H_
#define BLIXARD_STORAGE_TEST_UTIL_H_

#include <string>

namespace blixard::storage {

// A fresh, empty directory for one test, removed with its contents when the
// object dies. Under TEST_TMPDIR, or under /dev/shm (tmpfs) when `prefer_tmpfs`
// and /dev/shm is writable: the crash tests write thousands of small images
// and fsync a lot, which a tmpfs makes cheap.
class ScratchDir {
 public:
  explicit ScratchDir(bool prefer_tmpfs = false);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Whole-file helpers; CHECK-fail on I/O errors (test scaffolding).
std::string ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& bytes);
void RemoveTreeOrDie(const std::string& path);
bool FileExists(const std::string& path);

}  // namespace blixard::storage

#endif  // BLIXARD_STORAGE_TEST_UTIL_H_
