// RFC 8305 Happy Eyeballs in create_connection (scenario 53 of asyncio-semantics.md): the
// staggered race over connection attempts and the interleaving of addresses by family.
#include "connect_test_support.hpp"

#include <asyncuv/detail/staggered_race.hpp>

using namespace connect_test;
using asyncuv::AddrInfo;
using asyncuv::detail::connect_to_addresses;
using asyncuv::detail::ConnectPlan;
using asyncuv::detail::interleave_addrinfos;

namespace {

std::vector<std::string> hosts_of(const std::vector<AddrInfo>& infos) {
  std::vector<std::string> out;
  for (const AddrInfo& info : infos)
    out.push_back(info.address.host());
  return out;
}

/// A working listener that records when (loop time) its first connection was accepted.
struct TimedServer {
  Socket sock = listener();
  double accepted_at = -1;
  std::optional<Socket> accepted;

  Task<void> accept_one(EventLoop& loop) {
    auto result = co_await loop.sock_accept(sock);
    accepted_at = loop.time();
    accepted.emplace(std::move(result.first));
  }
};

}  // namespace

TEST_CASE("53. interleave_addrinfos alternates families as asyncio does",
          "[connect][happy_eyeballs]") {
  const std::vector<AddrInfo> infos = {
      addr_info(SockAddr::ipv6("::1", 1)), addr_info(SockAddr::ipv6("::2", 1)),
      addr_info(SockAddr::ipv6("::3", 1)), addr_info(SockAddr::ipv4("10.0.0.1", 1)),
      addr_info(SockAddr::ipv4("10.0.0.2", 1))};
  CHECK(hosts_of(interleave_addrinfos(infos, 1)) ==
        std::vector<std::string>{"::1", "10.0.0.1", "::2", "10.0.0.2", "::3"});
  CHECK(hosts_of(interleave_addrinfos(infos, 2)) ==
        std::vector<std::string>{"::1", "::2", "10.0.0.1", "::3", "10.0.0.2"});
  CHECK(hosts_of(interleave_addrinfos(infos, 3)) ==
        std::vector<std::string>{"::1", "::2", "::3", "10.0.0.1", "10.0.0.2"});
  // The first family is the first address's, whatever it is.
  const std::vector<AddrInfo> v4_first = {
      addr_info(SockAddr::ipv4("10.0.0.1", 1)), addr_info(SockAddr::ipv6("::1", 1)),
      addr_info(SockAddr::ipv6("::2", 1)), addr_info(SockAddr::ipv4("10.0.0.2", 1))};
  CHECK(hosts_of(interleave_addrinfos(v4_first, 1)) ==
        std::vector<std::string>{"10.0.0.1", "::1", "10.0.0.2", "::2"});
  CHECK(interleave_addrinfos({}, 1).empty());
}

TEST_CASE("53. Happy Eyeballs: a black-holed first address, the second wins after the delay",
          "[connect][happy_eyeballs]") {
  EventLoop loop;
  BlackHole hole;
  if (!hole.blocks(loop))
    CONNECT_TEST_SKIP("connects to a full accept queue are not black-holed here");
  TimedServer server;
  const double delay = 0.25;
  const int fds_before = count_fds();
  double started = 0;
  double finished = 0;
  std::optional<Socket> sock;
  auto body = [&]() -> Task<void> {
    Task<void> accepting = loop.create_task(server.accept_one(loop));
    ConnectPlan plan;
    plan.remote = {addr_info(hole.address), addr_info(server.sock.getsockname())};
    plan.happy_eyeballs_delay = delay;
    started = loop.time();
    sock.emplace(co_await connect_to_addresses(loop, std::move(plan)));
    finished = loop.time();
    co_await accepting;
  };
  run_task(loop, body());
  REQUIRE(sock);
  CHECK(sock->getpeername() == server.sock.getsockname());
  // The second attempt started only after the delay (its connection was accepted then), and
  // won long before a connect to the black hole would time out.
  CHECK(server.accepted_at - started >= delay - 0.01);
  CHECK(finished - started >= delay - 0.01);
  CHECK(finished - started < 5.0);
  // The first attempt's socket is closed: besides ours, only the accepted one is new.
  CHECK(count_fds() == fds_before + 2);
}

TEST_CASE("53. without a delay the same addresses hang on the first one",
          "[connect][happy_eyeballs]") {
  EventLoop loop;
  BlackHole hole;
  if (!hole.blocks(loop))
    CONNECT_TEST_SKIP("connects to a full accept queue are not black-holed here");
  Socket server = listener();
  const int fds_before = count_fds();
  bool timed_out = false;
  auto body = [&]() -> Task<void> {
    ConnectPlan plan;
    plan.remote = {addr_info(hole.address), addr_info(server.getsockname())};
    auto attempt = [&loop](ConnectPlan p) -> Task<void> {
      Socket sock = co_await connect_to_addresses(loop, std::move(p));
    };
    try {
      co_await asyncuv::wait_for(attempt(std::move(plan)), 0.5);
    } catch (const asyncuv::TimeoutError&) {
      timed_out = true;
    }
  };
  run_task(loop, body());
  CHECK(timed_out);
  CHECK(count_fds() == fds_before);  // the cancelled attempt closed its socket
}

TEST_CASE("53. Happy Eyeballs: a failed attempt starts the next one at once",
          "[connect][happy_eyeballs]") {
  EventLoop loop;
  Socket closed = refusing();
  Socket server = listener();
  ConnectPlan plan;
  plan.remote = {addr_info(closed.getsockname()), addr_info(server.getsockname())};
  plan.happy_eyeballs_delay = 10.0;  // far longer than the test may take
  const double started = loop.time();
  Socket sock = run_connect(loop, std::move(plan));
  CHECK(loop.time() - started < 5.0);
  CHECK(sock.getpeername() == server.getsockname());
}

TEST_CASE("53. Happy Eyeballs: every attempt failed", "[connect][happy_eyeballs]") {
  EventLoop loop;
  Socket closed1 = refusing();
  Socket closed2 = refusing();
  const int fds_before = count_fds();
  auto plan = [&](bool all_errors) {
    ConnectPlan p;
    p.remote = {addr_info(closed1.getsockname()), addr_info(closed2.getsockname())};
    p.happy_eyeballs_delay = 0.05;
    p.all_errors = all_errors;
    return p;
  };
  auto error = failure_of(loop, connect_to_addresses(loop, plan(false)));
  REQUIRE(stream_test::holds<asyncuv::OSError>(error));
  const std::string text = stream_test::what(error);
  const std::string first = "[Errno 111] Connect call failed ('127.0.0.1', " +
                            std::to_string(closed1.getsockname().port()) + ")";
  const std::string second = "[Errno 111] Connect call failed ('127.0.0.1', " +
                             std::to_string(closed2.getsockname().port()) + ")";
  CHECK(text == "Multiple exceptions: " + first + ", " + second);

  error = failure_of(loop, connect_to_addresses(loop, plan(true)));
  REQUIRE(stream_test::holds<asyncuv::ExceptionGroup>(error));
  try {
    std::rethrow_exception(error);
  } catch (const asyncuv::ExceptionGroup& group) {
    REQUIRE(group.exceptions().size() == 2);
    CHECK(stream_test::what(group.exceptions()[0]).rfind(first, 0) == 0);
    CHECK(stream_test::what(group.exceptions()[1]).rfind(second, 0) == 0);
  }
  CHECK(count_fds() == fds_before);
}

TEST_CASE("53. cancelling a Happy Eyeballs race closes every attempt's socket",
          "[connect][happy_eyeballs]") {
  EventLoop loop;
  BlackHole hole;
  if (!hole.blocks(loop))
    CONNECT_TEST_SKIP("connects to a full accept queue are not black-holed here");
  const int fds_before = count_fds();
  ConnectPlan plan;
  plan.remote = {addr_info(hole.address), addr_info(hole.address), addr_info(hole.address)};
  plan.happy_eyeballs_delay = 0.05;
  auto task = loop.create_task(connect_to_addresses(loop, std::move(plan)));
  int fds_while_racing = -1;
  loop.call_later(0.3, [&] {
    fds_while_racing = count_fds();
    task.cancel();
  });
  auto waiting = [&]() -> Task<void> {
    try {
      co_await task;
    } catch (const asyncuv::CancelledError&) {
    }
  };
  run_task(loop, waiting());
  CHECK(fds_while_racing == fds_before + 3);  // all three attempts were under way
  CHECK(task.cancelled());
  CHECK(count_fds() == fds_before);
}
