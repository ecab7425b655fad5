// asyncuv::Context: contextvars.Context, the mapping of context variables a callback or task
// runs in. See <asyncuv/contextvars.hpp> for ContextVar and Token, and
// detail/context_impl.hpp for the representation (an O(1) copy-on-write map).
//
// asyncio's rules, which the loop follows: call_soon / call_later / call_at /
// call_soon_threadsafe run their callback in a copy of the context current when they were
// called, or in the Context given to them; a task runs every step in the context copied when
// it was created (or the one given to create_task); the custom exception handler runs in the
// failing handle's or task's context (3.12).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "asyncuv/detail/context_impl.hpp"

namespace asyncuv {

template <class T>
class ContextVar;

/// contextvars.Context. Copies of this object refer to the same context (Python references);
/// copy() / copy_context() make a new context with the same values.
class Context {
 public:
  /// A new empty context (contextvars.Context()).
  Context();
  /// Adopts `impl`, which must not be null (internal).
  explicit Context(detail::ContextRef impl) noexcept : impl_(std::move(impl)) {}

  /// Runs f(args...) with this context as the current one and returns its result; ContextVar
  /// sets inside it change this context. RuntimeError("cannot enter context: ... is already
  /// entered") if it is being run already (here or in another thread), as CPython.
  template <class F, class... Args>
  requires std::invocable<F&&, Args&&...>
  decltype(auto) run(F&& f, Args&&... args) const {
    Entered scope(impl_.get());
    return std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// A new context with the same values (Context.copy()): O(1).
  Context copy() const;
  /// How many variables have a value (len(ctx)).
  std::size_t size() const noexcept;
  /// True when `var` has a value here (`var in ctx`). Defined in <asyncuv/contextvars.hpp>.
  template <class T>
  bool contains(const ContextVar<T>& var) const;
  /// ctx.get(var, default): the value of `var` here, else `default_value`.
  template <class T>
  T get(const ContextVar<T>& var, T default_value) const;

  /// "<Context object at 0x...>".
  std::string repr() const;

  /// The same context (Python's `is`).
  friend bool operator==(const Context& a, const Context& b) noexcept {
    return a.impl_.get() == b.impl_.get();
  }

  detail::ContextImpl* impl() const noexcept { return impl_.get(); }

 private:
  struct Entered {
    explicit Entered(detail::ContextImpl* c) : context(c), previous(detail::enter_context(c)) {}
    ~Entered() { detail::leave_context(context, previous); }
    Entered(const Entered&) = delete;
    Entered& operator=(const Entered&) = delete;
    detail::ContextImpl* context;
    detail::ContextImpl* previous;
  };

  detail::ContextRef impl_;
};

/// contextvars.copy_context(): a copy of the current context (O(1)).
Context copy_context();

}  // namespace asyncuv
