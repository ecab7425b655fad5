// asyncuv_first_context SCENARIO: runs one scenario in which the process's FIRST context is
// made by a callback in the middle of a batch, and exits 0 if asyncio's rules held (1 and a
// message on stderr otherwise). A process has only one first context, so each scenario needs
// a process of its own; test_first_context.cpp runs this program once per scenario.
//
// Why it matters: until the first context exists the loop runs a batch's callbacks bare,
// with no context work at all (lib/run_loop.cpp). The callback that makes the first context
// must keep what it set, and the callbacks after it in the same batch must not see it.
#include <asyncuv/asyncuv.hpp>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace {

using asyncuv::Context;
using asyncuv::ContextVar;
using asyncuv::EventLoop;
using asyncuv::Handle;

int failures = 0;

/// Stops the loop after the batch that follows this one, so that what this batch schedules
/// runs too (stop() ends run_forever after the current batch).
void stop_after_next_batch(EventLoop& loop) {
  loop.call_soon([&loop] { loop.call_soon([&loop] { loop.stop(); }); });
}

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// A callback sets a var (making the first context): it keeps the value, a callback it
// schedules sees it, and the callbacks after it in the batch run in fresh empty contexts.
void set_mid_batch() {
  ContextVar<int> var("var");
  EventLoop loop;
  std::optional<int> seen_after, seen_by_child, seen_later_in_same;
  Handle first = loop.call_soon([&] {
    var.set(1);
    loop.call_soon([&] { seen_by_child = var.get(-1); });
    seen_later_in_same = var.get(-1);
  });
  loop.call_soon([&] { seen_after = var.get(-1); });
  loop.call_soon([&] { var.set(2); });  // its own context: leaks nowhere
  stop_after_next_batch(loop);
  loop.run_forever();
  expect(seen_later_in_same == 1, "the setter sees its own value");
  expect(seen_after == -1, "the next callback of the batch does not see the value");
  expect(seen_by_child == 1, "a callback scheduled after the set sees it");
  expect(first.get_context().get(var, -1) == 1, "the setter's handle holds the context");
  expect(var.get(-1) == -1, "the thread's top level saw nothing");
  loop.close();
}

// copy_context() makes the first context without entering it; a later set in the same batch
// still belongs to its own callback only.
void copy_mid_batch() {
  ContextVar<int> var("var");
  EventLoop loop;
  std::optional<int> seen_after;
  std::optional<Context> copied;
  loop.call_soon([&] { copied = asyncuv::copy_context(); });
  loop.call_soon([&] { var.set(3); });
  loop.call_soon([&] { seen_after = var.get(-1); });
  stop_after_next_batch(loop);
  loop.run_forever();
  expect(copied.has_value() && copied->size() == 0, "the copy is empty");
  expect(seen_after == -1, "a set in one callback is not seen by the next");
  expect(var.get(-1) == -1, "the thread's top level saw nothing");
  loop.close();
}

// A callback asks a handle queued in the same batch for its context (making the first one):
// that handle then runs in it, and releasing it releases the context (LSan checks).
void get_context_of_queued_handle() {
  ContextVar<int> var("var");
  EventLoop loop;
  std::optional<Context> second_ctx;
  Handle second;
  loop.call_soon([&] { second_ctx = second.get_context(); });
  second = loop.call_soon([&] { var.set(4); });
  stop_after_next_batch(loop);
  loop.run_forever();
  expect(second_ctx.has_value() && second_ctx->get(var, -1) == 4,
         "the queued handle ran in the context get_context gave out");
  expect(var.get(-1) == -1, "the thread's top level saw nothing");
  loop.close();
}

// A callback raising after it made the first context: the custom handler runs in that
// context (3.12) and sees the value; the next callback of the batch does not.
void raise_after_set() {
  ContextVar<int> var("var");
  EventLoop loop;
  std::optional<int> in_handler, seen_after;
  loop.set_exception_handler(
      [&](EventLoop&, const asyncuv::ExceptionContext&) { in_handler = var.get(-1); });
  loop.call_soon([&] {
    var.set(5);
    throw asyncuv::ValueError("boom");
  });
  loop.call_soon([&] { seen_after = var.get(-1); });
  stop_after_next_batch(loop);
  loop.run_forever();
  expect(in_handler == 5, "the exception handler ran in the failing callback's context");
  expect(seen_after == -1, "the next callback does not see the value");
  expect(var.get(-1) == -1, "the thread's top level saw nothing");
  loop.close();
}

}  // namespace

int main(int argc, char** argv) {
  const char* scenario = argc > 1 ? argv[1] : "";
  if (std::strcmp(scenario, "set") == 0) {
    set_mid_batch();
  } else if (std::strcmp(scenario, "copy") == 0) {
    copy_mid_batch();
  } else if (std::strcmp(scenario, "get_context") == 0) {
    get_context_of_queued_handle();
  } else if (std::strcmp(scenario, "raise") == 0) {
    raise_after_set();
  } else {
    std::fprintf(stderr, "usage: asyncuv_first_context set|copy|get_context|raise\n");
    return 2;
  }
  return failures == 0 ? 0 : 1;
}
