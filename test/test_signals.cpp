// Unix signal handlers: scenarios 40-42 of asyncio-semantics.md. Real signals are sent to the
// test process with raise() (delivered to this thread before it returns) or kill(getpid()).
#include <catch2/catch.hpp>

#include "loop_support.hpp"

#include <asyncuv/event_loop.hpp>
#include <asyncuv/futures.hpp>
#include <asyncuv/signals.hpp>
#include <asyncuv/tasks.hpp>

#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <csignal>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

using asyncuv::EventLoop;
using asyncuv::TimerHandle;

namespace signals_test {

using Names = std::vector<std::string>;

using test_support::run_with_watchdog;

/// The handler currently installed for `sig` (SIG_DFL, SIG_IGN or a function).
void (*disposition(int sig))(int) {
  struct sigaction sa {};
  REQUIRE(sigaction(sig, nullptr, &sa) == 0);
  return sa.sa_handler;
}

/// Saves the dispositions of some signals and puts them back at scope exit, so a failing test
/// cannot leave a handler behind for the test files that run after this one.
class DispositionGuard {
 public:
  explicit DispositionGuard(std::vector<int> sigs) : sigs_(std::move(sigs)) {
    saved_.resize(sigs_.size());
    for (std::size_t i = 0; i < sigs_.size(); ++i)
      sigaction(sigs_[i], nullptr, &saved_[i]);
  }
  DispositionGuard(const DispositionGuard&) = delete;
  DispositionGuard& operator=(const DispositionGuard&) = delete;
  ~DispositionGuard() {
    for (std::size_t i = 0; i < sigs_.size(); ++i)
      sigaction(sigs_[i], &saved_[i], nullptr);
  }

 private:
  std::vector<int> sigs_;
  std::vector<struct sigaction> saved_;
};

/// Stops `loop` once `n` more iterations have run (a chain of call_soon callbacks).
void stop_after(EventLoop& loop, int n) {
  if (n <= 0) {
    loop.stop();
    return;
  }
  loop.call_soon([&loop, n] { stop_after(loop, n - 1); });
}

}  // namespace signals_test

using namespace signals_test;

TEST_CASE("40. invalid signal numbers raise ValueError", "[signals]") {
  DispositionGuard guard({SIGHUP, SIGRTMAX});
  EventLoop loop;
  auto noop = [] {};
  // NSIG itself is not a signal (valid ones are 1..NSIG-1); 32 and 33 are glibc's own, which
  // Python's signal.valid_signals() leaves out too.
  for (int sig : {0, -1, NSIG, NSIG + 1, 1000, 32, 33}) {
    INFO("sig " << sig);
    std::string message = "invalid signal number " + std::to_string(sig);
    CHECK_THROWS_MATCHES(loop.add_signal_handler(sig, noop), asyncuv::ValueError,
                         Catch::Matchers::Message(message));
    CHECK_THROWS_MATCHES(loop.remove_signal_handler(sig), asyncuv::ValueError,
                         Catch::Matchers::Message(message));
  }
  // The first and last valid numbers are accepted.
  loop.add_signal_handler(SIGHUP, noop);
  loop.add_signal_handler(SIGRTMAX, noop);
  CHECK(loop.remove_signal_handler(SIGHUP));
  CHECK(loop.remove_signal_handler(SIGRTMAX));
  loop.close();
}

TEST_CASE("40. SIGKILL and SIGSTOP cannot be caught", "[signals]") {
  EventLoop loop;
  auto noop = [] {};
  CHECK_THROWS_MATCHES(loop.add_signal_handler(SIGKILL, noop), asyncuv::RuntimeError,
                       Catch::Matchers::Message("sig 9 cannot be caught"));
  CHECK_THROWS_MATCHES(
      loop.add_signal_handler(SIGSTOP, noop), asyncuv::RuntimeError,
      Catch::Matchers::Message("sig " + std::to_string(SIGSTOP) + " cannot be caught"));
  CHECK(SIGSTOP == 19);  // on Linux
  // Nothing was installed, so there is nothing to remove (no ValueError either).
  CHECK_FALSE(loop.remove_signal_handler(SIGKILL));
  CHECK_FALSE(loop.remove_signal_handler(SIGSTOP));
  loop.close();
}

TEST_CASE("40. a closed loop refuses signal handlers", "[signals]") {
  EventLoop loop;
  loop.close();
  CHECK_THROWS_MATCHES(loop.add_signal_handler(SIGUSR1, [] {}), asyncuv::RuntimeError,
                       Catch::Matchers::Message("Event loop is closed"));
  // As in asyncio the signal number is checked first, and uncatchable signals are reported as
  // a closed loop.
  CHECK_THROWS_MATCHES(loop.add_signal_handler(0, [] {}), asyncuv::ValueError,
                       Catch::Matchers::Message("invalid signal number 0"));
  CHECK_THROWS_MATCHES(loop.add_signal_handler(SIGKILL, [] {}), asyncuv::RuntimeError,
                       Catch::Matchers::Message("Event loop is closed"));
  CHECK_FALSE(loop.remove_signal_handler(SIGUSR1));
  CHECK(disposition(SIGUSR1) == SIG_DFL);
}

TEST_CASE("40. a SIGCHLD handler coexists with libuv's child watcher", "[signals]") {
  DispositionGuard guard({SIGCHLD});
  REQUIRE(disposition(SIGCHLD) == SIG_DFL);
  struct State {
    EventLoop* loop;
    bool exited = false;
    std::int64_t status = -1;
    int handled = 0;
    void maybe_stop() {
      if (exited && handled > 0) loop->stop();
    }
  };
  {
    EventLoop loop;
    State state{&loop};
    loop.add_signal_handler(SIGCHLD, [&state] {
      CHECK(state.loop->is_running());
      ++state.handled;
      state.maybe_stop();
    });

    char file[] = "true";
    char* args[] = {file, nullptr};
    uv_process_options_t options{};
    options.file = file;
    options.args = args;
    options.exit_cb = [](uv_process_t* p, std::int64_t status, int) {
      auto* s = static_cast<State*>(p->data);
      s->exited = true;
      s->status = status;
      s->maybe_stop();
    };
    auto* child = new uv_process_t{};
    child->data = &state;
    int rc = uv_spawn(loop.uv_loop(), child, &options);
    // The handle is registered with the loop even when uv_spawn fails: always close it.
    struct Closer {
      uv_process_t* p;
      ~Closer() {
        uv_close(reinterpret_cast<uv_handle_t*>(p),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
      }
    } closer{child};
    REQUIRE(rc == 0);

    run_with_watchdog(loop);
    CHECK(state.exited);  // libuv reaped the child: its exit callback ran
    CHECK(state.status == 0);
    CHECK(state.handled >= 1);  // and the user's handler saw SIGCHLD too

    // Removing the user's handler leaves libuv's child watcher (and its disposition) in place.
    CHECK(loop.remove_signal_handler(SIGCHLD));
    CHECK(disposition(SIGCHLD) != SIG_DFL);
  }
  // Closing the loop stopped libuv's child watcher as well.
  CHECK(disposition(SIGCHLD) == SIG_DFL);
}

TEST_CASE("41. the handler runs in a later iteration, after the raising callback", "[signals]") {
  EventLoop loop;
  Names seen;
  std::uint64_t raised_in = 0;
  std::uint64_t handled_in = 0;
  bool running_in_handler = false;
  loop.add_signal_handler(SIGUSR1, [&] {
    seen.push_back("handler");
    handled_in = loop.iteration_count();
    running_in_handler = loop.is_running();
    loop.stop();
  });
  loop.call_soon([&] {
    seen.push_back("before raise");
    raised_in = loop.iteration_count();
    REQUIRE(std::raise(SIGUSR1) == 0);
    seen.push_back("after raise");  // the handler has not run yet
  });
  run_with_watchdog(loop);
  CHECK(seen == Names{"before raise", "after raise", "handler"});
  CHECK(handled_in > raised_in);
  CHECK(running_in_handler);
  CHECK(loop.remove_signal_handler(SIGUSR1));
  loop.close();
}

TEST_CASE("41. a handler with bound arguments", "[signals]") {
  EventLoop loop;
  std::vector<std::string> got;
  auto handler = [&](EventLoop& l, int n, const std::string& s) {
    got.push_back(std::to_string(n) + s);
    l.stop();
  };
  loop.add_signal_handler(SIGUSR2, handler, std::ref(loop), 42, std::string("x"));
  // A process-directed signal: any thread may take it, the loop still runs the handler.
  loop.call_soon([] { REQUIRE(::kill(::getpid(), SIGUSR2) == 0); });
  run_with_watchdog(loop);
  CHECK(got == std::vector<std::string>{"42x"});
  loop.close();
  CHECK(disposition(SIGUSR2) == SIG_DFL);
}

TEST_CASE("41. a signal raised while the loop is stopped is handled on the next run", "[signals]") {
  EventLoop loop;
  int handled = 0;
  loop.add_signal_handler(SIGUSR1, [&] { ++handled; });

  SECTION("run_forever") {
    REQUIRE(std::raise(SIGUSR1) == 0);
    CHECK(handled == 0);
    stop_after(loop, 3);
    run_with_watchdog(loop);
    CHECK(handled == 1);

    // Twice between runs: two deliveries, two runs of the handler.
    REQUIRE(std::raise(SIGUSR1) == 0);
    REQUIRE(std::raise(SIGUSR1) == 0);
    stop_after(loop, 3);
    run_with_watchdog(loop);
    CHECK(handled == 3);
  }
  SECTION("run_until_complete") {
    auto fut = loop.create_future<int>();
    loop.add_signal_handler(SIGUSR1, [&, fut] {
      ++handled;
      if (!fut.done()) fut.set_result(SIGUSR1);
    });
    REQUIRE(std::raise(SIGUSR1) == 0);
    TimerHandle watchdog = loop.call_later(10.0, [fut] {
      if (!fut.done()) fut.set_result(-1);
    });
    CHECK(loop.run_until_complete(fut) == SIGUSR1);
    watchdog.cancel();
    CHECK(handled == 1);
  }
  CHECK(loop.remove_signal_handler(SIGUSR1));
  loop.close();
}

TEST_CASE("41. adding a handler again replaces it", "[signals]") {
  EventLoop loop;
  Names seen;
  loop.add_signal_handler(SIGUSR1, [&] { seen.push_back("first"); });
  loop.add_signal_handler(SIGUSR1, [&] {
    seen.push_back("second");
    loop.stop();
  });
  loop.call_soon([] { REQUIRE(std::raise(SIGUSR1) == 0); });
  run_with_watchdog(loop);
  CHECK(seen == Names{"second"});

  // A delivery already queued for the replaced handler is dropped with it. The signal raised
  // here is queued in the next iteration's poll, after `replace`, which was queued earlier.
  seen.clear();
  auto replace = [&] {
    loop.add_signal_handler(SIGUSR1, [&] { seen.push_back("third"); });
    stop_after(loop, 2);
  };
  loop.call_soon([&] {
    REQUIRE(std::raise(SIGUSR1) == 0);
    loop.call_soon(replace);
  });
  run_with_watchdog(loop);
  CHECK(seen.empty());

  // The replacement itself is live.
  loop.call_soon([] { REQUIRE(std::raise(SIGUSR1) == 0); });
  stop_after(loop, 3);
  run_with_watchdog(loop);
  CHECK(seen == Names{"third"});
  CHECK(loop.remove_signal_handler(SIGUSR1));
  CHECK_FALSE(loop.remove_signal_handler(SIGUSR1));
  loop.close();
}

TEST_CASE("41. exceptions from the handler go to the exception handler", "[signals]") {
  EventLoop loop;
  std::vector<std::string> messages;
  std::vector<std::string> errors;
  loop.set_exception_handler([&](EventLoop& l, const asyncuv::ExceptionContext& context) {
    messages.push_back(context.message());
    try {
      std::rethrow_exception(context.exception());
    } catch (const std::exception& e) {
      errors.push_back(e.what());
    }
    if (messages.size() == 2) l.stop();
  });
  int runs = 0;
  loop.add_signal_handler(SIGUSR2, [&] {
    ++runs;
    throw std::runtime_error("boom " + std::to_string(runs));
  });
  // The handler stays installed after throwing: the second signal runs it again.
  loop.call_soon([] { REQUIRE(std::raise(SIGUSR2) == 0); });
  loop.call_later(0.01, [] { REQUIRE(std::raise(SIGUSR2) == 0); });
  run_with_watchdog(loop);
  CHECK(runs == 2);
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].rfind("Exception in callback ", 0) == 0);
  CHECK(errors == std::vector<std::string>{"boom 1", "boom 2"});
  CHECK(loop.remove_signal_handler(SIGUSR2));
  loop.close();
}

TEST_CASE("41. the handler may remove itself", "[signals]") {
  EventLoop loop;
  int runs = 0;
  std::string captured = "still alive";
  loop.add_signal_handler(SIGUSR1, [&, captured] {
    ++runs;
    CHECK(loop.remove_signal_handler(SIGUSR1));
    CHECK(captured == "still alive");  // its captures outlive the call that removed it
    loop.stop();
  });
  loop.call_soon([] { REQUIRE(std::raise(SIGUSR1) == 0); });
  run_with_watchdog(loop);
  CHECK(runs == 1);
  CHECK(disposition(SIGUSR1) == SIG_DFL);
  loop.close();
}

TEST_CASE("42. remove_signal_handler restores the default disposition", "[signals]") {
  DispositionGuard guard({SIGINT, SIGTERM, SIGUSR1});
  EventLoop loop;
  for (int sig : {SIGUSR1, SIGINT, SIGTERM}) {
    INFO("sig " << sig);
    int handled = 0;
    loop.add_signal_handler(sig, [&] {
      ++handled;
      loop.stop();
    });
    CHECK(disposition(sig) != SIG_DFL);
    CHECK(disposition(sig) != SIG_IGN);
    loop.call_soon([sig] { REQUIRE(std::raise(sig) == 0); });
    run_with_watchdog(loop);
    CHECK(handled == 1);

    CHECK(loop.remove_signal_handler(sig));
    CHECK_FALSE(loop.remove_signal_handler(sig));
    // For SIGINT asyncio puts back Python's default_int_handler: SIG_DFL is C++'s equivalent.
    CHECK(disposition(sig) == SIG_DFL);
  }
  loop.close();
}

TEST_CASE("42. close() removes every handler", "[signals]") {
  DispositionGuard guard({SIGINT, SIGUSR1, SIGUSR2});
  int handled = 0;
  {
    EventLoop loop;
    std::string captured(100, 'x');  // ASan checks the handlers' captures are freed
    loop.add_signal_handler(SIGUSR1, [&handled, captured] { ++handled; });
    loop.add_signal_handler(SIGUSR2, [&handled, captured] { ++handled; });
    loop.add_signal_handler(
        SIGINT, [&handled](std::string s) { handled += s.empty(); }, captured);
    CHECK(disposition(SIGUSR1) != SIG_DFL);

    // A signal still waiting in libuv's pipe when the loop closes is dropped safely.
    REQUIRE(std::raise(SIGUSR1) == 0);
    loop.close();
    CHECK(disposition(SIGUSR1) == SIG_DFL);
    CHECK(disposition(SIGUSR2) == SIG_DFL);
    CHECK(disposition(SIGINT) == SIG_DFL);
    CHECK_FALSE(loop.remove_signal_handler(SIGUSR1));
    CHECK_THROWS_AS(loop.add_signal_handler(SIGUSR1, [] {}), asyncuv::RuntimeError);
  }
  CHECK(handled == 0);

  // The destructor closes a loop that still has handlers, too.
  {
    EventLoop loop;
    loop.add_signal_handler(SIGUSR2, [] {});
    REQUIRE(std::raise(SIGUSR2) == 0);
  }
  CHECK(disposition(SIGUSR2) == SIG_DFL);
}

TEST_CASE("41. two loops handling the same signal both run their handler", "[signals]") {
  EventLoop a;
  EventLoop b;
  int in_a = 0;
  int in_b = 0;
  a.add_signal_handler(SIGUSR2, [&] {
    ++in_a;
    a.stop();
  });
  b.add_signal_handler(SIGUSR2, [&] {
    ++in_b;
    b.stop();
  });
  REQUIRE(std::raise(SIGUSR2) == 0);
  run_with_watchdog(a);
  run_with_watchdog(b);
  CHECK(in_a == 1);
  CHECK(in_b == 1);

  // The default disposition comes back only when the last loop removes its handler.
  CHECK(a.remove_signal_handler(SIGUSR2));
  CHECK(disposition(SIGUSR2) != SIG_DFL);
  CHECK(b.remove_signal_handler(SIGUSR2));
  CHECK(disposition(SIGUSR2) == SIG_DFL);
  a.close();
  b.close();
}
