// The client protocol on the wire: ClientCall frames from a client, ClientReply
// frames from a node (net/api/client_protocol.proto), in the frame format of
// net/transport/frame.h under the client magic "BLXC". Pure and I/O-free:
// the server (api_server.h) and the client (client.h) feed it the bytes they
// read, and the fuzzer (fuzz/api_call_decoder_fuzzer.cc) feeds it anything.
//
// What a decoder checks, in order, and the StreamError it fails with (each
// final: the connection carrying the stream is closed, nothing after the
// error is decoded):
//   - the frame header (FrameDecoder for FrameProtocol::kClient): garbage
//     (kBadFrame), a peer-protocol frame, i.e. a peer dialed a client port
//     (kWrongProtocol), a body above the cap (kFrameTooLarge, before any
//     body byte is buffered), a corrupt body (kBadChecksum);
//   - the frame type: a server only takes kClientCall and a client only
//     kClientReply (kUnexpectedFrame);
//   - the body: it must parse as the envelope and carry a call id != 0
//     (kBadBody). What the request inside asks for is not checked here:
//     that is the handler's business (the Host REJECTs a malformed one).
//
//   CallDecoder decoder(options.frame_body_bytes_max);
//   decoder.Feed(bytes_read);
//   while (true) {
//     absl::StatusOr<std::optional<api::ClientCall>> call = decoder.Next();
//     if (!call.ok()) return Close(decoder.error(), call.status());
//     if (!call->has_value()) break;  // need more bytes
//     Handle(std::move(**call));
//   }
//
// Thread: none of its own; one owner at a time.
#ifndef BLIXARD_NET_API_CLIENT_PROTOCOL_H_
#define BLIXARD_NET_API_CLIENT_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "net/api/client_protocol.pb.h"
#include "net/transport/frame.h"

namespace blixard::net {

// The largest ClientCall body a server takes by default
// (ApiServerOptions::frame_body_bytes_max) and the largest the Client sends:
// the largest command the state machine accepts (kCommandBytesMax, 4 MiB)
// with room to spare for its envelope.
inline constexpr size_t kCallBodyBytesDefault = size_t{8} << 20;
static_assert(kCallBodyBytesDefault <= kFrameBodyBytesMax);

// Why a client-protocol stream was refused.
enum class StreamError : uint8_t {
  kNone = 0,
  kBadFrame = 1,         // bad magic, version, type or flags: garbage
  kFrameTooLarge = 2,    // a header announced a body above the cap
  kBadChecksum = 3,      // a body's CRC-32 did not match
  kWrongProtocol = 4,    // a peer-protocol frame: a node dialed a client port
  kUnexpectedFrame = 5,  // a reply sent to a server, or a call to a client
  kBadBody = 6,          // a body that does not parse, or call id 0
};

// "none", "bad_frame", "frame_too_large", "bad_checksum", "wrong_protocol",
// "unexpected_frame", "bad_body".
absl::string_view StreamErrorName(StreamError error);

// One encoded frame carrying `call` / `reply`. REQUIRES: call_id != 0; the
// serialized body is at most kFrameBodyBytesMax (CHECKed: a sender checks
// EnvelopeBytes against its limit first).
std::string EncodeCallFrame(const api::ClientCall& call);
std::string EncodeReplyFrame(const api::ClientReply& reply);

// The body size of an envelope, to check against a limit before encoding.
size_t EnvelopeBytes(const api::ClientCall& call);
size_t EnvelopeBytes(const api::ClientReply& reply);

// Incremental decoder of one direction of the client protocol: Envelope is
// api::ClientCall (what a server reads) or api::ClientReply (what a client
// reads). Feed bytes in pieces of any size; the same bytes give the same
// envelopes and the same error however they are split.
template <typename Envelope>
class EnvelopeDecoder {
 public:
  // REQUIRES: body_bytes_max <= kFrameBodyBytesMax.
  explicit EnvelopeDecoder(size_t body_bytes_max);

  EnvelopeDecoder(const EnvelopeDecoder&) = delete;
  EnvelopeDecoder& operator=(const EnvelopeDecoder&) = delete;
  EnvelopeDecoder(EnvelopeDecoder&&) = default;
  EnvelopeDecoder& operator=(EnvelopeDecoder&&) = default;

  // Appends received bytes (parses nothing). Memory as FrameDecoder::Feed.
  // REQUIRES: !failed().
  void Feed(absl::string_view bytes);

  // The next complete envelope, or nullopt when the bytes fed so far end
  // inside a frame. Errors are final (every later call returns the same
  // one) and name what was wrong and where: INVALID_ARGUMENT (bad frame,
  // wrong protocol, unexpected frame type, bad body), OUT_OF_RANGE (body
  // above the cap), DATA_LOSS (checksum); error() classifies them.
  absl::StatusOr<std::optional<Envelope>> Next();

  bool failed() const { return error_ != StreamError::kNone; }
  StreamError error() const { return error_; }
  size_t buffered_bytes() const { return frames_.buffered_bytes(); }
  uint64_t envelopes_decoded() const { return envelopes_; }
  size_t body_bytes_max() const { return frames_.body_bytes_max(); }

  void CheckInvariants() const;

 private:
  void Fail(StreamError error, absl::Status status);

  FrameDecoder frames_;
  uint64_t envelopes_ = 0;
  StreamError error_ = StreamError::kNone;
  absl::Status status_;
};

extern template class EnvelopeDecoder<api::ClientCall>;
extern template class EnvelopeDecoder<api::ClientReply>;

// What a server reads, and what a client reads.
using CallDecoder = EnvelopeDecoder<api::ClientCall>;
using ReplyDecoder = EnvelopeDecoder<api::ClientReply>;

}  // namespace blixard::net

#endif  // BLIXARD_NET_API_CLIENT_PROTOCOL_H_
