// Frames: how the peer transport and the client protocol cut a TCP byte
// stream into messages (ARCHITECTURE.md, "Production runtime": Frames,
// Clients). Pure and I/O-free, so the decoder is unit-tested and fuzzed on
// bytes alone.
//
// A frame is a fixed 16-byte header, then a body of `body length` bytes:
//
//   offset  size  field
//        0     4  magic        the protocol's: "BLXF" (peers), "BLXC" (clients)
//        4     1  version      kFrameVersion
//        5     1  type         FrameType: one of the protocol's types
//        6     2  flags        none defined yet: must be 0
//        8     4  body length  <= the decoder's cap (<= kFrameBodyBytesMax)
//       12     4  body CRC-32  of the body bytes
//
// Integers are little-endian. The body is a protobuf message: for the peer
// protocol (net/transport/transport.proto) Hello for kHello, PeerMessage for
// kPeerMessage; for the client protocol (net/api/client_protocol.proto)
// ClientCall for kClientCall, ClientReply for kClientReply. This file does
// not parse bodies.
//
// Why two protocols share one format but not one magic: a node listens on a
// peer port and a client port, and a client pointed at a peer port (or a
// peer at a client port) must be refused at its first header, with a reason
// that says so (FrameError::kWrongProtocol), before any of its bytes mean
// anything. Each protocol also has its own frame types, so a type is never
// ambiguous, in logs or in a decoder.
//
// Why CRC-32 (IEEE, zlib's polynomial) and not CRC-32C: no Debian 12
// package ships a C/C++ CRC-32C library (apt has only python3-crc32c), and
// STYLE.md takes CRCs from libdeflate, whose libdeflate_crc32 (PCLMULQDQ /
// slice-by-8) the SQLite store already uses. Either polynomial catches every
// burst of up to 32 flipped bits and all odd-weight errors; TCP's own 16-bit
// checksum is what lets corruption through, and the frame CRC is there for
// that and for our own bugs (a writer that framed the wrong bytes), not as
// a defence against an adversary (TLS will be).
//
// Why a cap: a peer controls the length field; without a bound, one forged
// header would make the node reserve 4 GiB. The decoder checks the header as
// soon as its 16 bytes are in, so a bad length is refused before any body
// byte is buffered.
//
// Why errors are final: a stream whose framing is lost cannot be
// resynchronised safely (any byte could look like a magic), so after the
// first error the decoder returns the same error forever and the connection
// is closed; nothing the bad bytes said is delivered.
//
//   FrameDecoder decoder;
//   decoder.Feed(bytes_read);
//   while (true) {
//     absl::StatusOr<std::optional<Frame>> frame = decoder.Next();
//     if (!frame.ok()) return Close(frame.status());   // names what was wrong
//     if (!frame->has_value()) break;                   // need more bytes
//     Handle(std::move(**frame));
//   }
//
// Thread: none of its own; one owner at a time.
#ifndef BLIXARD_NET_TRANSPORT_FRAME_H_
#define BLIXARD_NET_TRANSPORT_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace blixard::net {

inline constexpr size_t kFrameHeaderBytes = 16;
// The peer protocol's magic: "BLXF" read as a little-endian u32.
inline constexpr uint32_t kFrameMagic = 0x46584c42;
// The client protocol's magic: "BLXC" read as a little-endian u32.
inline constexpr uint32_t kClientFrameMagic = 0x43584c42;
static_assert(kFrameMagic != kClientFrameMagic);
inline constexpr uint8_t kFrameVersion = 1;
// The largest body any frame may carry (16 MiB). A Raft message bigger than
// this cannot be sent (the Host bounds its messages well below it; snapshot
// bytes are meant to travel in chunks of at most 1 MiB).
inline constexpr size_t kFrameBodyBytesMax = size_t{16} << 20;
static_assert(kFrameBodyBytesMax <= UINT32_MAX,
              "the body length must fit the header's u32");

// Which protocol a stream speaks: its magic and its frame types.
enum class FrameProtocol : uint8_t {
  kPeer = 1,    // node to node (net/transport)
  kClient = 2,  // client to node and back (net/api)
};

// "peer", "client"; "unknown" for anything else.
absl::string_view FrameProtocolName(FrameProtocol protocol);

// kFrameMagic for kPeer, kClientFrameMagic for kClient.
uint32_t FrameMagic(FrameProtocol protocol);

enum class FrameType : uint8_t {
  // Peer protocol.
  kHello = 1,
  kPeerMessage = 2,
  // Client protocol.
  kClientCall = 3,
  kClientReply = 4,
};

// "hello", "peer_message", "client_call", "client_reply"; "unknown" for
// anything else.
absl::string_view FrameTypeName(FrameType type);

// The protocol a frame type belongs to. REQUIRES: a FrameType enumerator.
FrameProtocol FrameTypeProtocol(FrameType type);

// What was wrong with a stream, for per-reason counters; the decoder's
// status carries the details (value, offset).
enum class FrameError : uint8_t {
  kNone = 0,
  kBadMagic = 1,
  kBadVersion = 2,
  kBadType = 3,
  kBadFlags = 4,
  kBodyTooLarge = 5,
  kBadChecksum = 6,
  // The magic is another protocol's: a client on a peer port, or a peer on
  // a client port.
  kWrongProtocol = 7,
};

// "none", "bad_magic", "bad_version", "bad_type", "bad_flags",
// "body_too_large", "bad_checksum", "wrong_protocol".
absl::string_view FrameErrorName(FrameError error);

struct Frame {
  FrameType type = FrameType::kPeerMessage;
  uint16_t flags = 0;
  std::string body;
};

// The encoded size of a frame with a body of `body_bytes`.
inline constexpr size_t FrameBytes(size_t body_bytes) {
  return kFrameHeaderBytes + body_bytes;
}

// Appends one encoded frame (header, then body) to *out, with the magic of
// the type's protocol. REQUIRES: type is a FrameType enumerator;
// body.size() <= kFrameBodyBytesMax (CHECKed: the sender checks sizes
// before framing); out != nullptr.
void AppendFrame(FrameType type, absl::string_view body, std::string* out);

// The encoded frame alone. REQUIRES: as AppendFrame.
std::string EncodeFrame(FrameType type, absl::string_view body);

// Frames a body in place, without copying it: `frame` holds
// kFrameHeaderBytes placeholder bytes followed by the body (a sender
// serializes a protobuf straight after the placeholder); the header is
// written over the placeholder (the type's protocol's magic). REQUIRES:
// type is a FrameType enumerator; frame != nullptr;
// frame->size() >= kFrameHeaderBytes; the body (frame->size() -
// kFrameHeaderBytes) is at most kFrameBodyBytesMax.
void SealFrame(FrameType type, std::string* frame);

// Incremental decoder for one protocol's stream: feed bytes as they
// arrive, in pieces of any size; take complete frames out (only of that
// protocol's types). The same bytes give the same frames and the same
// error however they are split.
class FrameDecoder {
 public:
  // REQUIRES: body_bytes_max <= kFrameBodyBytesMax.
  explicit FrameDecoder(size_t body_bytes_max = kFrameBodyBytesMax,
                        FrameProtocol protocol = FrameProtocol::kPeer);

  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;
  FrameDecoder(FrameDecoder&&) = default;
  FrameDecoder& operator=(FrameDecoder&&) = default;

  // Appends received bytes. Parses nothing (Next does). Memory: the decoder
  // holds what was fed and not yet returned; a caller that calls Next until
  // it returns no frame after each Feed of at most N bytes holds at most
  // kFrameHeaderBytes + body_bytes_max + N. REQUIRES: !failed().
  void Feed(absl::string_view bytes);

  // The next complete frame, or nullopt when the bytes fed so far end
  // inside one (feed more). Errors, final (every later call returns the
  // same one; the stream must be abandoned), each naming the field, its
  // value and the frame's byte offset in the stream:
  //   INVALID_ARGUMENT  bad magic, version, type (not one of this
  //                     protocol's) or flags; the other protocol's magic
  //                     (kWrongProtocol, naming both protocols);
  //   OUT_OF_RANGE      body length above body_bytes_max;
  //   DATA_LOSS         the body's CRC-32 does not match the header's.
  // Header errors are reported as soon as the header's 16 bytes are in.
  absl::StatusOr<std::optional<Frame>> Next();

  bool failed() const { return error_ != FrameError::kNone; }
  // kNone until Next() returns an error.
  FrameError error() const { return error_; }
  // Bytes fed and not yet returned in a frame.
  size_t buffered_bytes() const { return buffer_.size() - start_; }
  // Stream offset of the first byte not yet returned in a frame.
  uint64_t bytes_consumed() const { return consumed_; }
  uint64_t frames_decoded() const { return frames_; }
  size_t body_bytes_max() const { return body_bytes_max_; }
  FrameProtocol protocol() const { return protocol_; }

  void CheckInvariants() const;

 private:
  struct Header {
    FrameType type;
    uint16_t flags;
    uint32_t body_bytes;
    uint32_t body_crc;
  };

  // Checks the header at buffer_[start_]; sets error_ and status_ on error.
  bool ParseHeader();
  void Fail(FrameError error, absl::Status status);

  size_t body_bytes_max_;
  FrameProtocol protocol_;
  // buffer_[start_, size) is unconsumed; the prefix is dropped lazily so
  // that returning a frame does not move the bytes behind it each time.
  std::string buffer_;
  size_t start_ = 0;
  // The header of the frame being received, once its 16 bytes are in and
  // checked.
  std::optional<Header> header_;
  uint64_t consumed_ = 0;
  uint64_t frames_ = 0;
  FrameError error_ = FrameError::kNone;
  absl::Status status_;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_TRANSPORT_FRAME_H_
