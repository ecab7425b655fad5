// Child processes (asyncio base_events / base_subprocess / unix_events): loop.subprocess_exec()
// and loop.subprocess_shell() with a SubprocessProtocol, over libuv's uv_spawn (and, for
// Popen's process_group, which uv_spawn cannot do, asyncuv's own fork/exec). The stream
// flavour (create_subprocess_exec and Process) is in <asyncuv/process.hpp>.
//
//   struct Echo : asyncuv::SubprocessProtocol {
//     void pipe_data_received(int fd, std::string_view data) override { out.append(data); }
//     void connection_lost(std::exception_ptr) override { done.set_result(); }
//     ...
//   };
//   std::vector<std::string> argv{"echo", "hi"};  // named: g++ 12 refuses it inline in co_await
//   auto [transport, proto] = co_await loop.subprocess_exec(factory, std::move(argv));
//
// Semantics (CPython 3.13):
//  - Order: connection_made(transport) -> pipe_data_received(fd, data)* (fd 1 and 2, as the
//    child writes) -> pipe_connection_lost(fd, exc) for each pipe and process_exited(), in
//    the order they happen -> connection_lost(nullptr), last, once the child exited and every
//    pipe closed. Each callback runs as a loop callback: an exception goes to the exception
//    handler and the rest still follows. subprocess_exec returns once connection_made() ran.
//  - get_returncode(): the exit status, or -N when signal N killed the child; empty while it
//    runs. get_pipe_transport(0) is a WriteTransport (stdin), 1 and 2 ReadTransports; null
//    for a stream that is not a pipe. Writing to stdin has asyncio's flow control, reported to
//    the SubprocessProtocol's pause_writing()/resume_writing().
//  - send_signal(sig) / terminate() / kill(): after connection_lost() they throw
//    ProcessLookupError; between the exit and connection_lost() they do nothing.
//  - close(): closes the pipes and kills a child still running (SIGKILL), whose exit then
//    arrives as usual. The transport keeps itself alive until connection_lost() ran, so
//    dropping every reference never leaves a zombie; closing the loop kills and reaps a child
//    still running.
//  - Errors: a missing program throws FileNotFoundError("[Errno 2] No such file or directory:
//    'prog'") (PermissionError for a program that cannot be run, or for uid/gid without the
//    privilege, or for a process_group the child cannot join); ValueError for an empty argv,
//    an embedded NUL, STDOUT for stdin or stdout, a negative process_group.
//  - The stdin pipe is a socket pair and stdout/stderr are pipes, as with asyncio. The child
//    gets SIGCHLD-based reaping from libuv (a process-group child from a SIGCHLD watcher of
//    its own), which coexists with add_signal_handler(SIGCHLD).
//  - SubprocessOptions: cwd, env (replace) / extend_env (add), executable, pass_fds,
//    start_new_session, uid, gid, process_group (see <asyncuv/subprocess_options.hpp>).
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncuv/detail/subprocess_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/subprocess_options.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv {

namespace detail {

/// subprocess_exec / subprocess_shell: spawns, waits for connection_made(); if that wait ends
/// with an error (cancellation), closes the transport, waits for the child's end and rethrows
/// (asyncio _make_subprocess_transport).
template <class F>
Task<std::pair<std::shared_ptr<SubprocessTransport>, ProtocolPtrOf<F>>> make_subprocess(
    EventLoop& loop, F protocol_factory, std::vector<std::string> argv, bool shell, Stdio in,
    Stdio out, Stdio err, SubprocessOptions options) {
  using ProtocolPtr = ProtocolPtrOf<F>;
  using P = typename ProtocolPtr::element_type;
  static_assert(std::is_same_v<ProtocolPtr, std::shared_ptr<P>>,
                "the protocol factory must return a std::shared_ptr");
  static_assert(std::is_base_of_v<SubprocessProtocol, P>,
                "the protocol must be a SubprocessProtocol");
  ProtocolPtr protocol = protocol_factory();
  Future<void> waiter = loop.create_future<void>();
  std::shared_ptr<UnixSubprocessTransport> transport =
      spawn_subprocess(loop, std::move(argv), shell, in, out, err, options, protocol, waiter);
  std::exception_ptr failure;
  try {
    co_await waiter;
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    transport->close();
    Future<int> finished = transport->wait_finished();
    try {
      co_await finished;
    } catch (...) {
      // Cancelled again, or the loop is closing: the child is killed either way.
    }
    std::rethrow_exception(failure);
  }
  co_return std::pair<std::shared_ptr<SubprocessTransport>, ProtocolPtr>(std::move(transport),
                                                                         std::move(protocol));
}

}  // namespace detail

template <class F>
auto EventLoop::subprocess_exec(F protocol_factory, std::vector<std::string> argv, Stdio stdin_,
                                Stdio stdout_, Stdio stderr_, SubprocessOptions options)
    -> Task<std::pair<std::shared_ptr<SubprocessTransport>, detail::ProtocolPtrOf<F>>> {
  return detail::make_subprocess(*this, std::move(protocol_factory), std::move(argv), false, stdin_,
                                 stdout_, stderr_, std::move(options));
}

template <class F>
auto EventLoop::subprocess_shell(F protocol_factory, std::string cmd, Stdio stdin_, Stdio stdout_,
                                 Stdio stderr_, SubprocessOptions options)
    -> Task<std::pair<std::shared_ptr<SubprocessTransport>, detail::ProtocolPtrOf<F>>> {
  std::vector<std::string> argv;
  argv.push_back(std::move(cmd));
  return detail::make_subprocess(*this, std::move(protocol_factory), std::move(argv), true, stdin_,
                                 stdout_, stderr_, std::move(options));
}

}  // namespace asyncuv
