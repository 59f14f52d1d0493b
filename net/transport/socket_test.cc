#include "net/transport/socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <utility>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;

TEST(SocketTest, ListensOnAnEphemeralPortAndAccepts) {
  absl::StatusOr<UniqueFd> listener = ListenTcp({"127.0.0.1", 0}, 8);
  ASSERT_THAT(listener, IsOk());
  absl::StatusOr<uint16_t> port = LocalPort(listener->get());
  ASSERT_THAT(port, IsOk());
  EXPECT_NE(*port, 0);

  absl::StatusOr<std::optional<AcceptedSocket>> none =
      AcceptTcp(listener->get());
  ASSERT_THAT(none, IsOk());
  EXPECT_FALSE(none->has_value());

  absl::StatusOr<Dialing> dialing = StartConnect({"127.0.0.1", *port});
  ASSERT_THAT(dialing, IsOk());
  // The kernel completes a loopback handshake from the backlog before we
  // accept, so the connect has succeeded (or reports so once asked).
  EXPECT_THAT(FinishConnect(dialing->fd.get(), {"127.0.0.1", *port}), IsOk());
  absl::StatusOr<std::optional<AcceptedSocket>> accepted =
      AcceptTcp(listener->get());
  ASSERT_THAT(accepted, IsOk());
  ASSERT_TRUE(accepted->has_value());
  EXPECT_THAT((*accepted)->remote, HasSubstr("127.0.0.1:"));
  EXPECT_THAT(SetNoDelay((*accepted)->fd.get()), IsOk());
}

TEST(SocketTest, ConnectingToAClosedPortFailsNamingConnect) {
  absl::StatusOr<UniqueFd> listener = ListenTcp({"127.0.0.1", 0}, 8);
  ASSERT_THAT(listener, IsOk());
  const uint16_t port = *LocalPort(listener->get());
  listener->Reset();  // nobody listens there now
  absl::StatusOr<Dialing> dialing = StartConnect({"127.0.0.1", port});
  if (dialing.ok()) {
    // In progress: the refusal arrives through SO_ERROR.
    ASSERT_FALSE(dialing->connected);
    int tries = 0;
    absl::Status finished;
    do {
      finished = FinishConnect(dialing->fd.get(), {"127.0.0.1", port});
    } while (finished.ok() && ++tries < 1000);
    EXPECT_THAT(finished.ToString(), HasSubstr("connect"));
  } else {
    EXPECT_THAT(dialing.status().ToString(), HasSubstr("connect 127.0.0.1:"));
  }
}

TEST(SocketTest, NamesAreNotAddresses) {
  EXPECT_THAT(ValidateSocketAddress({"localhost", 1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"localhost\" is not a numeric IPv4")));
  EXPECT_THAT(ListenTcp({"example.org", 0}, 8),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StartConnect({"::1", 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateSocketAddress({"127.0.0.1", 1}), IsOk());
}

TEST(SocketTest, APortInUseIsAnErrorNamingBind) {
  absl::StatusOr<UniqueFd> first = ListenTcp({"127.0.0.1", 0}, 8);
  ASSERT_THAT(first, IsOk());
  const uint16_t port = *LocalPort(first->get());
  absl::StatusOr<UniqueFd> second = ListenTcp({"127.0.0.1", port}, 8);
  EXPECT_THAT(second.status().ToString(),
              HasSubstr("bind 127.0.0.1:" + std::to_string(port)));
}

TEST(SocketTest, ASocketConnectedToItselfIsRecognised) {
  // Bind to a free port, then connect to that very address: Linux completes
  // a simultaneous open of the socket with itself.
  absl::StatusOr<UniqueFd> listener = ListenTcp({"127.0.0.1", 0}, 8);
  ASSERT_THAT(listener, IsOk());
  const uint16_t port = *LocalPort(listener->get());
  absl::StatusOr<Dialing> normal = StartConnect({"127.0.0.1", port});
  ASSERT_THAT(normal, IsOk());
  ASSERT_THAT(FinishConnect(normal->fd.get(), {"127.0.0.1", port}), IsOk());
  EXPECT_THAT(IsConnectedToItself(normal->fd.get()), IsOk());
  EXPECT_FALSE(*IsConnectedToItself(normal->fd.get()));
  listener->Reset();

  UniqueFd self(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(self.valid());
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(self.get(), reinterpret_cast<sockaddr*>(&address),
                 sizeof(address)),
            0);
  socklen_t size = sizeof(address);
  ASSERT_EQ(getsockname(self.get(), reinterpret_cast<sockaddr*>(&address),
                        &size),
            0);
  ASSERT_EQ(connect(self.get(), reinterpret_cast<sockaddr*>(&address),
                    sizeof(address)),
            0);
  absl::StatusOr<bool> itself = IsConnectedToItself(self.get());
  ASSERT_THAT(itself, IsOk());
  EXPECT_TRUE(*itself);
}

TEST(SocketTest, AddressPrints) {
  EXPECT_EQ((SocketAddress{"127.0.0.2", 4000}).ToString(), "127.0.0.2:4000");
}

}  // namespace
}  // namespace blixard::net
