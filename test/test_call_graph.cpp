// Semantics 68: call-graph introspection (capture_call_graph, format_call_graph,
// print_call_graph, format_all_tasks): the chain of task coroutines with each co_await's
// location, innermost first, and the tasks awaiting a task.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <optional>
#include <string>

#include "loop_support.hpp"

using asyncuv::AnyTask;
using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::FutureCallGraph;
using asyncuv::Task;

namespace {
int inner_line = 0;
int middle_line = 0;
int outer_line = 0;
int waiter_line = 0;

Task<int> graph_inner(Future<int> gate) {
  inner_line = __LINE__ + 1;
  int v = co_await gate;
  co_return v;
}

Task<int> graph_middle(Future<int> gate) {
  middle_line = __LINE__ + 1;
  int v = co_await graph_inner(gate);
  co_return v + 1;
}

Task<int> graph_outer(Future<int> gate) {
  outer_line = __LINE__ + 1;
  int v = co_await graph_middle(gate);
  co_return v + 1;
}

Task<int> graph_waiter(Task<int> target) {
  waiter_line = __LINE__ + 1;
  int v = co_await target;
  co_return v;
}

bool names(const asyncuv::FrameCallGraphEntry& e, const char* function, int line) {
  UNSCOPED_INFO(e.function << " @ " << e.file << ":" << e.line);
  // clang 16's source_location gives an empty function_name() inside a coroutine's co_await
  // (g++ and clang 14's builtins name it); file and line are exact on every compiler.
  bool function_ok = e.function.empty() || e.function.find(function) != std::string::npos;
  return function_ok && e.line == static_cast<unsigned>(line) &&
         e.file.find("test_call_graph.cpp") != std::string::npos;
}
}  // namespace

TEST_CASE("68: capture_call_graph walks a suspended task's coroutines, innermost first",
          "[call_graph][tasks]") {
  EventLoop loop;
  Future<int> gate = loop.create_future<int>();
  Task<int> task = loop.create_task(graph_outer(gate), "outer-task");
  Task<int> waiter = loop.create_task(graph_waiter(task), "waiter-task");
  loop.call_soon([&] { loop.stop(); });
  test_support::run_with_watchdog(loop);  // both tasks ran their first step

  std::optional<FutureCallGraph> graph = asyncuv::capture_call_graph(task);
  REQUIRE(graph);
  CHECK(graph->future == task.state());
  REQUIRE(graph->call_stack.size() == 3);
  CHECK(names(graph->call_stack[0], "graph_inner", inner_line));
  CHECK(names(graph->call_stack[1], "graph_middle", middle_line));
  CHECK(names(graph->call_stack[2], "graph_outer", outer_line));
  REQUIRE(graph->awaited_by.size() == 1);
  CHECK(graph->awaited_by[0].future == waiter.state());
  REQUIRE(graph->awaited_by[0].call_stack.size() == 1);
  CHECK(names(graph->awaited_by[0].call_stack[0], "graph_waiter", waiter_line));

  // limit: positive keeps the innermost entries, negative the outermost, 0 none.
  auto innermost = asyncuv::capture_call_graph(task, 1);
  REQUIRE(innermost->call_stack.size() == 1);
  CHECK(names(innermost->call_stack[0], "graph_inner", inner_line));
  auto outermost = asyncuv::capture_call_graph(task, -1);
  REQUIRE(outermost->call_stack.size() == 1);
  CHECK(names(outermost->call_stack[0], "graph_outer", outer_line));
  CHECK(asyncuv::capture_call_graph(task, 0)->call_stack.empty());

  // The awaited future: no stack, awaited by the task.
  FutureCallGraph of_gate = asyncuv::capture_call_graph_of(gate.state());
  CHECK(of_gate.call_stack.empty());
  REQUIRE(of_gate.awaited_by.size() == 1);
  CHECK(of_gate.awaited_by[0].future == task.state());

  std::string text = asyncuv::format_call_graph(task);
  CHECK_THAT(text, Catch::StartsWith("* Task(name='outer-task', id=0x"));
  CHECK_THAT(text, Catch::Contains("\n  + Call stack:\n  |   File '"));
  CHECK_THAT(text, Catch::Contains("line " + std::to_string(inner_line) + ", in async "));
  CHECK_THAT(text, Catch::Contains("\n  + Awaited by:\n    * Task(name='waiter-task', id=0x"));

  std::string all = asyncuv::format_all_tasks(loop);
  CHECK_THAT(all, Catch::Contains("outer-task"));
  CHECK_THAT(all, Catch::Contains("(awaited by waiter-task)"));
  CHECK_THAT(all, Catch::Contains("└── (T) waiter-task"));
  CHECK_THAT(all, Catch::Contains("    └── (T) outer-task"));

  gate.set_result(40);
  CHECK(test_support::run_task(loop, waiter) == 42);
  // Finished: no coroutine left to show.
  CHECK(asyncuv::capture_call_graph(task)->call_stack.empty());
}

namespace {
// The graph holds the task itself: returning it from the task would make a reference cycle
// (the task's result owning the task), so the test keeps it in a variable of its own.
Task<void> graph_of_self(int* line, std::optional<FutureCallGraph>* out) {
  co_await asyncuv::sleep(0);
  *line = __LINE__ + 1;
  *out = asyncuv::capture_call_graph();
}

Task<void> graph_of_self_nested(int* line, int* outer, std::optional<FutureCallGraph>* out) {
  *outer = __LINE__ + 1;
  co_await graph_of_self(line, out);
}
}  // namespace

TEST_CASE("68: the current task's graph ends where it was asked for", "[call_graph][tasks]") {
  EventLoop loop;
  int line = 0;
  int outer = 0;
  std::optional<FutureCallGraph> graph;
  test_support::run_task(loop, graph_of_self_nested(&line, &outer, &graph));
  REQUIRE(graph);
  REQUIRE(graph->call_stack.size() == 2);
  CHECK(names(graph->call_stack[0], "graph_of_self", line));
  CHECK(names(graph->call_stack[1], "graph_of_self_nested", outer));
  CHECK(graph->awaited_by.empty());
  graph.reset();
}

TEST_CASE("68: outside a task there is no graph", "[call_graph]") {
  CHECK_FALSE(asyncuv::capture_call_graph());
  CHECK(asyncuv::format_call_graph().empty());
  CHECK_THROWS_AS(asyncuv::capture_call_graph_of(nullptr), asyncuv::ValueError);
  EventLoop loop;
  CHECK(asyncuv::format_all_tasks(loop).find("await tree") != std::string::npos);
}

namespace {
Task<int> gated(Future<int> gate) {
  int v = co_await gate;
  co_return v;
}

Task<int> gathering_parent(Task<int> a, Task<int> b) {
  auto both = asyncuv::gather(a, b);
  auto [x, y] = co_await both;
  co_return x + y;
}

Task<int> group_parent(Future<int> gate, Task<int>* child) {
  auto body = [gate, child](asyncuv::TaskGroup& tg) -> Task<void> {
    *child = tg.create_task(gated(gate), "group-child");
    co_return;
  };
  co_await asyncuv::task_group(body);
  co_return child->result();
}
}  // namespace

TEST_CASE("68: gather's children are awaited by its future, itself awaited by the parent",
          "[call_graph][tasks]") {
  EventLoop loop;
  Future<int> gate = loop.create_future<int>();
  Task<int> a = loop.create_task(gated(gate), "child-a");
  Task<int> b = loop.create_task(gated(gate), "child-b");
  Task<int> parent = loop.create_task(gathering_parent(a, b), "gather-parent");
  loop.call_soon([&] { loop.call_soon([&] { loop.stop(); }); });
  test_support::run_with_watchdog(loop);

  for (const Task<int>& child : {a, b}) {
    std::optional<FutureCallGraph> graph = asyncuv::capture_call_graph(child);
    REQUIRE(graph);
    REQUIRE(graph->awaited_by.size() == 1);
    const FutureCallGraph& outer = graph->awaited_by[0];
    CHECK(outer.call_stack.empty());  // gather's future: no coroutine of its own
    REQUIRE(outer.awaited_by.size() == 1);
    CHECK(outer.awaited_by[0].future == parent.state());
    std::string text = asyncuv::format_call_graph(*graph);
    CHECK(text.find("* Future(id=") != std::string::npos);
    CHECK(text.find("gather-parent") != std::string::npos);
  }
  // format_all_tasks looks through the gathering future to the parent task.
  std::string ps = asyncuv::format_all_tasks(loop);
  CHECK(ps.find("child-a") != std::string::npos);
  CHECK(ps.find("(awaited by gather-parent)") != std::string::npos);

  gate.set_result(2);
  CHECK(loop.run_until_complete(parent) == 4);
  // Done children forget the gathering future.
  CHECK(asyncuv::capture_call_graph(a)->awaited_by.empty());
}

TEST_CASE("68: a TaskGroup's children are awaited by the group's parent task",
          "[call_graph][taskgroup]") {
  EventLoop loop;
  Future<int> gate = loop.create_future<int>();
  Task<int> child;
  Task<int> parent = loop.create_task(group_parent(gate, &child), "group-parent");
  loop.call_soon([&] { loop.call_soon([&] { loop.stop(); }); });
  test_support::run_with_watchdog(loop);

  REQUIRE(child);
  std::optional<FutureCallGraph> graph = asyncuv::capture_call_graph(child);
  REQUIRE(graph);
  REQUIRE(graph->awaited_by.size() == 1);
  CHECK(graph->awaited_by[0].future == parent.state());
  CHECK(asyncuv::format_all_tasks(loop).find("(awaited by group-parent)") != std::string::npos);

  gate.set_result(9);
  CHECK(loop.run_until_complete(parent) == 9);
  CHECK(asyncuv::capture_call_graph(child)->awaited_by.empty());
}

TEST_CASE("68: future_add_to_awaited_by records a waiter once; discard forgets it",
          "[call_graph]") {
  EventLoop loop;
  Future<int> fut = loop.create_future<int>();
  Future<int> waiter = loop.create_future<int>();
  asyncuv::future_add_to_awaited_by(fut, waiter);
  asyncuv::future_add_to_awaited_by(fut, waiter);
  FutureCallGraph graph = asyncuv::capture_call_graph_of(fut.state());
  REQUIRE(graph.awaited_by.size() == 1);  // a set, as asyncio's
  CHECK(graph.awaited_by[0].future == waiter.state());
  asyncuv::future_discard_from_awaited_by(fut, waiter);
  CHECK(asyncuv::capture_call_graph_of(fut.state()).awaited_by.empty());
  {
    Future<int> gone = loop.create_future<int>();
    asyncuv::future_add_to_awaited_by(fut, gone);
  }
  // Held weakly: a waiter that no longer exists is not shown.
  CHECK(asyncuv::capture_call_graph_of(fut.state()).awaited_by.empty());
}
