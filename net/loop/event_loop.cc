#include "net/loop/event_loop.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/status_macros.h"

namespace blixard::net {
namespace {

// epoll_event.data of the loop's own fds. A user registration carries its
// generation (never 0) in the high 32 bits and the fd in the low 32, so it
// is always >= 2^32 and cannot collide with these.
constexpr uint64_t kWakeData = 1;
constexpr uint64_t kSignalData = 2;

// Signals read from the signalfd per wake: a bound on one iteration's work.
// Standard signals do not queue (at most one SIGTERM and one SIGINT are
// pending), so this is never short; anything left is reported again.
constexpr size_t kSignalsPerWakeMax = 4;

uint64_t PackData(uint32_t generation, int fd) {
  return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
}

uint32_t ToEpoll(uint32_t interest) {
  uint32_t events = 0;
  if ((interest & EventLoop::kReadable) != 0) events |= EPOLLIN;
  if ((interest & EventLoop::kWritable) != 0) events |= EPOLLOUT;
  return events;
}

uint32_t FromEpoll(uint32_t events) {
  uint32_t ready = 0;
  if ((events & (EPOLLIN | EPOLLPRI)) != 0) ready |= EventLoop::kReadable;
  if ((events & EPOLLOUT) != 0) ready |= EventLoop::kWritable;
  if ((events & EPOLLERR) != 0) ready |= EventLoop::kError;
  if ((events & EPOLLHUP) != 0) ready |= EventLoop::kHangup;
  return ready;
}

constexpr uint32_t kInterestBits = EventLoop::kReadable | EventLoop::kWritable;

std::string FdContext(int fd) { return absl::StrCat("fd ", fd); }

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(
    EventLoopOptions options) {
  std::unique_ptr<EventLoop> loop(new EventLoop(std::move(options)));
  RETURN_IF_ERROR(loop->Init());
  loop->CheckInvariants();
  return loop;
}

EventLoop::EventLoop(EventLoopOptions options)
    : options_(std::move(options)), loop_thread_(std::this_thread::get_id()) {}

absl::Status EventLoop::Init() {
  epoll_fd_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd_.valid()) return ErrnoStatus("epoll_create1", errno);

  wake_fd_ = UniqueFd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_.valid()) return ErrnoStatus("eventfd", errno);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.u64 = kWakeData;
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &wake) != 0) {
    return ErrnoStatus("epoll_ctl(ADD)", errno,
                       absl::StrCat("wake eventfd ", wake_fd_.get()));
  }

  if (options_.handle_stop_signals) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    // Blocked first: a signalfd only receives signals that are blocked (an
    // unblocked one takes its default action, which kills the process).
    const int blocked = pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    if (blocked != 0) {
      return ErrnoStatus("pthread_sigmask(SIG_BLOCK)", blocked,
                         "SIGTERM and SIGINT");
    }
    signal_fd_ = UniqueFd(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!signal_fd_.valid()) {
      return ErrnoStatus("signalfd", errno, "SIGTERM and SIGINT");
    }
    epoll_event signal{};
    signal.events = EPOLLIN;
    signal.data.u64 = kSignalData;
    if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, signal_fd_.get(), &signal) !=
        0) {
      return ErrnoStatus("epoll_ctl(ADD)", errno,
                         absl::StrCat("signalfd ", signal_fd_.get()));
    }
  }
  return absl::OkStatus();
}

EventLoop::~EventLoop() {
  CheckLoopThread();
  CHECK(!running_) << "EventLoop destroyed from inside one of its callbacks";
}

void EventLoop::CheckLoopThread() const {
  CHECK(InLoopThread()) << "EventLoop used off its loop thread";
}

// ---------------------------------------------------------------------------
// File descriptors.

absl::Status EventLoop::AddFd(int fd, uint32_t interest, FdCallback callback) {
  CheckLoopThread();
  CHECK_GE(fd, 0);
  CHECK_EQ(interest & ~kInterestBits, 0u) << "bad interest for fd " << fd;
  CHECK(callback) << "fd " << fd << " registered without a callback";
  CHECK(fds_.find(fd) == fds_.end()) << "fd " << fd << " registered twice";
  if (fds_.size() >= kFdsMax) {
    return absl::ResourceExhaustedError(
        absl::StrCat("EventLoop::AddFd fd ", fd, ": ", kFdsMax,
                     " fds already registered (kFdsMax)"));
  }
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return ErrnoStatus("fcntl(F_GETFL)", errno, FdContext(fd));
  CHECK_NE(flags & O_NONBLOCK, 0)
      << "fd " << fd << " is blocking; the loop thread must never block";

  const uint32_t generation = next_generation_;
  // Wraps after 2^32 registrations; a stale event is only mistaken for a
  // live one if the same number came back with the same generation within
  // one epoll batch, which would take 2^32 registrations in one iteration.
  next_generation_ = next_generation_ == UINT32_MAX ? 1 : next_generation_ + 1;
  epoll_event event{};
  event.events = ToEpoll(interest);
  event.data.u64 = PackData(generation, fd);
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return ErrnoStatus("epoll_ctl(ADD)", errno, FdContext(fd));
  }
  fds_.emplace(fd, std::make_unique<Registration>(Registration{
                       fd, generation, interest, std::move(callback)}));
  return absl::OkStatus();
}

absl::Status EventLoop::ModifyFd(int fd, uint32_t interest) {
  CheckLoopThread();
  CHECK_EQ(interest & ~kInterestBits, 0u) << "bad interest for fd " << fd;
  auto it = fds_.find(fd);
  CHECK(it != fds_.end()) << "ModifyFd: fd " << fd << " is not registered";
  Registration& registration = *it->second;
  if (registration.interest == interest) return absl::OkStatus();
  epoll_event event{};
  event.events = ToEpoll(interest);
  event.data.u64 = PackData(registration.generation, fd);
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
    return ErrnoStatus("epoll_ctl(MOD)", errno, FdContext(fd));
  }
  registration.interest = interest;
  return absl::OkStatus();
}

absl::Status EventLoop::RemoveFd(int fd) {
  CheckLoopThread();
  auto it = fds_.find(fd);
  CHECK(it != fds_.end()) << "RemoveFd: fd " << fd << " is not registered";
  absl::Status status;
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    status = ErrnoStatus("epoll_ctl(DEL)", errno, FdContext(fd));
  }
  // The callback may be the one running right now (an fd removing itself):
  // keep it alive until the iteration ends.
  if (running_) retired_.push_back(std::move(it->second));
  fds_.erase(it);
  return status;
}

bool EventLoop::HasFd(int fd) const {
  CheckLoopThread();
  return fds_.find(fd) != fds_.end();
}

// ---------------------------------------------------------------------------
// Timers.

EventLoop::TimerHandle EventLoop::AddTimerAt(MonoMicros deadline,
                                             Closure callback) {
  CheckLoopThread();
  CHECK(callback) << "timer without a callback";
  CHECK_LT(timer_deadlines_.size(), kTimersMax) << "timer heap full";
  const TimerHandle handle = next_timer_handle_++;
  const bool inserted =
      timer_queue_
          .emplace(std::make_pair(deadline, handle), std::move(callback))
          .second;
  CHECK(inserted);
  timer_deadlines_.emplace(handle, deadline);
  return handle;
}

bool EventLoop::CancelTimer(TimerHandle handle) {
  CheckLoopThread();
  auto it = timer_deadlines_.find(handle);
  if (it == timer_deadlines_.end()) return false;
  const size_t erased = timer_queue_.erase(std::make_pair(it->second, handle));
  CHECK_EQ(erased, 1u) << "timer " << handle << " missing from the heap";
  timer_deadlines_.erase(it);
  return true;
}

bool EventLoop::IsTimerPending(TimerHandle handle) const {
  CheckLoopThread();
  return timer_deadlines_.find(handle) != timer_deadlines_.end();
}

void EventLoop::RunDueTimers(size_t* ran) {
  if (timer_queue_.empty()) return;
  const MonoMicros now = clock_.NowMicros();
  // The batch is fixed before any callback runs: timers those callbacks add
  // wait for the next iteration (no spinning on a zero-delay re-arm), and a
  // timer they cancel is skipped because it is no longer in the heap.
  CHECK(due_.empty());
  for (auto it = timer_queue_.begin();
       it != timer_queue_.end() && it->first.first <= now; ++it) {
    due_.push_back(it->first);
  }
  for (const auto& key : due_) {
    auto it = timer_queue_.find(key);
    if (it == timer_queue_.end()) continue;  // cancelled by an earlier one
    // Out of the heap before it runs, so the callback sees its timer gone.
    Closure callback = std::move(it->second);
    timer_queue_.erase(it);
    const size_t erased = timer_deadlines_.erase(key.second);
    CHECK_EQ(erased, 1u);
    ++*ran;
    callback();
  }
  due_.clear();
}

int EventLoop::WaitMillis(absl::Duration timeout) {
  CHECK(timeout >= absl::ZeroDuration()) << "negative RunOnce timeout";
  int64_t wait_ms = -1;  // epoll_wait: forever
  if (timeout != absl::InfiniteDuration()) {
    // Rounded up: waking before a deadline only costs another iteration,
    // but rounding down would make RunOnce(500us) a busy poll.
    wait_ms =
        absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
  }
  if (!timer_queue_.empty()) {
    const MonoMicros deadline = timer_queue_.begin()->first.first;
    const MonoMicros now = clock_.NowMicros();
    int64_t timer_ms = 0;
    if (deadline > now) {
      const int64_t left_us = deadline - now;
      timer_ms = left_us / kMicrosPerMilli + (left_us % kMicrosPerMilli != 0);
    }
    if (wait_ms < 0 || timer_ms < wait_ms) wait_ms = timer_ms;
  }
  return static_cast<int>(std::min<int64_t>(wait_ms, INT_MAX));
}

// ---------------------------------------------------------------------------
// Cross-thread.

void EventLoop::Post(Closure closure) {
  CHECK(closure) << "posted an empty closure";
  bool was_empty = false;
  {
    MutexLock lock(&posted_mu_);
    CHECK_LT(posted_.size(), kPostedMax) << "post queue overflow";
    was_empty = posted_.empty();
    posted_.push_back(std::move(closure));
  }
  // Only the post that makes the queue non-empty wakes the loop: every later
  // one finds the wake still to come (or the loop not yet drained), and
  // DrainPosted takes the whole queue.
  if (was_empty) WriteWakeFd();
}

void EventLoop::Stop() {
  stop_requested_.store(true, std::memory_order_release);
  // On the loop thread the loop is running a callback, not waiting; from
  // elsewhere it may be asleep in epoll_wait.
  if (!InLoopThread()) WriteWakeFd();
}

void EventLoop::WriteWakeFd() {
  const uint64_t one = 1;
  const ssize_t written = write(wake_fd_.get(), &one, sizeof(one));
  if (written < 0) {
    // EAGAIN: the counter is at its maximum, so the loop is woken anyway.
    CHECK_EQ(errno, EAGAIN)
        << "write(wake eventfd " << wake_fd_.get() << "): errno " << errno;
    return;
  }
  CHECK_EQ(written, static_cast<ssize_t>(sizeof(one)));
}

void EventLoop::DrainPosted(size_t* ran) {
  // Read the eventfd BEFORE taking the queue. A post that lands after the
  // read either finds the queue non-empty (and is taken below) or finds it
  // empty after the swap (and writes the eventfd again). Taking the queue
  // first could clear the eventfd after a post that found it empty: that
  // closure would wait for an unrelated wake.
  uint64_t count = 0;
  const ssize_t got = read(wake_fd_.get(), &count, sizeof(count));
  if (got < 0) {
    CHECK(errno == EAGAIN || errno == EINTR)
        << "read(wake eventfd " << wake_fd_.get() << "): errno " << errno;
  } else {
    CHECK_EQ(got, static_cast<ssize_t>(sizeof(count)));
  }
  std::vector<Closure> batch;
  {
    MutexLock lock(&posted_mu_);
    batch.swap(posted_);
  }
  for (Closure& closure : batch) {
    ++*ran;
    closure();
  }
}

void EventLoop::DrainSignals(size_t* ran) {
  signalfd_siginfo infos[kSignalsPerWakeMax];
  const ssize_t got = read(signal_fd_.get(), infos, sizeof(infos));
  if (got < 0) {
    CHECK(errno == EAGAIN || errno == EINTR)
        << "read(signalfd " << signal_fd_.get() << "): errno " << errno;
    return;
  }
  CHECK_EQ(static_cast<size_t>(got) % sizeof(signalfd_siginfo), 0u);
  const size_t count = static_cast<size_t>(got) / sizeof(signalfd_siginfo);
  for (size_t i = 0; i < count; ++i) {
    const int signal = static_cast<int>(infos[i].ssi_signo);
    CHECK(signal == SIGTERM || signal == SIGINT) << "signal " << signal;
    ++*ran;
    if (options_.on_stop_signal) {
      options_.on_stop_signal(signal);
    } else {
      Stop();
    }
  }
}

// ---------------------------------------------------------------------------
// Running.

void EventLoop::Dispatch(uint64_t data, uint32_t epoll_events, size_t* ran) {
  if (data == kWakeData) {
    DrainPosted(ran);
    return;
  }
  if (data == kSignalData) {
    DrainSignals(ran);
    return;
  }
  const int fd = static_cast<int>(static_cast<uint32_t>(data));
  const auto generation = static_cast<uint32_t>(data >> 32);
  CHECK_NE(generation, 0u);
  auto it = fds_.find(fd);
  // Removed (perhaps re-added) by an earlier callback of this batch.
  if (it == fds_.end() || it->second->generation != generation) return;
  Registration* registration = it->second.get();
  // The event was taken from epoll before this batch's callbacks ran; one of
  // them may have narrowed the interest since. Errors and hangups always go
  // through.
  const uint32_t events =
      FromEpoll(epoll_events) & (registration->interest | kError | kHangup);
  if (events == 0) return;
  ++*ran;
  registration->callback(events);
}

size_t EventLoop::RunOnce(absl::Duration timeout) {
  CheckLoopThread();
  CHECK(!running_) << "EventLoop::RunOnce called from inside a callback";
  running_ = true;
  size_t ran = 0;
  const int wait_ms = WaitMillis(timeout);
  epoll_event events[kEventsPerWaitMax];
  int ready = epoll_wait(epoll_fd_.get(), events, kEventsPerWaitMax, wait_ms);
  if (ready < 0) {
    // EINTR: a signal the loop does not own ran a handler; the timers below
    // still run. Anything else (EBADF, EFAULT, EINVAL) is a bug.
    CHECK_EQ(errno, EINTR) << "epoll_wait(fd " << epoll_fd_.get() << ")";
    ready = 0;
  }
  for (int i = 0; i < ready; ++i) {
    Dispatch(events[i].data.u64, events[i].events, &ran);
  }
  RunDueTimers(&ran);
  // Destroyed outside the member: a callback's destructor may remove
  // another fd (which then waits for the next iteration's cleanup).
  std::vector<std::unique_ptr<Registration>> retired;
  retired.swap(retired_);
  retired.clear();
  running_ = false;
  return ran;
}

void EventLoop::Run() {
  CheckLoopThread();
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) {
    RunOnce(absl::InfiniteDuration());
  }
}

void EventLoop::CheckInvariants() const {
  CheckLoopThread();
  CHECK(epoll_fd_.valid());
  CHECK(wake_fd_.valid());
  CHECK_EQ(signal_fd_.valid(), options_.handle_stop_signals);
  CHECK_LE(fds_.size(), kFdsMax);
  for (const auto& [fd, registration] : fds_) {
    CHECK(registration != nullptr);
    CHECK_EQ(registration->fd, fd);
    CHECK_NE(registration->generation, 0u);
    CHECK_EQ(registration->interest & ~kInterestBits, 0u);
    CHECK(registration->callback);
  }
  CHECK_EQ(timer_queue_.size(), timer_deadlines_.size());
  CHECK_LE(timer_queue_.size(), kTimersMax);
  for (const auto& [key, callback] : timer_queue_) {
    auto it = timer_deadlines_.find(key.second);
    CHECK(it != timer_deadlines_.end()) << "timer " << key.second;
    CHECK_EQ(it->second, key.first);
    CHECK_LT(key.second, next_timer_handle_);
    CHECK(callback);
  }
  if (!running_) {
    CHECK(retired_.empty());
    CHECK(due_.empty());
  }
  MutexLock lock(&posted_mu_);
  CHECK_LE(posted_.size(), kPostedMax);
}

}  // namespace blixard::net
