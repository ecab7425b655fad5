// Call-graph introspection (asyncio.graph): walks a task's chain of task coroutines through
// the links their promises keep (TaskPromiseBase::awaiting_child, await_site) and finds the
// awaiting tasks by scanning the loop's pending tasks for the ones whose current await
// (asyncio's _fut_waiter) is the future in question, adding the waiters gather and TaskGroup
// record (FutureCore::add_awaited_by). Nothing here runs unless asked for.
#include "asyncuv/graph.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>

namespace asyncuv {

namespace {

/// g++ names a coroutine's body "R f(f(args)::_Z...Frame*)": keep the inner "f(args)".
std::string coroutine_name(const char* function) {
  std::string name = function != nullptr ? function : "";
  std::size_t marker = name.find("::_Z");
  std::size_t open = name.find('(');
  if (marker != std::string::npos && open != std::string::npos && open < marker) {
    name = name.substr(open + 1, marker - open - 1);
  }
  std::size_t paren = name.find('(');
  if (paren != std::string::npos) name.resize(paren);
  // Drop a return type ("asyncuv::Task<int> ns::f"): the last space outside template brackets.
  int depth = 0;
  std::size_t last_space = std::string::npos;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '<') ++depth;
    if (name[i] == '>') --depth;
    if (name[i] == ' ' && depth == 0) last_space = i;
  }
  return last_space == std::string::npos ? name : name.substr(last_space + 1);
}

FrameCallGraphEntry entry_at(const asyncuv::source_location& where) {
  FrameCallGraphEntry e;
  e.function = coroutine_name(where.function_name());
  e.file = where.file_name() != nullptr ? where.file_name() : "";
  e.line = static_cast<std::uint32_t>(where.line());
  return e;
}

/// Outermost first, as the promises link them.
std::vector<FrameCallGraphEntry> stack_of(const detail::TaskStateBase& task,
                                          const asyncuv::source_location* running_at) {
  std::vector<FrameCallGraphEntry> stack;
  for (const detail::TaskPromiseBase* p = task.root_promise(); p != nullptr;
       p = p->awaiting_child) {
    stack.push_back(entry_at(p->await_site));
  }
  // The running coroutine's last await is behind it: it is where the graph was asked for.
  if (running_at != nullptr && !stack.empty()) stack.back() = entry_at(*running_at);
  return stack;
}

void apply_limit(std::vector<FrameCallGraphEntry>& stack, std::optional<int> limit) {
  if (!limit) return;
  auto keep = static_cast<std::size_t>(*limit < 0 ? -*limit : *limit);
  if (keep >= stack.size()) return;
  if (*limit > 0) {
    stack.erase(stack.begin(), stack.end() - static_cast<std::ptrdiff_t>(keep));  // innermost
  } else {
    stack.resize(keep);  // outermost
  }
}

/// What waits for `future`: the tasks whose current await is on it, then the waiters recorded
/// with add_awaited_by (gather's outer future, a TaskGroup's parent task), each once.
std::vector<std::shared_ptr<detail::FutureCore>> awaiting(const detail::FutureCore& future) {
  std::vector<std::shared_ptr<detail::FutureCore>> out;
  if (EventLoop* loop = future.loop_if_alive()) {
    for (const AnyTask& t : all_tasks(*loop)) {
      if (t.state()->awaited_future() == &future) out.push_back(t.state());
    }
  }
  for (std::shared_ptr<detail::FutureCore>& w : future.awaited_by()) {
    if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(std::move(w));
  }
  return out;
}

/// The tasks waiting for `future`, looking through plain futures that wait for it (a task
/// awaiting gather's outer future waits for each child).
void awaiting_tasks(const detail::FutureCore& future, std::vector<detail::TaskStateBase*>& out,
                    int depth = 0) {
  if (depth >= 256) return;
  for (const std::shared_ptr<detail::FutureCore>& w : awaiting(future)) {
    if (auto* task = dynamic_cast<detail::TaskStateBase*>(w.get())) {
      if (std::find(out.begin(), out.end(), task) == out.end()) out.push_back(task);
    } else {
      awaiting_tasks(*w, out, depth + 1);
    }
  }
}

FutureCallGraph build(const std::shared_ptr<detail::FutureCore>& future, std::optional<int> limit,
                      const asyncuv::source_location* running_at, int depth) {
  FutureCallGraph graph;
  graph.future = future;
  auto* task = dynamic_cast<detail::TaskStateBase*>(future.get());
  if (task != nullptr && !(limit && *limit == 0)) {
    graph.call_stack = stack_of(*task, task == detail::current_task_state() ? running_at : nullptr);
    apply_limit(graph.call_stack, limit);
    std::reverse(graph.call_stack.begin(), graph.call_stack.end());  // innermost first
  }
  // A cycle cannot form (a task awaiting itself is refused) but the depth bound keeps a
  // corrupted graph from recursing forever.
  if (depth < 256) {
    for (const std::shared_ptr<detail::FutureCore>& waiter : awaiting(*future)) {
      graph.awaited_by.push_back(build(waiter, limit, nullptr, depth + 1));
    }
  }
  return graph;
}

std::string hex_id(const void* p) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", p);
  return text;
}

std::string describe_future(const FutureCallGraph& g) {
  if (auto* task = dynamic_cast<const detail::TaskStateBase*>(g.future.get())) {
    return "Task(name='" + task->name() + "', id=" + hex_id(task) + ")";
  }
  return "Future(id=" + hex_id(g.future.get()) + ")";
}

void render(const FutureCallGraph& g, std::string& out, int level) {
  std::string indent(static_cast<std::size_t>(level) * 4, ' ');
  auto add = [&](const std::string& line) {
    if (!out.empty()) out += '\n';
    out += indent + line;
  };
  add("* " + describe_future(g));
  if (!g.call_stack.empty()) {
    add("  + Call stack:");
    for (const FrameCallGraphEntry& e : g.call_stack) {
      add("  |   File '" + e.file + "', line " + std::to_string(e.line) + ", in async " +
          e.function + "()");
    }
  }
  if (!g.awaited_by.empty()) {
    add("  + Awaited by:");
    for (const FutureCallGraph& w : g.awaited_by)
      render(w, out, level + 1);
  }
}

std::string stack_text(const std::vector<FrameCallGraphEntry>& outermost_first) {
  std::string text;
  for (const FrameCallGraphEntry& e : outermost_first) {
    if (!text.empty()) text += " -> ";
    std::string file = e.file;
    std::size_t slash = file.rfind('/');
    if (slash != std::string::npos) file = file.substr(slash + 1);
    text += e.function + " " + file + ":" + std::to_string(e.line);
  }
  return text;
}

}  // namespace

FutureCallGraph capture_call_graph_of(const std::shared_ptr<detail::FutureCore>& future,
                                      std::optional<int> limit) {
  if (!future) throw ValueError("capture_call_graph() needs a future");
  return build(future, limit, nullptr, 0);
}

std::optional<FutureCallGraph> capture_call_graph(const AnyTask& task, std::optional<int> limit,
                                                  asyncuv::source_location where) {
  AnyTask target = task ? task : current_task();
  if (!target) return std::nullopt;
  return build(target.state(), limit, &where, 0);
}

std::string format_call_graph(const FutureCallGraph& graph) {
  std::string out;
  render(graph, out, 0);
  return out;
}

std::string format_call_graph(const AnyTask& task, std::optional<int> limit,
                              asyncuv::source_location where) {
  std::optional<FutureCallGraph> graph = capture_call_graph(task, limit, where);
  return graph ? format_call_graph(*graph) : std::string();
}

void print_call_graph(const AnyTask& task, std::optional<int> limit,
                      asyncuv::source_location where) {
  std::cout << format_call_graph(task, limit, where) << std::endl;
}

std::string format_all_tasks(EventLoop& loop) {
  std::vector<AnyTask> tasks = all_tasks(loop);
  detail::TaskStateBase* running = detail::current_task_state();
  auto stack_line = [running](const detail::TaskStateBase& s) {
    std::vector<FrameCallGraphEntry> stack = stack_of(s, nullptr);
    if (&s == running && !stack.empty()) stack.back().function += " (running)";
    return stack_text(stack);
  };
  // `python -m asyncio ps`: one row per task, its coroutine stack outermost first.
  std::string out = "task id             task name           coroutine stack  (awaited by)\n";
  std::vector<const detail::TaskStateBase*> roots;
  for (const AnyTask& t : tasks) {
    const detail::TaskStateBase& s = *t.state();
    char row[96];
    std::snprintf(row, sizeof row, "%-19s %-19s ", hex_id(&s).c_str(), s.name().c_str());
    out += row + stack_line(s);
    std::vector<detail::TaskStateBase*> waiters;
    awaiting_tasks(s, waiters);
    if (!waiters.empty()) {
      out += "  (awaited by";
      for (const detail::TaskStateBase* w : waiters)
        out += " " + w->name();
      out += ")";
    } else {
      roots.push_back(&s);
    }
    out += '\n';
  }
  // `python -m asyncio pstree`: each task awaited by nobody at the top, below it the task it
  // awaits, and so on down to the innermost work.
  out += "\nawait tree:\n";
  for (const detail::TaskStateBase* root : roots) {
    std::string prefix;
    int depth = 0;
    for (const detail::TaskStateBase* s = root; s != nullptr && depth < 256; ++depth) {
      out += prefix + "└── (T) " + s->name();
      std::string stack = stack_line(*s);
      if (!stack.empty()) out += "  " + stack;
      out += '\n';
      prefix += "    ";
      const detail::FutureCore* awaited = s->awaited_future();
      s = awaited != nullptr && !awaited->done()
              ? dynamic_cast<const detail::TaskStateBase*>(awaited)
              : nullptr;
    }
  }
  return out;
}

void print_all_tasks(EventLoop& loop) {
  std::cout << format_all_tasks(loop) << std::flush;
}

}  // namespace asyncuv
