// Arbitrary bytes as a node's SQLite log store, and byte-level mutations of
// a valid one: opening must yield a store or a clean error (DATA_LOSS,
// FAILED_PRECONDITION, ...), never a crash; and a store that opens must read
// back a log that hangs together (every entry in range, consecutive, terms
// non-decreasing), or say DATA_LOSS on the read.
//
// Input: byte 0 picks the mode. Mode 0: the rest is the database file.
// Mode 1: the input draws the valid database's store identity (a nonce, and
// whether the store was recorded confirmed, recorded and later confirmed by
// a second write, or left unconfirmed), then a list of (offset, xor) pairs
// applied to that database (which also holds a snapshot and a log), plus a
// truncation. An image left intact must open and read back exactly the
// identity it was given.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/base/check.h"
#include "core/proto/raft.pb.h"
#include "storage/sqlite_log_store.h"

namespace {

using blixard::Index;
using blixard::LogWrite;
using blixard::StoreIdentity;
using blixard::storage::SqliteLogStore;
using blixard::storage::SqliteLogStoreOptions;

constexpr int kMutationsMax = 16;

// Nonces that stress the encoding: the top bit (stored as a negative SQLite
// integer), 0 (a store from before nonces), all ones, an ordinary one.
constexpr uint64_t kNonces[] = {0x8000000000000001, 0, ~uint64_t{0},
                                0x0123456789abcdef};
constexpr size_t kNonceCount = sizeof(kNonces) / sizeof(kNonces[0]);
// How the valid image's store got its identity.
enum class History : uint8_t {
  kConfirmedLater = 0,   // recorded unconfirmed, then confirmed (two writes)
  kUnconfirmed = 1,      // recorded unconfirmed: a joiner not yet known
  kConfirmedAtOnce = 2,  // recorded confirmed: a founder
};
constexpr size_t kHistoryCount = 3;
constexpr size_t kImageKindCount = kNonceCount * kHistoryCount;

History HistoryOf(size_t kind) {
  return static_cast<History>(kind % kHistoryCount);
}

// The identity the image of `kind` holds in the end.
StoreIdentity IdentityOf(size_t kind) {
  StoreIdentity identity;
  identity.cluster_id = 0x0123456789abcdef;
  identity.node_id = blixard::NodeId(1);
  identity.store_nonce = kNonces[kind / kHistoryCount];
  identity.confirmed = HistoryOf(kind) != History::kUnconfirmed;
  return identity;
}

std::string ScratchDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/log_store_fuzzer.XXXXXX";
  CHECK(mkdtemp(dir.data()) != nullptr) << "cannot make a scratch directory";
  return dir;
}

const std::string& Dir() {
  static const std::string* const dir = new std::string(ScratchDir());
  return *dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CHECK(out.good()) << "cannot write " << path;
}

void RemoveDb(const std::string& path) {
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
}

// A valid store: the identity of `kind` (IdentityOf), a snapshot at 5 and
// entries 6..40 over three terms. Built once per kind.
const std::string& ValidImage(size_t kind) {
  CHECK_LT(kind, kImageKindCount);
  static std::map<size_t, std::string>* const images =
      new std::map<size_t, std::string>();
  auto [it, inserted] = images->try_emplace(kind);
  if (!inserted) return it->second;
  const std::string path = Dir() + "/valid" + std::to_string(kind) + ".db";
  RemoveDb(path);
  {
    SqliteLogStoreOptions options;
    options.path = path;
    auto store = SqliteLogStore::Open(options);
    CHECK_OK(store.status());
    LogWrite write;
    blixard::raft::Snapshot snapshot;
    snapshot.set_data(std::string(300, 's'));
    snapshot.mutable_metadata()->set_index(5);
    snapshot.mutable_metadata()->set_term(1);
    snapshot.mutable_metadata()->mutable_conf_state()->add_voters(1);
    write.snapshot = snapshot;
    for (uint64_t i = 6; i <= 40; ++i) {
      blixard::raft::Entry entry;
      entry.set_index(i);
      entry.set_term(1 + i / 15);
      entry.set_data(std::string(20, static_cast<char>('a' + i % 26)));
      write.entries.push_back(entry);
    }
    blixard::raft::HardState hard_state;
    hard_state.set_term(3);
    hard_state.set_vote(1);
    hard_state.set_commit(30);
    write.hard_state = hard_state;
    // So mutations also reach the identity row.
    const StoreIdentity identity = IdentityOf(kind);
    write.identity = identity;
    if (HistoryOf(kind) == History::kConfirmedLater) {
      write.identity->confirmed = false;
    }
    (*store)->Write(std::move(write), [] {});
    if (HistoryOf(kind) == History::kConfirmedLater) {
      LogWrite confirm;  // the cluster confirmed the store
      confirm.identity = identity;
      (*store)->Write(std::move(confirm), [] {});
    }
    (*store)->WaitForDurable();
    (*store)->PollCompletions();
  }  // closing checkpoints the WAL into the main file
  it->second = ReadFile(path);
  // The image holds what it was given, so that what the mutations start
  // from is known (the file may change from here on; its bytes are kept).
  SqliteLogStoreOptions options;
  options.path = path;
  auto store = SqliteLogStore::Open(options);
  CHECK_OK(store.status());
  auto identity = (*store)->ReadIdentity();
  CHECK_OK(identity.status());
  CHECK(*identity == std::optional<StoreIdentity>(IdentityOf(kind)))
      << "the valid image of kind " << kind
      << " reads back another identity than it recorded";
  return it->second;
}

void CheckStore(SqliteLogStore& store) {
  auto first = store.FirstIndex();
  auto last = store.LastIndex();
  (void)store.ReadHardState();
  auto identity = store.ReadIdentity();
  if (identity.ok() && identity->has_value()) {
    CHECK((*identity)->valid()) << "a half-set identity read back";
  }
  (void)store.ReadSnapshot();
  if (!first.ok() || !last.ok()) return;
  CHECK_LE(first->value(), last->value() + 1) << "first index past last + 1";
  if (*last < *first) return;
  auto entries = store.ReadEntries(*first, last->Next());
  if (!entries.ok()) {
    CHECK(entries.status().code() == absl::StatusCode::kDataLoss ||
          entries.status().code() == absl::StatusCode::kUnavailable)
        << entries.status();
    return;
  }
  CHECK_EQ(entries->size(), last->Since(*first) + 1);
  uint64_t term = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    CHECK_EQ((*entries)[i].index(), first->value() + i) << "entries out of place";
    CHECK_GE((*entries)[i].term(), term) << "terms go down";
    term = (*entries)[i].term();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const std::string path = Dir() + "/fuzz.db";
  RemoveDb(path);
  std::string bytes;
  std::optional<size_t> intact_kind;  // the image's kind while unmutated
  if (input.ConsumeBool()) {
    bytes = input.ConsumeRemainingBytesAsString();
  } else {
    const size_t kind =
        input.ConsumeIntegralInRange<size_t>(0, kImageKindCount - 1);
    bytes = ValidImage(kind);
    for (int i = 0; i < kMutationsMax && input.remaining_bytes() > 2; ++i) {
      const size_t offset = input.ConsumeIntegralInRange<size_t>(0, bytes.size() - 1);
      bytes[offset] = static_cast<char>(bytes[offset] ^ input.ConsumeIntegral<uint8_t>());
    }
    if (input.ConsumeBool()) {
      bytes.resize(input.ConsumeIntegralInRange<size_t>(0, bytes.size()));
    }
    if (bytes == ValidImage(kind)) intact_kind = kind;
  }
  WriteFile(path, bytes);
  SqliteLogStoreOptions options;
  options.path = path;
  auto store = SqliteLogStore::Open(options);
  if (intact_kind) {
    CHECK_OK(store.status()) << "a valid store refused";
    auto identity = (*store)->ReadIdentity();
    CHECK_OK(identity.status());
    CHECK(*identity == std::optional<StoreIdentity>(IdentityOf(*intact_kind)))
        << "a valid store read back another identity than it recorded";
  }
  if (store.ok()) {
    CheckStore(**store);
  } else {
    CHECK(!store.status().message().empty()) << "an error must say what was wrong";
  }
  return 0;
}
