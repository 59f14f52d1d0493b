#include "sim/sim_disk.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/coverage_mark.h"

namespace blixard::sim {
namespace {

void PutU64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

void PutBytes(std::string& out, const std::string& bytes) {
  PutU64(out, bytes.size());
  out += bytes;
}

uint64_t EntryChecksum(const raft::Entry& entry) {
  std::string bytes;
  PutU64(bytes, entry.index());
  PutU64(bytes, entry.term());
  PutU64(bytes, static_cast<uint64_t>(entry.type()));
  bytes += entry.data();
  return StableHash64(bytes);
}

}  // namespace

std::string SimDiskRecordBytes(const LogWrite& write) {
  std::string bytes;
  PutBytes(bytes, write.snapshot ? write.snapshot->SerializeAsString() : "");
  PutU64(bytes, write.entries.size());
  for (const raft::Entry& entry : write.entries) {
    PutBytes(bytes, entry.SerializeAsString());
  }
  PutBytes(bytes,
           write.hard_state ? write.hard_state->SerializeAsString() : "");
  PutU64(bytes, write.compact_to ? write.compact_to->value() + 1 : 0);
  // Only when present, so a write without an identity keeps the exact bytes
  // (and so the tear points, and every simulation trace) it had before
  // stores recorded identities.
  if (write.identity) {
    PutU64(bytes, write.identity->cluster_id);
    PutU64(bytes, write.identity->node_id.value());
    PutU64(bytes, write.identity->store_nonce);
    PutU64(bytes, write.identity->confirmed ? 1 : 0);
  }
  return bytes;
}

SimDisk::SimDisk(SimDiskOptions options)
    : options_(std::move(options)),
      latency_rng_(Rng(options_.seed).Fork("latency")),
      write_error_rng_(Rng(options_.seed).Fork("write_errors")),
      read_error_rng_(Rng(options_.seed).Fork("read_errors")),
      tear_rng_(Rng(options_.seed).Fork("tear")),
      alive_(std::make_shared<SimDisk*>(this)) {
  CHECK(options_.schedule != nullptr) << "SimDisk needs a schedule hook";
  CHECK_LE(options_.write_latency_us_min, options_.write_latency_us_max);
  CHECK_LE(options_.read_error_per_million, kSimDiskPerMillion);
  CHECK_LE(options_.write_error_per_million, kSimDiskPerMillion);
}

SimDisk::~SimDisk() = default;  // alive_ goes: pending events become no-ops

void SimDisk::Write(LogWrite write, Done done) {
  CHECK(!write.empty()) << "empty LogWrite";
  CHECK(done != nullptr) << "LogWrite without a callback";
  CHECK_LT(pending_.size(), kSimDiskPendingWritesMax) << "disk queue overflow";
  for (size_t i = 1; i < write.entries.size(); ++i) {
    CHECK_EQ(write.entries[i].index(), write.entries[i - 1].index() + 1)
        << "entries in one write must be consecutive";
    CHECK_GE(write.entries[i].term(), write.entries[i - 1].term())
        << "entry terms must not decrease";
  }
  // A restarted node writes only after recovery; in report mode a torn
  // record means it must not have started at all.
  CHECK_OK(Recover());
  if (write.identity) {
    CHECK(write.identity->valid())
        << "sim disk: invalid identity " << StoreIdentityString(*write.identity);
    const std::optional<StoreIdentity> held = QueuedIdentity();
    CHECK(!held || held->MayBecome(*write.identity))
        << "sim disk: a store never changes owner or nonce, nor is "
           "un-confirmed: it holds "
        << StoreIdentityDetail(*held) << ", the write says "
        << StoreIdentityDetail(*write.identity);
  }
  const uint64_t seq = next_seq_++;
  pending_.push_back(PendingWrite{seq, std::move(write), std::move(done),
                                  /*landed=*/false});
  const uint64_t delay_us = latency_rng_.Range(options_.write_latency_us_min,
                                               options_.write_latency_us_max);
  // The event may outlive this disk (a node removed from the world): it
  // holds only a weak reference and does nothing once the disk is gone.
  options_.schedule(
      delay_us, [alive = std::weak_ptr<SimDisk*>(alive_), epoch = epoch_, seq] {
        if (std::shared_ptr<SimDisk*> self = alive.lock()) {
          (*self)->Land(epoch, seq);
        }
      });
}

void SimDisk::Land(uint64_t epoch, uint64_t seq) {
  if (epoch != epoch_ || failed_) return;  // lost in a crash, or disk dead
  CHECK(!pending_.empty());
  CHECK_GE(seq, pending_.front().seq);
  const uint64_t position = seq - pending_.front().seq;
  CHECK_LT(position, pending_.size());
  PendingWrite& landing = pending_[position];
  CHECK_EQ(landing.seq, seq);
  CHECK(!landing.landed);
  if (write_error_rng_.Chance(options_.write_error_per_million,
                              kSimDiskPerMillion)) {
    failed_ = true;
    if (options_.on_write_error) {
      options_.on_write_error();
      return;
    }
    CHECK(false) << "sim disk: injected write error (write " << seq
                 << "); a failed durable write is fatal";
  }
  landing.landed = true;
  // FIFO durability: complete the landed prefix, oldest first. A callback
  // may queue more writes (push_back), which never disturbs the front.
  while (!pending_.empty() && pending_.front().landed && !failed_) {
    PendingWrite front = std::move(pending_.front());
    pending_.pop_front();
    Apply(std::move(front.write));
    ++completed_writes_;
    const uint64_t epoch_before = epoch_;
    front.done();
    if (epoch_ != epoch_before) return;  // the callback crashed the disk
  }
}

void SimDisk::Apply(LogWrite&& write) {
  if (write.snapshot) {
    const raft::Snapshot& snapshot = *write.snapshot;
    const uint64_t index = snapshot.metadata().index();
    const uint64_t term = snapshot.metadata().term();
    CHECK_GT(index, 0u) << "a snapshot at index 0";
    CHECK_GE(index, snapshot_index().value())
        << "a snapshot older than the stored one";
    // Raft Figure 13, steps 6-7 (as SqliteLogStore).
    bool keep_suffix = false;
    if (index == snapshot_index().value()) {
      keep_suffix = snapshot_ && snapshot_->metadata().term() == term;
    } else if (index <= DurableLastIndex().value()) {
      keep_suffix =
          entries_[Index(index).Since(DurableFirstIndex())].entry.term() ==
          term;
    }
    if (keep_suffix) {
      entries_.erase(entries_.begin(),
                     entries_.begin() +
                         static_cast<std::ptrdiff_t>(
                             Index(index).Next().Since(DurableFirstIndex())));
    } else {
      entries_.clear();
    }
    snapshot_ = std::move(*write.snapshot);
  }
  if (!write.entries.empty()) {
    const Index first(write.entries.front().index());
    CHECK_GT(first, snapshot_index()) << "entries at or below the snapshot";
    CHECK_LE(first, DurableLastIndex().Next()) << "a gap in the log";
    entries_.resize(first.Since(DurableFirstIndex()));
    for (raft::Entry& entry : write.entries) {
      const uint64_t checksum = EntryChecksum(entry);
      entries_.push_back(StoredEntry{std::move(entry), checksum});
    }
  }
  if (write.hard_state) hard_state_ = *write.hard_state;
  if (write.identity) {
    // Write() checked this against the queue; a torn record recovered after
    // a crash was checked when it was queued, against the same history.
    CHECK(!identity_ || identity_->MayBecome(*write.identity))
        << "sim disk: a store never changes owner or nonce, nor is "
           "un-confirmed: identity changes from "
        << StoreIdentityDetail(*identity_) << " to "
        << StoreIdentityDetail(*write.identity);
    identity_ = *write.identity;
  }
  if (write.compact_to) {
    // A snapshot already dropped every entry at or below its index.
    CHECK_LE(*write.compact_to, snapshot_index())
        << "compaction past the stored snapshot";
  }
  CHECK_LE(hard_state_.commit(), DurableLastIndex().value())
      << "commit index beyond the log";
  if (kExpensiveChecks) CheckInvariants();
}

void SimDisk::Crash(bool tear) {
  ++epoch_;
  failed_ = false;
  if (tear && !pending_.empty()) {
    const LogWrite& write = pending_.front().write;
    std::string bytes = SimDiskRecordBytes(write);
    const uint64_t checksum = StableHash64(bytes);
    // A quarter of the time the record made it whole (the write had landed
    // but was not yet acknowledged); otherwise it is cut anywhere.
    if (!tear_rng_.Chance(1, 4)) {
      bytes.resize(tear_rng_.Uniform(bytes.size()));
    }
    torn_ = TornRecord{write, std::move(bytes), checksum};
  }
  // Unsynced writes are gone; their callbacks never run.
  pending_.clear();
  CheckInvariants();
}

absl::Status SimDisk::Recover() {
  if (!torn_) return absl::OkStatus();
  if (StableHash64(torn_->bytes) == torn_->checksum) {
    // The whole record reached the disk before the power went.
    Apply(std::move(torn_->write));
    torn_.reset();
    return absl::OkStatus();
  }
  // The last write before the power went is torn: its checksum fails.
  COVERAGE_MARK(torn_write_on_restart);
  if (options_.report_torn_writes) {
    const uint64_t index = !torn_->write.entries.empty()
                               ? torn_->write.entries.front().index()
                               : DurableLastIndex().Next().value();
    return absl::DataLossError(absl::StrCat(
        "sim disk: torn write at index ", index, " (", torn_->bytes.size(),
        " bytes of the record survive; its checksum fails)"));
  }
  torn_.reset();  // dropped: it was never acknowledged
  return absl::OkStatus();
}

absl::Status SimDisk::ReadFault() {
  if (read_error_rng_.Chance(options_.read_error_per_million,
                             kSimDiskPerMillion)) {
    return absl::UnavailableError("sim disk: injected read error");
  }
  return Recover();
}

Index SimDisk::snapshot_index() const {
  return snapshot_ ? Index(snapshot_->metadata().index()) : Index(0);
}

std::optional<StoreIdentity> SimDisk::QueuedIdentity() const {
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    if (it->write.identity) return it->write.identity;
  }
  return identity_;
}

Index SimDisk::DurableFirstIndex() const { return snapshot_index().Next(); }

Index SimDisk::DurableLastIndex() const {
  return entries_.empty() ? snapshot_index()
                          : Index(entries_.back().entry.index());
}

absl::StatusOr<raft::HardState> SimDisk::ReadHardState() {
  if (absl::Status fault = ReadFault(); !fault.ok()) return fault;
  return hard_state_;
}

absl::StatusOr<std::optional<raft::Snapshot>> SimDisk::ReadSnapshot() {
  if (absl::Status fault = ReadFault(); !fault.ok()) return fault;
  return snapshot_;
}

absl::StatusOr<Index> SimDisk::FirstIndex() {
  if (absl::Status fault = ReadFault(); !fault.ok()) return fault;
  return DurableFirstIndex();
}

absl::StatusOr<Index> SimDisk::LastIndex() {
  if (absl::Status fault = ReadFault(); !fault.ok()) return fault;
  return DurableLastIndex();
}

absl::StatusOr<std::vector<raft::Entry>> SimDisk::ReadEntries(Index lo,
                                                              Index hi) {
  if (absl::Status fault = ReadFault(); !fault.ok()) return fault;
  CHECK_LE(lo, hi);
  std::vector<raft::Entry> out;
  if (lo == hi) return out;
  if (lo < DurableFirstIndex() || hi > DurableLastIndex().Next()) {
    return absl::OutOfRangeError(
        absl::StrCat("sim disk: entries [", lo.value(), ", ", hi.value(),
                     ") outside the log [", DurableFirstIndex().value(), ", ",
                     DurableLastIndex().value(), "]"));
  }
  out.reserve(hi.Since(lo));
  for (Index i = lo; i < hi; i = i.Next()) {
    const StoredEntry& stored = entries_[i.Since(DurableFirstIndex())];
    if (EntryChecksum(stored.entry) != stored.checksum) {
      return absl::DataLossError(absl::StrCat(
          "sim disk: entry at index ", i.value(), " fails its checksum"));
    }
    out.push_back(stored.entry);
  }
  return out;
}

absl::StatusOr<Term> SimDisk::ReadTerm(Index index) {
  if (absl::Status fault = ReadFault(); !fault.ok()) return fault;
  if (index == snapshot_index()) {
    return snapshot_ ? Term(snapshot_->metadata().term()) : Term(0);
  }
  if (index < DurableFirstIndex() || index > DurableLastIndex()) {
    return absl::OutOfRangeError(
        absl::StrCat("sim disk: no term for index ", index.value()));
  }
  const StoredEntry& stored = entries_[index.Since(DurableFirstIndex())];
  if (EntryChecksum(stored.entry) != stored.checksum) {
    return absl::DataLossError(absl::StrCat(
        "sim disk: entry at index ", index.value(), " fails its checksum"));
  }
  return Term(stored.entry.term());
}

absl::StatusOr<std::optional<StoreIdentity>> SimDisk::ReadIdentity() {
  if (absl::Status fault = ReadFault(); !fault.ok()) return fault;
  return identity_;
}

void SimDisk::CorruptEntryForTesting(Index index) {
  CHECK_GE(index, DurableFirstIndex());
  CHECK_LE(index, DurableLastIndex());
  raft::Entry& entry = entries_[index.Since(DurableFirstIndex())].entry;
  CHECK(!entry.data().empty());
  (*entry.mutable_data())[0] = static_cast<char>(entry.data()[0] ^ 0x01);
}

void SimDisk::CheckInvariants() const {
  for (size_t i = 0; i < entries_.size(); ++i) {
    CHECK_EQ(entries_[i].entry.index(), snapshot_index().value() + 1 + i)
        << "durable log not contiguous after the snapshot";
    if (i > 0) {
      CHECK_GE(entries_[i].entry.term(), entries_[i - 1].entry.term());
    }
  }
  if (!entries_.empty() && snapshot_) {
    CHECK_GE(entries_.front().entry.term(), snapshot_->metadata().term());
  }
  for (size_t i = 0; i < pending_.size(); ++i) {
    CHECK_EQ(pending_[i].seq, pending_.front().seq + i);
  }
  CHECK_LE(pending_.size(), kSimDiskPendingWritesMax);
  CHECK_LE(completed_writes_ + pending_.size(), next_seq_);
  if (identity_) CHECK(identity_->valid());
}

void SimDisk::SetWriteErrorPerMillion(uint64_t per_million) {
  CHECK_LE(per_million, kSimDiskPerMillion);
  options_.write_error_per_million = per_million;
}

void SimDisk::SetReadErrorPerMillion(uint64_t per_million) {
  CHECK_LE(per_million, kSimDiskPerMillion);
  options_.read_error_per_million = per_million;
}

}  // namespace blixard::sim
