#include "sim/timeline.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::sim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

Timeline Sample() {
  Timeline timeline(7, {NodeId(1), NodeId(2), NodeId(3)});
  timeline.Role(0, NodeId(1), "follower", Term(0));
  timeline.Role(1'000'000, NodeId(1), "candidate", Term(2));
  timeline.Role(1'100'000, NodeId(1), "leader", Term(2));
  timeline.Role(0, NodeId(2), "follower", Term(0));
  timeline.Fault(3'000'000, "crash", {NodeId(2)});
  timeline.Fault(5'000'000, "restart", {NodeId(2)});
  timeline.Fault(4'000'000, "partition", {NodeId(3)});
  timeline.Fault(6'000'000, "heal", {NodeId(1), NodeId(2), NodeId(3)});
  timeline.Invoke(2'000'000, 1000, 1, "put");
  timeline.Complete(2'050'000, 1000, 1, "ok");
  timeline.Invoke(2'100'000, 1001, 1, "cas<x>");
  timeline.Complete(2'300'000, 1001, 1, "unknown");
  timeline.Invoke(9'000'000, 1001, 2, "get");
  return timeline;
}

TEST(TimelineTest, DrawsRolesFaultsAndOperations) {
  const std::string html = Sample().Render(10'000'000);
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(html, HasSubstr("seed 7"));
  EXPECT_THAT(html, HasSubstr("n1 leader term 2 [1100000us, 10000000us]"));
  EXPECT_THAT(html, HasSubstr(">t2</text>"));  // the leader's term label
  EXPECT_THAT(html, HasSubstr("n2 crashed [3000000us, 5000000us]"));
  EXPECT_THAT(html, HasSubstr("partition n3 [4000000us, 6000000us]"));
  EXPECT_THAT(html, HasSubstr("put #1 ok [2000000us, 2050000us]"));
  EXPECT_THAT(html, HasSubstr("cas&lt;x&gt; #1 unknown"));  // escaped
  EXPECT_THAT(html, HasSubstr("get #2 pending"));
  EXPECT_THAT(html, HasSubstr("no violation"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("http://www.w3.org/1999")));
}

TEST(TimelineTest, WellFormedTags) {
  Timeline timeline = Sample();
  timeline.Violation(8'000'000, "election safety: two leaders");
  const std::string html = timeline.Render(10'000'000);
  EXPECT_EQ(Count(html, "<svg"), Count(html, "</svg>"));
  EXPECT_EQ(Count(html, "<rect"), Count(html, "</rect>"));
  EXPECT_EQ(Count(html, "<title>"), Count(html, "</title>"));
  EXPECT_EQ(Count(html, "<text"), Count(html, "</text>"));
  EXPECT_THAT(html, HasSubstr("class='violation'"));
  EXPECT_THAT(html, HasSubstr("election safety: two leaders"));
}

TEST(TimelineTest, SameEventsSameBytes) {
  EXPECT_EQ(Sample().Render(10'000'000), Sample().Render(10'000'000));
}

}  // namespace
}  // namespace blixard::sim
