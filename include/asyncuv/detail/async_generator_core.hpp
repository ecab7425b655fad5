// The machinery behind AsyncGenerator<T> (internal): the shared state that owns a generator's
// coroutine frame, the owner object whose destruction is asyncio's finalizer hook, the promise,
// and the awaiters that hand control between a consumer and the generator frame.
//
// A generator frame never runs on its own: each resumption (next(), athrow(), aclose()) is an
// awaiter in a consumer coroutine that symmetric-transfers into the frame; co_yield and the end
// of the body transfer back. Everything in between (the generator's own co_awaits) runs in the
// consumer's task, so the task's step machinery resumes the generator frame after an await and
// a cancellation of that task surfaces at the generator's co_await.
#pragma once

#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include "asyncuv/source_location.hpp"

#include "asyncuv/detail/handle_pool.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"

namespace asyncuv {

template <class T>
class AsyncGenerator;

namespace detail {

class AsyncGenOwner;

/// The type-independent state of one asynchronous generator: it owns the coroutine frame
/// (destroyed with it, which runs the destructors of the locals alive at that point).
class AsyncGenCore {
 public:
  enum class Status : std::uint8_t {
    created,    // not started: the frame waits at its initial suspension point
    suspended,  // waits at a co_yield
    done,       // finished or closed: the frame is gone
  };

  AsyncGenCore() = default;
  AsyncGenCore(const AsyncGenCore&) = delete;
  AsyncGenCore& operator=(const AsyncGenCore&) = delete;
  /// Destroys the frame if it still exists.
  virtual ~AsyncGenCore();

  Status status() const noexcept { return status_; }
  bool done() const noexcept { return status_ == Status::done; }
  /// True while a next()/athrow()/aclose() is in progress (Python's ag_running).
  bool running() const noexcept { return running_; }

  /// "<async_generator object ns::ticks at 0x...>".
  std::string repr() const;

  /// Starts a resumption requested by `op` ("anext()", "athrow()", "aclose()"): throws
  /// RuntimeError("<op>: asynchronous generator is already running") while another one is in
  /// progress. The first call on a running loop registers the generator with that loop
  /// (asyncio's firstiter hook; `owner` is what the loop tracks).
  void begin(const char* op, const std::shared_ptr<AsyncGenOwner>* owner);

  /// Resumes the frame on behalf of `consumer`, which the frame transfers back to at its next
  /// co_yield or at its end. `thrown` (if any) is thrown at the co_yield it waits at.
  std::coroutine_handle<> resume_for(std::coroutine_handle<> consumer,
                                     std::exception_ptr thrown = nullptr) noexcept {
    consumer_ = consumer;
    throw_in_ = std::move(thrown);
    running_ = true;
    return frame_;
  }

  /// After a resumption: true if the generator stopped at a co_yield (its value is stored);
  /// false if it finished, in which case the frame is destroyed and what the body threw is
  /// rethrown.
  bool end_resumption();

  /// Closes a generator that never started or is done: the frame is destroyed without running
  /// (only the coroutine's parameters are destroyed). Nothing happens when it is done already.
  void close_unstarted() noexcept;

  /// Drops the value of the last co_yield (after an ignored GeneratorExit).
  virtual void discard_value() noexcept = 0;

  // ---- used by the promise ----
  void set_frame(std::coroutine_handle<> frame) noexcept { frame_ = frame; }
  void set_function(const char* name) noexcept { function_ = name; }
  /// At a co_yield: the generator waits again; control goes back to the consumer.
  std::coroutine_handle<> on_yield() noexcept {
    status_ = Status::suspended;
    running_ = false;
    yielded_ = true;
    return take_consumer();
  }
  /// At the end of the body: control goes back to the consumer.
  std::coroutine_handle<> on_final() noexcept {
    running_ = false;
    yielded_ = false;
    return take_consumer();
  }
  /// Called when the generator resumes at a co_yield: throws what athrow()/aclose() sent.
  void rethrow_thrown_in() {
    if (throw_in_) std::rethrow_exception(std::exchange(throw_in_, nullptr));
  }
  void set_error(std::exception_ptr e) noexcept { error_ = std::move(e); }

  // ---- used by the loop's finalizer hook ----
  /// Asyncio's finalizer hook, run when the last owner of the generator goes away: a
  /// generator waiting at a co_yield, first iterated on a loop that is not closed, gets its
  /// aclose() scheduled there as a task. Otherwise the frame is destroyed with `self`.
  static void finalize(std::shared_ptr<AsyncGenCore> self) noexcept;

 private:
  std::coroutine_handle<> take_consumer() noexcept {
    std::coroutine_handle<> c = std::exchange(consumer_, nullptr);
    return c ? c : std::noop_coroutine();
  }
  void destroy_frame() noexcept;
  void mark_done() noexcept;

  std::coroutine_handle<> frame_;
  std::coroutine_handle<> consumer_;
  std::exception_ptr error_;            // what the body ended with
  std::exception_ptr throw_in_;         // thrown at the co_yield on the next resumption
  std::shared_ptr<LoopAnchor> anchor_;  // the loop that first iterated the generator
  const char* function_ = nullptr;      // the coroutine's signature, for repr()
  Status status_ = Status::created;
  bool running_ = false;
  bool hooks_done_ = false;  // the firstiter hook ran
  bool yielded_ = false;     // the last resumption ended at a co_yield
};

/// The typed state: the value of the last co_yield.
template <class T>
class AsyncGenState final : public AsyncGenCore {
 public:
  template <class U>
  void store(U&& value) {
    value_.emplace(std::forward<U>(value));
  }
  std::optional<T> take_value() {
    std::optional<T> out = std::move(value_);
    value_.reset();
    return out;
  }
  void discard_value() noexcept override { value_.reset(); }

 private:
  std::optional<T> value_;
};

/// What AsyncGenerator handles share. Its destruction is the "generator is garbage collected"
/// moment: it runs AsyncGenCore::finalize.
class AsyncGenOwner {
 public:
  explicit AsyncGenOwner(std::shared_ptr<AsyncGenCore> core) noexcept : core_(std::move(core)) {}
  AsyncGenOwner(const AsyncGenOwner&) = delete;
  AsyncGenOwner& operator=(const AsyncGenOwner&) = delete;
  ~AsyncGenOwner() { AsyncGenCore::finalize(std::move(core_)); }

  AsyncGenCore& core() const noexcept { return *core_; }
  const std::shared_ptr<AsyncGenCore>& core_ptr() const noexcept { return core_; }

 private:
  std::shared_ptr<AsyncGenCore> core_;
};

/// aclose() of the generator `owner` holds (Task<void>; see AsyncGenerator::aclose).
Task<void> aclose_generator(std::shared_ptr<AsyncGenOwner> owner);
/// The body of aclose(), for the generator `core` (also what the finalizer hook schedules).
Task<void> aclose_core(std::shared_ptr<AsyncGenCore> core);

/// The function name part of a __PRETTY_FUNCTION__-style signature: "ns::ticks" for
/// "asyncuv::AsyncGenerator<int> ns::ticks(int)".
std::string function_name_of(const char* signature);

/// Awaiter at a co_yield: stores the value, transfers back to the consumer, and on resumption
/// throws what athrow()/aclose() sent.
struct GenYieldAwaiter {
  AsyncGenCore* core;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
    return core->on_yield();
  }
  void await_resume() const { core->rethrow_thrown_in(); }
};

/// Awaiter at the end of the body: transfers back to the consumer.
struct GenFinalAwaiter {
  AsyncGenCore* core;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
    return core->on_final();
  }
  void await_resume() const noexcept {}
};

template <class T>
struct AsyncGenPromise {
  AsyncGenState<T>* state = nullptr;
  const char* function;

  // The default argument is evaluated where the compiler builds the promise: inside the
  // generator function, whose name repr() shows.
  explicit AsyncGenPromise(
      asyncuv::source_location where = asyncuv::source_location::current()) noexcept
      : function(where.function_name()) {}

  // Generator frames come from the handle pool, as task frames do.
  static void* operator new(std::size_t size) { return allocate_sized(size); }
  static void operator delete(void* frame, std::size_t size) noexcept { free_sized(frame, size); }

  AsyncGenerator<T> get_return_object();
  std::suspend_always initial_suspend() const noexcept { return {}; }
  GenFinalAwaiter final_suspend() const noexcept { return {state}; }
  void unhandled_exception() const noexcept { state->set_error(std::current_exception()); }
  void return_void() const noexcept {}

  template <class U>
  requires std::convertible_to<U&&, T> GenYieldAwaiter yield_value(U&& value) {
    state->store(std::forward<U>(value));
    return {state};
  }
};

/// co_await gen.next() / gen.athrow(e): the next value, or nullopt when the generator is done.
template <class T>
class NextAwaiter {
 public:
  NextAwaiter(std::shared_ptr<AsyncGenOwner> owner, std::exception_ptr thrown) noexcept
      : owner_(std::move(owner)), thrown_(std::move(thrown)) {}

  bool await_ready() {
    AsyncGenCore& core = owner_->core();
    core.begin(thrown_ ? "athrow()" : "anext()", &owner_);
    if (core.done()) return true;  // StopAsyncIteration: nullopt
    if (thrown_ && core.status() == AsyncGenCore::Status::created) {
      // Thrown before the body started: the body never runs and the generator is closed.
      core.close_unstarted();
      std::rethrow_exception(thrown_);
    }
    return false;
  }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> consumer) noexcept {
    resumed_ = true;
    return owner_->core().resume_for(consumer, std::move(thrown_));
  }
  std::optional<T> await_resume() {
    if (!resumed_) return std::nullopt;
    auto& state = static_cast<AsyncGenState<T>&>(owner_->core());
    if (state.end_resumption()) return state.take_value();
    return std::nullopt;
  }

 private:
  std::shared_ptr<AsyncGenOwner> owner_;
  std::exception_ptr thrown_;
  bool resumed_ = false;
};

}  // namespace detail
}  // namespace asyncuv
