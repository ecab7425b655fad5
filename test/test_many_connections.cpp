// 10,000 concurrent loopback connections through one server (issue 5's scale test).
//
// The clients live in a forked child process (so client and server descriptors do not share
// one RLIMIT_NOFILE): it opens every connection first and keeps them all open, then sends
// each one an 8-byte message, reads every echo back and checks it, reports the outcome
// through a pipe and only then closes its sockets. The server side (this process) counts how
// many connections were open at once and how many bytes it echoed.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loop_support.hpp"

using namespace asyncuv;

namespace {

constexpr int kConnections = 10000;
constexpr int kMessage = 8;

struct Counts {
  int open = 0;
  int max_open = 0;
  int made = 0;
  int lost = 0;
  long bytes = 0;
  std::function<void()> on_lost;  // called after each connection_lost
};

class CountingEcho : public Protocol {
 public:
  explicit CountingEcho(Counts& counts) : counts_(counts) {}
  void connection_made(std::shared_ptr<Transport> transport) override {
    transport_ = std::move(transport);
    ++counts_.made;
    if (++counts_.open > counts_.max_open) counts_.max_open = counts_.open;
  }
  void data_received(std::string_view data) override {
    counts_.bytes += static_cast<long>(data.size());
    transport_->write(data);
  }
  void connection_lost(std::exception_ptr) override {
    --counts_.open;
    ++counts_.lost;
    transport_.reset();
    if (counts_.on_lost) counts_.on_lost();
  }

 private:
  Counts& counts_;
  std::shared_ptr<Transport> transport_;
};

/// Raises the soft descriptor limit to at least `needed` (up to the hard limit, or beyond it
/// when the process may). Returns the soft limit in effect afterwards.
rlim_t raise_fd_limit(rlim_t needed) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur >= needed) return lim.rlim_cur;
  rlimit want = lim;
  want.rlim_cur = needed;
  if (want.rlim_max < needed) want.rlim_max = needed;  // works with CAP_SYS_RESOURCE
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) return needed;
  want = lim;
  want.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &want);
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

/// The child: only system calls (no allocation after fork). Returns the status it reports:
/// 0 all good, 1 a connect failed, 2 a send failed, 3 an echo was wrong or missing.
char run_clients(const sockaddr_in& server, std::vector<int>& fds) {
  for (int i = 0; i < kConnections; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 1;
    fds[static_cast<std::size_t>(i)] = fd;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0) return 1;
  }
  char message[kMessage + 1];
  for (int i = 0; i < kConnections; ++i) {
    std::snprintf(message, sizeof message, "%08d", i);
    if (!write_all(fds[static_cast<std::size_t>(i)], message, kMessage)) return 2;
  }
  char expected[kMessage + 1];
  for (int i = 0; i < kConnections; ++i) {
    std::snprintf(expected, sizeof expected, "%08d", i);
    if (!read_all(fds[static_cast<std::size_t>(i)], message, kMessage)) return 3;
    if (std::memcmp(message, expected, kMessage) != 0) return 3;
  }
  return 0;
}

}  // namespace

TEST_CASE("10,000 concurrent loopback connections through one server", "[server][scale]") {
  // This process holds the server's side of every connection (the child holds the clients').
  rlim_t limit = raise_fd_limit(kConnections + 200);
  if (limit < static_cast<rlim_t>(kConnections + 200)) {
    WARN("RLIMIT_NOFILE is " << limit << ": cannot hold " << kConnections << " connections");
    return;
  }

  EventLoop loop;
  Counts counts;
  auto factory = [&counts] { return std::make_shared<CountingEcho>(counts); };
  std::shared_ptr<Server> server =
      loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0, {.backlog = 1024}));
  sockaddr_in address{};
  std::memcpy(&address, server->sockets().at(0).getsockname().get(), sizeof address);

  int report[2];  // child -> parent: the outcome
  int ack[2];     // parent -> child: seen, the connections may close now
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(ack, O_CLOEXEC) == 0);
  std::vector<int> fds(kConnections, -1);  // allocated before fork: the child does not allocate
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(report[0]);
    ::close(ack[1]);
    char status = run_clients(address, fds);
    (void)!::write(report[1], &status, 1);
    // Every connection stays open until the parent has counted them; exit closes them.
    char seen = 0;
    (void)!::read(ack[0], &seen, 1);
    ::_exit(0);
  }
  ::close(report[1]);
  ::close(ack[0]);

  char status = 'x';
  int open_when_reported = -1;
  // Runs until the child reported and every connection is gone again.
  auto stop_when_done = [&] {
    if (status != 'x' && counts.open == 0) loop.stop();
  };
  counts.on_lost = stop_when_done;
  loop.add_reader(report[0], [&] {
    if (::read(report[0], &status, 1) != 1) status = 'e';
    open_when_reported = counts.open;
    loop.remove_reader(report[0]);
    ::close(ack[1]);  // the child sees EOF and exits
    stop_when_done();
  });
  test_support::run_with_watchdog(loop, 120);

  int wstatus = 0;
  REQUIRE(::waitpid(child, &wstatus, 0) == child);
  ::close(report[0]);
  CHECK(WIFEXITED(wstatus));
  CHECK(static_cast<int>(status) == 0);  // every connect, send and echo succeeded
  CHECK(open_when_reported == kConnections);
  CHECK(counts.max_open == kConnections);
  CHECK(counts.made == kConnections);
  CHECK(counts.lost == kConnections);
  CHECK(counts.bytes == static_cast<long>(kConnections) * kMessage);

  server->close();
  loop.run_until_complete(server->wait_closed());
  loop.close();
}
