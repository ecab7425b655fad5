// Fault tests: a child killed (SIGKILL) while communicate() is feeding and reading it. asyncio
// (behaviour 58): communicate() still returns what was read, stdin's broken pipe is ignored,
// the return code is -9; nothing reaches the exception handler, and no descriptor or zombie is
// left behind.
#include <signal.h>

#include "loop_support.hpp"
#include "stream_test_support.hpp"
#include "test_subprocess_support.hpp"

using namespace subprocess_test;
using asyncuv::Process;
using asyncuv::Stdio;
using asyncuv::Task;
using test_support::run_task;

namespace {

/// Kills `proc` after `iterations` loop iterations, unless it already exited; true if killed.
Task<bool> kill_after(Process proc, int iterations) {
  for (int i = 0; i < iterations; ++i)
    co_await asyncuv::sleep(0);
  if (proc.returncode()) co_return false;
  proc.kill();
  co_return true;
}

}  // namespace

TEST_CASE("fault 58: a child killed during communicate(): output so far, returncode -9",
          "[fault]") {
  EventLoop loop;
  stream_test::HandlerLog handler;
  handler.install(loop);
  // A first child with a pipe sets up what stays open for the loop's life (the child
  // watching, and libuv's reserve descriptor of the first stream): counted after it.
  auto warm_up = []() -> Task<int> {
    auto starting = asyncuv::create_subprocess_exec({"true"}, Stdio::inherit(), Stdio::pipe());
    Process proc = co_await std::move(starting);
    auto talking = proc.communicate();
    co_await std::move(talking);
    co_return co_await proc.wait();
  };
  REQUIRE(run_task(loop, warm_up()) == 0);
  const int fds_before = count_open_fds();
  int pid = 0;
  SECTION("cat, killed midway through 16 MiB") {
    const std::string input = stream_test::pattern(16 << 20, 58);
    auto body = [&]() -> Task<void> {
      auto starting = asyncuv::create_subprocess_exec({"cat"}, Stdio::pipe(), Stdio::pipe());
      Process proc = co_await std::move(starting);
      pid = proc.pid();
      auto killing = loop.create_task(kill_after(proc, 40));
      auto talking = proc.communicate(input);
      auto result = co_await std::move(talking);
      bool killed = co_await std::move(killing);
      CHECK(killed);
      CHECK(proc.returncode() == -SIGKILL);
      // What came back is an exact prefix of what was sent, and not all of it.
      const std::string& out = result.first;
      CHECK(out.size() < input.size());
      CHECK(out == input.substr(0, out.size()));
      CHECK(result.second.empty());
    };
    run_task(loop, body(), 30.0);
  }
  SECTION("a child that never reads its stdin, with 4 MiB to feed") {
    auto body = [&]() -> Task<void> {
      auto starting = asyncuv::create_subprocess_exec({"sleep", "30"}, Stdio::pipe(), Stdio::pipe(),
                                                      Stdio::pipe());
      Process proc = co_await std::move(starting);
      pid = proc.pid();
      const double start = loop.time();
      auto killing = loop.create_task(kill_after(proc, 5));
      auto talking = proc.communicate(std::string(4 << 20, 'k'));
      auto result = co_await std::move(talking);
      bool killed = co_await std::move(killing);
      CHECK(killed);
      CHECK(loop.time() - start < 20.0);  // not the child's 30 s: the kill ended it
      CHECK(proc.returncode() == -SIGKILL);
      CHECK(result.first.empty());
      CHECK(result.second.empty());
      int rc = co_await proc.wait();
      CHECK(rc == -SIGKILL);
    };
    run_task(loop, body(), 30.0);
  }
  CHECK(handler.contexts.empty());
  REQUIRE(pid > 0);
  stream_test::run_until(
      loop, [&] { return reaped(pid); }, 10.0);
  CHECK(count_open_fds() == fds_before);
}
