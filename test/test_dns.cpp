// Name resolution (loop.getaddrinfo / loop.getnameinfo over libuv) and SockAddr.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/detail/dns_service.hpp>

#include "log_capture.hpp"

using asyncuv::AddrInfo;
using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::GaiError;
using asyncuv::NameInfo;
using asyncuv::SockAddr;
using AddrList = std::vector<AddrInfo>;

namespace dns_test {

/// Runs `loop` until `future` is done and returns its result; a watchdog cancels it (failing
/// the test with CancelledError) if that takes longer than `limit` seconds.
template <class F>
auto wait_for(EventLoop& loop, F future, double limit = 30.0) {
  asyncuv::TimerHandle watchdog = loop.call_later(limit, [future] { future.cancel("watchdog"); });
  struct Cancel {
    asyncuv::TimerHandle& h;
    ~Cancel() { h.cancel(); }
  } cancel_watchdog{watchdog};
  return loop.run_until_complete(future);
}

/// Runs `loop` until pred() holds (checked every millisecond); false after `limit` seconds.
bool run_until(EventLoop& loop, const std::function<bool()>& pred, double limit = 30.0) {
  bool ok = false;
  double deadline = loop.time() + limit;
  std::function<void()> check = [&] {
    if (pred()) {
      ok = true;
      loop.stop();
    } else if (loop.time() > deadline) {
      loop.stop();
    } else {
      loop.call_later(0.001, check);
    }
  };
  loop.call_soon(check);
  loop.run_forever();
  return ok;
}

/// Requests of `loop` still waiting for their libuv callback.
std::size_t pending(EventLoop& loop) {
  auto* service = loop.find_service<asyncuv::detail::DnsService>();
  return service == nullptr ? 0 : service->pending();
}

/// The resolver error a failed Future carries (fails the test if it carries something else).
GaiError gai_error_of(EventLoop& loop, const Future<AddrList>& future) {
  try {
    wait_for(loop, future);
  } catch (const GaiError& e) {
    return e;
  }
  FAIL("expected GaiError");
  return GaiError(0);
}

/// What the system's getaddrinfo answers, as AddrInfo, for comparison.
AddrList system_getaddrinfo(const char* host, const char* port, int family, int type) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = type;
  addrinfo* res = nullptr;
  AddrList out;
  if (::getaddrinfo(host, port, &hints, &res) != 0) return out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    out.push_back(AddrInfo{ai->ai_family, ai->ai_socktype, ai->ai_protocol,
                           ai->ai_canonname != nullptr ? ai->ai_canonname : "",
                           SockAddr(ai->ai_addr, ai->ai_addrlen)});
  }
  ::freeaddrinfo(res);
  return out;
}

/// Keeps every thread of libuv's (process-wide) thread pool busy until release(), so that a
/// resolution queued meanwhile deterministically has not started. Its work requests live on a
/// private uv loop, drained and closed by the destructor.
class PoolBlocker {
 public:
  PoolBlocker() : works_(new uv_work_t[size()]) { uv_loop_init(&loop_); }
  ~PoolBlocker() {
    release();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  PoolBlocker(const PoolBlocker&) = delete;
  PoolBlocker& operator=(const PoolBlocker&) = delete;

  /// Occupies all threads; false if they did not all start within `limit` seconds.
  bool occupy(double limit = 30.0) {
    for (int i = 0; i < size(); ++i) {
      works_[i].data = this;
      uv_queue_work(&loop_, &works_[i], &PoolBlocker::work, [](uv_work_t*, int) {});
    }
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::duration<double>(limit),
                        [&] { return started_ == size(); });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }

  /// libuv's pool size: UV_THREADPOOL_SIZE, else 4.
  static int size() {
    const char* value = std::getenv("UV_THREADPOOL_SIZE");
    int n = value != nullptr ? std::atoi(value) : 4;
    return std::clamp(n, 1, 1024);
  }

 private:
  static void work(uv_work_t* w) {
    auto* self = static_cast<PoolBlocker*>(w->data);
    std::unique_lock lock(self->mutex_);
    ++self->started_;
    self->cv_.notify_all();
    self->cv_.wait(lock, [&] { return self->released_; });
  }

  uv_loop_t loop_{};
  std::unique_ptr<uv_work_t[]> works_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int started_ = 0;
  bool released_ = false;
};

asyncuv::Task<std::size_t> count_addresses(EventLoop& loop, std::string host) {
  AddrList infos = co_await loop.getaddrinfo(host, "80");
  co_return infos.size();
}

bool is_loopback(const AddrInfo& info) {
  std::string host = info.address.host();
  return (info.family == AF_INET && host == "127.0.0.1") ||
         (info.family == AF_INET6 && host == "::1");
}

}  // namespace dns_test

using namespace dns_test;

// ---- getaddrinfo ---------------------------------------------------------------------------

TEST_CASE("getaddrinfo: localhost resolves to loopback addresses", "[dns]") {
  EventLoop loop;
  AddrList infos = wait_for(loop, loop.getaddrinfo("localhost", "80", 0, SOCK_STREAM));
  REQUIRE_FALSE(infos.empty());
  for (const AddrInfo& info : infos) {
    CHECK(is_loopback(info));
    CHECK(info.address.family() == info.family);
    CHECK(info.address.port() == 80);
    CHECK(info.type == SOCK_STREAM);
    CHECK(info.proto == IPPROTO_TCP);
    CHECK(info.canonname.empty());
  }
  CHECK(pending(loop) == 0);
}

TEST_CASE("getaddrinfo: the complete list, in the order getaddrinfo returns it", "[dns]") {
  EventLoop loop;
  AddrList expected = system_getaddrinfo("localhost", "8080", AF_UNSPEC, 0);
  REQUIRE_FALSE(expected.empty());
  CHECK(wait_for(loop, loop.getaddrinfo("localhost", "8080")) == expected);
  // The int port overload asks the same question.
  CHECK(wait_for(loop, loop.getaddrinfo("localhost", 8080)) == expected);
}

TEST_CASE("getaddrinfo: AI_CANONNAME fills canonname in the first entry", "[dns]") {
  EventLoop loop;
  AddrList infos =
      wait_for(loop, loop.getaddrinfo("localhost", "80", AF_INET, SOCK_STREAM, 0, AI_CANONNAME));
  REQUIRE_FALSE(infos.empty());
  CHECK_FALSE(infos.front().canonname.empty());
}

TEST_CASE("getaddrinfo: a service name is resolved to its port", "[dns]") {
  if (::getservbyname("http", "tcp") == nullptr) {
    WARN("no 'http' entry in the services database; skipped");
    return;
  }
  EventLoop loop;
  AddrList infos = wait_for(loop, loop.getaddrinfo("localhost", "http", AF_INET, SOCK_STREAM));
  REQUIRE_FALSE(infos.empty());
  CHECK(infos.front().address.port() == 80);
}

TEST_CASE("getaddrinfo: the family filter gives only that family", "[dns]") {
  EventLoop loop;
  AddrList infos = wait_for(loop, loop.getaddrinfo("localhost", "80", AF_INET));
  REQUIRE_FALSE(infos.empty());
  for (const AddrInfo& info : infos) {
    CHECK(info.family == AF_INET);
    CHECK(info.address.host() == "127.0.0.1");
  }
  // A numeric address of the other family is the resolver's to refuse.
  GaiError e = gai_error_of(loop, loop.getaddrinfo("::1", "80", AF_INET));
  CHECK(e.errno_code() < 0);
}

TEST_CASE("getaddrinfo: the type and proto filters give only that kind of socket", "[dns]") {
  EventLoop loop;
  AddrList dgram = wait_for(loop, loop.getaddrinfo("localhost", "53", 0, SOCK_DGRAM));
  REQUIRE_FALSE(dgram.empty());
  for (const AddrInfo& info : dgram) {
    CHECK(info.type == SOCK_DGRAM);
    CHECK(info.proto == IPPROTO_UDP);
  }
  AddrList tcp = wait_for(loop, loop.getaddrinfo("localhost", "80", 0, 0, IPPROTO_TCP));
  REQUIRE_FALSE(tcp.empty());
  for (const AddrInfo& info : tcp) {
    CHECK(info.type == SOCK_STREAM);
    CHECK(info.proto == IPPROTO_TCP);
  }
}

TEST_CASE("getaddrinfo: an empty host is None: wildcard with AI_PASSIVE, else loopback", "[dns]") {
  EventLoop loop;
  AddrList passive =
      wait_for(loop, loop.getaddrinfo("", "80", AF_INET, SOCK_STREAM, 0, AI_PASSIVE));
  REQUIRE(passive.size() == 1);
  CHECK(passive[0].address.to_string() == "0.0.0.0:80");
  AddrList active = wait_for(loop, loop.getaddrinfo("", 80, AF_INET, SOCK_STREAM));
  REQUIRE(active.size() == 1);
  CHECK(active[0].address.to_string() == "127.0.0.1:80");

  // Neither host nor port: the resolver's EAI_NONAME, as socket.getaddrinfo(None, None).
  auto none = loop.getaddrinfo("", "");
  CHECK(none.done());
  GaiError e = gai_error_of(loop, none);
  CHECK(e.errno_code() == EAI_NONAME);
}

// ---- the numeric shortcut ----------------------------------------------------------------

TEST_CASE("getaddrinfo: a numeric IPv4 host and port are answered without a thread", "[dns]") {
  EventLoop loop;
  std::uint64_t before = loop.iteration_count();
  Future<AddrList> f = loop.getaddrinfo("127.0.0.1", 8080);
  CHECK(f.done());  // no thread involved: complete before the loop even runs
  CHECK(loop.find_service<asyncuv::detail::DnsService>() == nullptr);
  AddrList infos = wait_for(loop, f);
  CHECK(loop.iteration_count() - before <= 1);
  REQUIRE(infos.size() == 2);  // type 0: one stream and one datagram entry
  CHECK(infos[0].type == SOCK_STREAM);
  CHECK(infos[0].proto == IPPROTO_TCP);
  CHECK(infos[1].type == SOCK_DGRAM);
  CHECK(infos[1].proto == IPPROTO_UDP);
  for (const AddrInfo& info : infos) {
    CHECK(info.family == AF_INET);
    CHECK(info.canonname.empty());
    CHECK(info.address == SockAddr::ipv4("127.0.0.1", 8080));
  }

  // One entry per requested type; the same answer getaddrinfo gives.
  AddrList stream = loop.getaddrinfo("10.1.2.3", "443", 0, SOCK_STREAM).result();
  CHECK(stream == system_getaddrinfo("10.1.2.3", "443", AF_UNSPEC, SOCK_STREAM));
  AddrList udp = loop.getaddrinfo("10.1.2.3", "", AF_INET, 0, IPPROTO_UDP).result();
  REQUIRE(udp.size() == 1);
  CHECK(udp[0].type == SOCK_DGRAM);
  CHECK(udp[0].address.to_string() == "10.1.2.3:0");
}

TEST_CASE("getaddrinfo: a numeric IPv6 host is answered without a thread", "[dns]") {
  EventLoop loop;
  Future<AddrList> f = loop.getaddrinfo("::1", "443", AF_INET6, SOCK_DGRAM);
  REQUIRE(f.done());
  const AddrList& infos = f.result();
  REQUIRE(infos.size() == 1);
  CHECK(infos[0].family == AF_INET6);
  CHECK(infos[0].type == SOCK_DGRAM);
  CHECK(infos[0].proto == IPPROTO_UDP);
  CHECK(infos[0].address.host() == "::1");
  CHECK(infos[0].address.port() == 443);
  CHECK(infos[0].address.flowinfo() == 0);
  CHECK(infos[0].address.scope_id() == 0);
  CHECK(infos == system_getaddrinfo("::1", "443", AF_INET6, SOCK_DGRAM));

  // A coroutine awaiting it completes in the iteration that runs its first step.
  auto task = loop.create_task(count_addresses(loop, "2001:db8::7"));
  loop.stop();
  loop.run_forever();
  REQUIRE(task.done());
  CHECK(task.result() == 2);
  CHECK(loop.find_service<asyncuv::detail::DnsService>() == nullptr);
}

TEST_CASE("getaddrinfo: names, service names and other socket types take the slow path", "[dns]") {
  EventLoop loop;
  std::vector<Future<AddrList>> futures;
  futures.push_back(loop.getaddrinfo("localhost", "80"));
  futures.push_back(loop.getaddrinfo("127.0.0.1", "domain", 0, SOCK_DGRAM));
  futures.push_back(loop.getaddrinfo("127.0.0.1", "", 0, SOCK_RAW));
  futures.push_back(loop.getaddrinfo("127.0.0.1", "80", 0, 0, 0, AI_CANONNAME));
  for (const auto& f : futures)
    CHECK_FALSE(f.done());
  CHECK(pending(loop) == futures.size());
  CHECK(run_until(loop, [&] { return pending(loop) == 0; }));
  for (const auto& f : futures) {
    REQUIRE(f.done());
    (void)f.exception();  // whatever the resolver said, it was a complete answer
  }
  CHECK(futures[3].result().front().canonname == "127.0.0.1");
}

// ---- errors -------------------------------------------------------------------------------

TEST_CASE("getaddrinfo: AI_NUMERICHOST with a name gives GaiError(EAI_NONAME)", "[dns]") {
  EventLoop loop;
  GaiError e = gai_error_of(loop, loop.getaddrinfo("localhost", "80", 0, 0, 0, AI_NUMERICHOST));
  CHECK(e.errno_code() == EAI_NONAME);
  CHECK(e.errnum() == EAI_NONAME);
  CHECK(e.strerror() == ::gai_strerror(EAI_NONAME));
  CHECK(std::string(e.what()) ==
        "[Errno " + std::to_string(EAI_NONAME) + "] " + ::gai_strerror(EAI_NONAME));
  // It is an OSError, as socket.gaierror.
  auto f = loop.getaddrinfo("not-a-number", "80", 0, 0, 0, AI_NUMERICHOST);
  REQUIRE_THROWS_AS(wait_for(loop, f), asyncuv::OSError);
}

TEST_CASE("getaddrinfo: a name under .invalid gives GaiError(EAI_NONAME)", "[dns]") {
  EventLoop loop;
  GaiError e = gai_error_of(loop, loop.getaddrinfo("asyncuv-test.invalid", "80"));
  if (e.errno_code() == EAI_AGAIN) {
    WARN("the resolver could not be reached (" << e.what() << "); EAI_AGAIN accepted");
  } else {
    CHECK(e.errno_code() == EAI_NONAME);
  }
}

TEST_CASE("getaddrinfo: libuv's resolver codes map back to EAI_* values", "[dns]") {
  CHECK(asyncuv::uv_status_to_eai(UV_EAI_NONAME) == EAI_NONAME);
  CHECK(asyncuv::uv_status_to_eai(UV_EAI_AGAIN) == EAI_AGAIN);
  CHECK(asyncuv::uv_status_to_eai(UV_EAI_SERVICE) == EAI_SERVICE);
  CHECK(asyncuv::uv_status_to_eai(UV_EAI_FAMILY) == EAI_FAMILY);
  CHECK(asyncuv::uv_status_to_eai(UV_EAI_SOCKTYPE) == EAI_SOCKTYPE);
  CHECK(asyncuv::uv_status_to_eai(UV_EAI_BADFLAGS) == EAI_BADFLAGS);
  REQUIRE_THROWS_AS(std::rethrow_exception(asyncuv::make_gai_error(UV_EAI_SERVICE)), GaiError);
  // A system error is the OSError subclass for its errno, not a GaiError.
  REQUIRE_THROWS_AS(std::rethrow_exception(asyncuv::make_gai_error(UV_ECONNREFUSED)),
                    asyncuv::ConnectionRefusedError);
}

TEST_CASE("getaddrinfo: an unknown service or a bad family is a GaiError", "[dns]") {
  EventLoop loop;
  GaiError service = gai_error_of(loop, loop.getaddrinfo("localhost", "no-such-service-x"));
  CHECK(service.errno_code() == EAI_SERVICE);
  GaiError family = gai_error_of(loop, loop.getaddrinfo("localhost", "80", 12345));
  CHECK(family.errno_code() == EAI_FAMILY);
}

TEST_CASE("getaddrinfo and getnameinfo: bad arguments throw at once", "[dns]") {
  EventLoop loop;
  REQUIRE_THROWS_AS(loop.getaddrinfo("localhost", -1), asyncuv::ValueError);
  REQUIRE_THROWS_WITH(loop.getaddrinfo("localhost", 65536), "port must be 0-65535.");
  REQUIRE_THROWS_WITH(loop.getaddrinfo(std::string("local\0host", 10), "80"),
                      "embedded null character");
  REQUIRE_THROWS_AS(loop.getaddrinfo("localhost", std::string("8\0", 2)), asyncuv::ValueError);
  // libuv refuses host names longer than 255 bytes.
  REQUIRE_THROWS_AS(loop.getaddrinfo(std::string(300, 'a'), "80"), asyncuv::ValueError);
  REQUIRE_THROWS_WITH(loop.getnameinfo(SockAddr::unix_path("/tmp/x.sock")),
                      "getnameinfo(): illegal sockaddr argument");
  REQUIRE_THROWS_AS(loop.getnameinfo(SockAddr()), asyncuv::TypeError);
  CHECK(pending(loop) == 0);
}

TEST_CASE("getaddrinfo and getnameinfo on a closed loop raise RuntimeError", "[dns]") {
  EventLoop loop;
  loop.close();
  REQUIRE_THROWS_WITH(loop.getaddrinfo("localhost", "80"), "Event loop is closed");
  REQUIRE_THROWS_AS(loop.getaddrinfo("127.0.0.1", 80), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(loop.getnameinfo(SockAddr::ipv4("127.0.0.1", 80)), "Event loop is closed");
}

// ---- getnameinfo --------------------------------------------------------------------------

TEST_CASE("getnameinfo: numeric host and service of 127.0.0.1:80 and [::1]:443", "[dns]") {
  EventLoop loop;
  NameInfo v4 = wait_for(
      loop, loop.getnameinfo(SockAddr::ipv4("127.0.0.1", 80), NI_NUMERICHOST | NI_NUMERICSERV));
  CHECK(v4 == NameInfo{"127.0.0.1", "80"});
  NameInfo v6 =
      wait_for(loop, loop.getnameinfo(SockAddr::ipv6("::1", 443), NI_NUMERICHOST | NI_NUMERICSERV));
  CHECK(v6 == NameInfo{"::1", "443"});
  CHECK(pending(loop) == 0);
}

TEST_CASE("getnameinfo: NI_NAMEREQD for an address without a name gives GaiError", "[dns]") {
  EventLoop loop;
  // 192.0.2.0/24 is TEST-NET-1: documentation only, never in /etc/hosts.
  auto f = loop.getnameinfo(SockAddr::ipv4("192.0.2.55", 80), NI_NAMEREQD | NI_NUMERICSERV);
  try {
    wait_for(loop, f);
    WARN("the resolver knows a name for 192.0.2.55");
  } catch (const GaiError& e) {
    CHECK(e.errno_code() < 0);
  }
}

// ---- cancellation and lifetime --------------------------------------------------------------

TEST_CASE("getaddrinfo: cancelling before a worker started cancels the request", "[dns]") {
  EventLoop loop;
  PoolBlocker blocker;
  REQUIRE(blocker.occupy());
  Future<AddrList> f = loop.getaddrinfo("localhost", "80");
  Future<NameInfo> g = loop.getnameinfo(SockAddr::ipv4("127.0.0.1", 80), NI_NUMERICHOST);
  CHECK(pending(loop) == 2);
  CHECK(f.cancel());
  CHECK(g.cancel("no longer needed"));
  CHECK(f.cancelled());
  CHECK_FALSE(f.cancel());
  // The thread pool is still blocked: only uv_cancel can have ended the requests.
  CHECK(run_until(loop, [&] { return pending(loop) == 0; }));
  blocker.release();
  REQUIRE_THROWS_AS(f.result(), asyncuv::CancelledError);
  REQUIRE_THROWS_WITH(g.result(), "no longer needed");
}

TEST_CASE("getaddrinfo: cancelling a task that awaits a resolution", "[dns]") {
  EventLoop loop;
  auto task = loop.create_task(count_addresses(loop, "localhost"));
  loop.stop();
  loop.run_forever();  // the task's first step starts the resolution and waits
  CHECK(pending(loop) == 1);
  CHECK(task.cancel());
  REQUIRE_THROWS_AS(wait_for(loop, task), asyncuv::CancelledError);
  CHECK(task.cancelled());
  // Started or not, the request ends and frees itself.
  CHECK(run_until(loop, [&] { return pending(loop) == 0; }));
}

TEST_CASE("getaddrinfo: a dropped Future's request still ends cleanly", "[dns]") {
  EventLoop loop;
  {
    auto f = loop.getaddrinfo("localhost", "80");
    auto g = loop.getnameinfo(SockAddr::ipv6("::1", 80), NI_NUMERICHOST);
  }
  CHECK(pending(loop) == 2);
  CHECK(run_until(loop, [&] { return pending(loop) == 0; }));
}

TEST_CASE("getaddrinfo: closing the loop with resolutions in flight", "[dns]") {
  test_support::LogCapture logs;
  // Each round, the worker may or may not have picked the request up when close() runs.
  for (int round = 0; round < 20; ++round) {
    Future<AddrList> f;
    Future<NameInfo> g;
    bool f_done = false;
    bool g_done = false;
    {
      EventLoop loop;
      f = loop.getaddrinfo("localhost", "80");
      g = loop.getnameinfo(SockAddr::ipv4("127.0.0.1", 80), NI_NUMERICHOST | NI_NUMERICSERV);
      if (round % 2 == 1) {
        loop.stop();
        loop.run_forever();  // the answers may arrive in this iteration already
      }
      f_done = f.done();
      g_done = g.done();
      loop.close();
      CHECK(pending(loop) == 0);
    }
    // A Future still pending at close() stays pending, as asyncio leaves an executor's.
    CHECK(f.done() == f_done);
    CHECK(g.done() == g_done);
    if (round % 2 == 0) CHECK_FALSE(f_done);
  }
  // close() waited for the running requests, so every uv_loop_t could be closed.
  for (const auto& record : logs.records())
    CHECK(record.text.find("uv_loop_close") == std::string::npos);
}

TEST_CASE("getaddrinfo: closing the loop while the requests are queued", "[dns]") {
  test_support::LogCapture logs;
  PoolBlocker blocker;
  REQUIRE(blocker.occupy());
  {
    EventLoop loop;
    auto f = loop.getaddrinfo("localhost", "80");
    auto g = loop.getnameinfo(SockAddr::ipv4("127.0.0.1", 80), 0);
    loop.close();  // cancels both: the pool is busy, so neither has started
    CHECK_FALSE(f.done());
  }
  blocker.release();
  for (const auto& record : logs.records())
    CHECK(record.text.find("uv_loop_close") == std::string::npos);
}

TEST_CASE("getaddrinfo: an adopted host loop finishes the requests after close()", "[dns]") {
  uv_loop_t host;
  REQUIRE(uv_loop_init(&host) == 0);
  Future<AddrList> f;
  {
    EventLoop loop(&host);
    f = loop.getaddrinfo("localhost", "80");
    loop.close();
  }
  // The EventLoop is gone; the host's loop runs the request's callback, which frees it.
  uv_run(&host, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&host) == 0);
  CHECK_FALSE(f.done());
}

// ---- SockAddr -----------------------------------------------------------------------------

TEST_CASE("SockAddr: IPv4 parse and format round trip", "[dns]") {
  SockAddr a = SockAddr::parse("192.168.1.20", 8080);
  CHECK(a.family() == AF_INET);
  CHECK(a.host() == "192.168.1.20");
  CHECK(a.port() == 8080);
  CHECK(a.to_string() == "192.168.1.20:8080");
  CHECK(a.size() == sizeof(sockaddr_in));
  CHECK(SockAddr::parse(a.host(), a.port()) == a);
  CHECK(SockAddr(a.get(), a.size()) == a);
  CHECK(SockAddr::ipv4("0.0.0.0", 0).to_string() == "0.0.0.0:0");
  CHECK_FALSE(a.empty());
  CHECK(SockAddr().empty());
  CHECK(SockAddr().to_string().empty());
}

TEST_CASE("SockAddr: IPv6 round trip, with flowinfo and a scope id", "[dns]") {
  SockAddr a = SockAddr::parse("[2001:db8::1]", 443);
  CHECK(a.family() == AF_INET6);
  CHECK(a.host() == "2001:db8::1");
  CHECK(a.to_string() == "[2001:db8::1]:443");
  CHECK(SockAddr::parse("2001:db8::1", 443) == a);
  CHECK(SockAddr::parse(a.host(), a.port()) == a);

  SockAddr scoped = SockAddr::parse("fe80::1%3", 22);
  CHECK(scoped.scope_id() == 3);
  CHECK(scoped.host() == "fe80::1");
  CHECK(SockAddr::ipv6(scoped.host(), scoped.port(), scoped.flowinfo(), scoped.scope_id()) ==
        scoped);
  SockAddr flow = SockAddr::ipv6("fe80::2", 9, 0x12345, 7);
  CHECK(flow.flowinfo() == 0x12345);
  CHECK(flow.scope_id() == 7);
  CHECK(SockAddr(flow.get(), flow.size()) == flow);

  if (unsigned lo = if_nametoindex("lo"); lo != 0) {
    CHECK(SockAddr::parse("fe80::1%lo", 22).scope_id() == lo);
  }
}

TEST_CASE("SockAddr: Unix paths and abstract names round trip", "[dns]") {
  SockAddr path = SockAddr::unix_path("/tmp/asyncuv.sock");
  CHECK(path.family() == AF_UNIX);
  CHECK(path.host() == "/tmp/asyncuv.sock");
  CHECK(path.to_string() == "/tmp/asyncuv.sock");
  CHECK(path.port() == 0);
  CHECK(SockAddr::unix_path(path.host()) == path);

  std::string name("\0asyncuv-abstract", 17);
  SockAddr abstract = SockAddr::unix_path(name);
  CHECK(abstract.host() == name);
  CHECK(abstract.size() == offsetof(sockaddr_un, sun_path) + name.size());
  CHECK(SockAddr::unix_path(abstract.host()) == abstract);
  CHECK(SockAddr(abstract.get(), abstract.size()) == abstract);
}

TEST_CASE("SockAddr: bad input raises ValueError", "[dns]") {
  REQUIRE_THROWS_AS(SockAddr::parse("localhost", 80), asyncuv::ValueError);
  REQUIRE_THROWS_AS(SockAddr::parse("1.2.3", 80), asyncuv::ValueError);
  REQUIRE_THROWS_AS(SockAddr::parse("256.1.1.1", 80), asyncuv::ValueError);
  REQUIRE_THROWS_AS(SockAddr::parse("::zz", 80), asyncuv::ValueError);
  REQUIRE_THROWS_AS(SockAddr::ipv4("::1", 80), asyncuv::ValueError);
  REQUIRE_THROWS_AS(SockAddr::ipv6("127.0.0.1", 80), asyncuv::ValueError);
  REQUIRE_THROWS_AS(SockAddr::parse("fe80::1%no-such-interface0", 80), asyncuv::ValueError);
  REQUIRE_THROWS_AS(SockAddr::unix_path(std::string(200, 'x')), asyncuv::ValueError);
}
