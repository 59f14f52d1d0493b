#include "net/api/client_protocol.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::net {
namespace {

// Per direction: the frame type it carries and the words for messages.
template <typename Envelope>
struct Direction;

template <>
struct Direction<api::ClientCall> {
  static constexpr FrameType kType = FrameType::kClientCall;
  static constexpr const char* kWhat = "call";
  static constexpr const char* kReader = "server";
};

template <>
struct Direction<api::ClientReply> {
  static constexpr FrameType kType = FrameType::kClientReply;
  static constexpr const char* kWhat = "reply";
  static constexpr const char* kReader = "client";
};

StreamError FromFrameError(FrameError error) {
  switch (error) {
    case FrameError::kBodyTooLarge:
      return StreamError::kFrameTooLarge;
    case FrameError::kBadChecksum:
      return StreamError::kBadChecksum;
    case FrameError::kWrongProtocol:
      return StreamError::kWrongProtocol;
    case FrameError::kBadMagic:
    case FrameError::kBadVersion:
    case FrameError::kBadType:
    case FrameError::kBadFlags:
      return StreamError::kBadFrame;
    case FrameError::kNone:
      break;
  }
  CHECK(false) << "a failed frame decoder without an error";
  return StreamError::kBadFrame;
}

template <typename Envelope>
std::string Encode(const Envelope& envelope) {
  CHECK_NE(envelope.call_id(), 0u) << Direction<Envelope>::kWhat << " id 0";
  const size_t body_bytes = envelope.ByteSizeLong();
  CHECK_LE(body_bytes, kFrameBodyBytesMax)
      << Direction<Envelope>::kWhat << " too large to send";
  // Serialized straight behind the header's placeholder: one allocation,
  // no copy of the body.
  std::string frame;
  frame.reserve(FrameBytes(body_bytes));
  frame.resize(kFrameHeaderBytes);
  CHECK(envelope.AppendToString(&frame));
  CHECK_EQ(frame.size(), FrameBytes(body_bytes));
  SealFrame(Direction<Envelope>::kType, &frame);
  return frame;
}

}  // namespace

absl::string_view StreamErrorName(StreamError error) {
  switch (error) {
    case StreamError::kNone:
      return "none";
    case StreamError::kBadFrame:
      return "bad_frame";
    case StreamError::kFrameTooLarge:
      return "frame_too_large";
    case StreamError::kBadChecksum:
      return "bad_checksum";
    case StreamError::kWrongProtocol:
      return "wrong_protocol";
    case StreamError::kUnexpectedFrame:
      return "unexpected_frame";
    case StreamError::kBadBody:
      return "bad_body";
  }
  return "unknown";
}

std::string EncodeCallFrame(const api::ClientCall& call) { return Encode(call); }

std::string EncodeReplyFrame(const api::ClientReply& reply) {
  return Encode(reply);
}

size_t EnvelopeBytes(const api::ClientCall& call) { return call.ByteSizeLong(); }

size_t EnvelopeBytes(const api::ClientReply& reply) {
  return reply.ByteSizeLong();
}

template <typename Envelope>
EnvelopeDecoder<Envelope>::EnvelopeDecoder(size_t body_bytes_max)
    : frames_(body_bytes_max, FrameProtocol::kClient) {}

template <typename Envelope>
void EnvelopeDecoder<Envelope>::Feed(absl::string_view bytes) {
  CHECK(!failed()) << "EnvelopeDecoder fed after an error: " << status_;
  frames_.Feed(bytes);
}

template <typename Envelope>
void EnvelopeDecoder<Envelope>::Fail(StreamError error, absl::Status status) {
  CHECK(error != StreamError::kNone);
  CHECK(!status.ok());
  error_ = error;
  status_ = std::move(status);
}

template <typename Envelope>
absl::StatusOr<std::optional<Envelope>> EnvelopeDecoder<Envelope>::Next() {
  using D = Direction<Envelope>;
  if (failed()) return status_;
  absl::StatusOr<std::optional<Frame>> frame = frames_.Next();
  if (!frame.ok()) {
    Fail(FromFrameError(frames_.error()), frame.status());
    return status_;
  }
  if (!frame->has_value()) return std::nullopt;
  const uint64_t number = frames_.frames_decoded();
  if ((*frame)->type != D::kType) {
    Fail(StreamError::kUnexpectedFrame,
         absl::InvalidArgumentError(absl::StrCat(
             "a ", FrameTypeName((*frame)->type), " frame sent to a ",
             D::kReader, " (frame ", number, ")")));
    return status_;
  }
  Envelope envelope;
  if (!envelope.ParseFromString((*frame)->body)) {
    Fail(StreamError::kBadBody,
         absl::InvalidArgumentError(absl::StrCat(
             "a ", (*frame)->body.size(), "-byte ", D::kWhat,
             " body that does not parse (frame ", number, ")")));
    return status_;
  }
  if (envelope.call_id() == 0) {
    Fail(StreamError::kBadBody,
         absl::InvalidArgumentError(absl::StrCat(
             "a ", D::kWhat, " with call id 0 (frame ", number, ")")));
    return status_;
  }
  ++envelopes_;
  return std::optional<Envelope>(std::move(envelope));
}

template <typename Envelope>
void EnvelopeDecoder<Envelope>::CheckInvariants() const {
  frames_.CheckInvariants();
  CHECK(frames_.protocol() == FrameProtocol::kClient);
  CHECK_EQ(failed(), !status_.ok());
  // A frame error is always ours too; ours may come from a good frame.
  if (frames_.failed()) {
    CHECK(failed());
  }
  CHECK_LE(envelopes_, frames_.frames_decoded());
}

template class EnvelopeDecoder<api::ClientCall>;
template class EnvelopeDecoder<api::ClientReply>;

}  // namespace blixard::net
