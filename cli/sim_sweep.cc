#include "cli/sim_sweep.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/check.h"
#include "core/base/coverage_mark.h"
#include "core/base/planted_bug.h"

namespace blixard::cli {
namespace {

constexpr uint64_t kSeedsMax = 10'000'000;
// The table counts verdicts by their integer value.
using Verdict = sim::LinearizabilityResult::Verdict;
static_assert(static_cast<int>(Verdict::kLinearizable) == 0 &&
                  static_cast<int>(Verdict::kNotLinearizable) == 1 &&
                  static_cast<int>(Verdict::kInconclusive) == 2,
              "verdict encoding of the worker lines");
constexpr int kJobsMax = 256;

// A seed's verdict, as the worker reports it.
enum SeedStatus : int { kFailed = 0, kPassed = 1, kRecoveryImpossible = 2 };

struct SeedResult {
  bool done = false;
  int status = kFailed;
  uint64_t events = 0;
  int64_t virtual_us = 0;
  int linearizability = 0;  // LinearizabilityResult::Verdict as an integer
  std::string failure;      // or why recovery was impossible
};

// Coverage marks as one word: the counts in mark order, comma-separated.
std::string FormatMarks(const CoverageMarkCounts& counts) {
  return absl::StrJoin(counts, ",");
}

bool ParseMarks(absl::string_view word, CoverageMarkCounts* counts) {
  std::vector<absl::string_view> parts = absl::StrSplit(word, ',');
  if (parts.size() != kCoverageMarkCount) return false;
  for (size_t i = 0; i < kCoverageMarkCount; ++i) {
    if (!absl::SimpleAtoi(parts[i], &(*counts)[i])) return false;
  }
  return true;
}

// One line per seed:
// "<seed> <status 0|1|2> <events> <virtual_us> <verdict> <marks> <failure...>".
void Worker(const SweepOptions& options, int index, int fd) {
  const uint64_t jobs = static_cast<uint64_t>(options.jobs);
  for (uint64_t seed = options.first_seed + static_cast<uint64_t>(index);
       seed <= options.last_seed; seed += jobs) {
    sim::SimulationOptions run = options.base;
    run.seed = seed;
    run.trace = nullptr;
    run.timeline = nullptr;
    run.log = nullptr;
    const sim::SimulationReport report = sim::RunSimulation(run);
    std::string failure = report.passed ? report.recovery_detail : report.failure;
    for (char& c : failure) {
      if (c == '\n') c = ' ';
    }
    const int status = !report.passed              ? kFailed
                       : report.recovery_impossible ? kRecoveryImpossible
                                                    : kPassed;
    const std::string line = absl::StrCat(
        seed, " ", status, " ", report.events, " ", report.virtual_us, " ",
        static_cast<int>(report.linearizability.verdict), " ",
        FormatMarks(report.coverage_marks), " ", failure, "\n");
    size_t written = 0;
    while (written < line.size()) {
      const ssize_t n = write(fd, line.data() + written, line.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) _exit(3);
      written += static_cast<size_t>(n);
    }
  }
}

std::string Eta(double seconds) {
  if (seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

}  // namespace

absl::Status ParseSeedRange(const std::string& text, uint64_t* first, uint64_t* last) {
  std::vector<std::string> parts = absl::StrSplit(text, '-');
  if (parts.size() == 1) parts.push_back(parts[0]);
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], first) ||
      !absl::SimpleAtoi(parts[1], last)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--seeds takes A-B (two whole numbers), got '", text, "'"));
  }
  if (*first > *last) {
    return absl::InvalidArgumentError(
        absl::StrCat("--seeds range '", text, "' is empty (A > B)"));
  }
  if (*last - *first >= kSeedsMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("--seeds range '", text, "' is over ", kSeedsMax, " seeds"));
  }
  return absl::OkStatus();
}

int RunSweep(const SweepOptions& options) {
  CHECK_LE(options.first_seed, options.last_seed);
  CHECK(options.jobs >= 1 && options.jobs <= kJobsMax);
  const uint64_t total = options.last_seed - options.first_seed + 1;
  const int jobs = static_cast<int>(std::min<uint64_t>(total, static_cast<uint64_t>(options.jobs)));
  if (ActivePlantedBug() != PlantedBug::kNone) {
    absl::PrintF("planted bug: %s (built with --define=planted_bug=%s); failures are expected\n",
                 PlantedBugName(ActivePlantedBug()), PlantedBugName(ActivePlantedBug()));
  }
  std::fflush(stdout);
  std::fflush(stderr);

  std::vector<pid_t> pids(static_cast<size_t>(jobs));
  std::vector<int> fds(static_cast<size_t>(jobs));
  std::vector<std::string> buffers(static_cast<size_t>(jobs));
  for (int i = 0; i < jobs; ++i) {
    int pipefd[2];
    CHECK_EQ(pipe(pipefd), 0) << std::strerror(errno);
    const pid_t pid = fork();
    CHECK_GE(pid, 0) << "fork: " << std::strerror(errno);
    if (pid == 0) {
      close(pipefd[0]);
      Worker(options, i, pipefd[1]);
      close(pipefd[1]);
      _exit(0);
    }
    close(pipefd[1]);
    pids[static_cast<size_t>(i)] = pid;
    fds[static_cast<size_t>(i)] = pipefd[0];
  }

  std::map<uint64_t, SeedResult> results;
  // Coverage marks over the sweep: total hits and seeds that hit each.
  CoverageMarkCounts mark_hits = {};
  CoverageMarkCounts mark_seeds = {};
  uint64_t done = 0, failures = 0, events = 0, impossible = 0;
  const bool terminal = isatty(STDOUT_FILENO) != 0;
  const absl::Time start = absl::Now();
  absl::Time last_report = start;
  int open_pipes = jobs;
  auto progress = [&](bool final_line) {
    const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : -1;
    const std::string line = absl::StrFormat(
        "%d/%d seeds, %d failed, %.1f seeds/s, ETA %s", done, total, failures, rate, Eta(eta));
    if (terminal) {
      std::printf("\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
    } else {
      std::printf("%s\n", line.c_str());
    }
    std::fflush(stdout);
  };
  while (open_pipes > 0) {
    std::vector<pollfd> polls;
    for (int fd : fds) {
      if (fd >= 0) polls.push_back(pollfd{fd, POLLIN, 0});
    }
    const int ready = poll(polls.data(), polls.size(), 1000);
    if (ready < 0 && errno != EINTR) CHECK(false) << "poll: " << std::strerror(errno);
    for (const pollfd& p : polls) {
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const size_t i = static_cast<size_t>(
          std::find(fds.begin(), fds.end(), p.fd) - fds.begin());
      char chunk[4096];
      const ssize_t n = read(p.fd, chunk, sizeof(chunk));
      if (n <= 0) {
        close(p.fd);
        fds[i] = -1;
        --open_pipes;
        continue;
      }
      buffers[i].append(chunk, static_cast<size_t>(n));
      size_t newline;
      while ((newline = buffers[i].find('\n')) != std::string::npos) {
        const std::string line = buffers[i].substr(0, newline);
        buffers[i].erase(0, newline + 1);
        std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 6));
        CHECK_GE(f.size(), 6u) << "garbled worker line: " << line;
        uint64_t seed = 0;
        SeedResult result;
        result.done = true;
        CHECK(absl::SimpleAtoi(f[0], &seed) && absl::SimpleAtoi(f[1], &result.status) &&
              absl::SimpleAtoi(f[2], &result.events) &&
              absl::SimpleAtoi(f[3], &result.virtual_us) &&
              absl::SimpleAtoi(f[4], &result.linearizability))
            << "garbled worker line: " << line;
        CoverageMarkCounts marks = {};
        CHECK(ParseMarks(f[5], &marks)) << "garbled marks in worker line: " << line;
        for (size_t m = 0; m < kCoverageMarkCount; ++m) {
          mark_hits[m] += marks[m];
          if (marks[m] > 0) ++mark_seeds[m];
        }
        if (f.size() == 7) result.failure = f[6];
        ++done;
        events += result.events;
        if (result.status == kFailed) ++failures;
        if (result.status == kRecoveryImpossible) ++impossible;
        results[seed] = std::move(result);
      }
    }
    if (terminal || absl::Now() - last_report >= absl::Seconds(10)) {
      progress(false);
      last_report = absl::Now();
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  progress(true);

  // Seeds a worker never reported: it died (a CHECK failure) on the first of
  // them.
  for (uint64_t seed = options.first_seed; seed <= options.last_seed; ++seed) {
    if (results.count(seed) == 0) {
      results[seed] = SeedResult{false, kFailed, 0, 0, 0,
                                 "worker crashed (CHECK failure?) before reporting"};
      ++failures;
    }
  }
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  uint64_t verdicts[3] = {0, 0, 0};  // linearizable, not, inconclusive
  for (const auto& [seed, result] : results) {
    if (result.done && result.linearizability >= 0 && result.linearizability < 3) {
      ++verdicts[result.linearizability];
    }
  }
  absl::PrintF(
      "\n%-22s %d\n%-22s %d passed, %d failed (violations), %d recovery impossible\n"
      "%-22s %d linearizable, %d not linearizable, %d inconclusive\n"
      "%-22s %.1f s (%.2f seeds/s, %.0f events/s)\n",
      "seeds", total, "result", total - failures - impossible, failures, impossible,
      "linearizability", verdicts[0], verdicts[1], verdicts[2], "wall time", wall,
      wall > 0 ? static_cast<double>(total) / wall : 0.0,
      wall > 0 ? static_cast<double>(events) / wall : 0.0);
  if (impossible > 0) {
    std::printf("\nrecovery impossible (the fault model destroyed a quorum; not violations):\n");
    for (const auto& [seed, result] : results) {
      if (result.status != kRecoveryImpossible) continue;
      absl::PrintF("  seed %d: %s\n", seed, result.failure);
    }
  }
  // Which rare paths the sweep reached, and which it never did: a missed
  // mark means these seeds never test that path.
  std::vector<std::string> missed;
  absl::PrintF("\ncoverage marks (seeds that hit each, total hits):\n");
  for (size_t m = 0; m < kCoverageMarkCount; ++m) {
    const absl::string_view name = CoverageMarkName(CoverageMarkAt(m));
    absl::PrintF("  %-38s %6d seeds %8d hits\n", name, mark_seeds[m], mark_hits[m]);
    if (mark_hits[m] == 0) missed.emplace_back(name);
  }
  absl::PrintF("%-22s %s\n", "marks missed",
               missed.empty() ? "none" : absl::StrJoin(missed, ", "));
  if (failures > 0) {
    std::printf("\nfailures:\n");
    for (const auto& [seed, result] : results) {
      if (result.status != kFailed) continue;
      absl::PrintF("  seed %d: %s\n    replay: blixard sim --seed=%d %s\n", seed,
                   result.failure, seed, options.replay_flags);
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace blixard::cli
