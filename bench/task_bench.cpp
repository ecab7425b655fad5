// Tasks and coroutines: create + run + complete of N trivial tasks, and co_await of an
// already-done future, against CPython asyncio and uvloop running the same workloads
// (bench/asyncio_task_bench.py). Prints ns per operation and the ratios. Not a test.
#include <asyncuv/asyncuv.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

extern "C" __attribute__((noinline)) void bench_measured(void (*fn)(void*), void* arg) {
  fn(arg);
}

namespace {

using asyncuv::EventLoop;
using asyncuv::Task;

Task<int> trivial(int i) {
  co_return i;
}

/// Schedules n trivial tasks, then awaits each: one create_task + step + completion each.
Task<long> spawn_and_join(EventLoop& loop, long n) {
  std::vector<Task<int>> tasks;
  tasks.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    tasks.push_back(loop.create_task(trivial(static_cast<int>(i))));
  long sum = 0;
  for (auto& t : tasks)
    sum += co_await t;
  co_return sum;
}

Task<long> await_done_future(asyncuv::Future<int> done, long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i)
    sum += co_await done;
  co_return sum;
}

template <class F>
double timed_ns(long n, F body) {
  struct Ctx {
    F* body;
  } ctx{&body};
  double start = 0;
  double end = 0;
  {
    EventLoop clock_only;
    start = clock_only.time();
    bench_measured([](void* p) { (*static_cast<Ctx*>(p)->body)(); }, &ctx);
    end = clock_only.time();
  }
  return (end - start) * 1e9 / static_cast<double>(n);
}

double run_tasks(long n) {
  EventLoop loop;
  long want = n * (n - 1) / 2;
  long got = 0;
  double ns = timed_ns(n, [&] { got = loop.run_until_complete(spawn_and_join(loop, n)); });
  if (got != want) {
    std::fprintf(stderr, "tasks: wrong sum %ld != %ld\n", got, want);
    std::exit(1);
  }
  return ns;
}

double run_await_done(long n) {
  EventLoop loop;
  auto done = loop.create_future<int>();
  done.set_result(2);
  long got = 0;
  double ns = timed_ns(n, [&] { got = loop.run_until_complete(await_done_future(done, n)); });
  if (got != 2 * n) {
    std::fprintf(stderr, "await_done: wrong sum\n");
    std::exit(1);
  }
  return ns;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::map<std::string, double> run_python(const std::string& python, const std::string& script,
                                         long n, int reps) {
  std::map<std::string, double> out;
  std::string cmd =
      python + " " + script + " --n " + std::to_string(n) + " --reps " + std::to_string(reps);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return out;
  char workload[64];
  char impl[64];
  double ns = 0;
  while (std::fscanf(pipe, " RESULT %63s %63s %lf", workload, impl, &ns) == 3) {
    out[std::string(workload) + "/" + impl] = ns;
  }
  pclose(pipe);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  long n = 200'000;
  long py_n = 100'000;
  int reps = 5;
  std::string only;
  std::string python;
  std::string script;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    std::string v = argv[i + 1];
    if (a == "--n") {
      n = std::stol(v);
    } else if (a == "--py-n") {
      py_n = std::stol(v);
    } else if (a == "--reps") {
      reps = std::stoi(v);
    } else if (a == "--workload") {
      only = v;
    } else if (a == "--python") {
      python = v;
    } else if (a == "--script") {
      script = v;
    } else {
      std::fprintf(stderr,
                   "usage: task_bench [--n N] [--reps R] [--workload tasks|await_done] "
                   "[--python PY --script asyncio_task_bench.py --py-n N]\n");
      return 2;
    }
  }

  std::map<std::string, double> uv;
  for (const char* w : {"tasks", "await_done"}) {
    if (!only.empty() && only != w) continue;
    std::vector<double> runs;
    for (int r = 0; r < reps; ++r)
      runs.push_back(std::string(w) == "tasks" ? run_tasks(n) : run_await_done(n));
    uv[w] = median(runs);
  }
  if (!only.empty()) {
    std::printf("%s asyncuv %.2f\n", only.c_str(), uv[only]);
    return 0;
  }
  std::map<std::string, double> py;
  if (!python.empty()) py = run_python(python, script, py_n, reps);

  std::printf("\nns per operation: asyncuv median of %d runs (N=%ld); asyncio/uvloop N=%ld\n\n",
              reps, n, py_n);
  std::printf("%-34s %9s %9s %9s | %10s %11s\n", "workload", "asyncuv", "asyncio", "uvloop",
              "uvloop/uv", "asyncio/uv");
  const char* labels[] = {"create+run+complete a task", "co_await a done future"};
  const char* names[] = {"tasks", "await_done"};
  for (int i = 0; i < 2; ++i) {
    double a = uv[names[i]];
    double ai =
        py.count(std::string(names[i]) + "/asyncio") ? py[std::string(names[i]) + "/asyncio"] : 0;
    double uvl =
        py.count(std::string(names[i]) + "/uvloop") ? py[std::string(names[i]) + "/uvloop"] : 0;
    std::printf("%-34s %9.1f %9.1f %9.1f | %9.1fx %10.1fx\n", labels[i], a, ai, uvl,
                uvl > 0 ? uvl / a : 0.0, ai > 0 ? ai / a : 0.0);
  }
  double ratio = py.count("tasks/uvloop") ? py["tasks/uvloop"] / uv["tasks"] : 0;
  std::printf("\ntarget: a task at least 20x faster than uvloop: %s (%.1fx)\n",
              ratio >= 20 ? "PASS" : "FAIL", ratio);
  return 0;
}
