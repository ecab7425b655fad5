// Crossing threads: run a coroutine on a loop from another thread and get a std::future back
// (asyncio.run_coroutine_threadsafe), or turn a std::future into a loop Future
// (asyncio.wrap_future).
#pragma once

#include <future>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

#include "asyncuv/futures.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

namespace detail {
/// Completes `promise` from a finished task or future (`get` returns its result or throws).
template <class T, class Get>
void settle(std::promise<T>& promise, Get&& get) {
  try {
    if constexpr (std::is_void_v<T>) {
      get();
      promise.set_value();
    } else {
      promise.set_value(get());
    }
  } catch (...) {
    promise.set_exception(std::current_exception());
  }
}
}  // namespace detail

/// Schedules `coro` as a task on `loop` from any thread (through call_soon_threadsafe) and
/// returns a std::future for its result. If the loop is closed before the task starts, the
/// std::future reports std::future_errc::broken_promise; a closed loop at the time of the call
/// throws RuntimeError("Event loop is closed").
template <class T>
std::future<T> run_coroutine_threadsafe(Task<T> coro, EventLoop& loop) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> result = promise->get_future();
  loop.call_soon_threadsafe([coro = std::move(coro), promise, &loop]() mutable {
    try {
      Task<T> task = loop.create_task(std::move(coro));
      task.add_done_callback(
          [promise](Task<T> done) { detail::settle(*promise, [&] { return done.result(); }); });
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  return result;
}

/// A Future of `loop` that completes with `future`'s result (or exception) once it is ready.
/// Waiting for `future` happens on a helper thread; if `loop` is closed or destroyed by then the
/// result is dropped. Call it on the loop's thread.
template <class T>
Future<T> wrap_future(std::future<T> future, EventLoop& loop) {
  Future<T> wrapped = loop.template create_future<T>();
  std::shared_ptr<detail::LoopAnchor> anchor = loop.anchor();
  // The waiter holds only the anchor: it never touches a destroyed loop.
  std::thread([future = std::move(future), anchor, wrapped]() mutable {
    future.wait();
    std::lock_guard lock(anchor->mutex);
    if (anchor->loop == nullptr) return;
    try {
      anchor->loop->call_soon_threadsafe(
          [future = std::move(future), wrapped = std::move(wrapped)]() mutable {
            if (wrapped.done()) return;  // cancelled meanwhile
            try {
              if constexpr (std::is_void_v<T>) {
                future.get();
                wrapped.set_result();
              } else {
                wrapped.set_result(future.get());
              }
            } catch (...) {
              wrapped.set_exception(std::current_exception());
            }
          });
    } catch (const RuntimeError&) {
      // The loop was closed: nobody can observe the result any more.
    }
  }).detach();
  return wrapped;
}

}  // namespace asyncuv
