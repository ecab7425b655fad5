// loop.connect_read_pipe / connect_write_pipe: os pipes (data, EOF, pause/resume, flow
// control, close after flush, BrokenPipe when the reader goes), FIFOs, a pty, regular files
// refused, protocol exceptions, and the loop closing with pipes open.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byte_compare.hpp"
#include "log_capture.hpp"
#include "loop_support.hpp"
#include "stream_test_support.hpp"
#include "temp_dir.hpp"
#include "test_subprocess_support.hpp"

using namespace subprocess_test;
using asyncuv::Task;
using test_support::failure_of;
using test_support::run_task;

namespace {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    r = fds[0];
    w = fds[1];
  }
};

Task<std::shared_ptr<PipeRecorder>> read_pipe(EventLoop& loop, int fd) {
  auto factory = [&loop] { return std::make_shared<PipeRecorder>(loop); };
  auto connecting = loop.connect_read_pipe(factory, fd);
  auto [transport, proto] = co_await std::move(connecting);
  CHECK(proto->transport == std::dynamic_pointer_cast<asyncuv::Transport>(transport));
  co_return proto;
}

Task<std::shared_ptr<PipeRecorder>> write_pipe(EventLoop& loop, int fd) {
  auto factory = [&loop] { return std::make_shared<PipeRecorder>(loop); };
  auto connecting = loop.connect_write_pipe(factory, fd);
  auto [transport, proto] = co_await std::move(connecting);
  co_return proto;
}

/// Runs the loop until `pred` holds (20 s watchdog).
template <class Pred>
void run_until(EventLoop& loop, Pred pred) {
  auto waiting = [&]() -> Task<void> {
    while (!pred())
      co_await asyncuv::sleep(0.001);
  };
  run_task(loop, waiting(), 20.0);
}

}  // namespace

TEST_CASE("read pipe: connection_made, data_received, eof_received, connection_lost", "[pipes]") {
  EventLoop loop;
  Pipe p;
  auto proto = run_task(loop, read_pipe(loop, p.r));
  CHECK(proto->events == std::vector<std::string>{"made"});
  CHECK(proto->transport->get_extra_info<int>("pipe") == p.r);
  CHECK(proto->transport->is_reading());
  REQUIRE(::write(p.w, "hello", 5) == 5);
  run_until(loop, [&] { return proto->received == "hello"; });
  ::close(p.w);
  run_until(loop, [&] { return proto->lost_calls == 1; });
  CHECK(proto->events == std::vector<std::string>{"made", "data", "eof", "lost"});
  CHECK(proto->lost_exc == nullptr);
  CHECK(proto->transport->is_closing());
  CHECK(::fcntl(p.r, F_GETFD) == -1);  // the transport closed the descriptor
}

TEST_CASE("read pipe: pause_reading and resume_reading; close()", "[pipes]") {
  EventLoop loop;
  Pipe p;
  auto proto = run_task(loop, read_pipe(loop, p.r));
  auto t = proto->transport;
  t->pause_reading();
  CHECK_FALSE(t->is_reading());
  t->pause_reading();  // idempotent
  REQUIRE(::write(p.w, "abc", 3) == 3);
  loop.run_until_complete(asyncuv::sleep(0.02));
  CHECK(proto->received.empty());
  t->resume_reading();
  CHECK(t->is_reading());
  run_until(loop, [&] { return proto->received == "abc"; });
  t->close();
  CHECK(t->is_closing());
  run_until(loop, [&] { return proto->lost_calls == 1; });
  CHECK(proto->events == std::vector<std::string>{"made", "data", "lost"});
  t->close();  // harmless
  ::close(p.w);
  CHECK_THROWS_AS(t->write("x"), asyncuv::RuntimeError);  // a read pipe has no write side
}

TEST_CASE("write pipe: data, flow control, close after flush, EOF for the reader", "[pipes]") {
  EventLoop loop;
  Pipe p;
  auto proto = run_task(loop, write_pipe(loop, p.w));
  auto t = proto->transport;
  CHECK(t->get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(16384, 65536));
  CHECK_FALSE(t->is_reading());
  const std::string data = stream_test::pattern(1 << 20, 3);
  t->write(data);  // far more than the pipe holds: the rest is buffered
  CHECK(t->get_write_buffer_size() > 65536);
  CHECK(proto->events == std::vector<std::string>{"made", "pause"});
  t->close();  // after the flush
  CHECK(t->is_closing());
  t->write("dropped");  // after close: dropped, no exception
  // Now read everything; resume_writing comes once the buffer is at the low-water mark.
  std::string got;
  auto reader = [&]() -> Task<void> {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(p.r, buf, sizeof buf);
      if (n > 0) {
        got.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0) {
        break;
      } else {
        co_await asyncuv::sleep(0.001);
      }
    }
  };
  ::fcntl(p.r, F_SETFL, O_NONBLOCK);
  run_task(loop, reader());
  CHECK(test_support::byte_difference(got, data) == "");
  run_until(loop, [&] { return proto->lost_calls == 1; });
  CHECK(proto->events == std::vector<std::string>{"made", "pause", "resume", "lost"});
  CHECK(proto->lost_exc == nullptr);
  ::close(p.r);
}

TEST_CASE(
    "write pipe: the reader closing gives BrokenPipeError with data buffered, a clean "
    "connection_lost when idle",
    "[pipes]") {
  EventLoop loop;
  {
    Pipe p;
    auto proto = run_task(loop, write_pipe(loop, p.w));
    proto->transport->write(std::string(1 << 20, 'b'));
    CHECK(proto->transport->get_write_buffer_size() > 0);
    ::close(p.r);
    run_until(loop, [&] { return proto->lost_calls == 1; });
    CHECK(errno_of(proto->lost_exc) == EPIPE);
    CHECK_THROWS_AS(std::rethrow_exception(proto->lost_exc), asyncuv::BrokenPipeError);
  }
  {
    Pipe p;
    auto proto = run_task(loop, write_pipe(loop, p.w));
    ::close(p.r);  // nothing written: asyncio's reader trick notices
    run_until(loop, [&] { return proto->lost_calls == 1; });
    CHECK(proto->lost_exc == nullptr);
  }
}

TEST_CASE("write pipe: write_eof closes after the flush; abort drops the buffer", "[pipes]") {
  EventLoop loop;
  Pipe p;
  auto proto = run_task(loop, write_pipe(loop, p.w));
  auto t = proto->transport;
  CHECK(t->can_write_eof());
  t->write(std::string(1 << 20, 'a'));
  t->abort();
  CHECK(t->get_write_buffer_size() == 0);
  CHECK(t->is_closing());
  run_until(loop, [&] { return proto->lost_calls == 1; });
  CHECK(proto->lost_exc == nullptr);
  ::close(p.r);

  Pipe q;
  auto proto2 = run_task(loop, write_pipe(loop, q.w));
  proto2->transport->write("tail");
  proto2->transport->write_eof();
  run_until(loop, [&] { return proto2->lost_calls == 1; });
  char buf[16] = {};
  CHECK(::read(q.r, buf, sizeof buf) == 4);
  CHECK(::read(q.r, buf, sizeof buf) == 0);  // EOF: the write end is closed
  ::close(q.r);
}

TEST_CASE("pipes over a FIFO", "[pipes]") {
  EventLoop loop;
  test_support::TempDir dir;
  std::string path = dir.file("fifo");
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  int r = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(r >= 0);
  int w = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(w >= 0);
  auto reader = run_task(loop, read_pipe(loop, r));
  auto writer = run_task(loop, write_pipe(loop, w));
  const std::string data = stream_test::pattern(300000, 9);
  writer->transport->write(data);
  writer->transport->close();
  run_until(loop, [&] { return reader->lost_calls == 1 && writer->lost_calls == 1; });
  CHECK(reader->received == data);
  CHECK(reader->events == std::vector<std::string>{"made", "data", "eof", "lost"});
}

TEST_CASE("a pty: read pipe on the master, EIO when the other side closes is quiet", "[pipes]") {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
    WARN("no pty available: the tty test is skipped");
    if (master >= 0) ::close(master);
    return;
  }
  int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  REQUIRE(slave >= 0);
  EventLoop loop;
  int handler_calls = 0;
  loop.set_exception_handler(
      [&](EventLoop&, const asyncuv::ExceptionContext&) { ++handler_calls; });
  auto proto = run_task(loop, read_pipe(loop, master));
  REQUIRE(::write(slave, "tty!", 4) == 4);
  run_until(loop, [&] { return proto->received.find("tty!") != std::string::npos; });
  ::close(slave);
  run_until(loop, [&] { return proto->lost_calls == 1; });
  // Linux reports EIO once the slave is closed: connection_lost(OSError EIO), not the handler.
  if (proto->lost_exc) CHECK(errno_of(proto->lost_exc) == EIO);
  CHECK(handler_calls == 0);

  // A write pipe on a tty works too.
  int master2 = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  REQUIRE(master2 >= 0);
  REQUIRE(::grantpt(master2) == 0);
  REQUIRE(::unlockpt(master2) == 0);
  int slave2 = ::open(::ptsname(master2), O_RDWR | O_NOCTTY | O_CLOEXEC);
  REQUIRE(slave2 >= 0);
  auto writer = run_task(loop, write_pipe(loop, slave2));
  writer->transport->write("out\n");
  writer->transport->close();
  run_until(loop, [&] { return writer->lost_calls == 1; });
  char buf[32] = {};
  stream_test::wait_fd(master2, POLLIN);
  CHECK(::read(master2, buf, sizeof buf) > 0);
  CHECK(std::string(buf).rfind("out", 0) == 0);
  ::close(master2);
}

TEST_CASE("regular files and bad descriptors are refused; the fd stays open", "[pipes]") {
  EventLoop loop;
  test_support::TempDir dir;
  int file = ::open(dir.file("plain").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  REQUIRE(file >= 0);
  auto e1 = failure_of(loop, read_pipe(loop, file));
  CHECK_THROWS_WITH(std::rethrow_exception(e1), "Pipe transport is for pipes/sockets only.");
  CHECK_THROWS_AS(std::rethrow_exception(e1), asyncuv::ValueError);
  auto e2 = failure_of(loop, write_pipe(loop, file));
  CHECK_THROWS_WITH(std::rethrow_exception(e2),
                    "Pipe transport is only for pipes, sockets and character devices");
  CHECK(::fcntl(file, F_GETFD) != -1);
  ::close(file);
  auto e3 = failure_of(loop, read_pipe(loop, -1));
  CHECK_THROWS_AS(std::rethrow_exception(e3), asyncuv::ValueError);
  Pipe p;
  ::close(p.r);
  auto e4 = failure_of(loop, read_pipe(loop, p.r));
  CHECK(errno_of(e4) == EBADF);
  ::close(p.w);
  // An fd owned by a transport cannot be used for another one, nor for add_reader.
  Pipe q;
  auto proto = run_task(loop, read_pipe(loop, q.r));
  CHECK_THROWS_AS(loop.add_reader(q.r, [] {}), asyncuv::RuntimeError);
  auto e5 = failure_of(loop, read_pipe(loop, q.r));
  CHECK_THROWS_AS(std::rethrow_exception(e5), asyncuv::RuntimeError);
  proto->transport->close();
  ::close(q.w);
  run_until(loop, [&] { return proto->lost_calls == 1; });
}

TEST_CASE("an exception in data_received reaches the handler; the pipe stays open", "[pipes]") {
  struct Throwing : PipeRecorder {
    using PipeRecorder::PipeRecorder;
    void data_received(std::string_view data) override {
      PipeRecorder::data_received(data);
      throw asyncuv::ValueError("cannot take it");
    }
  };
  EventLoop loop;
  std::vector<std::string> messages;
  bool had_transport = false;
  loop.set_exception_handler([&](EventLoop&, const asyncuv::ExceptionContext& context) {
    messages.push_back(context.message());
    had_transport = context.transport<asyncuv::Transport>() != nullptr;
  });
  Pipe p;
  auto factory = [&loop] { return std::make_shared<Throwing>(loop); };
  auto [t, proto_] = run_task(loop, loop.connect_read_pipe(factory, p.r));
  auto& proto = proto_;  // a named reference: clang 14 cannot capture a binding
  REQUIRE(::write(p.w, "1", 1) == 1);
  run_until(loop, [&] { return messages.size() == 1; });
  CHECK(had_transport);
  CHECK_FALSE(t->is_closing());
  REQUIRE(::write(p.w, "2", 1) == 1);
  run_until(loop, [&] { return messages.size() == 2; });
  CHECK(proto->received == "12");
  ::close(p.w);
  run_until(loop, [&] { return proto->lost_calls == 1; });
}

TEST_CASE("closing the loop closes open pipes without calling their protocols", "[pipes]") {
  const int before = count_open_fds();
  std::weak_ptr<PipeRecorder> r, w;
  {
    EventLoop loop;
    Pipe a, b;
    auto reader = run_task(loop, read_pipe(loop, a.r));
    auto writer = run_task(loop, write_pipe(loop, b.w));
    writer->transport->write(std::string(1 << 20, 'q'));  // buffered when the loop closes
    r = reader;
    w = writer;
    loop.close();
    CHECK(reader->lost_calls == 0);
    CHECK(writer->lost_calls == 0);
    reader->transport.reset();
    writer->transport.reset();
    ::close(a.w);
    ::close(b.r);
  }
  CHECK(r.expired());
  CHECK(w.expired());
  CHECK(count_open_fds() == before);
}

TEST_CASE("connect_read_pipe on a closed loop throws", "[pipes]") {
  EventLoop loop;
  loop.close();
  Pipe p;
  auto factory = [&loop] { return std::make_shared<PipeRecorder>(loop); };
  EventLoop other;
  CHECK_THROWS_WITH(run_task(other, loop.connect_read_pipe(factory, p.r)), "Event loop is closed");
  ::close(p.r);
  ::close(p.w);
}
