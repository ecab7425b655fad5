// Call forms an asyncio user writes inline in a co_await expression, written that way:
// move-only results through wait_for / timeout / gather / shield / wait / run_until_complete,
// braced containers (a vector of tasks, an argv). Run under ASan with g++ 12 and clang 16
// (scripts/test, scripts/test-compilers).
//
// g++ 12 refuses any std::initializer_list inside a co_await full-expression ("array used as
// initializer", a GCC 12 coroutine bug): there, and only there, the braced container is named
// in a statement first (INLINE_BRACED_LISTS below).
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <asyncuv/asyncuv.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "loop_support.hpp"

using asyncuv::EventLoop;
using asyncuv::Future;
using asyncuv::SockAddr;
using asyncuv::Socket;
using asyncuv::Task;

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#define INLINE_BRACED_LISTS 0
#else
#define INLINE_BRACED_LISTS 1
#endif

namespace inline_forms {

/// A TCP socket listening on 127.0.0.1, on a port the system picked.
Socket listener() {
  Socket s;
  s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
  s.bind(SockAddr::parse("127.0.0.1", 0));
  s.listen(16);
  return s;
}

Task<std::unique_ptr<int>> boxed(int v) {
  co_await asyncuv::sleep(0);
  co_return std::make_unique<int>(v);
}

Task<int> plain(int v) {
  co_await asyncuv::sleep(0);
  co_return v;
}

/// Collects what the child writes to its stdout.
class Collect : public asyncuv::SubprocessProtocol {
 public:
  explicit Collect(Future<void> done) : done_(std::move(done)) {}
  void pipe_data_received(int fd, std::string_view data) override {
    if (fd == 1) out.append(data);
  }
  void connection_lost(std::exception_ptr) override { done_.set_result(); }
  std::string out;

 private:
  Future<void> done_;
};

}  // namespace inline_forms

using namespace inline_forms;

TEST_CASE("inline: wait_for(loop.sock_accept(sock), 5.0) moves the Socket out", "[inline]") {
  auto loop = asyncuv::new_event_loop();
  auto body = [](EventLoop& loop) -> Task<void> {
    Socket server = listener();
    Socket client;
    Future<void> connecting = loop.sock_connect(client, server.getsockname());
    auto [conn, peer] = co_await asyncuv::wait_for(loop.sock_accept(server), 5.0);
    co_await connecting;
    CHECK(peer == client.getsockname());
    CHECK_FALSE(conn.closed());
  };
  test_support::run_task(*loop, body(*loop));
  loop->close();
}

TEST_CASE("inline: run_until_complete(loop.sock_accept(sock)) moves the Socket out", "[inline]") {
  auto loop = asyncuv::new_event_loop();
  Socket server = listener();
  Socket client;
  Future<void> connecting = loop->sock_connect(client, server.getsockname());
  auto [conn, peer] = loop->run_until_complete(loop->sock_accept(server));
  loop->run_until_complete(connecting);
  CHECK(peer == client.getsockname());
  CHECK_FALSE(conn.closed());
  loop->close();
}

TEST_CASE("inline: move-only results through timeout, gather, shield and wait", "[inline]") {
  auto loop = asyncuv::new_event_loop();
  auto body = []() -> Task<void> {
    std::unique_ptr<int> a = co_await asyncuv::wait_for(boxed(1), 5.0);
    CHECK(*a == 1);
    std::unique_ptr<int> b = co_await asyncuv::timeout(5.0, [] { return boxed(2); });
    CHECK(*b == 2);
    auto [c, d] = co_await asyncuv::gather(boxed(3), boxed(4));
    CHECK(*c + *d == 7);
#if INLINE_BRACED_LISTS
    std::vector<std::unique_ptr<int>> all =
        co_await asyncuv::gather(std::vector<Task<std::unique_ptr<int>>>{boxed(5), boxed(6)});
#else
    std::vector<Task<std::unique_ptr<int>>> boxes{boxed(5), boxed(6)};
    std::vector<std::unique_ptr<int>> all = co_await asyncuv::gather(std::move(boxes));
#endif
    CHECK(*all[0] + *all[1] == 11);
    std::unique_ptr<int> e = co_await asyncuv::shield(boxed(7));
    CHECK(*e == 7);
    EventLoop& loop = asyncuv::get_running_loop();
    Task<std::unique_ptr<int>> f = loop.create_task(boxed(8));
    std::vector<Task<std::unique_ptr<int>>> fs;
    fs.push_back(f);
    auto [done, pending] = co_await asyncuv::wait(std::move(fs));
    REQUIRE(done.size() == 1);
    CHECK(pending.empty());
    std::unique_ptr<int> g = co_await std::move(done[0]);
    CHECK(*g == 8);
  };
  test_support::run_task(*loop, body());
  loop->close();
}

TEST_CASE("inline: a Transport pair through wait_for and gather", "[inline]") {
  auto loop = asyncuv::new_event_loop();
  auto body = [](EventLoop& loop) -> Task<void> {
    auto [a, b] = Socket::socketpair();
    auto factory = [] { return std::make_shared<asyncuv::Protocol>(); };
    auto [transport, protocol] =
        co_await asyncuv::wait_for(loop.connect_accepted_socket(factory, std::move(a)), 5.0);
    REQUIRE(transport);
    REQUIRE(protocol);
    transport->close();
  };
  test_support::run_task(*loop, body(*loop));
  loop->close();
}

TEST_CASE("inline: wait(std::vector<Task<int>>{a, b}) with the tasks written inline", "[inline]") {
  auto loop = asyncuv::new_event_loop();
  auto body = [](EventLoop& loop) -> Task<void> {
    Task<int> a = loop.create_task(plain(1));
    Task<int> b = loop.create_task(plain(2));
#if INLINE_BRACED_LISTS
    auto [done, pending] = co_await asyncuv::wait(std::vector<Task<int>>{a, b});
#else
    std::vector<Task<int>> both{a, b};
    auto [done, pending] = co_await asyncuv::wait(std::move(both));
#endif
    CHECK(done.size() == 2);
    CHECK(pending.empty());
    CHECK(a.result() + b.result() == 3);
  };
  test_support::run_task(*loop, body(*loop));
  loop->close();
}

TEST_CASE("inline: a braced argv on subprocess_exec and create_subprocess_exec", "[inline]") {
  auto loop = asyncuv::new_event_loop();
  auto body = [](EventLoop& loop) -> Task<void> {
    Future<void> done = loop.create_future<void>();
    auto factory = [&done] { return std::make_shared<Collect>(done); };
#if INLINE_BRACED_LISTS
    auto [transport, protocol] = co_await loop.subprocess_exec(factory, {"echo", "hi"});
#else
    std::vector<std::string> argv{"echo", "hi"};
    auto [transport, protocol] = co_await loop.subprocess_exec(factory, std::move(argv));
#endif
    co_await done;
    CHECK(protocol->out == "hi\n");
    transport->close();
#if INLINE_BRACED_LISTS
    auto proc = co_await asyncuv::create_subprocess_exec({"echo", "there"}, asyncuv::Stdio::pipe(),
                                                         asyncuv::Stdio::pipe());
#else
    std::vector<std::string> argv2{"echo", "there"};
    auto proc = co_await asyncuv::create_subprocess_exec(std::move(argv2), asyncuv::Stdio::pipe(),
                                                         asyncuv::Stdio::pipe());
#endif
    auto [out, err] = co_await proc.communicate("");
    CHECK(out == "there\n");
    CHECK(co_await proc.wait() == 0);
  };
  test_support::run_task(*loop, body(*loop));
  loop->close();
}
