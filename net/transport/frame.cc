#include "net/transport/frame.h"

#include <libdeflate.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::net {
namespace {

uint32_t Crc32(absl::string_view bytes) {
  return libdeflate_crc32(0, bytes.data(), bytes.size());
}

void PutU16(uint16_t value, char* out) {
  out[0] = static_cast<char>(value & 0xff);
  out[1] = static_cast<char>(value >> 8);
}

void PutU32(uint32_t value, char* out) {
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  }
}

uint16_t GetU16(const char* in) {
  return static_cast<uint16_t>(static_cast<uint8_t>(in[0]) |
                               (static_cast<uint8_t>(in[1]) << 8));
}

uint32_t GetU32(const char* in) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) {
    value = (value << 8) | static_cast<uint8_t>(in[i]);
  }
  return value;
}

bool IsFrameType(uint8_t type) {
  return type >= static_cast<uint8_t>(FrameType::kHello) &&
         type <= static_cast<uint8_t>(FrameType::kClientReply);
}

// Whether `type` is one of `protocol`'s frame types.
bool KnownType(uint8_t type, FrameProtocol protocol) {
  return IsFrameType(type) &&
         FrameTypeProtocol(static_cast<FrameType>(type)) == protocol;
}

}  // namespace

absl::string_view FrameProtocolName(FrameProtocol protocol) {
  switch (protocol) {
    case FrameProtocol::kPeer:
      return "peer";
    case FrameProtocol::kClient:
      return "client";
  }
  return "unknown";
}

uint32_t FrameMagic(FrameProtocol protocol) {
  switch (protocol) {
    case FrameProtocol::kPeer:
      return kFrameMagic;
    case FrameProtocol::kClient:
      return kClientFrameMagic;
  }
  CHECK(false) << "frame protocol " << static_cast<int>(protocol);
  return 0;
}

absl::string_view FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kHello:
      return "hello";
    case FrameType::kPeerMessage:
      return "peer_message";
    case FrameType::kClientCall:
      return "client_call";
    case FrameType::kClientReply:
      return "client_reply";
  }
  return "unknown";
}

FrameProtocol FrameTypeProtocol(FrameType type) {
  switch (type) {
    case FrameType::kHello:
    case FrameType::kPeerMessage:
      return FrameProtocol::kPeer;
    case FrameType::kClientCall:
    case FrameType::kClientReply:
      return FrameProtocol::kClient;
  }
  CHECK(false) << "frame type " << static_cast<int>(type);
  return FrameProtocol::kPeer;
}

absl::string_view FrameErrorName(FrameError error) {
  switch (error) {
    case FrameError::kNone:
      return "none";
    case FrameError::kBadMagic:
      return "bad_magic";
    case FrameError::kBadVersion:
      return "bad_version";
    case FrameError::kBadType:
      return "bad_type";
    case FrameError::kBadFlags:
      return "bad_flags";
    case FrameError::kBodyTooLarge:
      return "body_too_large";
    case FrameError::kBadChecksum:
      return "bad_checksum";
    case FrameError::kWrongProtocol:
      return "wrong_protocol";
  }
  return "unknown";
}

void SealFrame(FrameType type, std::string* frame) {
  CHECK(frame != nullptr);
  CHECK(IsFrameType(static_cast<uint8_t>(type)))
      << "frame type " << static_cast<int>(type);
  CHECK_GE(frame->size(), kFrameHeaderBytes);
  const absl::string_view body =
      absl::string_view(*frame).substr(kFrameHeaderBytes);
  CHECK_LE(body.size(), kFrameBodyBytesMax)
      << FrameTypeName(type) << " frame body too large to send";
  char* header = frame->data();
  PutU32(FrameMagic(FrameTypeProtocol(type)), header);
  header[4] = static_cast<char>(kFrameVersion);
  header[5] = static_cast<char>(type);
  PutU16(0, header + 6);
  PutU32(static_cast<uint32_t>(body.size()), header + 8);
  PutU32(Crc32(body), header + 12);
}

void AppendFrame(FrameType type, absl::string_view body, std::string* out) {
  CHECK(out != nullptr);
  CHECK_LE(body.size(), kFrameBodyBytesMax)
      << FrameTypeName(type) << " frame body too large to send";
  std::string frame;
  frame.reserve(FrameBytes(body.size()));
  frame.resize(kFrameHeaderBytes);
  frame.append(body.data(), body.size());
  SealFrame(type, &frame);
  if (out->empty()) {
    *out = std::move(frame);
  } else {
    out->append(frame);
  }
}

std::string EncodeFrame(FrameType type, absl::string_view body) {
  std::string out;
  AppendFrame(type, body, &out);
  return out;
}

FrameDecoder::FrameDecoder(size_t body_bytes_max, FrameProtocol protocol)
    : body_bytes_max_(body_bytes_max), protocol_(protocol) {
  CHECK_LE(body_bytes_max, kFrameBodyBytesMax);
  CHECK(protocol == FrameProtocol::kPeer || protocol == FrameProtocol::kClient)
      << "frame protocol " << static_cast<int>(protocol);
}

void FrameDecoder::Feed(absl::string_view bytes) {
  CHECK(!failed()) << "FrameDecoder fed after an error: " << status_;
  if (bytes.empty()) return;
  // Drop the consumed prefix once it is at least half the buffer: each byte
  // is moved at most once more on average, and the buffer never holds more
  // than twice what is unconsumed.
  if (start_ > 0 && start_ >= buffer_.size() - start_) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

void FrameDecoder::Fail(FrameError error, absl::Status status) {
  CHECK(error != FrameError::kNone);
  CHECK(!status.ok());
  error_ = error;
  status_ = std::move(status);
  // The bytes are worthless now; let them go.
  buffer_.clear();
  buffer_.shrink_to_fit();
  start_ = 0;
  header_.reset();
}

bool FrameDecoder::ParseHeader() {
  CHECK(!header_.has_value());
  CHECK_GE(buffered_bytes(), kFrameHeaderBytes);
  const char* in = buffer_.data() + start_;
  const std::string where = absl::StrCat(" (frame ", frames_ + 1,
                                         " at stream byte ", consumed_, ")");
  const uint32_t magic = GetU32(in);
  const uint32_t want = FrameMagic(protocol_);
  if (magic != want) {
    const FrameProtocol other = protocol_ == FrameProtocol::kPeer
                                    ? FrameProtocol::kClient
                                    : FrameProtocol::kPeer;
    if (magic == FrameMagic(other)) {
      // Say it plainly: this is the usual mistake of pointing a client at
      // a peer port (or a peer at a client port), not line noise.
      Fail(FrameError::kWrongProtocol,
           absl::InvalidArgumentError(absl::StrCat(
               "a ", FrameProtocolName(other),
               "-protocol frame (magic 0x", absl::Hex(magic, absl::kZeroPad8),
               ") on a ", FrameProtocolName(protocol_),
               "-protocol stream: wrong port?", where)));
      return false;
    }
    Fail(FrameError::kBadMagic,
         absl::InvalidArgumentError(absl::StrCat(
             "bad frame magic 0x", absl::Hex(magic, absl::kZeroPad8),
             ", want 0x", absl::Hex(want, absl::kZeroPad8), where)));
    return false;
  }
  const auto version = static_cast<uint8_t>(in[4]);
  if (version != kFrameVersion) {
    Fail(FrameError::kBadVersion,
         absl::InvalidArgumentError(
             absl::StrCat("unsupported frame version ", version, ", want ",
                          kFrameVersion, where)));
    return false;
  }
  const auto type = static_cast<uint8_t>(in[5]);
  if (!KnownType(type, protocol_)) {
    Fail(FrameError::kBadType,
         absl::InvalidArgumentError(
             absl::StrCat("unknown frame type ", type, " for the ",
                          FrameProtocolName(protocol_), " protocol", where)));
    return false;
  }
  const uint16_t flags = GetU16(in + 6);
  if (flags != 0) {
    Fail(FrameError::kBadFlags,
         absl::InvalidArgumentError(absl::StrCat(
             "unknown frame flags 0x", absl::Hex(flags), " (none are defined)",
             where)));
    return false;
  }
  const uint32_t body_bytes = GetU32(in + 8);
  if (body_bytes > body_bytes_max_) {
    Fail(FrameError::kBodyTooLarge,
         absl::OutOfRangeError(absl::StrCat("frame body length ", body_bytes,
                                            " above the limit of ",
                                            body_bytes_max_, " bytes", where)));
    return false;
  }
  header_ = Header{static_cast<FrameType>(type), flags, body_bytes,
                   GetU32(in + 12)};
  // One allocation for the whole frame instead of a doubling per read.
  buffer_.reserve(start_ + FrameBytes(body_bytes));
  return true;
}

absl::StatusOr<std::optional<Frame>> FrameDecoder::Next() {
  if (failed()) return status_;
  if (!header_.has_value()) {
    if (buffered_bytes() < kFrameHeaderBytes) return std::nullopt;
    if (!ParseHeader()) return status_;
  }
  const Header header = *header_;
  if (buffered_bytes() < FrameBytes(header.body_bytes)) return std::nullopt;
  const absl::string_view body(buffer_.data() + start_ + kFrameHeaderBytes,
                               header.body_bytes);
  const uint32_t crc = Crc32(body);
  if (crc != header.body_crc) {
    Fail(FrameError::kBadChecksum,
                absl::DataLossError(absl::StrCat(
                    FrameTypeName(header.type), " frame body CRC-32 0x",
                    absl::Hex(crc, absl::kZeroPad8), " does not match the header's 0x",
                    absl::Hex(header.body_crc, absl::kZeroPad8), " (frame ",
                    frames_ + 1, " at stream byte ", consumed_, ", ",
                    header.body_bytes, " body bytes)")));
    return status_;
  }
  Frame frame;
  frame.type = header.type;
  frame.flags = header.flags;
  frame.body.assign(body.data(), body.size());
  start_ += FrameBytes(header.body_bytes);
  consumed_ += FrameBytes(header.body_bytes);
  ++frames_;
  header_.reset();
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return std::optional<Frame>(std::move(frame));
}

void FrameDecoder::CheckInvariants() const {
  CHECK_LE(body_bytes_max_, kFrameBodyBytesMax);
  CHECK(protocol_ == FrameProtocol::kPeer ||
        protocol_ == FrameProtocol::kClient);
  CHECK_LE(start_, buffer_.size());
  CHECK_EQ(failed(), !status_.ok());
  if (failed()) {
    CHECK_EQ(buffered_bytes(), 0u);
    CHECK(!header_.has_value());
  }
  if (header_.has_value()) {
    CHECK_GE(buffered_bytes(), kFrameHeaderBytes);
    CHECK_LE(header_->body_bytes, body_bytes_max_);
    CHECK(KnownType(static_cast<uint8_t>(header_->type), protocol_));
    CHECK_EQ(header_->flags, 0);
  }
}

}  // namespace blixard::net
