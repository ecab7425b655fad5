// asyncio.Runner (3.11): runs several top-level coroutines on one event loop, then cleans up the
// way asyncuv::run() does. The loop is made on first use (run() or get_loop()): by
// `loop_factory` if given, else new_event_loop() from the policy, which then also becomes the
// thread's current loop (set_event_loop) until close().
//
//   asyncuv::Runner runner;
//   runner.run(connect());          // the same loop for both calls: state carries over
//   int n = runner.run(count());
//   runner.close();                 // or let the destructor do it
//
// close() cancels the tasks left, closes the asynchronous generators still open
// (shutdown_asyncgens), shuts the default executor down and closes the loop; afterwards run()
// and get_loop() raise RuntimeError("Runner is closed"). close() twice does nothing more; close()
// before any use does nothing at all (the runner stays usable, as asyncio's). asyncio's SIGINT
// handling (KeyboardInterrupt cancelling the main task) has no C++ counterpart: install
// add_signal_handler(SIGINT, ...) yourself.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

class Runner {
 public:
  using LoopFactory = std::function<std::shared_ptr<EventLoop>()>;

  /// `debug`: the loop's debug mode (unset: left as the loop has it). `loop_factory`: makes the
  /// loop instead of new_event_loop(); such a loop is not made the thread's current loop.
  explicit Runner(std::optional<bool> debug = std::nullopt, LoopFactory loop_factory = {});
  /// close().
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// Runs `coro` as a task on the runner's loop until it is done and returns its result (or
  /// rethrows its exception). RuntimeError("Runner.run() cannot be called from a running event
  /// loop") inside a running loop; RuntimeError("Runner is closed") after close().
  template <class T>
  T run(Task<T> coro) {
    if (running_loop() != nullptr) {
      throw RuntimeError("Runner.run() cannot be called from a running event loop");
    }
    EventLoop& loop = lazy_init();
    return loop.run_until_complete(std::move(coro));
  }

  /// Cleans up and closes the loop (see above). Idempotent.
  void close();

  /// The runner's loop, made now if needed. RuntimeError("Runner is closed") after close().
  EventLoop& get_loop() { return lazy_init(); }

 private:
  enum class State { created, initialized, closed };
  EventLoop& lazy_init();

  State state_ = State::created;
  std::optional<bool> debug_;
  LoopFactory loop_factory_;
  std::shared_ptr<EventLoop> loop_;
  bool set_event_loop_ = false;
};

}  // namespace asyncuv
