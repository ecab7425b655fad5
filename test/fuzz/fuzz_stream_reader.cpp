// Fuzz target: StreamReader against a model. The input picks a small limit (1-16 bytes), then
// a sequence of reads (readline, readuntil with one or several separators, readexactly,
// read(n), read(-1)); data arrives in chunks of fuzzer-chosen sizes, one chunk each time the
// running read has to wait, then end of file. A plain string model of asyncio's rules
// (asyncio/streams.py: the limit, which separator wins, what an overrun drops) predicts every
// result, every error and the buffer after each read; any difference aborts.
//
// The model is evaluated at the same points as the reader: when the read starts and after
// each chunk, so the chunk splits that change asyncio's outcome (a line longer than the limit
// seen whole or in pieces) are checked too.
#include <fuzzer/FuzzedDataProvider.h>

#include <asyncuv/asyncuv.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.hpp"

namespace {

using asyncuv::StreamReader;
using asyncuv::Task;

constexpr const char* not_found = "Separator is not found, and chunk exceed the limit";
constexpr const char* found_long = "Separator is found, but chunk is longer than limit";

/// What a read ended with.
struct Outcome {
  std::string kind;   // "ok", "overrun" (LimitOverrunError), "value" (ValueError), "incomplete"
  std::string data;   // the result, the error's message, or the partial data
  std::size_t n = 0;  // LimitOverrunError.consumed / IncompleteReadError.expected (0: none)
  bool operator==(const Outcome&) const = default;
};

enum class Kind { READLINE, READUNTIL, READEXACTLY, READ, READ_ALL };

struct Op {
  Kind kind;
  std::vector<std::string> separators;  // READUNTIL
  std::size_t n = 0;                    // READEXACTLY, READ
};

/// Characters of the data and separators: few, so that separators match often.
char letter(std::uint8_t byte) {
  return "ab\nx"[byte % 4];
}

Task<Outcome> run_op(StreamReader reader, Op op) {
  try {
    switch (op.kind) {
      case Kind::READLINE:
        co_return Outcome{"ok", co_await reader.readline()};
      case Kind::READUNTIL:
        co_return Outcome{"ok",
                          co_await reader.readuntil(std::span<const std::string>(op.separators))};
      case Kind::READEXACTLY:
        co_return Outcome{"ok", co_await reader.readexactly(static_cast<std::ptrdiff_t>(op.n))};
      case Kind::READ:
        co_return Outcome{"ok", co_await reader.read(static_cast<std::ptrdiff_t>(op.n))};
      case Kind::READ_ALL:
        co_return Outcome{"ok", co_await reader.read(-1)};
    }
  } catch (const asyncuv::LimitOverrunError& e) {
    co_return Outcome{"overrun", e.what(), e.consumed};
  } catch (const asyncuv::IncompleteReadError& e) {
    co_return Outcome{"incomplete", e.partial, e.expected.value_or(0)};
  } catch (const asyncuv::ValueError& e) {
    co_return Outcome{"value", e.what(), 0};
  }
  std::abort();
}

/// The model: asyncio's rules over a plain string.
struct Model {
  std::size_t limit;
  std::string buffer;
  bool eof = false;

  std::string take(std::size_t n) {
    std::string out = buffer.substr(0, n);
    buffer.erase(0, n);
    return out;
  }

  /// The outcome of `op` given what is buffered now, or nothing if it has to wait.
  std::optional<Outcome> step(const Op& op) {
    switch (op.kind) {
      case Kind::READLINE: {
        std::size_t at = buffer.find('\n');
        if (at != std::string::npos) {
          if (at > limit) {  // the over-long line is dropped with its "\n"
            buffer.erase(0, at + 1);
            return Outcome{"value", found_long, 0};
          }
          return Outcome{"ok", take(at + 1)};
        }
        if (buffer.size() > limit) {  // no "\n" yet and too long already: all is dropped
          buffer.clear();
          return Outcome{"value", not_found, 0};
        }
        if (eof) return Outcome{"ok", take(buffer.size())};
        return std::nullopt;
      }
      case Kind::READUNTIL: {
        // The match that ends first wins; on a tie, the shorter separator.
        std::size_t best_start = 0, best_end = 0, longest = 0;
        bool found = false;
        for (const std::string& sep : op.separators)
          longest = std::max(longest, sep.size());
        for (const std::string& sep : op.separators) {
          std::size_t at = buffer.find(sep);
          if (at == std::string::npos) continue;
          std::size_t end = at + sep.size();
          if (!found || end < best_end || (end == best_end && sep.size() < best_end - best_start)) {
            found = true;
            best_start = at;
            best_end = end;
          }
        }
        if (found) {
          if (best_start > limit) return Outcome{"overrun", found_long, best_start};
          return Outcome{"ok", take(best_end)};
        }
        // Bytes that cannot start a separator any more.
        std::size_t scanned = buffer.size() + 1 > longest ? buffer.size() + 1 - longest : 0;
        if (scanned > limit) return Outcome{"overrun", not_found, scanned};
        if (eof) return Outcome{"incomplete", take(buffer.size()), 0};
        return std::nullopt;
      }
      case Kind::READEXACTLY:
        if (buffer.size() >= op.n) return Outcome{"ok", take(op.n)};
        if (eof) return Outcome{"incomplete", take(buffer.size()), op.n};
        return std::nullopt;
      case Kind::READ:
        if (op.n == 0) return Outcome{"ok", ""};
        if (!buffer.empty()) return Outcome{"ok", take(op.n)};
        if (eof) return Outcome{"ok", ""};
        return std::nullopt;
      case Kind::READ_ALL:
        if (eof) return Outcome{"ok", take(buffer.size())};
        return std::nullopt;
    }
    std::abort();
  }
};

Op make_op(FuzzedDataProvider& in) {
  Op op{static_cast<Kind>(in.ConsumeIntegralInRange<int>(0, 4)), {}, 0};
  if (op.kind == Kind::READUNTIL) {
    int count = in.ConsumeIntegralInRange<int>(1, 3);
    for (int i = 0; i < count; ++i) {
      std::string sep;
      int len = in.ConsumeIntegralInRange<int>(1, 3);
      for (int j = 0; j < len; ++j)
        sep += letter(in.ConsumeIntegral<std::uint8_t>());
      op.separators.push_back(sep);
    }
  }
  op.n = in.ConsumeIntegralInRange<std::size_t>(0, 24);
  return op;
}

void fail(const char* what, const Outcome& got, const Outcome& want) {
  std::fprintf(stderr, "%s: got %s [%s] %zu, model %s [%s] %zu\n", what, got.kind.c_str(),
               got.data.c_str(), got.n, want.kind.c_str(), want.data.c_str(), want.n);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz_support::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  asyncuv::EventLoop loop;
  Model model{in.ConsumeIntegralInRange<std::size_t>(1, 16), {}, false};
  {
    StreamReader reader(loop, model.limit);
    const int ops = in.ConsumeIntegralInRange<int>(1, 24);
    for (int i = 0; i < ops; ++i) {
      Op op = make_op(in);
      Task<Outcome> task = loop.create_task(run_op(reader, op));
      std::optional<Outcome> expected = model.step(op);
      fuzz_support::settle(loop);
      while (!expected) {
        if (task.done())
          fail("finished while the model waits", task.result(), Outcome{"wait", "", 0});
        if (model.eof) std::abort();  // the model always ends a read at end of file
        std::size_t len = in.ConsumeIntegralInRange<std::size_t>(0, 24);
        std::string chunk;
        for (std::uint8_t byte : in.ConsumeBytes<std::uint8_t>(len))
          chunk += letter(byte);
        if (chunk.empty()) {
          reader.feed_eof();
          model.eof = true;
        } else {
          reader.feed_data(chunk);
          model.buffer += chunk;
        }
        expected = model.step(op);
        fuzz_support::settle(loop);
      }
      if (!task.done()) fail("still waiting", Outcome{"wait", "", 0}, *expected);
      Outcome got = task.result();
      if (!(got == *expected)) fail("different outcome", got, *expected);
      if (reader.buffered() != model.buffer) fail("different buffer", got, *expected);
    }
  }
  loop.close();
  return 0;
}
