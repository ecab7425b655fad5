// asyncio.Handle / TimerHandle behaviour.
#include "asyncuv/handle.hpp"

#include "asyncuv/context.hpp"
#include "asyncuv/detail/timer_heap.hpp"

#include <cstdio>
#include <string>

namespace asyncuv {

Handle::Handle(const Handle& other) noexcept : impl_(other.impl_) {
  if (impl_) detail::retain(impl_);
}

Handle& Handle::operator=(const Handle& other) noexcept {
  if (other.impl_) detail::retain(other.impl_);
  if (impl_) detail::release(impl_);
  impl_ = other.impl_;
  return *this;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    if (impl_) detail::release(impl_);
    impl_ = std::exchange(other.impl_, nullptr);
  }
  return *this;
}

void Handle::cancel() noexcept {
  if (impl_ == nullptr || impl_->cancelled) return;
  impl_->cancelled = true;
  detail::drop_callback(impl_);
  if (impl_->in_heap && impl_->heap != nullptr) impl_->heap->note_cancelled(impl_);
}

Context Handle::get_context() const {
  if (impl_ == nullptr) return Context();
  if (impl_->context == nullptr) {
    if (impl_->running) {
      // Running in a fresh empty context: hand out the one a ContextVar.set would
      // materialize; the loop gives it to this handle when the callback returns.
      return Context(detail::ContextRef::share(detail::materialize_current_context()));
    }
    // Not running: the fresh empty context it will run in, made now so it keeps its identity.
    impl_->context = detail::new_context(nullptr);
  }
  return Context(detail::ContextRef::share(impl_->context));
}

bool Handle::cancelled() const noexcept {
  return impl_ != nullptr && impl_->cancelled;
}

asyncuv::source_location Handle::source_location() const noexcept {
  return impl_ ? impl_->where : asyncuv::source_location{};
}

std::string Handle::callback_repr() const {
  if (impl_ == nullptr) return "";
  std::string text = impl_->ops->describe(impl_);
  if (impl_->where.line() != 0) {
    text += " at ";
    text += impl_->where.file_name();
    text += ":" + std::to_string(impl_->where.line());
  }
  return text;
}

std::string Handle::repr() const {
  if (impl_ == nullptr) return "<Handle empty>";
  std::string text = impl_->is_timer ? "<TimerHandle" : "<Handle";
  if (impl_->cancelled) text += " cancelled";
  if (impl_->is_timer) {
    char when[64];
    std::snprintf(when, sizeof when, " when=%.9g", impl_->when);
    text += when;
  }
  if (!impl_->cancelled) text += " " + callback_repr();
  return text + ">";
}

double TimerHandle::when() const noexcept {
  return impl_ ? impl_->when : 0.0;
}

}  // namespace asyncuv
