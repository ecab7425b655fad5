// Unix signal handlers: asyncio's loop.add_signal_handler() / loop.remove_signal_handler().
//
// How they behave:
// - The handler never runs inside the OS signal handler. libuv's handler only records the
//   signal; the loop notices it while polling and queues the handler, which then runs as an
//   ordinary callback of a later batch (exceptions go to the exception handler, stop() works,
//   is_running() is true). Each delivery queues one run.
// - A signal that arrives while the loop is not running waits in libuv's self-pipe and is
//   handled on the next run_forever() / run_until_complete().
// - Adding a handler for a signal that already has one replaces it; the old one is cancelled,
//   so a delivery already queued for it is dropped. remove_signal_handler() cancels the same
//   way, and loop.close() removes every handler of the loop.
// - Without handlers for a signal, its disposition is SIG_DFL again (for SIGINT too: that is
//   C++'s equivalent of Python's default_int_handler). libuv does not restore a disposition
//   that was installed before the first handler.
// - SIGCHLD may be handled; libuv's own child watcher (uv_spawn) keeps working next to it.
// - Unlike asyncio, handlers may be added from any thread's loop, not only the main thread's.
//   Several loops may handle the same signal: libuv delivers every signal to every loop that
//   watches it, so each loop runs its own handler, and the disposition returns to SIG_DFL only
//   when the last of them removes its handler. (In CPython the wakeup fd is process-wide, so
//   only the loop that installed a handler last is woken.)
// - Signal watchers do not keep a host's uv_run() alive (see EventLoop(uv_loop_t*)).
#pragma once

#include <concepts>
#include <type_traits>
#include <utility>
#include "asyncuv/source_location.hpp"

#include "asyncuv/detail/handle_impl.hpp"
#include "asyncuv/detail/signal_handlers.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/handle.hpp"

namespace asyncuv {

namespace detail {
/// A coroutine type (Task<T> and the like): calling the function only creates the coroutine.
template <class R>
concept CoroutineResult = requires {
  typename std::decay_t<R>::promise_type;
};
}  // namespace detail

template <class F, class... As>
void EventLoop::add_signal_handler(int sig, F&& f, As&&... args) {
  static_assert(std::invocable<std::decay_t<F>&, std::decay_t<As>&...>,
                "add_signal_handler: f(args...) must be callable");
  static_assert(
      !detail::CoroutineResult<std::invoke_result_t<std::decay_t<F>&, std::decay_t<As>&...>>,
      "coroutines cannot be used with add_signal_handler()");
  detail::SignalHandlers::check_signal(sig);
  check_closed();
  // make_handle counts a reference for a queue the handler is not in yet: drop that one.
  Handle handler(detail::make_handle(asyncuv::source_location{}, std::forward<F>(f),
                                     std::forward<As>(args)...));
  detail::release(handler.impl());
  handler.impl()->persistent = true;
  // Every run uses the context current now (asyncio makes the handler's Handle once).
  if (detail::contexts_in_use()) handler.impl()->context = detail::capture_context();
  service<detail::SignalHandlers>().add(sig, std::move(handler));
}

}  // namespace asyncuv
