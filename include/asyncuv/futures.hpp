// asyncio.Future: a result that will be available later, with done-callbacks that always run
// through the loop's call_soon.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"

namespace asyncuv {

template <class T = void>
class Future;

namespace detail {

/// The type-independent part of a future's shared state.
class FutureCore : public std::enable_shared_from_this<FutureCore> {
 public:
  enum class State : std::uint8_t { pending, cancelled, finished };
  using Callback = std::function<void(const std::shared_ptr<FutureCore>&)>;

  explicit FutureCore(EventLoop& loop);
  /// A future not yet attached to a loop (tasks are attached when scheduled).
  FutureCore() = default;
  FutureCore(const FutureCore&) = delete;
  FutureCore& operator=(const FutureCore&) = delete;
  /// Reports an exception nobody retrieved to the loop's exception handler.
  virtual ~FutureCore();

  /// The loop this future belongs to (throws RuntimeError if that loop was destroyed).
  EventLoop& loop() const;
  /// The loop, or nullptr if it was destroyed (or none is attached yet).
  EventLoop* loop_if_alive() const noexcept { return anchor_ ? anchor_->loop : nullptr; }
  /// True once attached to a loop.
  bool has_loop() const noexcept { return anchor_ != nullptr; }

  State state() const noexcept { return state_; }
  bool done() const noexcept { return state_ != State::pending; }
  bool cancelled() const noexcept { return state_ == State::cancelled; }

  /// Cancels a pending future and schedules its callbacks; false if it was already done.
  virtual bool cancel(std::string message);

  /// Finishes the future with `e` (InvalidStateError if it is already done).
  void set_exception(std::exception_ptr e);

  /// The exception (null if the future finished with a result). Throws InvalidStateError while
  /// pending and CancelledError if cancelled. Marks the exception as retrieved.
  std::exception_ptr exception();

  /// Throws what result() must throw when the future is not finished with a value: pending
  /// gives InvalidStateError, cancelled gives CancelledError(message), an exception is rethrown
  /// (and counts as retrieved).
  void check_result();

  /// The message given to cancel().
  const std::string& cancel_message() const noexcept { return cancel_message_; }

  /// Adds a done-callback (run through call_soon, in registration order; at once scheduled if
  /// the future is already done). Returns an id for remove_callback.
  /// `tag` identifies a plain-function callback so that remove_callbacks_tagged can find it.
  /// Each callback runs in a copy of the context current when it was added (asyncio).
  std::uint64_t add_callback(Callback cb, void (*tag)() = nullptr);
  /// add_callback running `cb` in `context` (null: a fresh empty one) instead of a copy of the
  /// current context: what a task passes for its own wake-up (asyncio's context=).
  std::uint64_t add_callback_in_context(Callback cb, ContextImpl* context);
  /// Removes the callback registered under `id`; returns how many were removed (0 or 1).
  std::size_t remove_callback(std::uint64_t id);
  /// Removes every callback registered with `tag`; returns how many were removed.
  std::size_t remove_callbacks_tagged(void (*tag)());

  /// "<Future pending>", "<Future finished result=...>", "<Future cancelled>".
  virtual std::string repr() const;

  /// asyncio.future_add_to_awaited_by / future_discard_from_awaited_by: records (or forgets)
  /// that `waiter` waits for this future without awaiting it directly, as gather's outer
  /// future and a TaskGroup's parent task do. Only the call graph reads it (weakly held).
  void add_awaited_by(const std::shared_ptr<FutureCore>& waiter);
  void discard_awaited_by(const FutureCore* waiter) noexcept;
  /// The recorded waiters still alive.
  std::vector<std::shared_ptr<FutureCore>> awaited_by() const;

 protected:
  /// Moves a pending future to finished and schedules its callbacks.
  void finish();
  /// Attaches the future to `loop`.
  void attach(EventLoop& loop) { anchor_ = loop.anchor(); }
  void throw_if_done() const;
  /// The result's text for repr (overridden by the typed future).
  virtual std::string result_repr() const { return ""; }
  /// "Future", or "Task" for tasks: names the object in repr() and in the
  /// "... exception was never retrieved" report.
  const char* kind_ = "Future";
  /// Tasks only: the context every step runs in (one reference; null: a fresh empty one not
  /// materialized yet). Here rather than in the task so that the "exception was never
  /// retrieved" report, made by this destructor, can run the handler in it (asyncio 3.12).
  ContextImpl* context_ = nullptr;

 private:
  void schedule_callbacks();

  std::shared_ptr<LoopAnchor> anchor_;
  State state_ = State::pending;
  bool exception_retrieved_ = false;
  std::exception_ptr exception_;
  std::string cancel_message_;
  std::uint64_t next_callback_id_ = 1;
  struct Entry {
    std::uint64_t id;
    void (*tag)();
    Callback fn;
    ContextRef context;  // null: a fresh empty context
  };
  std::uint64_t add_entry(Callback cb, void (*tag)(), ContextRef context);
  std::vector<Entry> callbacks_;
  // Null until a first waiter is recorded (asyncio's _asyncio_awaited_by = None).
  std::unique_ptr<std::vector<std::weak_ptr<FutureCore>>> awaited_by_;
};

/// The typed part: the value. `Base` is FutureCore, or the task state for tasks.
template <class T, class Base = FutureCore>
class FutureValue : public Base {
 public:
  using Base::Base;
  using value_type = T;

  void set_result(T value) {
    this->throw_if_done();
    value_.emplace(std::move(value));
    this->finish();
  }
  const T& result() {
    this->check_result();
    return *value_;
  }
  /// Moves the result out (for a coroutine awaited by exactly one other).
  T take_result() {
    this->check_result();
    return std::move(*value_);
  }

 protected:
  std::string result_repr() const override {
    return value_ ? describe_value(*value_) : std::string();
  }

 private:
  std::optional<T> value_;
};

template <class Base>
class FutureValue<void, Base> : public Base {
 public:
  using Base::Base;
  using value_type = void;

  void set_result() {
    this->throw_if_done();
    this->finish();
  }
  void result() { this->check_result(); }
  void take_result() { this->check_result(); }
};

/// True when a result of type T can be copied. std::vector<T> claims to be copyable whatever
/// T is, so its element type decides.
template <class T>
struct copyable_result : std::is_copy_constructible<T> {};
template <class T, class A>
struct copyable_result<std::vector<T, A>> : copyable_result<T> {};
template <class T>
inline constexpr bool copyable_result_v = std::is_void_v<T> || copyable_result<T>::value;

/// The result of a finished future for a consumer that passes it on (an awaiter, gather,
/// shield, wait_for, run_until_complete): a copy when T is copyable, as others may still read
/// it; moved out when T is move-only (Socket, std::unique_ptr), which can be consumed once.
template <class State>
auto pass_on_result(State& s) -> typename State::value_type {
  using T = typename State::value_type;
  if constexpr (std::is_void_v<T>) {
    s.result();
  } else if constexpr (copyable_result_v<T>) {
    return s.result();
  } else {
    return s.take_result();
  }
}

}  // namespace detail

/// asyncio.Future. A cheap handle: copies share one state. Created with loop.create_future<T>().
/// Not thread-safe: use it from its loop's thread (see run_coroutine_threadsafe for threads).
template <class T>
class Future {
 public:
  using value_type = T;
  using State = detail::FutureValue<T>;

  /// An empty future handle (refers to nothing); use loop.create_future<T>().
  Future() = default;
  explicit Future(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

  /// The result: a const reference for non-void T. Throws InvalidStateError("Result is not
  /// set.") while pending, CancelledError if cancelled, or the future's exception.
  decltype(auto) result() const { return state_->result(); }

  /// Finishes the future with `value` and schedules its callbacks. InvalidStateError if done.
  template <class U = T>
  requires(!std::is_void_v<U>) void set_result(U value) const {
    state_->set_result(std::move(value));
  }
  /// Finishes a Future<void>.
  template <class U = T>
  requires std::is_void_v<U>
  void set_result() const { state_->set_result(); }

  /// Finishes the future with an exception. InvalidStateError if done.
  void set_exception(std::exception_ptr e) const { state_->set_exception(std::move(e)); }
  template <class E>
  requires std::is_base_of_v<std::exception, std::decay_t<E>>
  void set_exception(E&& e) const {
    state_->set_exception(std::make_exception_ptr(std::forward<E>(e)));
  }

  /// The exception, or null if the future finished with a result. InvalidStateError while
  /// pending; CancelledError if cancelled.
  std::exception_ptr exception() const { return state_->exception(); }

  /// Cancels the future (scheduling its callbacks): true if it was pending, else false.
  bool cancel(std::string message = {}) const { return state_->cancel(std::move(message)); }
  bool cancelled() const noexcept { return state_->cancelled(); }
  bool done() const noexcept { return state_->done(); }

  /// Adds `fn(future)` to run through call_soon once the future is done (at once scheduled if
  /// it is done already). Callbacks run in registration order. Returns an id for
  /// remove_done_callback(id).
  template <class F>
  requires std::invocable<F&, Future<T>> std::uint64_t add_done_callback(F fn)
  const {
    return state_->add_callback(
        [fn = std::move(fn)](const std::shared_ptr<detail::FutureCore>& core) mutable {
          fn(Future<T>(std::static_pointer_cast<State>(core)));
        });
  }
  /// add_done_callback(fn, context=context): fn(future) runs inside `context` itself rather
  /// than in a copy of the current context.
  template <class F>
  requires std::invocable<F&, Future<T>> std::uint64_t add_done_callback(F fn,
                                                                         const Context& context)
  const {
    return state_->add_callback_in_context(
        [fn = std::move(fn)](const std::shared_ptr<detail::FutureCore>& core) mutable {
          fn(Future<T>(std::static_pointer_cast<State>(core)));
        },
        context.impl());
  }
  /// Adds a plain function; remove_done_callback(fn) removes every registration of it.
  std::uint64_t add_done_callback(void (*fn)(Future<T>)) const {
    return state_->add_callback(
        [fn](const std::shared_ptr<detail::FutureCore>& core) {
          fn(Future<T>(std::static_pointer_cast<State>(core)));
        },
        reinterpret_cast<void (*)()>(fn));
  }

  /// Removes the callback registered under `id`; returns how many were removed.
  std::size_t remove_done_callback(std::uint64_t id) const { return state_->remove_callback(id); }
  /// Removes every registration of plain function `fn`; returns how many were removed.
  std::size_t remove_done_callback(void (*fn)(Future<T>)) const {
    return state_->remove_callbacks_tagged(reinterpret_cast<void (*)()>(fn));
  }

  /// The loop the future belongs to.
  EventLoop& get_loop() const { return state_->loop(); }

  /// asyncio-style text: "<Future pending>", "<Future finished result=42>".
  std::string repr() const { return state_->repr(); }

  explicit operator bool() const noexcept { return state_ != nullptr; }
  friend bool operator==(const Future& a, const Future& b) noexcept { return a.state_ == b.state_; }

  /// The shared state (internal, for awaiters and helpers).
  const std::shared_ptr<State>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<State> state_;
};

template <class T>
Future<T> EventLoop::create_future() {
  return Future<T>(std::make_shared<detail::FutureValue<T>>(*this));
}

}  // namespace asyncuv
