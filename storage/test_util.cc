#include "storage/test_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::storage {

ScratchDir::ScratchDir(bool prefer_tmpfs) {
  std::string base;
  if (prefer_tmpfs && access("/dev/shm", W_OK) == 0) {
    base = "/dev/shm";
  } else if (const char* tmp = std::getenv("TEST_TMPDIR")) {
    base = tmp;
  } else {
    base = "/tmp";
  }
  // mkdtemp, not the pid: tests in Bazel's sandboxes share the host's
  // /dev/shm and each sees itself as a low pid in its own namespace.
  std::string pattern = absl::StrCat(base, "/blixard_storage_XXXXXX");
  CHECK(mkdtemp(pattern.data()) != nullptr)
      << pattern << ": " << std::strerror(errno);
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CHECK(in.good()) << "cannot read " << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFileOrDie(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  CHECK(out.good()) << "cannot write " << path;
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CHECK(out.good()) << "cannot write " << path;
}

void RemoveTreeOrDie(const std::string& path) {
  std::error_code error;
  std::filesystem::remove_all(path, error);
  CHECK(!error) << path << ": " << error.message();
}

bool FileExists(const std::string& path) {
  std::error_code error;
  return std::filesystem::exists(path, error);
}

}  // namespace blixard::storage
