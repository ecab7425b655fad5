// Per-thread event loop helpers, like asyncio's module-level functions in events.py.
#pragma once

#include <memory>

#include "asyncuv/event_loop.hpp"

namespace asyncuv {

/// A new event loop from the installed policy (asyncio.new_event_loop); with the default
/// policy, an EventLoop owning a fresh uv_loop_t. See <asyncuv/policies.hpp>.
std::shared_ptr<EventLoop> new_event_loop();

/// The loop running in this thread. Throws RuntimeError("no running event loop") if none.
EventLoop& get_running_loop();

/// The loop running in this thread, or nullptr (asyncio._get_running_loop).
EventLoop* running_loop() noexcept;

/// The running loop if any, else the policy's current loop: with the default policy, the loop
/// set with set_event_loop() for this thread. The default policy throws RuntimeError("There is
/// no current event loop in thread '...'.") when there is neither (asyncio 3.14 behaviour: no
/// loop is created implicitly).
EventLoop& get_event_loop();

/// Makes `loop` the policy's current loop: with the default policy, this thread's (nullptr
/// clears it).
void set_event_loop(std::shared_ptr<EventLoop> loop);

namespace detail {
/// Sets this thread's running loop for the lifetime of the object (internal).
class RunningLoopScope {
 public:
  explicit RunningLoopScope(EventLoop* loop) noexcept;
  ~RunningLoopScope();
  RunningLoopScope(const RunningLoopScope&) = delete;
  RunningLoopScope& operator=(const RunningLoopScope&) = delete;

 private:
  EventLoop* previous_;
};
}  // namespace detail

}  // namespace asyncuv
