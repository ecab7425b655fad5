// asyncio's Queue example, with a TaskGroup: a producer feeds jobs (sleep durations) into a
// bounded queue, three workers take them concurrently, and when every job is done the producer
// shuts the queue down so the workers leave and the group finishes.
#include <asyncuv/asyncuv.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using asyncuv::Queue;
using asyncuv::Task;
using asyncuv::TaskGroup;

Task<void> producer(Queue<double>& queue, int jobs, double& total_requested) {
  for (int i = 0; i < jobs; ++i) {
    double seconds = 0.05 + 0.01 * (i % 5);
    total_requested += seconds;
    co_await queue.put(seconds);  // waits while the queue is full
  }
  co_await queue.join();  // every job was taken and reported done
  queue.shutdown();       // wakes the workers blocked in get() with QueueShutDown
}

Task<void> worker(std::string name, Queue<double>& queue) {
  for (;;) {
    double seconds;
    try {
      seconds = co_await queue.get();
    } catch (const asyncuv::QueueShutDown&) {
      co_return;
    }
    co_await asyncuv::sleep(seconds);
    queue.task_done();
    std::printf("%s has slept for %.2f seconds\n", name.c_str(), seconds);
  }
}

Task<void> main_coroutine() {
  Queue<double> queue(4);
  double total_requested = 0;
  auto started = std::chrono::steady_clock::now();

  auto body = [&](TaskGroup& group) -> Task<void> {
    group.create_task(producer(queue, 12, total_requested), "producer");
    for (int i = 0; i < 3; ++i) {
      std::string name = "worker-" + std::to_string(i);
      group.create_task(worker(name, queue), name);
    }
    co_return;
  };
  co_await asyncuv::task_group(body);

  std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  std::printf("====\n");
  std::printf("3 workers slept in parallel for %.2f seconds\n", took.count());
  std::printf("total expected sleep time: %.2f seconds\n", total_requested);
}

int main() {
  asyncuv::run(main_coroutine());
}
