// Real histories, converted for the simulator's linearizability checker,
// fail for phantom, stale and backward reads and pass a history a register
// could produce; the trace follows sim/TRACE.md's line types.
#include "net/testing/kv_history.h"

#include "gtest/gtest.h"

namespace blixard::net::testing {
namespace {

using S = HistoryOp::Status;

HistoryOp Op(uint64_t id, const std::string& op, const std::string& value, int64_t invoke,
             int64_t complete, S status, std::optional<std::string> read = std::nullopt) {
  HistoryOp o;
  o.op_id = id;
  o.client = id;
  o.op = op;
  o.key = "k";
  o.value = value;
  o.invoke_us = invoke;
  o.complete_us = status == S::kUnknown ? -1 : complete;
  o.status = status;
  o.read = std::move(read);
  return o;
}

TEST(KvHistoryTest, ARegisterHistoryPasses) {
  EXPECT_TRUE(CheckLinearizable({Op(1, "get", "", 0, 5, S::kOk, std::nullopt),
                              Op(2, "put", "a", 10, 20, S::kOk),
                              Op(3, "get", "", 15, 25, S::kOk, "a"),
                              Op(4, "put", "b", 30, 40, S::kUnknown),
                              Op(5, "get", "", 50, 60, S::kOk, "b"),
                              Op(6, "get", "", 70, 80, S::kOk, "b")})
                  .ok());
}

// The simulator's checker, fed through the conversion: the same verdicts.
TEST(KvHistoryTest, TheSimulatorsCheckerJudgesRealHistories) {
  EXPECT_TRUE(CheckLinearizable({Op(1, "get", "", 0, 5, S::kOk, std::nullopt),
                                 Op(2, "put", "a", 10, 20, S::kOk),
                                 Op(3, "get", "", 15, 25, S::kOk, "a"),
                                 Op(4, "put", "b", 30, 40, S::kUnknown),
                                 Op(5, "get", "", 50, 60, S::kOk, "b")})
                  .ok());
  const absl::Status stale =
      CheckLinearizable({Op(1, "put", "a", 0, 10, S::kOk), Op(2, "put", "b", 20, 30, S::kOk),
                         Op(3, "get", "", 40, 50, S::kOk, "a")});
  EXPECT_FALSE(stale.ok());
  EXPECT_NE(stale.message().find("not"), absl::string_view::npos) << stale;
}

TEST(KvHistoryTest, AStaleReadFails) {
  EXPECT_FALSE(CheckLinearizable({Op(1, "put", "a", 0, 10, S::kOk), Op(2, "put", "b", 20, 30, S::kOk),
                                  Op(3, "get", "", 40, 50, S::kOk, "a")})
                   .ok());
}

TEST(KvHistoryTest, APhantomReadAndAPhantomAbsenceFail) {
  EXPECT_FALSE(CheckLinearizable({Op(1, "get", "", 0, 10, S::kOk, "never")}).ok());
  EXPECT_FALSE(CheckLinearizable({Op(1, "put", "a", 0, 10, S::kOk),
                               Op(2, "get", "", 20, 30, S::kOk, std::nullopt)})
                   .ok());
}

TEST(KvHistoryTest, ReadsThatGoBackFail) {
  // b (outcome unknown) was written after a completed; once a read saw b,
  // a later read may not see a again.
  EXPECT_FALSE(CheckLinearizable({Op(1, "put", "a", 0, 10, S::kOk),
                               Op(2, "put", "b", 20, 30, S::kUnknown),
                               Op(3, "get", "", 25, 35, S::kOk, "b"),
                               Op(4, "get", "", 40, 50, S::kOk, "a")})
                   .ok());
  // The same reads the other way round are fine.
  EXPECT_TRUE(CheckLinearizable({Op(1, "put", "a", 0, 10, S::kOk),
                              Op(2, "put", "b", 20, 30, S::kUnknown),
                              Op(3, "get", "", 25, 35, S::kOk, "a"),
                              Op(4, "get", "", 40, 50, S::kOk, "b")})
                  .ok());
}

TEST(KvHistoryTest, TheTraceHasHeaderInvokeCompleteFaultAndResult) {
  KvHistory history("\"seed\":1,\"nodes\":3");
  const uint64_t id = history.Invoke(1, "put", "k", "v\"1");
  history.Complete(id, S::kOk);
  history.Fault("partition", {1}, {2, 3});
  const std::string trace = history.ToTrace("pass");
  EXPECT_NE(trace.find("{\"type\":\"header\",\"seed\":1,\"nodes\":3"), std::string::npos) << trace;
  EXPECT_NE(trace.find("\"type\":\"invoke\",\"client\":1,\"op_id\":1,\"op\":\"put\",\"key\":\"k\","
                       "\"value\":\"v\\\"1\""),
            std::string::npos)
      << trace;
  EXPECT_NE(trace.find("\"type\":\"complete\",\"client\":1,\"op_id\":1,\"status\":\"ok\""),
            std::string::npos);
  EXPECT_NE(trace.find("\"fault\":\"partition\",\"nodes\":[1],\"others\":[2,3]"), std::string::npos);
  EXPECT_NE(trace.find("{\"type\":\"result\",\"status\":\"pass\",\"trace_hash\":\""),
            std::string::npos);
}

}  // namespace
}  // namespace blixard::net::testing
