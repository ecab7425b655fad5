// Fault test: a server at a low RLIMIT_NOFILE taking more connections than it has descriptors.
// asyncio logs "socket.accept() out of system resource" (through the default exception
// handler), stops accepting for a second and accepts the waiting connections once
// descriptors are free again: every client is served, none is dropped. The limit is restored
// by an RAII guard (test_support::DescriptorsExhausted).
#include "descriptor_limit.hpp"
#include "log_capture.hpp"
#include "server_test_support.hpp"

#include <algorithm>
#include <optional>

using namespace server_test;
using test_support::DescriptorsExhausted;
using test_support::LogCapture;

namespace {

/// Answers the first data with "re: " + data, then closes (freeing its descriptor).
class AnswerOnce : public asyncuv::Protocol {
 public:
  std::shared_ptr<Transport> transport;
  void connection_made(std::shared_ptr<Transport> t) override { transport = std::move(t); }
  void data_received(std::string_view data) override {
    std::string reply = "re: ";
    reply.append(data);
    transport->write(reply);
    transport->close();
  }
  void connection_lost(std::exception_ptr) override { transport.reset(); }
};

/// How many captured log records contain `text`.
int logged(const LogCapture& log, std::string_view text) {
  auto records = log.records();
  return static_cast<int>(std::count_if(records.begin(), records.end(), [&](const auto& r) {
    return r.text.find(text) != std::string::npos;
  }));
}

}  // namespace

TEST_CASE("fault: EMFILE with more clients than descriptors: logged, every client served",
          "[fault]") {
  LogCapture log;
  EventLoop loop;  // the default exception handler: it logs
  int accepted = 0;
  auto factory = [&accepted] {
    ++accepted;
    return std::make_shared<AnswerOnce>();
  };
  auto server = run_task(loop, loop.create_server(factory, "127.0.0.1", 0));
  const SockAddr address = server->sockets()[0].getsockname();

  // One full connection first, and the report path: with descriptors short, only code that
  // already ran may run (UBSan's first check of a type needs a pipe; see DescriptorsExhausted).
  {
    Socket warm = connect_to(address);
    REQUIRE(::send(warm.fileno(), "warm", 4, MSG_NOSIGNAL) == 4);
    std::string got;
    run_until(loop, [&] { return drain_fd(warm.fileno(), got); });
    CHECK(got == "re: warm");
  }
  DescriptorsExhausted::warm_up();
  {
    asyncuv::ExceptionContext context("warm-up", asyncuv::make_os_error(EMFILE));
    context.set("socket", 0, "warm-up");
    loop.call_exception_handler(context);
  }
  accepted = 0;

  // More clients than free descriptors (not twice as many: the second round then finds a
  // descriptor for accept()'s final EAGAIN, and there is one pause only); they connect and
  // send before the server accepts (the kernel queues them), all sockets made before the limit
  // goes down.
  constexpr int spare = 4;
  constexpr int clients = spare + 2;
  std::vector<Socket> sockets;
  for (int i = 0; i < clients; ++i) {
    sockets.push_back(connect_to(address));
    std::string hello = "client " + std::to_string(i);
    REQUIRE(::send(sockets.back().fileno(), hello.data(), hello.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(hello.size()));
  }
  std::vector<std::string> answers(clients);
  std::vector<bool> ended(clients, false);
  const double start = loop.time();
  {
    DescriptorsExhausted short_of_fds(spare);
    REQUIRE(short_of_fds.ok());
    run_until(loop, [&] {
      for (int i = 0; i < clients; ++i)
        if (!ended[i]) ended[i] = drain_fd(sockets[i].fileno(), answers[i]);
      return std::all_of(ended.begin(), ended.end(), [](bool e) { return e; });
    });
  }  // the limit is back from here on
  const double took = loop.time() - start;

  CHECK(accepted == clients);
  for (int i = 0; i < clients; ++i)
    CHECK(answers[i] == "re: client " + std::to_string(i));
  // At least one report; served after at least one second-long pause (asyncio's delay). No
  // upper bound on the time but the watchdog's: the machine may be loaded.
  CHECK(logged(log, "socket.accept() out of system resource") >= 1);
  CHECK(took >= 0.99);
  CHECK(server->is_serving());

  // Serving normally again.
  Socket after = connect_to(address);
  REQUIRE(::send(after.fileno(), "after", 5, MSG_NOSIGNAL) == 5);
  std::string got;
  run_until(loop, [&] { return drain_fd(after.fileno(), got); });
  CHECK(got == "re: after");
  server->close();
  run_task(loop, server->wait_closed());
}
