// `async with server` (asyncio Server.__aenter__/__aexit__): asyncuv::async_with(server, body)
// closes the server and waits for wait_closed() when the body ends, however it ends.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <stdexcept>
#include <string>

#include "server_test_support.hpp"

using asyncuv::EventLoop;
using asyncuv::Server;
using namespace server_test;

TEST_CASE("async_with(server): the body runs while serving; the server is closed after",
          "[server][server-scope]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  auto body = [](Server& s) -> Task<int> {
    CHECK(s.is_serving());
    co_return static_cast<int>(s.sockets().size());
  };
  auto scope = [&]() -> Task<int> { co_return co_await asyncuv::async_with(server, body); };
  CHECK(run_task(loop, scope()) == 1);
  CHECK_FALSE(server->is_serving());
  CHECK(server->sockets().empty());
}

TEST_CASE("async_with(server): an exception from the body closes the server, then propagates",
          "[server][server-scope]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  auto body = [](Server&) -> Task<void> {
    co_await asyncuv::sleep(0);
    throw std::runtime_error("body failed");
  };
  auto scope = [&]() -> Task<void> { co_await asyncuv::async_with(server, body); };
  CHECK_THROWS_WITH(run_task(loop, scope()), "body failed");
  CHECK_FALSE(server->is_serving());
}

TEST_CASE("async_with(server): cancelling serve_forever() in the body leaves a closed server",
          "[server][server-scope]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  auto body = [](Server& s) -> Task<void> { co_await s.serve_forever(); };
  auto scope = [&]() -> Task<void> { co_await asyncuv::async_with(server, body); };
  Task<void> t = loop.create_task(scope());
  loop.call_later(0.01, [t] { t.cancel(); });
  CHECK_THROWS_AS(run_task(loop, t), asyncuv::CancelledError);
  CHECK(t.cancelled());
  CHECK_FALSE(server->is_serving());
  CHECK(server->sockets().empty());
}

TEST_CASE("async_with(server): waits until the accepted connections are gone",
          "[server][server-scope]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  const asyncuv::SockAddr address = server->sockets()[0].getsockname();
  Socket client = connect_to(address);
  bool closed_after_client = false;
  auto body = [&](Server&) -> Task<void> {
    while (r.made.empty())
      co_await asyncuv::sleep(0.001);
    // The connection outlives close(): drop it a little later, from the client side.
    loop.call_later(0.02, [&] {
      closed_after_client = true;
      r.made[0]->transport->close();
    });
  };
  auto scope = [&]() -> Task<void> { co_await asyncuv::async_with(server, body); };
  run_task(loop, scope());
  CHECK(closed_after_client);
  client.close();
}

TEST_CASE("async_with(nullptr) is ValueError", "[server][server-scope]") {
  EventLoop loop;
  auto body = [](Server&) -> Task<void> { co_return; };
  auto scope = [&]() -> Task<void> { co_await asyncuv::async_with(nullptr, body); };
  CHECK_THROWS_AS(run_task(loop, scope()), asyncuv::ValueError);
}
