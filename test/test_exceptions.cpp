// Exceptions and the loop's exception handler: scenarios 25-28 of asyncio-semantics.md, plus
// the exception types and the ExceptionContext dictionary.
#include <catch2/catch.hpp>

#include "log_capture.hpp"

#include <asyncuv/event_loop.hpp>
#include <asyncuv/exception_context.hpp>
#include <asyncuv/exceptions.hpp>
#include <asyncuv/log.hpp>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::ExceptionContext;
using asyncuv::Handle;
using asyncuv::TimerHandle;

namespace exc_test {

using test_support::LogCapture;

struct Boom : std::runtime_error {
  Boom() : std::runtime_error("boom") {}
};

std::vector<std::string> keys_of(const ExceptionContext& c) {
  std::vector<std::string> keys;
  for (const auto& [key, entry] : c.items())
    keys.push_back(key);
  return keys;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
}

/// A loop whose default handler throws.
class ThrowingDefaultLoop : public EventLoop {
 public:
  int calls = 0;
  void default_exception_handler(const ExceptionContext&) override {
    ++calls;
    throw asyncuv::ValueError("default handler failed");
  }
};

/// A loop whose default handler records what it was given.
class RecordingDefaultLoop : public EventLoop {
 public:
  std::vector<ExceptionContext> seen;
  void default_exception_handler(const ExceptionContext& c) override { seen.push_back(c); }
};

}  // namespace exc_test

using namespace exc_test;

TEST_CASE("25: a throwing callback is reported and the loop keeps running", "[exceptions]") {
  EventLoop loop;
  loop.set_debug(false);
  std::vector<std::string> seen;
  std::vector<ExceptionContext> contexts;
  EventLoop* handler_loop = nullptr;
  loop.set_exception_handler([&](EventLoop& l, const ExceptionContext& c) {
    handler_loop = &l;
    contexts.push_back(c);
  });
  Handle bad = loop.call_soon([&] {
    seen.push_back("bad");
    throw Boom();
  });
  loop.call_soon([&] { seen.push_back("after"); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();

  CHECK(seen == std::vector<std::string>{"bad", "after"});
  REQUIRE(contexts.size() == 1);
  CHECK(handler_loop == &loop);
  const ExceptionContext& c = contexts[0];
  CHECK(keys_of(c) == std::vector<std::string>{"exception", "handle", "message"});
  CHECK(starts_with(c.message(), "Exception in callback "));
  CHECK(c.message() == "Exception in callback " + bad.callback_repr());
  REQUIRE(c.exception() != nullptr);
  CHECK_THROWS_AS(std::rethrow_exception(c.exception()), Boom);
  REQUIRE(c.handle().has_value());
  CHECK(*c.handle() == bad);
  CHECK_FALSE(bad.cancelled());

  // The loop is still usable afterwards.
  loop.call_soon([&] {
    seen.push_back("again");
    loop.stop();
  });
  loop.run_forever();
  CHECK(seen.back() == "again");
}

TEST_CASE("25: the message describes the callback and its arguments", "[exceptions]") {
  EventLoop loop;
  loop.set_debug(false);
  std::vector<ExceptionContext> contexts;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { contexts.push_back(c); });
  auto fail = [](int, const std::string&) { throw Boom(); };
  Handle with_args = loop.call_soon(fail, 42, std::string("spam"));
  TimerHandle timer = loop.call_later(0, [] { throw asyncuv::ValueError("late"); });
  loop.call_later(0.001, [&] { loop.stop(); });
  loop.run_forever();

  REQUIRE(contexts.size() == 2);
  // asyncio: "Exception in callback f(42, 'spam')" -- the arguments are part of it.
  CHECK(starts_with(contexts[0].message(), "Exception in callback "));
  CHECK(contexts[0].message().find("(42, 'spam')") != std::string::npos);
  CHECK(*contexts[0].handle() == with_args);
  CHECK(starts_with(contexts[1].message(), "Exception in callback "));
  CHECK(keys_of(contexts[1]) == std::vector<std::string>{"exception", "handle", "message"});
  CHECK(*contexts[1].handle() == timer);
  CHECK(what_of(contexts[1].exception()) == "late");
}

TEST_CASE("26: exception handler get/set/reset", "[exceptions]") {
  LogCapture log;
  EventLoop loop;
  loop.set_debug(false);
  CHECK_FALSE(loop.get_exception_handler());

  int calls = 0;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) {
    ++calls;
    CHECK(c.message() == "custom");
  });
  CHECK(static_cast<bool>(loop.get_exception_handler()));
  loop.call_exception_handler(ExceptionContext("custom"));
  CHECK(calls == 1);
  CHECK(log.records().empty());

  loop.set_exception_handler(nullptr);
  CHECK_FALSE(loop.get_exception_handler());
  loop.call_exception_handler(ExceptionContext("to default"));
  CHECK(calls == 1);
  auto records = log.records();
  REQUIRE(records.size() == 1);
  CHECK(records[0].level == spdlog::level::err);
  CHECK(records[0].text == "to default");

  // An empty std::function also restores the default.
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { ++calls; });
  loop.set_exception_handler({});
  CHECK_FALSE(loop.get_exception_handler());
}

TEST_CASE("26: a handler may replace itself while it runs", "[exceptions]") {
  LogCapture log;
  EventLoop loop;
  std::vector<std::string> seen;
  loop.set_exception_handler([&](EventLoop& l, const ExceptionContext& c) {
    seen.push_back("first:" + c.message());
    l.set_exception_handler(
        [&](EventLoop&, const ExceptionContext& c2) { seen.push_back("second:" + c2.message()); });
  });
  loop.call_exception_handler(ExceptionContext("a"));
  loop.call_exception_handler(ExceptionContext("b"));
  CHECK(seen == std::vector<std::string>{"first:a", "second:b"});
  CHECK(log.records().empty());
}

TEST_CASE("27: a custom handler that throws is reported by the default handler", "[exceptions]") {
  LogCapture log;
  EventLoop loop;
  loop.set_exception_handler(
      [](EventLoop&, const ExceptionContext&) { throw asyncuv::RuntimeError("handler broke"); });
  ExceptionContext original("original problem");
  original.set("detail", std::string("x"));
  loop.call_exception_handler(original);

  auto records = log.records();
  REQUIRE(records.size() == 1);
  CHECK(records[0].level == spdlog::level::err);
  CHECK(records[0].text ==
        "Unhandled error in exception handler\n"
        "context: {'detail': 'x', 'message': 'original problem'}\n" +
            asyncuv::describe_exception(
                std::make_exception_ptr(asyncuv::RuntimeError("handler broke"))));
  CHECK(records[0].text.find("handler broke") != std::string::npos);
}

TEST_CASE("27: the overridden default handler gets the handler's failure", "[exceptions]") {
  LogCapture log;
  RecordingDefaultLoop loop;
  loop.set_exception_handler(
      [](EventLoop&, const ExceptionContext&) { throw asyncuv::RuntimeError("handler broke"); });
  loop.call_exception_handler(ExceptionContext("original"));
  REQUIRE(loop.seen.size() == 1);
  const ExceptionContext& c = loop.seen[0];
  CHECK(keys_of(c) == std::vector<std::string>{"context", "exception", "message"});
  CHECK(c.message() == "Unhandled error in exception handler");
  CHECK(what_of(c.exception()) == "handler broke");
  const auto* inner = c.get<ExceptionContext>("context");
  REQUIRE(inner != nullptr);
  CHECK(inner->message() == "original");
  CHECK(log.records().empty());
}

TEST_CASE("27: an overridden default handler that throws is logged", "[exceptions]") {
  LogCapture log;
  ThrowingDefaultLoop loop;
  loop.set_debug(false);
  std::string expected_exc = asyncuv::describe_exception(
      std::make_exception_ptr(asyncuv::ValueError("default handler failed")));

  SECTION("no custom handler") {
    loop.call_soon([] { throw Boom(); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();  // the failure does not escape the loop
    CHECK(loop.calls == 1);
    auto records = log.records();
    REQUIRE(records.size() == 1);
    CHECK(records[0].level == spdlog::level::err);
    CHECK(records[0].text == "Exception in default exception handler\n" + expected_exc);
  }

  SECTION("and a custom handler that throws too") {
    loop.set_exception_handler(
        [](EventLoop&, const ExceptionContext&) { throw asyncuv::RuntimeError("custom"); });
    loop.call_exception_handler(ExceptionContext("whatever"));
    CHECK(loop.calls == 1);
    auto records = log.records();
    REQUIRE(records.size() == 1);
    CHECK(records[0].level == spdlog::level::err);
    CHECK(records[0].text ==
          "Exception in default exception handler while handling an unexpected error in "
          "custom exception handler\n" +
              expected_exc);
  }
}

TEST_CASE("28: default handler output format", "[exceptions]") {
  LogCapture log;
  EventLoop loop;
  auto exc = std::make_exception_ptr(asyncuv::ValueError("bad value"));
  std::string exc_text = asyncuv::describe_exception(exc);
  CHECK(exc_text.find("ValueError: bad value") != std::string::npos);

  SECTION("message, sorted keys, then the exception") {
    ExceptionContext c("Something failed", exc);
    c.set("zeta", 3);
    c.set("alpha", std::string("a"));
    c.set_socket(7);
    loop.default_exception_handler(c);
    auto records = log.records();
    REQUIRE(records.size() == 1);
    CHECK(records[0].level == spdlog::level::err);
    CHECK(records[0].text == "Something failed\nalpha: 'a'\nsocket: 7\nzeta: 3\n" + exc_text);
  }

  SECTION("no message") {
    ExceptionContext c;
    c.set("beta", 2);
    c.set_exception(exc);
    loop.call_exception_handler(c);
    auto records = log.records();
    REQUIRE(records.size() == 1);
    CHECK(records[0].text == "Unhandled exception in event loop\nbeta: 2\n" + exc_text);
  }

  SECTION("empty message, no exception") {
    ExceptionContext c("");
    c.set("gamma", true);
    loop.call_exception_handler(c);
    auto records = log.records();
    REQUIRE(records.size() == 1);
    CHECK(records[0].text == "Unhandled exception in event loop\ngamma: True");
  }

  SECTION("a failing callback through the default handler") {
    loop.set_debug(false);
    Handle h = loop.call_soon([] { throw Boom(); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    auto records = log.records();
    REQUIRE(records.size() == 1);
    CHECK(records[0].level == spdlog::level::err);
    std::string boom_text = asyncuv::describe_exception(std::make_exception_ptr(Boom()));
    CHECK(records[0].text == "Exception in callback " + h.callback_repr() +
                                 "\nhandle: " + h.repr() + "\n" + boom_text);
  }
}

TEST_CASE("25: exception types: OSError subclasses follow Python's errno mapping", "[exceptions]") {
  using namespace asyncuv;
  SECTION("throw_os_error") {
    try {
      throw_os_error(ECONNREFUSED);
      FAIL("throw_os_error returned");
    } catch (const ConnectionRefusedError& e) {
      CHECK(e.errnum() == ECONNREFUSED);
      CHECK(e.strerror() == std::strerror(ECONNREFUSED));
      CHECK(std::string(e.what()) ==
            "[Errno " + std::to_string(ECONNREFUSED) + "] " + std::strerror(ECONNREFUSED));
      CHECK(std::string(e.what()).rfind("[Errno 111] ", 0) == 0);
    }
    try {
      throw_os_error(ECONNREFUSED, "Connect call failed ('127.0.0.1', 9)");
      FAIL("throw_os_error returned");
    } catch (const ConnectionError& e) {
      CHECK(dynamic_cast<const ConnectionRefusedError*>(&e) != nullptr);
      CHECK(std::string(e.what()).rfind("[Errno 111] Connect call failed ('127.0.0.1', 9)", 0) ==
            0);
    }
  }

  SECTION("throw_uv_error maps libuv codes") {
    CHECK_THROWS_AS(throw_uv_error(UV_ENOENT), FileNotFoundError);
    CHECK_THROWS_AS(throw_uv_error(UV_EEXIST), FileExistsError);
    CHECK_THROWS_AS(throw_uv_error(UV_EPERM), PermissionError);
    CHECK_THROWS_AS(throw_uv_error(UV_EACCES), PermissionError);
    CHECK_THROWS_AS(throw_uv_error(UV_ECONNRESET), ConnectionResetError);
    CHECK_THROWS_AS(throw_uv_error(UV_ECONNABORTED), ConnectionAbortedError);
    CHECK_THROWS_AS(throw_uv_error(UV_EPIPE), BrokenPipeError);
    CHECK_THROWS_AS(throw_uv_error(UV_EAGAIN), BlockingIOError);
    CHECK_THROWS_AS(throw_uv_error(UV_EALREADY), BlockingIOError);
    CHECK_THROWS_AS(throw_uv_error(UV_ETIMEDOUT), TimeoutError);
    CHECK_THROWS_AS(throw_uv_error(UV_ESRCH), ProcessLookupError);
    CHECK_THROWS_AS(throw_uv_error(UV_EINTR), InterruptedError);
    CHECK_THROWS_AS(throw_uv_error(UV_EISDIR), IsADirectoryError);
    CHECK_THROWS_AS(throw_uv_error(UV_ENOTDIR), NotADirectoryError);
    CHECK_THROWS_AS(throw_uv_error(UV_EPIPE), ConnectionError);
    try {
      throw_uv_error(UV_EINVAL, "bind");
      FAIL("throw_uv_error returned");
    } catch (const OSError& e) {
      CHECK(typeid(e) == typeid(OSError));
      CHECK(e.errnum() == EINVAL);
      CHECK(std::string(e.what()).rfind("[Errno " + std::to_string(EINVAL) + "] bind", 0) == 0);
    }
    try {
      throw_uv_error(UV_ENOENT);
    } catch (const FileNotFoundError& e) {
      CHECK(e.errnum() == ENOENT);
      CHECK(std::string(e.what()) == "[Errno 2] " + std::string(std::strerror(ENOENT)));
    }
    CHECK(uv_code_to_errno(UV_ECONNREFUSED) == ECONNREFUSED);
  }

  SECTION("make_os_error builds without throwing") {
    std::exception_ptr e = make_os_error(ECHILD);
    CHECK_THROWS_AS(std::rethrow_exception(e), ChildProcessError);
    CHECK_THROWS_AS(std::rethrow_exception(make_os_error(EINPROGRESS)), BlockingIOError);
  }

  SECTION("a message-only OSError") {
    OSError e("Multiple exceptions: a, b");
    CHECK(e.errnum() == 0);
    CHECK(std::string(e.what()) == "Multiple exceptions: a, b");
  }

  SECTION("the hierarchy") {
    STATIC_REQUIRE(std::is_base_of_v<Exception, OSError>);
    STATIC_REQUIRE(std::is_base_of_v<OSError, TimeoutError>);
    STATIC_REQUIRE(std::is_base_of_v<RuntimeError, SendfileNotAvailableError>);
    STATIC_REQUIRE(std::is_base_of_v<BaseException, CancelledError>);
    STATIC_REQUIRE_FALSE(std::is_base_of_v<Exception, CancelledError>);
    STATIC_REQUIRE(std::is_base_of_v<FatalError, SystemExit>);
    STATIC_REQUIRE(std::is_base_of_v<FatalError, KeyboardInterrupt>);
    STATIC_REQUIRE_FALSE(std::is_base_of_v<FatalError, RuntimeError>);
    CHECK(SystemExit(3).code() == 3);
    CHECK(std::string(CancelledError("stop").what()) == "stop");
  }
}

TEST_CASE("26: ExceptionContext is a sorted string-keyed dictionary", "[exceptions]") {
  ExceptionContext c("the message");
  CHECK(c.size() == 1);
  CHECK(c.message() == "the message");
  CHECK(c.exception() == nullptr);
  CHECK_FALSE(c.handle().has_value());
  CHECK_FALSE(c.socket().has_value());
  CHECK(c.future<int>() == nullptr);

  auto exc = std::make_exception_ptr(asyncuv::ValueError("v"));
  c.set_exception(exc).set_socket(5).set("count", 3).set("name", std::string("n"));
  CHECK(c.exception() == exc);
  CHECK(c.socket() == std::optional<int>(5));
  REQUIRE(c.get<int>("count") != nullptr);
  CHECK(*c.get<int>("count") == 3);
  CHECK(c.get<std::string>("count") == nullptr);  // wrong type
  CHECK(c.get<int>("missing") == nullptr);
  CHECK(c.contains("name"));
  CHECK(keys_of(c) == std::vector<std::string>{"count", "exception", "message", "name", "socket"});
  CHECK(c.repr() == "{'count': 3, 'exception': " + asyncuv::describe_exception(exc) +
                        ", 'message': 'the message', 'name': 'n', 'socket': 5}");

  c.set("count", 4);  // replaces
  CHECK(*c.get<int>("count") == 4);
  CHECK(c.size() == 5);
  CHECK(c.erase("count"));
  CHECK_FALSE(c.erase("count"));
  CHECK_FALSE(c.contains("count"));
  CHECK(c.size() == 4);

  auto shared = std::make_shared<std::string>("payload");
  c.set("future", shared);
  CHECK(c.future<std::string>() == shared);
  CHECK(c.future<int>() == nullptr);
  CHECK(c.task<std::string>() == nullptr);

  EventLoop loop;
  Handle h = loop.call_soon([] {});
  c.set_handle(h);
  REQUIRE(c.handle().has_value());
  CHECK(*c.handle() == h);
  CHECK(c.items().at("handle").repr == h.repr());

  ExceptionContext empty;
  CHECK(empty.size() == 0);
  CHECK(empty.message().empty());
  CHECK(empty.repr() == "{}");
  CHECK(asyncuv::describe_exception(nullptr) == "None");
  CHECK(asyncuv::describe_exception(std::make_exception_ptr(42)) == "unknown exception");
}
