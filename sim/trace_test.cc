#include "sim/trace.h"

#include <sstream>
#include <string>

#include "core/base/rng.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

TEST(TraceTest, EscapesJsonStringsToValidAscii) {
  EXPECT_EQ(JsonEscape("plain"), "plain");
  EXPECT_EQ(JsonEscape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(JsonEscape("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
  EXPECT_EQ(JsonEscape(std::string("\x00\x01\x1f", 3)),
            "\\u0000\\u0001\\u001f");
  EXPECT_EQ(JsonEscape("\x7f\xff\xc3\xa9"), "\\u007f\\u00ff\\u00c3\\u00a9");
  EXPECT_EQ(JsonEscape("/ ok"), "/ ok");
}

TEST(TraceTest, Hex64IsSixteenLowercaseDigits) {
  EXPECT_EQ(Hex64(0), "0000000000000000");
  EXPECT_EQ(Hex64(0xdeadBEEF), "00000000deadbeef");
  EXPECT_EQ(Hex64(UINT64_MAX), "ffffffffffffffff");
}

TEST(TraceTest, WritesEveryLineTypeInTheDocumentedShape) {
  std::ostringstream out;
  TraceWriter trace(&out);
  trace.Header(42, 5, JsonLine().Str("faults", "heavy"));
  trace.Role(1500, NodeId(2), "leader", Term(3));
  trace.Apply(1600, NodeId(2), Index(7), Term(3), 0xabc);
  trace.Fault(1700, "partition", {NodeId(1), NodeId(2)},
              JsonLine().Nodes("others", {NodeId(3)}));
  trace.Invoke(1800, 4, 9, "cas", "k\"1", std::string("new"),
               std::string("old"));
  trace.Invoke(1801, 4, 10, "get", "k");
  trace.Complete(1900, 4, 9, "fail");
  trace.Complete(1901, 4, 10, "ok", std::string("v"));
  trace.Event(2000, "drop", JsonLine().Uint("from", 1).Uint("to", 2));
  const uint64_t hash = trace.Result(true, JsonLine().Uint("events", 99),
                                     JsonLine().Uint("wall_ms", 12));
  EXPECT_EQ(
      out.str(),
      "{\"type\":\"header\",\"seed\":42,\"nodes\":5,\"faults\":\"heavy\"}\n"
      "{\"t\":1500,\"type\":\"role\",\"node\":2,\"role\":\"leader\",\"term\":3}"
      "\n"
      "{\"t\":1600,\"type\":\"apply\",\"node\":2,\"index\":7,\"term\":3,"
      "\"hash\":\"0000000000000abc\"}\n"
      "{\"t\":1700,\"type\":\"fault\",\"fault\":\"partition\",\"nodes\":[1,2],"
      "\"others\":[3]}\n"
      "{\"t\":1800,\"type\":\"invoke\",\"client\":4,\"op_id\":9,\"op\":\"cas\","
      "\"key\":\"k\\\"1\",\"value\":\"new\",\"expected\":\"old\"}\n"
      "{\"t\":1801,\"type\":\"invoke\",\"client\":4,\"op_id\":10,\"op\":"
      "\"get\","
      "\"key\":\"k\"}\n"
      "{\"t\":1900,\"type\":\"complete\",\"client\":4,\"op_id\":9,\"status\":"
      "\"fail\"}\n"
      "{\"t\":1901,\"type\":\"complete\",\"client\":4,\"op_id\":10,\"status\":"
      "\"ok\","
      "\"value\":\"v\"}\n"
      "{\"t\":2000,\"type\":\"drop\",\"from\":1,\"to\":2}\n"
      "{\"type\":\"result\",\"status\":\"pass\",\"events\":99,\"trace_hash\":"
      "\"" +
          Hex64(hash) + "\",\"wall_ms\":12}\n");
  EXPECT_EQ(trace.lines(), 10u);
  EXPECT_TRUE(trace.finished());
}

TEST(TraceTest, WritesSnapshotAndStopLines) {
  std::ostringstream out;
  TraceWriter trace(&out);
  trace.Snapshot(2100, NodeId(3), Index(500), Term(4), 0xfeed);
  trace.Stop(2200, NodeId(3), "durable write \"failed\"");
  EXPECT_EQ(out.str(),
            "{\"t\":2100,\"type\":\"snapshot\",\"node\":3,\"index\":500,\"term\":4,"
            "\"digest\":\"000000000000feed\"}\n"
            "{\"t\":2200,\"type\":\"stop\",\"node\":3,\"why\":\"durable write "
            "\\\"failed\\\"\"}\n");
}

TEST(TraceTest, LineListenerSeesExactlyWhatTheStreamGets) {
  std::ostringstream out;
  TraceWriter trace(&out);
  std::string heard;
  trace.SetLineListener([&heard](absl::string_view line) {
    heard.append(line.data(), line.size());
    heard += '\n';
  });
  trace.Header(1, 3);
  trace.Apply(5, NodeId(1), Index(1), Term(1), 7);
  trace.Snapshot(6, NodeId(2), Index(9), Term(1), 8);
  trace.Stop(7, NodeId(2), "why");
  trace.Result(true, JsonLine(), JsonLine().Uint("wall_ms", 3));
  EXPECT_EQ(heard, out.str());
}

TEST(TraceTest, HashIsStableHash64OfEveryLineBeforeTheResult) {
  std::ostringstream out;
  TraceWriter trace(&out);
  trace.Header(1, 3);
  trace.Role(10, NodeId(1), "candidate", Term(1));
  const std::string before_result = out.str();
  const uint64_t hash = trace.Result(false, JsonLine());
  EXPECT_EQ(hash, StableHash64(before_result));
}

TEST(TraceTest, WallClockFiguresDoNotChangeTheHash) {
  TraceWriter a(nullptr), b(nullptr);
  a.Header(1, 3);
  b.Header(1, 3);
  EXPECT_EQ(a.Result(true, JsonLine(), JsonLine().Uint("wall_ms", 1)),
            b.Result(true, JsonLine(), JsonLine().Uint("wall_ms", 999)));
}

TEST(TraceTest, AnyDifferenceChangesTheHash) {
  TraceWriter a(nullptr), b(nullptr);
  a.Header(1, 3);
  b.Header(1, 3);
  a.Apply(5, NodeId(1), Index(1), Term(1), 7);
  b.Apply(6, NodeId(1), Index(1), Term(1), 7);
  EXPECT_NE(a.hash(), b.hash());
}

TEST(TraceDeathTest, NoLineAfterTheResult) {
  TraceWriter trace(nullptr);
  trace.Header(1, 1);
  trace.Result(true, JsonLine());
  EXPECT_DEATH(trace.Role(1, NodeId(1), "leader", Term(1)), "after the result");
}

}  // namespace
}  // namespace blixard::sim
