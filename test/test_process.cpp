// The high-level API (asyncio.subprocess): create_subprocess_exec / create_subprocess_shell,
// Process.communicate (sizes around the pipe and stream limits, 10 MiB both ways), wait(),
// signals, a child that never reads, and 200 children at once without an fd leak.
#include <signal.h>

#include "byte_compare.hpp"
#include "loop_support.hpp"
#include "stream_test_support.hpp"
#include "test_subprocess_support.hpp"

using namespace subprocess_test;
using asyncuv::Process;
using asyncuv::Stdio;
using asyncuv::Task;
using test_support::run_task;

TEST_CASE("communicate through cat: 0, 65535, 65536, 65537 bytes and 10 MiB, every byte",
          "[subprocess]") {
  EventLoop loop;
  for (std::size_t size : {std::size_t{0}, std::size_t{65535}, std::size_t{65536},
                           std::size_t{65537}, std::size_t{10} << 20}) {
    CAPTURE(size);
    const std::string input = stream_test::pattern(size, static_cast<std::uint32_t>(size) + 7);
    auto body = [&]() -> Task<void> {
      // stdin -> stdout.
      auto starting = asyncuv::create_subprocess_exec({"cat"}, Stdio::pipe(), Stdio::pipe());
      Process proc = co_await std::move(starting);
      REQUIRE(proc.stdin_);
      REQUIRE(proc.stdout_);
      CHECK_FALSE(proc.stderr_);
      auto talking = proc.communicate(input);
      auto [out, err] = co_await std::move(talking);
      CHECK(out.size() == input.size());
      CHECK(test_support::byte_difference(out, input) == "");
      CHECK(err.empty());
      CHECK(proc.returncode() == 0);

      // stdin -> stderr.
      auto starting2 =
          asyncuv::create_subprocess_shell("cat >&2", Stdio::pipe(), Stdio::pipe(), Stdio::pipe());
      Process proc2 = co_await std::move(starting2);
      auto talking2 = proc2.communicate(input);
      auto [out2, err2] = co_await std::move(talking2);
      CHECK(out2.empty());
      CHECK(err2.size() == input.size());
      CHECK(test_support::byte_difference(err2, input) == "");
      int rc = co_await proc2.wait();
      CHECK(rc == 0);
    };
    run_task(loop, body(), 120.0);
  }
}

TEST_CASE("communicate with only output: a child writing 10 MiB to both streams", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = asyncuv::create_subprocess_shell(
        "head -c 10485760 /dev/zero; head -c 10485760 /dev/zero >&2", Stdio::devnull(),
        Stdio::pipe(), Stdio::pipe());
    Process proc = co_await std::move(starting);
    auto talking = proc.communicate();
    auto [out, err] = co_await std::move(talking);
    CHECK(test_support::byte_difference(out, std::string(10 << 20, '\0')) == "");
    CHECK(test_support::byte_difference(err, std::string(10 << 20, '\0')) == "");
    CHECK(proc.returncode() == 0);
  };
  run_task(loop, body(), 120.0);
}

TEST_CASE("communicate ignores a child that exits without reading its stdin", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = asyncuv::create_subprocess_exec({"sh", "-c", "exit 5"}, Stdio::pipe(),
                                                    Stdio::pipe(), Stdio::pipe());
    Process proc = co_await std::move(starting);
    auto talking = proc.communicate(std::string(1 << 20, 'z'));
    auto [out, err] = co_await std::move(talking);
    CHECK(out.empty());
    CHECK(err.empty());
    CHECK(proc.returncode() == 5);
  };
  run_task(loop, body());
}

TEST_CASE("a child that never reads its stdin: drain() waits, kill() ends it cleanly",
          "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = asyncuv::create_subprocess_exec({"sleep", "60"}, Stdio::pipe());
    Process proc = co_await std::move(starting);
    proc.stdin_->write(std::string(1 << 20, 'y'));
    Task<void> draining = loop.create_task(proc.stdin_->drain());
    co_await asyncuv::sleep(0.05);
    CHECK_FALSE(draining.done());  // flow control: paused, nobody reads
    proc.kill();
    int rc = co_await proc.wait();
    CHECK(rc == -SIGKILL);
    try {
      co_await draining;  // woken by the pipe's loss
    } catch (const asyncuv::ConnectionResetError&) {
    } catch (const asyncuv::BrokenPipeError&) {
    }
    CHECK(draining.done());
  };
  run_task(loop, body());
}

TEST_CASE("Process: pid, returncode, wait, send_signal, terminate, kill", "[subprocess]") {
  EventLoop loop;
  auto body = [&](int how) -> Task<void> {
    auto starting = asyncuv::create_subprocess_exec({"sleep", "60"});
    Process proc = co_await std::move(starting);
    CHECK(proc.pid() > 0);
    CHECK(proc.returncode() == std::nullopt);
    CHECK(proc.repr() == "<Process " + std::to_string(proc.pid()) + ">");
    if (how == 0) proc.send_signal(SIGINT);
    if (how == 1) proc.terminate();
    if (how == 2) proc.kill();
    int rc = co_await proc.wait();
    const int expected = how == 0 ? -SIGINT : how == 1 ? -SIGTERM : -SIGKILL;
    CHECK(rc == expected);
    CHECK(proc.returncode() == expected);
    int again = co_await proc.wait();
    CHECK(again == rc);
    // asyncio: once the transport finished, the process is forgotten.
    CHECK_THROWS_AS(proc.kill(), asyncuv::ProcessLookupError);
    CHECK(reaped(proc.pid()));
  };
  for (int how = 0; how < 3; ++how) {
    CAPTURE(how);
    run_task(loop, body(how));
  }
}

TEST_CASE("Process streams: readline from stdout, write and drain stdin", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = asyncuv::create_subprocess_exec({"cat"}, Stdio::pipe(), Stdio::pipe());
    Process proc = co_await std::move(starting);
    for (int i = 0; i < 3; ++i) {
      std::string line = "line " + std::to_string(i) + "\n";
      proc.stdin_->write(line);
      co_await proc.stdin_->drain();
      std::string back = co_await proc.stdout_->readline();
      CHECK(back == line);
    }
    proc.stdin_->close();
    std::string rest = co_await proc.stdout_->read();
    CHECK(rest.empty());
    CHECK(proc.stdout_->at_eof());
    int rc = co_await proc.wait();
    CHECK(rc == 0);
  };
  run_task(loop, body());
}

TEST_CASE("create_subprocess_shell runs /bin/sh -c; a missing program throws", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting =
        asyncuv::create_subprocess_shell("echo $((6 * 7))", Stdio::devnull(), Stdio::pipe());
    Process proc = co_await std::move(starting);
    std::string out = co_await proc.stdout_->read();
    CHECK(out == "42\n");
    int rc = co_await proc.wait();
    CHECK(rc == 0);
  };
  run_task(loop, body());
  CHECK_THROWS_AS(run_task(loop, asyncuv::create_subprocess_exec({"asyncuv-missing-program"})),
                  asyncuv::FileNotFoundError);
}

TEST_CASE("200 children started and reaped concurrently, no descriptor leaked", "[subprocess]") {
  const int before = count_open_fds();
  std::vector<int> pids;
  {
    EventLoop loop;
    auto one = [](int i) -> Task<std::pair<int, std::string>> {
      auto starting = asyncuv::create_subprocess_exec({"sh", "-c", "echo $0", std::to_string(i)},
                                                      Stdio::pipe(), Stdio::pipe(), Stdio::pipe());
      Process proc = co_await std::move(starting);
      auto talking = proc.communicate();
      auto [out, err] = co_await std::move(talking);
      (void)err;
      co_return std::pair<int, std::string>(proc.pid(), out);
    };
    auto body = [&]() -> Task<void> {
      std::vector<Task<std::pair<int, std::string>>> children;
      for (int i = 0; i < 200; ++i)
        children.push_back(one(i));
      auto all = asyncuv::gather(std::move(children));
      auto results = co_await all;
      for (int i = 0; i < 200; ++i) {
        CHECK(results[static_cast<std::size_t>(i)].second == std::to_string(i) + "\n");
        pids.push_back(results[static_cast<std::size_t>(i)].first);
      }
    };
    run_task(loop, body(), 120.0);
    loop.close();
  }
  CHECK(pids.size() == 200);
  for (int pid : pids)
    CHECK(reaped(pid));
  CHECK(count_open_fds() == before);
}
