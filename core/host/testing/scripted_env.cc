#include "core/host/testing/scripted_env.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::host::testing {

// ---------------------------------------------------------------- Clock

void ManualClock::Set(MonoMicros to) {
  CHECK_GE(to, now_) << "a monotonic clock never goes backwards";
  now_ = to;
}

void ManualClock::Advance(int64_t delta_us) {
  CHECK_GE(delta_us, 0) << "a monotonic clock never goes backwards";
  now_ += delta_us;
}

// ---------------------------------------------------------------- Timers

ScriptedTimers::ScriptedTimers(ManualClock* clock) : clock_(clock) { CHECK(clock_ != nullptr); }

void ScriptedTimers::ArmAt(TimerId id, MonoMicros deadline, Callback callback) {
  CHECK(callback) << "timer " << id << " armed without a callback";
  CHECK(timers_.size() < kArmedMax || timers_.count(id) > 0)
      << "more than kArmedMax (" << kArmedMax << ") timers armed";
  CHECK_LE(deadline - clock_->now(), kDelayMaxUs) << "timer " << id << " deadline too far";
  // Re-arming replaces the old deadline and callback; the new arm order
  // counts for ties.
  timers_[id] = Armed{deadline, next_sequence_++, std::move(callback)};
}

void ScriptedTimers::ArmAfter(TimerId id, int64_t delay_us, Callback callback) {
  CHECK_GE(delay_us, 0) << "timer " << id;
  CHECK_LE(delay_us, kDelayMaxUs) << "timer " << id;
  ArmAt(id, clock_->now() + delay_us, std::move(callback));
}

bool ScriptedTimers::Disarm(TimerId id) { return timers_.erase(id) > 0; }

bool ScriptedTimers::IsArmed(TimerId id) const { return timers_.count(id) > 0; }

std::optional<MonoMicros> ScriptedTimers::DeadlineOf(TimerId id) const {
  auto it = timers_.find(id);
  if (it == timers_.end()) return std::nullopt;
  return it->second.deadline;
}

std::optional<Timers::TimerId> ScriptedTimers::Next() const {
  std::optional<TimerId> best;
  for (const auto& [id, armed] : timers_) {
    if (!best.has_value()) {
      best = id;
      continue;
    }
    const Armed& b = timers_.at(*best);
    if (armed.deadline < b.deadline ||
        (armed.deadline == b.deadline && armed.sequence < b.sequence)) {
      best = id;
    }
  }
  return best;
}

std::optional<MonoMicros> ScriptedTimers::NextDeadline() const {
  const std::optional<TimerId> next = Next();
  if (!next.has_value()) return std::nullopt;
  return timers_.at(*next).deadline;
}

void ScriptedTimers::Fire(TimerId id) {
  auto it = timers_.find(id);
  CHECK(it != timers_.end());
  if (it->second.deadline > clock_->now()) clock_->Set(it->second.deadline);
  // Disarmed before the callback runs, so the callback may re-arm the id.
  Callback callback = std::move(it->second.callback);
  timers_.erase(it);
  callback();
}

bool ScriptedTimers::FireNext() {
  const std::optional<TimerId> next = Next();
  if (!next.has_value()) return false;
  Fire(*next);
  return true;
}

size_t ScriptedTimers::RunDue() {
  size_t fired = 0;
  for (std::optional<TimerId> next = Next();
       next.has_value() && timers_.at(*next).deadline <= clock_->now(); next = Next()) {
    CHECK_LT(fired, kTimerFiresPerRunMax) << "timers keep firing at the same time";
    Fire(*next);
    ++fired;
  }
  return fired;
}

size_t ScriptedTimers::AdvanceTo(MonoMicros to) {
  CHECK_GE(to, clock_->now()) << "a monotonic clock never goes backwards";
  size_t fired = 0;
  for (std::optional<TimerId> next = Next(); next.has_value() && timers_.at(*next).deadline <= to;
       next = Next()) {
    CHECK_LT(fired, kTimerFiresPerRunMax) << "timers keep firing before " << to;
    Fire(*next);
    ++fired;
  }
  clock_->Set(to);
  return fired;
}

size_t ScriptedTimers::AdvanceBy(int64_t delta_us) {
  CHECK_GE(delta_us, 0);
  return AdvanceTo(clock_->now() + delta_us);
}

// ---------------------------------------------------------------- Network

std::vector<const SentPacket*> ScriptedNetwork::InFlightWhere(
    const PacketPredicate& predicate) const {
  std::vector<const SentPacket*> out;
  for (const SentPacket& sent : in_flight_) {
    if (predicate(sent.packet)) out.push_back(&sent);
  }
  return out;
}

size_t ScriptedNetwork::CountInFlight(const PacketPredicate& predicate) const {
  return static_cast<size_t>(
      std::count_if(in_flight_.begin(), in_flight_.end(),
                    [&](const SentPacket& sent) { return predicate(sent.packet); }));
}

size_t ScriptedNetwork::CountHistory(const PacketPredicate& predicate) const {
  return static_cast<size_t>(
      std::count_if(history_.begin(), history_.end(),
                    [&](const SentPacket& sent) { return predicate(sent.packet); }));
}

bool ScriptedNetwork::Deliver(uint64_t sequence) {
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                         [&](const SentPacket& sent) { return sent.sequence == sequence; });
  if (it == in_flight_.end()) return false;
  Packet packet = std::move(it->packet);
  in_flight_.erase(it);
  Receive(std::move(packet));
  return true;
}

bool ScriptedNetwork::Drop(uint64_t sequence) {
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                         [&](const SentPacket& sent) { return sent.sequence == sequence; });
  if (it == in_flight_.end()) return false;
  in_flight_.erase(it);
  return true;
}

size_t ScriptedNetwork::DeliverWhere(const PacketPredicate& predicate) {
  size_t delivered = 0;
  for (;;) {
    auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                           [&](const SentPacket& sent) { return predicate(sent.packet); });
    if (it == in_flight_.end()) return delivered;
    CHECK_LT(delivered, kDeliveriesPerRunMax) << "the network never settles";
    Packet packet = std::move(it->packet);
    in_flight_.erase(it);
    Receive(std::move(packet));
    ++delivered;
  }
}

size_t ScriptedNetwork::DeliverAll() {
  return DeliverWhere([](const Packet&) { return true; });
}

size_t ScriptedNetwork::DropWhere(const PacketPredicate& predicate) {
  const size_t before = in_flight_.size();
  in_flight_.erase(std::remove_if(in_flight_.begin(), in_flight_.end(),
                                  [&](const SentPacket& sent) { return predicate(sent.packet); }),
                   in_flight_.end());
  return before - in_flight_.size();
}

bool ScriptedNetwork::Inject(Packet packet) { return Receive(std::move(packet)); }

size_t ScriptedNetwork::Queued(NodeId from, NodeId to) const {
  return CountInFlight(
      [&](const Packet& packet) { return packet.from == from && packet.to == to; });
}

void ScriptedNetwork::Attach(NodeId id, ScriptedTransport* transport) {
  CHECK(transports_.count(id) == 0) << "two transports for " << id;
  transports_[id] = transport;
  known_.insert(id);
}

void ScriptedNetwork::Detach(NodeId id) { transports_.erase(id); }

Transport::SendResult ScriptedNetwork::Send(Packet packet, bool bulk) {
  if (known_.count(packet.to) == 0) return Transport::SendResult::kUnreachable;
  if (Queued(packet.from, packet.to) >= Transport::kQueuePacketsMax) {
    return Transport::SendResult::kQueueFull;
  }
  const uint64_t sequence = next_sequence_++;
  history_.push_back(SentPacket{sequence, packet, bulk});
  in_flight_.push_back(SentPacket{sequence, std::move(packet), bulk});
  return Transport::SendResult::kQueued;
}

bool ScriptedNetwork::Receive(Packet&& packet) {
  auto it = transports_.find(packet.to);
  if (it == transports_.end() || !it->second->receiver_) return false;
  // Copy the receiver: it may be replaced while it runs (never today, but
  // a crash from inside a callback must not destroy the running function).
  Transport::Receiver receiver = it->second->receiver_;
  receiver(std::move(packet));
  return true;
}

ScriptedTransport::ScriptedTransport(NodeId self, ScriptedNetwork* network)
    : self_(self), network_(network) {
  CHECK(network_ != nullptr);
  CHECK(!self_.is_none());
  network_->Attach(self_, this);
}

ScriptedTransport::~ScriptedTransport() { network_->Detach(self_); }

void ScriptedTransport::SetReceiver(Receiver receiver) {
  CHECK(!receiver_) << self_ << ": a receiver is already registered";
  CHECK(receiver) << self_ << ": empty receiver";
  receiver_ = std::move(receiver);
}

Transport::SendResult ScriptedTransport::Send(NodeId to, raft::Message message) {
  CHECK(to != self_) << self_ << " sends a raft message to itself";
  Packet packet;
  packet.from = self_;
  packet.to = to;
  packet.kind = Packet::Kind::kRaft;
  packet.raft = std::move(message);
  return network_->Send(std::move(packet), /*bulk=*/false);
}

Transport::SendResult ScriptedTransport::SendBytes(NodeId to, std::string bytes) {
  return SendHostBytes(to, std::move(bytes), /*bulk=*/false);
}

Transport::SendResult ScriptedTransport::SendBulk(NodeId to, std::string bytes) {
  return SendHostBytes(to, std::move(bytes), /*bulk=*/true);
}

Transport::SendResult ScriptedTransport::SendHostBytes(NodeId to, std::string bytes, bool bulk) {
  CHECK(to != self_) << self_ << " sends bytes to itself";
  Packet packet;
  packet.from = self_;
  packet.to = to;
  packet.kind = Packet::Kind::kBytes;
  packet.bytes = std::move(bytes);
  return network_->Send(std::move(packet), bulk);
}

size_t ScriptedTransport::QueuedPackets(NodeId to) const { return network_->Queued(self_, to); }

// ---------------------------------------------------------------- LogStore

ScriptedLogStore::ScriptedLogStore(::blixard::testing::LogModel durable)
    : durable_(std::move(durable)), queued_(durable_) {}

void ScriptedLogStore::Write(LogWrite write, Done done) {
  CHECK(!write.empty()) << "empty LogWrite";
  CHECK(done) << "LogWrite without a callback";
  if (write.identity) {
    CHECK(write.identity->valid())
        << "scripted store: invalid identity " << StoreIdentityString(*write.identity);
    CHECK(!queued_.identity() || queued_.identity()->MayBecome(*write.identity))
        << "scripted store: a store never changes owner or nonce, nor is un-confirmed: holds "
        << StoreIdentityString(*queued_.identity()) << ", write has "
        << StoreIdentityString(*write.identity);
  }
  // CHECKs the LogWrite REQUIRES against every earlier write.
  queued_.Apply(write);
  const size_t record = writes_.size();
  writes_.push_back(RecordedWrite{writes_.size(), std::move(write), false});
  pending_.push_back(Pending{record, std::move(done)});
}

const LogWrite& ScriptedLogStore::PendingWrite(size_t i) const {
  CHECK_LT(i, pending_.size());
  return writes_[pending_[i].record].write;
}

void ScriptedLogStore::CompleteNext() {
  CHECK(!pending_.empty()) << "no write to complete";
  Pending next = std::move(pending_.front());
  pending_.pop_front();
  RecordedWrite& record = writes_[next.record];
  durable_.Apply(record.write);
  record.completed = true;
  // The callback may queue more writes; `next` is already off the queue.
  next.done();
}

size_t ScriptedLogStore::CompleteAll() {
  size_t completed = 0;
  while (!pending_.empty()) {
    CHECK_LT(completed, kCompletionsPerRunMax) << "writes never stop";
    CompleteNext();
    ++completed;
  }
  return completed;
}

void ScriptedLogStore::Crash() {
  pending_.clear();
  queued_ = durable_;
}

void ScriptedLogStore::Wipe() {
  CHECK(pending_.empty()) << "wipe with writes pending: crash first";
  durable_ = ::blixard::testing::LogModel{};
  queued_ = durable_;
}

absl::StatusOr<raft::HardState> ScriptedLogStore::ReadHardState() {
  if (!read_error_.ok()) return read_error_;
  return durable_.hard_state();
}

absl::StatusOr<std::optional<raft::Snapshot>> ScriptedLogStore::ReadSnapshot() {
  if (!read_error_.ok()) return read_error_;
  return durable_.snapshot();
}

absl::StatusOr<std::optional<StoreIdentity>> ScriptedLogStore::ReadIdentity() {
  if (!read_error_.ok()) return read_error_;
  return durable_.identity();
}

absl::StatusOr<Index> ScriptedLogStore::FirstIndex() {
  if (!read_error_.ok()) return read_error_;
  return durable_.FirstIndex();
}

absl::StatusOr<Index> ScriptedLogStore::LastIndex() {
  if (!read_error_.ok()) return read_error_;
  return durable_.LastIndex();
}

absl::StatusOr<std::vector<raft::Entry>> ScriptedLogStore::ReadEntries(Index lo, Index hi) {
  if (!read_error_.ok()) return read_error_;
  // Like the real stores (the conformance suite pins it), a range outside
  // the log is an error the caller can see, not a crash.
  if (lo < durable_.FirstIndex() || hi < lo || hi > durable_.LastIndex().Next()) {
    return absl::OutOfRangeError(absl::StrCat(
        "scripted store: entries [", lo.value(), ", ", hi.value(), ") outside [",
        durable_.FirstIndex().value(), ", ", durable_.LastIndex().Next().value(), ")"));
  }
  const std::vector<raft::Entry>& entries = durable_.entries();
  const size_t begin = lo.Since(durable_.FirstIndex());
  const size_t end = hi.Since(durable_.FirstIndex());
  return std::vector<raft::Entry>(entries.begin() + static_cast<ptrdiff_t>(begin),
                                  entries.begin() + static_cast<ptrdiff_t>(end));
}

absl::StatusOr<Term> ScriptedLogStore::ReadTerm(Index index) {
  if (!read_error_.ok()) return read_error_;
  if (index < durable_.snapshot_index() || index > durable_.LastIndex()) {
    return absl::OutOfRangeError(absl::StrCat("scripted store: term of index ", index.value(),
                                              " outside [", durable_.snapshot_index().value(), ", ",
                                              durable_.LastIndex().value(), "]"));
  }
  return durable_.TermAt(index);
}

// ---------------------------------------------------------------- Executor

void ScriptedExecutor::SetCallback(Callback callback) {
  CHECK(!callback_) << "an executor callback is already registered";
  CHECK(callback);
  callback_ = std::move(callback);
}

absl::Status ScriptedExecutor::Start(const WorkSpec& spec) {
  absl::Status status;
  if (spec.id.empty() || spec.command.empty() || spec.timeout_us < 0) {
    status = absl::InvalidArgumentError(
        absl::StrCat("scripted executor: ", WorkKindName(spec.kind), " '", spec.id,
                     "' needs an id, a command and a timeout >= 0"));
  } else if (running_.count(Key(spec.kind, spec.id)) > 0) {
    status = absl::AlreadyExistsError(absl::StrCat("scripted executor: ", WorkKindName(spec.kind),
                                                   " '", spec.id, "' is running"));
  } else if (running_.size() >= kRunningMax) {
    status = absl::ResourceExhaustedError("scripted executor: kRunningMax reached");
  } else if (refuse_ > 0) {
    --refuse_;
    status = refuse_status_;
  }
  calls_.push_back(Call{Call::Type::kStart, spec, status.ok()});
  if (status.ok()) running_[Key(spec.kind, spec.id)] = Work{};
  return status;
}

bool ScriptedExecutor::Stop(WorkKind kind, absl::string_view id) {
  WorkSpec spec;
  spec.kind = kind;
  spec.id = std::string(id);
  auto it = running_.find(Key(kind, spec.id));
  const bool accepted = it != running_.end() && !it->second.stopping;
  if (accepted) it->second.stopping = true;
  calls_.push_back(Call{Call::Type::kStop, std::move(spec), accepted});
  return accepted;
}

std::vector<std::string> ScriptedExecutor::Running(WorkKind kind) const {
  std::vector<std::string> ids;
  for (const auto& [key, work] : running_) {
    if (key.first == kind) ids.push_back(key.second);
  }
  return ids;  // sorted: the map orders by (kind, id)
}

void ScriptedExecutor::Emit(const WorkEvent& event) {
  CHECK(callback_) << "no executor callback registered";
  auto it = running_.find(Key(event.kind, event.id));
  CHECK(it != running_.end()) << WorkKindName(event.kind) << " '" << event.id << "' is not running";
  CHECK_LE(event.output_tail.size(), kOutputTailBytesMax);
  if (event.state == WorkEvent::State::kRunning) {
    CHECK(!it->second.up) << "kRunning reported twice for '" << event.id << "'";
    CHECK(event.reason == WorkEvent::Reason::kNone);
    it->second.up = true;
  } else {
    CHECK(event.reason != WorkEvent::Reason::kNone) << "an exit needs a reason";
    running_.erase(it);
  }
  // Copy: the Host may re-register nothing, but keep the callback alive
  // while it runs whatever it does.
  Callback callback = callback_;
  callback(event);
}

void ScriptedExecutor::EmitRunning(WorkKind kind, const std::string& id) {
  WorkEvent event;
  event.kind = kind;
  event.id = id;
  event.state = WorkEvent::State::kRunning;
  Emit(event);
}

void ScriptedExecutor::EmitExit(WorkKind kind, const std::string& id, WorkEvent::Reason reason,
                                int32_t exit_code, std::string output_tail, int64_t duration_us) {
  WorkEvent event;
  event.kind = kind;
  event.id = id;
  event.state = WorkEvent::State::kExited;
  event.reason = reason;
  event.exit_code = exit_code;
  event.output_tail = std::move(output_tail);
  event.duration_us = duration_us;
  Emit(event);
}

void ScriptedExecutor::RefuseStarts(size_t count, absl::Status status) {
  CHECK(!status.ok()) << "a refusal needs an error";
  refuse_ = count;
  refuse_status_ = std::move(status);
}

size_t ScriptedExecutor::StartsOf(WorkKind kind, absl::string_view id) const {
  return static_cast<size_t>(std::count_if(calls_.begin(), calls_.end(), [&](const Call& call) {
    return call.type == Call::Type::kStart && call.accepted && call.spec.kind == kind &&
           call.spec.id == id;
  }));
}

size_t ScriptedExecutor::StopsOf(WorkKind kind, absl::string_view id) const {
  return static_cast<size_t>(std::count_if(calls_.begin(), calls_.end(), [&](const Call& call) {
    return call.type == Call::Type::kStop && call.spec.kind == kind && call.spec.id == id;
  }));
}

bool ScriptedExecutor::IsRunning(WorkKind kind, absl::string_view id) const {
  return running_.count(Key(kind, std::string(id))) > 0;
}

void ScriptedExecutor::Crash() {
  callback_ = nullptr;
  running_.clear();
}

// ---------------------------------------------------------------- Env

ScriptedEnv::ScriptedEnv(NodeId id, ScriptedNetwork* network, MonoMicros start)
    : clock_(start), timers_(&clock_), transport_(id, network) {}

Env ScriptedEnv::env() {
  Env env;
  env.clock = &clock_;
  env.timers = &timers_;
  env.transport = &transport_;
  env.log_store = &store_;
  env.executor = &executor_;
  return env;
}

void ScriptedEnv::Crash() {
  timers_.DisarmAll();
  transport_.ClearReceiver();
  executor_.Crash();
  store_.Crash();
}

}  // namespace blixard::host::testing
