// EventLoop: the production runtime's single-threaded epoll loop. One loop
// thread owns the Host and everything it touches; nothing on it blocks
// (ARCHITECTURE.md, "Production runtime").
//
// What it multiplexes, all in one epoll set, level-triggered:
//   - file descriptors (sockets, pipes, pidfds, eventfds) with read and/or
//     write interest and a callback; every registered fd must be
//     non-blocking, so a callback that reads or writes "until EAGAIN" can
//     never stall the loop;
//   - a timer heap keyed by (deadline, arm order) on the loop's own
//     LoopClock (CLOCK_MONOTONIC), O(log n) to add, cancel and pop; equal
//     deadlines fire in the order they were added;
//   - a cross-thread post queue: Post() from any thread appends a closure and
//     writes the loop's one eventfd only when the queue goes from empty to
//     non-empty; the loop drains the whole queue per wake. So a burst of
//     posts costs one eventfd write and one wake-up, not one each;
//   - optionally SIGTERM and SIGINT through a signalfd: a graceful-stop
//     callback on the loop thread instead of an async signal handler.
//
// One iteration (RunOnce): wait in epoll_wait until an fd is ready, the
// earliest timer is due, or the timeout passes; run the callbacks of the
// ready fds (posted closures and the stop-signal callback among them); then
// run the timers due at one reading of the clock taken after the wait, in
// (deadline, arm order). Only timers added before that batch started run in
// it: a timer callback that adds a timer due now gets the next iteration,
// after the fds have been looked at again, so a zero-delay re-arm cannot
// spin the loop (sim/sim_timers.h does the same, so both Envs agree).
// epoll_wait's timeout is in milliseconds; the loop rounds up, so a timer
// may fire up to about a millisecond late but never early.
//
// Callbacks may call any method of the loop (add, modify and remove fds,
// including their own; add and cancel timers; Post; Stop) except RunOnce
// and Run. An fd removed by a callback gets no further callback, even if it
// was ready in the same epoll batch; a callback object is destroyed no
// earlier than the end of the iteration that removed it, so a callback may
// remove its own fd and go on using its captures.
//
// Threads. The loop thread is the thread that created the loop. Post(),
// Stop() and InLoopThread() may be called from any thread (one that does
// must be done with the loop before it is destroyed); everything else, the
// destructor included, only on the loop thread (CHECKed). Every callback
// runs on the loop thread.
//
// Errors. Setup (Create, AddFd, ModifyFd, RemoveFd) reports operating
// errors as absl::Status naming the syscall, the fd and errno's text.
// Misuse (a blocking fd, an fd registered twice, a call from the wrong
// thread, exceeding a bound that only a bug can reach) is a CHECK failure.
//
//   EventLoopOptions options;
//   options.handle_stop_signals = true;
//   ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop,
//                    EventLoop::Create(options));
//   RETURN_IF_ERROR(loop->AddFd(listen_fd, EventLoop::kReadable,
//                               [&](uint32_t events) { Accept(); }));
//   loop->AddTimerAt(loop->clock().NowMicros() + 100 * kMicrosPerMilli,
//                    [&] { Tick(); });
//   loop->Run();  // until SIGTERM/SIGINT or Stop()
#ifndef BLIXARD_NET_LOOP_EVENT_LOOP_H_
#define BLIXARD_NET_LOOP_EVENT_LOOP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/env.h"
#include "net/loop/loop_clock.h"
#include "net/loop/unique_fd.h"
#include "storage/mutex.h"

namespace blixard::net {

struct EventLoopOptions {
  // Receive SIGTERM and SIGINT through a signalfd. Create() blocks both in
  // the calling thread's signal mask (a signalfd only sees blocked signals)
  // and leaves them blocked after the loop is gone, so a signal that
  // arrives during shutdown stays pending instead of killing the process
  // half-way. Create the loop before starting any other thread: threads
  // inherit the mask they are started with, and a process-directed SIGTERM
  // goes to any thread that does not block it, whose default action kills
  // the process without a graceful stop. Off by default so that tests can
  // run many loops in one process.
  bool handle_stop_signals = false;
  // With handle_stop_signals: runs on the loop thread with the signal number
  // (SIGTERM or SIGINT) for each one received. Empty: the loop calls Stop().
  std::function<void(int signal)> on_stop_signal;
};

class EventLoop {
 public:
  // Readiness bits. Interest is kReadable and/or kWritable (or neither:
  // registered but quiet); a callback's `events` may also carry kError and
  // kHangup, which epoll reports whatever the interest. With level
  // triggering an fd in error or hung up is reported on every iteration
  // until its callback removes (usually closes) it.
  static constexpr uint32_t kReadable = 1u << 0;
  static constexpr uint32_t kWritable = 1u << 1;
  static constexpr uint32_t kError = 1u << 2;
  static constexpr uint32_t kHangup = 1u << 3;

  // Bounds (STYLE.md: every queue and loop has one).
  // Registered fds: connections, listeners, pidfds, eventfds of one node.
  // Reaching it is an operating condition (AddFd: RESOURCE_EXHAUSTED).
  static constexpr size_t kFdsMax = 16384;
  // Pending timers. The Host arms at most Timers::kArmedMax; the rest are
  // the runtime's own (reconnect backoff, snapshot chunk timeouts), one or
  // two per peer or connection. Reaching it is a bug (CHECK).
  static constexpr size_t kTimersMax = 65536;
  // Posted closures not yet drained. Posters are our own threads (storage
  // I/O, resolvers) that post a bounded amount per event; reaching it means
  // the loop is stuck or a poster runs away: a bug (CHECK).
  static constexpr size_t kPostedMax = 65536;
  // Events taken from one epoll_wait. More ready fds than this are simply
  // reported by the next call (level-triggered), so this bounds the work of
  // one iteration, not what can be registered.
  static constexpr int kEventsPerWaitMax = 256;

  using FdCallback = std::function<void(uint32_t events)>;
  using Closure = std::function<void()>;
  // Names one added timer. Handles increase with every AddTimerAt and are
  // never reused, so arm order is handle order; 0 is never a handle.
  using TimerHandle = uint64_t;

  // Creates the epoll set, the wake eventfd and, with handle_stop_signals,
  // blocks SIGTERM/SIGINT in the calling thread and creates the signalfd.
  // The calling thread becomes the loop thread. Errors: the failing
  // syscall's ErrnoStatus (epoll_create1, eventfd, pthread_sigmask,
  // signalfd, epoll_ctl), e.g. RESOURCE_EXHAUSTED at the fd limit; nothing
  // is left open on error (the signal mask may stay changed).
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(
      EventLoopOptions options = {});

  // Closes the loop's own fds. Registered fds are not the loop's: they stay
  // open (their owners close them). Pending timers and posted closures are
  // destroyed without running. REQUIRES: loop thread; not inside RunOnce.
  ~EventLoop();

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // --- File descriptors (loop thread only). ---

  // Watches `fd` with `interest` (kReadable | kWritable, or 0). The callback
  // runs on the loop thread whenever, at the start of an iteration, the fd
  // is ready for something in its interest or in error/hung up; never inside
  // AddFd. Errors (nothing registered): RESOURCE_EXHAUSTED at kFdsMax; the
  // ErrnoStatus of fcntl(F_GETFL) (INVALID_ARGUMENT for a closed fd) or
  // epoll_ctl(ADD) (PERMISSION_DENIED for a regular file, which epoll cannot
  // watch; RESOURCE_EXHAUSTED at the kernel's watch limit).
  // REQUIRES: fd is open and O_NONBLOCK (CHECKed after fcntl succeeds); fd
  // is not registered; interest has no bits but kReadable | kWritable;
  // callback is not empty.
  absl::Status AddFd(int fd, uint32_t interest, FdCallback callback);

  // Changes the interest of a registered fd. Errors: epoll_ctl(MOD)'s
  // ErrnoStatus; the old interest then stays. REQUIRES: fd is registered;
  // interest as for AddFd.
  absl::Status ModifyFd(int fd, uint32_t interest);

  // Stops watching `fd`; its callback will not run again (not even for an
  // event already taken from epoll in this iteration). Call it before
  // closing the fd. The registration is dropped even when epoll_ctl(DEL)
  // fails (its ErrnoStatus is returned: EBADF means the fd was closed first,
  // which the kernel already cleaned up after). REQUIRES: fd is registered.
  absl::Status RemoveFd(int fd);

  bool HasFd(int fd) const;
  size_t fd_count() const { return fds_.size(); }

  // --- Timers (loop thread only). ---

  // Runs `callback` once on the loop thread, at the first iteration whose
  // clock reading is at or after `deadline` (on clock()), in (deadline, arm
  // order) among the timers due then; never inside AddTimerAt, even for a
  // deadline in the past. REQUIRES: callback is not empty; fewer than
  // kTimersMax timers pending.
  TimerHandle AddTimerAt(MonoMicros deadline, Closure callback);

  // Cancels a pending timer: its callback is destroyed without running.
  // Returns false (and does nothing) when it already ran or was cancelled.
  bool CancelTimer(TimerHandle handle);

  bool IsTimerPending(TimerHandle handle) const;
  size_t timer_count() const { return timer_deadlines_.size(); }

  // --- Cross-thread. ---

  // Queues `closure` to run on the loop thread, after every closure posted
  // before it (from any thread: FIFO in the order the queue lock was
  // taken), in a later iteration, never inside Post. Any thread, including
  // the loop thread. REQUIRES: closure is not empty; fewer than kPostedMax
  // closures queued.
  void Post(Closure closure);

  // Asks Run() to return at the end of the current iteration (or, when
  // called while Run() is not running, as soon as it is next called). Any
  // thread: from another thread it also wakes the loop out of epoll_wait.
  void Stop();

  // True on the loop thread. Any thread.
  bool InLoopThread() const {
    return std::this_thread::get_id() == loop_thread_;
  }

  // --- Running (loop thread only; not from inside a callback). ---

  // Runs iterations until Stop() is called (see Stop). SIGTERM/SIGINT stop
  // it too, with handle_stop_signals and no on_stop_signal.
  void Run();

  // Runs one iteration, waiting at most `timeout` (rounded up to a whole
  // millisecond; absl::InfiniteDuration() waits for the first event or
  // timer; zero only polls). Returns how many callbacks ran (fd callbacks,
  // posted closures, stop-signal callbacks, timers). REQUIRES: timeout >=
  // zero.
  size_t RunOnce(absl::Duration timeout);

  // The loop's clock: timer deadlines are on it, and the Host should read
  // the same one (loop thread only, like every Clock).
  LoopClock& clock() { return clock_; }

  void CheckInvariants() const;

 private:
  struct Registration {
    int fd;
    // Stamped into epoll_event.data with the fd, so an event taken from
    // epoll for an fd that was removed (and perhaps re-added under the same
    // number) by an earlier callback of the same batch is recognised as
    // stale and skipped.
    uint32_t generation;
    uint32_t interest;
    FdCallback callback;
  };

  explicit EventLoop(EventLoopOptions options);
  absl::Status Init();

  void Dispatch(uint64_t data, uint32_t epoll_events, size_t* ran);
  void DrainPosted(size_t* ran);
  void DrainSignals(size_t* ran);
  void RunDueTimers(size_t* ran);
  // epoll_wait's timeout in ms for a wait of at most `timeout`.
  int WaitMillis(absl::Duration timeout);
  void WriteWakeFd();
  void CheckLoopThread() const;

  const EventLoopOptions options_;
  const std::thread::id loop_thread_;
  LoopClock clock_;
  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;    // eventfd: Post() and Stop() from other threads
  UniqueFd signal_fd_;  // signalfd, with handle_stop_signals only

  absl::flat_hash_map<int, std::unique_ptr<Registration>> fds_;
  uint32_t next_generation_ = 1;
  // Registrations removed during this iteration: a callback being run may
  // be among them, so they are destroyed only once the iteration ends.
  std::vector<std::unique_ptr<Registration>> retired_;
  bool running_ = false;  // inside RunOnce

  // The timer heap: ordered by (deadline, handle), plus each pending
  // handle's deadline so CancelTimer finds its entry in O(log n).
  absl::btree_map<std::pair<MonoMicros, TimerHandle>, Closure> timer_queue_;
  absl::flat_hash_map<TimerHandle, MonoMicros> timer_deadlines_;
  TimerHandle next_timer_handle_ = 1;
  std::vector<std::pair<MonoMicros, TimerHandle>> due_;  // RunDueTimers' batch

  std::atomic<bool> stop_requested_{false};

  // Shared with posting threads. blixard::Mutex (storage/mutex.h): TSan
  // sees its hand-offs and -Wthread-safety checks the queue's accesses.
  mutable Mutex posted_mu_;
  std::vector<Closure> posted_ ABSL_GUARDED_BY(posted_mu_);
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_LOOP_EVENT_LOOP_H_
