// Ready queue and handles: scenarios 1-4 of asyncio-semantics.md, plus the Handle API.
#include <catch2/catch.hpp>

#include <asyncuv/event_loop.hpp>
#include <asyncuv/events.hpp>
#include <asyncuv/exception_context.hpp>
#include <asyncuv/exceptions.hpp>
#include <asyncuv/futures.hpp>
#include <asyncuv/handle.hpp>
#include <asyncuv/tasks.hpp>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::Handle;
using asyncuv::TimerHandle;

namespace rq {

/// A named callable, so that callback descriptions are predictable.
struct Record {
  std::vector<std::string>* out;
  void operator()(int n, const std::string& s) const { out->push_back(std::to_string(n) + s); }
};

/// Runs exactly one batch: stop() before run_forever() (scenario 7).
void run_once(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

/// A callable whose copy constructor throws once armed.
struct ThrowingCopy {
  std::shared_ptr<int> token = std::make_shared<int>(0);
  bool throw_on_copy = false;
  ThrowingCopy() = default;
  ThrowingCopy(const ThrowingCopy& o) : token(o.token), throw_on_copy(o.throw_on_copy) {
    if (throw_on_copy) throw std::runtime_error("copy failed");
  }
  void operator()() const {}
};

}  // namespace rq

TEST_CASE("1: call_soon runs callbacks FIFO with positional arguments", "[ready]") {
  EventLoop loop;
  std::vector<std::string> seen;
  auto cb = [&](const std::string& s) { seen.push_back(s); };
  loop.call_soon(cb, "a");
  loop.call_soon(cb, std::string("b"));
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"a", "b"});
}

TEST_CASE("1: call_soon binds several arguments by value, in order", "[ready]") {
  EventLoop loop;
  std::vector<std::string> seen;
  std::string text = "x";
  int n = 1;
  loop.call_soon(rq::Record{&seen}, n, text);
  // The arguments were copied at scheduling time.
  n = 2;
  text = "changed";
  loop.call_soon(
      [&](int a, double b, const std::string& c) {
        seen.push_back(std::to_string(a) + "," + std::to_string(static_cast<int>(b * 10)) + "," +
                       c);
      },
      7, 2.5, std::string("z"));
  rq::run_once(loop);
  CHECK(seen == std::vector<std::string>{"1x", "7,25,z"});
}

TEST_CASE("1: 1000 callbacks keep FIFO order across the ring buffer's growth", "[ready]") {
  EventLoop loop;
  std::vector<int> seen;
  for (int i = 0; i < 1000; ++i)
    loop.call_soon([&seen, i] { seen.push_back(i); });
  rq::run_once(loop);
  REQUIRE(seen.size() == 1000);
  for (int i = 0; i < 1000; ++i)
    REQUIRE(seen[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("2: a batch is a snapshot; what it schedules runs in the next run", "[ready]") {
  EventLoop loop;
  std::vector<std::string> seen;
  loop.call_soon([&] {
    seen.push_back("A");
    loop.call_soon([&] { seen.push_back("A_child"); });
  });
  loop.call_soon([&] { seen.push_back("B"); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"A", "B"});

  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"A", "B", "A_child"});
}

TEST_CASE("2: callbacks scheduled by a batch wait for the next iteration", "[ready]") {
  EventLoop loop;
  std::vector<std::uint64_t> iterations;
  // Each callback reschedules the next: three callbacks need three iterations.
  loop.call_soon([&] {
    iterations.push_back(loop.iteration_count());
    loop.call_soon([&] {
      iterations.push_back(loop.iteration_count());
      loop.call_soon([&] {
        iterations.push_back(loop.iteration_count());
        loop.stop();
      });
    });
  });
  loop.run_forever();
  REQUIRE(iterations.size() == 3);
  CHECK(iterations[1] == iterations[0] + 1);
  CHECK(iterations[2] == iterations[1] + 1);
}

TEST_CASE("3: a handle cancelled before it runs never runs", "[ready][cancel]") {
  EventLoop loop;
  std::vector<std::string> seen;
  Handle h = loop.call_soon([&] { seen.push_back("cancelled"); });
  loop.call_soon([&] { seen.push_back("kept"); });
  CHECK_FALSE(h.cancelled());
  h.cancel();
  CHECK(h.cancelled());
  rq::run_once(loop);
  CHECK(seen == std::vector<std::string>{"kept"});
  CHECK(h.cancelled());
}

TEST_CASE("3: a callback cancelling a later handle of the same batch makes it skip",
          "[ready][cancel]") {
  EventLoop loop;
  std::vector<std::string> seen;
  Handle later;
  loop.call_soon([&] {
    seen.push_back("first");
    later.cancel();
  });
  later = loop.call_soon([&] { seen.push_back("later"); });
  loop.call_soon([&] { seen.push_back("last"); });
  rq::run_once(loop);
  CHECK(seen == std::vector<std::string>{"first", "last"});
  CHECK(later.cancelled());
}

TEST_CASE("3: cancel() releases the callback's captures at once", "[ready][cancel]") {
  EventLoop loop;
  auto token = std::make_shared<int>(1);
  Handle h = loop.call_soon([token] {});
  CHECK(token.use_count() == 2);
  h.cancel();
  CHECK(token.use_count() == 1);
  h.cancel();  // twice is fine
  CHECK(h.cancelled());
  rq::run_once(loop);
}

TEST_CASE("4: cancel() after the handle ran: no error, no re-run, cancelled() true",
          "[ready][cancel]") {
  EventLoop loop;
  int runs = 0;
  auto token = std::make_shared<int>(1);
  Handle h = loop.call_soon([&runs, token] { ++runs; });
  rq::run_once(loop);
  CHECK(runs == 1);
  CHECK_FALSE(h.cancelled());
  // The loop released the callable once it ran.
  CHECK(token.use_count() == 1);
  h.cancel();
  CHECK(h.cancelled());
  rq::run_once(loop);
  CHECK(runs == 1);
}

TEST_CASE("4: cancel() from inside its own callback", "[ready][cancel]") {
  EventLoop loop;
  auto token = std::make_shared<int>(1);
  Handle self;
  std::vector<std::string> seen;
  self = loop.call_soon([&, token] {
    self.cancel();
    // The running callable (and what it captured) is still alive.
    seen.push_back("ran " + std::to_string(*token) + " " + std::to_string(self.cancelled()));
  });
  rq::run_once(loop);
  CHECK(seen == std::vector<std::string>{"ran 1 1"});
  CHECK(self.cancelled());
  CHECK(token.use_count() == 1);
  rq::run_once(loop);
  CHECK(seen.size() == 1);
}

TEST_CASE("4: a timer cancelling itself from its own callback", "[ready][cancel]") {
  EventLoop loop;
  TimerHandle self;
  int runs = 0;
  self = loop.call_later(0, [&] {
    ++runs;
    self.cancel();
    loop.stop();
  });
  double when = self.when();
  loop.run_forever();
  CHECK(runs == 1);
  CHECK(self.cancelled());
  CHECK(self.when() == when);
}

TEST_CASE("Handle: repr and callback_repr", "[handle]") {
  EventLoop loop;
  std::vector<std::string> seen;

  SECTION("with arguments: the callable's name and Python-like argument reprs") {
    Handle h = loop.call_soon(rq::Record{&seen}, 1, std::string("a"));
    CHECK(h.callback_repr() == "rq::Record(1, 'a')");
    CHECK(h.repr() == "<Handle rq::Record(1, 'a')>");
    h.cancel();
    CHECK(h.repr() == "<Handle cancelled>");
  }

  SECTION("without arguments: the place call_soon was called") {
    int line = __LINE__ + 1;
    Handle h = loop.call_soon(std::function<void()>([] {}));
    std::string where = "test_ready_queue.cpp:" + std::to_string(line);
    std::string text = h.callback_repr();
    CHECK_THAT(text, Catch::StartsWith("std::function<void ()>() at "));
    CHECK_THAT(text, Catch::EndsWith(where));
    CHECK(h.repr() == "<Handle " + text + ">");
    CHECK(h.source_location().line() == static_cast<unsigned>(line));
    CHECK_THAT(h.source_location().file_name(), Catch::EndsWith("test_ready_queue.cpp"));
  }

  SECTION("bools and strings are shown as Python shows them") {
    Handle h = loop.call_soon([](bool, const char*, int) {}, true, "s", -3);
    CHECK_THAT(h.callback_repr(), Catch::EndsWith("(True, 's', -3)"));
  }

  SECTION("a timer shows its deadline") {
    TimerHandle t = loop.call_at(1234.5, rq::Record{&seen}, 2, std::string("b"));
    CHECK(t.repr() == "<TimerHandle when=1234.5 rq::Record(2, 'b')>");
    t.cancel();
    CHECK(t.repr() == "<TimerHandle cancelled when=1234.5>");
  }

  SECTION("an empty handle") {
    Handle h;
    CHECK_FALSE(h);
    CHECK(h.repr() == "<Handle empty>");
    CHECK(h.callback_repr().empty());
    CHECK_FALSE(h.cancelled());
    h.cancel();  // no-op
    CHECK_FALSE(h.cancelled());
    CHECK(TimerHandle().when() == 0.0);
  }
  rq::run_once(loop);
}

TEST_CASE("Handle: copies refer to the same callback", "[handle]") {
  EventLoop loop;
  int runs = 0;
  Handle a = loop.call_soon([&] { ++runs; });
  Handle b = a;
  CHECK(a == b);
  CHECK(a);
  CHECK(b);
  Handle c = loop.call_soon([&] { ++runs; });
  CHECK_FALSE(a == c);

  b.cancel();
  CHECK(a.cancelled());

  // Copy-assignment, self-assignment and moves keep the reference count right (ASan checks).
  Handle d;
  d = c;
  CHECK(d == c);
  auto& d_alias = d;
  d = d_alias;
  CHECK(d == c);
  Handle e = std::move(d);
  CHECK_FALSE(d);  // NOLINT(bugprone-use-after-move): moved-from handles are empty
  CHECK(e == c);
  Handle f;
  f = std::move(e);
  CHECK_FALSE(e);  // NOLINT(bugprone-use-after-move)
  CHECK(f == c);
  auto& f_alias = f;
  f = std::move(f_alias);
  CHECK(f == c);

  TimerHandle t = loop.call_later(100, [&] { ++runs; });
  TimerHandle t2 = t;
  Handle as_base = t;
  CHECK(as_base == t2);
  CHECK(t2.when() == t.when());
  as_base.cancel();
  CHECK(t.cancelled());

  rq::run_once(loop);
  CHECK(runs == 1);  // only c
}

TEST_CASE("Handle: a handle outliving its loop", "[handle]") {
  Handle h;
  TimerHandle t;
  Handle ran;
  auto token = std::make_shared<int>(1);
  double when = 0;
  {
    EventLoop loop;
    ran = loop.call_soon([] {});
    rq::run_once(loop);
    h = loop.call_soon([token] {});
    t = loop.call_later(10, [token] {});
    when = t.when();
    CHECK(token.use_count() == 3);
  }
  // The loop's destruction closed it and released the pending callables.
  CHECK(token.use_count() == 1);
  CHECK_FALSE(h.cancelled());
  CHECK_FALSE(t.cancelled());
  CHECK(t.when() == when);
  h.cancel();
  t.cancel();
  ran.cancel();
  CHECK(h.cancelled());
  CHECK(t.cancelled());
  CHECK(ran.cancelled());
  CHECK(t.repr() == "<TimerHandle cancelled when=" + [&] {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", when);
    return std::string(buf);
  }() + ">");
}

TEST_CASE("Handle: bad input", "[handle]") {
  EventLoop loop;
  const double nan = std::numeric_limits<double>::quiet_NaN();

  SECTION("a NaN deadline is a ValueError and schedules nothing") {
    int runs = 0;
    REQUIRE_THROWS_AS(loop.call_at(nan, [&] { ++runs; }), asyncuv::ValueError);
    REQUIRE_THROWS_WITH(loop.call_later(nan, [&] { ++runs; }), "timer deadline is NaN");
    REQUIRE_THROWS_WITH(loop.call_later(
                            nan, [&](int) { ++runs; }, 1),
                        "timer deadline is NaN");
    rq::run_once(loop);
    CHECK(runs == 0);
  }

  SECTION("an infinite delay is a valid, cancellable timer") {
    TimerHandle t = loop.call_later(std::numeric_limits<double>::infinity(), [] {});
    CHECK(std::isinf(t.when()));
    t.cancel();
    rq::run_once(loop);
  }

  SECTION("a callable whose copy throws: call_soon throws, nothing is queued or leaked") {
    rq::ThrowingCopy callable;
    callable.throw_on_copy = true;
    REQUIRE_THROWS_WITH(loop.call_soon(callable), "copy failed");
    REQUIRE_THROWS_WITH(loop.call_later(1, callable), "copy failed");
    REQUIRE_THROWS_WITH(loop.call_soon([](const rq::ThrowingCopy&) {}, callable), "copy failed");
    REQUIRE_THROWS_WITH(loop.call_at(
                            1, [](const rq::ThrowingCopy&) {}, callable),
                        "copy failed");
    CHECK(callable.token.use_count() == 1);
    std::uint64_t before = loop.iteration_count();
    rq::run_once(loop);
    CHECK(loop.iteration_count() == before + 1);
  }

  SECTION("a null function pointer or an empty std::function is a TypeError") {
    void (*null_fn)() = nullptr;
    void (*null_fn1)(int) = nullptr;
    void (rq::Record::*null_member)(int, const std::string&) const = nullptr;
    const std::string message = "a callable object was expected, got nullptr";
    REQUIRE_THROWS_AS(loop.call_soon(null_fn), asyncuv::TypeError);
    REQUIRE_THROWS_WITH(loop.call_soon(null_fn1, 1), message);
    REQUIRE_THROWS_WITH(loop.call_soon(std::function<void()>()), message);
    REQUIRE_THROWS_WITH(loop.call_later(1, null_fn), message);
    REQUIRE_THROWS_WITH(loop.call_at(1, std::function<void(int)>(), 1), message);
    REQUIRE_THROWS_WITH(loop.call_soon_threadsafe(null_fn), message);
    rq::Record record{nullptr};
    REQUIRE_THROWS_WITH(loop.call_soon(null_member, &record, 1, std::string()), message);
    std::uint64_t before = loop.iteration_count();
    rq::run_once(loop);
    CHECK(loop.iteration_count() == before + 1);
  }

  SECTION("a member function pointer with its object is called like std::invoke") {
    std::vector<std::string> seen;
    rq::Record record{&seen};
    loop.call_soon(&rq::Record::operator(), &record, 5, std::string("m"));
    rq::run_once(loop);
    CHECK(seen == std::vector<std::string>{"5m"});
  }

  SECTION("an exception from a callback goes to the handler; the batch goes on") {
    std::vector<std::string> seen;
    std::vector<std::string> messages;
    loop.set_exception_handler(
        [&](EventLoop&, const asyncuv::ExceptionContext& c) { messages.push_back(c.message()); });
    loop.call_soon(std::function<void()>([] { throw std::runtime_error("boom"); }));
    loop.call_soon([&] { seen.push_back("after"); });
    rq::run_once(loop);
    CHECK(seen == std::vector<std::string>{"after"});
    REQUIRE(messages.size() == 1);
    CHECK_THAT(messages[0], Catch::StartsWith("Exception in callback std::function<void ()>()"));
  }
}
