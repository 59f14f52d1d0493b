#include "core/base/check.h"

#include <cstdio>
#include <cstdlib>

namespace blixard::check_internal {

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << file << ":" << line << ": CHECK failed: " << condition << " ";
}

CheckFailure::~CheckFailure() {
  stream_ << "\n";
  const std::string message = stream_.str();
  std::fputs(message.c_str(), stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace blixard::check_internal
