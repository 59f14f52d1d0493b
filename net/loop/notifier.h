// Notifier: lets another thread wake an EventLoop and have a callback run on
// the loop thread, through an eventfd of its own in the loop's epoll set.
//
// Made for the SQLite LogStore's completions (storage/sqlite_log_store.h):
// its I/O thread calls Notify() when the completion queue goes from empty
// to non-empty; the loop wakes, and the callback calls PollCompletions(),
// which takes the whole queue. Unlike EventLoop::Post, Notify allocates
// nothing and queues nothing (any number of Notify calls before the loop
// looks coalesce into one callback), and the callback is owned here, so
// nothing posted can outlive what it points to.
//
// Ordering. The loop consumes the eventfd BEFORE it runs the callback, so a
// Notify that lands while the callback runs (or after the eventfd was read)
// always produces another callback; a producer that signals only on
// "empty -> non-empty" and a consumer that drains everything it finds
// therefore never strand an item.
//
// Threads. Create and destroy on the loop thread; the callback runs there.
// Notify() may be called from any thread, until the destructor starts.
//
//   ASSIGN_OR_RETURN(
//       std::unique_ptr<Notifier> notifier,
//       Notifier::Create(loop, [&] { store->PollCompletions(); }));
//   options.wakeup = [n = notifier.get()] { n->Notify(); };
#ifndef BLIXARD_NET_LOOP_NOTIFIER_H_
#define BLIXARD_NET_LOOP_NOTIFIER_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "net/loop/event_loop.h"
#include "net/loop/unique_fd.h"

namespace blixard::net {

class Notifier {
 public:
  // Creates the eventfd and registers it with `loop`. Errors: the
  // ErrnoStatus of eventfd, or AddFd's error. REQUIRES: loop thread;
  // `loop` outlives the notifier; on_notify is not empty.
  static absl::StatusOr<std::unique_ptr<Notifier>> Create(
      EventLoop* loop, std::function<void()> on_notify);

  // Unregisters and closes the eventfd. REQUIRES: loop thread; no thread
  // calls Notify() any more (stop the producer first: for a SqliteLogStore,
  // destroy the store before its notifier).
  ~Notifier();

  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Makes the loop run the callback once more, in a later iteration (never
  // inside Notify). Thread-safe, never blocks, allocates nothing.
  void Notify();

  // Callbacks run so far. Loop thread.
  uint64_t wakes() const { return wakes_; }

  void CheckInvariants() const;

 private:
  Notifier(EventLoop* loop, std::function<void()> on_notify, UniqueFd fd);
  void OnReadable(uint32_t events);

  EventLoop* const loop_;
  const std::function<void()> on_notify_;
  UniqueFd fd_;
  uint64_t wakes_ = 0;
};

}  // namespace blixard::net

#endif  // BLIXARD_NET_LOOP_NOTIFIER_H_
