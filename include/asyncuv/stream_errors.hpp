// The exceptions of asyncio's streams (asyncio.exceptions): IncompleteReadError and
// LimitOverrunError, and Python's EOFError they build on.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "asyncuv/exceptions.hpp"

namespace asyncuv {

/// Python's EOFError: input ended before what was asked for could be read.
class EOFError : public Exception {
 public:
  using Exception::Exception;
};

/// asyncio.IncompleteReadError (an EOFError): the stream ended before readexactly() got its
/// bytes or readuntil() found its separator. what() reads "3 bytes read on a total of 10
/// expected bytes" ("... of undefined expected bytes" when no count was asked for).
class IncompleteReadError : public EOFError {
 public:
  /// `partial`: what was read before the end; `expected`: how many bytes were asked for
  /// (none for readuntil()).
  IncompleteReadError(std::string partial_data, std::optional<std::size_t> expected_bytes)
      : EOFError(message(partial_data.size(), expected_bytes)),
        partial(std::move(partial_data)),
        expected(expected_bytes) {}

  /// The bytes read before the end of the stream (they are no longer in the reader).
  std::string partial;
  /// The byte count readexactly() asked for; empty for readuntil().
  std::optional<std::size_t> expected;

 private:
  static std::string message(std::size_t got, std::optional<std::size_t> want) {
    return std::to_string(got) + " bytes read on a total of " +
           (want ? std::to_string(*want) : std::string("undefined")) + " expected bytes";
  }
};

/// asyncio.LimitOverrunError: readuntil() reached the reader's limit while looking for the
/// separator. The data stays in the reader; `consumed` says how many bytes to skip.
class LimitOverrunError : public Exception {
 public:
  LimitOverrunError(const std::string& message, std::size_t consumed_bytes)
      : Exception(message), consumed(consumed_bytes) {}

  /// How many bytes of the buffer were examined (where the separator starts, when found).
  std::size_t consumed;
};

}  // namespace asyncuv
