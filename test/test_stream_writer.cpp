// asyncio StreamWriter / StreamReaderProtocol semantics over real connections (socket pairs
// wrapped with connect_accepted_socket): data integrity in both directions, drain() and
// backpressure, close / wait_closed, EOF, errors, and what happens when handles go away.
#include <catch2/catch.hpp>

#include <netinet/in.h>

#include <optional>
#include <string>
#include <vector>

#include "byte_compare.hpp"
#include "log_capture.hpp"
#include "streams_test_support.hpp"

using namespace streams_test;
using stream_test::holds;
using stream_test::pattern;

namespace {

/// Coroutine: writes `data` in `chunk`-sized writes, draining after each, then half-closes.
Task<void> send_all(StreamWriter writer, std::string data, std::size_t chunk) {
  for (std::size_t at = 0; at < data.size(); at += chunk) {
    writer.write(std::string_view(data).substr(at, chunk));
    co_await writer.drain();
  }
  writer.write_eof();
}

/// Coroutine: the writer's drain(), recording that it returned.
Task<void> drain_and_mark(StreamWriter writer, bool* done) {
  co_await writer.drain();
  *done = true;
}

}  // namespace

TEST_CASE("streams: megabytes both ways at once, every byte checked", "[streams]") {
  for (bool tcp : {true, false}) {
    CAPTURE(tcp);
    EventLoop loop;
    auto [left_sock, right_sock] = tcp ? stream_test::tcp_pair() : stream_test::unix_pair();
    stream_test::small_kernel_buffers(left_sock);
    stream_test::small_kernel_buffers(right_sock);
    auto left = run(loop, wrap_socket(std::move(left_sock)));
    auto right = run(loop, wrap_socket(std::move(right_sock)));
    const std::string to_right = pattern(5 * 1024 * 1024 + 17, 11);
    const std::string to_left = pattern(3 * 1024 * 1024 + 5, 12);

    auto right_side = [](StreamPair io, std::size_t expect,
                         std::string reply) -> Task<std::string> {
      auto sending = asyncuv::get_running_loop().create_task(send_all(io.second, reply, 100000));
      std::string got = co_await io.first.readexactly(static_cast<std::ptrdiff_t>(expect));
      std::string rest = co_await io.first.read();  // "" once the peer's EOF arrives
      got += rest;
      co_await sending;
      co_return got;
    };
    auto left_side = [](StreamPair io, std::string data) -> Task<std::string> {
      auto sending = asyncuv::get_running_loop().create_task(send_all(io.second, data, 1 << 20));
      std::string got = co_await io.first.read();  // until EOF
      co_await sending;
      co_return got;
    };
    auto at_right = loop.create_task(right_side(right, to_right.size(), to_left));
    std::string at_left = run(loop, left_side(left, to_right));
    std::string got_right = run(loop, at_right);
    CHECK(got_right.size() == to_right.size());
    CHECK(test_support::byte_difference(got_right, to_right) == "");
    CHECK(at_left.size() == to_left.size());
    CHECK(at_left == to_left);
    CHECK(left.first.at_eof());
    CHECK(right.first.at_eof());
    for (auto* io : {&left, &right}) {
      io->second.close();
      run(loop, io->second.wait_closed());
    }
  }
}

TEST_CASE("streams: drain() blocks while the peer does not read and resumes when it does",
          "[streams]") {
  EventLoop loop;
  auto [a, b] = stream_test::tcp_pair();
  stream_test::small_kernel_buffers(a);
  stream_test::small_kernel_buffers(b);
  auto writer_side = run(loop, wrap_socket(std::move(a)));
  auto reader_side = run(loop, wrap_socket(std::move(b)));
  StreamWriter writer = writer_side.second;
  auto protocol = writer.protocol();
  // More than the kernel buffers, the peer's 2 * limit and the high-water mark together.
  const std::string data = pattern(8 * 1024 * 1024, 5);
  writer.write(data);
  CHECK(protocol->writing_paused());
  bool drained = false;
  auto draining = loop.create_task(drain_and_mark(writer, &drained));
  // Nobody reads: the peer's reader fills to 2 * limit and pauses its transport, the kernel
  // buffers fill, and drain() cannot return.
  stream_test::run_until(loop, [&] { return reader_side.first.state()->paused; });
  stream_test::run_iterations(loop, 20);
  CHECK_FALSE(drained);
  CHECK_FALSE(draining.done());
  CHECK(writer.transport()->get_write_buffer_size() > 0);
  // Reading resumes everything.
  std::string got =
      run(loop, reader_side.first.readexactly(static_cast<std::ptrdiff_t>(data.size())));
  run(loop, draining);
  CHECK(drained);
  CHECK_FALSE(protocol->writing_paused());
  CHECK(test_support::byte_difference(got, data) == "");
  writer.close();
  run(loop, writer.wait_closed());
  reader_side.second.close();
  run(loop, reader_side.second.wait_closed());
}

TEST_CASE("streams: concurrent drains all wake on resume_writing", "[streams]") {
  EventLoop loop;
  auto [a, b] = stream_test::unix_pair();
  auto mine = run(loop, wrap_socket(std::move(a)));
  auto peer = run(loop, wrap_socket(std::move(b)));
  const std::string data = pattern(4 * 1024 * 1024, 9);
  mine.second.write(data);
  REQUIRE(mine.second.protocol()->writing_paused());
  bool done[3] = {false, false, false};
  std::vector<Task<void>> drains;
  for (bool& d : done)
    drains.push_back(loop.create_task(drain_and_mark(mine.second, &d)));
  stream_test::run_iterations(loop, 5);
  CHECK_FALSE((done[0] || done[1] || done[2]));
  std::string got = run(loop, peer.first.readexactly(static_cast<std::ptrdiff_t>(data.size())));
  for (auto& d : drains)
    run(loop, d);
  CHECK((done[0] && done[1] && done[2]));
  CHECK(test_support::byte_difference(got, data) == "");
  // With writing not paused, drain() returns at once.
  bool quick = false;
  run(loop, drain_and_mark(mine.second, &quick));
  CHECK(quick);
  mine.second.close();
  run(loop, mine.second.wait_closed());
  peer.second.close();
  run(loop, peer.second.wait_closed());
}

TEST_CASE("streams: close() then wait_closed(); write after close is dropped; drain raises",
          "[streams]") {
  EventLoop loop;
  auto [a, b] = stream_test::unix_pair();
  int peer_fd = b.fileno();
  auto [reader, writer] = run(loop, wrap_socket(std::move(a)));
  CHECK_FALSE(writer.is_closing());
  CHECK(writer.can_write_eof());
  writer.write("last words");
  writer.close();
  CHECK(writer.is_closing());
  writer.write("dropped");
  auto closed = writer.protocol()->closed();
  CHECK_FALSE(closed.done());
  run(loop, writer.wait_closed());
  CHECK(closed.done());
  run(loop, writer.wait_closed());  // again: at once
  std::string got;
  stream_test::wait_fd(peer_fd, POLLIN);
  CHECK(stream_test::drain_fd(peer_fd, got));  // EOF after the data
  CHECK(got == "last words");
  // The reader saw EOF (connection_lost(null) feeds it).
  CHECK(reader.at_eof());
  CHECK(reader.exception() == nullptr);
  // drain() on a closed writer: one yield to the loop, then ConnectionResetError.
  std::exception_ptr e = failure_of(loop, writer.drain());
  REQUIRE(holds<asyncuv::ConnectionResetError>(e));
  CHECK(stream_test::what(e) == "Connection lost");
}

TEST_CASE("streams: drain() on a closing transport yields once so connection_lost can run",
          "[streams]") {
  EventLoop loop;
  auto [a, b] = stream_test::unix_pair();
  auto [reader, writer] = run(loop, wrap_socket(std::move(a)));
  writer.close();  // connection_lost is scheduled, not run yet
  CHECK_FALSE(writer.protocol()->connection_lost_called());
  std::exception_ptr e = failure_of(loop, writer.drain());
  CHECK(writer.protocol()->connection_lost_called());
  CHECK(holds<asyncuv::ConnectionResetError>(e));
}

TEST_CASE("streams: write_eof() half-closes; the reply still arrives", "[streams]") {
  EventLoop loop;
  auto [a, b] = stream_test::tcp_pair();
  auto client = run(loop, wrap_socket(std::move(a)));
  auto server = run(loop, wrap_socket(std::move(b)));
  auto body = [](StreamPair client, StreamPair server) -> Task<void> {
    client.second.write("request");
    client.second.write_eof();
    std::string request = co_await server.first.read();  // until the client's EOF
    CHECK(request == "request");
    // The peer's EOF keeps the server's connection half-open: it can still answer.
    CHECK_FALSE(server.second.is_closing());
    server.second.writelines({"re", "sp", "onse"});
    std::vector<std::string> more{"!", "!"};
    server.second.writelines(std::span<const std::string>(more));
    server.second.close();
    std::string response = co_await client.first.read();
    CHECK(response == "response!!");
    co_await server.second.wait_closed();
    client.second.close();
    co_await client.second.wait_closed();
  };
  run(loop, body(client, server));
}

TEST_CASE("streams: the peer's EOF ends reads but keeps the writer usable (eof_received: true)",
          "[streams]") {
  EventLoop loop;
  auto [peer, mine] = stream_test::unix_pair();
  int peer_fd = peer.fileno();
  auto [reader, writer] = run(loop, wrap_socket(std::move(mine)));
  REQUIRE(::write(peer_fd, "line\n", 5) == 5);
  ::shutdown(peer_fd, SHUT_WR);
  CHECK(run(loop, reader.readline()) == "line\n");
  CHECK(run(loop, reader.readline()) == "");
  CHECK(reader.at_eof());
  stream_test::run_iterations(loop, 3);
  CHECK_FALSE(writer.is_closing());
  CHECK_FALSE(writer.protocol()->connection_lost_called());
  writer.write("answer");
  run(loop, writer.drain());
  std::string got;
  stream_test::run_until(loop, [&] {
    stream_test::drain_fd(peer_fd, got);
    return got == "answer";
  });
  writer.close();
  run(loop, writer.wait_closed());
}

TEST_CASE("streams: a connection lost with an error fails reads, drain and wait_closed",
          "[streams]") {
  EventLoop loop;
  stream_test::HandlerLog handler;
  handler.install(loop);
  auto [peer, mine] = stream_test::tcp_pair();
  auto [reader, writer] = run(loop, wrap_socket(std::move(mine)));
  reader.feed_data("");  // nothing
  auto pending = loop.create_task(reader.readline());
  stream_test::run_iterations(loop, 2);
  reset_on_close(peer);
  peer.close();  // RST
  std::exception_ptr e = failure_of(loop, pending);
  CHECK(holds<asyncuv::ConnectionResetError>(e));
  CHECK(holds<asyncuv::ConnectionResetError>(reader.exception()));
  CHECK(holds<asyncuv::ConnectionResetError>(failure_of(loop, reader.read(10))));
  CHECK(holds<asyncuv::ConnectionResetError>(failure_of(loop, writer.drain())));
  CHECK(holds<asyncuv::ConnectionResetError>(failure_of(loop, writer.wait_closed())));
  CHECK(writer.is_closing());
  CHECK(handler.contexts.empty());  // an OSError is not reported to the handler
}

TEST_CASE("streams: a paused drain() wakes with the connection_lost exception", "[streams]") {
  EventLoop loop;
  auto [peer, mine] = stream_test::tcp_pair();
  stream_test::small_kernel_buffers(mine);
  auto [reader, writer] = run(loop, wrap_socket(std::move(mine)));
  writer.write(pattern(4 * 1024 * 1024));
  REQUIRE(writer.protocol()->writing_paused());
  auto draining = loop.create_task(writer.drain());
  stream_test::run_iterations(loop, 3);
  REQUIRE_FALSE(draining.done());
  reset_on_close(peer);
  peer.close();
  std::exception_ptr e = failure_of(loop, draining);
  CHECK(holds<asyncuv::ConnectionError>(e));  // reset or broken pipe, as the kernel noticed
  CHECK(writer.protocol()->connection_lost_called());
}

TEST_CASE("streams: a paused drain() returns when the transport is aborted", "[streams]") {
  EventLoop loop;
  auto [peer, mine] = stream_test::unix_pair();
  auto [reader, writer] = run(loop, wrap_socket(std::move(mine)));
  writer.write(pattern(4 * 1024 * 1024));
  REQUIRE(writer.protocol()->writing_paused());
  auto draining = loop.create_task(writer.drain());
  stream_test::run_iterations(loop, 3);
  writer.transport()->abort();  // connection_lost(null): the waiter gets a result
  CHECK(failure_of(loop, draining) == nullptr);
  CHECK(reader.at_eof());
}

TEST_CASE("streams: get_extra_info, transport, repr", "[streams]") {
  EventLoop loop;
  auto [a, b] = stream_test::tcp_pair();
  asyncuv::SockAddr peer_address = b.getsockname();
  auto [reader, writer] = run(loop, wrap_socket(std::move(a)));
  auto peername = writer.get_extra_info<asyncuv::SockAddr>("peername");
  REQUIRE(peername.has_value());
  CHECK(peername->port() == peer_address.port());
  CHECK(std::any_cast<int>(writer.get_extra_info("socket")) >= 0);
  CHECK(std::any_cast<int>(writer.get_extra_info("nothing", 42)) == 42);
  CHECK_FALSE(writer.get_extra_info("nothing").has_value());
  CHECK(writer.transport()->get_protocol() == writer.protocol());
  CHECK(&writer.get_loop() == &loop);
  std::string text = writer.repr();
  CHECK(text.rfind("<StreamWriter transport=<SocketTransport fd=", 0) == 0);
  CHECK(text.find(" reader=<StreamReader transport=<SocketTransport") != std::string::npos);
  StreamWriter copy = writer;
  CHECK(copy == writer);
  writer.close();
  run(loop, writer.wait_closed());
}

TEST_CASE("streams: dropping every handle of an open connection closes it", "[streams]") {
  for (bool debug : {false, true}) {
    CAPTURE(debug);
    test_support::LogCapture logs;
    EventLoop loop;
    loop.set_debug(debug);
    auto [peer, mine] = stream_test::unix_pair();
    int peer_fd = peer.fileno();
    {
      auto pair = run(loop, wrap_socket(std::move(mine)));
      pair.second.write("bye");
    }  // reader and writer gone: the transport is closed, the data still sent
    std::string got;
    bool eof = false;
    stream_test::run_until(loop, [&] {
      eof = stream_test::drain_fd(peer_fd, got);
      return eof;
    });
    CHECK(got == "bye");
    bool warned = false;
    for (const auto& record : logs.records()) {
      if (record.text.rfind("unclosed <StreamWriter transport=", 0) == 0) warned = true;
    }
    CHECK(warned == debug);
    stream_test::run_iterations(loop, 3);
    CHECK(loop.service<asyncuv::detail::StreamTransports>().size() == 0);
  }
}

TEST_CASE("streams: a reader kept without its writer still closes the connection", "[streams]") {
  EventLoop loop;
  auto [peer_, mine] = stream_test::unix_pair();
  auto& peer = peer_;  // a named reference: clang 14 cannot capture a binding
  std::optional<StreamReader> reader;
  {
    auto pair = run(loop, wrap_socket(std::move(mine)));
    reader = pair.first;
  }
  std::string got;
  stream_test::run_until(loop, [&] { return stream_test::drain_fd(peer.fileno(), got); });
  CHECK(run(loop, reader->read()) == "");  // connection_lost fed EOF
}

TEST_CASE("streams: loop.close() with open streams and pending reads and drains", "[streams]") {
  test_support::LogCapture logs;        // "Task was destroyed but it is pending!" is expected
  std::optional<StreamPair> outliving;  // dropped after the loop is gone
  {
    EventLoop loop;
    auto [a, peer_a] = stream_test::unix_pair();
    auto [b, peer_b] = stream_test::unix_pair();
    auto [c, peer_c] = stream_test::unix_pair();
    auto one = run(loop, wrap_socket(std::move(a)));
    auto two = run(loop, wrap_socket(std::move(b)));
    outliving = run(loop, wrap_socket(std::move(c)));
    auto reading = loop.create_task(one.first.readexactly(100));
    two.second.write(pattern(4 * 1024 * 1024));
    auto draining = loop.create_task(two.second.drain());
    auto reading2 = loop.create_task(outliving->first.readline());
    stream_test::run_iterations(loop, 3);
    CHECK_FALSE(reading.done());
    CHECK_FALSE(draining.done());
    CHECK_FALSE(reading2.done());
    loop.close();
    CHECK(one.second.is_closing());
    CHECK(two.second.is_closing());
    CHECK(outliving->second.is_closing());
  }
  outliving.reset();
}

TEST_CASE("streams: StreamReaderProtocol calls a client callback in connection_made", "[streams]") {
  EventLoop loop;
  stream_test::HandlerLog handler;
  handler.install(loop);

  SECTION("plain callback: called with the reader and a writer on the transport") {
    std::optional<StreamPair> seen;
    asyncuv::ClientConnectedCallback cb = [&seen](StreamReader r, StreamWriter w) {
      seen.emplace(r, w);
    };
    auto factory = asyncuv::detail::stream_protocol_factory(loop, cb, 100);
    auto [a, b] = stream_test::unix_pair();
    auto made = [](asyncuv::Socket sock, decltype(factory) f) -> Task<void> {
      co_await asyncuv::get_running_loop().connect_accepted_socket(f, std::move(sock));
    };
    run(loop, made(std::move(a), factory));
    REQUIRE(seen.has_value());
    CHECK(seen->first.limit() == 100);
    CHECK(seen->second.transport()->get_protocol() == seen->second.protocol());
    REQUIRE(::write(b.fileno(), "ping\n", 5) == 5);
    CHECK(run(loop, seen->first.readline()) == "ping\n");
    seen->second.close();
    run(loop, seen->second.wait_closed());
  }

  SECTION("coroutine callback: runs as a task; its exception goes to the handler") {
    std::string line;
    auto cb = [&line](StreamReader r, StreamWriter w) -> Task<void> {
      line = co_await r.readline();
      w.write("echo:" + line);
      co_await w.drain();
      throw asyncuv::ValueError("handler failed");
    };
    auto factory =
        asyncuv::detail::stream_protocol_factory(loop, cb, asyncuv::stream_default_limit);
    auto [a, b] = stream_test::unix_pair();
    int peer_fd = b.fileno();
    auto made = [](asyncuv::Socket sock,
                   decltype(factory) f) -> Task<std::shared_ptr<asyncuv::Transport>> {
      auto pair = co_await asyncuv::get_running_loop().connect_accepted_socket(f, std::move(sock));
      co_return pair.first;
    };
    auto transport = run(loop, made(std::move(a), factory));
    REQUIRE(::write(peer_fd, "hi\n", 3) == 3);
    std::string got;
    stream_test::run_until(loop, [&] { return stream_test::drain_fd(peer_fd, got); });
    CHECK(got == "echo:hi\n");  // then EOF: the failed callback closed the transport
    CHECK(line == "hi\n");
    REQUIRE(handler.contexts.size() == 1);
    const auto& context = handler.contexts[0];
    CHECK(context.message() == "Unhandled exception in client_connected_cb");
    CHECK(stream_test::what(context.exception()) == "handler failed");
    CHECK(context.transport<asyncuv::Transport>() == transport);
    CHECK(transport->is_closing());
  }

  SECTION("a cancelled callback task closes the transport, without a handler call") {
    auto cb = [](StreamReader r, StreamWriter) -> Task<void> { co_await r.read(); };
    auto factory =
        asyncuv::detail::stream_protocol_factory(loop, cb, asyncuv::stream_default_limit);
    auto [a, b] = stream_test::unix_pair();
    auto made = [](asyncuv::Socket sock,
                   decltype(factory) f) -> Task<std::shared_ptr<asyncuv::Transport>> {
      auto pair = co_await asyncuv::get_running_loop().connect_accepted_socket(f, std::move(sock));
      co_return pair.first;
    };
    auto transport = run(loop, made(std::move(a), factory));
    stream_test::run_iterations(loop, 2);
    auto tasks = asyncuv::all_tasks(loop);
    REQUIRE(tasks.size() == 1);
    tasks[0].cancel();
    stream_test::run_until(loop, [&] { return transport->is_closing(); });
    CHECK(handler.contexts.empty());
  }

  SECTION("a callback needs a reader") {
    asyncuv::ClientConnectedCallback cb = [](StreamReader, StreamWriter) {};
    CHECK_THROWS_AS(StreamReaderProtocol(loop, std::nullopt, cb), asyncuv::TypeError);
    CHECK_FALSE(asyncuv::ClientConnectedCallback());
  }
}
