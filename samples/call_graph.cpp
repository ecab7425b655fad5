// Call-graph introspection: a few tasks wait in nested coroutines; on SIGUSR1 the program
// prints every task with its await chain (like `python -m asyncio ps` / `pstree` in 3.14).
// Run it and `kill -USR1 <pid>` from another shell; it also sends itself one SIGUSR1 after
// 0.2 s so that a plain run shows the dump, then prints one task's graph with
// print_call_graph and exits.
#include <asyncuv/asyncuv.hpp>

#include <unistd.h>
#include <csignal>
#include <iostream>
#include <string>

namespace {

asyncuv::Task<std::string> fetch_row(asyncuv::Future<void> released, int n) {
  co_await released;  // the innermost await: shown with this line
  co_return "row " + std::to_string(n);
}

asyncuv::Task<std::string> query(asyncuv::Future<void> released, int n) {
  std::string row = co_await fetch_row(released, n);
  co_return row;
}

asyncuv::Task<std::string> worker(asyncuv::Future<void> released, int n) {
  std::string row = co_await query(released, n);
  co_return row;
}

asyncuv::Task<void> supervisor(asyncuv::Task<std::string> first) {
  std::string row = co_await first;
  std::cout << "supervisor got " << row << std::endl;
}

asyncuv::Task<int> main_task() {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  auto released = loop.create_future<void>();
  auto dumped = loop.create_future<void>();
  loop.add_signal_handler(SIGUSR1, [&loop, dumped]() mutable {
    std::cout << "--- SIGUSR1: every task ---" << std::endl;
    asyncuv::print_all_tasks(loop);
    if (!dumped.done()) dumped.set_result();
  });
  asyncuv::Task<std::string> first = loop.create_task(worker(released, 1), "worker-1");
  asyncuv::Task<std::string> second = loop.create_task(worker(released, 2), "worker-2");
  asyncuv::Task<void> boss = loop.create_task(supervisor(first), "supervisor");
  std::cout << "pid " << ::getpid() << ": kill -USR1 to dump the tasks" << std::endl;
  loop.call_later(0.2, [] { ::kill(::getpid(), SIGUSR1); });
  co_await dumped;

  std::cout << "--- print_call_graph(worker-1) ---" << std::endl;
  asyncuv::print_call_graph(first);
  released.set_result();
  co_await boss;
  std::string row = co_await second;
  loop.remove_signal_handler(SIGUSR1);
  co_return row == "row 2" ? 0 : 1;
}

}  // namespace

int main() {
  return asyncuv::run(main_task());
}
