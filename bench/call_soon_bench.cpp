// Per-callback cost of asyncuv's call_soon and call_later+cancel, side by side with a floor
// written in plain libuv, with Asio, and (through bench/asyncio_bench.py) with CPython asyncio
// and uvloop. See bench/README.md.
//
//   call_soon_bench [--n N] [--reps R] [--rounds K] [--python PY --script asyncio_bench.py]
//       prints the whole table (medians of R repetitions).
//   call_soon_bench --workload chained|batch|timer --impl floor|floor-many|asyncuv|asio [...]
//       runs one measurement R times and prints "workload impl ns_per_callback" (for
//       callgrind: the timed part is the function bench_measured).
#include <uv.h>
#include <asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "asyncuv/event_loop.hpp"

/// The measured region: callgrind --toggle-collect=bench_measured counts only what runs in it.
extern "C" __attribute__((noinline)) void bench_measured(void (*fn)(void*), void* arg) {
  fn(arg);
  asm volatile("" ::: "memory");
}

namespace {

using Clock = std::chrono::steady_clock;

/// Runs f() inside bench_measured and returns the elapsed nanoseconds.
template <class F>
double timed(F& f) {
  auto start = Clock::now();
  bench_measured([](void* p) { (*static_cast<F*>(p))(); }, &f);
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

void check(long got, long want, const char* what) {
  if (got != want) {
    std::fprintf(stderr, "%s: %ld callbacks ran, expected %ld\n", what, got, want);
    std::exit(2);
  }
}

void check_uv(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "%s: %s\n", what, uv_strerror(rc));
    std::exit(2);
  }
}

struct Params {
  long n = 1'000'000;
  int rounds = 3;  // batch workload: rounds of n callbacks per measurement
};

// ---- the floor: a deque of std::function drained from a uv_idle callback ----------------

/// Batch semantics as asyncio's: one idle callback runs only the items queued when it starts;
/// the idle handle stops when the deque is empty, so uv_run returns once all is done.
class FloorLoop {
 public:
  FloorLoop() {
    check_uv(uv_loop_init(&loop_), "uv_loop_init");
    check_uv(uv_idle_init(&loop_, &idle_), "uv_idle_init");
    idle_.data = this;
  }
  FloorLoop(const FloorLoop&) = delete;
  FloorLoop& operator=(const FloorLoop&) = delete;
  ~FloorLoop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }

  uv_loop_t* uv() { return &loop_; }

  template <class F>
  void post(F&& f) {
    queue_.emplace_back(std::forward<F>(f));
    if (!active_) {
      uv_idle_start(&idle_, &FloorLoop::on_idle);
      active_ = true;
    }
  }

  void run() { uv_run(&loop_, UV_RUN_DEFAULT); }

 private:
  static void on_idle(uv_idle_t* h) {
    auto* self = static_cast<FloorLoop*>(h->data);
    for (std::size_t ready_now = self->queue_.size(); ready_now != 0; --ready_now) {
      std::function<void()> f = std::move(self->queue_.front());
      self->queue_.pop_front();
      f();
    }
    if (self->queue_.empty()) {
      uv_idle_stop(h);
      self->active_ = false;
    }
  }

  uv_loop_t loop_;
  uv_idle_t idle_;
  std::deque<std::function<void()>> queue_;
  bool active_ = false;
};

double floor_chained(const Params& p) {
  FloorLoop loop;
  struct State {
    FloorLoop* loop;
    long n;
    long done = 0;
  } s{&loop, p.n};
  struct Step {
    State* s;
    void operator()() const {
      if (++s->done < s->n) s->loop->post(Step{s});
    }
  };
  auto body = [&] {
    loop.post(Step{&s});
    loop.run();
  };
  double ns = timed(body);
  check(s.done, p.n, "floor chained");
  return ns / static_cast<double>(p.n);
}

double floor_batch(const Params& p) {
  FloorLoop loop;
  long done = 0;
  auto body = [&] {
    for (int r = 0; r < p.rounds; ++r) {
      for (long i = 0; i < p.n; ++i)
        loop.post([&done] { ++done; });
      loop.run();
    }
  };
  double ns = timed(body);
  check(done, p.n * p.rounds, "floor batch");
  return ns / static_cast<double>(p.n * p.rounds);
}

void noop_timer_cb(uv_timer_t*) {}

/// One uv_timer_t: N x (uv_timer_start, uv_timer_stop) from one callback.
double floor_timer_one(const Params& p) {
  FloorLoop loop;
  uv_timer_t timer;
  check_uv(uv_timer_init(loop.uv(), &timer), "uv_timer_init");
  long done = 0;
  auto body = [&] {
    loop.post([&] {
      for (long i = 0; i < p.n; ++i) {
        uv_timer_start(&timer, &noop_timer_cb, 10'000, 0);
        uv_timer_stop(&timer);
        ++done;
      }
    });
    loop.run();
  };
  double ns = timed(body);
  check(done, p.n, "floor timer (one handle)");
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  uv_run(loop.uv(), UV_RUN_DEFAULT);
  return ns / static_cast<double>(p.n);
}

/// N distinct uv_timer_t, allocated and uv_timer_init'ed before the timed part: each one
/// started and stopped once.
double floor_timer_many(const Params& p) {
  FloorLoop loop;
  auto timers = std::make_unique<uv_timer_t[]>(static_cast<std::size_t>(p.n));
  for (long i = 0; i < p.n; ++i)
    check_uv(uv_timer_init(loop.uv(), &timers[i]), "uv_timer_init");
  long done = 0;
  auto body = [&] {
    loop.post([&] {
      for (long i = 0; i < p.n; ++i) {
        uv_timer_start(&timers[i], &noop_timer_cb, 10'000, 0);
        uv_timer_stop(&timers[i]);
        ++done;
      }
    });
    loop.run();
  };
  double ns = timed(body);
  check(done, p.n, "floor timer (N handles)");
  for (long i = 0; i < p.n; ++i)
    uv_close(reinterpret_cast<uv_handle_t*>(&timers[i]), nullptr);
  uv_run(loop.uv(), UV_RUN_DEFAULT);
  return ns / static_cast<double>(p.n);
}

// ---- asyncuv ----------------------------------------------------------------------------

double asyncuv_chained(const Params& p) {
  asyncuv::EventLoop loop;
  struct State {
    asyncuv::EventLoop* loop;
    long n;
    long done = 0;
  } s{&loop, p.n};
  struct Step {
    State* s;
    void operator()() const {
      if (++s->done < s->n) {
        s->loop->call_soon(Step{s});
      } else {
        s->loop->stop();
      }
    }
  };
  auto body = [&] {
    loop.call_soon(Step{&s});
    loop.run_forever();
  };
  double ns = timed(body);
  check(s.done, p.n, "asyncuv chained");
  return ns / static_cast<double>(p.n);
}

double asyncuv_batch(const Params& p) {
  asyncuv::EventLoop loop;
  long done = 0;
  auto body = [&] {
    for (int r = 0; r < p.rounds; ++r) {
      for (long i = 0; i < p.n; ++i)
        loop.call_soon([&done] { ++done; });
      loop.stop();  // before run_forever: run exactly one batch
      loop.run_forever();
    }
  };
  double ns = timed(body);
  check(done, p.n * p.rounds, "asyncuv batch");
  return ns / static_cast<double>(p.n * p.rounds);
}

double asyncuv_timer(const Params& p) {
  asyncuv::EventLoop loop;
  long done = 0;
  long fired = 0;
  auto body = [&] {
    loop.call_soon([&] {
      for (long i = 0; i < p.n; ++i) {
        loop.call_later(10.0, [&fired] { ++fired; }).cancel();
        ++done;
      }
      loop.stop();
    });
    loop.run_forever();
  };
  double ns = timed(body);
  check(done, p.n, "asyncuv timer");
  check(fired, 0, "asyncuv timer (cancelled callbacks)");
  return ns / static_cast<double>(p.n);
}

// ---- Asio -------------------------------------------------------------------------------

double asio_chained(const Params& p) {
  asio::io_context ctx(1);  // concurrency hint: one thread runs it
  struct State {
    asio::io_context* ctx;
    long n;
    long done = 0;
  } s{&ctx, p.n};
  struct Step {
    State* s;
    void operator()() const {
      if (++s->done < s->n) asio::post(*s->ctx, Step{s});
    }
  };
  auto body = [&] {
    asio::post(ctx, Step{&s});
    ctx.run();
  };
  double ns = timed(body);
  check(s.done, p.n, "asio chained");
  return ns / static_cast<double>(p.n);
}

double asio_batch(const Params& p) {
  asio::io_context ctx(1);
  long done = 0;
  auto body = [&] {
    for (int r = 0; r < p.rounds; ++r) {
      for (long i = 0; i < p.n; ++i)
        asio::post(ctx, [&done] { ++done; });
      ctx.run();
      ctx.restart();
    }
  };
  double ns = timed(body);
  check(done, p.n * p.rounds, "asio batch");
  return ns / static_cast<double>(p.n * p.rounds);
}

/// steady_timer expires_after + async_wait + cancel; the aborted waits' handlers run too.
double asio_timer(const Params& p) {
  asio::io_context ctx(1);
  asio::steady_timer timer(ctx);
  long aborted = 0;
  auto body = [&] {
    asio::post(ctx, [&] {
      for (long i = 0; i < p.n; ++i) {
        timer.expires_after(std::chrono::seconds(10));
        timer.async_wait([&aborted](const asio::error_code& ec) {
          if (ec == asio::error::operation_aborted) ++aborted;
        });
        timer.cancel();
      }
    });
    ctx.run();
  };
  double ns = timed(body);
  check(aborted, p.n, "asio timer");
  return ns / static_cast<double>(p.n);
}

// ---- driver -----------------------------------------------------------------------------

using BenchFn = double (*)(const Params&);

struct Entry {
  const char* workload;
  const char* impl;
  BenchFn fn;
};

constexpr Entry kEntries[] = {
    {"chained", "floor", &floor_chained}, {"chained", "asyncuv", &asyncuv_chained},
    {"chained", "asio", &asio_chained},   {"batch", "floor", &floor_batch},
    {"batch", "asyncuv", &asyncuv_batch}, {"batch", "asio", &asio_batch},
    {"timer", "floor", &floor_timer_one}, {"timer", "floor-many", &floor_timer_many},
    {"timer", "asyncuv", &asyncuv_timer}, {"timer", "asio", &asio_timer},
};

const Entry* find_entry(const std::string& workload, const std::string& impl) {
  for (const Entry& e : kEntries) {
    if (workload == e.workload && impl == e.impl) return &e;
  }
  return nullptr;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

using Results = std::map<std::string, double>;  // "workload/impl" -> ns per callback

std::string key(const std::string& workload, const std::string& impl) {
  return workload + "/" + impl;
}

/// Runs `python script --n N`, which prints "RESULT workload impl ns" lines.
Results run_python(const std::string& python, const std::string& script, long n) {
  Results out;
  std::string cmd = "'" + python + "' '" + script + "' --n " + std::to_string(n);
  std::FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    std::fprintf(stderr, "cannot run %s\n", cmd.c_str());
    return out;
  }
  char line[256];
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    char workload[32];
    char impl[32];
    double ns;
    if (std::sscanf(line, "RESULT %31s %31s %lf", workload, impl, &ns) == 3) {
      out[key(workload, impl)] = ns;
    } else {
      std::fputs(line, stderr);
    }
  }
  if (pclose(pipe) != 0) std::fprintf(stderr, "warning: %s failed\n", cmd.c_str());
  return out;
}

std::optional<double> get(const Results& r, const std::string& workload, const std::string& impl) {
  auto it = r.find(key(workload, impl));
  if (it == r.end()) return std::nullopt;
  return it->second;
}

std::string fmt(std::optional<double> v, const char* spec = "%.1f") {
  if (!v) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, spec, *v);
  return buf;
}

std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

void print_table(const Results& r, const Params& p, int reps, long py_n) {
  struct Row {
    const char* workload;
    const char* label;
    double floor_limit;  // asyncuv/floor must be <= this
  };
  const Row rows[] = {
      {"chained", "chained call_soon", 1.2},
      {"batch", "batch call_soon", 1.5},
      {"timer", "call_later+cancel", 1.0},
  };
  std::printf(
      "\nns per callback: C++ columns median of %d runs, N=%ld (batch: %d rounds of N); "
      "asyncio/uvloop N=%ld\n\n",
      reps, p.n, p.rounds, py_n);
  std::printf("%-18s %8s %8s %8s %9s %8s | %9s %11s %12s\n", "workload", "floor", "asyncuv", "asio",
              "asyncio", "uvloop", "uv/floor", "uvloop/uv", "asyncio/uv");
  std::vector<std::string> verdicts;
  bool all_pass = true;
  for (const Row& row : rows) {
    auto floor = get(r, row.workload, "floor");
    if (std::string(row.workload) == "timer") {
      auto many = get(r, "timer", "floor-many");
      if (many && (!floor || *many < *floor)) floor = many;
    }
    auto uv = get(r, row.workload, "asyncuv");
    auto vs_floor = ratio(uv, floor);
    auto vs_uvloop = ratio(get(r, row.workload, "uvloop"), uv);
    std::printf("%-18s %8s %8s %8s %9s %8s | %8sx %10sx %11sx\n", row.label, fmt(floor).c_str(),
                fmt(uv).c_str(), fmt(get(r, row.workload, "asio")).c_str(),
                fmt(get(r, row.workload, "asyncio")).c_str(),
                fmt(get(r, row.workload, "uvloop")).c_str(), fmt(vs_floor, "%.2f").c_str(),
                fmt(vs_uvloop, "%.1f").c_str(),
                fmt(ratio(get(r, row.workload, "asyncio"), uv), "%.1f").c_str());
    bool ok_floor = vs_floor && *vs_floor <= row.floor_limit;
    bool ok_uvloop = vs_uvloop && *vs_uvloop >= 10.0;
    all_pass = all_pass && ok_floor && ok_uvloop;
    char line[200];
    std::snprintf(
        line, sizeof line, "  %-18s asyncuv/floor %5s <= %.1fx  %s   uvloop/asyncuv %5s >= 10x  %s",
        row.label, fmt(vs_floor, "%.2f").c_str(), row.floor_limit, ok_floor ? "PASS" : "FAIL",
        fmt(vs_uvloop, "%.1f").c_str(), ok_uvloop ? "PASS" : "FAIL");
    verdicts.push_back(line);
  }
  auto one = get(r, "timer", "floor");
  auto many = get(r, "timer", "floor-many");
  std::printf(
      "\ntimer floor = cheaper of: one uv_timer_t %s ns, N pre-initialised uv_timer_t %s ns"
      " -> %s\n",
      fmt(one).c_str(), fmt(many).c_str(),
      (one && many && *many < *one) ? "N handles" : "one handle");
  std::printf("\ntargets:\n");
  for (const std::string& v : verdicts)
    std::printf("%s\n", v.c_str());
  std::printf("overall: %s\n", all_pass ? "PASS" : "FAIL");
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: call_soon_bench [--n N] [--reps R] [--rounds K]\n"
               "                       [--python PY --script asyncio_bench.py [--py-n N]]\n"
               "       call_soon_bench --workload chained|batch|timer\n"
               "                       --impl floor|floor-many|asyncuv|asio [--n N] [--reps R]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  int reps = 5;
  long py_n = 200'000;
  std::string workload, impl, python, script;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--n") {
      p.n = std::stol(value());
    } else if (a == "--reps") {
      reps = std::stoi(value());
    } else if (a == "--rounds") {
      p.rounds = std::stoi(value());
    } else if (a == "--workload") {
      workload = value();
    } else if (a == "--impl") {
      impl = value();
    } else if (a == "--python") {
      python = value();
    } else if (a == "--script") {
      script = value();
    } else if (a == "--py-n") {
      py_n = std::stol(value());
    } else {
      usage();
    }
  }
  if (p.n <= 0 || reps <= 0 || p.rounds <= 0) usage();

  if (!workload.empty() || !impl.empty()) {
    const Entry* e = find_entry(workload, impl);
    if (e == nullptr) usage();
    std::vector<double> runs;
    for (int i = 0; i < reps; ++i)
      runs.push_back(e->fn(p));
    std::printf("%s %s %.2f\n", e->workload, e->impl, median(runs));
    return 0;
  }

  // Whole table: every repetition runs every implementation, so load changes on a busy
  // machine hit them all alike.
  std::map<std::string, std::vector<double>> runs;
  for (int rep = 0; rep < reps; ++rep) {
    for (const Entry& e : kEntries)
      runs[key(e.workload, e.impl)].push_back(e.fn(p));
  }
  Results results;
  for (auto& [k, v] : runs)
    results[k] = median(v);
  if (!python.empty() && !script.empty()) {
    Results py = run_python(python, script, py_n);
    results.insert(py.begin(), py.end());
  }
  print_table(results, p, reps, py_n);
  return 0;
}
