#include "core/sm/testing/command_generator.h"

#include <map>

#include "core/sm/cluster_state_machine.h"
#include "gtest/gtest.h"

namespace blixard::sm::testing {
namespace {

TEST(CommandGeneratorTest, SameSeedGivesSameStream) {
  CommandGenerator a(Rng(7)), b(Rng(7));
  ClusterStateMachine sa, sb;
  for (uint64_t i = 1; i <= 300; ++i) {
    const cluster::Command ca = a.Next(sa);
    const cluster::Command cb = b.Next(sb);
    ASSERT_EQ(ca.SerializeAsString(), cb.SerializeAsString()) << i;
    sa.Apply(Index(i), ca);
    sb.Apply(Index(i), cb);
  }
  EXPECT_EQ(sa.Digest(), sb.Digest());
}

TEST(CommandGeneratorTest, MostCommandsApplyAndEveryKindAppears) {
  CommandGenerator gen(Rng(11));
  ClusterStateMachine sm;
  std::map<int, int> kinds;
  int ok = 0;
  const int total = 5000;
  for (int i = 1; i <= total; ++i) {
    const cluster::Command c = gen.Next(sm);
    ++kinds[c.op_case()];
    if (sm.Apply(Index(static_cast<uint64_t>(i)), c).code() ==
        cluster::RESULT_OK)
      ++ok;
  }
  sm.CheckInvariants();
  EXPECT_GT(ok, total / 3);
  for (int kind = cluster::Command::kRegisterWorker;
       kind <= cluster::Command::kMemberJoined; ++kind) {
    EXPECT_GT(kinds[kind], 0) << "command kind " << kind << " never generated";
  }
  EXPECT_GT(sm.tasks().size(), 0u);
}

}  // namespace
}  // namespace blixard::sm::testing
