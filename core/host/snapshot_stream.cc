#include "core/host/snapshot_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::host {

SnapshotSender::SnapshotSender(SnapshotStreamOptions options, uint64_t first_stream_id)
    : options_(options), next_stream_id_(std::max<uint64_t>(first_stream_id, 1)) {
  CHECK(options_.chunk_bytes >= 1 && options_.chunk_bytes <= kSnapshotChunkBytesMax);
  CHECK_GE(options_.window_chunks, 1u);
  CHECK_GT(options_.retransmit_us, 0);
  CHECK_GT(options_.chunk_timeout_us, options_.retransmit_us);
}

bool SnapshotSender::Start(raft::Message message, MonoMicros now, std::vector<StreamOut>* out) {
  CHECK_EQ(message.type(), raft::MSG_SNAPSHOT);
  const NodeId to(message.to());
  if (message.snapshot().data().size() > kSnapshotBytesMax) return false;
  if (streams_.count(to) == 0 && streams_.size() >= kSnapshotStreamsMax) return false;
  Stream stream;
  stream.id = next_stream_id_++;
  // The message's own copy of the data becomes the stream's: no other copy.
  stream.data = std::move(*message.mutable_snapshot()->mutable_data());
  message.mutable_snapshot()->clear_data();
  stream.header = std::move(message);
  stream.last_progress = now;
  Stream& placed = streams_[to] = std::move(stream);
  SendWindow(to, placed, 0, now, out);
  return true;
}

StreamOut SnapshotSender::Chunk(NodeId to, const Stream& stream, uint64_t offset) const {
  const uint64_t n = std::min<uint64_t>(options_.chunk_bytes, stream.data.size() - offset);
  StreamOut out;
  out.to = to;
  SnapshotChunk* chunk = out.message.mutable_snapshot_chunk();
  chunk->set_stream_id(stream.id);
  chunk->set_offset(offset);
  chunk->set_total_bytes(stream.data.size());
  chunk->set_data(stream.data.substr(offset, n));
  *chunk->mutable_header() = stream.header;
  return out;
}

void SnapshotSender::SendWindow(NodeId to, Stream& stream, uint64_t from, MonoMicros now,
                                std::vector<StreamOut>* out) const {
  const uint64_t size = stream.data.size();
  const uint64_t window_end = stream.acked + options_.window_chunks * options_.chunk_bytes;
  if (size == 0) {
    out->push_back(Chunk(to, stream, 0));  // an empty snapshot is one empty chunk
  }
  uint64_t offset = from;
  for (; offset < size && offset < window_end; offset += options_.chunk_bytes) {
    out->push_back(Chunk(to, stream, offset));
  }
  stream.sent = std::max(stream.sent, std::min(offset, size));
  stream.last_send = now;
}

SnapshotSender::Verdict SnapshotSender::OnAck(NodeId from, const SnapshotAck& ack,
                                              MonoMicros now, std::vector<StreamOut>* out) {
  auto it = streams_.find(from);
  if (it == streams_.end() || it->second.id != ack.stream_id()) return Verdict::kPending;
  Stream& stream = it->second;
  if (ack.received_bytes() > stream.data.size()) return Verdict::kPending;  // not ours to trust
  if (ack.done()) {
    streams_.erase(it);
    return ack.installed() ? Verdict::kSucceeded : Verdict::kFailed;
  }
  if (ack.received_bytes() > stream.acked) {
    stream.acked = ack.received_bytes();
    stream.last_progress = now;
    stream.stalled_acks = 0;
    stream.all_held = stream.acked == stream.data.size();  // > 0: received > 0
    SendWindow(from, stream, std::max(stream.sent, stream.acked), now, out);
  } else if (ack.received_bytes() == stream.acked && stream.sent > stream.acked &&
             ++stream.stalled_acks == 2) {
    // Chunks after a gap keep arriving: the one at the gap was lost.
    stream.stalled_acks = 0;
    out->push_back(Chunk(from, stream, stream.acked));
  }
  return Verdict::kPending;
}

std::vector<NodeId> SnapshotSender::Tick(MonoMicros now, std::vector<StreamOut>* out) {
  std::vector<NodeId> failed;
  for (auto it = streams_.begin(); it != streams_.end();) {
    Stream& stream = it->second;
    if (now - stream.last_progress >= options_.chunk_timeout_us) {
      failed.push_back(it->first);
      it = streams_.erase(it);
      continue;
    }
    if (now - stream.last_send >= options_.retransmit_us) {
      if (stream.all_held) {
        // The final ack is late (the receiver is still making it durable)
        // or lost: the last chunk again asks for it again.
        const uint64_t size = stream.data.size();
        out->push_back(Chunk(it->first, stream, (size - 1) / options_.chunk_bytes *
                                                    options_.chunk_bytes));
        stream.last_send = now;
      } else {
        SendWindow(it->first, stream, stream.acked, now, out);  // go back to what is held
      }
    }
    ++it;
  }
  return failed;
}

void SnapshotSender::CheckInvariants() const {
  CHECK_LE(streams_.size(), kSnapshotStreamsMax);
  for (const auto& [to, stream] : streams_) {
    CHECK_LE(stream.acked, stream.data.size());
    CHECK_LE(stream.sent, stream.data.size());
    CHECK(!stream.all_held || (stream.acked == stream.data.size() && stream.acked > 0));
    CHECK(stream.header.snapshot().data().empty());
    CHECK_EQ(NodeId(stream.header.to()), to);
  }
}

// ---------------------------------------------------------------------------

StreamOut SnapshotReceiver::Ack(NodeId to, uint64_t stream_id, uint64_t received) {
  StreamOut out;
  out.to = to;
  SnapshotAck* ack = out.message.mutable_snapshot_ack();
  ack->set_stream_id(stream_id);
  ack->set_received_bytes(received);
  return out;
}

StreamOut SnapshotReceiver::Final(NodeId to, uint64_t stream_id, uint64_t received,
                                  bool installed, std::string error) {
  StreamOut out = Ack(to, stream_id, received);
  out.message.mutable_snapshot_ack()->set_done(true);
  out.message.mutable_snapshot_ack()->set_installed(installed);
  out.message.mutable_snapshot_ack()->set_error(std::move(error));
  return out;
}

std::optional<raft::Message> SnapshotReceiver::OnChunk(NodeId self, NodeId from,
                                                       const SnapshotChunk& chunk,
                                                       MonoMicros now,
                                                       std::vector<StreamOut>* out) {
  const raft::Message& header = chunk.header();
  std::string bad;
  if (chunk.stream_id() == 0) {
    bad = "stream id 0";
  } else if (header.type() != raft::MSG_SNAPSHOT || !header.has_snapshot()) {
    bad = "header is not a MSG_SNAPSHOT";
  } else if (NodeId(header.from()) != from || NodeId(header.to()) != self) {
    bad = absl::StrCat("header says from ", header.from(), " to ", header.to());
  } else if (!header.snapshot().data().empty()) {
    bad = "header carries snapshot data";
  } else if (chunk.total_bytes() > kSnapshotBytesMax) {
    bad = absl::StrCat(chunk.total_bytes(), " bytes exceed kSnapshotBytesMax");
  } else if (chunk.data().size() > kSnapshotChunkBytesMax) {
    bad = absl::StrCat("a chunk of ", chunk.data().size(), " bytes exceeds kSnapshotChunkBytesMax");
  } else if (chunk.offset() > chunk.total_bytes() ||
             chunk.data().size() > chunk.total_bytes() - chunk.offset()) {
    bad = absl::StrCat("chunk [", chunk.offset(), ", +", chunk.data().size(),
                       ") beyond the snapshot's ", chunk.total_bytes(), " bytes");
  }
  if (!bad.empty()) {
    out->push_back(Final(from, chunk.stream_id(), 0, false, "refused: " + bad));
    return std::nullopt;
  }
  auto it = streams_.find(from);
  if (it == streams_.end() || it->second.id != chunk.stream_id()) {
    // A new stream from this sender replaces its old one. Its first chunk
    // to arrive need not be the one at offset 0 (reordering); one whose
    // start this receiver lost (it restarted) stalls, and its sender's
    // timeout makes Raft send the snapshot again, on a new stream.
    Stream fresh;
    fresh.id = chunk.stream_id();
    fresh.total = chunk.total_bytes();
    it = streams_.insert_or_assign(from, std::move(fresh)).first;
  }
  Stream& stream = it->second;
  stream.last_chunk = now;
  if (stream.finished) {
    out->push_back(Final(from, stream.id, stream.total, stream.installed,
                         stream.installed ? "" : "snapshot not used"));
    return std::nullopt;
  }
  if (stream.complete) {
    out->push_back(Ack(from, stream.id, stream.total));
    return std::nullopt;
  }
  if (chunk.total_bytes() != stream.total) {
    out->push_back(Final(from, stream.id, 0, false, "refused: the snapshot's size changed"));
    streams_.erase(it);
    return std::nullopt;
  }
  if (chunk.offset() > stream.received) {
    // Past a gap: kept (within bounds) until the gap fills.
    if (stream.ahead.count(chunk.offset()) == 0 &&
        stream.ahead_bytes + chunk.data().size() <= kSnapshotAheadBytesMax) {
      stream.ahead_bytes += chunk.data().size();
      stream.ahead.emplace(chunk.offset(), chunk.data());
    }
    out->push_back(Ack(from, stream.id, stream.received));
    return std::nullopt;
  }
  if (chunk.offset() < stream.received) {
    out->push_back(Ack(from, stream.id, stream.received));  // a duplicate
    return std::nullopt;
  }
  stream.data.append(chunk.data());
  stream.received += chunk.data().size();
  while (!stream.ahead.empty() && stream.ahead.begin()->first <= stream.received) {
    auto next = stream.ahead.begin();
    if (next->first == stream.received) {
      stream.data.append(next->second);
      stream.received += next->second.size();
    }
    stream.ahead_bytes -= next->second.size();
    stream.ahead.erase(next);
  }
  out->push_back(Ack(from, stream.id, stream.received));
  if (stream.received < stream.total) return std::nullopt;
  stream.complete = true;
  stream.ahead.clear();
  stream.ahead_bytes = 0;
  stream.index = Index(header.snapshot().metadata().index());
  raft::Message message = header;
  *message.mutable_snapshot()->mutable_data() = std::move(stream.data);
  stream.data = std::string();
  return message;
}

void SnapshotReceiver::OnStepped(NodeId from, bool queued, std::vector<StreamOut>* out) {
  auto it = streams_.find(from);
  CHECK(it != streams_.end() && it->second.complete && !it->second.finished);
  Stream& stream = it->second;
  if (queued) {
    stream.installing = true;
    return;
  }
  stream.finished = true;
  out->push_back(Final(from, stream.id, stream.total, false,
                       "snapshot not used: stale term, or the log already covers it"));
}

void SnapshotReceiver::OnDurable(Index index, std::vector<StreamOut>* out) {
  for (auto& [from, stream] : streams_) {
    if (!stream.installing || stream.index > index) continue;
    stream.installing = false;
    stream.finished = true;
    stream.installed = true;
    out->push_back(Final(from, stream.id, stream.total, true, ""));
  }
}

void SnapshotReceiver::Expire(MonoMicros now, int64_t idle_us) {
  for (auto it = streams_.begin(); it != streams_.end();) {
    if (!it->second.installing && now - it->second.last_chunk > idle_us) {
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
}

void SnapshotReceiver::CheckInvariants() const {
  for (const auto& [from, stream] : streams_) {
    CHECK_LE(stream.received, stream.total);
    CHECK_LE(stream.total, kSnapshotBytesMax);
    CHECK(!stream.complete || stream.received == stream.total);
    CHECK(stream.complete || stream.data.size() == stream.received);
    CHECK(!stream.installing || (stream.complete && !stream.finished));
    CHECK(!stream.installed || stream.finished);
    uint64_t ahead = 0;
    for (const auto& [offset, data] : stream.ahead) {
      CHECK_GT(offset, stream.received);
      CHECK_LE(offset + data.size(), stream.total);
      ahead += data.size();
    }
    CHECK_EQ(ahead, stream.ahead_bytes);
    CHECK_LE(stream.ahead_bytes, kSnapshotAheadBytesMax);
  }
}

}  // namespace blixard::host
