// Test support for the create_connection / create_unix_connection tests: a task runner with a
// watchdog, descriptor counting, closed ports and a "black hole" address whose connects hang.
#pragma once

#include "loop_support.hpp"
#include "stream_test_support.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/detail/connect.hpp>
#include <asyncuv/stream_connections.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

/// Catch2 v2 has no SKIP: reports why the test does not apply and leaves it.
#define CONNECT_TEST_SKIP(message) \
  do {                             \
    WARN(message);                 \
    return;                        \
  } while (0)

namespace connect_test {

using asyncuv::EventLoop;
using asyncuv::SockAddr;
using asyncuv::Socket;
using asyncuv::Task;

using test_support::run_task;

/// How many descriptors the process has open (entries of /proc/self/fd).
inline int count_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  int n = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

/// A listening TCP socket on `host` (port 0: a free one).
inline Socket listener(const char* host = "127.0.0.1", int backlog = 100) {
  Socket sock(SockAddr::parse(host, 0).family(), SOCK_STREAM);
  sock.bind(SockAddr::parse(host, 0));
  sock.listen(backlog);
  return sock;
}

/// A port on 127.0.0.1 (or `host`) where nothing listens: the returned socket holds it bound
/// but not listening, so connects to it are refused and no one else takes it meanwhile.
inline Socket refusing(const char* host = "127.0.0.1") {
  Socket sock(SockAddr::parse(host, 0).family(), SOCK_STREAM);
  sock.bind(SockAddr::parse(host, 0));
  return sock;
}

/// One getaddrinfo-like entry for a TCP address.
inline asyncuv::AddrInfo addr_info(const SockAddr& address) {
  return asyncuv::AddrInfo{address.family(), SOCK_STREAM, IPPROTO_TCP, "", address};
}

/// A loopback address whose connects hang: a listener with backlog 0 whose accept queue is
/// full (a few connects that are never accepted), so Linux drops further SYNs.
struct BlackHole {
  Socket listening;
  std::vector<Socket> fillers;
  SockAddr address;

  BlackHole() : listening(listener("127.0.0.1", 0)), address(listening.getsockname()) {
    for (int i = 0; i < 3; ++i) {
      Socket s(AF_INET, SOCK_STREAM);
      (void)::connect(s.fileno(), address.get(), address.size());  // in progress or done
      fillers.push_back(std::move(s));
    }
  }

  /// True if a connect to it really does not complete within 0.2 s (checked on `loop`).
  bool blocks(EventLoop& loop) {
    auto probe = [this, &loop]() -> Task<bool> {
      Socket s(AF_INET, SOCK_STREAM);
      try {
        co_await asyncuv::wait_for(loop.sock_connect(s, address), 0.2);
      } catch (const asyncuv::TimeoutError&) {
        co_return true;
      } catch (const asyncuv::OSError&) {
        co_return false;
      }
      co_return false;
    };
    return run_task(loop, probe());
  }
};

using test_support::failure_of;

/// Runs detail::connect_to_addresses(loop, plan) to completion and returns its socket.
inline Socket run_connect(EventLoop& loop, asyncuv::detail::ConnectPlan plan) {
  std::optional<Socket> out;
  auto body = [&loop, &out](asyncuv::detail::ConnectPlan p) -> Task<void> {
    out.emplace(co_await asyncuv::detail::connect_to_addresses(loop, std::move(p)));
  };
  run_task(loop, body(std::move(plan)));
  return std::move(*out);
}

/// A non-null ssl option for the argument checks: asyncuv::ssl::Context is only declared until
/// TLS exists, and the checks only look at whether the option is set (it is never used).
inline std::shared_ptr<asyncuv::ssl::Context> ssl_for_checks() {
  static int anchor = 0;
  return std::shared_ptr<asyncuv::ssl::Context>(std::shared_ptr<int>(),
                                                reinterpret_cast<asyncuv::ssl::Context*>(&anchor));
}

/// A protocol factory making stream_test::Recorder protocols.
inline auto recorder_factory() {
  return [] { return std::make_shared<stream_test::Recorder>(); };
}

}  // namespace connect_test
