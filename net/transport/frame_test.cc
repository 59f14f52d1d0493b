#include "net/transport/frame.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/rng.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Takes every complete frame out of `decoder`; stops at the first error,
// which it returns.
absl::Status TakeAll(FrameDecoder& decoder, std::vector<Frame>* frames) {
  while (true) {
    absl::StatusOr<std::optional<Frame>> next = decoder.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return absl::OkStatus();
    frames->push_back(std::move(**next));
  }
}

std::string ThreeFrames() {
  std::string stream;
  AppendFrame(FrameType::kHello, "hello body", &stream);
  AppendFrame(FrameType::kPeerMessage, "", &stream);
  AppendFrame(FrameType::kPeerMessage, std::string(3000, 'x'), &stream);
  return stream;
}

void ExpectThreeFrames(const std::vector<Frame>& frames) {
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].type, FrameType::kHello);
  EXPECT_EQ(frames[0].body, "hello body");
  EXPECT_EQ(frames[1].type, FrameType::kPeerMessage);
  EXPECT_EQ(frames[1].body, "");
  EXPECT_EQ(frames[2].type, FrameType::kPeerMessage);
  EXPECT_EQ(frames[2].body, std::string(3000, 'x'));
}

// Header bytes with the given fields (the CRC is of an empty body unless
// told).
std::string Header(uint32_t magic, uint8_t version, uint8_t type,
                   uint16_t flags, uint32_t length, uint32_t crc = 0) {
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(magic >> (8 * i)));
  out.push_back(static_cast<char>(version));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags & 0xff));
  out.push_back(static_cast<char>(flags >> 8));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(length >> (8 * i)));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(crc >> (8 * i)));
  return out;
}

TEST(FrameTest, HeaderLayoutIsTheDocumentedOne) {
  // CRC-32 (IEEE) of "abc" is 0x352441c2.
  const std::string frame = EncodeFrame(FrameType::kHello, "abc");
  const std::string want =
      std::string("BLXF") + std::string("\x01\x01\x00\x00", 4) +
      std::string("\x03\x00\x00\x00", 4) + std::string("\xc2\x41\x24\x35", 4) +
      "abc";
  EXPECT_EQ(frame, want);
  EXPECT_EQ(frame.size(), FrameBytes(3));
}

TEST(FrameTest, SealFrameFramesInPlaceLikeAppendFrame) {
  std::string sealed(kFrameHeaderBytes, '\0');
  sealed += "body bytes";
  SealFrame(FrameType::kPeerMessage, &sealed);
  EXPECT_EQ(sealed, EncodeFrame(FrameType::kPeerMessage, "body bytes"));
}

TEST(FrameTest, DecodesWhatWasEncoded) {
  FrameDecoder decoder;
  decoder.Feed(ThreeFrames());
  std::vector<Frame> frames;
  EXPECT_THAT(TakeAll(decoder, &frames), IsOk());
  ExpectThreeFrames(frames);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  EXPECT_EQ(decoder.frames_decoded(), 3u);
  EXPECT_EQ(decoder.bytes_consumed(), ThreeFrames().size());
  decoder.CheckInvariants();
}

TEST(FrameTest, ByteAtATimeGivesTheSameFrames) {
  const std::string stream = ThreeFrames();
  FrameDecoder decoder;
  std::vector<Frame> frames;
  for (char byte : stream) {
    decoder.Feed(absl::string_view(&byte, 1));
    ASSERT_THAT(TakeAll(decoder, &frames), IsOk());
    decoder.CheckInvariants();
  }
  ExpectThreeFrames(frames);
}

TEST(FrameTest, AnySplitGivesTheSameFrames) {
  const std::string stream = ThreeFrames();
  Rng rng(7);
  for (int round = 0; round < 200; ++round) {
    FrameDecoder decoder;
    std::vector<Frame> frames;
    size_t at = 0;
    while (at < stream.size()) {
      const size_t n = std::min<size_t>(rng.Range(1, 700), stream.size() - at);
      decoder.Feed(absl::string_view(stream).substr(at, n));
      at += n;
      ASSERT_THAT(TakeAll(decoder, &frames), IsOk());
    }
    ExpectThreeFrames(frames);
  }
}

TEST(FrameTest, PartialFramesWaitForMoreBytes) {
  const std::string frame = EncodeFrame(FrameType::kPeerMessage, "0123456789");
  FrameDecoder decoder;
  decoder.Feed(absl::string_view(frame).substr(0, 5));  // part of the header
  absl::StatusOr<std::optional<Frame>> next = decoder.Next();
  ASSERT_THAT(next, IsOk());
  EXPECT_FALSE(next->has_value());
  decoder.Feed(absl::string_view(frame).substr(5, 15));  // header + 4 body
  next = decoder.Next();
  ASSERT_THAT(next, IsOk());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(decoder.buffered_bytes(), 20u);
  decoder.Feed(absl::string_view(frame).substr(20));
  next = decoder.Next();
  ASSERT_THAT(next, IsOk());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->body, "0123456789");
}

TEST(FrameTest, GarbageIsABadMagic) {
  FrameDecoder decoder;
  decoder.Feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  absl::StatusOr<std::optional<Frame>> next = decoder.Next();
  EXPECT_THAT(next, StatusIs(absl::StatusCode::kInvalidArgument,
                             AllOf(HasSubstr("bad frame magic 0x20544547"),
                                   HasSubstr("frame 1 at stream byte 0"))));
  EXPECT_EQ(decoder.error(), FrameError::kBadMagic);
  EXPECT_TRUE(decoder.failed());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  decoder.CheckInvariants();
}

TEST(FrameTest, BadVersionTypeAndFlagsAreNamed) {
  struct Case {
    std::string header;
    FrameError error;
    const char* says;
  };
  const Case cases[] = {
      {Header(kFrameMagic, 2, 1, 0, 0), FrameError::kBadVersion,
       "unsupported frame version 2"},
      {Header(kFrameMagic, 1, 0, 0, 0), FrameError::kBadType,
       "unknown frame type 0"},
      {Header(kFrameMagic, 1, 3, 0, 0), FrameError::kBadType,
       "unknown frame type 3"},
      {Header(kFrameMagic, 1, 2, 0x80, 0), FrameError::kBadFlags,
       "unknown frame flags 0x80"},
  };
  for (const Case& c : cases) {
    FrameDecoder decoder;
    decoder.Feed(c.header);
    EXPECT_THAT(decoder.Next(), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr(c.says)));
    EXPECT_EQ(decoder.error(), c.error) << FrameErrorName(c.error);
  }
}

TEST(FrameTest, OversizedLengthIsRefusedBeforeAnyBodyByte) {
  FrameDecoder decoder;
  decoder.Feed(Header(kFrameMagic, 1, 2, 0,
                      static_cast<uint32_t>(kFrameBodyBytesMax + 1)));
  EXPECT_THAT(decoder.Next(),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("frame body length 16777217 above the limit "
                                 "of 16777216 bytes")));
  EXPECT_EQ(decoder.error(), FrameError::kBodyTooLarge);
}

TEST(FrameTest, ASmallerCapIsHonoured) {
  FrameDecoder decoder(1024);
  decoder.Feed(EncodeFrame(FrameType::kPeerMessage, std::string(1024, 'a')));
  std::vector<Frame> frames;
  EXPECT_THAT(TakeAll(decoder, &frames), IsOk());
  EXPECT_EQ(frames.size(), 1u);
  decoder.Feed(EncodeFrame(FrameType::kPeerMessage, std::string(1025, 'a')));
  EXPECT_THAT(TakeAll(decoder, &frames),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("frame 2")));
}

TEST(FrameTest, LargestBodyRoundTrips) {
  const std::string body(kFrameBodyBytesMax, 'z');
  FrameDecoder decoder;
  decoder.Feed(EncodeFrame(FrameType::kPeerMessage, body));
  absl::StatusOr<std::optional<Frame>> next = decoder.Next();
  ASSERT_THAT(next, IsOk());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->body.size(), kFrameBodyBytesMax);
}

TEST(FrameTest, CorruptBodyIsDataLossNamingTheFrame) {
  const std::string first = EncodeFrame(FrameType::kHello, "fine");
  std::string second = EncodeFrame(FrameType::kPeerMessage, "payload");
  second[kFrameHeaderBytes + 2] ^= 0x01;
  FrameDecoder decoder;
  decoder.Feed(first + second);
  std::vector<Frame> frames;
  EXPECT_THAT(TakeAll(decoder, &frames),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("peer_message frame body CRC-32"),
                             HasSubstr("frame 2 at stream byte 20"))));
  EXPECT_EQ(frames.size(), 1u);  // the good frame before it still came out
  EXPECT_EQ(decoder.error(), FrameError::kBadChecksum);
}

TEST(FrameTest, ErrorsAreFinal) {
  FrameDecoder decoder;
  decoder.Feed("garbage garbage!");
  const absl::Status first = decoder.Next().status();
  ASSERT_FALSE(first.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(decoder.Next().status(), first);
  decoder.CheckInvariants();
}

TEST(FrameTest, NamesAreStable) {
  EXPECT_EQ(FrameTypeName(FrameType::kHello), "hello");
  EXPECT_EQ(FrameTypeName(FrameType::kPeerMessage), "peer_message");
  EXPECT_EQ(FrameTypeName(static_cast<FrameType>(9)), "unknown");
  EXPECT_EQ(FrameErrorName(FrameError::kBodyTooLarge), "body_too_large");
  EXPECT_EQ(FrameErrorName(FrameError::kBadChecksum), "bad_checksum");
}

TEST(FrameTest, ClientProtocolFramesRoundTripUnderTheirOwnMagic) {
  std::string stream;
  AppendFrame(FrameType::kClientCall, "call", &stream);
  AppendFrame(FrameType::kClientReply, "reply", &stream);
  EXPECT_EQ(stream.substr(0, 4), "BLXC");
  EXPECT_EQ(EncodeFrame(FrameType::kHello, "").substr(0, 4), "BLXF");
  FrameDecoder decoder(kFrameBodyBytesMax, FrameProtocol::kClient);
  EXPECT_EQ(decoder.protocol(), FrameProtocol::kClient);
  decoder.Feed(stream);
  std::vector<Frame> frames;
  EXPECT_THAT(TakeAll(decoder, &frames), IsOk());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, FrameType::kClientCall);
  EXPECT_EQ(frames[0].body, "call");
  EXPECT_EQ(frames[1].type, FrameType::kClientReply);
  EXPECT_EQ(frames[1].body, "reply");
  decoder.CheckInvariants();
}

TEST(FrameTest, TheOtherProtocolsMagicIsAWrongProtocolNotGarbage) {
  {
    FrameDecoder peer;
    peer.Feed(EncodeFrame(FrameType::kClientCall, "x"));
    EXPECT_THAT(peer.Next(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("a client-protocol frame"),
                               HasSubstr("on a peer-protocol stream"),
                               HasSubstr("wrong port?"))));
    EXPECT_EQ(peer.error(), FrameError::kWrongProtocol);
    peer.CheckInvariants();
  }
  {
    FrameDecoder client(kFrameBodyBytesMax, FrameProtocol::kClient);
    client.Feed(EncodeFrame(FrameType::kHello, "x"));
    EXPECT_THAT(client.Next(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("a peer-protocol frame (magic 0x46584c42) "
                                   "on a client-protocol stream")));
    EXPECT_EQ(client.error(), FrameError::kWrongProtocol);
  }
  {
    FrameDecoder client(kFrameBodyBytesMax, FrameProtocol::kClient);
    client.Feed("GET / HTTP/1.1\r\n\r\n");
    EXPECT_THAT(client.Next(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("want 0x43584c42")));
    EXPECT_EQ(client.error(), FrameError::kBadMagic);
  }
}

TEST(FrameTest, TypesOfTheOtherProtocolAreUnknownUnderEachMagic) {
  FrameDecoder client(kFrameBodyBytesMax, FrameProtocol::kClient);
  client.Feed(Header(kClientFrameMagic, 1, 2, 0, 0));
  EXPECT_THAT(client.Next(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown frame type 2 for the client protocol")));
  EXPECT_EQ(client.error(), FrameError::kBadType);
  FrameDecoder peer;
  peer.Feed(Header(kFrameMagic, 1, 4, 0, 0));
  EXPECT_THAT(peer.Next(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown frame type 4 for the peer protocol")));
}

TEST(FrameTest, ProtocolNamesAndMagics) {
  EXPECT_EQ(FrameProtocolName(FrameProtocol::kPeer), "peer");
  EXPECT_EQ(FrameProtocolName(FrameProtocol::kClient), "client");
  EXPECT_EQ(FrameMagic(FrameProtocol::kPeer), kFrameMagic);
  EXPECT_EQ(FrameMagic(FrameProtocol::kClient), kClientFrameMagic);
  EXPECT_EQ(FrameTypeProtocol(FrameType::kPeerMessage), FrameProtocol::kPeer);
  EXPECT_EQ(FrameTypeProtocol(FrameType::kClientReply), FrameProtocol::kClient);
  EXPECT_EQ(FrameTypeName(FrameType::kClientCall), "client_call");
  EXPECT_EQ(FrameTypeName(FrameType::kClientReply), "client_reply");
  EXPECT_EQ(FrameErrorName(FrameError::kWrongProtocol), "wrong_protocol");
}

TEST(FrameDeathTest, EncodingAnOversizedBodyIsABug) {
  const std::string body(kFrameBodyBytesMax + 1, 'a');
  EXPECT_DEATH(EncodeFrame(FrameType::kPeerMessage, body), "too large");
}

}  // namespace
}  // namespace blixard::net
