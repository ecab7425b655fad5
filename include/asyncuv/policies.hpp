// Event loop policies (asyncio events.py): the object behind get_event_loop(),
// set_event_loop() and new_event_loop(). A program changes how loops are made, or what "the
// current loop" means, by installing its own policy, typically a DefaultEventLoopPolicy
// subclass:
//
//   class DebugLoopPolicy : public asyncuv::DefaultEventLoopPolicy {
//    public:
//     std::shared_ptr<asyncuv::EventLoop> new_event_loop() override {
//       auto loop = DefaultEventLoopPolicy::new_event_loop();
//       loop->set_debug(true);
//       return loop;
//     }
//   };
//   asyncuv::set_event_loop_policy(std::make_shared<DebugLoopPolicy>());
//   asyncuv::run(main_coro());       // runs on a loop made by DebugLoopPolicy
#pragma once

#include <cstdint>
#include <memory>

#include "asyncuv/event_loop.hpp"

namespace asyncuv {

/// The interface of an event loop policy (asyncio AbstractEventLoopPolicy). The free functions
/// of <asyncuv/events.hpp> delegate to the installed policy. A policy may be used from several
/// threads at once.
class EventLoopPolicy {
 public:
  EventLoopPolicy() = default;
  EventLoopPolicy(const EventLoopPolicy&) = delete;
  EventLoopPolicy& operator=(const EventLoopPolicy&) = delete;
  virtual ~EventLoopPolicy() = default;

  /// The current loop of the calling context (what asyncuv::get_event_loop() returns when no
  /// loop is running in the thread).
  virtual EventLoop& get_event_loop() = 0;
  /// Makes `loop` the current loop of the calling context (nullptr clears it).
  virtual void set_event_loop(std::shared_ptr<EventLoop> loop) = 0;
  /// A new event loop (what asyncuv::new_event_loop() and asyncuv::run use).
  virtual std::shared_ptr<EventLoop> new_event_loop() = 0;
};

/// The default policy (asyncio DefaultEventLoopPolicy): one current loop per thread and per
/// policy object, set with set_event_loop(); get_event_loop() throws RuntimeError("There is
/// no current event loop in thread '...'.") when none is set (asyncio 3.14: no loop is created
/// implicitly); new_event_loop() makes a plain EventLoop.
class DefaultEventLoopPolicy : public EventLoopPolicy {
 public:
  DefaultEventLoopPolicy();
  /// Releases the calling thread's current loop of this policy (other threads' are released
  /// when those threads exit).
  ~DefaultEventLoopPolicy() override;

  EventLoop& get_event_loop() override;
  void set_event_loop(std::shared_ptr<EventLoop> loop) override;
  std::shared_ptr<EventLoop> new_event_loop() override;

 private:
  std::uint64_t id_;  // keys this policy's per-thread loops
};

/// The installed policy; a DefaultEventLoopPolicy is created on first use (asyncio
/// get_event_loop_policy). Thread-safe.
std::shared_ptr<EventLoopPolicy> get_event_loop_policy();

/// Installs `policy` for the whole program; nullptr goes back to a (new) default policy
/// (asyncio set_event_loop_policy). Thread-safe.
void set_event_loop_policy(std::shared_ptr<EventLoopPolicy> policy);

}  // namespace asyncuv
