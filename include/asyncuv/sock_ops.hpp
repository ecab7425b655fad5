// The loop's low-level socket operations, asyncio's loop.sock_* (selector_events.py): the
// EventLoop members are declared in event_loop.hpp under "low-level socket operations" and
// defined in lib/sock_ops.cpp and lib/sock_sendfile.cpp; include this header to call them.
//
// Semantics (as CPython's selector event loop):
//  - Each operation first tries its system call at once; only when that would block does it
//    watch the fd (as add_reader / add_writer do) and retry each time the fd is ready. An
//    operation that completes at once returns a Future that is already done.
//  - Cancelling the Future removes the watch and leaves the socket usable: a later
//    sock_recv gets the data the cancelled one would have had. Nothing received is lost.
//  - OS errors finish the Future with the matching OSError subclass (ConnectionRefusedError,
//    ConnectionResetError, BrokenPipeError, ...). Sending never raises SIGPIPE.
//  - Misuse throws at once: RuntimeError("Event loop is closed"), ValueError("the socket must
//    be non-blocking") in debug mode, RuntimeError("File descriptor N is used by transport
//    ...") when the operation would have to wait on an fd a transport owns, ValueError for
//    bad arguments.
//  - Data passed in is copied only when it cannot be sent at once (sock_sendall keeps just
//    the unsent rest); buffers given to the *_into operations must outlive the Future.
//  - sock_sendfile uses sendfile(2) and, when that is not possible (the file is not a regular
//    file, or the first sendfile call fails) and fallback is true, reads the file on the
//    default executor and sends with sock_sendall; with fallback false it raises
//    SendfileNotAvailableError. Only SOCK_STREAM sockets are accepted. Afterwards the file
//    position is offset + bytes sent (unchanged when nothing was sent), as in asyncio.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/sockaddr.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

/// `co_await loop.sock_accept(sock)` yields the pair by value, moving the accepted Socket out
/// of the Future (a Socket cannot be copied): await an accept Future only once.
inline auto operator co_await(const Future<std::pair<Socket, SockAddr>>& accepted) {
  using State = Future<std::pair<Socket, SockAddr>>::State;
  struct Awaiter : detail::FutureAwaiter<State> {
    std::pair<Socket, SockAddr> await_resume() const {
      if (detail::TaskStateBase* task = detail::current_task_state()) {
        task->throw_if_cancel_delivered();
      }
      return this->state->take_result();
    }
  };
  return Awaiter{{accepted.state()}};
}

}  // namespace asyncuv
