// Call-graph introspection (asyncio.graph, 3.14): capture_call_graph(task) gives the chain of
// coroutines a task is suspended in, each with the source location of its co_await, and the
// tasks awaiting it; format_call_graph / print_call_graph print it in asyncio's layout;
// format_all_tasks / print_all_tasks list every pending task of a loop with its chain, like
// `python -m asyncio ps` and `pstree` (a program can print it on demand, e.g. on SIGUSR1).
//
// How it maps: Python walks cr_await and frames; here each task coroutine's promise records
// where it last co_awaited (await_transform stores a source_location) and which task coroutine
// it runs inline (`co_await child()`), so the chain is walked from the task's outermost
// coroutine. "Awaited by" lists the tasks whose current await is on this task or future
// (asyncio's _fut_waiter); asyncio also links gather's and TaskGroup's children to their
// parent (FutureCore::add_awaited_by); so does this. Read on the loop's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asyncuv/source_location.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

/// One coroutine of a call stack (asyncio.FrameCallGraphEntry): the coroutine function and
/// where it is suspended (or, for the running one, where capture_call_graph was called).
struct FrameCallGraphEntry {
  std::string function;
  std::string file;
  std::uint32_t line = 0;
};

/// A task's (or future's) call graph (asyncio.FutureCallGraph).
struct FutureCallGraph {
  /// The task or future described.
  std::shared_ptr<detail::FutureCore> future;
  /// Innermost coroutine first (empty for a plain future or a finished task).
  std::vector<FrameCallGraphEntry> call_stack;
  /// The graphs of the tasks awaiting `future`.
  std::vector<FutureCallGraph> awaited_by;
};

/// capture_call_graph(future=None, *, limit=None): the graph of `task`, or of the current task
/// when empty (nullopt outside a task). `limit`: keep the innermost `limit` entries (a negative
/// one keeps the outermost -limit), as asyncio. `where` is the caller's location, the running
/// coroutine's entry when `task` is the current task.
std::optional<FutureCallGraph> capture_call_graph(
    const AnyTask& task = {}, std::optional<int> limit = std::nullopt,
    asyncuv::source_location where = asyncuv::source_location::current());
/// The graph of a plain future (its awaiters only).
FutureCallGraph capture_call_graph_of(const std::shared_ptr<detail::FutureCore>& future,
                                      std::optional<int> limit = std::nullopt);

/// format_call_graph: asyncio's text ("* Task(name='x', id=0x...)", "+ Call stack:",
/// "|   File 'f.cpp', line 12, in async coro()", "+ Awaited by:" nested four spaces deeper);
/// "" outside a task.
std::string format_call_graph(const AnyTask& task = {}, std::optional<int> limit = std::nullopt,
                              asyncuv::source_location where = asyncuv::source_location::current());
std::string format_call_graph(const FutureCallGraph& graph);
/// print_call_graph: format_call_graph to stdout.
void print_call_graph(const AnyTask& task = {}, std::optional<int> limit = std::nullopt,
                      asyncuv::source_location where = asyncuv::source_location::current());

/// asyncio.future_add_to_awaited_by(fut, waiter): records that `waiter` (a Future or Task)
/// waits for `fut` without awaiting it itself, so that the call graph shows it; gather and
/// TaskGroup do this for their children. future_discard_from_awaited_by forgets it.
template <class F, class W>
void future_add_to_awaited_by(const F& fut, const W& waiter) {
  fut.state()->add_awaited_by(waiter.state());
}
template <class F, class W>
void future_discard_from_awaited_by(const F& fut, const W& waiter) {
  fut.state()->discard_awaited_by(waiter.state().get());
}
/// Every pending task of `loop` (`python -m asyncio ps`): one line per task with its id, name,
/// coroutine stack (outermost first) and the tasks awaiting it, then the await tree
/// (`pstree`): tasks awaited by nobody at the top, each task's awaiters' children below.
std::string format_all_tasks(EventLoop& loop);
/// format_all_tasks to stdout.
void print_all_tasks(EventLoop& loop);

}  // namespace asyncuv
