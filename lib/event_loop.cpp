// EventLoop construction, closing, and the scheduling slow paths (timers, threads).
#include "asyncuv/event_loop.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "asyncuv/log.hpp"

namespace asyncuv {

namespace {
bool debug_from_environment() {
  const char* value = std::getenv("ASYNCUV_DEBUG");
  return value != nullptr && value[0] != '\0';
}

void check_uv(int rc, const char* what) {
  if (rc != 0) throw_uv_error(rc, what);
}
}  // namespace

LoopTime::LoopTime(std::chrono::steady_clock::time_point when) {
  using namespace std::chrono;
  double now = static_cast<double>(uv_hrtime()) * 1e-9;
  value = now + duration<double>(when - steady_clock::now()).count();
}

EventLoop::EventLoop() : owned_(new uv_loop_t{}) {
  int rc = uv_loop_init(owned_);
  if (rc != 0) {
    delete owned_;
    owned_ = nullptr;
    throw_uv_error(rc, "uv_loop_init");
  }
  uv_ = owned_;
  try {
    init_handles();
  } catch (...) {
    idle_.close();
    check_.close();
    wake_timer_.close();
    async_.close();
    uv_run(owned_, UV_RUN_NOWAIT);
    uv_loop_close(owned_);
    delete owned_;
    throw;
  }
}

EventLoop::EventLoop(uv_loop_t* host) : uv_(host) {
  if (host == nullptr) throw ValueError("EventLoop(uv_loop_t*) needs a loop, got nullptr");
  init_handles();
}

void EventLoop::init_handles() {
  debug_ = debug_from_environment();
  thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  check_uv(idle_.init(uv_idle_init, uv_, this), "uv_idle_init");
  check_uv(check_.init(uv_check_init, uv_, this), "uv_check_init");
  check_uv(wake_timer_.init(uv_timer_init, uv_, this), "uv_timer_init");
  check_uv(async_.init(uv_async_init, uv_, this, &EventLoop::on_async), "uv_async_init");
  // The batch runs in the check phase, right after libuv polled for I/O. Neither the check
  // handle nor the wake-up async keeps a host's uv_run alive on its own.
  // Cancelling the earliest timer outside a batch re-arms (or stops) the wake-up timer, so a
  // cancelled deadline never keeps a host's uv_run waiting.
  timers_.on_top_cancelled(
      [](void* self) {
        auto* loop = static_cast<EventLoop*>(self);
        if (!loop->dispatching_ && !loop->closed_) loop->arm_timer();
      },
      this);
  uv_check_start(check_.get(), &EventLoop::on_check);
  uv_unref(check_.base());
  uv_unref(async_.base());
  detail::watch_contexts(&contexts_);  // last: nothing after it may throw
}

EventLoop::~EventLoop() {
  if (!closed_) {
    if (is_running()) {
      logger()->critical("EventLoop destroyed while running; its handles are leaked");
    } else {
      try {
        close();
      } catch (const std::exception& e) {
        logger()->error("Error while closing the event loop: {}", e.what());
      }
    }
  }
  detail::unwatch_contexts(&contexts_);
  std::lock_guard lock(anchor_->mutex);
  anchor_->loop = nullptr;
}

void EventLoop::throw_closed() {
  throw RuntimeError("Event loop is closed");
}

bool EventLoop::on_loop_thread() const noexcept {
  return thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

void EventLoop::check_thread() const {
  if (running_ && !on_loop_thread()) {
    throw RuntimeError(
        "Non-thread-safe operation invoked on an event loop other than the current one");
  }
}

void EventLoop::close() {
  if (is_running()) throw RuntimeError("Cannot close a running event loop");
  if (closed_) return;
  closed_ = true;
  {
    std::lock_guard lock(incoming_mutex_);
    incoming_closed_ = true;
  }
  for (detail::HandleImpl* h : incoming_) {
    detail::drop_callback(h);
    detail::release(h);
  }
  incoming_.clear();
  close_services();
  ready_.clear();
  timers_.clear();
  release_tasks();
  idle_active_ = false;
  idle_.close();
  check_.close();
  wake_timer_.close();
  async_.close();
  if (owned_ != nullptr) {
    // Let libuv run the close callbacks, then free the loop. Handles the user opened on
    // uv_loop() and never closed keep it busy: the loop is then leaked, not freed under them.
    int rc = UV_EBUSY;
    for (int i = 0; i < 16 && rc == UV_EBUSY; ++i) {
      uv_run(owned_, UV_RUN_NOWAIT);
      rc = uv_loop_close(owned_);
    }
    if (rc == 0) {
      delete owned_;
    } else {
      logger()->error("uv_loop_close failed: {}; handles are still open on the loop",
                      uv_strerror(rc));
    }
    owned_ = nullptr;
  }
}

detail::LoopService& EventLoop::add_service(const std::type_info& type,
                                            std::unique_ptr<detail::LoopService> service) {
  services_.emplace_back(&type, std::move(service));
  return *services_.back().second;
}

void EventLoop::close_services() noexcept {
  for (auto it = services_.rbegin(); it != services_.rend(); ++it)
    it->second->close();
}

void detail::LoopService::schedule(EventLoop& loop, HandleImpl* h) {
  retain(h);  // the ready queue's reference
  retain(h);  // adopted, and dropped, by the Handle that push_ready returns
  // A persistent handle keeps the context it took when it was registered (asyncio's
  // add_reader / add_signal_handler handle is made once).
  (void)loop.push_ready_raw(h);
}

void EventLoop::stop() noexcept {
  stopping_.store(true, std::memory_order_relaxed);
  // From the loop's own thread, make sure the poll does not block, as asyncio's zero timeout
  // while _stopping is set. From another thread only the flag is set.
  if (on_loop_thread() && !closed_ && running_) start_idle();
}

void EventLoop::start_idle() noexcept {
  if (closed_) return;
  uv_idle_start(idle_.get(), &EventLoop::on_idle);
  idle_active_ = true;
}

void EventLoop::update_idle() noexcept {
  bool want = !ready_.empty() || (running_ && stopping_.load(std::memory_order_relaxed));
  if (want == idle_active_) return;
  if (want) {
    start_idle();
  } else {
    uv_idle_stop(idle_.get());
    idle_active_ = false;
  }
}

TimerHandle EventLoop::push_timer_raw(detail::HandleImpl* h, double when) {
  if (std::isnan(when)) {
    detail::release(h);
    detail::release(h);
    throw ValueError("timer deadline is NaN");
  }
  h->is_timer = true;
  h->when = when;
  h->heap = &timers_;
  timers_.push(h);
  // Inside a batch the wake timer is armed once the batch ends.
  if (!dispatching_ && timers_.top() == h) arm_timer();
  return TimerHandle(h);
}

void EventLoop::rearm_timer() noexcept {
  timers_.drop_cancelled_top();
  if (timers_.empty()) {
    if (armed_when_ >= 0) {
      uv_timer_stop(wake_timer_.get());
      armed_when_ = -1;
    }
    return;
  }
  // Any deadline <= 0 is in the past; clamping keeps armed_when_ >= 0 while armed, so a
  // deadline of -1 is not mistaken for "not armed".
  double when = std::max(timers_.top()->when, 0.0);
  if (when == armed_when_) return;
  armed_when_ = when;
  // libuv counts whole milliseconds of uv_now(), which lags the real clock. Arming for the
  // deadline rounded up to the next millisecond guarantees the wake-up never comes before
  // `when` (never early), and costs at most one extra millisecond (never a busy spin).
  // asyncio caps the poll timeout at one day; so do we.
  double now_ms = static_cast<double>(uv_now(uv_));
  double due_ms = std::ceil(when * 1e3);
  double timeout = due_ms - now_ms;
  if (!(timeout > 0)) timeout = 0;
  if (timeout > 86400e3) timeout = 86400e3;
  uv_timer_start(wake_timer_.get(), &EventLoop::on_wake_timer, static_cast<uint64_t>(timeout), 0);
}

Handle EventLoop::push_threadsafe(detail::HandleImpl* h, bool capture) {
  // The calling thread's context, as asyncio's call_soon_threadsafe copies it.
  if (capture && contexts_.load(std::memory_order_relaxed)) [[unlikely]]
    h->context = detail::capture_context();
  if (on_loop_thread() && !closed_) {
    // Same thread: exactly call_soon, keeping FIFO order with plain call_soon calls.
    return push_ready_raw(h);
  }
  h->shared_across_threads = true;
  {
    std::lock_guard lock(incoming_mutex_);
    if (incoming_closed_) {
      detail::release(h);
      detail::release(h);
      throw_closed();
    }
    incoming_.push_back(h);
    has_incoming_.store(true, std::memory_order_release);
    uv_async_send(async_.get());
  }
  return Handle(h);
}

void EventLoop::drain_incoming() {
  if (!has_incoming_.load(std::memory_order_acquire)) return;
  std::vector<detail::HandleImpl*> batch;
  {
    std::lock_guard lock(incoming_mutex_);
    batch.swap(incoming_);
    has_incoming_.store(false, std::memory_order_relaxed);
  }
  for (detail::HandleImpl* h : batch)
    ready_.push(h);
  update_idle();
}

}  // namespace asyncuv
