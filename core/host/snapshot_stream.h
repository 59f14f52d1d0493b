// Snapshot streaming between Hosts. A leader's MSG_SNAPSHOT never travels
// as one message: the sender cuts the snapshot's data into chunks (at most
// kSnapshotChunkBytesMax each) sent as Host bytes (SnapshotChunk), a window
// of them in flight, and the receiver acknowledges what it holds
// (SnapshotAck). The receiver steps the reassembled MSG_SNAPSHOT into its
// core and sends the final ack only once the snapshot is durable; the
// sender's Host reports success to Raft only on that ack, and failure when
// a stream makes no progress for `chunk_timeout_us` (a timeout per chunk,
// never per transfer, so a large snapshot on a slow link still completes).
//
// The network may reorder, lose and duplicate chunks. The receiver keeps
// chunks that arrive ahead of a gap (up to kSnapshotAheadBytesMax) and
// always acknowledges the contiguous prefix it holds; the sender resends the
// first missing chunk when two acknowledgements in a row show no progress
// (a lost chunk, as TCP's fast retransmit), and the whole unacknowledged
// window every `retransmit_us` without progress. One stream per peer in
// each direction: a new snapshot to a peer replaces the stream going there
// (Raft sends one only when the last was abandoned).
//
// Both classes are pure (no I/O, no clock of their own): the Host feeds
// them messages and time and sends what they return. Thread: the Host's.
#ifndef BLIXARD_CORE_HOST_SNAPSHOT_STREAM_H_
#define BLIXARD_CORE_HOST_SNAPSHOT_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/base/types.h"
#include "core/env.h"
#include "core/proto/host.pb.h"
#include "core/proto/raft.pb.h"

namespace blixard::host {

// ARCHITECTURE.md: snapshot chunks are at most 1 MiB.
inline constexpr uint64_t kSnapshotChunkBytesMax = uint64_t{1} << 20;
// The largest snapshot a receiver assembles (its memory holds it whole).
inline constexpr uint64_t kSnapshotBytesMax = uint64_t{1} << 30;
// Chunks a receiver keeps ahead of a gap, per stream, in bytes.
inline constexpr uint64_t kSnapshotAheadBytesMax = uint64_t{8} << 20;
// Streams a sender keeps going at once (one per follower).
inline constexpr size_t kSnapshotStreamsMax = 64;

struct SnapshotStreamOptions {
  // 1 .. kSnapshotChunkBytesMax.
  uint64_t chunk_bytes = kSnapshotChunkBytesMax;
  // Chunks sent and not yet acknowledged, at most. >= 1.
  uint64_t window_chunks = 4;
  // A stream with no progress for this long fails. > retransmit_us.
  int64_t chunk_timeout_us = 10'000'000;
  // Unacknowledged chunks are sent again after this long without progress.
  int64_t retransmit_us = 1'000'000;
};

// A Host message for a peer.
struct StreamOut {
  NodeId to;
  HostMessage message;
};

class SnapshotSender {
 public:
  // REQUIRES: options valid (see SnapshotStreamOptions); first_stream_id
  // differs between processes of one node (the receiver tells streams
  // apart by sender and id).
  SnapshotSender(SnapshotStreamOptions options, uint64_t first_stream_id);

  // Starts streaming `message` (a MSG_SNAPSHOT from the core) to
  // message.to(), replacing a stream already going there; appends the first
  // window of chunks to `out`. Returns false (nothing started) when the
  // snapshot's data exceeds kSnapshotBytesMax or kSnapshotStreamsMax other
  // peers have streams: the Host reports the snapshot failed.
  bool Start(raft::Message message, MonoMicros now, std::vector<StreamOut>* out);

  enum class Verdict : uint8_t { kPending, kSucceeded, kFailed };
  // An ack from `from`. Unknown or stale streams are ignored (kPending).
  // kSucceeded / kFailed end the stream: the Host reports it to Raft.
  Verdict OnAck(NodeId from, const SnapshotAck& ack, MonoMicros now,
                std::vector<StreamOut>* out);

  // Resends what waits too long; returns the peers whose streams made no
  // progress for chunk_timeout_us (ended: report them failed).
  std::vector<NodeId> Tick(MonoMicros now, std::vector<StreamOut>* out);

  // Drops every stream without a verdict (this node stopped leading: the
  // core's follower progress is gone anyway).
  void AbortAll() { streams_.clear(); }

  size_t streams() const { return streams_.size(); }
  bool Streaming(NodeId to) const { return streams_.count(to) > 0; }

  void CheckInvariants() const;

 private:
  struct Stream {
    uint64_t id = 0;
    raft::Message header;  // the MSG_SNAPSHOT without its data
    std::string data;
    uint64_t acked = 0;    // contiguous bytes the receiver holds
    uint64_t sent = 0;     // bytes sent at least once, from offset 0
    bool all_held = false;  // acked == data.size(): waiting for "done"
    uint32_t stalled_acks = 0;  // acks in a row that showed no progress
    MonoMicros last_progress = 0;
    MonoMicros last_send = 0;
  };
  // The chunk of `stream` at `offset` (< its size, or 0 when empty).
  StreamOut Chunk(NodeId to, const Stream& stream, uint64_t offset) const;
  // Sends chunks from `from` while the window allows.
  void SendWindow(NodeId to, Stream& stream, uint64_t from, MonoMicros now,
                  std::vector<StreamOut>* out) const;

  const SnapshotStreamOptions options_;
  uint64_t next_stream_id_;
  std::map<NodeId, Stream> streams_;
};

class SnapshotReceiver {
 public:
  // A chunk from `from`. Appends the ack to send (if any) to `out`; when
  // the chunk completes its stream, returns the reassembled MSG_SNAPSHOT
  // for the Host to step into its core (and then to call OnStepped).
  // A malformed chunk (bad header, out of bounds, sizes beyond the limits,
  // addressed to another node) is answered with a final refusal and
  // changes nothing else. REQUIRES: self is this node.
  std::optional<raft::Message> OnChunk(NodeId self, NodeId from, const SnapshotChunk& chunk,
                                       MonoMicros now, std::vector<StreamOut>* out);

  // After the reassembled snapshot of `from` was stepped: `queued` tells
  // whether the core queued it for a durable write (then the final ack
  // waits for OnDurable); otherwise the core did not use it (stale, or
  // already covered) and the final ack goes now, not installed.
  void OnStepped(NodeId from, bool queued, std::vector<StreamOut>* out);

  // A snapshot at `index` is durable and applied: final acks for streams
  // that delivered it.
  void OnDurable(Index index, std::vector<StreamOut>* out);

  // Forgets streams idle for longer than `idle_us` (their sender gave up).
  void Expire(MonoMicros now, int64_t idle_us);

  size_t streams() const { return streams_.size(); }
  void CheckInvariants() const;

 private:
  struct Stream {
    uint64_t id = 0;
    uint64_t total = 0;
    std::string data;  // reassembled so far (moved out when complete)
    uint64_t received = 0;
    // Chunks past a gap, by offset, and their bytes.
    std::map<uint64_t, std::string> ahead;
    uint64_t ahead_bytes = 0;
    MonoMicros last_chunk = 0;
    Index index;  // the snapshot's, once complete
    bool complete = false;
    // Stepped and queued by the core: the final ack waits for durability.
    bool installing = false;
    // The final ack was sent (sent again if the sender asks again).
    bool finished = false;
    bool installed = false;
  };
  static StreamOut Ack(NodeId to, uint64_t stream_id, uint64_t received);
  static StreamOut Final(NodeId to, uint64_t stream_id, uint64_t received, bool installed,
                         std::string error);

  std::map<NodeId, Stream> streams_;  // by sender
};

}  // namespace blixard::host

#endif  // BLIXARD_CORE_HOST_SNAPSHOT_STREAM_H_
