#include "net/loop/notifier.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "core/base/check.h"
#include "core/base/status_macros.h"

namespace blixard::net {

absl::StatusOr<std::unique_ptr<Notifier>> Notifier::Create(
    EventLoop* loop, std::function<void()> on_notify) {
  CHECK(loop != nullptr);
  CHECK(on_notify) << "Notifier without a callback";
  UniqueFd fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("eventfd", errno, "notifier");
  const int raw = fd.get();
  std::unique_ptr<Notifier> notifier(
      new Notifier(loop, std::move(on_notify), std::move(fd)));
  RETURN_IF_ERROR(loop->AddFd(
      raw, EventLoop::kReadable,
      [n = notifier.get()](uint32_t events) { n->OnReadable(events); }));
  return notifier;
}

Notifier::Notifier(EventLoop* loop, std::function<void()> on_notify,
                   UniqueFd fd)
    : loop_(loop), on_notify_(std::move(on_notify)), fd_(std::move(fd)) {}

Notifier::~Notifier() {
  // Registered only once Create's AddFd succeeded.
  if (loop_->HasFd(fd_.get())) {
    const absl::Status removed = loop_->RemoveFd(fd_.get());
    // Our own open eventfd: DEL cannot fail but for a bug.
    CHECK_OK(removed);
  }
}

void Notifier::Notify() {
  const uint64_t one = 1;
  const ssize_t written = write(fd_.get(), &one, sizeof(one));
  if (written < 0) {
    // EAGAIN: the counter is at its maximum, so the loop wakes anyway.
    CHECK_EQ(errno, EAGAIN)
        << "write(notifier eventfd " << fd_.get() << "): errno " << errno;
    return;
  }
  CHECK_EQ(written, static_cast<ssize_t>(sizeof(one)));
}

void Notifier::OnReadable(uint32_t events) {
  CHECK_EQ(events & (EventLoop::kError | EventLoop::kHangup), 0u)
      << "notifier eventfd " << fd_.get() << " in error";
  // Consume first, then call back (see the header: "Ordering").
  uint64_t count = 0;
  const ssize_t got = read(fd_.get(), &count, sizeof(count));
  if (got < 0) {
    CHECK(errno == EAGAIN || errno == EINTR)
        << "read(notifier eventfd " << fd_.get() << "): errno " << errno;
    return;  // nothing was written after all: no callback owed
  }
  CHECK_EQ(got, static_cast<ssize_t>(sizeof(count)));
  CHECK_GT(count, 0u);
  ++wakes_;
  on_notify_();
}

void Notifier::CheckInvariants() const {
  CHECK(fd_.valid());
  CHECK(on_notify_);
  CHECK(loop_->HasFd(fd_.get()));
}

}  // namespace blixard::net
