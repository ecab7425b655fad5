// Debug mode: scenario 30 of asyncio-semantics.md, the ASYNCUV_DEBUG variable, creation sites.
#include <catch2/catch.hpp>

#include "log_capture.hpp"

#include <asyncuv/event_loop.hpp>
#include <asyncuv/events.hpp>
#include <asyncuv/log.hpp>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::ExceptionContext;
using asyncuv::Handle;
using asyncuv::TimerHandle;

namespace debug_test {

using test_support::LogCapture;

/// Sets (or unsets, for nullopt) ASYNCUV_DEBUG for its lifetime.
class DebugEnv {
 public:
  explicit DebugEnv(std::optional<std::string> value) {
    if (const char* old = std::getenv("ASYNCUV_DEBUG")) old_ = old;
    if (value) {
      ::setenv("ASYNCUV_DEBUG", value->c_str(), 1);
    } else {
      ::unsetenv("ASYNCUV_DEBUG");
    }
  }
  ~DebugEnv() {
    if (old_) {
      ::setenv("ASYNCUV_DEBUG", old_->c_str(), 1);
    } else {
      ::unsetenv("ASYNCUV_DEBUG");
    }
  }
  DebugEnv(const DebugEnv&) = delete;
  DebugEnv& operator=(const DebugEnv&) = delete;

 private:
  std::optional<std::string> old_;
};

/// Busy-waits (no sleep) for `seconds` of loop time.
void busy_wait(EventLoop& loop, double seconds) {
  double until = loop.time() + seconds;
  while (loop.time() < until) {
  }
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// Parses "Executing <...> took S seconds"; returns S, or -1 if the text is not of that form.
double slow_seconds(const std::string& text, std::string* handle_repr = nullptr) {
  const std::string head = "Executing ";
  const std::string tail = " seconds";
  if (text.rfind(head, 0) != 0 || text.size() < tail.size() ||
      text.compare(text.size() - tail.size(), tail.size(), tail) != 0) {
    return -1;
  }
  auto took = text.rfind(" took ");
  if (took == std::string::npos) return -1;
  std::string number = text.substr(took + 6, text.size() - tail.size() - took - 6);
  // Three decimals, as asyncio's %.3f.
  auto dot = number.find('.');
  if (dot == std::string::npos || number.size() - dot - 1 != 3) return -1;
  if (handle_repr) *handle_repr = text.substr(head.size(), took - head.size());
  return std::stod(number);
}

}  // namespace debug_test

using namespace debug_test;

TEST_CASE("30: get_debug/set_debug and the ASYNCUV_DEBUG variable", "[debug]") {
  SECTION("unset: off by default") {
    DebugEnv env(std::nullopt);
    EventLoop loop;
    CHECK_FALSE(loop.get_debug());
    loop.set_debug(true);
    CHECK(loop.get_debug());
    loop.set_debug(false);
    CHECK_FALSE(loop.get_debug());
  }
  SECTION("empty: off") {
    DebugEnv env{std::string()};
    EventLoop loop;
    CHECK_FALSE(loop.get_debug());
  }
  SECTION("non-empty: on for a new loop") {
    DebugEnv env(std::string("1"));
    EventLoop loop;
    CHECK(loop.get_debug());
    auto other = asyncuv::new_event_loop();
    CHECK(other->get_debug());
    loop.set_debug(false);
    CHECK_FALSE(loop.get_debug());
  }
  SECTION("any non-empty value, even 0") {
    // PYTHONASYNCIODEBUG is checked for being non-empty only.
    DebugEnv env(std::string("0"));
    EventLoop loop;
    CHECK(loop.get_debug());
  }
  SECTION("read at construction only") {
    DebugEnv env(std::nullopt);
    EventLoop loop;
    {
      DebugEnv on(std::string("1"));
      CHECK_FALSE(loop.get_debug());
    }
  }
}

TEST_CASE("30: slow_callback_duration defaults to 0.1 and is settable", "[debug]") {
  EventLoop loop;
  CHECK(loop.slow_callback_duration() == 0.1);
  loop.set_slow_callback_duration(0.25);
  CHECK(loop.slow_callback_duration() == 0.25);
}

TEST_CASE("30: a slow callback is logged only in debug mode", "[debug]") {
  LogCapture log;
  DebugEnv env(std::nullopt);
  EventLoop loop;

  SECTION("debug mode: WARNING Executing <Handle ...> took 0.1xx seconds") {
    loop.set_debug(true);
    Handle slow = loop.call_soon([&] { busy_wait(loop, 0.15); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    auto records = log.records();
    REQUIRE(records.size() == 1);
    CHECK(records[0].level == spdlog::level::warn);
    INFO(records[0].text);
    std::string repr;
    double took = slow_seconds(records[0].text, &repr);
    CHECK(took >= 0.15);
    CHECK(took < 10.0);
    CHECK(repr.rfind("<Handle ", 0) == 0);
    CHECK(contains(repr, "test_debug.cpp:"));
    CHECK(repr == slow.repr());
  }

  SECTION("debug mode: a slow timer callback is a TimerHandle") {
    loop.set_debug(true);
    TimerHandle slow = loop.call_later(0, [&] { busy_wait(loop, 0.15); });
    loop.call_later(0.001, [&] { loop.stop(); });
    loop.run_forever();
    auto records = log.records();
    REQUIRE(records.size() == 1);
    CHECK(records[0].level == spdlog::level::warn);
    std::string repr;
    CHECK(slow_seconds(records[0].text, &repr) >= 0.15);
    CHECK(repr.rfind("<TimerHandle when=", 0) == 0);
    CHECK(repr == slow.repr());
  }

  SECTION("debug mode: the callback's arguments appear in the handle") {
    loop.set_debug(true);
    loop.call_soon([&](int, const std::string&) { busy_wait(loop, 0.15); }, 7, std::string("eggs"));
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    auto records = log.records();
    REQUIRE(records.size() == 1);
    std::string repr;
    CHECK(slow_seconds(records[0].text, &repr) >= 0.15);
    CHECK(contains(repr, "(7, 'eggs')"));
  }

  SECTION("non-debug mode: nothing is logged") {
    loop.set_debug(false);
    loop.call_soon([&] { busy_wait(loop, 0.15); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    CHECK(log.records().empty());
  }

  SECTION("debug mode: a slow callback that throws is reported, then logged as slow") {
    loop.set_debug(true);
    Handle slow = loop.call_soon([&] {
      busy_wait(loop, 0.15);
      throw std::runtime_error("slow and broken");
    });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    auto records = log.records();
    REQUIRE(records.size() == 2);
    CHECK(records[0].level == spdlog::level::err);
    CHECK(records[0].text.rfind("Exception in callback ", 0) == 0);
    CHECK(records[1].level == spdlog::level::warn);
    std::string repr;
    CHECK(slow_seconds(records[1].text, &repr) >= 0.15);
    CHECK(repr == slow.repr());
  }

  SECTION("turning debug mode on inside a callback does not time that callback") {
    loop.set_debug(false);
    loop.call_soon([&] { loop.set_debug(true); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    CHECK(log.records().empty());
    CHECK(loop.get_debug());
  }

  SECTION("fast callbacks are not logged") {
    loop.set_debug(true);
    loop.call_soon([] {});
    loop.call_later(0.001, [&] { loop.stop(); });
    loop.run_forever();
    CHECK(log.records().empty());
  }
}

TEST_CASE("30: the slow-callback threshold follows slow_callback_duration", "[debug]") {
  LogCapture log;
  EventLoop loop;
  loop.set_debug(true);

  loop.set_slow_callback_duration(0.02);
  loop.call_soon([&] { busy_wait(loop, 0.04); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  auto records = log.records();
  REQUIRE(records.size() == 1);
  CHECK(records[0].level == spdlog::level::warn);
  CHECK(slow_seconds(records[0].text) >= 0.04);

  loop.set_slow_callback_duration(100.0);
  loop.call_soon([&] { busy_wait(loop, 0.15); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  CHECK(log.records().size() == 1);  // nothing new
}

TEST_CASE("25/30: in debug mode the context carries the creation site", "[debug]") {
  LogCapture log;
  DebugEnv env(std::nullopt);
  EventLoop loop;
  loop.set_debug(true);
  std::vector<ExceptionContext> contexts;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { contexts.push_back(c); });

  // clang-format off
  const unsigned line = __LINE__; Handle bad = loop.call_soon([] { throw std::logic_error("x"); });
  // clang-format on
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();

  REQUIRE(contexts.size() == 1);
  const ExceptionContext& c = contexts[0];
  std::vector<std::string> keys;
  for (const auto& [key, entry] : c.items())
    keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"exception", "handle", "message", "source_traceback"});
  CHECK(c.message().rfind("Exception in callback ", 0) == 0);
  const std::string* site = c.get<std::string>("source_traceback");
  REQUIRE(site != nullptr);
  INFO(*site);
  CHECK(contains(*site, "test_debug.cpp:" + std::to_string(line)));
  CHECK(*c.handle() == bad);

  // Without debug mode the key is absent.
  contexts.clear();
  loop.set_debug(false);
  loop.call_soon([] { throw std::runtime_error("y"); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  REQUIRE(contexts.size() == 1);
  CHECK_FALSE(contexts[0].contains("source_traceback"));
}

TEST_CASE("30: Handle::source_location() is the call site", "[debug]") {
  EventLoop loop;
  // clang-format off
  const unsigned soon_line = __LINE__; Handle soon = loop.call_soon([] {});
  const unsigned later_line = __LINE__; TimerHandle later = loop.call_later(1.0, [] {});
  const unsigned at_line = __LINE__; TimerHandle at = loop.call_at(loop.time() + 1, [] {});
  const unsigned ts_line = __LINE__; Handle ts = loop.call_soon_threadsafe([] {});
  // clang-format on
  for (auto [h, line] : {std::pair<Handle, unsigned>{soon, soon_line},
                         {later, later_line},
                         {at, at_line},
                         {ts, ts_line}}) {
    std::string file = h.source_location().file_name();
    CHECK(contains(file, "test_debug.cpp"));
    CHECK(h.source_location().line() == line);
    CHECK(contains(h.repr(), "test_debug.cpp:" + std::to_string(line)));
  }
  later.cancel();
  at.cancel();
  CHECK(Handle().source_location().line() == 0);
}
