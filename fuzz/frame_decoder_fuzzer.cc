// Feeds arbitrary bytes to the peer transport's FrameDecoder
// (net/transport/frame.h), the first code that touches what a peer sends:
// no crash, memory bounded by one frame plus one feed, and the same frames
// and the same error however the stream is split. Every frame it returns
// re-encodes to exactly the bytes it came from, and its body goes through
// the transport's body parser (transport.proto) as the transport would.
//
// Input: byte 0 picks the body cap (the production 16 MiB, or small caps so
// oversized lengths are reachable), byte 1 seeds the split, the rest is the
// stream.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/check.h"
#include "net/transport/frame.h"
#include "net/transport/transport.pb.h"

namespace {

using blixard::net::EncodeFrame;
using blixard::net::Frame;
using blixard::net::FrameDecoder;
using blixard::net::FrameError;
using blixard::net::FrameType;
using blixard::net::kFrameBodyBytesMax;
using blixard::net::kFrameHeaderBytes;

constexpr size_t kCaps[] = {kFrameBodyBytesMax, 1024, 64, 0};
constexpr size_t kChunkBytesMax = 97;

struct Outcome {
  std::vector<Frame> frames;
  std::optional<absl::Status> error;
  FrameError kind = FrameError::kNone;
  uint64_t consumed = 0;
};

void TakeFrames(FrameDecoder& decoder, Outcome* out) {
  while (!out->error.has_value()) {
    absl::StatusOr<std::optional<Frame>> next = decoder.Next();
    if (!next.ok()) {
      out->error = next.status();
      out->kind = decoder.error();
      CHECK(out->kind != FrameError::kNone);
      return;
    }
    if (!next->has_value()) return;
    out->frames.push_back(std::move(**next));
  }
}

void ParseBody(const Frame& frame) {
  if (frame.type == FrameType::kHello) {
    blixard::transport::Hello hello;
    (void)hello.ParseFromString(frame.body);
  } else {
    blixard::transport::PeerMessage message;
    (void)message.ParseFromString(frame.body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t cap = kCaps[data[0] % 4];
  uint64_t split_state = data[1];
  const absl::string_view stream(reinterpret_cast<const char*>(data) + 2,
                                 size - 2);

  // All at once.
  Outcome whole;
  {
    FrameDecoder decoder(cap);
    decoder.Feed(stream);
    TakeFrames(decoder, &whole);
    decoder.CheckInvariants();
    whole.consumed = decoder.bytes_consumed();
  }

  // In pieces, draining after each, as the transport reads.
  Outcome pieces;
  {
    FrameDecoder decoder(cap);
    size_t at = 0;
    while (at < stream.size() && !pieces.error.has_value()) {
      split_state = split_state * 6364136223846793005ULL + 1442695040888963407ULL;
      const size_t n = std::min<size_t>(1 + (split_state >> 33) % kChunkBytesMax,
                                        stream.size() - at);
      decoder.Feed(stream.substr(at, n));
      at += n;
      TakeFrames(decoder, &pieces);
      decoder.CheckInvariants();
      CHECK_LE(decoder.buffered_bytes(), kFrameHeaderBytes + cap + kChunkBytesMax);
    }
    pieces.consumed = decoder.bytes_consumed();
  }

  CHECK_EQ(whole.frames.size(), pieces.frames.size());
  CHECK_EQ(whole.error.has_value(), pieces.error.has_value());
  if (whole.error.has_value()) {
    CHECK(*whole.error == *pieces.error) << *whole.error << " vs " << *pieces.error;
    CHECK(whole.kind == pieces.kind);
  }
  CHECK_EQ(whole.consumed, pieces.consumed);

  size_t offset = 0;
  for (size_t i = 0; i < whole.frames.size(); ++i) {
    const Frame& frame = whole.frames[i];
    CHECK(frame.type == pieces.frames[i].type);
    CHECK(frame.body == pieces.frames[i].body);
    CHECK_LE(frame.body.size(), cap);
    const std::string encoded = EncodeFrame(frame.type, frame.body);
    CHECK(stream.substr(offset, encoded.size()) == encoded)
        << "frame " << i << " does not re-encode to its bytes";
    offset += encoded.size();
    ParseBody(frame);
  }
  CHECK_EQ(offset, whole.consumed);
  return 0;
}
