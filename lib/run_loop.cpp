// The heart of the loop: run_forever and one asyncio _run_once batch per libuv iteration.
//
// Mapping onto libuv's phases: I/O is polled by libuv itself; the poll timeout is zero while
// the uv_idle handle is active (ready callbacks pending, or stopping) and otherwise bounded by
// the wake-up uv_timer armed for the earliest live asyncuv timer. Right after the poll, the
// uv_check callback moves expired timers to the ready queue and runs exactly the callbacks
// that were ready at that moment, as asyncio's _run_once does.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <optional>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/log.hpp"
#include "internal.hpp"

namespace asyncuv {

namespace {
/// asyncio's clock_resolution (time.get_clock_info('monotonic').resolution).
constexpr double kClockResolution = 1e-9;

}  // namespace

void EventLoop::run_forever() {
  check_closed();
  if (is_running()) throw RuntimeError("This event loop is already running");
  if (running_loop() != nullptr) {
    throw RuntimeError("Cannot run the event loop while another loop is running");
  }
  if (fatal_) std::rethrow_exception(std::exchange(fatal_, nullptr));

  thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  detail::RunningLoopScope scope(this);
  running_ = true;
  uv_ref(async_.base());  // run_forever runs until stop(), even with nothing scheduled
  drain_incoming();
  update_idle();
  arm_timer();
  bool stopped = false;
  while (!stopped) {
    uv_run(uv_, UV_RUN_DEFAULT);
    // uv_run also returns when someone else calls uv_stop(); only our stop ends run_forever.
    stopped = stop_reached_;
  }
  stop_reached_ = false;
  stopping_.store(false, std::memory_order_relaxed);
  running_ = false;
  if (!closed_) {
    uv_unref(async_.base());
    update_idle();
  }
  if (fatal_) std::rethrow_exception(std::exchange(fatal_, nullptr));
}

void EventLoop::on_idle(uv_idle_t*) {
  // Its being active is what matters: libuv polls with a zero timeout.
}

void EventLoop::on_wake_timer(uv_timer_t* h) {
  auto* self = static_cast<EventLoop*>(h->data);
  if (self == nullptr) return;
  // Fired in libuv's timer phase: the deadline has come, so the coming poll must not block
  // before the check phase moves the timer to the ready queue.
  self->armed_when_ = -1;
  self->start_idle();
}

void EventLoop::on_async(uv_async_t* h) {
  auto* self = static_cast<EventLoop*>(h->data);
  if (self != nullptr) self->drain_incoming();
}

void EventLoop::on_check(uv_check_t* h) {
  auto* self = static_cast<EventLoop*>(h->data);
  if (self != nullptr) self->run_batch();
}

void EventLoop::run_batch() {
  ++iterations_;
  if (!timers_.empty()) {
    double end_time = time() + kClockResolution;
    while (!timers_.empty()) {
      detail::HandleImpl* t = timers_.top();
      if (t->cancelled) {
        detail::release(timers_.pop());
        continue;
      }
      if (t->when > end_time) break;
      ready_.push(timers_.pop());
    }
  }

  // Only the callbacks ready now run in this batch; what they schedule waits for the next.
  std::size_t ntodo = ready_.size();
  if (ntodo != 0) {
    // run_forever already made this the running loop; a host's uv_run has not.
    std::optional<detail::RunningLoopScope> scope;
    if (!running_) scope.emplace(this);
    dispatching_ = true;
    // Whether any context exists is read once per batch, not per callback: until the first
    // context of the process, callbacks run bare. A context created during the
    // batch on this thread sets attention_ (detail::notice_context_created), and the rest of
    // the batch runs in contexts. One created on another thread cannot be this thread's
    // current one, and what that thread schedules here arrives through a lock, after the
    // mirror was set.
    if (!contexts_.load(std::memory_order_relaxed)) ntodo = run_ready<false>(ntodo);
    if (ntodo != 0 && !fatal_) run_ready<true>(ntodo);
    dispatching_ = false;
  }
  after_batch();
}

// Inlined into run_batch: a chained call_soon runs one callback per batch, so a call here
// would cost as much as the context work it saves (bench/run.sh --callgrind).
template <bool InContexts>
[[gnu::always_inline]] inline std::size_t EventLoop::run_ready(std::size_t ntodo) {
  while (ntodo != 0) {
    --ntodo;
    detail::HandleImpl* h = ready_.pop();
    if (!h->cancelled) run_handle<InContexts>(h);
    if (attention_) [[unlikely]] {
      bool fatal = on_attention(h, InContexts);
      detail::release(h);
      // A fatal error ends the batch; the first context ends its bare part.
      if (fatal || (!InContexts && contexts_.load(std::memory_order_relaxed))) return ntodo;
      continue;
    }
    if constexpr (InContexts) {
      detail::release(h);
    } else {
      detail::release_without_context(h);  // no context existed when h was queued nor since
    }
  }
  return 0;
}

bool EventLoop::on_attention(detail::HandleImpl* h, bool in_contexts) {
  attention_ = false;
  if (!in_contexts && contexts_.load(std::memory_order_relaxed)) {
    // The callback created the first context of this thread: what it set belongs to its
    // handle (asyncio ran it in its own context all along), not to the callbacks after it.
    claim_context_made_by(h);
  }
  return fatal_ != nullptr;  // a fatal error ends the batch at once
}

void EventLoop::claim_context_made_by(detail::HandleImpl* h) noexcept {
  if (detail::ContextImpl* made = detail::claim_current_context()) {
    if (h->context != nullptr) detail::release_context(h->context);
    h->context = made;
  }
}

void EventLoop::after_batch() {
  if (closed_) return;
  bool stop_now = fatal_ != nullptr || stopping_.load(std::memory_order_relaxed);
  if (stop_now && running_) {
    stop_reached_ = true;
    uv_stop(uv_);
  } else if (fatal_ != nullptr) {
    // A fatal error while a host drives the loop: stop the host's uv_run; the next
    // run_forever() rethrows it.
    uv_stop(uv_);
  }
  update_idle();
  arm_timer();
}

template <bool InContexts>
void EventLoop::run_handle(detail::HandleImpl* h) {
  // As asyncio, whether to time the callback is decided before it runs (it may toggle debug).
  const bool debug = debug_;
  h->running = true;
  double started = debug ? time() : 0.0;
  if constexpr (InContexts) {
    run_handle_in_context(h);
  } else {
    try {
      h->ops->invoke(h);
      h->running = false;
    } catch (...) {
      h->running = false;
      // A context the callback made before raising is its own: the custom handler runs in
      // it (as in_context's would). on_attention then finds nothing left to claim.
      if (contexts_.load(std::memory_order_relaxed)) [[unlikely]]
        claim_context_made_by(h);
      // Report first: the message describes the callback with its arguments, as asyncio does.
      report_callback_error(h, std::current_exception());
    }
  }
  // A slow callback is logged whether or not it threw (asyncio times handle._run()).
  if (debug && !fatal_) [[unlikely]] {
    double took = time() - started;
    if (took >= slow_callback_duration_) {
      detail::retain(h);
      Handle handle(h);
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%.3f", took);
      logger()->warn("Executing {} took {} seconds", handle.repr(), seconds);
    }
  }
  // The callback ran: release what it captured now rather than when the last Handle goes.
  if (!h->persistent || h->cancelled) detail::drop_callback(h);
}

void EventLoop::run_handle_in_context(detail::HandleImpl* h) {
  // asyncio's Handle._run: self._context.run(callback). The exception handler is called after
  // leaving it; call_exception_handler runs a custom handler inside it again (3.12).
  std::exception_ptr error;
  try {
    detail::ContextSwitch in_context(h->context);
    try {
      h->ops->invoke(h);
    } catch (...) {
      error = std::current_exception();
    }
    if (detail::ContextImpl* made = in_context.leave()) h->context = made;
  } catch (...) {
    error = std::current_exception();  // the context was entered elsewhere (RuntimeError)
  }
  h->running = false;
  if (error) report_callback_error(h, std::move(error));
}

void EventLoop::report_callback_error(detail::HandleImpl* h, std::exception_ptr e) {
  if (detail::is_fatal(e)) {
    set_fatal(std::move(e));
    return;
  }
  detail::retain(h);
  Handle handle(h);
  ExceptionContext context("Exception in callback " + handle.callback_repr(), e);
  context.set_handle(handle);
  if (debug_ && h->where.line() != 0) {
    context.set("source_traceback", std::string("Handle created at ") + h->where.file_name() + ":" +
                                        std::to_string(h->where.line()) + " in " +
                                        h->where.function_name());
  }
  try {
    call_exception_handler(context);
  } catch (...) {
    set_fatal(std::current_exception());  // only fatal errors escape call_exception_handler
  }
}

namespace detail {

void notice_context_created(EventLoop& loop) noexcept {
  loop.attention_ = true;
}

}  // namespace detail

}  // namespace asyncuv
