// Per-thread loop bookkeeping: the running loop and the current loop of each thread.
#include "asyncuv/events.hpp"

#include <sstream>
#include <thread>

#include "internal.hpp"

namespace asyncuv {

namespace {
thread_local EventLoop* t_running ASYNCUV_FAST_TLS = nullptr;
thread_local std::shared_ptr<EventLoop> t_current;
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
  return std::make_shared<EventLoop>();
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
  if (t_current) return *t_current;
  std::ostringstream id;
  id << std::this_thread::get_id();
  throw RuntimeError("There is no current event loop in thread '" + id.str() + "'.");
}

void set_event_loop(std::shared_ptr<EventLoop> loop) {
  t_current = std::move(loop);
}

}  // namespace asyncuv
