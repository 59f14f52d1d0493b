#include "sim/checker/trace_order.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::testing::HasSubstr;

std::string Trace(const std::vector<std::string>& lines) {
  return absl::StrJoin(lines, "\n") + "\n";
}

const char kHeader[] = R"({"type":"header","seed":7,"nodes":3,"faults":"heavy"})";
const char kResult[] = R"({"type":"result","status":"pass","trace_hash":"0000000000000001"})";

std::string Apply(int64_t t, int node, int index) {
  return "{\"t\":" + std::to_string(t) + ",\"type\":\"apply\",\"node\":" + std::to_string(node) +
         ",\"index\":" + std::to_string(index) + ",\"term\":1,\"hash\":\"00000000000000aa\"}";
}
std::string Snapshot(int64_t t, int node, int index) {
  return "{\"t\":" + std::to_string(t) + ",\"type\":\"snapshot\",\"node\":" + std::to_string(node) +
         ",\"index\":" + std::to_string(index) + ",\"term\":2,\"digest\":\"00000000000000bb\"}";
}
std::string Fault(int64_t t, const std::string& fault, const std::string& nodes) {
  return "{\"t\":" + std::to_string(t) + ",\"type\":\"fault\",\"fault\":\"" + fault +
         "\",\"nodes\":[" + nodes + "]}";
}
std::string Stop(int64_t t, int node) {
  return "{\"t\":" + std::to_string(t) + ",\"type\":\"stop\",\"node\":" + std::to_string(node) +
         ",\"why\":\"disk write failed\"}";
}

TEST(TraceOrderTest, AcceptsConsecutiveAppliesSnapshotsAndLifetimes) {
  const std::string trace = Trace({
      kHeader,
      R"({"t":10,"type":"role","node":1,"role":"leader","term":1})",
      Apply(20, 1, 1),
      Apply(20, 2, 1),
      Apply(21, 1, 2),
      Apply(22, 2, 2),
      // A leader's snapshot moves n2 forward; applies go on after it.
      Snapshot(30, 2, 9),
      Apply(31, 2, 10),
      Apply(31, 1, 3),
      // A snapshot at the index already applied is not a step back.
      Snapshot(32, 1, 3),
      Apply(33, 1, 4),
      // n1 crashes; restarted, it replays from 1 (no snapshot of its own).
      Fault(40, "crash", "1"),
      Fault(50, "restart", "1"),
      Apply(50, 1, 1),
      Apply(50, 1, 2),
      // n2 stops itself; restarted, it boots from its snapshot at 9.
      Stop(60, 2),
      Fault(70, "restart", "2"),
      Snapshot(70, 2, 9),
      Apply(70, 2, 10),
      // A restart naming an up node (n1) leaves its lifetime alone.
      Fault(80, "crash", "2"),
      Fault(90, "restart", "1,2"),
      Apply(90, 1, 3),
      Apply(90, 2, 1),
      R"({"t":95,"type":"fault","fault":"refused_start","nodes":[3],"error":"x"})",
      R"({"t":96,"type":"invoke","client":1,"op_id":1,"op":"put","key":"k\"\u00ff"})",
      kResult,
  });
  TraceOrderChecker checker;
  size_t start = 0;
  while (start < trace.size()) {
    const size_t end = trace.find('\n', start);
    ASSERT_TRUE(checker.AddLine(absl::string_view(trace).substr(start, end - start)).ok())
        << checker.status();
    start = end + 1;
  }
  EXPECT_EQ(checker.applies(), 12u);
  EXPECT_EQ(checker.snapshots(), 3u);
  EXPECT_EQ(checker.restarts(), 3u);
  EXPECT_TRUE(CheckTraceOrder(trace).ok());
  // The last line needs no newline.
  EXPECT_TRUE(CheckTraceOrder(kHeader + ("\n" + Apply(1, 1, 1))).ok());
}

TEST(TraceOrderTest, AGapInAppliesNamesTheLineAndTheExpectedIndex) {
  const absl::Status s = CheckTraceOrder(Trace({kHeader, Apply(1, 1, 1), Apply(2, 1, 3)}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line 3: n1 applied index 3, expected 2"));
  EXPECT_THAT(s.message(), HasSubstr("the next after index 1, line 2"));
}

TEST(TraceOrderTest, ARepeatedApplyIsRefused) {
  const absl::Status s = CheckTraceOrder(Trace({kHeader, Apply(1, 1, 1), Apply(2, 1, 1)}));
  EXPECT_THAT(s.message(), HasSubstr("line 3: n1 applied index 1, expected 2"));
}

TEST(TraceOrderTest, TheFirstApplyOfARunMustBeIndexOne) {
  const absl::Status s = CheckTraceOrder(Trace({kHeader, Apply(1, 4, 2)}));
  EXPECT_THAT(s.message(), HasSubstr("line 2: n4 applied index 2, expected 1"));
}

TEST(TraceOrderTest, AfterARestartAppliesStartAgainFromOneOrASnapshot) {
  // The old lifetime's next index (3) is not what a restarted node replays.
  absl::Status s =
      CheckTraceOrder(Trace({kHeader, Apply(1, 1, 1), Apply(1, 1, 2), Fault(2, "crash", "1"),
                             Fault(3, "restart", "1"), Apply(3, 1, 3)}));
  EXPECT_THAT(s.message(), HasSubstr("line 6: n1 applied index 3, expected 1"));
  EXPECT_THAT(s.message(), HasSubstr("line 5"));
  // A restart line written after the replay (the old order) is caught: the
  // replayed applies land in the dead lifetime.
  s = CheckTraceOrder(Trace(
      {kHeader, Apply(1, 1, 1), Fault(2, "crash", "1"), Apply(3, 1, 1), Fault(3, "restart", "1")}));
  EXPECT_THAT(s.message(), HasSubstr("line 4: n1 applied index 1 while down (since line 3)"));
}

TEST(TraceOrderTest, AppliesWhileDownAreRefused) {
  absl::Status s = CheckTraceOrder(Trace({kHeader, Apply(1, 2, 1), Stop(2, 2), Apply(3, 2, 2)}));
  EXPECT_THAT(s.message(), HasSubstr("line 4: n2 applied index 2 while down (since line 3)"));
  s = CheckTraceOrder(Trace({kHeader, Fault(2, "crash", "2,3"), Snapshot(3, 3, 5)}));
  EXPECT_THAT(s.message(),
              HasSubstr("line 3: n3 installed a snapshot at index 5 while down (since line 2)"));
}

TEST(TraceOrderTest, ASnapshotNeverGoesBackWithinALifetime) {
  const absl::Status s = CheckTraceOrder(
      Trace({kHeader, Snapshot(1, 1, 10), Apply(2, 1, 11), Apply(2, 1, 12), Snapshot(3, 1, 11)}));
  EXPECT_THAT(s.message(), HasSubstr("line 5: n1 installed a snapshot at index 11 behind what it "
                                     "had applied: its next index was 13"));
}

TEST(TraceOrderTest, AppliesAfterASnapshotContinueFromItsIndex) {
  const absl::Status s =
      CheckTraceOrder(Trace({kHeader, Apply(1, 1, 1), Snapshot(2, 1, 50), Apply(3, 1, 2)}));
  EXPECT_THAT(s.message(), HasSubstr("line 4: n1 applied index 2, expected 51"));
  EXPECT_THAT(s.message(), HasSubstr("the snapshot at index 50"));
}

TEST(TraceOrderTest, TimeMustNotGoBack) {
  const absl::Status s = CheckTraceOrder(Trace({kHeader, Apply(5, 1, 1), Apply(4, 2, 1)}));
  EXPECT_THAT(s.message(), HasSubstr("line 3: t=4 is before t=5 of line 2"));
}

TEST(TraceOrderTest, StoppingTwiceIsRefused) {
  const absl::Status s = CheckTraceOrder(Trace({kHeader, Stop(1, 1), Stop(2, 1)}));
  EXPECT_THAT(s.message(), HasSubstr("line 3: n1 stopped while already down (since line 2)"));
}

TEST(TraceOrderTest, MalformedLinesAreErrorsNotCrashes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "line 2: not a JSON object"},
      {R"({"t":1,"type":"apply","node":1})", "needs a whole number \"index\""},
      {R"({"t":1,"type":"apply","node":1,"index":-1})", "needs a whole number \"index\""},
      {R"({"t":1,"type":"apply","node":1,"index":1.5})", "needs a whole number \"index\""},
      {R"({"t":1,"type":"apply","node":"1","index":1})", "needs a whole number \"node\""},
      {R"({"t":1,"type":"apply","node":0,"index":1})", "node id 0"},
      {R"({"type":"apply","node":1,"index":1})", "without an integer \"t\""},
      {R"({"t":1,"node":1,"index":1})", "no \"type\" string"},
      {R"({"t":1,"type":"apply","type":"apply","node":1,"index":1})", "appears twice"},
      {R"({"t":1,"type":"fault","fault":"crash","nodes":["a"]})", "array of node ids"},
      {R"({"t":1,"type":"fault","nodes":[1]})", "without a \"fault\" string"},
      {R"({"t":1,"type":"stop","node":1,"why":"x)", "unterminated string"},
      {R"({"t":1,"type":"apply","node":1,"index":1} x)", "text after the object"},
      {R"({"t":1,"type":"x","a":"\q"})", "bad escape"},
      {R"({"t":1,"type":"x","a":"\u12"})", "bad \\u escape"},
      {R"({"t":1,"type":"x","a":"\u12)", "short \\u escape"},
      {R"({"t":1,"type":"x","a":)" + std::string(70, '[') + "1" + std::string(70, ']') + "}",
       "nested too deep"},
      {R"({"t":99999999999999999999,"type":"x"})", "without an integer \"t\""},
      {"{", "expected a quoted key"},
  };
  for (const auto& [line, expected] : cases) {
    const absl::Status s = CheckTraceOrder(Trace({kHeader, line}));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << line;
    EXPECT_THAT(s.message(), HasSubstr(expected)) << line;
  }
  TraceOrderChecker checker;
  EXPECT_FALSE(checker.AddLine(std::string(kTraceLineBytesMax + 1, ' ')).ok());
}

TEST(TraceOrderTest, TheFirstErrorSticks) {
  TraceOrderChecker checker;
  EXPECT_TRUE(checker.AddLine(kHeader).ok());
  EXPECT_FALSE(checker.AddLine(Apply(1, 1, 2)).ok());
  const std::string first(checker.status().message());
  EXPECT_FALSE(checker.AddLine(Apply(2, 1, 1)).ok());
  EXPECT_EQ(checker.status().message(), first);
  EXPECT_EQ(checker.lines(), 2u);
}

TEST(TraceOrderTest, UnknownLinesAndFieldsAreIgnored) {
  EXPECT_TRUE(CheckTraceOrder(
                  Trace({kHeader, R"({"t":1,"type":"novel","x":{"y":[1,{"z":null}]},"b":true})",
                         R"({"t":2,"type":"apply","node":1,"index":1,"extra":-3e5})", "", kResult}))
                  .ok());
}

}  // namespace
}  // namespace blixard::sim
