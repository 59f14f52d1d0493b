// Feeds arbitrary bytes to the client protocol's server side: first to the
// decoder the server reads with (net/api/client_protocol.h CallDecoder),
// then, as a client would send them, to a real ApiServer over loopback TCP
// (net/api/api_server.h), whose handler answers each call at once or holds
// it for later as the input says.
//
// Checked:
//   - the decoder gives the same calls and the same error however the
//     stream is split, holds at most one frame plus one feed, and every
//     call it returns re-serializes stably;
//   - the server reaches the verdict the decoder and the server's rules
//     predict (a model over the decoded calls: duplicate call ids in
//     flight close the connection, calls beyond calls_in_flight_max are
//     REJECTED at once, a decoder error closes the connection with its
//     reason), hands exactly the predicted calls to the handler, and keeps
//     its invariants;
//   - every reply the client reads answers one of its calls with the
//     answer the handler gave (and, when the connection stays open, every
//     call gets exactly one); replies held past the connection's close are
//     dropped safely.
//
// Input: byte 0 picks the body cap, calls_in_flight_max and whether the
// frames' checksums are repaired (so mutated bodies reach the protobuf
// parser and the server's rules instead of all failing the CRC), byte 1
// seeds the split and which calls the handler holds, the rest is the
// stream.
#include <libdeflate.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/base/check.h"
#include "core/base/logger.h"
#include "core/proto/api.pb.h"
#include "net/api/api_server.h"
#include "net/api/client_handler.h"
#include "net/api/client_protocol.h"
#include "net/api/client_protocol.pb.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"
#include "net/transport/frame.h"
#include "net/transport/socket.h"

namespace {

using blixard::NullLogger;
using blixard::MonoMicros;
using blixard::api::ClientCall;
using blixard::api::ClientReply;
using blixard::api::ClientRequest;
using blixard::api::ClientResponse;
using blixard::net::ApiCloseReason;
using blixard::net::ApiServer;
using blixard::net::ApiServerOptions;
using blixard::net::CallDecoder;
using blixard::net::ClientReplyFn;
using blixard::net::EventLoop;
using blixard::net::kCallBodyBytesDefault;
using blixard::net::kFrameHeaderBytes;
using blixard::net::ReplyDecoder;
using blixard::net::StreamError;
using blixard::net::UniqueFd;

constexpr size_t kCaps[] = {kCallBodyBytesDefault, 1024};
constexpr size_t kInFlightLimits[] = {1, 2, 4, 256};
constexpr size_t kChunkBytesMax = 97;
// Every wait is bounded: a server that never gets there is a finding.
constexpr int64_t kPatienceUs = 10'000'000;

uint64_t Step(uint64_t& state) {
  state = state * 6364136223846793005ULL + 1442695040888963407ULL;
  return state >> 33;
}

struct Decoded {
  std::vector<ClientCall> calls;
  StreamError error = StreamError::kNone;
  absl::Status status;
};

void TakeCalls(CallDecoder& decoder, Decoded* out) {
  while (!decoder.failed()) {
    absl::StatusOr<std::optional<ClientCall>> next = decoder.Next();
    if (!next.ok()) {
      out->error = decoder.error();
      out->status = next.status();
      CHECK(out->error != StreamError::kNone);
      return;
    }
    if (!next->has_value()) return;
    out->calls.push_back(std::move(**next));
  }
}

ApiCloseReason ReasonFor(StreamError error) {
  switch (error) {
    case StreamError::kBadFrame:
      return ApiCloseReason::kBadFrame;
    case StreamError::kFrameTooLarge:
      return ApiCloseReason::kFrameTooLarge;
    case StreamError::kBadChecksum:
      return ApiCloseReason::kBadChecksum;
    case StreamError::kWrongProtocol:
      return ApiCloseReason::kWrongProtocol;
    case StreamError::kUnexpectedFrame:
      return ApiCloseReason::kUnexpectedFrame;
    case StreamError::kBadBody:
      return ApiCloseReason::kBadBody;
    case StreamError::kNone:
      break;
  }
  CHECK(false);
  return ApiCloseReason::kBadFrame;
}

// Rewrites the CRC-32 of every whole frame in `stream`, as an encoder
// would have, so that what follows the checksum check gets fuzzed.
void RepairChecksums(std::string* stream) {
  size_t at = 0;
  // Bounded: each pass moves past at least one header.
  while (stream->size() - at >= kFrameHeaderBytes) {
    char* header = stream->data() + at;
    uint32_t length = 0;
    for (int i = 3; i >= 0; --i) {
      length = (length << 8) | static_cast<uint8_t>(header[8 + i]);
    }
    if (length > stream->size() - at - kFrameHeaderBytes) return;
    const uint32_t crc =
        libdeflate_crc32(0, header + kFrameHeaderBytes, length);
    for (int i = 0; i < 4; ++i) {
      header[12 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    }
    at += kFrameHeaderBytes + length;
  }
}

// One loop and one server per (cap, limit), kept across inputs: creating
// them costs more than an input.
struct Fixture {
  NullLogger logger;
  std::unique_ptr<EventLoop> loop;
  std::map<std::pair<size_t, size_t>, std::unique_ptr<ApiServer>> servers;
  // The current input's handler script.
  uint64_t schedule = 0;
  uint64_t handled = 0;
  std::vector<ClientReplyFn> held;

  Fixture() {
    absl::StatusOr<std::unique_ptr<EventLoop>> created = EventLoop::Create();
    CHECK(created.ok()) << created.status();
    loop = std::move(*created);
  }

  ApiServer& Server(size_t cap, size_t limit) {
    std::unique_ptr<ApiServer>& server = servers[{cap, limit}];
    if (server == nullptr) {
      ApiServerOptions options;
      options.logger = &logger;
      options.frame_body_bytes_max = cap;
      options.calls_in_flight_max = limit;
      absl::StatusOr<std::unique_ptr<ApiServer>> created = ApiServer::Create(
          loop.get(), options, [this](ClientRequest, ClientReplyFn reply) {
            ++handled;
            if (Step(schedule) % 3 == 0) {
              held.push_back(std::move(reply));
              return;
            }
            ClientResponse response;
            response.set_status(ClientResponse::STATUS_OK);
            response.set_index(handled);
            reply(response);
          });
      CHECK(created.ok()) << created.status();
      server = std::move(*created);
    }
    return *server;
  }

  bool RunUntil(const std::function<bool()>& done) {
    const MonoMicros give_up = loop->clock().NowMicros() + kPatienceUs;
    while (!done()) {
      if (loop->clock().NowMicros() >= give_up) return false;
      loop->RunOnce(absl::Milliseconds(1));
    }
    return true;
  }
};

uint64_t ClosedTotal(const ApiServer& server) {
  uint64_t total = 0;
  for (uint64_t count : server.counters().closed) total += count;
  return total;
}

// One reply the client should get for a call.
struct Answer {
  enum class Kind { kOk, kRejected, kHeld } kind;
  uint64_t index = 0;  // kOk: the handled call's number
};

// What the server must do with the decoded calls (its rules, restated).
struct Expected {
  std::optional<ApiCloseReason> close;
  uint64_t handled = 0;
  // Per call id, the replies due, in the order they are produced: a call
  // id may be used again once its call was answered.
  std::map<uint64_t, std::deque<Answer>> answers;
  size_t answer_count = 0;
  std::set<uint64_t> held;  // call ids the handler holds at the end
};

Expected Predict(const Decoded& decoded, size_t limit, uint64_t schedule) {
  Expected expected;
  for (const ClientCall& call : decoded.calls) {
    const uint64_t id = call.call_id();
    if (expected.held.count(id) != 0) {
      expected.close = ApiCloseReason::kDuplicateCallId;
      return expected;
    }
    ++expected.answer_count;
    if (expected.held.size() >= limit) {
      expected.answers[id].push_back({Answer::Kind::kRejected});
      continue;
    }
    ++expected.handled;
    if (Step(schedule) % 3 == 0) {
      expected.held.insert(id);
      expected.answers[id].push_back({Answer::Kind::kHeld});
    } else {
      expected.answers[id].push_back({Answer::Kind::kOk, expected.handled});
    }
  }
  if (decoded.error != StreamError::kNone) expected.close = ReasonFor(decoded.error);
  return expected;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t cap = kCaps[data[0] % 2];
  const size_t limit = kInFlightLimits[(data[0] >> 1) % 4];
  uint64_t split_state = data[1];
  const uint64_t schedule_seed = data[1] ^ 0x5a5a;
  std::string bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  if ((data[0] & 0x10) != 0) RepairChecksums(&bytes);
  const absl::string_view stream(bytes);

  // --- The decoder alone: all at once, then in pieces. ---
  Decoded whole;
  {
    CallDecoder decoder(cap);
    decoder.Feed(stream);
    TakeCalls(decoder, &whole);
    decoder.CheckInvariants();
  }
  Decoded pieces;
  {
    CallDecoder decoder(cap);
    size_t at = 0;
    while (at < stream.size() && !decoder.failed()) {
      const size_t n =
          std::min<size_t>(1 + Step(split_state) % kChunkBytesMax, stream.size() - at);
      decoder.Feed(stream.substr(at, n));
      at += n;
      TakeCalls(decoder, &pieces);
      decoder.CheckInvariants();
      CHECK_LE(decoder.buffered_bytes(), kFrameHeaderBytes + cap + kChunkBytesMax);
    }
  }
  CHECK_EQ(whole.calls.size(), pieces.calls.size());
  CHECK(whole.error == pieces.error);
  CHECK(whole.status == pieces.status) << whole.status << " vs " << pieces.status;
  for (size_t i = 0; i < whole.calls.size(); ++i) {
    const std::string serialized = whole.calls[i].SerializeAsString();
    CHECK(serialized == pieces.calls[i].SerializeAsString());
    CHECK_NE(whole.calls[i].call_id(), 0u);
    ClientCall again;
    CHECK(again.ParseFromString(serialized));
    CHECK(again.SerializeAsString() == serialized)
        << "call " << i << " is unstable";
  }

  // --- The same bytes to a real server. ---
  static Fixture* fixture = new Fixture();
  Fixture& f = *fixture;
  ApiServer& server = f.Server(cap, limit);
  f.schedule = schedule_seed;
  f.handled = 0;
  f.held.clear();
  const Expected expected = Predict(whole, limit, schedule_seed);
  const uint64_t accepted_before = server.counters().accepted;
  const uint64_t closed_before = ClosedTotal(server);
  const uint64_t read_before = server.counters().bytes_read;
  const uint64_t calls_before = server.counters().calls;
  const uint64_t reason_before =
      expected.close.has_value() ? server.counters().closed_by(*expected.close)
                                 : 0;

  absl::StatusOr<blixard::net::Dialing> dialing =
      blixard::net::StartConnect({"127.0.0.1", server.port()});
  CHECK(dialing.ok()) << dialing.status();
  UniqueFd client = std::move(dialing->fd);
  // Wait for the connect, then write everything (the server may close
  // early: then the rest of the stream is moot).
  CHECK(f.RunUntil([&] {
    sockaddr_in peer{};
    socklen_t peer_size = sizeof(peer);
    return getpeername(client.get(), reinterpret_cast<sockaddr*>(&peer),
                       &peer_size) == 0;
  }));
  size_t written = 0;
  while (written < stream.size()) {
    const ssize_t sent = send(client.get(), stream.data() + written,
                              stream.size() - written, MSG_NOSIGNAL);
    if (sent > 0) {
      written += static_cast<size_t>(sent);
    } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      f.loop->RunOnce(absl::Milliseconds(1));
    } else if (sent < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // the server closed it
    }
  }
  CHECK(f.RunUntil([&] {
    return server.counters().accepted == accepted_before + 1 &&
           (ClosedTotal(server) > closed_before ||
            server.counters().bytes_read - read_before == stream.size());
  })) << server.DebugString();

  CHECK_EQ(server.counters().calls - calls_before, expected.handled);
  CHECK_EQ(f.handled, expected.handled);
  if (expected.close.has_value()) {
    CHECK(f.RunUntil([&] { return ClosedTotal(server) > closed_before; }));
    CHECK_EQ(server.counters().closed_by(*expected.close), reason_before + 1)
        << blixard::net::ApiCloseReasonName(*expected.close) << " expected\n"
        << server.DebugString();
    CHECK_EQ(server.connections(), 0u);
  } else {
    CHECK_EQ(ClosedTotal(server), closed_before) << server.DebugString();
    CHECK_EQ(server.connections(), 1u);
    CHECK_EQ(server.calls_in_flight(), expected.held.size());
  }
  server.CheckInvariants();

  // The held calls are answered now, last first.
  CHECK_EQ(f.held.size(), expected.held.size());
  for (auto it = f.held.rbegin(); it != f.held.rend(); ++it) {
    ClientResponse response;
    response.set_status(ClientResponse::STATUS_UNKNOWN);
    (*it)(response);
  }
  f.held.clear();
  server.CheckInvariants();

  // Read what came back: each reply answers one call, once, as predicted.
  ReplyDecoder replies(blixard::net::kFrameBodyBytesMax);
  std::map<uint64_t, std::deque<Answer>> due = expected.answers;
  size_t answered = 0;
  bool ended = false;
  auto read_replies = [&] {
    char buffer[4096];
    while (!ended) {
      const ssize_t got = recv(client.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR)) {
        ended = true;
        break;
      }
      if (got < 0) break;
      replies.Feed(absl::string_view(buffer, static_cast<size_t>(got)));
      while (true) {
        absl::StatusOr<std::optional<ClientReply>> next = replies.Next();
        CHECK(next.ok()) << "the server sent a bad reply: " << next.status();
        if (!next->has_value()) break;
        const ClientReply& reply = **next;
        auto queue = due.find(reply.call_id());
        CHECK(queue != due.end() && !queue->second.empty())
            << "a reply to call " << reply.call_id() << " that is not due";
        const Answer answer = queue->second.front();
        queue->second.pop_front();
        ++answered;
        const ClientResponse& response = reply.response();
        switch (answer.kind) {
          case Answer::Kind::kRejected:
            CHECK(response.status() == ClientResponse::STATUS_REJECTED);
            break;
          case Answer::Kind::kHeld:
            CHECK(response.status() == ClientResponse::STATUS_UNKNOWN);
            break;
          case Answer::Kind::kOk:
            CHECK(response.status() == ClientResponse::STATUS_OK);
            CHECK_EQ(response.index(), answer.index);
            break;
        }
      }
    }
  };
  if (expected.close.has_value()) {
    // Some replies may have left before the close; the rest are gone.
    CHECK(f.RunUntil([&] {
      read_replies();
      return ended;
    }));
  } else {
    CHECK(f.RunUntil([&] {
      read_replies();
      return answered == expected.answer_count || ended;
    }));
    CHECK_EQ(answered, expected.answer_count);
    CHECK(!ended);
  }

  // End with a reset (SO_LINGER 0), so a long run leaves no TIME_WAIT
  // sockets behind to exhaust the ephemeral ports.
  linger reset{1, 0};
  CHECK_EQ(setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)),
           0);
  client.Reset();
  CHECK(f.RunUntil([&] { return server.connections() == 0; }));
  server.CheckInvariants();
  f.loop->CheckInvariants();
  return 0;
}
