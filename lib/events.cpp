// Per-thread loop bookkeeping: the running loop of each thread; the current loop and new loops
// come from the event loop policy (<asyncuv/policies.hpp>).
#include "asyncuv/events.hpp"

#include "asyncuv/policies.hpp"
#include "internal.hpp"

namespace asyncuv {

namespace {
thread_local EventLoop* t_running ASYNCUV_FAST_TLS = nullptr;
}  // namespace

namespace detail {
RunningLoopScope::RunningLoopScope(EventLoop* loop) noexcept : previous_(t_running) {
  t_running = loop;
}
RunningLoopScope::~RunningLoopScope() {
  t_running = previous_;
}
}  // namespace detail

std::shared_ptr<EventLoop> new_event_loop() {
  return get_event_loop_policy()->new_event_loop();
}

EventLoop* running_loop() noexcept {
  return t_running;
}

EventLoop& get_running_loop() {
  if (t_running == nullptr) throw RuntimeError("no running event loop");
  return *t_running;
}

EventLoop& get_event_loop() {
  if (t_running != nullptr) return *t_running;
  return get_event_loop_policy()->get_event_loop();
}

void set_event_loop(std::shared_ptr<EventLoop> loop) {
  get_event_loop_policy()->set_event_loop(std::move(loop));
}

}  // namespace asyncuv
