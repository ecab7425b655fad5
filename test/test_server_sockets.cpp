// Server::sockets() as asyncio's Server.sockets: a copy of socket views (TransportSocket) the
// caller may keep; a view kept past close() never reaches a reused descriptor.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <sys/socket.h>

#include <vector>

#include "server_test_support.hpp"

using asyncuv::EventLoop;
using asyncuv::TransportSocket;
using namespace server_test;

TEST_CASE("70: Server::sockets() returns views that stay safe after close()", "[server]") {
  Recorders r;
  EventLoop loop;
  auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
  std::vector<TransportSocket> views = server->sockets();
  REQUIRE(views.size() == 1);
  TransportSocket view = views[0];  // copies refer to the same socket
  CHECK(view.fileno() >= 0);
  CHECK(view.fileno() == server->sockets()[0].fileno());
  CHECK(view.family() == AF_INET);
  CHECK(view.type() == SOCK_STREAM);
  CHECK(view.getsockname().port() != 0);
  CHECK(view.getsockopt(SOL_SOCKET, SO_ACCEPTCONN) == 1);

  server->close();
  CHECK(server->sockets().empty());
  CHECK(views.size() == 1);  // the caller's copy is unchanged
  CHECK(view.fileno() == -1);
  CHECK(views[0].fileno() == -1);
  CHECK_THROWS_AS(view.getsockname(), asyncuv::OSError);
  run_task(loop, server->wait_closed());
}

TEST_CASE("70: socket views outlive the server object and the loop", "[server]") {
  Recorders r;
  std::vector<TransportSocket> views;
  {
    EventLoop loop;
    auto server = run_task(loop, loop.create_server(r.factory(), "127.0.0.1", 0));
    views = server->sockets();
    REQUIRE(views.size() == 1);
    CHECK(views[0].fileno() >= 0);
    loop.close();  // closes every server's listening sockets
    CHECK(views[0].fileno() == -1);
  }
  CHECK(views[0].fileno() == -1);
  CHECK_THROWS_AS(views[0].getsockopt(SOL_SOCKET, SO_TYPE), asyncuv::OSError);
}
