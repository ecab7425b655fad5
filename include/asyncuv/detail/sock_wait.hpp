// Internal machinery of the loop's sock_* operations (lib/sock_ops.cpp, lib/sock_sendfile.cpp):
// the checks they share, and the fd watch that retries a non-blocking call each time the fd is
// ready until the call completes (asyncio's _add_reader + _sock_read_done pattern).
#pragma once

#include <uv.h>

#include <cerrno>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>
#include "asyncuv/source_location.hpp"

#include "asyncuv/detail/fd_watchers.hpp"
#include "asyncuv/detail/handle_impl.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"

namespace asyncuv::detail {

/// What every sock_* operation checks before it touches the socket: RuntimeError("Event loop
/// is closed") on a closed loop, and in debug mode ValueError("the socket must be
/// non-blocking") for an fd in blocking mode.
void sock_check(EventLoop& loop, int fd);

/// True for the errno values that mean "not now, try when the fd is ready".
inline bool would_block(int err) noexcept {
  return err == EAGAIN || err == EWOULDBLOCK;
}

/// Finishes `fut` with the OSError subclass for `err` and returns true, or returns false when
/// `err` only means the call would block.
template <class T>
bool fail_unless_blocked(Future<T>& fut, int err) {
  if (would_block(err)) return false;
  fut.set_exception(make_os_error(err));
  return true;
}

/// Runs `call` (a system call returning -1 with errno on failure) again while it fails with
/// EINTR.
template <class Call>
auto retry_eintr(Call call) {
  decltype(call()) r;
  do {
    r = call();
  } while (r < 0 && errno == EINTR);
  return r;
}

/// One pending operation: `step(fut)` makes one attempt and returns true once it finished
/// `fut`, false when the call would block. Held by the watcher handle (and only weakly by the
/// future's done-callback, so that an abandoned operation is freed when its loop closes).
template <class T, class Step>
class SockWait {
 public:
  SockWait(EventLoop& loop, int fd, int event, Future<T> fut, Step step)
      : loop_(loop), fd_(fd), event_(event), fut_(std::move(fut)), step_(std::move(step)) {}

  void set_handle(Handle h) noexcept { handle_ = std::move(h); }

  /// The fd is ready: one more attempt. The watch is removed as soon as the future is done.
  void ready() {
    if (fut_.done()) {
      done();
      return;
    }
    bool finished;
    try {
      finished = step_(fut_);
    } catch (...) {
      if (!fut_.done()) fut_.set_exception(std::current_exception());
      finished = true;
    }
    if (finished) done();
  }

  /// The future is done (finished by a step, or cancelled): runs the step's cancelled() hook
  /// once if it has one, and removes the watch unless another reader/writer replaced it.
  void done() noexcept {
    if (!finished_) {
      finished_ = true;
      if constexpr (requires(Step & s) { s.cancelled(); }) {
        if (fut_.cancelled()) step_.cancelled();
      }
    }
    Handle h = std::exchange(handle_, Handle{});
    if (!h || h.cancelled() || loop_.is_closed()) return;
    if (auto* watchers = loop_.find_service<FdWatchers>()) {
      try {
        watchers->remove(fd_, event_);
      } catch (...) {
        // The fd was closed under the watch; removing it has dropped the registration anyway.
      }
    }
  }

 private:
  EventLoop& loop_;
  int fd_;
  int event_;
  Future<T> fut_;
  Step step_;
  Handle handle_;
  bool finished_ = false;
};

/// The watcher handle's callable.
template <class Wait>
struct SockReady {
  std::shared_ptr<Wait> wait;
  void operator()() const { wait->ready(); }
};

/// Retries `step` (see SockWait) each time `fd` is ready for `event` (UV_READABLE or
/// UV_WRITABLE) until `fut` is done; cancelling `fut` removes the watch. Throws
/// RuntimeError("File descriptor N is used by transport ...") for an fd a transport owns, and
/// what registering the watch throws (OSError EBADF for a closed fd).
template <class T, class Step>
void sock_wait(EventLoop& loop, int fd, int event, const Future<T>& fut, Step step) {
  loop.fd_watcher_check(fd);  // creates the service; claims, closed loop, negative fd
  FdWatchers& watchers = *loop.find_service<FdWatchers>();
  using Wait = SockWait<T, Step>;
  auto wait = std::make_shared<Wait>(loop, fd, event, fut, std::move(step));
  wait->set_handle(watchers.add(
      fd, event, make_handle(asyncuv::source_location::current(), SockReady<Wait>{wait})));
  std::weak_ptr<Wait> weak = wait;
  fut.add_done_callback([weak](Future<T>) {
    if (auto w = weak.lock()) w->done();
  });
}

/// Copies `from`'s outcome (result, exception or cancellation) to `to` unless `to` is done
/// already. `from`'s exception always counts as retrieved.
template <class T>
void copy_outcome(const Future<T>& from, const Future<T>& to) {
  if (from.cancelled()) {
    if (!to.done()) to.cancel();
    return;
  }
  std::exception_ptr e = from.exception();
  if (to.done()) return;
  if (e) {
    to.set_exception(std::move(e));
  } else if constexpr (std::is_void_v<T>) {
    to.set_result();
  } else {
    to.set_result(from.result());
  }
}

/// Cancels the future behind `weak` if it still exists.
template <class T>
void cancel_weak(const std::weak_ptr<typename Future<T>::State>& weak) {
  if (auto state = weak.lock()) Future<T>(std::move(state)).cancel();
}

/// Makes `outer` finish as `inner` does; cancelling `outer` cancels `inner`. `outer` is held
/// by `inner`'s callback, `inner` only weakly by `outer`'s (whoever runs `inner` keeps it).
template <class T>
void sock_follow(const Future<T>& inner, const Future<T>& outer) {
  inner.add_done_callback([outer](Future<T> in) { copy_outcome(in, outer); });
  std::weak_ptr<typename Future<T>::State> weak = inner.state();
  outer.add_done_callback([weak](Future<T> out) {
    if (out.cancelled()) cancel_weak<T>(weak);
  });
}

/// The usual operation: `step` is tried once now; if it would block, it is kept (after
/// step.own(), if it has one, copied what it borrowed from the caller) and retried each time
/// `fd` is ready for `event`.
template <class T, class Step>
Future<T> sock_op(EventLoop& loop, int fd, int event, Step step) {
  Future<T> fut = loop.create_future<T>();
  if (!step(fut)) {
    if constexpr (requires(Step & s) { s.own(); }) step.own();
    sock_wait(loop, fd, event, fut, std::move(step));
  }
  return fut;
}

}  // namespace asyncuv::detail
