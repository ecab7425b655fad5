// Accepting when the process is out of descriptors: asyncio reports "socket.accept() out of
// system resource", stops watching the listening socket for a second, then accepts the
// connections that waited meanwhile (libuv's own uv_listen would drop them instead).
#include "descriptor_limit.hpp"
#include "server_test_support.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

using namespace server_test;
using test_support::DescriptorsExhausted;

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
