// QmpClient against a scripted QMP server on a real unix socket, driven from
// the same loop (no QEMU needed): the negotiation, ids, events between a
// command and its reply, closes and bad lines.
#include "net/exec/qmp_client.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/exec/exec_test_util.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {
namespace {

using ::blixard::testing::StatusIs;
using ::testing::HasSubstr;

// A QMP server for one client: answers each line the client sends with
// what `script` returns for it (several lines may be joined).
class FakeQmpServer {
 public:
  using Script = std::function<std::string(const std::string& line)>;

  FakeQmpServer(const std::string& dir, Script script)
      : script_(std::move(script)) {
    listen_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    CHECK(listen_.valid());
    // Through the folder's /proc/self/fd link, as the client connects:
    // test folders are deeper than sun_path's 108 bytes.
    UniqueFd dir_fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    CHECK(dir_fd.valid()) << dir;
    const std::string path =
        absl::StrCat("/proc/self/fd/", dir_fd.get(), "/", kQmpSocketName);
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    CHECK_LT(path.size(), sizeof(addr.sun_path)) << path;
    memcpy(addr.sun_path, path.data(), path.size());
    CHECK_EQ(bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << strerror(errno);
    CHECK_EQ(listen(listen_.get(), 4), 0);
  }

  // Accepts, sends the greeting, answers what arrived. Call it often.
  void Serve() {
    if (!conn_.valid()) {
      conn_ = UniqueFd(accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!conn_.valid()) return;
      Write("{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n");
    }
    char buffer[4096];
    ssize_t n;
    while ((n = read(conn_.get(), buffer, sizeof(buffer))) > 0) {
      in_.append(buffer, static_cast<size_t>(n));
    }
    for (size_t end; (end = in_.find('\n')) != std::string::npos;) {
      std::string line = in_.substr(0, end);
      in_.erase(0, end + 1);
      while (!line.empty() && line.back() == '\r') line.pop_back();
      received.push_back(line);
      Write(script_(line));
    }
  }
  void Write(const std::string& bytes) {
    if (!bytes.empty()) {
      CHECK_EQ(write(conn_.get(), bytes.data(), bytes.size()),
               static_cast<ssize_t>(bytes.size()));
    }
  }
  void Hangup() { conn_.Reset(); }

  std::vector<std::string> received;

 private:
  Script script_;
  UniqueFd listen_;
  UniqueFd conn_;
  std::string in_;
};

std::string Reply(const std::string& line, const std::string& body) {
  // Echo the id the client sent: {"execute":"x","id":N}
  const size_t at = line.find("\"id\":");
  CHECK_NE(at, std::string::npos) << line;
  const std::string id = line.substr(at + 5, line.find('}', at) - at - 5);
  return absl::StrCat("{", body, ", \"id\": ", id, "}\r\n");
}

class QmpClientTest : public ::testing::Test {
 protected:
  QmpClientTest() {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    CHECK_OK(loop.status());
    loop_ = std::move(*loop);
    dir_ = testing::MakeTempDir();
  }
  bool Run(const std::function<bool()>& done, FakeQmpServer& server) {
    return testing::RunUntil(*loop_, [&] {
      server.Serve();
      if (client_ != nullptr) client_->CheckInvariants();
      return done();
    });
  }
  QmpClient::Handlers Recording() {
    QmpClient::Handlers h;
    h.on_ready = [this] { ++ready_; };
    h.on_reply = [this](const QmpClient::Reply& r) { replies_.push_back(r); };
    h.on_event = [this](absl::string_view e) { events_.emplace_back(e); };
    h.on_closed = [this](const absl::Status& why) { closes_.push_back(why); };
    return h;
  }

  std::unique_ptr<EventLoop> loop_;
  std::string dir_;
  std::unique_ptr<QmpClient> client_;
  int ready_ = 0;
  std::vector<QmpClient::Reply> replies_;
  std::vector<std::string> events_;
  std::vector<absl::Status> closes_;
};

TEST_F(QmpClientTest, NegotiatesThenMatchesRepliesByIdAcrossEvents) {
  FakeQmpServer server(dir_, [](const std::string& line) -> std::string {
    if (line.find("qmp_capabilities") != std::string::npos) {
      return Reply(line, "\"return\": {}");
    }
    if (line.find("query-status") != std::string::npos) {
      // An event between the command and its reply, as QEMU does.
      return absl::StrCat(
          "{\"timestamp\": {\"seconds\": 1}, \"event\": \"POWERDOWN\"}\r\n",
          Reply(line, "\"return\": {\"status\": \"running\", \"running\": true}"));
    }
    return Reply(line, "\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}");
  });
  ASSERT_OK_AND_ASSIGN(client_, QmpClient::Connect(loop_.get(), dir_, Recording()));
  // Queued before the negotiation ends, sent after it.
  ASSERT_OK_AND_ASSIGN(uint64_t status_id, client_->Execute("query-status"));
  ASSERT_OK_AND_ASSIGN(uint64_t bogus_id, client_->Execute("no-such-command"));
  ASSERT_TRUE(Run([&] { return replies_.size() == 2; }, server));
  EXPECT_EQ(ready_, 1);
  ASSERT_GE(server.received.size(), 1u);
  EXPECT_THAT(server.received[0], HasSubstr("qmp_capabilities"));
  EXPECT_EQ(client_->state(), QmpClient::State::kReady);
  EXPECT_EQ(events_, std::vector<std::string>{"POWERDOWN"});
  EXPECT_EQ(replies_[0].id, status_id);
  EXPECT_EQ(replies_[0].command, "query-status");
  EXPECT_TRUE(replies_[0].ok);
  EXPECT_TRUE(replies_[0].result.fields().at("running").bool_value());
  EXPECT_EQ(replies_[1].id, bogus_id);
  EXPECT_FALSE(replies_[1].ok);
  EXPECT_THAT(replies_[1].error, HasSubstr("CommandNotFound"));
  EXPECT_TRUE(closes_.empty());
}

TEST_F(QmpClientTest, NoListenerIsUnavailable) {
  EXPECT_THAT(QmpClient::Connect(loop_.get(), dir_, Recording()).status(),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(QmpClientTest, HangupClosesOnceOutsideExecute) {
  FakeQmpServer server(dir_, [](const std::string& line) {
    return Reply(line, "\"return\": {}");
  });
  ASSERT_OK_AND_ASSIGN(client_, QmpClient::Connect(loop_.get(), dir_, Recording()));
  ASSERT_TRUE(Run([&] { return ready_ == 1; }, server));
  server.Hangup();
  ASSERT_TRUE(Run([&] { return !closes_.empty(); }, server));
  EXPECT_EQ(client_->state(), QmpClient::State::kClosed);
  EXPECT_THAT(client_->Execute("quit").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_TRUE(testing::RunUntil(*loop_, [] { return false; }, absl::Milliseconds(100)) ==
              false);
  EXPECT_EQ(closes_.size(), 1u);
}

TEST_F(QmpClientTest, GarbageClosesWithDataLossAndTheHandlerMayDestroyTheClient) {
  FakeQmpServer server(dir_, [](const std::string&) { return std::string("not json\r\n"); });
  QmpClient::Handlers h = Recording();
  h.on_closed = [this](const absl::Status& why) {
    closes_.push_back(why);
    client_.reset();  // allowed: nothing of the client's is on the stack
  };
  ASSERT_OK_AND_ASSIGN(client_, QmpClient::Connect(loop_.get(), dir_, std::move(h)));
  ASSERT_TRUE(Run([&] { return !closes_.empty(); }, server));
  EXPECT_EQ(client_, nullptr);
  EXPECT_THAT(closes_[0], StatusIs(absl::StatusCode::kDataLoss));
  loop_->CheckInvariants();
}

TEST_F(QmpClientTest, AFolderLongerThanSunPathWorks) {
  std::string deep = dir_;
  while (deep.size() < 150) {
    deep += "/a-rather-long-folder-name";
    ASSERT_EQ(mkdir(deep.c_str(), 0750), 0);
  }
  ASSERT_GT(absl::StrCat(deep, "/", kQmpSocketName).size(), 108u);
  FakeQmpServer server(deep,
                       [](const std::string& line) { return Reply(line, "\"return\": {}"); });
  ASSERT_OK_AND_ASSIGN(client_, QmpClient::Connect(loop_.get(), deep, Recording()));
  ASSERT_TRUE(Run([&] { return ready_ == 1; }, server));
}

}  // namespace
}  // namespace blixard::net
