#include "net/loop/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "core/base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blixard::net {
namespace {

using ::blixard::testing::IsOk;
using ::blixard::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFdTest, ClosesOnceWhenDestroyed) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  {
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    EXPECT_TRUE(read_end.valid());
    EXPECT_EQ(read_end.get(), fds[0]);
  }
  EXPECT_FALSE(IsOpen(fds[0]));
  EXPECT_FALSE(IsOpen(fds[1]));
}

TEST(UniqueFdTest, MoveTransfersOwnershipAndReleaseGivesItUp) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  UniqueFd a(fds[0]);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the point
  EXPECT_EQ(b.get(), fds[0]);
  UniqueFd c(fds[1]);
  c = std::move(b);  // closes fds[1], takes fds[0]
  EXPECT_FALSE(IsOpen(fds[1]));
  EXPECT_EQ(c.get(), fds[0]);
  const int raw = c.Release();
  EXPECT_FALSE(c.valid());
  EXPECT_TRUE(IsOpen(raw));
  close(raw);
}

TEST(UniqueFdTest, NegativeMeansNone) {
  UniqueFd none(-1);
  EXPECT_FALSE(none.valid());
  none.Reset();  // nothing to close
  EXPECT_EQ(none.get(), -1);
}

TEST(UniqueFdTest, ErrnoStatusNamesTheSyscallTheContextAndErrno) {
  EXPECT_THAT(ErrnoStatus("epoll_ctl(ADD)", EPERM, "fd 7"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("epoll_ctl(ADD) fd 7: "),
                             HasSubstr("Operation not permitted"),
                             HasSubstr("errno 1"))));
  EXPECT_THAT(ErrnoStatus("eventfd", EMFILE),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("eventfd: Too many open files")));
  EXPECT_THAT(ErrnoStatus("read", EIO),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("errno 5")));
}

TEST(UniqueFdTest, SetNonBlockingSetsTheFlagAndReportsABadFd) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  EXPECT_EQ(fcntl(read_end.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_THAT(SetNonBlocking(read_end.get()), IsOk());
  EXPECT_NE(fcntl(read_end.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_THAT(SetNonBlocking(read_end.get()), IsOk());  // already set

  const int closed = write_end.Release();
  close(closed);
  EXPECT_THAT(SetNonBlocking(closed),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("fcntl(F_GETFL) fd ")));
}

}  // namespace
}  // namespace blixard::net
