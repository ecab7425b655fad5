// Semantics 61-63: contextvars (ContextVar, Token, Context, copy_context) and the loop's
// context rules: callbacks run in the context they were scheduled with, tasks in their own
// copy for every step, the custom exception handler in the failing handle's or task's context.
//
// Each test that sets variables does so inside Context().run(...) or a task/callback, or in a
// thread of its own, so the main thread's top-level context stays empty between tests.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "loop_support.hpp"

using asyncuv::Context;
using asyncuv::ContextVar;
using asyncuv::EventLoop;
using asyncuv::Task;

TEST_CASE("62: ContextVar get with and without defaults", "[contexts]") {
  ContextVar<int> plain("plain");
  ContextVar<std::string> with_default("with_default", "dflt");
  Context().run([&] {
    CHECK(plain.name() == "plain");
    CHECK_THROWS_AS(plain.get(), asyncuv::LookupError);
    CHECK_THROWS_WITH(plain.get(), "<ContextVar name='plain'>");
    CHECK(plain.get(5) == 5);
    CHECK(with_default.get() == "dflt");
    CHECK(with_default.get("call") == "call");  // the call's default wins over the var's
    auto token = plain.set(1);
    CHECK(plain.get() == 1);
    CHECK(plain.get(5) == 1);
    CHECK(token.old_value() == asyncuv::Token<int>::MISSING);
    auto second = plain.set(2);
    CHECK(second.old_value() == std::optional<int>(1));
    CHECK(second.var() == plain);
    plain.reset(second);
    CHECK(plain.get() == 1);
    plain.reset(token);
    CHECK_THROWS_AS(plain.get(), asyncuv::LookupError);
  });
  // Nothing leaked out of the context that was run.
  CHECK(plain.get(-1) == -1);
}

TEST_CASE("62: reset misuse raises asyncio's errors", "[contexts]") {
  ContextVar<int> var("var");
  ContextVar<int> other("other");
  Context().run([&] {
    auto token = var.set(1);
    var.reset(token);
    CHECK(token.used());
    CHECK_THROWS_AS(var.reset(token), asyncuv::RuntimeError);
    CHECK_THROWS_WITH(var.reset(token),
                      "<Token used var=<ContextVar name='var'>> has already been used once");

    auto mine = var.set(2);
    CHECK_THROWS_AS(other.reset(mine), asyncuv::ValueError);
    CHECK_THROWS_WITH(other.reset(mine), Catch::Contains("was created by a different ContextVar"));
    CHECK_FALSE(mine.used());

    // A token made in another context.
    asyncuv::Token<int> foreign = Context().run([&] { return var.set(3); });
    CHECK_THROWS_AS(var.reset(foreign), asyncuv::ValueError);
    CHECK_THROWS_WITH(var.reset(foreign), Catch::Contains("was created in a different Context"));
    CHECK(var.get() == 2);
  });
}

TEST_CASE("62: Context.run, copies and entering twice", "[contexts]") {
  ContextVar<int> var("var");
  Context ctx;
  CHECK(ctx.size() == 0);
  ctx.run([&] { var.set(1); });
  CHECK(ctx.size() == 1);
  CHECK(ctx.contains(var));
  CHECK(ctx.get(var, 0) == 1);
  CHECK(var.get(0) == 0);  // not set outside

  // A copy is independent from then on, both ways.
  Context copy = ctx.copy();
  CHECK_FALSE(copy == ctx);
  copy.run([&] { var.set(2); });
  CHECK(ctx.get(var, 0) == 1);
  CHECK(copy.get(var, 0) == 2);
  ctx.run([&] { var.set(3); });
  CHECK(copy.get(var, 0) == 2);

  // copy_context() inside run copies the entered context.
  Context inner = ctx.run([] { return asyncuv::copy_context(); });
  CHECK(inner.get(var, 0) == 3);

  // Entering a context that is entered already: RuntimeError, as CPython.
  ctx.run([&] {
    CHECK_THROWS_AS(ctx.run([] {}), asyncuv::RuntimeError);
    CHECK_THROWS_WITH(ctx.run([] {}), Catch::Contains("is already entered"));
    CHECK(var.get() == 3);  // still inside after the failed entry
  });
  // An exception leaves the context.
  CHECK_THROWS_AS(ctx.run([] { throw asyncuv::ValueError("x"); }), asyncuv::ValueError);
  CHECK(var.get(0) == 0);
  ctx.run([&] { CHECK(var.get() == 3); });
  CHECK(ctx.run([](int a, int b) { return a + b; }, 2, 3) == 5);
}

TEST_CASE("62: a top-level set is the thread's own; copy_context is a snapshot", "[contexts]") {
  ContextVar<int> var("var");
  std::optional<int> seen_in_copy, seen_after, seen_in_other_thread;
  std::thread([&] {
    var.set(1);
    Context snapshot = asyncuv::copy_context();
    var.set(2);
    seen_in_copy = snapshot.get(var, 0);
    seen_after = var.get();
  }).join();
  std::thread([&] { seen_in_other_thread = var.get(0); }).join();
  CHECK(seen_in_copy == 1);
  CHECK(seen_after == 2);
  CHECK(seen_in_other_thread == 0);
  CHECK(var.get(0) == 0);
}

TEST_CASE("61: call_soon runs the callback in a copy taken when it was scheduled", "[contexts]") {
  EventLoop loop;
  ContextVar<int> var("var");
  std::vector<int> seen;
  Context scheduler;
  scheduler.run([&] {
    var.set(1);
    loop.call_soon([&] {
      seen.push_back(var.get(0));
      var.set(10);  // changes the callback's copy only
      seen.push_back(var.get(0));
    });
    var.set(2);  // after scheduling: not seen by the callback
    loop.call_soon([&] { seen.push_back(var.get(0)); });
  });
  loop.call_soon([&] {
    seen.push_back(var.get(0));  // scheduled from the empty context
    var.set(20);
  });
  loop.call_soon([&] {
    seen.push_back(var.get(0));  // the previous callback's set did not leak
    loop.stop();
  });
  test_support::run_with_watchdog(loop);
  CHECK(seen == std::vector<int>{1, 10, 2, 0, 0});
  CHECK(scheduler.get(var, 0) == 2);
  CHECK(var.get(0) == 0);
}

TEST_CASE("61: call_soon, call_later and call_at with context= run in that context", "[contexts]") {
  EventLoop loop;
  ContextVar<std::string> var("var");
  Context ctx;
  ctx.run([&] { var.set("given"); });
  std::vector<std::string> seen;
  asyncuv::Handle h = loop.call_soon(
      ctx,
      [&](int n) {
        seen.push_back(var.get("none") + std::to_string(n));
        var.set("changed by callback");
      },
      1);
  CHECK(h.get_context() == ctx);
  asyncuv::TimerHandle later = loop.call_later(0.0, ctx, [&] { seen.push_back(var.get("none")); });
  CHECK(later.get_context() == ctx);
  loop.call_at(loop.time(), ctx, [&] {
    seen.push_back(var.get("none"));
    loop.stop();
  });
  test_support::run_with_watchdog(loop);
  CHECK(seen == std::vector<std::string>{"given1", "changed by callback", "changed by callback"});
  CHECK(ctx.get(var, std::string()) == "changed by callback");
}

TEST_CASE("61: add_done_callback runs in a copy, or in the context= given", "[contexts]") {
  EventLoop loop;
  ContextVar<std::string> var("var");
  Context given;
  given.run([&] { var.set("given"); });
  asyncuv::Future<int> fut = loop.create_future<int>();
  std::vector<std::string> seen;
  Context registering;
  registering.run([&] {
    var.set("at registration");
    fut.add_done_callback([&](asyncuv::Future<int> f) {
      seen.push_back(var.get("none") + std::to_string(f.result()));
      var.set("changed in the copy");
    });
    fut.add_done_callback(
        [&](asyncuv::Future<int> f) {
          seen.push_back(var.get("none") + std::to_string(f.result()));
          var.set("changed by callback");
        },
        given);
    var.set("after registration");
  });
  loop.call_soon([&] { fut.set_result(7); });
  loop.call_soon([&] { loop.call_soon([&] { loop.stop(); }); });
  test_support::run_with_watchdog(loop);
  CHECK(seen == std::vector<std::string>{"at registration7", "given7"});
  // The copy's change stayed in the copy; the given context itself was changed.
  CHECK(registering.get(var, std::string()) == "after registration");
  CHECK(given.get(var, std::string()) == "changed by callback");
}

TEST_CASE("61: a task's add_done_callback with context= runs in that context",
          "[contexts][tasks]") {
  EventLoop loop;
  ContextVar<int> var("var");
  Context given;
  given.run([&] { var.set(11); });
  auto body = []() -> Task<int> { co_return 5; };
  Task<int> task = loop.create_task(body());
  std::optional<int> seen;
  // Done already when added: scheduled at once, still in `given`.
  loop.run_until_complete(task);
  task.add_done_callback([&](Task<int> t) { seen = var.get(-1) + t.result(); }, given);
  loop.call_soon([&] { loop.stop(); });
  test_support::run_with_watchdog(loop);
  CHECK(seen == 16);
}

TEST_CASE("61: Handle.get_context of a captured context", "[contexts]") {
  EventLoop loop;
  ContextVar<int> var("var");
  asyncuv::Handle h = Context().run([&] {
    var.set(4);
    return loop.call_later(0.0, [&] {
      var.set(5);
      loop.stop();
    });
  });
  Context captured = h.get_context();
  CHECK(captured.get(var, 0) == 4);
  CHECK(h.get_context() == captured);  // the same object every time
  test_support::run_with_watchdog(loop);
  CHECK(captured.get(var, 0) == 5);  // the callback ran in it
  CHECK(asyncuv::Handle().get_context().size() == 0);

  // A handle scheduled from the empty context: its (empty) context keeps its identity.
  asyncuv::Handle empty = loop.call_soon([&] { loop.stop(); });
  Context fresh = empty.get_context();
  CHECK(fresh.size() == 0);
  CHECK(empty.get_context() == fresh);
  test_support::run_with_watchdog(loop);
}

TEST_CASE("61: call_soon_threadsafe copies the calling thread's context", "[contexts]") {
  EventLoop loop;
  ContextVar<int> var("var");
  std::optional<int> seen;
  std::thread poster([&] {
    var.set(7);
    loop.call_soon_threadsafe([&] {
      seen = var.get(0);
      loop.stop();
    });
  });
  test_support::run_with_watchdog(loop);
  poster.join();
  CHECK(seen == 7);
}

namespace {
Task<int> read_twice(ContextVar<int> var, int set_to) {
  int before = var.get(0);
  var.set(set_to);
  co_await asyncuv::sleep(0);
  co_await asyncuv::sleep(0.001);
  int after = var.get(0);  // the task's own sets survive every step
  co_return before * 1000 + after;
}

Task<int> spawn_child(EventLoop& loop, ContextVar<int> var) {
  var.set(3);
  Task<int> child = loop.create_task(read_twice(var, 4));
  int child_result = co_await child;
  co_return child_result * 10 + var.get(0);  // the child's set stays in the child
}
}  // namespace

TEST_CASE("61: each task runs every step in its own copy", "[contexts][tasks]") {
  EventLoop loop;
  ContextVar<int> var("var");
  Context outer;
  auto results = outer.run([&] {
    var.set(1);
    Task<int> a = loop.create_task(read_twice(var, 11));
    Task<int> b = loop.create_task(read_twice(var, 22));
    var.set(2);  // after create_task: neither task sees it
    return std::make_pair(a, b);
  });
  Task<int> a = results.first;
  Task<int> b = results.second;
  CHECK(test_support::run_task(loop, a) == 1011);
  CHECK(test_support::run_task(loop, b) == 1022);  // a's set is not b's
  CHECK(outer.get(var, 0) == 2);
  CHECK(a.get_context().get(var, 0) == 11);
  CHECK(a.get_context() == a.get_context());

  // A child task copies its parent's context at creation.
  CHECK(test_support::run_task(loop, spawn_child(loop, var)) == 30043);
}

TEST_CASE("61: create_task with context= shares that context", "[contexts][tasks]") {
  EventLoop loop;
  ContextVar<int> var("var");
  Context ctx;
  ctx.run([&] { var.set(5); });
  Task<int> t = loop.create_task(read_twice(var, 6), ctx);
  CHECK(t.get_context() == ctx);
  CHECK(test_support::run_task(loop, t) == 5006);
  CHECK(ctx.get(var, 0) == 6);  // the task's set went into the context it was given

  // With a task factory, and eagerly.
  Context eager_ctx;
  loop.set_task_factory(asyncuv::eager_task_factory);
  auto body = [&]() -> Task<int> {
    Task<int> e = loop.create_task(read_twice(var, 8), eager_ctx);
    CHECK(eager_ctx.get(var, 0) == 8);  // the eager first step already ran in it
    co_return co_await e;
  };
  CHECK(test_support::run_task(loop, body()) == 8);
  loop.set_task_factory({});
}

TEST_CASE("63: the exception handler runs in the failing handle's context", "[contexts]") {
  EventLoop loop;
  ContextVar<std::string> var("var");
  std::vector<std::string> seen;
  loop.set_exception_handler([&](EventLoop&, const asyncuv::ExceptionContext& context) {
    seen.push_back(context.message().substr(0, 12) + ":" + var.get("unset"));
  });
  Context ctx;
  ctx.run([&] { var.set("scheduler"); });
  loop.call_soon(ctx, [&] {
    var.set("callback");
    throw asyncuv::ValueError("boom");
  });
  loop.call_soon([&] { throw asyncuv::ValueError("boom"); });  // a fresh empty context
  loop.call_soon([&] { loop.stop(); });
  test_support::run_with_watchdog(loop);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == "Exception in:callback");
  CHECK(seen[1] == "Exception in:unset");
  CHECK(var.get("unset") == "unset");
}

namespace {
Task<void> set_and_raise(ContextVar<std::string> var) {
  var.set("task value");
  co_await asyncuv::sleep(0);
  throw asyncuv::ValueError("task boom");
}
}  // namespace

TEST_CASE("63: the exception handler runs in the failing task's context", "[contexts][tasks]") {
  EventLoop loop;
  ContextVar<std::string> var("var");
  std::vector<std::string> seen;
  loop.set_exception_handler([&](EventLoop&, const asyncuv::ExceptionContext& context) {
    seen.push_back(context.message() + ":" + var.get("unset"));
  });
  {
    Task<void> t = loop.create_task(set_and_raise(var));
    loop.call_later(0.01, [&] { loop.stop(); });
    test_support::run_with_watchdog(loop);
    REQUIRE(t.done());
  }  // the last reference goes: "Task exception was never retrieved"
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == "Task exception was never retrieved:task value");
}
