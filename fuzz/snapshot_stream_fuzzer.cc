// Snapshot streams under adversarial peers: the input is a sequence of
// chunks and acks (each a length-prefixed HostMessage, or mutated copies of
// the chunks a real sender made) fed to a receiver and a sender, with time
// moving between them. Whatever arrives: no crash, both sides' invariants
// hold after every step, and while no chunk was corrupted, a stream the
// receiver completes carries exactly the bytes of the snapshot sent
// (reordered, lost and duplicated chunks notwithstanding).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base/check.h"
#include "core/host/snapshot_stream.h"
#include "core/proto/host.pb.h"
#include "core/proto/raft.pb.h"

namespace {

using blixard::Index;
using blixard::MonoMicros;
using blixard::NodeId;
using blixard::host::SnapshotReceiver;
using blixard::host::SnapshotSender;
using blixard::host::SnapshotStreamOptions;
using blixard::host::StreamOut;

const NodeId kSender(1), kReceiver(2);

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return empty() ? 0 : data_[pos_++]; }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - pos_);
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  SnapshotStreamOptions options;
  options.chunk_bytes = 1 + in.Byte() % 64;
  options.window_chunks = 1 + in.Byte() % 8;
  options.retransmit_us = 10;
  options.chunk_timeout_us = 100;
  SnapshotSender sender(options, 1 + in.Byte());
  SnapshotReceiver receiver;

  const std::string snapshot_data = in.Bytes(in.Byte() * 4);
  blixard::raft::Message snapshot;
  snapshot.set_type(blixard::raft::MSG_SNAPSHOT);
  snapshot.set_from(kSender.value());
  snapshot.set_to(kReceiver.value());
  snapshot.set_term(2);
  snapshot.mutable_snapshot()->mutable_metadata()->set_index(50);
  snapshot.mutable_snapshot()->set_data(snapshot_data);

  std::vector<StreamOut> to_receiver, to_sender;
  MonoMicros now = 0;
  bool corrupted = false;
  CHECK(sender.Start(snapshot, now, &to_receiver));
  for (int step = 0; step < 4096 && !in.empty(); ++step) {
    const uint8_t op = in.Byte();
    now += op & 0x0f;
    switch (op >> 4) {
      case 0: case 1: case 2: case 3: {  // deliver (maybe mutated) the next chunk
        if (to_receiver.empty()) break;
        const size_t pick = in.Byte() % to_receiver.size();
        blixard::host::SnapshotChunk chunk = to_receiver[pick].message.snapshot_chunk();
        if (op & 0x10) to_receiver.erase(to_receiver.begin() + static_cast<long>(pick));
        if ((op >> 4) == 3) {  // corrupt a field
          corrupted = true;
          switch (in.Byte() % 5) {
            case 0: chunk.set_offset(chunk.offset() + in.Byte()); break;
            case 1: chunk.set_total_bytes(chunk.total_bytes() ^ in.Byte()); break;
            case 2: chunk.set_data(in.Bytes(in.Byte())); break;
            case 3: chunk.set_stream_id(in.Byte()); break;
            default: chunk.mutable_header()->set_from(in.Byte()); break;
          }
        }
        std::optional<blixard::raft::Message> complete =
            receiver.OnChunk(kReceiver, kSender, chunk, now, &to_sender);
        if (complete.has_value()) {
          if (!corrupted) CHECK(complete->snapshot().data() == snapshot_data);
          receiver.OnStepped(kSender, (op & 1) != 0, &to_sender);
          if (op & 2) receiver.OnDurable(Index(50), &to_sender);
        }
        break;
      }
      case 4: case 5: case 6: {  // deliver an ack (maybe a forged one)
        blixard::host::SnapshotAck ack;
        if ((op >> 4) == 6 || to_sender.empty()) {
          ack.set_stream_id(in.Byte());
          ack.set_received_bytes(in.Byte() * 7);
          ack.set_done(in.Byte() & 1);
          ack.set_installed(in.Byte() & 1);
        } else {
          const size_t pick = in.Byte() % to_sender.size();
          ack = to_sender[pick].message.snapshot_ack();
          to_sender.erase(to_sender.begin() + static_cast<long>(pick));
        }
        sender.OnAck(kReceiver, ack, now, &to_receiver);
        break;
      }
      case 7: {  // an arbitrary chunk message from the wire
        corrupted = true;
        blixard::host::HostMessage message;
        if (message.ParseFromString(in.Bytes(in.Byte())) && message.has_snapshot_chunk()) {
          std::optional<blixard::raft::Message> complete =
              receiver.OnChunk(kReceiver, kSender, message.snapshot_chunk(), now, &to_sender);
          if (complete.has_value()) receiver.OnStepped(kSender, false, &to_sender);
        }
        break;
      }
      default:  // time passes
        now += in.Byte() * 3;
        sender.Tick(now, &to_receiver);
        receiver.Expire(now, 200);
        break;
    }
    if (to_receiver.size() > 256) to_receiver.erase(to_receiver.begin(), to_receiver.end() - 64);
    if (to_sender.size() > 256) to_sender.erase(to_sender.begin(), to_sender.end() - 64);
    sender.CheckInvariants();
    receiver.CheckInvariants();
  }
  return 0;
}
