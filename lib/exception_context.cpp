// The exception-handler context dictionary.
#include "asyncuv/exception_context.hpp"

#include <typeinfo>

namespace asyncuv {

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "None";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::string type = detail::demangle(typeid(ex).name());
    std::string what = ex.what();
    return what.empty() ? type : type + ": " + what;
  } catch (...) {
    return "unknown exception";
  }
}

namespace detail {
std::string describe_value(const ExceptionContext& c) {
  return c.repr();
}
}  // namespace detail

ExceptionContext::ExceptionContext(std::string message) {
  set_message(std::move(message));
}

ExceptionContext::ExceptionContext(std::string message, std::exception_ptr exception) {
  set_message(std::move(message));
  set_exception(std::move(exception));
}

bool ExceptionContext::erase(std::string_view key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

std::string ExceptionContext::message() const {
  const auto* m = get<std::string>("message");
  return m ? *m : std::string();
}

ExceptionContext& ExceptionContext::set_message(std::string message) {
  return set("message", std::move(message));
}

std::exception_ptr ExceptionContext::exception() const {
  const auto* e = get<std::exception_ptr>("exception");
  return e ? *e : nullptr;
}

ExceptionContext& ExceptionContext::set_exception(std::exception_ptr exception) {
  return set("exception", std::move(exception));
}

std::optional<Handle> ExceptionContext::handle() const {
  const auto* h = get<Handle>("handle");
  if (h == nullptr) return std::nullopt;
  return *h;
}

ExceptionContext& ExceptionContext::set_handle(Handle handle) {
  if (handle) {
    // The handle's context, without making one for a handle that has none (a fresh one).
    has_run_context_ = true;
    run_context_ = detail::ContextRef::share(handle.impl()->context);
  }
  return set("handle", std::move(handle));
}

ExceptionContext& ExceptionContext::set_run_context(Context context) {
  has_run_context_ = true;
  run_context_ = detail::ContextRef::share(context.impl());
  return *this;
}

std::optional<int> ExceptionContext::socket() const {
  const auto* fd = get<int>("socket");
  if (fd == nullptr) return std::nullopt;
  return *fd;
}

ExceptionContext& ExceptionContext::set_socket(int fd) {
  return set("socket", fd);
}

std::string ExceptionContext::repr() const {
  std::string text = "{";
  bool first = true;
  for (const auto& [key, entry] : entries_) {
    if (!first) text += ", ";
    first = false;
    text += "'" + key + "': " + entry.repr;
  }
  return text + "}";
}

}  // namespace asyncuv
