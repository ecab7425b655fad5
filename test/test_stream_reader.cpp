// asyncio StreamReader semantics (asyncio/streams.py, test_asyncio/test_streams.py): reads
// fed by hand with feed_data / feed_eof / set_exception, and the reader's flow control over a
// real transport.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "byte_compare.hpp"
#include "streams_test_support.hpp"

using namespace streams_test;
using asyncuv::IncompleteReadError;
using asyncuv::LimitOverrunError;

namespace {

std::string buffered(const StreamReader& reader) {
  CHECK(reader.buffered_size() == reader.buffered().size());
  return std::string(reader.buffered());
}

/// Calls `f` on the next loop iteration (from a task, after it started waiting).
template <class F>
void soon(EventLoop& loop, F f) {
  loop.call_soon(std::move(f));
}

}  // namespace

TEST_CASE("streams: the limit must be positive; the default is 64 KiB", "[streams]") {
  EventLoop loop;
  CHECK(StreamReader(loop).limit() == 65536);
  CHECK(asyncuv::stream_default_limit == 65536);
  CHECK_THROWS_WITH(StreamReader(loop, 0), "Limit cannot be <= 0");
  CHECK_THROWS_AS(StreamReader(loop, 0), asyncuv::ValueError);
  // Without a loop argument: get_event_loop(), which needs a running or set loop.
  asyncuv::set_event_loop(nullptr);
  CHECK_THROWS_AS(StreamReader(), asyncuv::RuntimeError);
  auto check = []() -> Task<void> {
    StreamReader reader(10);
    CHECK(&reader.get_loop() == &asyncuv::get_running_loop());
    co_return;
  };
  run(loop, check());
}

TEST_CASE("streams: read(n) returns what is buffered, at most n bytes", "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  reader.feed_data("line1\nline2\n");
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    got = co_await r.read(0);
    CHECK(got == "");
    CHECK(buffered(r) == "line1\nline2\n");  // read(0) consumes nothing
    got = co_await r.read(5);
    CHECK(got == "line1");
    got = co_await r.read(100);
    CHECK(got == "\nline2\n");
    CHECK(buffered(r).empty());
  };
  run(loop, body(reader));
}

TEST_CASE("streams: feed_data of nothing does nothing; at_eof needs EOF and an empty buffer",
          "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  reader.feed_data("");
  CHECK(buffered(reader).empty());
  CHECK_FALSE(reader.at_eof());
  reader.feed_data("ab");
  reader.feed_eof();
  CHECK_FALSE(reader.at_eof());
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    got = co_await r.read(-1);
    CHECK(got == "ab");
    CHECK(r.at_eof());
    got = co_await r.read(10);  // EOF: empty, at once
    CHECK(got == "");
    got = co_await r.read();
    CHECK(got == "");
    got = co_await r.readline();
    CHECK(got == "");
  };
  run(loop, body(reader));
  // asyncio asserts here; asyncuv throws.
  CHECK_THROWS_WITH(reader.feed_data("x"), "feed_data after feed_eof");
  CHECK_THROWS_AS(reader.feed_data("x"), asyncuv::RuntimeError);
}

TEST_CASE("streams: a waiting read(n) wakes when data arrives", "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    EventLoop& loop = asyncuv::get_running_loop();
    soon(loop, [r] { r.feed_data("chunk"); });
    got = co_await r.read(30);
    CHECK(got == "chunk");
    soon(loop, [r] { r.feed_eof(); });
    got = co_await r.read(30);  // woken by EOF
    CHECK(got == "");
  };
  run(loop, body(reader));
}

TEST_CASE("streams: read(-1) reads until EOF regardless of the limit", "[streams]") {
  EventLoop loop;
  StreamReader reader(loop, 3);
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    EventLoop& loop = asyncuv::get_running_loop();
    soon(loop, [r] {
      r.feed_data("chunk1\n");
      r.feed_data("chunk2");
    });
    loop.call_later(0.01, [r] {
      r.feed_data("chunk3\n");
      r.feed_eof();
    });
    got = co_await r.read();
    CHECK(got == "chunk1\nchunk2chunk3\n");
    CHECK(buffered(r).empty());
    CHECK(r.at_eof());
  };
  run(loop, body(reader));
}

TEST_CASE("streams: a stored exception is raised by later reads; buffered data is not returned",
          "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  reader.feed_data("line\n");
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    got = co_await r.read(2);
    CHECK(got == "li");
    r.set_exception(asyncuv::ValueError("bad"));
    CHECK(r.exception() != nullptr);
    err = co_await error_of(r.read(2));
    CHECK(stream_test::holds<asyncuv::ValueError>(err));
    err = co_await error_of(r.readline());
    CHECK(stream_test::holds<asyncuv::ValueError>(err));
    err = co_await error_of(r.readexactly(1));
    CHECK(stream_test::holds<asyncuv::ValueError>(err));
    err = co_await error_of(r.readuntil("e"));
    CHECK(stream_test::holds<asyncuv::ValueError>(err));
    err = co_await error_of(r.read(0));  // even n == 0
    CHECK(stream_test::holds<asyncuv::ValueError>(err));
    CHECK(buffered(r) == "ne\n");
  };
  run(loop, body(reader));
}

TEST_CASE("streams: set_exception wakes the waiting read with the exception", "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    soon(asyncuv::get_running_loop(), [r] { r.set_exception(asyncuv::RuntimeError("lost")); });
    err = co_await error_of(r.readline());
    CHECK(stream_test::what(err) == "lost");
  };
  run(loop, body(reader));
  CHECK(reader.state()->waiter == asyncuv::Future<void>());
}

TEST_CASE("streams: cancelling a waiting read keeps the buffer; the next read gets it",
          "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  reader.feed_data("12345");
  auto task = loop.create_task(reader.readexactly(10));
  stream_test::run_iterations(loop, 2);
  REQUIRE_FALSE(task.done());
  REQUIRE(reader.state()->waiter);
  task.cancel();
  stream_test::run_iterations(loop, 2);
  CHECK(task.cancelled());
  CHECK_FALSE(reader.state()->waiter);
  CHECK(buffered(reader) == "12345");
  // The cancelled waiter is not failed again.
  reader.set_exception(asyncuv::RuntimeError("after"));
  CHECK(reader.exception() != nullptr);

  StreamReader again(loop);
  again.feed_data("abc");
  auto reading = loop.create_task(again.readline());
  stream_test::run_iterations(loop, 2);
  reading.cancel();
  stream_test::run_iterations(loop, 2);
  CHECK(reading.cancelled());
  again.feed_data("def\nrest");
  CHECK(run(loop, again.readline()) == "abcdef\n");
  CHECK(buffered(again) == "rest");
}

TEST_CASE("streams: only one coroutine may wait for data", "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  auto first = loop.create_task(reader.read());
  stream_test::run_iterations(loop, 2);
  REQUIRE_FALSE(first.done());
  auto message = [](const char* name) {
    return std::string(name) +
           "() called while another coroutine is already waiting for incoming data";
  };
  CHECK_THROWS_WITH(run(loop, reader.read(1)), message("read"));
  CHECK_THROWS_WITH(run(loop, reader.readline()), message("readuntil"));
  CHECK_THROWS_WITH(run(loop, reader.readuntil("x")), message("readuntil"));
  CHECK_THROWS_WITH(run(loop, reader.readexactly(3)), message("readexactly"));
  CHECK_THROWS_AS(run(loop, reader.read(1)), asyncuv::RuntimeError);
  // A read that needs no wait is fine meanwhile; the first reader still gets its data.
  reader.feed_data("data");
  reader.feed_eof();
  CHECK(run(loop, first) == "data");
}

TEST_CASE("streams: readline across chunks, at EOF and with an empty stream", "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    EventLoop& loop = asyncuv::get_running_loop();
    r.feed_data("chunk1 ");
    soon(loop, [r] {
      r.feed_data("chunk2 ");
      r.feed_data("chunk3 ");
    });
    loop.call_later(0.01, [r] { r.feed_data("\n chunk4"); });
    got = co_await r.readline();
    CHECK(got == "chunk1 chunk2 chunk3 \n");
    CHECK(buffered(r) == " chunk4");
    r.feed_eof();
    got = co_await r.readline();  // the partial last line
    CHECK(got == " chunk4");
    got = co_await r.readline();
    CHECK(got == "");
  };
  run(loop, body(reader));
}

TEST_CASE("streams: readline over the limit raises ValueError and drops the line", "[streams]") {
  EventLoop loop;
  auto not_found = std::string("Separator is not found, and chunk exceed the limit");
  auto found = std::string("Separator is found, but chunk is longer than limit");

  SECTION("line end buffered: only that line is dropped") {
    StreamReader r(loop, 3);
    r.feed_data("li");
    r.feed_data("ne1\nline2\n");
    CHECK_THROWS_WITH(run(loop, r.readline()), found);
    CHECK(buffered(r) == "line2\n");
  }
  SECTION("no line end buffered: the whole buffer is dropped") {
    StreamReader r(loop, 3);
    r.feed_data("li");
    r.feed_data("ne1");
    r.feed_data("li");
    CHECK_THROWS_WITH(run(loop, r.readline()), not_found);
    CHECK(buffered(r).empty());
  }
  SECTION("the limit counts the line without its newline") {
    StreamReader r(loop, 7);
    r.feed_data("1234567\n");
    CHECK(run(loop, r.readline()) == "1234567\n");
    r.feed_data("12345678\n");
    CHECK_THROWS_WITH(run(loop, r.readline()), found);
    CHECK(buffered(r).empty());
    r.feed_data("12345678");
    CHECK_THROWS_AS(run(loop, r.readline()), asyncuv::ValueError);
    CHECK(buffered(r).empty());
  }
  SECTION("chunks fed before the read: the line with its newline goes") {
    StreamReader r(loop, 7);
    r.feed_data("chunk1");
    r.feed_data("chunk2\n");
    r.feed_data("chunk3\n");
    r.feed_eof();
    CHECK_THROWS_AS(run(loop, r.readline()), asyncuv::ValueError);
    CHECK(buffered(r) == "chunk3\n");
  }
}

TEST_CASE("streams: readuntil finds a separator straddling chunks", "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    EventLoop& loop = asyncuv::get_running_loop();
    r.feed_data("QWEaa");
    soon(loop, [r] { r.feed_data("XYaa"); });
    loop.call_later(0.01, [r] { r.feed_data("a"); });
    got = co_await r.readuntil("aaa");
    CHECK(got == "QWEaaXYaaa");
    CHECK(buffered(r).empty());
    r.feed_data("some data");
    soon(loop, [r] { r.feed_data("AA"); });
    loop.call_later(0.01, [r] { r.feed_data("A and more"); });
    got = co_await r.readuntil("AAA");
    CHECK(got == "some dataAAA");
    CHECK(buffered(r) == " and more");
  };
  run(loop, body(reader));
}

TEST_CASE("streams: readuntil at EOF raises IncompleteReadError with the buffer", "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  reader.feed_data("some dataAA");
  reader.feed_eof();
  try {
    run(loop, reader.readuntil("AAA"));
    FAIL("no exception");
  } catch (const IncompleteReadError& e) {
    CHECK(e.partial == "some dataAA");
    CHECK_FALSE(e.expected.has_value());
    CHECK(std::string(e.what()) == "11 bytes read on a total of undefined expected bytes");
  }
  CHECK(buffered(reader).empty());
  // A separator completed by the last chunk is found even though EOF is set.
  StreamReader r2(loop);
  r2.feed_data("xxAA");
  r2.feed_data("A");
  r2.feed_eof();
  CHECK(run(loop, r2.readuntil("AAA")) == "xxAAA");
  // IncompleteReadError is an EOFError.
  StreamReader r3(loop);
  r3.feed_eof();
  CHECK_THROWS_AS(run(loop, r3.readuntil()), asyncuv::EOFError);
}

TEST_CASE("streams: readuntil's limit at the exact boundaries", "[streams]") {
  EventLoop loop;
  SECTION("separator found at offset == limit: returned") {
    StreamReader r(loop, 5);
    r.feed_data("12345\n");
    CHECK(run(loop, r.readuntil("\n")) == "12345\n");
  }
  SECTION("separator found at offset limit + 1: LimitOverrunError, data kept") {
    StreamReader r(loop, 5);
    r.feed_data("123456\nX");
    try {
      run(loop, r.readuntil("\n"));
      FAIL("no exception");
    } catch (const LimitOverrunError& e) {
      CHECK(std::string(e.what()) == "Separator is found, but chunk is longer than limit");
      CHECK(e.consumed == 6);
    }
    CHECK(buffered(r) == "123456\nX");
  }
  SECTION("separator not found: the scan may reach the limit exactly") {
    // 6 bytes, separator of 2: offset = 6 + 1 - 2 = 5 == limit: keep waiting.
    StreamReader r(loop, 5);
    r.feed_data("123456");
    auto task = loop.create_task(r.readuntil("ab"));
    stream_test::run_iterations(loop, 2);
    CHECK_FALSE(task.done());
    r.feed_data("ab");
    CHECK_THROWS_AS(run(loop, task), LimitOverrunError);  // found at 6 > 5
    CHECK(buffered(r) == "123456ab");
  }
  SECTION("separator not found beyond the limit: LimitOverrunError, data kept") {
    StreamReader r(loop, 5);
    r.feed_data("1234567");
    try {
      run(loop, r.readuntil("ab"));
      FAIL("no exception");
    } catch (const LimitOverrunError& e) {
      CHECK(std::string(e.what()) == "Separator is not found, and chunk exceed the limit");
      CHECK(e.consumed == 6);
    }
    CHECK(buffered(r) == "1234567");
  }
  SECTION("asyncio's test_readuntil_limit_found_sep") {
    StreamReader r(loop, 3);
    r.feed_data("some dataAA");
    CHECK_THROWS_WITH(run(loop, r.readuntil("AAA")),
                      "Separator is not found, and chunk exceed the limit");
    CHECK(buffered(r) == "some dataAA");
    r.feed_data("A");
    CHECK_THROWS_WITH(run(loop, r.readuntil("AAA")),
                      "Separator is found, but chunk is longer than limit");
    CHECK(buffered(r) == "some dataAAA");
  }
}

TEST_CASE("streams: readuntil argument errors", "[streams]") {
  EventLoop loop;
  StreamReader r(loop);
  r.feed_data("data");
  CHECK_THROWS_WITH(run(loop, r.readuntil("")), "Separator should be at least one-byte string");
  CHECK_THROWS_AS(run(loop, r.readuntil("")), asyncuv::ValueError);
  std::vector<std::string> none;
  CHECK_THROWS_WITH(run(loop, r.readuntil(std::span<const std::string>(none))),
                    "Separator should contain at least one element");
  CHECK_THROWS_WITH(run(loop, r.readuntil({"A", ""})),
                    "Separator should be at least one-byte string");
  CHECK(buffered(r) == "data");
}

TEST_CASE("streams: readuntil with several separators returns the shortest match (3.13)",
          "[streams]") {
  EventLoop loop;
  StreamReader r(loop);
  // GCC 12 cannot keep a braced list inside a co_await expression: the calls come first.
  auto body = [](StreamReader r) -> Task<void> {
    std::string got;
    std::exception_ptr err;
    r.feed_data("line 1\nline 2\r");
    auto first = r.readuntil({"\r", "\n"});
    got = co_await std::move(first);
    CHECK(got == "line 1\n");
    auto second = r.readuntil({"\r", "\n"});
    got = co_await std::move(second);
    CHECK(got == "line 2\r");
    // A longer separator ending first wins over a shorter one ending later.
    r.feed_data("xxABCyyC");
    auto longer = r.readuntil({"C", "AB"});
    got = co_await std::move(longer);
    CHECK(got == "xxAB");
    auto shorter = r.readuntil({"C", "AB"});
    got = co_await std::move(shorter);
    CHECK(got == "C");
    auto last = r.readuntil({"ABC", "C"});
    got = co_await std::move(last);
    CHECK(got == "yyC");
    // Two ending at the same byte: the data is the same; it straddles chunks as well.
    r.feed_data("ab\r");
    asyncuv::get_running_loop().call_soon([r] { r.feed_data("\nrest"); });
    std::vector<std::string> seps{"\r\n", "\n"};
    got = co_await r.readuntil(std::span<const std::string>(seps));
    CHECK(got == "ab\r\n");
    std::vector<std::string_view> views{"st"};
    got = co_await r.readuntil(std::span<const std::string_view>(views));
    CHECK(got == "rest");
  };
  run(loop, body(r));
}

TEST_CASE("streams: readuntil with several separators and the limit", "[streams]") {
  EventLoop loop;
  StreamReader r(loop, 3);
  r.feed_data("12345");
  // The longest separator decides how far the scan may go: 5 + 1 - 3 = 3 == limit.
  auto until = r.readuntil({"x", "yyy"});
  auto task = loop.create_task(std::move(until));
  stream_test::run_iterations(loop, 2);
  CHECK_FALSE(task.done());
  r.feed_data("6");
  try {
    run(loop, task);
    FAIL("no exception");
  } catch (const LimitOverrunError& e) {
    CHECK(e.consumed == 4);
  }
  CHECK(buffered(r) == "123456");
}

TEST_CASE("streams: readexactly", "[streams]") {
  EventLoop loop;
  SECTION("waits for the bytes across chunks, ignoring the limit") {
    StreamReader r(loop, 3);
    const std::string data = "chunk!";
    auto body = [](StreamReader r, std::string data) -> Task<void> {
      std::string got;
      std::exception_ptr err;
      asyncuv::get_running_loop().call_soon([r, data] {
        r.feed_data(data);
        r.feed_data(data);
        r.feed_data(data);
      });
      got = co_await r.readexactly(2 * 6);
      CHECK(got == data + data);
      CHECK(buffered(r) == data);
    };
    run(loop, body(r, data));
  }
  SECTION("zero returns nothing and consumes nothing; negative is a ValueError") {
    StreamReader r(loop);
    r.feed_data("abc");
    CHECK(run(loop, r.readexactly(0)) == "");
    CHECK(buffered(r) == "abc");
    CHECK_THROWS_WITH(run(loop, r.readexactly(-1)), "readexactly size can not be less than zero");
    CHECK_THROWS_AS(run(loop, r.readexactly(-1)), asyncuv::ValueError);
    CHECK(buffered(r) == "abc");
  }
  SECTION("EOF first: IncompleteReadError with what was buffered") {
    StreamReader r(loop);
    const std::string part(18, 'z');
    auto body = [](StreamReader r, std::string part) -> Task<void> {
      std::string got;
      std::exception_ptr err;
      asyncuv::get_running_loop().call_soon([r, part] {
        r.feed_data(part);
        r.feed_eof();
      });
      try {
        co_await r.readexactly(36);
        FAIL("no exception");
      } catch (const IncompleteReadError& e) {
        CHECK(e.partial == part);
        CHECK(e.expected == std::optional<std::size_t>(36));
        CHECK(std::string(e.what()) == "18 bytes read on a total of 36 expected bytes");
      }
      CHECK(buffered(r).empty());
    };
    run(loop, body(r, part));
  }
}

TEST_CASE("streams: set_transport once; repr", "[streams]") {
  EventLoop loop;
  StreamReader r(loop);
  CHECK(r.repr() == "<StreamReader>");
  r.feed_data("data");
  CHECK(r.repr() == "<StreamReader 4 bytes>");
  r.feed_eof();
  CHECK(r.repr() == "<StreamReader 4 bytes eof>");
  CHECK(StreamReader(loop, 123).repr() == "<StreamReader limit=123>");
  StreamReader failed(loop);
  failed.set_exception(asyncuv::RuntimeError("x"));
  CHECK(failed.repr().rfind("<StreamReader exception=", 0) == 0);
  CHECK(failed.repr().find("RuntimeError: x>") != std::string::npos);
  StreamReader waiting(loop);
  auto task = loop.create_task(waiting.read());
  stream_test::run_iterations(loop, 2);
  CHECK(waiting.repr() == "<StreamReader waiter=<Future pending>>");
  waiting.feed_eof();
  run(loop, task);

  auto [a, b] = stream_test::unix_pair();
  auto pair = run(loop, wrap_socket(std::move(a)));
  CHECK(pair.first.repr().rfind("<StreamReader transport=<SocketTransport fd=", 0) == 0);
  CHECK_THROWS_WITH(pair.first.set_transport(pair.second.transport()), "Transport already set");
  pair.second.close();
  run(loop, pair.second.wait_closed());
}

TEST_CASE("streams: the reader pauses the transport above 2 * limit and resumes at the limit",
          "[streams]") {
  EventLoop loop;
  auto [peer, mine] = stream_test::unix_pair();
  const std::size_t limit = 1000;
  auto [reader_, writer] = run(loop, wrap_socket(std::move(mine), limit));
  auto& reader = reader_;  // a named reference: clang 14 cannot capture a binding
  auto transport = writer.transport();
  const std::string data = stream_test::pattern(20000, 7);
  REQUIRE(::write(peer.fileno(), data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  stream_test::run_until(loop, [&] { return reader.state()->paused; });
  CHECK_FALSE(transport->is_reading());
  CHECK(reader.repr().find(" paused>") != std::string::npos);
  std::size_t size = reader.buffered_size();
  CHECK(size > 2 * limit);
  // Reading down to just above the limit keeps it paused; at the limit it resumes.
  std::string got = run(loop, reader.readexactly(static_cast<std::ptrdiff_t>(size - limit - 1)));
  CHECK(reader.state()->paused);
  got += run(loop, reader.readexactly(1));
  CHECK_FALSE(reader.state()->paused);
  CHECK(transport->is_reading());
  // The rest, all of it, byte for byte.
  peer.close();
  got += run(loop, reader.read());
  CHECK(test_support::byte_difference(got, data) == "");
  writer.close();
  run(loop, writer.wait_closed());
}

TEST_CASE("streams: a read that must wait resumes a paused transport (readexactly > limit)",
          "[streams]") {
  EventLoop loop;
  auto [peer, mine] = stream_test::unix_pair();
  const std::size_t limit = 100;
  auto [reader, writer] = run(loop, wrap_socket(std::move(mine), limit));
  const std::string data = stream_test::pattern(300000, 3);
  auto feeder = [](int fd, std::string data) -> Task<void> {
    co_await asyncuv::get_running_loop().sock_sendall(asyncuv::SocketRef(fd), data);
  };
  auto sending = loop.create_task(feeder(peer.fileno(), data));
  CHECK(run(loop, reader.readexactly(static_cast<std::ptrdiff_t>(data.size()))) == data);
  run(loop, sending);
  writer.close();
  run(loop, writer.wait_closed());
}

TEST_CASE("streams: buffered() and buffered_size() show what is buffered without consuming it",
          "[streams]") {
  EventLoop loop;
  StreamReader reader(loop);
  CHECK(reader.buffered_size() == 0);
  CHECK(reader.buffered().empty());
  reader.feed_data("hello\nwor");
  CHECK(reader.buffered_size() == 9);
  CHECK(reader.buffered() == "hello\nwor");
  CHECK(reader.buffered() == "hello\nwor");  // peeking twice consumes nothing
  CHECK(run(loop, reader.readline()) == "hello\n");
  CHECK(reader.buffered() == "wor");
  reader.feed_data("ld");
  reader.feed_eof();
  CHECK(reader.buffered() == "world");
  CHECK_FALSE(reader.at_eof());
  CHECK(run(loop, reader.read()) == "world");
  CHECK(reader.buffered_size() == 0);
  CHECK(reader.at_eof());
}
