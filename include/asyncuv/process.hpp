// asyncio's high-level subprocess API (asyncio/subprocess.py): create_subprocess_exec() and
// create_subprocess_shell() return a Process whose pipes are StreamWriter / StreamReader.
//
//   std::vector<std::string> argv{"cat"};  // named: g++ 12 refuses it inline in co_await
//   auto proc = co_await create_subprocess_exec(std::move(argv), Stdio::pipe(), Stdio::pipe());
//   auto [out, err] = co_await proc.communicate("hello");   // out == "hello"
//   int code = co_await proc.wait();                          // 0
//
// Semantics (CPython 3.13):
//  - The standard streams default to inherit() (Popen's None); pipe() ones appear as
//    stdin_ (a StreamWriter with drain() flow control), stdout_ and stderr_ (StreamReaders
//    whose `limit` pauses the pipe above 2 * limit until read).
//  - wait() returns the return code once the child exited (when it has not exited yet: once
//    its pipes are closed too). Reading stdout_ yourself while the child writes a lot, or
//    writing stdin_ without drain(), is your business; communicate() does both safely.
//  - communicate(input): writes `input` to stdin (if it is a pipe) and closes it, while
//    reading stdout and stderr (those that are pipes) to the end, concurrently: no deadlock
//    whatever the sizes. BrokenPipeError / ConnectionResetError while feeding stdin (the
//    child did not read it all) are ignored. Returns (stdout, stderr) ("" for a stream that
//    is not a pipe), after the child exited.
//  - send_signal / terminate / kill: as SubprocessTransport's (ProcessLookupError once the
//    transport has finished, e.g. after wait() returned).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/streams.hpp"
#include "asyncuv/subprocess_options.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv {

namespace detail {
class SubprocessStreamProtocol;
}  // namespace detail

/// A child process started by create_subprocess_exec / create_subprocess_shell
/// (asyncio.subprocess.Process). A handle: copies share one process.
class Process {
 public:
  /// A Process over a transport whose protocol is `protocol` (internal: use
  /// create_subprocess_exec / create_subprocess_shell).
  Process(std::shared_ptr<SubprocessTransport> transport,
          std::shared_ptr<detail::SubprocessStreamProtocol> protocol);

  /// The child's stdin, when it is a pipe.
  std::optional<StreamWriter> stdin_;
  /// The child's stdout, when it is a pipe.
  std::optional<StreamReader> stdout_;
  /// The child's stderr, when it is a pipe.
  std::optional<StreamReader> stderr_;

  /// The child's process id.
  int pid() const;
  /// The return code (negative: killed by that signal) once the child exited, else empty.
  std::optional<int> returncode() const;

  /// Coroutine: waits for the child to exit and returns its return code.
  Task<int> wait() const;
  /// Coroutine: feeds `input` to stdin and closes it, reads stdout and stderr to their end
  /// (concurrently), waits for the exit; returns (stdout, stderr).
  Task<std::pair<std::string, std::string>> communicate(
      std::optional<std::string> input = std::nullopt) const;

  /// Sends signal `sig` to the child.
  void send_signal(int sig) const;
  /// send_signal(SIGTERM).
  void terminate() const;
  /// send_signal(SIGKILL).
  void kill() const;

  /// The subprocess transport.
  std::shared_ptr<SubprocessTransport> transport() const { return transport_; }
  /// asyncio's repr: "<Process 4242>".
  std::string repr() const;

 private:
  std::shared_ptr<SubprocessTransport> transport_;
  std::shared_ptr<detail::SubprocessStreamProtocol> protocol_;
};

/// Coroutine: starts `argv` on the running loop (loop.subprocess_exec) and returns its
/// Process (asyncio.create_subprocess_exec). `limit` is the StreamReaders' limit.
Task<Process> create_subprocess_exec(std::vector<std::string> argv, Stdio stdin_ = Stdio::inherit(),
                                     Stdio stdout_ = Stdio::inherit(),
                                     Stdio stderr_ = Stdio::inherit(),
                                     SubprocessOptions options = {},
                                     std::size_t limit = stream_default_limit);

/// Coroutine: runs shell command `cmd` (/bin/sh -c) on the running loop and returns its
/// Process (asyncio.create_subprocess_shell).
Task<Process> create_subprocess_shell(std::string cmd, Stdio stdin_ = Stdio::inherit(),
                                      Stdio stdout_ = Stdio::inherit(),
                                      Stdio stderr_ = Stdio::inherit(),
                                      SubprocessOptions options = {},
                                      std::size_t limit = stream_default_limit);

}  // namespace asyncuv
