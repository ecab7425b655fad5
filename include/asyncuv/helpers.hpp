// asyncio's task-combination helpers (tasks.py): gather, wait_for, wait, shield.
//
// Awaitables are Task<T> and Future<T>. A Task that is still an unscheduled coroutine is
// scheduled with loop.create_task() by gather and shield (asyncio's ensure_future); wait_for
// awaits it inline, as asyncio 3.12's wait_for does; wait refuses it (TypeError).
//
//   auto [a, b] = co_await asyncuv::gather(fetch(1), fut);         // std::tuple<int, std::string>
//   std::vector<int> all = co_await asyncuv::gather(std::move(tasks));   // std::vector<Task<int>>
//   auto [x, y] = co_await asyncuv::gather(asyncuv::return_exceptions, t1, t2);
//   //   x, y: asyncuv::Outcome<T> = std::variant<T, std::exception_ptr>
//   int v = co_await asyncuv::wait_for(fetch(1), 0.5);              // or TimeoutError
//   auto [done, pending] = co_await asyncuv::wait(tasks, 1.0, asyncuv::FIRST_COMPLETED);
//   int w = co_await asyncuv::shield(task);
//
// Results are copied out of the children; move-only results (Socket, std::unique_ptr) are
// moved out, so such a child's result can be taken once. Void gives std::monostate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/timeouts.hpp"

namespace asyncuv {

/// The value an awaitable of T yields in gather's results: T, or std::monostate for void.
template <class T>
using result_of_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// One result of gather(return_exceptions, ...): index 0 holds the value, index 1 the
/// exception the child raised (a CancelledError(message) for a cancelled child).
template <class T>
using Outcome = std::variant<result_of_t<T>, std::exception_ptr>;

/// Tag selecting asyncio's gather(..., return_exceptions=True).
struct ReturnExceptions {
  explicit ReturnExceptions() = default;
};
inline constexpr ReturnExceptions return_exceptions{};

/// asyncio.wait's return_when.
enum class ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::FIRST_COMPLETED;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::FIRST_EXCEPTION;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::ALL_COMPLETED;

/// What wait() returns: asyncio's (done, pending) sets, as vectors in input order
/// (duplicates removed). `auto [done, pending] = co_await wait(...)`.
template <class F>
struct WaitResult {
  std::vector<F> done;
  std::vector<F> pending;
};

namespace detail {

template <class A>
struct awaitable_traits {};
template <class T>
struct awaitable_traits<Task<T>> {
  using value_type = T;
};
template <class T>
struct awaitable_traits<Future<T>> {
  using value_type = T;
};

/// Task<T> or Future<T>.
template <class A>
concept TaskOrFuture = requires {
  typename awaitable_traits<std::remove_cvref_t<A>>::value_type;
};

template <class A>
using awaited_t = typename awaitable_traits<std::remove_cvref_t<A>>::value_type;

/// Task<T>, Future<T> or AnyTask: what wait() accepts.
template <class A>
concept Waitable = TaskOrFuture<A> || std::same_as<std::remove_cvref_t<A>, AnyTask>;

template <class A>
bool is_unscheduled_coroutine(const A& a) {
  if constexpr (requires { a.state()->started(); }) {
    return !a.state()->started() && !a.state()->done();
  } else {
    return false;
  }
}

/// The loop of the first future or scheduled task among `aws`, else get_event_loop().
template <class... As>
EventLoop& pick_loop(const As&... aws) {
  EventLoop* loop = nullptr;
  if constexpr (sizeof...(As) > 0) {
    auto consider = [&loop](const auto& a) {
      if (loop == nullptr && a && a.state()->has_loop()) loop = &a.state()->loop();
    };
    (consider(aws), ...);
  }
  return loop != nullptr ? *loop : get_event_loop();
}

/// asyncio.ensure_future: schedules an unscheduled coroutine on `loop`.
template <class A>
A ensure_future(EventLoop& loop, A a) {
  if (!a) throw TypeError("An asyncio.Future, a coroutine or an awaitable is required");
  if constexpr (requires { a.state()->started(); }) {
    if (is_unscheduled_coroutine(a)) return loop.create_task(std::move(a));
  }
  return a;
}

/// The value of a finished child (copied, or moved out when move-only), void mapped to
/// std::monostate.
template <class T, class State>
result_of_t<T> value_of(State& s) {
  if constexpr (std::is_void_v<T>) {
    s.result();
    return {};
  } else {
    return pass_on_result(s);
  }
}

/// The result of a finished child (copied, or moved out when move-only; void: nothing).
template <class T, class State>
T copy_result(State& s) {
  return pass_on_result(s);
}

/// One gather(return_exceptions) item from a finished child.
template <class T, class State>
Outcome<T> outcome_of(State& s) {
  if (s.cancelled()) return std::make_exception_ptr(CancelledError(s.cancel_message()));
  if (std::exception_ptr e = s.exception()) return e;
  return Outcome<T>(std::in_place_index<0>, value_of<T>(s));
}

template <class A, bool ReturnExc>
using gather_item_t =
    std::conditional_t<ReturnExc, Outcome<awaited_t<A>>, result_of_t<awaited_t<A>>>;

template <bool ReturnExc, class A>
gather_item_t<A, ReturnExc> gather_item(const A& child) {
  if constexpr (ReturnExc) {
    return outcome_of<awaited_t<A>>(*child.state());
  } else {
    return value_of<awaited_t<A>>(*child.state());
  }
}

/// The type-independent part of asyncio's _GatheringFuture.
class GatherCore {
 public:
  virtual ~GatherCore() = default;

 protected:
  /// cancel(): cancels every child; true if one of them could be.
  bool cancel_children(const std::string& message);
  /// Registers the done-callbacks (children already done are handled at once).
  void start(FutureCore& self);
  /// asyncio gather's _done_callback.
  void child_done(FutureCore& self, FutureCore& child);
  /// Builds and sets the result once every child is done.
  virtual void set_collected_result() = 0;

  std::vector<std::shared_ptr<FutureCore>> children_;
  std::size_t finished_ = 0;
  bool return_exceptions_ = false;
  bool cancel_requested_ = false;
};

/// asyncio's _GatheringFuture: cancelling it cancels the children.
template <class R>
class GatherState final : public FutureValue<R>, public GatherCore {
 public:
  GatherState(EventLoop& loop, bool return_exceptions, std::function<R()> collect)
      : FutureValue<R>(loop), collect_(std::move(collect)) {
    return_exceptions_ = return_exceptions;
  }

  bool cancel(std::string message) override {
    if (this->done()) return false;
    return cancel_children(message);
  }

  void add_child(std::shared_ptr<FutureCore> child) { children_.push_back(std::move(child)); }
  void start() { GatherCore::start(*this); }

 private:
  void set_collected_result() override { this->set_result(collect_()); }

  std::function<R()> collect_;
};

template <bool ReturnExc, class... As>
auto gather_tuple(As... aws) {
  using R = std::tuple<gather_item_t<As, ReturnExc>...>;
  EventLoop& loop = pick_loop(aws...);
  // Braced initialisation: the coroutines are scheduled in argument order.
  auto children = std::tuple<As...>{ensure_future(loop, std::move(aws))...};
  auto state = std::make_shared<GatherState<R>>(loop, ReturnExc, [children]() -> R {
    return std::apply([](const auto&... c) { return R(gather_item<ReturnExc>(c)...); }, children);
  });
  std::apply([&state](const auto&... c) { (state->add_child(c.state()), ...); }, children);
  state->start();
  return Future<R>(std::move(state));
}

template <bool ReturnExc, class A>
auto gather_vector(std::vector<A> aws) {
  using R = std::vector<gather_item_t<A, ReturnExc>>;
  EventLoop* loop = nullptr;
  for (const A& a : aws) {
    if (a && a.state()->has_loop()) {
      loop = &a.state()->loop();
      break;
    }
  }
  if (loop == nullptr) loop = &get_event_loop();
  std::vector<A> children;
  children.reserve(aws.size());
  for (A& a : aws)
    children.push_back(ensure_future(*loop, std::move(a)));
  auto state = std::make_shared<GatherState<R>>(*loop, ReturnExc, [children]() -> R {
    R out;
    out.reserve(children.size());
    for (const A& c : children)
      out.push_back(gather_item<ReturnExc>(c));
    return out;
  });
  for (const A& c : children)
    state->add_child(c.state());
  state->start();
  return Future<R>(std::move(state));
}

/// Cancels `fut` and waits until it is done (asyncio's _cancel_and_wait).
Task<void> cancel_and_wait(std::shared_ptr<FutureCore> fut);

/// Copies a finished `from` into the pending `to` (result, exception or cancellation).
template <class T, class From>
void copy_outcome(From& from, FutureValue<T>& to) {
  if (from.cancelled()) {
    to.cancel("");
  } else if (std::exception_ptr e = from.exception()) {
    to.set_exception(std::move(e));
  } else if constexpr (std::is_void_v<T>) {
    to.set_result();
  } else {
    to.set_result(pass_on_result(from));
  }
}

}  // namespace detail

// ---- gather --------------------------------------------------------------------------------

/// asyncio.gather(*aws): a Future of the results in argument order (std::tuple; void results
/// are std::monostate). The first exception of a child (a cancelled child: CancelledError) is
/// set on the returned future at once; the other children keep running. Cancelling the
/// returned future (or the task awaiting it) cancels every child not done yet; the future then
/// finishes with CancelledError. Unscheduled coroutines become tasks, in argument order.
template <class... As>
requires(detail::TaskOrFuture<As>&&...)
    Future<std::tuple<detail::gather_item_t<As, false>...>> gather(As... aws) {
  return detail::gather_tuple<false>(std::move(aws)...);
}

/// asyncio.gather(*aws, return_exceptions=True): every child is waited for; each result is an
/// Outcome<T> (the value, or the exception / CancelledError(message) it ended with). If the
/// gather itself was cancelled, it finishes with CancelledError once the children are done.
template <class... As>
requires(detail::TaskOrFuture<As>&&...)
    Future<std::tuple<detail::gather_item_t<As, true>...>> gather(ReturnExceptions, As... aws) {
  return detail::gather_tuple<true>(std::move(aws)...);
}

/// gather over a vector of Task<T> or Future<T>: a Future<std::vector<T>> (an empty vector
/// gives an already finished future on get_event_loop()).
template <detail::TaskOrFuture A>
Future<std::vector<detail::gather_item_t<A, false>>> gather(std::vector<A> aws) {
  return detail::gather_vector<false>(std::move(aws));
}

/// gather(return_exceptions) over a vector: a Future<std::vector<Outcome<T>>>.
template <detail::TaskOrFuture A>
Future<std::vector<detail::gather_item_t<A, true>>> gather(ReturnExceptions, std::vector<A> aws) {
  return detail::gather_vector<true>(std::move(aws));
}

// ---- shield --------------------------------------------------------------------------------

/// asyncio.shield(aw): a new Future<T> that follows `aw` (scheduled first if it is an
/// unscheduled coroutine). Cancelling the returned future, or the task awaiting it, does not
/// cancel `aw`; if `aw` itself is cancelled, so is the returned future. An `aw` already done
/// gives a future already finished the same way.
template <detail::TaskOrFuture A>
Future<detail::awaited_t<A>> shield(A aw) {
  using T = detail::awaited_t<A>;
  using InnerState = typename A::State;
  EventLoop& loop = detail::pick_loop(aw);
  aw = detail::ensure_future(loop, std::move(aw));
  std::shared_ptr<InnerState> inner = aw.state();
  Future<T> outer = inner->loop().template create_future<T>();
  if (inner->done()) {
    detail::copy_outcome<T>(*inner, *outer.state());
    return outer;
  }
  // Weak references both ways: neither keeps the other alive (a pending task is kept alive
  // by its loop, the outer future by whoever awaits it).
  std::weak_ptr<typename Future<T>::State> weak_outer = outer.state();
  std::uint64_t inner_cb =
      inner->add_callback([weak_outer](const std::shared_ptr<detail::FutureCore>& core) {
        auto& in = static_cast<InnerState&>(*core);
        std::shared_ptr<typename Future<T>::State> out = weak_outer.lock();
        if (!out) return;
        if (out->cancelled()) {
          if (!in.cancelled()) in.exception();  // retrieved: the shield was abandoned
          return;
        }
        detail::copy_outcome<T>(in, *out);
      });
  std::weak_ptr<InnerState> weak_inner = inner;
  outer.state()->add_callback([weak_inner, inner_cb](const std::shared_ptr<detail::FutureCore>&) {
    std::shared_ptr<InnerState> in = weak_inner.lock();
    if (in && !in->done()) in->remove_callback(inner_cb);
  });
  return outer;
}

// ---- wait_for ------------------------------------------------------------------------------

/// asyncio.wait_for(aw, timeout) (3.12: built on timeout()): the result of `aw`, or
/// TimeoutError("") if `timeout` seconds pass first; `aw` is then cancelled and waited for
/// (an unscheduled coroutine runs inline in the current task, as the body of the timeout).
/// If `aw` finishes with a value despite the cancellation (it swallowed CancelledError, or its
/// result arrived as the timeout fired and it completed anyway), that value is returned.
/// std::nullopt waits without limit. timeout <= 0: a done `aw` gives its result; otherwise it
/// is made a task, cancelled, waited for, and TimeoutError raised if it ended cancelled.
/// A cancellation of the calling task from outside stays a CancelledError.
template <detail::TaskOrFuture A>
Task<detail::awaited_t<A>> wait_for(A aw, std::optional<Seconds> timeout) {
  using T = detail::awaited_t<A>;
  EventLoop& loop = get_running_loop();
  if (timeout && timeout->value <= 0) {
    A fut = detail::ensure_future(loop, std::move(aw));
    if (fut.done()) co_return detail::copy_result<T>(*fut.state());
    co_await detail::cancel_and_wait(fut.state());
    try {
      co_return detail::copy_result<T>(*fut.state());
    } catch (const CancelledError&) {
    }
    throw TimeoutError(std::string());
  } else {
    std::optional<LoopTime> when;
    if (timeout) when = LoopTime(loop.time() + timeout->value);
    Timeout cm(when);
    auto call = [&aw]() -> A& { return aw; };
    co_return co_await detail::run_in_timeout<T>(cm, call);
  }
}

// ---- wait ----------------------------------------------------------------------------------

/// asyncio.wait(fs, timeout, return_when): waits until `return_when` holds (FIRST_COMPLETED:
/// one is done; FIRST_EXCEPTION: one finished with an exception (not a cancellation), or all
/// are done; ALL_COMPLETED) or `timeout` seconds passed, and returns (done, pending). Never
/// raises TimeoutError and never cancels anything. Empty `fs`: ValueError("Set of
/// Tasks/Futures is empty."); an unscheduled coroutine: TypeError("Passing coroutines is
/// forbidden, use tasks explicitly.").
template <detail::Waitable F>
Task<WaitResult<F>> wait(std::vector<F> fs, std::optional<Seconds> timeout = std::nullopt,
                         ReturnWhen return_when = ALL_COMPLETED) {
  if (fs.empty()) throw ValueError("Set of Tasks/Futures is empty.");
  if (return_when != FIRST_COMPLETED && return_when != FIRST_EXCEPTION &&
      return_when != ALL_COMPLETED) {
    throw ValueError("Invalid return_when value: " + std::to_string(static_cast<int>(return_when)));
  }
  std::vector<F> unique;
  unique.reserve(fs.size());
  for (F& f : fs) {
    if (!f) throw TypeError("wait() got an empty task or future");
    if (detail::is_unscheduled_coroutine(f)) {
      throw TypeError("Passing coroutines is forbidden, use tasks explicitly.");
    }
    bool seen = false;
    for (const F& u : unique)
      seen = seen || u.state() == f.state();
    if (!seen) unique.push_back(std::move(f));
  }
  EventLoop& loop = get_running_loop();
  Future<void> waiter = loop.create_future<void>();
  TimerHandle timeout_handle;
  if (timeout) {
    timeout_handle = loop.call_later(*timeout, [waiter] {
      if (!waiter.done()) waiter.set_result();
    });
  }
  auto counter = std::make_shared<std::size_t>(unique.size());
  std::vector<std::uint64_t> ids;
  ids.reserve(unique.size());
  for (const F& f : unique) {
    ids.push_back(
        f.state()->add_callback([waiter, counter, timeout_handle, return_when](
                                    const std::shared_ptr<detail::FutureCore>& core) mutable {
          --*counter;
          if (*counter == 0 || return_when == FIRST_COMPLETED ||
              (return_when == FIRST_EXCEPTION && !core->cancelled() && core->exception())) {
            timeout_handle.cancel();
            if (!waiter.done()) waiter.set_result();
          }
        }));
  }
  std::exception_ptr error;
  try {
    co_await waiter;
  } catch (...) {
    error = std::current_exception();
  }
  timeout_handle.cancel();
  for (std::size_t i = 0; i < unique.size(); ++i)
    unique[i].state()->remove_callback(ids[i]);
  if (error) std::rethrow_exception(error);
  WaitResult<F> result;
  for (F& f : unique)
    (f.done() ? result.done : result.pending).push_back(std::move(f));
  co_return result;
}

}  // namespace asyncuv
