// The asyncio "context dict" handed to exception handlers.
#pragma once

#include <any>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "asyncuv/context.hpp"
#include "asyncuv/detail/describe.hpp"
#include "asyncuv/handle.hpp"

namespace asyncuv {

class ExceptionContext;

/// The text Python prints for an exception: "TypeName: what()" (or just the type name).
std::string describe_exception(const std::exception_ptr& e);

namespace detail {
inline std::string describe_value(const std::exception_ptr& e) {
  return asyncuv::describe_exception(e);
}
inline std::string describe_value(const Handle& h) {
  return h.repr();
}
std::string describe_value(const ExceptionContext& c);
}  // namespace detail

/// A string-keyed dictionary of any values, as asyncio passes to exception handlers. The
/// well-known keys have typed accessors: message, exception, handle, future, task, transport,
/// protocol, socket. Each value keeps a printable form used by the default handler.
class ExceptionContext {
 public:
  struct Entry {
    std::any value;
    std::string repr;
  };
  using Map = std::map<std::string, Entry, std::less<>>;

  ExceptionContext() = default;
  /// A context holding only `message`.
  explicit ExceptionContext(std::string message);
  /// A context holding `message` and `exception`.
  ExceptionContext(std::string message, std::exception_ptr exception);

  /// Stores `value` under `key`, replacing what was there.
  template <class T>
  ExceptionContext& set(std::string key, T value) {
    std::string repr = detail::describe_value(value);
    entries_.insert_or_assign(std::move(key), Entry{std::any(std::move(value)), std::move(repr)});
    return *this;
  }
  /// Stores `value` under `key` printed as `repr` (for objects with their own text, such as
  /// transports: set("transport", std::shared_ptr<Transport>(t), t->repr())).
  template <class T>
  ExceptionContext& set(std::string key, T value, std::string repr) {
    entries_.insert_or_assign(std::move(key), Entry{std::any(std::move(value)), std::move(repr)});
    return *this;
  }

  /// The value under `key` if it holds a T, else nullptr.
  template <class T>
  const T* get(std::string_view key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : std::any_cast<T>(&it->second.value);
  }

  bool contains(std::string_view key) const { return entries_.find(key) != entries_.end(); }
  /// Removes `key`; returns whether it was present.
  bool erase(std::string_view key);
  std::size_t size() const noexcept { return entries_.size(); }
  /// Every entry, sorted by key.
  const Map& items() const noexcept { return entries_; }

  /// "message": the text describing what went wrong ("" when absent).
  std::string message() const;
  ExceptionContext& set_message(std::string message);

  /// "exception": the exception, if any (null when absent).
  std::exception_ptr exception() const;
  ExceptionContext& set_exception(std::exception_ptr exception);

  /// "handle": the Handle whose callback failed, if any.
  std::optional<Handle> handle() const;
  ExceptionContext& set_handle(Handle handle);

  /// "future", "task", "transport", "protocol": stored as std::shared_ptr<T> for the object's
  /// own type; each returns null when the key is absent or holds another type.
  template <class T>
  std::shared_ptr<T> future() const {
    return shared<T>("future");
  }
  template <class T>
  std::shared_ptr<T> task() const {
    return shared<T>("task");
  }
  template <class T>
  std::shared_ptr<T> transport() const {
    return shared<T>("transport");
  }
  template <class T>
  std::shared_ptr<T> protocol() const {
    return shared<T>("protocol");
  }

  /// "socket": the file descriptor involved, if any.
  std::optional<int> socket() const;
  ExceptionContext& set_socket(int fd);

  /// The context a custom exception handler runs in (asyncio 3.12 runs it in the failing
  /// task's, future's or handle's get_context()). set_handle and the loop's task reports set
  /// it; absent, the handler runs in the caller's context. Not a dictionary entry.
  ExceptionContext& set_run_context(Context context);
  /// The run context; null when absent or when it is a fresh empty context.
  detail::ContextImpl* run_context() const noexcept { return run_context_.get(); }
  /// True when the handler must run in run_context() (null: a fresh empty context).
  bool has_run_context() const noexcept { return has_run_context_; }

  /// Python-dict-like text: {'exception': ..., 'message': '...'}.
  std::string repr() const;

 private:
  template <class T>
  std::shared_ptr<T> shared(std::string_view key) const {
    const auto* p = get<std::shared_ptr<T>>(key);
    return p ? *p : nullptr;
  }

  Map entries_;
  detail::ContextRef run_context_;
  bool has_run_context_ = false;
};

}  // namespace asyncuv
