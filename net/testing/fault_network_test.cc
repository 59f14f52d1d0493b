// The fault proxies on plain loopback sockets: bytes pass both ways, a
// blackhole drops them while the connection stays up and resets it on heal,
// delay keeps order, and ResetAll closes connections. Blocking sockets with
// receive timeouts keep every wait bounded.
#include "net/testing/fault_network.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "core/base/status_matchers.h"
#include "gtest/gtest.h"
#include "net/transport/socket.h"

namespace blixard::net::testing {
namespace {

// A blocking socket connected to 127.0.0.1:port, reads timing out after
// `timeout_ms`.
int Dial(uint16_t port, int timeout_ms = 2000) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Reads exactly `n` bytes or what came before the timeout / EOF.
std::string ReadN(int fd, size_t n) {
  std::string out;
  char buffer[4096];
  while (out.size() < n) {
    const ssize_t got = read(fd, buffer, std::min(sizeof(buffer), n - out.size()));
    if (got <= 0) break;
    out.append(buffer, static_cast<size_t>(got));
  }
  return out;
}

void Write(int fd, const std::string& bytes) {
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

class FaultNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Node 2's "peer port": a blocking listener the test accepts on.
    ASSERT_OK_AND_ASSIGN(listener_, ListenTcp({"127.0.0.1", 0}, 8));
    ASSERT_OK_AND_ASSIGN(const uint16_t port, LocalPort(listener_.get()));
    ASSERT_OK_AND_ASSIGN(network_,
                         FaultNetwork::Create({{1, {"127.0.0.1", 1}}, {2, {"127.0.0.1", port}}}, 7));
    const std::string address = network_->ProxyAddress(1, 2);
    ASSERT_OK_AND_ASSIGN(const SocketAddress parsed, ParseSocketAddress(address));
    client_ = Dial(parsed.port);
    server_ = AcceptBlocking();
  }
  void TearDown() override {
    if (client_ >= 0) close(client_);
    if (server_ >= 0) close(server_);
  }
  int AcceptBlocking() {
    for (int i = 0; i < 200; ++i) {
      absl::StatusOr<std::optional<AcceptedSocket>> accepted = AcceptTcp(listener_.get());
      if (accepted.ok() && accepted->has_value()) {
        const int fd = (*accepted)->fd.Release();
        const int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        timeval tv{2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
      }
      usleep(10'000);
    }
    ADD_FAILURE() << "the proxy never dialed the target";
    return -1;
  }

  UniqueFd listener_;
  std::unique_ptr<FaultNetwork> network_;
  int client_ = -1;
  int server_ = -1;
};

TEST_F(FaultNetworkTest, BytesPassBothWays) {
  Write(client_, "hello");
  EXPECT_EQ(ReadN(server_, 5), "hello");
  Write(server_, "back");
  EXPECT_EQ(ReadN(client_, 4), "back");
  EXPECT_GE(network_->Totals().bytes_forwarded, 9u);
}

TEST_F(FaultNetworkTest, BlackholeDropsBytesKeepsTheConnectionAndResetsItOnHeal) {
  network_->SetReachable([](int from, int to) { return !(from == 1 && to == 2); });
  Write(client_, "lost");
  usleep(100'000);
  // One-way: the other direction still passes.
  Write(server_, "still");
  EXPECT_EQ(ReadN(client_, 5), "still");
  EXPECT_GE(network_->Totals().bytes_dropped, 4u);
  network_->HealAll();
  // The connection lost bytes: it is reset, the dialer sees EOF or a reset.
  char byte;
  EXPECT_LE(read(client_, &byte, 1), 0);
  EXPECT_GE(network_->Totals().resets, 1u);
}

TEST_F(FaultNetworkTest, DelayedBytesArriveInOrder) {
  network_->SetDelay(20'000, 30'000);
  std::string sent;
  for (int i = 0; i < 50; ++i) {
    const std::string piece = std::to_string(i) + ",";
    Write(client_, piece);
    sent += piece;
  }
  EXPECT_EQ(ReadN(server_, sent.size()), sent);
}

TEST_F(FaultNetworkTest, ResetAllClosesConnections) {
  network_->ResetAll();
  char byte;
  EXPECT_LE(read(client_, &byte, 1), 0);
  EXPECT_LE(read(server_, &byte, 1), 0);
}

}  // namespace
}  // namespace blixard::net::testing
