// The loop's exception handling: call_exception_handler and the default handler.
#include <spdlog/spdlog.h>

#include <string>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/log.hpp"
#include "internal.hpp"

namespace asyncuv {

namespace {
bool is_fatal_current() {
  return detail::is_fatal(std::current_exception());
}

void log_with_current_exception(const char* message) {
  logger()->error("{}\n{}", message, describe_exception(std::current_exception()));
}
}  // namespace

void EventLoop::default_exception_handler(const ExceptionContext& context) {
  std::string message = context.message();
  if (message.empty()) message = "Unhandled exception in event loop";
  std::string text = message;
  for (const auto& [key, entry] : context.items()) {
    if (key == "message" || key == "exception") continue;
    text += "\n" + key + ": " + entry.repr;
  }
  if (auto e = context.exception()) text += "\n" + describe_exception(e);
  logger()->error("{}", text);
}

void EventLoop::call_exception_handler(const ExceptionContext& context) {
  if (!handler_) {
    try {
      default_exception_handler(context);
    } catch (...) {
      if (is_fatal_current()) throw;
      log_with_current_exception("Exception in default exception handler");
    }
    return;
  }
  try {
    // Copy: the handler may replace itself while it runs.
    ExceptionHandler handler = handler_;
    if (context.has_run_context()) {
      // asyncio 3.12: ctx.run(handler, loop, context) with the failing task's or handle's
      // context; entering a context that is entered elsewhere fails as ctx.run does.
      struct InContext {
        detail::ContextSwitch in;
        ~InContext() {
          if (detail::ContextImpl* made = in.leave()) detail::release_context(made);
        }
      } scope{detail::ContextSwitch(context.run_context())};
      handler(*this, context);
    } else {
      handler(*this, context);
    }
  } catch (...) {
    if (is_fatal_current()) throw;
    try {
      ExceptionContext report("Unhandled error in exception handler", std::current_exception());
      report.set("context", context);
      default_exception_handler(report);
    } catch (...) {
      if (is_fatal_current()) throw;
      log_with_current_exception(
          "Exception in default exception handler while handling an unexpected error in custom "
          "exception handler");
    }
  }
}

}  // namespace asyncuv
