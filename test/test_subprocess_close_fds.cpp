// Semantics 69: Popen's close_fds (default true). The child gets only 0, 1, 2 and pass_fds,
// even a descriptor opened without O_CLOEXEC stays behind; close_fds=false lets such a
// descriptor through. Both spawn paths: uv_spawn, and asyncuv's fork/exec (process_group).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <asyncuv/asyncuv.hpp>

#include <string>
#include <utility>
#include <vector>

#include "loop_support.hpp"

using asyncuv::EventLoop;
using asyncuv::Stdio;
using asyncuv::SubprocessOptions;
using asyncuv::Task;

namespace {

/// An open descriptor without FD_CLOEXEC (what a library calling open() without O_CLOEXEC
/// leaves around), closed at the end of the test.
struct LeakyFd {
  int fd = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  LeakyFd() { REQUIRE(fd >= 3); }
  ~LeakyFd() { ::close(fd); }
  bool inheritable() const { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0; }
};

/// Runs a shell that reports whether its descriptor `fd` is open; dash only redirects single
/// digits, so it looks at /proc.
Task<std::string> child_sees(int fd, SubprocessOptions options) {
  std::string cmd =
      "if [ -e /proc/$$/fd/" + std::to_string(fd) + " ]; then echo open; else echo closed; fi";
  std::vector<std::string> argv{"sh", "-c", cmd};
  asyncuv::Process proc = co_await asyncuv::create_subprocess_exec(
      std::move(argv), Stdio::devnull(), Stdio::pipe(), Stdio::inherit(), std::move(options));
  auto [out, err] = co_await proc.communicate();
  int code = co_await proc.wait();
  CHECK(code == 0);
  co_return out;
}

std::string run_child(EventLoop& loop, int fd, SubprocessOptions options) {
  return test_support::run_task(loop, child_sees(fd, std::move(options)));
}

}  // namespace

TEST_CASE("69: close_fds (default): a descriptor without O_CLOEXEC does not reach the child",
          "[subprocess][close_fds]") {
  EventLoop loop;
  LeakyFd leaky;
  SubprocessOptions options;
  CHECK(options.close_fds);
  SECTION("uv_spawn") {}
  SECTION("fork/exec with process_group") {
    options.process_group = 0;
  }
  CHECK(run_child(loop, leaky.fd, options) == "closed\n");
  CHECK(leaky.inheritable());  // the parent's descriptor is given its flag back
  loop.close();
}

TEST_CASE("69: close_fds=false: a descriptor without O_CLOEXEC is inherited",
          "[subprocess][close_fds]") {
  EventLoop loop;
  LeakyFd leaky;
  SubprocessOptions options;
  options.close_fds = false;
  SECTION("uv_spawn") {}
  SECTION("fork/exec with process_group") {
    options.process_group = 0;
  }
  CHECK(run_child(loop, leaky.fd, options) == "open\n");
  CHECK(leaky.inheritable());
  loop.close();
}

TEST_CASE("69: pass_fds are kept, everything else closed; asyncuv's descriptors never leak",
          "[subprocess][close_fds]") {
  EventLoop loop;
  LeakyFd passed;
  LeakyFd other;
  SubprocessOptions options;
  options.pass_fds = {passed.fd};
  SECTION("uv_spawn") {}
  SECTION("fork/exec with process_group") {
    options.process_group = 0;
  }
  CHECK(run_child(loop, passed.fd, options) == "open\n");
  CHECK(run_child(loop, other.fd, options) == "closed\n");
  CHECK(passed.inheritable());
  CHECK(other.inheritable());
  // A close-on-exec descriptor stays close-on-exec (and out of the child) either way.
  int cloexec = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(cloexec >= 0);
  options.close_fds = false;
  options.pass_fds.clear();
  CHECK(run_child(loop, cloexec, options) == "closed\n");
  CHECK((::fcntl(cloexec, F_GETFD) & FD_CLOEXEC) != 0);
  ::close(cloexec);
  loop.close();
}

TEST_CASE("69: an inheritable descriptor given as the child's stdout reaches it as fd 1 only",
          "[subprocess][close_fds]") {
  EventLoop loop;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);  // no O_CLOEXEC
  auto body = [&]() -> Task<int> {
    std::string cmd = "echo out; [ -e /proc/$$/fd/" + std::to_string(fds[1]) + " ] && echo leak";
    std::vector<std::string> argv{"sh", "-c", cmd};
    asyncuv::Process proc = co_await asyncuv::create_subprocess_exec(
        std::move(argv), Stdio::devnull(), Stdio::fd(fds[1]), Stdio::inherit());
    co_return co_await proc.wait();
  };
  CHECK(test_support::run_task(loop, body()) != 0);  // the test of the leak failed: no leak
  ::close(fds[1]);
  char buf[16] = {};
  CHECK(::read(fds[0], buf, sizeof buf) == 4);
  CHECK(std::string(buf) == "out\n");
  ::close(fds[0]);
  loop.close();
}
