// The logging interface. There is no global logger: every component that logs
// takes a Logger* through its options, so the simulator can give each node a
// logger that stamps virtual time and node id, tests can capture lines, and
// production can write to stderr. A null Logger* is not allowed; use
// NullLogger to discard.
//
// Thread-safety: implementations decide; the core calls a Logger from the
// Host's single thread only.
#ifndef BLIXARD_CORE_BASE_LOGGER_H_
#define BLIXARD_CORE_BASE_LOGGER_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace blixard {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

absl::string_view LogLevelName(LogLevel level);

class Logger {
 public:
  virtual ~Logger() = default;
  // True when a line at `level` would be kept; lets callers skip formatting.
  virtual bool Enabled(LogLevel level) const = 0;
  // Records one line (no trailing newline).
  virtual void Log(LogLevel level, absl::string_view message) = 0;

  template <typename... Args>
  void Debug(const Args&... args) { LogCat(LogLevel::kDebug, args...); }
  template <typename... Args>
  void Info(const Args&... args) { LogCat(LogLevel::kInfo, args...); }
  template <typename... Args>
  void Warning(const Args&... args) { LogCat(LogLevel::kWarning, args...); }
  template <typename... Args>
  void Error(const Args&... args) { LogCat(LogLevel::kError, args...); }

 private:
  template <typename... Args>
  void LogCat(LogLevel level, const Args&... args) {
    if (Enabled(level)) Log(level, absl::StrCat(args...));
  }
};

// Discards everything.
class NullLogger final : public Logger {
 public:
  bool Enabled(LogLevel) const override { return false; }
  void Log(LogLevel, absl::string_view) override {}
};

// Keeps every line at or above a level in memory, in order ("LEVEL message").
// For tests and golden scenario output.
class CapturingLogger final : public Logger {
 public:
  explicit CapturingLogger(LogLevel min_level = LogLevel::kDebug)
      : min_level_(min_level) {}
  bool Enabled(LogLevel level) const override { return level >= min_level_; }
  void Log(LogLevel level, absl::string_view message) override;

  const std::vector<std::string>& lines() const { return lines_; }
  // Returns and forgets the captured lines.
  std::vector<std::string> TakeLines();

 private:
  LogLevel min_level_;
  std::vector<std::string> lines_;
};

// Writes "LEVEL prefix message" lines to stderr.
class StderrLogger final : public Logger {
 public:
  explicit StderrLogger(LogLevel min_level = LogLevel::kInfo,
                        std::string prefix = "")
      : min_level_(min_level), prefix_(std::move(prefix)) {}
  bool Enabled(LogLevel level) const override { return level >= min_level_; }
  void Log(LogLevel level, absl::string_view message) override;

 private:
  LogLevel min_level_;
  std::string prefix_;
};

}  // namespace blixard

#endif  // BLIXARD_CORE_BASE_LOGGER_H_
