// SubprocessOptions and the kinds of Stdio: env (replace and extend), cwd, executable,
// pass_fds, start_new_session; DEVNULL, STDOUT for stderr, an existing fd, inherit.
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

#include "byte_compare.hpp"
#include "loop_support.hpp"
#include "temp_dir.hpp"
#include "test_subprocess_support.hpp"

using namespace subprocess_test;
using asyncuv::Stdio;
using asyncuv::SubprocessOptions;
using asyncuv::Task;
using test_support::failure_of;
using test_support::run_task;

namespace {

/// Runs `argv` with stdout a pipe (the other streams as given) and returns (returncode, out).
Task<std::pair<int, std::string>> run(EventLoop& loop, std::vector<std::string> argv,
                                      SubprocessOptions options, Stdio in = Stdio::devnull(),
                                      Stdio err = Stdio::pipe()) {
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  auto starting =
      loop.subprocess_exec(factory, std::move(argv), in, Stdio::pipe(), err, std::move(options));
  auto [transport, proto] = co_await std::move(starting);
  co_await proto->done;
  co_return std::pair<int, std::string>(*transport->get_returncode(), proto->out);
}

std::string link_of(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  REQUIRE(n > 0);
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("env replaces the environment; extend_env adds to it", "[subprocess]") {
  EventLoop loop;
  ::setenv("ASYNCUV_PARENT_VAR", "parent", 1);
  SubprocessOptions replace;
  replace.env = std::map<std::string, std::string>{{"ONLY", "this"}};
  auto [rc, out] = run_task(loop, run(loop, {"/usr/bin/env"}, replace));
  CHECK(rc == 0);
  CHECK(out == "ONLY=this\n");

  SubprocessOptions extend;
  extend.extend_env = {{"ASYNCUV_CHILD_VAR", "child"}};
  auto [rc2, out2] = run_task(
      loop, run(loop, {"sh", "-c", "echo $ASYNCUV_PARENT_VAR-$ASYNCUV_CHILD_VAR"}, extend));
  CHECK(rc2 == 0);
  CHECK(out2 == "parent-child\n");

  SubprocessOptions both;
  both.env = std::map<std::string, std::string>{{"A", "1"}, {"PATH", "/usr/bin:/bin"}};
  both.extend_env = {{"B", "2"}, {"A", "3"}};
  auto [rc3, out3] = run_task(loop, run(loop, {"sh", "-c", "echo $A$B$ASYNCUV_PARENT_VAR"}, both));
  CHECK(rc3 == 0);
  CHECK(out3 == "32\n");
  ::unsetenv("ASYNCUV_PARENT_VAR");
}

TEST_CASE("cwd runs the child in that directory", "[subprocess]") {
  EventLoop loop;
  test_support::TempDir dir;
  SubprocessOptions options;
  options.cwd = dir.path;
  auto [rc, out] = run_task(loop, run(loop, {"pwd", "-P"}, options));
  CHECK(rc == 0);
  char real[PATH_MAX];
  REQUIRE(::realpath(dir.path.c_str(), real) != nullptr);
  CHECK(out == std::string(real) + "\n");
}

TEST_CASE("executable runs another program than argv[0] names", "[subprocess]") {
  EventLoop loop;
  SubprocessOptions options;
  options.executable = "/bin/sh";
  auto [rc, out] = run_task(loop, run(loop, {"my-name", "-c", "echo $0"}, options));
  CHECK(rc == 0);
  CHECK(out == "my-name\n");
}

TEST_CASE("pass_fds: the child writes to a descriptor passed under its number", "[subprocess]") {
  EventLoop loop;
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  // The write end as the child sees it (dash only redirects to single-digit descriptors, so
  // the child opens it through /proc).
  std::string cmd = "echo hi > /proc/self/fd/" + std::to_string(fds[1]);
  SubprocessOptions options;
  options.pass_fds = {fds[1]};
  auto [rc, out] = run_task(loop, run(loop, {"sh", "-c", cmd}, options));
  CHECK(rc == 0);
  // Without pass_fds the (close-on-exec) descriptor is not there.
  auto [rc2, out2] = run_task(loop, run(loop, {"sh", "-c", cmd}, SubprocessOptions{}));
  CHECK(rc2 != 0);
  ::close(fds[1]);
  char buf[16] = {};
  CHECK(::read(fds[0], buf, sizeof buf) == 3);
  CHECK(std::string(buf) == "hi\n");
  ::close(fds[0]);
}

TEST_CASE("start_new_session: the child leads a new session", "[subprocess]") {
  EventLoop loop;
  SubprocessOptions options;
  options.start_new_session = true;
  auto body = [&]() -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    auto starting = loop.subprocess_exec(factory, {"cat"}, Stdio::pipe(), Stdio::pipe(),
                                         Stdio::pipe(), options);
    auto [transport, proto] = co_await std::move(starting);
    int pid = transport->get_pid();
    CHECK(::getsid(pid) == pid);
    CHECK(::getpgid(pid) == pid);
    CHECK(::getsid(pid) != ::getsid(0));
    transport->get_pipe_transport(0)->close();
    co_await proto->done;
    CHECK(transport->get_returncode() == 0);
  };
  run_task(loop, body());
}

TEST_CASE("Stdio: DEVNULL, STDOUT for stderr, an existing fd, inherit", "[subprocess]") {
  EventLoop loop;
  SECTION("devnull") {
    auto body = [&]() -> Task<void> {
      auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
      auto starting = loop.subprocess_exec(factory, {"sh", "-c", "cat; echo done"},
                                           Stdio::devnull(), Stdio::pipe(), Stdio::devnull());
      auto [transport, proto] = co_await std::move(starting);
      CHECK(transport->get_pipe_transport(0) == nullptr);
      CHECK(transport->get_pipe_transport(2) == nullptr);
      co_await proto->done;
      CHECK(proto->out == "done\n");  // stdin read EOF at once
    };
    run_task(loop, body());
  }
  SECTION("stderr to stdout") {
    auto [rc, out] = run_task(loop, run(loop, {"sh", "-c", "echo out; echo err >&2; echo out2"},
                                        SubprocessOptions{}, Stdio::devnull(), Stdio::to_stdout()));
    CHECK(rc == 0);
    CHECK(out == "out\nerr\nout2\n");
  }
  SECTION("an existing fd") {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    auto body = [&]() -> Task<void> {
      auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
      auto starting = loop.subprocess_exec(factory, {"sh", "-c", "echo to-fd; echo e >&2"},
                                           Stdio::devnull(), Stdio::fd(fds[1]), Stdio::fd(fds[1]));
      auto [transport, proto] = co_await std::move(starting);
      CHECK(transport->get_pipe_transport(1) == nullptr);
      co_await proto->done;
    };
    run_task(loop, body());
    CHECK(::fcntl(fds[1], F_GETFD) != -1);  // the parent's descriptor stays open
    ::close(fds[1]);
    char buf[32] = {};
    CHECK(::read(fds[0], buf, sizeof buf) == 8);
    CHECK(std::string(buf) == "to-fd\ne\n");
    ::close(fds[0]);
  }
  SECTION("inherit") {
    // The child's stderr is the test's own stderr.
    std::string mine = link_of("/proc/self/fd/2");
    auto [rc, out] = run_task(loop, run(loop, {"readlink", "/proc/self/fd/2"}, SubprocessOptions{},
                                        Stdio::devnull(), Stdio::inherit()));
    CHECK(rc == 0);
    CHECK(out == mine + "\n");
  }
}

// ---- process_group (setpgid in the child: asyncuv's own fork/exec) ------------------------

namespace {

/// Shell text printing "<its pid> <its process group>" (field 5 of /proc/<pid>/stat).
const char* const print_pid_and_pgid = "echo $$ $(cut -d' ' -f5 /proc/$$/stat)";

/// Runs print_pid_and_pgid with `options`; returns (the transport's pid, what the child
/// printed).
Task<std::pair<int, std::string>> pid_and_group(EventLoop& loop, SubprocessOptions options) {
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  auto starting = loop.subprocess_shell(factory, print_pid_and_pgid, Stdio::devnull(),
                                        Stdio::pipe(), Stdio::pipe(), std::move(options));
  auto [transport, proto] = co_await std::move(starting);
  co_await proto->done;
  CHECK(transport->get_returncode() == 0);
  CHECK(proto->err.empty());
  co_return std::pair<int, std::string>(transport->get_pid(), proto->out);
}

/// A process group id as the child prints it.
std::string group_text(int pid, int pgid) {
  return std::to_string(pid) + " " + std::to_string(pgid) + "\n";
}

}  // namespace

TEST_CASE("process_group=0: the child leads a new process group", "[subprocess]") {
  EventLoop loop;
  SubprocessOptions options;
  options.process_group = 0;
  auto [pid, out] = run_task(loop, pid_and_group(loop, options));
  CHECK(out == group_text(pid, pid));
  CHECK(pid != ::getpgrp());
  CHECK(reaped(pid));
  // Seen from the parent while the child runs, too.
  auto body = [&]() -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    auto starting = loop.subprocess_exec(factory, {"cat"}, Stdio::pipe(), Stdio::pipe(),
                                         Stdio::pipe(), options);
    auto [transport, proto] = co_await std::move(starting);
    int child = transport->get_pid();
    CHECK(::getpgid(child) == child);
    CHECK(::getsid(child) == ::getsid(0));  // same session: only the group is new
    transport->get_pipe_transport(0)->close();
    co_await proto->done;
    CHECK(transport->get_returncode() == 0);
    CHECK(proto->events.back() == "lost");
  };
  run_task(loop, body());
}

TEST_CASE("process_group=the parent's group: the child stays in that group", "[subprocess]") {
  EventLoop loop;
  SubprocessOptions options;
  options.process_group = ::getpgrp();
  auto [pid, out] = run_task(loop, pid_and_group(loop, options));
  CHECK(out == group_text(pid, ::getpgrp()));
  // Without process_group (uv_spawn) the child is in the parent's group as well.
  auto [pid2, out2] = run_task(loop, pid_and_group(loop, SubprocessOptions{}));
  CHECK(out2 == group_text(pid2, ::getpgrp()));
}

TEST_CASE("process_group=another child's group: a second child joins it", "[subprocess]") {
  EventLoop loop;
  auto body = [&]() -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    SubprocessOptions leader_options;
    leader_options.process_group = 0;
    auto starting = loop.subprocess_exec(factory, {"cat"}, Stdio::pipe(), Stdio::devnull(),
                                         Stdio::devnull(), leader_options);
    auto [leader, leader_proto] = co_await std::move(starting);
    SubprocessOptions member_options;
    member_options.process_group = leader->get_pid();
    auto joining = pid_and_group(loop, member_options);
    auto [pid, out] = co_await std::move(joining);
    CHECK(out == group_text(pid, leader->get_pid()));
    leader->get_pipe_transport(0)->close();
    co_await leader_proto->done;
    CHECK(leader->get_returncode() == 0);
  };
  run_task(loop, body());
}

TEST_CASE("process_group with cwd, env, extend_env and a stdout pipe: every byte", "[subprocess]") {
  EventLoop loop;
  test_support::TempDir dir;
  char real[PATH_MAX];
  REQUIRE(::realpath(dir.path.c_str(), real) != nullptr);
  SubprocessOptions options;
  options.process_group = 0;
  options.cwd = dir.path;
  options.env = std::map<std::string, std::string>{{"A", "1"}, {"PATH", "/usr/bin:/bin"}};
  options.extend_env = {{"B", "2"}};
  // The child names its environment (HOME is the parent's, not given), directory and group,
  // then writes 200 kB (more than a pipe holds).
  std::string cmd =
      "echo \"$A $B $PATH ${HOME-unset}\"; pwd -P; echo $$ $(cut -d' ' -f5 /proc/$$/stat); "
      "head -c 200000 /dev/zero | tr '\\0' x";
  auto body = [&]() -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    auto starting = loop.subprocess_exec(factory, {"sh", "-c", cmd}, Stdio::devnull(),
                                         Stdio::pipe(), Stdio::pipe(), options);
    auto [transport, proto] = co_await std::move(starting);
    co_await proto->done;
    CHECK(transport->get_returncode() == 0);
    const int pid = transport->get_pid();
    const std::string expected = "1 2 /usr/bin:/bin unset\n" + std::string(real) + "\n" +
                                 group_text(pid, pid) + std::string(200000, 'x');
    CHECK(proto->out.size() == expected.size());
    CHECK(proto->out == expected);
    CHECK(proto->err.empty());
  };
  run_task(loop, body());
}

TEST_CASE("process_group with executable, pass_fds, stdin data, stderr to stdout", "[subprocess]") {
  EventLoop loop;
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  SubprocessOptions options;
  options.process_group = 0;
  options.executable = "/bin/sh";
  options.pass_fds = {fds[1]};
  std::string cmd =
      "echo $0; cat; echo err >&2; echo passed > /proc/self/fd/" + std::to_string(fds[1]);
  auto body = [&]() -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    auto starting = loop.subprocess_exec(factory, {"my-name", "-c", cmd}, Stdio::pipe(),
                                         Stdio::pipe(), Stdio::to_stdout(), options);
    auto [transport, proto] = co_await std::move(starting);
    CHECK(transport->get_pipe_transport(2) == nullptr);
    auto stdin_pipe =
        std::dynamic_pointer_cast<asyncuv::WriteTransport>(transport->get_pipe_transport(0));
    REQUIRE(stdin_pipe);
    stdin_pipe->write("from stdin\n");
    stdin_pipe->close();
    co_await proto->done;
    CHECK(transport->get_returncode() == 0);
    CHECK(proto->out == "my-name\nfrom stdin\nerr\n");
  };
  run_task(loop, body());
  ::close(fds[1]);
  char buf[16] = {};
  CHECK(::read(fds[0], buf, sizeof buf) == 7);
  CHECK(std::string(buf) == "passed\n");
  ::close(fds[0]);
}

TEST_CASE("process_group with the parent's stdout and stderr swapped for the child",
          "[subprocess]") {
  // The child's stdout is the parent's fd 2 and its stderr the parent's fd 1: sources that are
  // themselves standard descriptors must not be overwritten before they are duplicated. The
  // test's own fds 1 and 2 are pipes meanwhile (and nothing is checked until they are back).
  EventLoop loop;
  int to_one[2], to_two[2];
  REQUIRE(::pipe2(to_one, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(to_two, O_CLOEXEC) == 0);
  std::fflush(stdout);
  std::fflush(stderr);
  const int saved_one = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  const int saved_two = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
  REQUIRE(saved_one >= 0);
  REQUIRE(saved_two >= 0);
  ::dup2(to_one[1], 1);
  ::dup2(to_two[1], 2);
  SubprocessOptions options;
  options.process_group = 0;
  std::optional<int> returncode;
  auto body = [&]() -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    auto starting = loop.subprocess_shell(factory, "echo out; echo err >&2", Stdio::devnull(),
                                          Stdio::fd(2), Stdio::fd(1), options);
    auto [transport, proto] = co_await std::move(starting);
    co_await proto->done;
    returncode = transport->get_returncode();
  };
  std::exception_ptr failure;
  try {
    run_task(loop, body());
  } catch (...) {
    failure = std::current_exception();
  }
  ::dup2(saved_one, 1);
  ::dup2(saved_two, 2);
  ::close(saved_one);
  ::close(saved_two);
  ::close(to_one[1]);
  ::close(to_two[1]);
  if (failure) std::rethrow_exception(failure);
  CHECK(returncode == 0);
  char buf[16] = {};
  CHECK(::read(to_two[0], buf, sizeof buf) == 4);  // the child's stdout: the parent's fd 2
  CHECK(std::string(buf) == "out\n");
  char buf2[16] = {};
  CHECK(::read(to_one[0], buf2, sizeof buf2) == 4);  // the child's stderr: the parent's fd 1
  CHECK(std::string(buf2) == "err\n");
  ::close(to_one[0]);
  ::close(to_two[0]);
}

TEST_CASE("process_group with uid and gid", "[subprocess]") {
  EventLoop loop;
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  SubprocessOptions options;
  options.process_group = 0;
  if (::geteuid() != 0) {
    options.uid = 0;
    auto e = failure_of(loop, loop.subprocess_exec(factory, {"true"}, Stdio::devnull(),
                                                   Stdio::devnull(), Stdio::devnull(), options));
    CHECK(errno_of(e) == EPERM);
    CHECK_THROWS_AS(std::rethrow_exception(e), asyncuv::PermissionError);
    return;
  }
  options.uid = 65534;
  options.gid = 65534;
  auto body = [&]() -> Task<void> {
    auto starting = loop.subprocess_shell(
        factory, "echo $(id -u):$(id -g):$(id -G) $$ $(cut -d' ' -f5 /proc/$$/stat)",
        Stdio::devnull(), Stdio::pipe(), Stdio::pipe(), options);
    auto [transport, proto] = co_await std::move(starting);
    co_await proto->done;
    const int pid = transport->get_pid();
    // No supplementary group of root's is left.
    CHECK(proto->out == "65534:65534:65534 " + group_text(pid, pid));
    CHECK(proto->err.empty());
  };
  run_task(loop, body());
}

TEST_CASE("process_group: a missing program or cwd raises FileNotFoundError, nothing leaks",
          "[subprocess]") {
  int before = count_open_fds();
  {
    EventLoop loop;
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    SubprocessOptions options;
    options.process_group = 0;
    auto e = failure_of(
        loop, loop.subprocess_exec(factory, {"asyncuv-no-such-program", "x"}, Stdio::pipe(),
                                   Stdio::pipe(), Stdio::pipe(), options));
    REQUIRE(e != nullptr);
    CHECK(errno_of(e) == ENOENT);
    CHECK_THROWS_AS(std::rethrow_exception(e), asyncuv::FileNotFoundError);
    CHECK_THROWS_WITH(std::rethrow_exception(e),
                      "[Errno 2] No such file or directory: 'asyncuv-no-such-program'");
    options.cwd = "/nonexistent-asyncuv-dir";
    auto e2 = failure_of(loop, loop.subprocess_exec(factory, {"true"}, Stdio::pipe(), Stdio::pipe(),
                                                    Stdio::pipe(), options));
    REQUIRE(e2 != nullptr);
    CHECK_THROWS_WITH(std::rethrow_exception(e2),
                      "[Errno 2] No such file or directory: '/nonexistent-asyncuv-dir'");
    // Not executable: PermissionError.
    options.cwd.reset();
    test_support::TempDir dir;
    const std::string plain = dir.file("plain");
    int fd = ::open(plain.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    ::close(fd);
    auto e3 = failure_of(loop, loop.subprocess_exec(factory, {plain}, Stdio::devnull(),
                                                    Stdio::devnull(), Stdio::devnull(), options));
    CHECK(errno_of(e3) == EACCES);
    CHECK_THROWS_AS(std::rethrow_exception(e3), asyncuv::PermissionError);
    loop.close();
  }
  CHECK(count_open_fds() == before);
}

TEST_CASE("process_group: a group the child cannot join raises PermissionError", "[subprocess]") {
  EventLoop loop;
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  SubprocessOptions options;
  // As in Python: setsid() makes the child a session leader, which cannot change its group.
  options.process_group = 0;
  options.start_new_session = true;
  auto e = failure_of(loop, loop.subprocess_exec(factory, {"true"}, Stdio::devnull(),
                                                 Stdio::devnull(), Stdio::devnull(), options));
  CHECK(errno_of(e) == EPERM);
  CHECK_THROWS_AS(std::rethrow_exception(e), asyncuv::PermissionError);
  // The group of a child that leads another session: EPERM as well.
  auto body = [&]() -> Task<void> {
    SubprocessOptions session_options;
    session_options.start_new_session = true;
    auto starting = loop.subprocess_exec(factory, {"cat"}, Stdio::pipe(), Stdio::devnull(),
                                         Stdio::devnull(), session_options);
    auto [leader, leader_proto] = co_await std::move(starting);
    SubprocessOptions join;
    join.process_group = leader->get_pid();
    auto joining = loop.subprocess_exec(factory, {"true"}, Stdio::devnull(), Stdio::devnull(),
                                        Stdio::devnull(), join);
    std::exception_ptr e2;
    try {
      co_await std::move(joining);
    } catch (...) {
      e2 = std::current_exception();
    }
    CHECK(errno_of(e2) == EPERM);
    leader->get_pipe_transport(0)->close();
    co_await leader_proto->done;
    CHECK(leader->get_returncode() == 0);
  };
  run_task(loop, body());
}

TEST_CASE("process_group: a negative group raises ValueError", "[subprocess]") {
  EventLoop loop;
  auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
  SubprocessOptions options;
  options.process_group = -1;
  CHECK_THROWS_AS(run_task(loop, loop.subprocess_exec(factory, {"true"}, Stdio::devnull(),
                                                      Stdio::devnull(), Stdio::devnull(), options)),
                  asyncuv::ValueError);
  CHECK_THROWS_WITH(
      run_task(loop, loop.subprocess_shell(factory, "true", Stdio::devnull(), Stdio::devnull(),
                                           Stdio::devnull(), options)),
      "process_group must not be negative");
}

TEST_CASE("process_group: kill() gives -9, terminate() -15, close() kills", "[subprocess]") {
  EventLoop loop;
  SubprocessOptions options;
  options.process_group = 0;
  auto body = [&](int how) -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    auto starting = loop.subprocess_exec(factory, {"sleep", "60"}, Stdio::devnull(), Stdio::pipe(),
                                         Stdio::pipe(), options);
    auto [transport, proto] = co_await std::move(starting);
    if (how == 0) transport->kill();
    if (how == 1) transport->terminate();
    if (how == 2) transport->close();
    co_await proto->done;
    CHECK(transport->get_returncode() == (how == 1 ? -SIGTERM : -SIGKILL));
    CHECK(proto->events.back() == "lost");
    CHECK(reaped(transport->get_pid()));
    CHECK_THROWS_AS(transport->kill(), asyncuv::ProcessLookupError);
  };
  for (int how = 0; how < 3; ++how) {
    CAPTURE(how);
    run_task(loop, body(how));
  }
}

TEST_CASE("process_group: create_subprocess_exec, communicate through cat, exit status",
          "[subprocess]") {
  EventLoop loop;
  SubprocessOptions options;
  options.process_group = 0;
  std::string input;
  for (int i = 0; i < 100000; ++i)
    input.push_back(static_cast<char>('a' + (i * 7 + i / 13) % 26));
  auto body = [&]() -> Task<void> {
    auto starting = asyncuv::create_subprocess_exec({"cat"}, Stdio::pipe(), Stdio::pipe(),
                                                    Stdio::pipe(), options);
    asyncuv::Process proc = co_await std::move(starting);
    CHECK(::getpgid(proc.pid()) == proc.pid());
    auto talking = proc.communicate(input);
    auto [out, err] = co_await std::move(talking);
    CHECK(out.size() == input.size());
    CHECK(test_support::byte_difference(out, input) == "");
    CHECK(err.empty());
    CHECK(proc.returncode() == 0);

    auto starting2 = asyncuv::create_subprocess_shell("exit 7", Stdio::devnull(), Stdio::devnull(),
                                                      Stdio::devnull(), options);
    asyncuv::Process proc2 = co_await std::move(starting2);
    auto waiting = proc2.wait();
    int rc = co_await std::move(waiting);
    CHECK(rc == 7);
  };
  run_task(loop, body());
}

TEST_CASE("process_group: SIGCHLD handlers and uv_spawn children all keep working",
          "[subprocess]") {
  EventLoop loop;
  int sigchld = 0;
  loop.add_signal_handler(SIGCHLD, [&] { ++sigchld; });
  SubprocessOptions grouped;
  grouped.process_group = 0;
  auto body = [&]() -> Task<void> {
    auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
    // One child of each kind at once, exiting in the other order than they started.
    auto starting = loop.subprocess_shell(factory, "read x; exit 3", Stdio::pipe(),
                                          Stdio::devnull(), Stdio::devnull(), grouped);
    auto [slow, slow_proto] = co_await std::move(starting);
    auto starting2 = loop.subprocess_shell(factory, "exit 4", Stdio::devnull(), Stdio::devnull(),
                                           Stdio::devnull());
    auto [quick, quick_proto] = co_await std::move(starting2);
    co_await quick_proto->done;
    CHECK(quick->get_returncode() == 4);
    CHECK_FALSE(slow->get_returncode().has_value());
    auto stdin_pipe =
        std::dynamic_pointer_cast<asyncuv::WriteTransport>(slow->get_pipe_transport(0));
    stdin_pipe->write("go\n");
    co_await slow_proto->done;
    CHECK(slow->get_returncode() == 3);
    while (sigchld == 0)
      co_await asyncuv::sleep(0.01);
  };
  run_task(loop, body());
  CHECK(sigchld >= 1);
  CHECK(loop.remove_signal_handler(SIGCHLD));
  // Without the handler, a process-group child's exit is still seen.
  auto [pid, out] = run_task(loop, pid_and_group(loop, grouped));
  CHECK(out == group_text(pid, pid));
}

TEST_CASE("process_group: loop.close() with a running child kills and reaps it, no fd leak",
          "[subprocess]") {
  int before = count_open_fds();
  int pid = 0;
  std::weak_ptr<Recorder> weak;
  std::vector<std::string> events;
  {
    EventLoop loop;
    SubprocessOptions options;
    options.process_group = 0;
    auto body = [&]() -> Task<void> {
      auto factory = [&loop] { return std::make_shared<Recorder>(loop); };
      auto starting = loop.subprocess_exec(factory, {"sleep", "60"}, Stdio::pipe(), Stdio::pipe(),
                                           Stdio::pipe(), options);
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
  REQUIRE(pid > 0);
  CHECK(reaped(pid));  // waitpid: -1 / ECHILD, no zombie
  CHECK(::kill(pid, 0) == -1);
  CHECK(count_open_fds() == before);
}
