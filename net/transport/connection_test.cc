#include "net/transport/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/base/check.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

using ::testing::HasSubstr;

struct Pair {
  std::unique_ptr<Connection> a;
  std::unique_ptr<Connection> b;
};

Pair MakePair() {
  int fds[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                      fds),
           0);
  return Pair{std::make_unique<PlaintextConnection>(UniqueFd(fds[0]), "a"),
              std::make_unique<PlaintextConnection>(UniqueFd(fds[1]), "b")};
}

std::string ReadAll(Connection& connection) {
  std::string out;
  char buffer[256];
  while (true) {
    const IoResult read = connection.Read(absl::MakeSpan(buffer, sizeof(buffer)));
    if (read.kind != IoResult::Kind::kOk) return out;
    out.append(buffer, read.bytes);
  }
}

TEST(PlaintextConnectionTest, ReadOnAnEmptySocketWouldBlock) {
  Pair pair = MakePair();
  char buffer[8];
  EXPECT_EQ(pair.a->Read(absl::MakeSpan(buffer, sizeof(buffer))).kind,
            IoResult::Kind::kWouldBlock);
}

TEST(PlaintextConnectionTest, WriteGathersPiecesInOrder) {
  Pair pair = MakePair();
  const absl::string_view pieces[] = {"one ", "two ", "three"};
  const IoResult wrote = pair.a->Write(absl::MakeConstSpan(pieces));
  ASSERT_EQ(wrote.kind, IoResult::Kind::kOk);
  EXPECT_EQ(wrote.bytes, 13u);
  EXPECT_EQ(ReadAll(*pair.b), "one two three");
}

TEST(PlaintextConnectionTest, AFullSocketWouldBlockAndAShortWriteSaysHowMuch) {
  Pair pair = MakePair();
  const std::string big(1 << 20, 'x');
  const absl::string_view pieces[] = {big};
  size_t total = 0;
  IoResult wrote;
  for (int i = 0; i < 1000; ++i) {
    wrote = pair.a->Write(absl::MakeConstSpan(pieces));
    if (wrote.kind != IoResult::Kind::kOk) break;
    EXPECT_LE(wrote.bytes, big.size());
    total += wrote.bytes;
  }
  EXPECT_EQ(wrote.kind, IoResult::Kind::kWouldBlock);
  EXPECT_GT(total, 0u);
}

TEST(PlaintextConnectionTest, PeerCloseIsEofAndWritingToItIsAnErrorNotASignal) {
  Pair pair = MakePair();
  pair.b->Close();
  char buffer[8];
  EXPECT_EQ(pair.a->Read(absl::MakeSpan(buffer, sizeof(buffer))).kind,
            IoResult::Kind::kEof);
  const absl::string_view pieces[] = {"late"};
  const IoResult wrote = pair.a->Write(absl::MakeConstSpan(pieces));
  EXPECT_EQ(wrote.kind, IoResult::Kind::kError);
  EXPECT_THAT(wrote.error.ToString(), HasSubstr("sendmsg"));
}

TEST(PlaintextConnectionTest, CloseIsIdempotent) {
  Pair pair = MakePair();
  EXPECT_TRUE(pair.a->is_open());
  pair.a->Close();
  pair.a->Close();
  EXPECT_FALSE(pair.a->is_open());
}

TEST(PlaintextConnectionTest, FactoryMakesPlaintextConnections) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                       fds),
            0);
  UniqueFd other(fds[1]);
  absl::StatusOr<std::unique_ptr<Connection>> connection =
      PlaintextConnectionFactory()(UniqueFd(fds[0]), true, "127.0.0.1:9");
  ASSERT_TRUE(connection.ok());
  EXPECT_THAT((*connection)->DebugString(),
              HasSubstr("plaintext fd " + std::to_string(fds[0]) +
                        " with 127.0.0.1:9"));
}

}  // namespace
}  // namespace blixard::net
