#include "core/base/check.h"

#include <cstdio>
#include <cstdlib>

namespace blixard::check_internal {

CheckFailure::CheckFailure(const char* file, int line, const char* condition) {
  stream_ << file << ":" << line << ": CHECK failed: " << condition << " ";
}

CheckFailure* NewCheckFailure(const char* file, int line, const char* condition) {
  return new CheckFailure(file, line, condition);
}

CheckFailureMessage::~CheckFailureMessage() {
  failure_->stream() << "\n";
  const std::string message = failure_->message();
  std::fputs(message.c_str(), stderr);
  std::fflush(stderr);
  std::abort();  // the failure is never freed: the process ends here
}

}  // namespace blixard::check_internal
