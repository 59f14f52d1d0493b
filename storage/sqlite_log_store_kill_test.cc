// A real-process crash test: a child process appends to a SqliteLogStore in
// a loop (on a real file system, real fsync) and reports every index whose
// callback has run through a pipe; the parent SIGKILLs it at a random point
// of that stream, reopens the store and checks that every acknowledged entry
// is there, intact. Repeated with the log growing across kills.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "storage/sqlite_log_store.h"
#include "storage/test_util.h"

namespace blixard::storage {
namespace {

constexpr int kKills = 24;
constexpr uint64_t kEntryDataBytes = 128;
// The child stops on its own after this many entries per life, so a parent
// that fails to kill it does not leave it running forever.
constexpr uint64_t kChildEntriesMax = 200000;

// Entry data is a function of (index, term), so the parent can check every
// byte without talking to the child.
std::string EntryData(uint64_t index, uint64_t term) {
  std::string data = absl::StrCat("index=", index, " term=", term, " ");
  Rng rng(index * 1000003 + term);
  while (data.size() < kEntryDataBytes) {
    data.push_back(static_cast<char>('a' + rng.Uniform(26)));
  }
  return data;
}

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(3);  // the parent is gone
    p += n;
    size -= static_cast<size_t>(n);
  }
}

// The child: appends batches of entries under `term`, with the hard state,
// several writes in flight at once, and reports each acked last index.
[[noreturn]] void ChildMain(const std::string& path, uint64_t term,
                            uint64_t seed, int ack_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  SqliteLogStoreOptions options;
  options.path = path;
  auto opened = SqliteLogStore::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "child: %s\n", opened.status().ToString().c_str());
    _exit(2);
  }
  std::unique_ptr<SqliteLogStore> store = std::move(*opened);
  uint64_t next = store->LastIndex()->value() + 1;
  const uint64_t first = next;
  Rng rng(seed);
  while (next - first < kChildEntriesMax) {
    const uint64_t writes = rng.Range(1, 4);
    for (uint64_t w = 0; w < writes; ++w) {
      LogWrite write;
      const uint64_t count = rng.Range(1, 16);
      for (uint64_t i = 0; i < count; ++i) {
        raft::Entry& entry = write.entries.emplace_back();
        entry.set_index(next + i);
        entry.set_term(term);
        entry.set_data(EntryData(next + i, term));
      }
      raft::HardState hs;
      hs.set_term(term);
      hs.set_commit(next + count - 1);
      write.hard_state = hs;
      const uint64_t last = next + count - 1;
      next += count;
      store->Write(std::move(write),
                   [ack_fd, last] { WriteAll(ack_fd, &last, sizeof(last)); });
    }
    store->WaitForDurable();
    store->PollCompletions();
  }
  _exit(0);
}

TEST(SqliteLogStoreKillTest, SigkilledWriterLosesNoAcknowledgedEntry) {
  // A real disk (TEST_TMPDIR), not tmpfs: this test is about real fsync.
  ScratchDir dir(/*prefer_tmpfs=*/false);
  const std::string path = dir.File("node.db");
  Rng rng(20261126);
  uint64_t acked_max = 0;
  int kills = 0;
  for (int round = 0; round < kKills; ++round) {
    const uint64_t term = static_cast<uint64_t>(round) + 1;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      ChildMain(path, term, rng.Next(), fds[1]);
    }
    close(fds[1]);
    // Kill after a random number of acknowledgements: a point in the
    // child's stream of writes, not a point in time.
    const uint64_t kill_after = rng.Range(1, 60);
    uint64_t seen = 0;
    bool killed = false;
    while (true) {
      uint64_t last = 0;
      const ssize_t n = read(fds[0], &last, sizeof(last));
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) break;  // EOF: the child is dead and every ack is read
      ASSERT_EQ(n, static_cast<ssize_t>(sizeof(last)));
      ASSERT_GT(last, acked_max) << "acks must grow";
      acked_max = last;
      if (++seen == kill_after && !killed) {
        ASSERT_EQ(kill(pid, SIGKILL), 0);
        killed = true;
      }
    }
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(killed) << "child exited before the kill, status " << status;
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "status " << status;
    ++kills;

    // Restart as the node would, and check every acknowledged entry.
    SqliteLogStoreOptions options;
    options.path = path;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteLogStore> store,
                         SqliteLogStore::Open(options));
    ASSERT_OK_AND_ASSIGN(Index last, store->LastIndex());
    ASSERT_GE(last.value(), acked_max) << "acknowledged entries lost";
    ASSERT_OK_AND_ASSIGN(std::vector<raft::Entry> entries,
                         store->ReadEntries(Index(1), last.Next()));
    uint64_t previous_term = 0;
    for (const raft::Entry& entry : entries) {
      ASSERT_GE(entry.term(), previous_term);
      ASSERT_EQ(entry.data(), EntryData(entry.index(), entry.term()))
          << "entry " << entry.index();
      previous_term = entry.term();
    }
    ASSERT_OK_AND_ASSIGN(raft::HardState hs, store->ReadHardState());
    EXPECT_GE(hs.commit(), acked_max);
    EXPECT_LE(hs.commit(), last.value());
    acked_max = last.value();  // the next life continues from here
  }
  std::cout << "SIGKILLs: " << kills << ", entries at the end: " << acked_max
            << "\n";
  EXPECT_GE(kills, 20);
}

}  // namespace
}  // namespace blixard::storage
