// loop.subprocess_exec / subprocess_shell with a SubprocessProtocol: scenarios 57 and 58 of
// asyncio-semantics.md, errors, ownership, loop.close() and SIGCHLD handlers.
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "log_capture.hpp"
#include "loop_support.hpp"
#include "test_subprocess_support.hpp"

using namespace subprocess_test;
using asyncuv::Stdio;
using asyncuv::Task;
using test_support::failure_of;
using test_support::run_task;

namespace {

using Made = std::pair<std::shared_ptr<asyncuv::SubprocessTransport>, std::shared_ptr<Recorder>>;

Task<Made> shell(EventLoop& loop, std::string cmd, Stdio in = Stdio::pipe(),
                 Stdio out = Stdio::pipe(), Stdio err = Stdio::pipe()) {
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  auto starting = loop.subprocess_shell(factory, std::move(cmd), in, out, err);
  co_return co_await std::move(starting);
}

Task<Made> exec(EventLoop& loop, std::vector<std::string> argv, Stdio in = Stdio::pipe(),
                Stdio out = Stdio::pipe(), Stdio err = Stdio::pipe()) {
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  auto starting = loop.subprocess_exec(factory, std::move(argv), in, out, err);
  co_return co_await std::move(starting);
}

std::ptrdiff_t index_of(const std::vector<std::string>& events, const std::string& e) {
  auto it = std::find(events.begin(), events.end(), e);
  return it == events.end() ? -1 : it - events.begin();
}

}  // namespace

TEST_CASE(
    "57. order: connection_made, pipe data, pipe_connection_lost and process_exited, "
    "connection_lost last",
    "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = shell(loop, "printf out; printf err >&2; exit 3", Stdio::devnull());
    auto [transport, proto] = co_await std::move(starting);
    CHECK(proto->events == std::vector<std::string>{"made"});  // before subprocess_shell returned
    CHECK(proto->transport == transport);
    CHECK(transport->get_pid() > 0);
    co_await proto->done;
    const auto& ev = proto->events;
    INFO(Catch::Detail::stringify(ev));
    REQUIRE(ev.size() == 7);
    CHECK(ev.front() == "made");
    CHECK(ev.back() == "lost");
    // stdout's data, then stderr's, each before its pipe is lost; pipe_connection_lost and
    // process_exited may come in either order (asyncio documents no order between them).
    CHECK(ev[1] == "data1");
    CHECK(ev[2] == "data2");
    for (const char* e : {"pipe_lost1", "pipe_lost2", "exited"})
      CHECK(index_of(ev, e) >= 3);
    CHECK(proto->out == "out");
    CHECK(proto->err == "err");
    CHECK(proto->lost_exc == nullptr);
    CHECK(proto->returncode_at_exit == 3);
    CHECK(transport->get_returncode() == 3);
    CHECK(proto->pipe_errors.empty());
    CHECK(reaped(transport->get_pid()));
  };
  run_task(loop, body());
}

TEST_CASE("57. connection_lost waits for the stdin pipe as well as the exit", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = exec(loop, {"cat"});
    auto [transport, proto] = co_await std::move(starting);
    auto stdin_pipe =
        std::dynamic_pointer_cast<asyncuv::WriteTransport>(transport->get_pipe_transport(0));
    REQUIRE(stdin_pipe);
    CHECK(std::dynamic_pointer_cast<asyncuv::ReadTransport>(transport->get_pipe_transport(1)));
    CHECK(std::dynamic_pointer_cast<asyncuv::ReadTransport>(transport->get_pipe_transport(2)));
    CHECK(transport->get_pipe_transport(3) == nullptr);
    stdin_pipe->write("echo me");
    stdin_pipe->close();  // cat sees EOF, writes back and exits
    co_await proto->done;
    CHECK(proto->out == "echo me");
    CHECK(transport->get_returncode() == 0);
    CHECK(index_of(proto->events, "pipe_lost0") > 0);
    CHECK(proto->events.back() == "lost");
  };
  run_task(loop, body());
}

TEST_CASE("58. send_signal(SIGTERM) gives -15, terminate() -15, kill() -9", "[subprocess]") {
  EventLoop loop;
  auto body = [&](int how) -> Task<void> {
    auto starting = exec(loop, {"sleep", "60"});
    auto [transport, proto] = co_await std::move(starting);
    if (how == 0) transport->send_signal(SIGTERM);
    if (how == 1) transport->terminate();
    if (how == 2) transport->kill();
    if (how == 3) transport->send_signal(SIGUSR1);
    co_await proto->done;
    const int expected = how == 2 ? -SIGKILL : how == 3 ? -SIGUSR1 : -SIGTERM;
    CHECK(transport->get_returncode() == expected);
    CHECK(reaped(transport->get_pid()));
  };
  for (int how = 0; how < 4; ++how) {
    CAPTURE(how);
    run_task(loop, body(how));
  }
}

TEST_CASE("58. close() on a running child kills it; the transport still finishes", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = exec(loop, {"sleep", "60"});
    auto [transport, proto] = co_await std::move(starting);
    CHECK_FALSE(transport->is_closing());
    transport->close();
    CHECK(transport->is_closing());
    transport->close();  // idempotent
    co_await proto->done;
    CHECK(transport->get_returncode() == -SIGKILL);
    CHECK(proto->events.back() == "lost");
    CHECK(reaped(transport->get_pid()));
  };
  run_task(loop, body());
}

TEST_CASE("58. kill() after the transport finished throws ProcessLookupError", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = exec(loop, {"true"});
    auto [transport, proto] = co_await std::move(starting);
    co_await proto->done;
    CHECK(transport->get_returncode() == 0);
    CHECK_THROWS_AS(transport->kill(), asyncuv::ProcessLookupError);
    CHECK_THROWS_AS(transport->terminate(), asyncuv::ProcessLookupError);
    CHECK_THROWS_AS(transport->send_signal(SIGTERM), asyncuv::ProcessLookupError);
  };
  run_task(loop, body());
}

TEST_CASE("58. subprocess_shell(\"exit 7\") without pipes: returncode 7, no pipe transports",
          "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = shell(loop, "exit 7", Stdio::devnull(), Stdio::devnull(), Stdio::devnull());
    auto [transport, proto] = co_await std::move(starting);
    for (int fd = 0; fd < 3; ++fd)
      CHECK(transport->get_pipe_transport(fd) == nullptr);
    co_await proto->done;
    CHECK(transport->get_returncode() == 7);
    CHECK(proto->events == std::vector<std::string>{"made", "exited", "lost"});
  };
  run_task(loop, body());
}

TEST_CASE("58. a missing program throws FileNotFoundError naming it", "[subprocess]") {
  int before = count_open_fds();
  EventLoop loop;
  auto e = failure_of(loop, exec(loop, {"asyncuv-no-such-program", "x"}));
  REQUIRE(e != nullptr);
  try {
    std::rethrow_exception(e);
  } catch (const asyncuv::FileNotFoundError& err) {
    CHECK(err.errnum() == ENOENT);
    CHECK(std::string(err.what()) ==
          "[Errno 2] No such file or directory: 'asyncuv-no-such-program'");
  }
  // A missing cwd is named instead.
  asyncuv::SubprocessOptions options;
  options.cwd = "/nonexistent-asyncuv-dir";
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  auto e2 = failure_of(loop, loop.subprocess_exec(factory, {"true"}, Stdio::pipe(), Stdio::pipe(),
                                                  Stdio::pipe(), options));
  REQUIRE(e2 != nullptr);
  CHECK_THROWS_WITH(std::rethrow_exception(e2),
                    "[Errno 2] No such file or directory: '/nonexistent-asyncuv-dir'");
  loop.close();
  CHECK(count_open_fds() == before);  // the pipes made for it are closed
}

TEST_CASE("subprocess_exec argument errors", "[subprocess]") {
  EventLoop loop;
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  CHECK_THROWS_AS(run_task(loop, loop.subprocess_exec(factory, {})), asyncuv::ValueError);
  CHECK_THROWS_WITH(run_task(loop, loop.subprocess_exec(factory, {"true"}, Stdio::to_stdout())),
                    "STDOUT can only be used for stderr");
  CHECK_THROWS_WITH(run_task(loop, loop.subprocess_exec(factory, {std::string("a\0b", 3)})),
                    "embedded null byte");
  CHECK_THROWS_WITH(run_task(loop, loop.subprocess_exec(factory, {"true"}, Stdio::fd(-2))),
                    "Invalid file descriptor: -2");
  loop.close();
  auto starting = loop.subprocess_exec(factory, {"true"});
  EventLoop other;
  CHECK_THROWS_WITH(run_task(other, std::move(starting)), "Event loop is closed");
}

TEST_CASE("uid/gid: PermissionError without the privilege, the ids as root", "[subprocess]") {
  EventLoop loop;
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  asyncuv::SubprocessOptions options;
  if (::geteuid() != 0) {
    options.uid = 0;
    auto e = failure_of(loop, loop.subprocess_exec(factory, {"true"}, Stdio::devnull(),
                                                   Stdio::devnull(), Stdio::devnull(), options));
    CHECK(errno_of(e) == EPERM);
    CHECK_THROWS_AS(std::rethrow_exception(e), asyncuv::PermissionError);
    return;
  }
  WARN("running as root: the setuid/setgid success path is tested instead of EPERM");
  options.uid = 65534;
  options.gid = 65534;
  auto body = [&]() -> Task<void> {
    auto starting = loop.subprocess_shell(factory, "echo $(id -u):$(id -g)", Stdio::devnull(),
                                          Stdio::pipe(), Stdio::devnull(), options);
    auto [transport, proto] = co_await std::move(starting);
    co_await proto->done;
    CHECK(proto->out == "65534:65534\n");
  };
  run_task(loop, body());
}

TEST_CASE("exceptions from SubprocessProtocol callbacks reach the exception handler",
          "[subprocess]") {
  struct Throwing : Recorder {
    using Recorder::Recorder;
    void pipe_data_received(int fd, std::string_view data) override {
      Recorder::pipe_data_received(fd, data);
      throw asyncuv::ValueError("bad data");
    }
    void process_exited() override {
      Recorder::process_exited();
      throw asyncuv::RuntimeError("bad exit");
    }
  };
  EventLoop loop;
  std::vector<std::string> messages;
  loop.set_exception_handler([&](EventLoop&, const asyncuv::ExceptionContext& context) {
    try {
      std::rethrow_exception(context.exception());
    } catch (const std::exception& e) {
      messages.push_back(e.what());
    }
  });
  auto body = [&]() -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Throwing>(loop); };
    auto starting = loop.subprocess_shell(factory, "printf x", Stdio::devnull());
    auto [transport, proto] = co_await std::move(starting);
    co_await proto->done;  // connection_lost still comes
    CHECK(proto->out == "x");
    CHECK(transport->get_returncode() == 0);
  };
  run_task(loop, body());
  CHECK(std::count(messages.begin(), messages.end(), "bad data") == 1);
  CHECK(std::count(messages.begin(), messages.end(), "bad exit") == 1);
}

TEST_CASE("dropping every reference: the child still runs to its end, no zombie", "[subprocess]") {
  EventLoop loop;
  int pid = 0;
  std::weak_ptr<Recorder> weak;
  asyncuv::Future<void> done;
  auto body = [&]() -> Task<void> {
    auto starting = shell(loop, "printf bye", Stdio::devnull());
    auto [transport, proto] = co_await std::move(starting);
    pid = transport->get_pid();
    weak = proto;
    done = proto->done;
  };
  run_task(loop, body());
  auto wait_done = [&]() -> Task<void> { co_await done; };
  run_task(loop, wait_done());
  loop.run_until_complete(asyncuv::sleep(0));
  CHECK(weak.expired());  // the transport released its protocol after connection_lost
  CHECK(reaped(pid));
}

TEST_CASE("loop.close() with a running child kills and reaps it, leaking nothing", "[subprocess]") {
  int before = count_open_fds();
  int pid = 0;
  std::weak_ptr<Recorder> weak;
  std::vector<std::string> events;
  {
    EventLoop loop;
    auto body = [&]() -> Task<void> {
      auto starting = exec(loop, {"sleep", "60"});
      auto [transport, proto] = co_await std::move(starting);
      pid = transport->get_pid();
      weak = proto;
    };
    run_task(loop, body());
    events = weak.lock()->events;
    loop.close();
  }
  CHECK(weak.expired());
  CHECK(events == std::vector<std::string>{"made"});  // no callback after the loop closed
  CHECK(reaped(pid));
  CHECK(::kill(pid, 0) == -1);
  CHECK(count_open_fds() == before);
}

TEST_CASE("a SIGCHLD handler and subprocesses coexist: both are notified", "[subprocess]") {
  EventLoop loop;
  int sigchld = 0;
  loop.add_signal_handler(SIGCHLD, [&] { ++sigchld; });
  auto body = [&]() -> Task<void> {
    auto starting = exec(loop, {"true"});
    auto [transport, proto] = co_await std::move(starting);
    co_await proto->done;
    CHECK(transport->get_returncode() == 0);
    while (sigchld == 0)
      co_await asyncuv::sleep(0.01);
  };
  run_task(loop, body());
  CHECK(sigchld >= 1);
  CHECK(loop.remove_signal_handler(SIGCHLD));
  // libuv's own SIGCHLD watcher still works after the handler is gone.
  auto again = [&]() -> Task<void> {
    auto starting = exec(loop, {"sh", "-c", "exit 4"});
    auto [transport, proto] = co_await std::move(starting);
    co_await proto->done;
    CHECK(transport->get_returncode() == 4);
  };
  run_task(loop, again());
}

TEST_CASE("stdin flow control reaches the SubprocessProtocol; a child that never reads",
          "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = exec(loop, {"sleep", "60"});
    auto [transport, proto] = co_await std::move(starting);
    auto stdin_pipe =
        std::dynamic_pointer_cast<asyncuv::WriteTransport>(transport->get_pipe_transport(0));
    stdin_pipe->write(std::string(1 << 20, 'x'));  // far more than a socket buffer holds
    CHECK(proto->pauses == 1);
    CHECK(stdin_pipe->get_write_buffer_size() > 0);
    co_await asyncuv::sleep(0.05);
    CHECK(proto->resumes == 0);  // nobody reads: still paused, nothing hangs
    transport->kill();
    co_await proto->done;
    CHECK(transport->get_returncode() == -SIGKILL);
    CHECK(index_of(proto->events, "pipe_lost0") > 0);
  };
  run_task(loop, body());
}

TEST_CASE("repr of the subprocess transport", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto starting = exec(loop, {"true"}, Stdio::devnull(), Stdio::pipe(), Stdio::devnull());
    auto [transport, proto] = co_await std::move(starting);
    auto* t = dynamic_cast<asyncuv::detail::UnixSubprocessTransport*>(transport.get());
    REQUIRE(t != nullptr);
    std::string text = t->repr();
    CHECK(text.rfind("<_UnixSubprocessTransport pid=" + std::to_string(transport->get_pid()), 0) ==
          0);
    CHECK(text.find("stdout=<_UnixReadPipeTransport ") != std::string::npos);
    co_await proto->done;
    CHECK(t->repr().find("returncode=0") != std::string::npos);
  };
  run_task(loop, body());
}
