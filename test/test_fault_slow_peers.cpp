// Fault test: slow clients must not starve fast ones. A line-echo server (start_server) has
// slowloris clients (half a line, then silence) and clients that send megabytes of lines but
// read none of the answers (the server's handler for them waits in drain()). A fast client's
// round trips must all complete meanwhile; afterwards every slow client gets exactly what it
// sent back, so nothing was lost or reordered while they stalled.
#include "streams_test_support.hpp"

#include <asyncuv/locks.hpp>

using asyncuv::Event;
using asyncuv::EventLoop;
using asyncuv::StreamReader;
using asyncuv::StreamWriter;
using asyncuv::Task;
using streams_test::StreamPair;

namespace {

/// The server: echoes every line until EOF, then closes.
Task<void> echo_lines(StreamReader reader, StreamWriter writer) {
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;
    writer.write(line);
    co_await writer.drain();
  }
  writer.close();
  co_await writer.wait_closed();
}

/// A slowloris client: half a line, silence until `release`, then the rest; true if the
/// whole line came back.
Task<bool> half_line_client(std::uint16_t port, int id, Event* sent, Event* release) {
  auto opening = asyncuv::open_connection("127.0.0.1", port);
  StreamPair streams = co_await std::move(opening);
  std::string head = "slow client " + std::to_string(id);
  streams.second.write(head);
  co_await streams.second.drain();
  sent->set();
  co_await release->wait();
  streams.second.write(" done\n");
  std::string answer = co_await streams.first.readline();
  streams.second.close();
  co_await streams.second.wait_closed();
  co_return answer == head + " done\n";
}

/// A client that sends `bytes` of numbered lines and reads nothing until `release`; then it
/// half-closes and returns everything the server sent back.
Task<std::string> deaf_client(std::uint16_t port, std::string sent_lines, Event* sent,
                              Event* release) {
  auto opening = asyncuv::open_connection("127.0.0.1", port);
  StreamPair streams = co_await std::move(opening);
  streams.second.write(sent_lines);  // buffered in this client: it does not drain
  sent->set();
  co_await release->wait();
  streams.second.write_eof();
  std::string back = co_await streams.first.read();  // to end of file
  streams.second.close();
  co_await streams.second.wait_closed();
  co_return back;
}

/// The fast client: `count` round trips; returns how many answers were right.
Task<int> fast_client(std::uint16_t port, int count) {
  auto opening = asyncuv::open_connection("127.0.0.1", port);
  StreamPair streams = co_await std::move(opening);
  int right = 0;
  for (int i = 0; i < count; ++i) {
    std::string line = "fast " + std::to_string(i) + "\n";
    streams.second.write(line);
    co_await streams.second.drain();
    std::string answer = co_await streams.first.readline();
    if (answer == line) ++right;
  }
  streams.second.close();
  co_await streams.second.wait_closed();
  co_return right;
}

/// `bytes` (about) of numbered 1 KiB lines tagged `tag`.
std::string numbered_lines(int tag, std::size_t bytes) {
  std::string out;
  for (int i = 0; out.size() < bytes; ++i) {
    std::string line = "deaf " + std::to_string(tag) + " line " + std::to_string(i) + " ";
    line.resize(1023, static_cast<char>('a' + i % 26));
    out += line + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("fault: slowloris and non-reading clients do not starve a fast client", "[fault]") {
  EventLoop loop;
  constexpr int half_liners = 20;
  constexpr int deaf = 4;
  constexpr int round_trips = 300;
  auto body = [&]() -> Task<void> {
    auto starting = asyncuv::start_server(echo_lines, "127.0.0.1", 0);
    std::shared_ptr<asyncuv::Server> server = co_await std::move(starting);
    const std::uint16_t port = server->sockets().at(0).getsockname().port();

    Event release;
    std::vector<std::unique_ptr<Event>> sent;
    std::vector<Task<bool>> slow;
    for (int i = 0; i < half_liners; ++i) {
      sent.push_back(std::make_unique<Event>());
      slow.push_back(loop.create_task(half_line_client(port, i, sent.back().get(), &release)));
    }
    std::vector<std::string> deaf_lines;
    std::vector<Task<std::string>> deaf_tasks;
    for (int i = 0; i < deaf; ++i) {
      deaf_lines.push_back(numbered_lines(i, 4 << 20));
      sent.push_back(std::make_unique<Event>());
      deaf_tasks.push_back(
          loop.create_task(deaf_client(port, deaf_lines.back(), sent.back().get(), &release)));
    }
    for (auto& event : sent)
      co_await event->wait();

    // Every slow client is connected and stalled; the fast one must get all its answers.
    const double start = loop.time();
    int right = co_await fast_client(port, round_trips);
    const double took = loop.time() - start;
    CHECK(right == round_trips);
    CAPTURE(took);
    CHECK(took < 20.0);  // generous for a loaded machine; starvation would hit the watchdog
    for (auto& task : slow)
      CHECK_FALSE(task.done());  // they were still stalled all along
    for (auto& task : deaf_tasks)
      CHECK_FALSE(task.done());

    release.set();
    for (auto& task : slow) {
      bool whole = co_await task;  // awaited outside CHECK: GCC 12 would evaluate it twice
      CHECK(whole);
    }
    for (int i = 0; i < deaf; ++i) {
      std::string back = co_await deaf_tasks[static_cast<std::size_t>(i)];
      CHECK(back.size() == deaf_lines[static_cast<std::size_t>(i)].size());
      CHECK(back == deaf_lines[static_cast<std::size_t>(i)]);
    }
    server->close();
    co_await server->wait_closed();
  };
  streams_test::run(loop, body());
}
