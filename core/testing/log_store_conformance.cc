#include "core/testing/log_store_conformance.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"
#include "core/base/status_matchers.h"

namespace blixard::testing {
namespace {

void PutU64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

void PutBytes(std::string& out, absl::string_view bytes) {
  PutU64(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

uint64_t DigestOf(const std::optional<StoreIdentity>& identity,
                  const raft::HardState& hs,
                  const std::optional<raft::Snapshot>& snapshot, Index first,
                  Index last, const std::vector<raft::Entry>& entries) {
  std::string bytes;
  PutU64(bytes, identity.has_value() ? 1 : 0);
  if (identity) {
    PutU64(bytes, identity->cluster_id);
    PutU64(bytes, identity->node_id.value());
    PutU64(bytes, identity->store_nonce);
    PutU64(bytes, identity->confirmed ? 1 : 0);
  }
  PutU64(bytes, hs.term());
  PutU64(bytes, hs.vote());
  PutU64(bytes, hs.commit());
  PutU64(bytes, snapshot.has_value() ? 1 : 0);
  if (snapshot) {
    PutU64(bytes, snapshot->metadata().index());
    PutU64(bytes, snapshot->metadata().term());
    PutBytes(bytes, snapshot->metadata().conf_state().SerializeAsString());
    PutU64(bytes, StableHash64(snapshot->data()));
  }
  PutU64(bytes, first.value());
  PutU64(bytes, last.value());
  for (const raft::Entry& entry : entries) {
    PutU64(bytes, entry.index());
    PutU64(bytes, entry.term());
    PutU64(bytes, static_cast<uint64_t>(entry.type()));
    PutBytes(bytes, entry.data());
  }
  return StableHash64(bytes);
}

// For messages: StoreIdentityString() plus the fields it leaves out.
std::string IdentityDetail(const std::optional<StoreIdentity>& identity) {
  return identity ? StoreIdentityDetail(*identity) : "none";
}

}  // namespace

raft::Entry MakeEntry(uint64_t index, uint64_t term, absl::string_view data) {
  raft::Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  entry.set_type(raft::ENTRY_NORMAL);
  entry.set_data(data.data(), data.size());
  return entry;
}

std::vector<raft::Entry> MakeEntries(uint64_t first_index, uint64_t count,
                                     uint64_t term) {
  std::vector<raft::Entry> entries;
  for (uint64_t i = 0; i < count; ++i) {
    entries.push_back(MakeEntry(first_index + i, term,
                                absl::StrCat("e", first_index + i, "t", term)));
  }
  return entries;
}

raft::Snapshot MakeSnapshot(uint64_t index, uint64_t term,
                            absl::string_view data) {
  raft::Snapshot snapshot;
  snapshot.set_data(data.data(), data.size());
  snapshot.mutable_metadata()->set_index(index);
  snapshot.mutable_metadata()->set_term(term);
  for (uint64_t voter : {1, 2, 3}) {
    snapshot.mutable_metadata()->mutable_conf_state()->add_voters(voter);
  }
  return snapshot;
}

// ---------------------------------------------------------------- LogModel

Index LogModel::snapshot_index() const {
  return snapshot_ ? Index(snapshot_->metadata().index()) : Index(0);
}

Term LogModel::snapshot_term() const {
  return snapshot_ ? Term(snapshot_->metadata().term()) : Term(0);
}

Index LogModel::FirstIndex() const {
  return entries_.empty() ? snapshot_index().Next()
                          : Index(entries_.front().index());
}

Index LogModel::LastIndex() const {
  return entries_.empty() ? snapshot_index() : Index(entries_.back().index());
}

Term LogModel::TermAt(Index index) const {
  if (index == snapshot_index()) return snapshot_term();
  CHECK_GE(index, FirstIndex());
  CHECK_LE(index, LastIndex());
  return Term(entries_[index.Since(FirstIndex())].term());
}

void LogModel::Apply(const LogWrite& write) {
  CHECK(!write.empty());
  if (write.snapshot) {
    const Index index(write.snapshot->metadata().index());
    const Term term(write.snapshot->metadata().term());
    CHECK_GE(index, snapshot_index());
    const bool keep_suffix = index >= snapshot_index() &&
                             index <= LastIndex() && TermAt(index) == term;
    if (keep_suffix) {
      entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                    [&](const raft::Entry& e) {
                                      return e.index() <= index.value();
                                    }),
                     entries_.end());
    } else {
      entries_.clear();
    }
    snapshot_ = *write.snapshot;
  }
  if (!write.entries.empty()) {
    const Index first(write.entries.front().index());
    CHECK_GT(first, snapshot_index());
    CHECK_LE(first, LastIndex().Next());
    entries_.resize(first.Since(FirstIndex()));
    for (const raft::Entry& entry : write.entries) entries_.push_back(entry);
  }
  if (write.hard_state) hard_state_ = *write.hard_state;
  if (write.compact_to) {
    CHECK_LE(*write.compact_to, snapshot_index());
  }
  if (write.identity) {
    CHECK(write.identity->valid());
    CHECK(!identity_ || identity_->MayBecome(*write.identity))
        << "a store never changes owner or nonce, nor is un-confirmed";
    identity_ = *write.identity;
  }
  CHECK_LE(hard_state_.commit(), LastIndex().value())
      << "commit index beyond the log";
  CheckInvariants();
}

uint64_t LogModel::Digest() const {
  return DigestOf(identity_, hard_state_, snapshot_, FirstIndex(), LastIndex(),
                  entries_);
}

void LogModel::CheckInvariants() const {
  for (size_t i = 0; i < entries_.size(); ++i) {
    CHECK_EQ(entries_[i].index(), snapshot_index().value() + 1 + i);
    if (i > 0) {
      CHECK_GE(entries_[i].term(), entries_[i - 1].term());
    }
  }
  if (!entries_.empty()) {
    CHECK_GE(entries_.front().term(), snapshot_term().value());
  }
}

absl::StatusOr<uint64_t> StoreDigest(LogStore& store) {
  ASSIGN_OR_RETURN(std::optional<StoreIdentity> identity,
                   store.ReadIdentity());
  ASSIGN_OR_RETURN(raft::HardState hs, store.ReadHardState());
  ASSIGN_OR_RETURN(std::optional<raft::Snapshot> snapshot,
                   store.ReadSnapshot());
  ASSIGN_OR_RETURN(Index first, store.FirstIndex());
  ASSIGN_OR_RETURN(Index last, store.LastIndex());
  if (last.Next() < first) {
    return absl::InternalError(absl::StrCat(
        "last index ", last.value(), " < first index ", first.value(), " - 1"));
  }
  ASSIGN_OR_RETURN(std::vector<raft::Entry> entries,
                   store.ReadEntries(first, last.Next()));
  return DigestOf(identity, hs, snapshot, first, last, entries);
}

absl::Status StoreMatchesModel(LogStore& store, const LogModel& model) {
  ASSIGN_OR_RETURN(std::optional<StoreIdentity> identity,
                   store.ReadIdentity());
  if (identity != model.identity()) {
    return absl::InternalError(absl::StrCat("identity: store ",
                                            IdentityDetail(identity), " model ",
                                            IdentityDetail(model.identity())));
  }
  ASSIGN_OR_RETURN(raft::HardState hs, store.ReadHardState());
  if (hs.SerializeAsString() != model.hard_state().SerializeAsString()) {
    return absl::InternalError(
        absl::StrCat("hard state: store {", hs.ShortDebugString(), "} model {",
                     model.hard_state().ShortDebugString(), "}"));
  }
  ASSIGN_OR_RETURN(std::optional<raft::Snapshot> snapshot,
                   store.ReadSnapshot());
  if (snapshot.has_value() != model.snapshot().has_value() ||
      (snapshot && (snapshot->SerializeAsString() !=
                    model.snapshot()->SerializeAsString()))) {
    return absl::InternalError(absl::StrCat(
        "snapshot: store ",
        snapshot ? snapshot->metadata().ShortDebugString() : "none", " model ",
        model.snapshot() ? model.snapshot()->metadata().ShortDebugString()
                         : "none"));
  }
  ASSIGN_OR_RETURN(Index first, store.FirstIndex());
  ASSIGN_OR_RETURN(Index last, store.LastIndex());
  if (first != model.FirstIndex() || last != model.LastIndex()) {
    return absl::InternalError(absl::StrCat(
        "bounds: store [", first.value(), ", ", last.value(), "] model [",
        model.FirstIndex().value(), ", ", model.LastIndex().value(), "]"));
  }
  ASSIGN_OR_RETURN(std::vector<raft::Entry> entries,
                   store.ReadEntries(first, last.Next()));
  if (entries.size() != model.entries().size()) {
    return absl::InternalError("entry count differs");
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].SerializeAsString() !=
        model.entries()[i].SerializeAsString()) {
      return absl::InternalError(
          absl::StrCat("entry ", entries[i].index(), ": store {",
                       entries[i].ShortDebugString(), "} model {",
                       model.entries()[i].ShortDebugString(), "}"));
    }
  }
  ASSIGN_OR_RETURN(Term snapshot_term, store.ReadTerm(model.snapshot_index()));
  if (snapshot_term != model.snapshot_term()) {
    return absl::InternalError("term at the snapshot index differs");
  }
  if (!model.entries().empty()) {
    ASSIGN_OR_RETURN(Term last_term, store.ReadTerm(model.LastIndex()));
    if (last_term != model.TermAt(model.LastIndex())) {
      return absl::InternalError("term at the last index differs");
    }
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------- LogWorkload

LogWorkload::LogWorkload(Rng rng, LogWorkloadOptions options)
    : rng_(rng), options_(options) {}

std::string LogWorkload::RandomBytes(uint64_t max) {
  std::string bytes(rng_.Range(0, max), '\0');
  for (char& c : bytes) c = static_cast<char>(rng_.Uniform(256));
  return bytes;
}

LogWrite LogWorkload::Next(const LogModel& model) {
  // Raft-faithful: committed entries are never truncated, a snapshot that
  // replaces the log covers everything committed, and the commit index never
  // decreases or passes the log.
  LogWrite write;
  const uint64_t snap = model.snapshot_index().value();
  const uint64_t last = model.LastIndex().value();
  const uint64_t commit = model.hard_state().commit();
  const uint64_t roll = rng_.Uniform(100);
  LogModel after = model;
  if (roll < options_.snapshot_percent && last > 0) {
    uint64_t index;
    uint64_t term;
    if (last > snap && rng_.Chance(1, 2)) {
      index = rng_.Range(snap + 1, last);  // keeps the log after it
      term = model.TermAt(Index(index)).value();
    } else {
      // A leader's newer snapshot.
      index = rng_.Range(std::max(snap + 1, commit), last + 5);
      term = ++term_;
    }
    write.snapshot = MakeSnapshot(
        index, term, RandomBytes(options_.snapshot_data_bytes_max));
    if (rng_.Chance(1, 2)) write.compact_to = Index(rng_.Range(0, index));
    after.Apply(write);
  } else if (roll < options_.snapshot_percent + options_.compact_percent &&
             snap > 0) {
    write.compact_to = Index(rng_.Range(1, snap));
  } else if (roll < options_.snapshot_percent + options_.compact_percent +
                        options_.truncate_percent &&
             last > std::max(snap, commit)) {
    const uint64_t start = rng_.Range(std::max(snap, commit) + 1, last);
    ++term_;
    const uint64_t count = rng_.Range(1, options_.entries_per_write_max);
    for (uint64_t i = 0; i < count; ++i) {
      write.entries.push_back(MakeEntry(
          start + i, term_, RandomBytes(options_.entry_data_bytes_max)));
    }
  }
  if (write.entries.empty() && !write.snapshot && !write.compact_to) {
    const uint64_t count = rng_.Range(0, options_.entries_per_write_max);
    for (uint64_t i = 0; i < count; ++i) {
      write.entries.push_back(MakeEntry(
          last + 1 + i, term_, RandomBytes(options_.entry_data_bytes_max)));
    }
  }
  const uint64_t new_last = write.entries.empty()
                                ? after.LastIndex().value()
                                : write.entries.back().index();
  CHECK_LE(commit, new_last);
  if (write.empty() || rng_.Uniform(100) < options_.hard_state_percent) {
    raft::HardState hs;
    hs.set_term(term_);
    hs.set_vote(rng_.Range(0, 3));
    hs.set_commit(rng_.Range(commit, new_last));
    write.hard_state = hs;
  }
  if (options_.identity &&
      rng_.Uniform(100) < options_.identity_percent) {
    StoreIdentity identity = *options_.identity;
    CHECK(!model.identity() || model.identity()->SameStore(identity))
        << "the workload writes one store's identity";
    // An unconfirmed store is recorded unconfirmed (as a joiner's is),
    // confirmed at a later identity write drawn at random, and stays so (a
    // store is never un-confirmed). Numbers are drawn only while it is
    // recorded and unconfirmed: a confirmed identity draws what it drew
    // before stores had a confirmed bit.
    if (!identity.confirmed && model.identity()) {
      identity.confirmed = model.identity()->confirmed ||
                           rng_.Chance(1, options_.confirm_one_in);
    }
    write.identity = identity;
  }
  CHECK(!write.empty());
  return write;
}

// ------------------------------------------------ LogStoreConformanceTest

void LogStoreConformanceTest::SetUp() { harness_ = GetParam().make(); }

void LogStoreConformanceTest::TearDown() {
  if (harness_ == nullptr) return;
  harness_->Settle();
  EXPECT_OK(StoreMatchesModel(store(), model_));
}

void LogStoreConformanceTest::Write(LogWrite write) {
  model_.Apply(write);
  const uint64_t seq = writes_++;
  store().Write(std::move(write), [this, seq] { completed_.push_back(seq); });
}

void LogStoreConformanceTest::SettleAndCompare() {
  harness_->Settle();
  ASSERT_EQ(completed_.size(), writes_);
  ASSERT_OK(StoreMatchesModel(store(), model_));
}

// Binaries that only need LogModel / LogWorkload (the crash tests) link
// this library without instantiating the suite.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LogStoreConformanceTest);

namespace {

LogWrite Entries(uint64_t first, uint64_t count, uint64_t term) {
  LogWrite write;
  write.entries = MakeEntries(first, count, term);
  return write;
}

TEST_P(LogStoreConformanceTest, NewStoreIsEmpty) {
  ASSERT_OK_AND_ASSIGN(raft::HardState hs, store().ReadHardState());
  EXPECT_EQ(hs.term(), 0u);
  EXPECT_EQ(hs.vote(), 0u);
  EXPECT_EQ(hs.commit(), 0u);
  ASSERT_OK_AND_ASSIGN(std::optional<raft::Snapshot> snapshot,
                       store().ReadSnapshot());
  EXPECT_FALSE(snapshot.has_value());
  EXPECT_THAT(store().FirstIndex(), IsOk());
  EXPECT_EQ(*store().FirstIndex(), Index(1));
  EXPECT_EQ(*store().LastIndex(), Index(0));
  ASSERT_OK_AND_ASSIGN(Term term, store().ReadTerm(Index(0)));
  EXPECT_EQ(term, Term(0));
  EXPECT_THAT(store().ReadTerm(Index(1)),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_P(LogStoreConformanceTest, AppendedEntriesReadBackAfterCallback) {
  Write(Entries(1, 10, 1));
  Write(Entries(11, 5, 2));
  SettleAndCompare();
  ASSERT_OK_AND_ASSIGN(std::vector<raft::Entry> entries,
                       store().ReadEntries(Index(3), Index(13)));
  ASSERT_EQ(entries.size(), 10u);
  EXPECT_EQ(entries.front().index(), 3u);
  EXPECT_EQ(entries.back().index(), 12u);
  EXPECT_EQ(entries.back().term(), 2u);
  EXPECT_EQ(entries.back().data(), "e12t2");
  ASSERT_OK_AND_ASSIGN(Term term, store().ReadTerm(Index(15)));
  EXPECT_EQ(term, Term(2));
}

TEST_P(LogStoreConformanceTest, CallbacksRunOnceInWriteOrderNeverInsideWrite) {
  for (uint64_t i = 0; i < 50; ++i) {
    Write(Entries(i + 1, 1, 1));
    EXPECT_TRUE(completed_.size() <= i) << "a callback ran inside Write()";
  }
  SettleAndCompare();
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(completed_[i], i);
  // Polling again runs nothing twice.
  harness_->Settle();
  store().PollCompletions();
  EXPECT_EQ(completed_.size(), 50u);
}

TEST_P(LogStoreConformanceTest, ConflictingAppendTruncatesSuffix) {
  Write(Entries(1, 10, 1));
  Write(Entries(6, 2, 2));  // replaces 6..10 with 6..7 of term 2
  SettleAndCompare();
  EXPECT_EQ(*store().LastIndex(), Index(7));
  EXPECT_EQ(*store().ReadTerm(Index(7)), Term(2));
  EXPECT_EQ(*store().ReadTerm(Index(5)), Term(1));
  EXPECT_THAT(store().ReadTerm(Index(8)),
              StatusIs(absl::StatusCode::kOutOfRange));
}

// Writes of hundreds of entries (a store may insert them in groups) read
// back exactly, including a conflicting rewrite that is not group-aligned.
TEST_P(LogStoreConformanceTest, LargeWritesAndLargeConflictingRewrite) {
  Write(Entries(1, 200, 1));
  Write(Entries(70, 131, 2));  // replaces 70..200 with 70..200 of term 2
  Write(Entries(201, 65, 2));
  SettleAndCompare();
  EXPECT_EQ(*store().LastIndex(), Index(265));
  EXPECT_EQ(*store().ReadTerm(Index(69)), Term(1));
  EXPECT_EQ(*store().ReadTerm(Index(70)), Term(2));
  ASSERT_OK_AND_ASSIGN(std::vector<raft::Entry> entries,
                       store().ReadEntries(Index(1), Index(266)));
  ASSERT_EQ(entries.size(), 265u);
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].index(), i + 1);
    EXPECT_EQ(entries[i].data(),
              absl::StrCat("e", i + 1, "t", i + 1 < 70 ? 1 : 2));
  }
}

TEST_P(LogStoreConformanceTest, HardStateSurvivesReopen) {
  LogWrite write = Entries(1, 3, 4);
  raft::HardState hs;
  hs.set_term(4);
  hs.set_vote(2);
  hs.set_commit(3);
  write.hard_state = hs;
  Write(std::move(write));
  SettleAndCompare();
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(raft::HardState read, store().ReadHardState());
  EXPECT_EQ(read.term(), 4u);
  EXPECT_EQ(read.vote(), 2u);
  EXPECT_EQ(read.commit(), 3u);
  SettleAndCompare();
}

TEST_P(LogStoreConformanceTest, SnapshotKeepsMatchingSuffix) {
  Write(Entries(1, 10, 1));
  LogWrite write;
  write.snapshot = MakeSnapshot(6, 1, "state at 6");
  write.compact_to = Index(6);
  Write(std::move(write));
  SettleAndCompare();
  EXPECT_EQ(*store().FirstIndex(), Index(7));
  EXPECT_EQ(*store().LastIndex(), Index(10));
  EXPECT_EQ(*store().ReadTerm(Index(6)), Term(1));
  EXPECT_THAT(store().ReadTerm(Index(5)),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_P(LogStoreConformanceTest, SnapshotWithOtherTermDiscardsLog) {
  Write(Entries(1, 10, 1));
  LogWrite write;
  write.snapshot = MakeSnapshot(6, 3, "leader's state at 6");
  Write(std::move(write));
  SettleAndCompare();
  EXPECT_EQ(*store().FirstIndex(), Index(7));
  EXPECT_EQ(*store().LastIndex(), Index(6));
  EXPECT_EQ(*store().ReadTerm(Index(6)), Term(3));
  Write(Entries(7, 2, 3));
  SettleAndCompare();
}

TEST_P(LogStoreConformanceTest, SnapshotBeyondLogAndEntriesInOneWrite) {
  Write(Entries(1, 3, 1));
  LogWrite write;
  write.snapshot = MakeSnapshot(20, 2, "far ahead");
  write.entries = MakeEntries(21, 4, 2);
  Write(std::move(write));
  SettleAndCompare();
  EXPECT_EQ(*store().FirstIndex(), Index(21));
  EXPECT_EQ(*store().LastIndex(), Index(24));
}

TEST_P(LogStoreConformanceTest, LargeSnapshotRoundTrips) {
  Rng rng(7);
  std::string data(harness_->large_snapshot_bytes() + 1, '\0');
  for (char& c : data) c = static_cast<char>(rng.Uniform(256));
  LogWrite write;
  write.snapshot = MakeSnapshot(100, 5, data);
  Write(std::move(write));
  SettleAndCompare();
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<raft::Snapshot> snapshot,
                       store().ReadSnapshot());
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->data(), data);
  EXPECT_EQ(snapshot->metadata().conf_state().voters_size(), 3);
}

TEST_P(LogStoreConformanceTest, EmptySnapshotDataRoundTrips) {
  LogWrite write;
  write.snapshot = MakeSnapshot(4, 1, "");
  Write(std::move(write));
  SettleAndCompare();
  harness_->Reopen();
  SettleAndCompare();
}

TEST_P(LogStoreConformanceTest, ReadsOutsideTheLogAreOutOfRange) {
  Write(Entries(1, 10, 1));
  LogWrite write;
  write.snapshot = MakeSnapshot(6, 1, "state at 6");
  Write(std::move(write));
  SettleAndCompare();
  EXPECT_THAT(store().ReadEntries(Index(3), Index(8)),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(store().ReadEntries(Index(7), Index(20)),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(store().ReadTerm(Index(11)),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(store().ReadTerm(Index(5)),
              StatusIs(absl::StatusCode::kOutOfRange));
  // Even where no store could hold an entry.
  EXPECT_THAT(store().ReadTerm(Index(uint64_t{1} << 63)),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(store().ReadTerm(Index(~uint64_t{0})),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_P(LogStoreConformanceTest, ReadEntriesOfEmptyRangeIsEmpty) {
  Write(Entries(1, 3, 1));
  SettleAndCompare();
  ASSERT_OK_AND_ASSIGN(std::vector<raft::Entry> entries,
                       store().ReadEntries(Index(4), Index(4)));
  EXPECT_TRUE(entries.empty());
}

TEST_P(LogStoreConformanceTest, RandomWorkloadMatchesModelAcrossReopens) {
  Rng rng(GetParam().name.size() * 1000 + 17);
  LogWorkloadOptions options;
  // Unconfirmed, so the workload also confirms the store at some point.
  options.identity =
      StoreIdentity{0xfedcba9876543210, NodeId(7), 0x0123456789abcdef, false};
  LogWorkload workload(rng.Fork("workload"), options);
  for (int i = 0; i < 400; ++i) {
    Write(workload.Next(model_));
    if (rng.Chance(1, 4)) SettleAndCompare();
    if (rng.Chance(1, 40)) {
      SettleAndCompare();
      harness_->Reopen();
      SettleAndCompare();
    }
    if (HasFatalFailure()) return;
  }
  SettleAndCompare();
}

// The largest index a store can hold is 2^63 - 1 (SQLite's integers are
// signed). Reading the log up to it asks for [first, 2^63): the exclusive
// bound itself is not a storable value and must not crash the store (the
// Host reads exactly this at start-up).
TEST_P(LogStoreConformanceTest, EntryAtTheLargestIndexReadsBack) {
  // The largest index the Raft core accepts (core/base/types.h); its
  // exclusive end, kIndexMax + 1, is still a SQLite INTEGER.
  constexpr uint64_t kLast = kIndexMax;
  LogWrite write;
  write.snapshot = MakeSnapshot(kLast - 1, 2, "far ahead");
  write.entries.push_back(MakeEntry(kLast, 2, "last"));
  Write(std::move(write));
  SettleAndCompare();
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(std::vector<raft::Entry> entries,
                       store().ReadEntries(Index(kLast), Index(kLast).Next()));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].index(), kLast);
  EXPECT_EQ(entries[0].data(), "last");
  EXPECT_EQ(*store().ReadTerm(Index(kLast)), Term(2));
  SettleAndCompare();
}

// ------------------------------------------------------------ identity

// A cluster id with the top bit set: stores must keep all 64 bits. A store
// recorded before nonces (nonce 0, confirmed).
constexpr StoreIdentity kIdentity{0x9e3779b97f4a7c15, NodeId(3)};
constexpr StoreIdentity kOtherCluster{0x1f2e3d4c5b6a7988, NodeId(3)};
constexpr StoreIdentity kOtherNode{0x9e3779b97f4a7c15, NodeId(4)};
// One store of this build, before and after the cluster confirmed it (a
// nonce with the top bit set, too), and another store of the same node.
constexpr uint64_t kNonce = 0xd1b54a32d192ed03;
constexpr StoreIdentity kUnconfirmed{0x9e3779b97f4a7c15, NodeId(3), kNonce,
                                     /*confirmed=*/false};
constexpr StoreIdentity kConfirmed{0x9e3779b97f4a7c15, NodeId(3), kNonce,
                                   /*confirmed=*/true};
constexpr StoreIdentity kOtherNonce{0x9e3779b97f4a7c15, NodeId(3), kNonce + 1,
                                    /*confirmed=*/false};

LogWrite IdentityOnly(StoreIdentity identity) {
  LogWrite write;
  write.identity = identity;
  return write;
}

TEST_P(LogStoreConformanceTest, NewStoreHasNoIdentity) {
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store().ReadIdentity());
  EXPECT_FALSE(identity.has_value());
  // Raft state alone records no identity.
  Write(Entries(1, 3, 1));
  SettleAndCompare();
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(identity, store().ReadIdentity());
  EXPECT_FALSE(identity.has_value());
}

TEST_P(LogStoreConformanceTest, IdentityWrittenWithAWriteSurvivesReopen) {
  LogWrite write = Entries(1, 3, 2);
  raft::HardState hs;
  hs.set_term(2);
  hs.set_vote(3);
  write.hard_state = hs;
  write.identity = kIdentity;
  Write(std::move(write));
  SettleAndCompare();
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store().ReadIdentity());
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(*identity, kIdentity);
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(identity, store().ReadIdentity());
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(identity->cluster_id, 0x9e3779b97f4a7c15u);
  EXPECT_EQ(identity->node_id, NodeId(3));
  SettleAndCompare();
}

TEST_P(LogStoreConformanceTest, IdentityAloneIsAValidWrite) {
  const LogWrite write = IdentityOnly(kIdentity);
  EXPECT_FALSE(write.empty());
  Write(write);
  SettleAndCompare();  // the callback ran; nothing else changed
  EXPECT_EQ(*store().LastIndex(), Index(0));
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store().ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kIdentity));
  // The same identity again, alone or with Raft state, is allowed.
  Write(IdentityOnly(kIdentity));
  LogWrite more = Entries(1, 2, 1);
  more.identity = kIdentity;
  Write(std::move(more));
  SettleAndCompare();
}

TEST_P(LogStoreConformanceTest, IdentitySurvivesSnapshotAndCompaction) {
  LogWrite first = Entries(1, 10, 1);
  first.identity = kIdentity;
  Write(std::move(first));
  LogWrite keep;  // keeps the suffix after index 6
  keep.snapshot = MakeSnapshot(6, 1, "state at 6");
  keep.compact_to = Index(6);
  Write(std::move(keep));
  SettleAndCompare();
  LogWrite replace;  // a leader's snapshot: the whole log goes
  replace.snapshot = MakeSnapshot(30, 4, "leader's state at 30");
  replace.compact_to = Index(30);
  Write(std::move(replace));
  SettleAndCompare();
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store().ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kIdentity));
  SettleAndCompare();
}

TEST_P(LogStoreConformanceTest, IdentityIsFormattedForErrors) {
  EXPECT_EQ(StoreIdentityString(kIdentity), "cluster 9e3779b97f4a7c15 node 3");
  EXPECT_EQ(StoreIdentityString(StoreIdentity{0x1f, NodeId(12)}),
            "cluster 000000000000001f node 12");
  EXPECT_EQ(StoreIdentityDetail(StoreIdentity{0x1f, NodeId(12), 0xa1, false}),
            "cluster 000000000000001f node 12 nonce 00000000000000a1 (unconfirmed)");
  EXPECT_TRUE(kIdentity == kIdentity);
  EXPECT_TRUE(kIdentity != kOtherCluster);
  EXPECT_TRUE(kIdentity != kOtherNode);
  EXPECT_FALSE((StoreIdentity{0, NodeId(3)}).valid());
  EXPECT_FALSE((StoreIdentity{5, kNoNode}).valid());
}

TEST_P(LogStoreConformanceTest, NonceAndConfirmedReadBack) {
  LogWrite write = Entries(1, 2, 1);
  write.identity = kUnconfirmed;
  Write(std::move(write));
  SettleAndCompare();
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store().ReadIdentity());
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(identity->store_nonce, kNonce);
  EXPECT_FALSE(identity->confirmed);
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(identity, store().ReadIdentity());
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(identity->cluster_id, kUnconfirmed.cluster_id);
  EXPECT_EQ(identity->node_id, kUnconfirmed.node_id);
  EXPECT_EQ(identity->store_nonce, kNonce);
  EXPECT_FALSE(identity->confirmed);
  SettleAndCompare();
}

TEST_P(LogStoreConformanceTest, ConfirmedStoreReadsConfirmedAfterReopen) {
  Write(IdentityOnly(kUnconfirmed));
  SettleAndCompare();
  LogWrite confirm = Entries(1, 3, 1);
  confirm.identity = kConfirmed;
  Write(std::move(confirm));
  SettleAndCompare();
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store().ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kConfirmed));
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(identity, store().ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kConfirmed));
  // A confirmed store goes on writing its confirmed identity.
  LogWrite more = Entries(4, 1, 1);
  more.identity = kConfirmed;
  Write(std::move(more));
  SettleAndCompare();
}

// Each identity is checked against the one queued before it, not only the
// durable one: recording and confirming may be in flight together.
TEST_P(LogStoreConformanceTest, ConfirmingCountsQueuedWrites) {
  Write(IdentityOnly(kUnconfirmed));
  Write(Entries(1, 2, 1));
  Write(IdentityOnly(kConfirmed));
  Write(IdentityOnly(kConfirmed));
  SettleAndCompare();
  harness_->Reopen();
  ASSERT_OK_AND_ASSIGN(std::optional<StoreIdentity> identity,
                       store().ReadIdentity());
  EXPECT_EQ(identity, std::optional<StoreIdentity>(kConfirmed));
}

TEST_P(LogStoreConformanceTest, SameIdentityAgainChangesNothing) {
  LogWrite first = Entries(1, 3, 1);
  first.identity = kUnconfirmed;
  Write(std::move(first));
  SettleAndCompare();
  ASSERT_OK_AND_ASSIGN(const uint64_t unconfirmed, StoreDigest(store()));
  Write(IdentityOnly(kUnconfirmed));
  SettleAndCompare();
  EXPECT_EQ(*StoreDigest(store()), unconfirmed);
  harness_->Reopen();
  EXPECT_EQ(*StoreDigest(store()), unconfirmed);
  // Confirming changes the state (the digest sees it); confirming again,
  // before or after a reopen, does not.
  Write(IdentityOnly(kConfirmed));
  SettleAndCompare();
  ASSERT_OK_AND_ASSIGN(const uint64_t confirmed, StoreDigest(store()));
  EXPECT_NE(confirmed, unconfirmed);
  Write(IdentityOnly(kConfirmed));
  SettleAndCompare();
  EXPECT_EQ(*StoreDigest(store()), confirmed);
  harness_->Reopen();
  Write(IdentityOnly(kConfirmed));
  SettleAndCompare();
  EXPECT_EQ(*StoreDigest(store()), confirmed);
  // The digest tells stores apart by nonce, too.
  LogModel other;
  other.Apply(Entries(1, 3, 1));
  LogModel same = other;
  other.Apply(IdentityOnly(kOtherNonce));
  same.Apply(IdentityOnly(kUnconfirmed));
  EXPECT_EQ(same.Digest(), unconfirmed);
  EXPECT_NE(other.Digest(), unconfirmed);
}

TEST_P(LogStoreConformanceTest, IdentityTransitionsFollowTheContract) {
  EXPECT_TRUE(kUnconfirmed.MayBecome(kUnconfirmed));
  EXPECT_TRUE(kUnconfirmed.MayBecome(kConfirmed));
  EXPECT_TRUE(kConfirmed.MayBecome(kConfirmed));
  EXPECT_FALSE(kConfirmed.MayBecome(kUnconfirmed));
  EXPECT_FALSE(kUnconfirmed.MayBecome(kOtherNonce));
  EXPECT_FALSE(kIdentity.MayBecome(kConfirmed));  // a nonce appears
  EXPECT_TRUE(kUnconfirmed.SameStore(kConfirmed));
  EXPECT_TRUE(kUnconfirmed != kConfirmed);
}

// A store never changes owner: another cluster id or node id CHECK-fails,
// whether the first identity is durable, only queued, or read back from the
// store after a restart.
TEST_P(LogStoreConformanceTest, OtherIdentityIsACallerBugWhenDurable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Write(IdentityOnly(kIdentity));
  SettleAndCompare();
  EXPECT_DEATH(
      {
        store().Write(IdentityOnly(kOtherCluster), [] {});
        harness_->Settle();
      },
      "never changes owner");
  EXPECT_DEATH(
      {
        LogWrite write = Entries(1, 1, 1);
        write.identity = kOtherNode;
        store().Write(std::move(write), [] {});
        harness_->Settle();
      },
      "never changes owner");
}

TEST_P(LogStoreConformanceTest, OtherIdentityIsACallerBugWhenQueued) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        store().Write(IdentityOnly(kIdentity), [] {});
        store().Write(IdentityOnly(kOtherNode), [] {});
        harness_->Settle();
      },
      "never changes owner");
}

TEST_P(LogStoreConformanceTest, OtherIdentityIsACallerBugAfterReopen) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Write(IdentityOnly(kIdentity));
  SettleAndCompare();
  harness_->Reopen();
  EXPECT_DEATH(
      {
        store().Write(IdentityOnly(kOtherCluster), [] {});
        harness_->Settle();
      },
      "never changes owner");
}

// Nor its nonce, and it is never un-confirmed: CHECK-fails whether the
// confirmed identity is durable, only queued, or read back after a restart.
TEST_P(LogStoreConformanceTest, OtherNonceOrUnconfirmingIsACallerBug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        store().Write(IdentityOnly(kUnconfirmed), [] {});
        store().Write(IdentityOnly(kConfirmed), [] {});
        store().Write(IdentityOnly(kUnconfirmed), [] {});
        harness_->Settle();
      },
      "un-confirmed");
  Write(IdentityOnly(kConfirmed));
  SettleAndCompare();
  EXPECT_DEATH(
      {
        store().Write(IdentityOnly(kOtherNonce), [] {});
        harness_->Settle();
      },
      "never changes owner or nonce");
  harness_->Reopen();
  EXPECT_DEATH(
      {
        LogWrite write = Entries(1, 1, 1);
        write.identity = kUnconfirmed;
        store().Write(std::move(write), [] {});
        harness_->Settle();
      },
      "un-confirmed");
}

TEST_P(LogStoreConformanceTest, InvalidIdentityIsACallerBug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        store().Write(IdentityOnly(StoreIdentity{0, NodeId(1)}), [] {});
        harness_->Settle();
      },
      "invalid identity");
  EXPECT_DEATH(
      {
        store().Write(IdentityOnly(StoreIdentity{1, kNoNode}), [] {});
        harness_->Settle();
      },
      "invalid identity");
}

}  // namespace
}  // namespace blixard::testing
