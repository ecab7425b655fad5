// Test support for the streams tests: running a coroutine with a watchdog, wrapping a
// connected socket as a (reader, writer) pair, and checking what an exception holds.
#pragma once

#include <asyncuv/streams.hpp>

#include <memory>
#include <string>
#include <utility>

#include "loop_support.hpp"
#include "stream_test_support.hpp"

namespace streams_test {

using asyncuv::EventLoop;
using asyncuv::Socket;
using asyncuv::StreamReader;
using asyncuv::StreamReaderProtocol;
using asyncuv::StreamWriter;
using asyncuv::Task;
using StreamPair = std::pair<StreamReader, StreamWriter>;

/// run(loop, coro): test_support::run_task with a 60-second watchdog.
template <class T>
T run(EventLoop& loop, Task<T> coro) {
  return test_support::run_task(loop, std::move(coro), 60.0);
}

/// Coroutine: a (reader, writer) pair over connected socket `sock` (what open_connection
/// returns, built with connect_accepted_socket).
inline Task<StreamPair> wrap_socket(Socket sock,
                                    std::size_t limit = asyncuv::stream_default_limit) {
  EventLoop& loop = asyncuv::get_running_loop();
  StreamReader reader(loop, limit);
  auto protocol = std::make_shared<StreamReaderProtocol>(loop, reader);
  auto factory = [protocol] { return protocol; };
  auto connecting = loop.connect_accepted_socket(factory, std::move(sock));
  auto connected = co_await std::move(connecting);
  co_return StreamPair(reader, StreamWriter(connected.first, protocol, reader, loop));
}

/// Coroutine: the exception `t` ends with, or null. (GCC 12 evaluates a co_await inside
/// Catch's CHECK macros twice: tests await first, then check.)
template <class T>
Task<std::exception_ptr> error_of(Task<T> t) {
  try {
    co_await std::move(t);
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

/// failure_of with a 60-second watchdog.
template <class T>
std::exception_ptr failure_of(EventLoop& loop, Task<T> coro) {
  return test_support::failure_of(loop, std::move(coro), 60.0);
}

/// Makes `sock` send RST on close (SO_LINGER with a zero timeout).
inline void reset_on_close(Socket& sock) {
  struct linger lg {
    1, 0
  };
  REQUIRE(::setsockopt(sock.fileno(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
}

}  // namespace streams_test
