// asyncio.Handle and asyncio.TimerHandle: what call_soon / call_later / call_at return.
#pragma once

#include <string>
#include "asyncuv/source_location.hpp"

#include "asyncuv/detail/handle_impl.hpp"

namespace asyncuv {

class Context;  // <asyncuv/context.hpp>

/// A scheduled callback (asyncio.Handle). Copies refer to the same callback. A Handle may
/// outlive its loop; cancel() on it then only marks it cancelled.
class Handle {
 public:
  /// An empty handle, referring to nothing.
  Handle() noexcept = default;
  Handle(const Handle& other) noexcept;
  Handle(Handle&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
  Handle& operator=(const Handle& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  ~Handle() {
    if (impl_) detail::release(impl_);
  }

  /// Cancels the callback: if it has not run yet it never will. Cancelling twice, or after
  /// the callback ran, does nothing more. The callable (and what it captured) is released.
  void cancel() noexcept;

  /// True once cancel() has been called.
  bool cancelled() const noexcept;

  /// asyncio-style text: "<Handle f(1, 'a') at file.cpp:12>", "<Handle cancelled>".
  std::string repr() const;

  /// The callback's description: "f(1, 'a')".
  std::string callback_repr() const;

  /// Where call_soon / call_later / call_at was called for this handle.
  asyncuv::source_location source_location() const noexcept;

  /// The context the callback runs in (asyncio 3.12 Handle.get_context()): the one given to
  /// call_soon(context, ...), else the copy of the current context taken when it was
  /// scheduled. An empty handle gives a new empty context.
  Context get_context() const;

  /// True when this handle refers to a callback.
  explicit operator bool() const noexcept { return impl_ != nullptr; }

  /// Two handles are equal when they refer to the same scheduled callback.
  friend bool operator==(const Handle& a, const Handle& b) noexcept { return a.impl_ == b.impl_; }

  /// Adopts one reference to `impl` (internal).
  explicit Handle(detail::HandleImpl* impl) noexcept : impl_(impl) {}
  /// The underlying object (internal).
  detail::HandleImpl* impl() const noexcept { return impl_; }

 protected:
  detail::HandleImpl* impl_ = nullptr;
};

/// A callback scheduled at a point in time (asyncio.TimerHandle).
class TimerHandle : public Handle {
 public:
  TimerHandle() noexcept = default;
  explicit TimerHandle(detail::HandleImpl* impl) noexcept : Handle(impl) {}

  /// The absolute deadline, in loop.time() seconds. Unchanged by cancel() or firing.
  double when() const noexcept;
};

}  // namespace asyncuv
