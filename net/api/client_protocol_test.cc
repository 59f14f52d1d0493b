#include "net/api/client_protocol.h"

#include <optional>
#include <string>
#include <vector>

#include "core/base/status_matchers.h"
#include "core/proto/api.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/api/client_protocol.pb.h"
#include "net/transport/frame.h"

namespace blixard::net {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;

api::ClientCall Call(uint64_t id, const std::string& key) {
  api::ClientCall call;
  call.set_call_id(id);
  call.mutable_request()->mutable_command()->mutable_kv_put()->set_key(key);
  return call;
}

// Every call `decoder` yields, up to the first error (returned).
absl::Status TakeAll(CallDecoder& decoder, std::vector<api::ClientCall>* calls) {
  while (true) {
    absl::StatusOr<std::optional<api::ClientCall>> next = decoder.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return absl::OkStatus();
    calls->push_back(std::move(**next));
  }
}

TEST(ClientProtocolTest, CallsRoundTripWhateverTheSplit) {
  const std::string stream = EncodeCallFrame(Call(1, "a")) +
                             EncodeCallFrame(Call(2, std::string(5000, 'b'))) +
                             EncodeCallFrame(Call(3, "c"));
  EXPECT_EQ(stream.substr(0, 4), "BLXC");
  for (size_t piece : {size_t{1}, size_t{7}, size_t{16}, stream.size()}) {
    CallDecoder decoder(kCallBodyBytesDefault);
    std::vector<api::ClientCall> calls;
    for (size_t at = 0; at < stream.size(); at += piece) {
      decoder.Feed(absl::string_view(stream).substr(at, piece));
      ASSERT_THAT(TakeAll(decoder, &calls), IsOk());
      decoder.CheckInvariants();
    }
    ASSERT_EQ(calls.size(), 3u) << "pieces of " << piece;
    EXPECT_EQ(calls[0].call_id(), 1u);
    EXPECT_EQ(calls[1].request().command().kv_put().key().size(), 5000u);
    EXPECT_EQ(calls[2].call_id(), 3u);
    EXPECT_EQ(decoder.envelopes_decoded(), 3u);
    EXPECT_EQ(decoder.buffered_bytes(), 0u);
  }
}

TEST(ClientProtocolTest, RepliesRoundTrip) {
  api::ClientReply reply;
  reply.set_call_id(42);
  reply.mutable_response()->set_status(api::ClientResponse::STATUS_NOT_LEADER);
  reply.mutable_response()->set_leader_hint(3);
  ReplyDecoder decoder(kFrameBodyBytesMax);
  decoder.Feed(EncodeReplyFrame(reply));
  absl::StatusOr<std::optional<api::ClientReply>> next = decoder.Next();
  ASSERT_THAT(next, IsOk());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->call_id(), 42u);
  EXPECT_EQ((*next)->response().leader_hint(), 3u);
  EXPECT_EQ(EnvelopeBytes(reply), reply.ByteSizeLong());
}

TEST(ClientProtocolTest, EachRefusalIsClassifiedAndFinal) {
  struct Case {
    std::string bytes;
    StreamError error;
    const char* says;
  };
  api::ClientReply reply;
  reply.set_call_id(1);
  std::string corrupt = EncodeCallFrame(Call(1, "k"));
  corrupt.back() ^= 0x01;
  const Case cases[] = {
      {"not a frame at all", StreamError::kBadFrame, "bad frame magic"},
      {EncodeFrame(FrameType::kPeerMessage, ""), StreamError::kWrongProtocol,
       "a peer-protocol frame"},
      {EncodeReplyFrame(reply), StreamError::kUnexpectedFrame,
       "a client_reply frame sent to a server"},
      {EncodeFrame(FrameType::kClientCall, "\x0a\x05"), StreamError::kBadBody,
       "does not parse"},
      {EncodeFrame(FrameType::kClientCall, Call(0, "k").SerializeAsString()),
       StreamError::kBadBody, "call id 0"},
      {corrupt, StreamError::kBadChecksum, "CRC-32"},
      {EncodeCallFrame(Call(1, std::string(2000, 'x'))),
       StreamError::kFrameTooLarge, "above the limit of 1024"},
  };
  for (const Case& c : cases) {
    CallDecoder decoder(1024);
    decoder.Feed(c.bytes);
    const absl::Status first = decoder.Next().status();
    EXPECT_FALSE(first.ok());
    EXPECT_THAT(std::string(first.message()), HasSubstr(c.says))
        << StreamErrorName(c.error);
    EXPECT_EQ(decoder.error(), c.error) << StreamErrorName(c.error);
    EXPECT_TRUE(decoder.failed());
    EXPECT_EQ(decoder.Next().status(), first);
    decoder.CheckInvariants();
  }
}

TEST(ClientProtocolTest, AClientRefusesACallFrame) {
  ReplyDecoder decoder(kFrameBodyBytesMax);
  decoder.Feed(EncodeCallFrame(Call(1, "k")));
  EXPECT_THAT(decoder.Next(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a client_call frame sent to a client")));
  EXPECT_EQ(decoder.error(), StreamError::kUnexpectedFrame);
}

TEST(ClientProtocolTest, NamesAreStable) {
  EXPECT_EQ(StreamErrorName(StreamError::kNone), "none");
  EXPECT_EQ(StreamErrorName(StreamError::kWrongProtocol), "wrong_protocol");
  EXPECT_EQ(StreamErrorName(StreamError::kBadBody), "bad_body");
}

TEST(ClientProtocolDeathTest, EncodingCallIdZeroIsABug) {
  EXPECT_DEATH(EncodeCallFrame(Call(0, "k")), "call id 0");
}

}  // namespace
}  // namespace blixard::net
