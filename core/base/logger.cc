#include "core/base/logger.h"

#include <cstdio>
#include <utility>

namespace blixard {

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

void CapturingLogger::Log(LogLevel level, absl::string_view message) {
  if (!Enabled(level)) return;
  lines_.push_back(absl::StrCat(LogLevelName(level), " ", message));
}

std::vector<std::string> CapturingLogger::TakeLines() {
  std::vector<std::string> taken = std::move(lines_);
  lines_.clear();
  return taken;
}

void StderrLogger::Log(LogLevel level, absl::string_view message) {
  if (!Enabled(level)) return;
  const std::string line =
      absl::StrCat(LogLevelName(level), " ", prefix_, message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace blixard
