// Accepting when the process is out of descriptors: asyncio reports "socket.accept() out of
// system resource", stops watching the listening socket for a second, then accepts the
// connections that waited meanwhile (libuv's own uv_listen would drop them instead).
#include "server_test_support.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

using namespace server_test;

namespace {

/// Lowers RLIMIT_NOFILE and fills every free descriptor below it, so that the next
/// accept() fails with EMFILE. Restores the limit and closes the fillers when destroyed (or
/// earlier, with release()).
///
/// While the descriptors are exhausted, only code paths that already ran in the process may
/// run: UBSan's vptr check needs a pipe to validate a type it meets for the first time, and
/// reports a false "invalid vptr" without one. So nothing here asserts until release(), the
/// exception handlers release first thing, and warm_up() runs the error path's types first.
class DescriptorsExhausted {
 public:
  DescriptorsExhausted() { ok_ = ::getrlimit(RLIMIT_NOFILE, &saved_) == 0 && exhaust(); }
  ~DescriptorsExhausted() { release(); }
  DescriptorsExhausted(const DescriptorsExhausted&) = delete;
  DescriptorsExhausted& operator=(const DescriptorsExhausted&) = delete;

  /// True if the limit went down and every descriptor below it was taken (check after
  /// release()).
  bool ok() const noexcept { return ok_; }

  /// Gives the descriptors back and restores the limit.
  void release() noexcept {
    for (int fd : fillers_)
      ::close(fd);
    fillers_.clear();
    if (lowered_) {
      ::setrlimit(RLIMIT_NOFILE, &saved_);
      lowered_ = false;
    }
  }

  /// Runs what the accept error path runs (an OSError described in an exception context),
  /// before the descriptors run out.
  static void warm_up() {
    asyncuv::ExceptionContext context("warm-up", asyncuv::make_os_error(EMFILE));
    context.set("socket", 0, "warm-up");
    asyncuv::ExceptionContext copy = context;
    CHECK(holds<asyncuv::OSError>(copy.exception()));
  }

 private:
  bool exhaust() {
    // The highest descriptor in use, counted before the limit goes down (reading
    // /proc/self/fd needs a descriptor of its own).
    int highest = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return false;
    const int own = ::dirfd(dir);
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      int fd = std::atoi(entry->d_name);
      if (fd != own) highest = std::max(highest, fd);
    }
    ::closedir(dir);
    fillers_.reserve(highest + 8);  // no allocation needs a descriptor, but keep it simple
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest + 1 + 4);
    if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) return false;
    lowered_ = true;
    for (;;) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return errno == EMFILE && fillers_.size() >= 4;
      fillers_.push_back(fd);
    }
  }

  rlimit saved_{};
  bool lowered_ = false;
  bool ok_ = false;
  std::vector<int> fillers_;
};

}  // namespace

TEST_CASE("EMFILE on accept: reported, accepting pauses for a second, then resumes", "[server]") {
  Recorders r;
  EventLoop loop;
  std::vector<asyncuv::ExceptionContext> contexts;
  double error_time = -1;
  std::optional<DescriptorsExhausted> exhausted;
  loop.set_exception_handler([&](EventLoop& l, const asyncuv::ExceptionContext& c) {
    if (exhausted) exhausted->release();  // first thing: see DescriptorsExhausted
    if (contexts.empty()) error_time = l.time();
    contexts.push_back(c);
  });
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  const SockAddr address = server->sockets()[0].getsockname();
  const int listen_fd = server->sockets()[0].fileno();

  // The client sockets exist before the descriptors run out.
  constexpr int clients = 3;
  std::vector<Socket> sockets;
  for (int i = 0; i < clients; ++i)
    sockets.emplace_back(AF_INET, SOCK_STREAM);

  // The clients connect (the kernel queues them) before the server accepts: it does so once
  // the loop runs, with every descriptor taken.
  for (Socket& client : sockets) {
    int rc = ::connect(client.fileno(), address.get(), address.size());
    REQUIRE((rc == 0 || errno == EINPROGRESS));
  }
  DescriptorsExhausted::warm_up();
  exhausted.emplace();
  run_until(loop, [&] { return !contexts.empty(); });
  exhausted->release();
  REQUIRE(exhausted->ok());
  // Still paused a while later, although descriptors are free again: one report only,
  // nothing accepted.
  bool waited = false;
  auto timer = loop.call_later(0.2, [&] { waited = true; });
  run_until(loop, [&] { return waited; });
  CHECK(contexts.size() == 1);
  CHECK(r.made.empty());

  REQUIRE(contexts.size() == 1);
  const asyncuv::ExceptionContext& context = contexts[0];
  CHECK(context.message() == "socket.accept() out of system resource");
  REQUIRE(holds<asyncuv::OSError>(context.exception()));
  try {
    std::rethrow_exception(context.exception());
  } catch (const asyncuv::OSError& e) {
    CHECK(e.errnum() == EMFILE);
  }
  REQUIRE(context.socket().has_value());
  CHECK(*context.socket() == listen_fd);
  CHECK(server->is_serving());  // serving, only paused

  run_until(loop, [&] {
    return r.made.size() == clients &&
           std::all_of(r.made.begin(), r.made.end(), [](auto& p) { return p->made; });
  });
  CHECK(loop.time() - error_time >= 0.99);  // asyncio's one-second pause
  CHECK(contexts.size() == 1);

  sockets.clear();
  run_until(loop, [&] {
    return std::all_of(r.made.begin(), r.made.end(), [](auto& p) { return p->lost; });
  });
  server->close();
  run_task(loop, server->wait_closed());
}

TEST_CASE("EMFILE pause: a server closed meanwhile does not resume", "[server]") {
  Recorders r;
  EventLoop loop;
  int reports = 0;
  std::optional<DescriptorsExhausted> exhausted;
  loop.set_exception_handler([&](EventLoop&, const asyncuv::ExceptionContext&) {
    if (exhausted) exhausted->release();  // first thing: see DescriptorsExhausted
    ++reports;
  });
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  const SockAddr address = server->sockets()[0].getsockname();
  Socket client(AF_INET, SOCK_STREAM);
  int rc = ::connect(client.fileno(), address.get(), address.size());
  REQUIRE((rc == 0 || errno == EINPROGRESS));
  DescriptorsExhausted::warm_up();
  exhausted.emplace();
  run_until(loop, [&] { return reports == 1; });
  exhausted->release();
  REQUIRE(exhausted->ok());
  server->close();  // during the pause
  bool waited = false;
  auto timer = loop.call_later(1.3, [&] { waited = true; });
  run_until(loop, [&] { return waited; });
  CHECK(reports == 1);
  CHECK(r.made.empty());
  CHECK_FALSE(server->is_serving());
  run_task(loop, server->wait_closed());
}
