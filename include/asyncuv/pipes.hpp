// Pipe transports (asyncio unix_events): loop.connect_read_pipe() and loop.connect_write_pipe()
// over pipes, FIFOs, sockets and character devices (ttys).
//
//   int fds[2];
//   ::pipe(fds);
//   auto [transport, protocol] =
//       co_await loop.connect_read_pipe([] { return std::make_shared<MyProtocol>(); }, fds[0]);
//
// Semantics (CPython's _UnixReadPipeTransport / _UnixWritePipeTransport):
//  - The transport owns the descriptor from then on (it is made non-blocking and closed once
//    connection_lost() ran); if connect_*_pipe throws, the descriptor is left as it was.
//    A regular file is refused with ValueError, as asyncio does.
//  - Read pipe (a Protocol): connection_made -> data_received()* -> eof_received() ->
//    connection_lost(nullptr) when the writer closes its end (whatever eof_received returns).
//    pause_reading()/resume_reading() stop and restart delivery. close() ends it at once with
//    connection_lost(nullptr). A read error ends it with connection_lost(error): EIO (a pty's
//    other side closed) is only logged in debug mode, others go to the exception handler
//    ("Fatal read error on pipe transport"). An exception thrown by data_received() goes to
//    the exception handler; the pipe stays open.
//  - Write pipe (any BaseProtocol): write() never blocks; what the pipe does not take at once
//    is buffered, with pause_writing() above the high-water mark (64 KiB by default, low =
//    high / 4) and resume_writing() at the low-water mark. close() and write_eof() close the
//    pipe once the buffer is flushed, then connection_lost(nullptr); abort() drops the buffer.
//    Writes after close are dropped (a warning is logged from the 5th). When the reader goes
//    away, connection_lost(BrokenPipeError) follows a failed write; for FIFOs and sockets the
//    transport also notices the reader closing while idle (asyncio's reader trick):
//    connection_lost(nullptr), or BrokenPipeError if data was still buffered.
//  - get_extra_info("pipe"): the descriptor (int).
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "asyncuv/detail/pipe_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv {

namespace detail {

/// Makes the pipe transport for `fd` with the protocol `protocol_factory()` makes and returns
/// both once connection_made() ran; if that wait fails (cancelled), the transport is closed.
template <class F>
Task<std::pair<std::shared_ptr<PipeTransport>, ProtocolPtrOf<F>>> connect_pipe(EventLoop& loop,
                                                                               F protocol_factory,
                                                                               int fd,
                                                                               PipeMode mode) {
  using ProtocolPtr = ProtocolPtrOf<F>;
  using P = typename ProtocolPtr::element_type;
  static_assert(std::is_same_v<ProtocolPtr, std::shared_ptr<P>>,
                "the protocol factory must return a std::shared_ptr");
  static_assert(std::is_base_of_v<BaseProtocol, P>, "the protocol must be a BaseProtocol");
  ProtocolPtr protocol = protocol_factory();
  Future<void> waiter = loop.create_future<void>();
  std::shared_ptr<PipeTransport> transport = make_pipe_transport(loop, fd, mode, protocol, waiter);
  try {
    co_await waiter;
  } catch (...) {
    transport->close();
    throw;
  }
  co_return std::pair<std::shared_ptr<PipeTransport>, ProtocolPtr>(std::move(transport),
                                                                   std::move(protocol));
}

}  // namespace detail

template <class F>
auto EventLoop::connect_read_pipe(F protocol_factory, int fd)
    -> Task<std::pair<std::shared_ptr<ReadTransport>, detail::ProtocolPtrOf<F>>> {
  static_assert(std::is_base_of_v<Protocol, typename detail::ProtocolPtrOf<F>::element_type>,
                "a read pipe's protocol must be a Protocol");
  auto made =
      co_await detail::connect_pipe(*this, std::move(protocol_factory), fd, detail::PipeMode::read);
  co_return std::pair<std::shared_ptr<ReadTransport>, detail::ProtocolPtrOf<F>>(
      std::move(made.first), std::move(made.second));
}

template <class F>
auto EventLoop::connect_write_pipe(F protocol_factory, int fd)
    -> Task<std::pair<std::shared_ptr<WriteTransport>, detail::ProtocolPtrOf<F>>> {
  auto made = co_await detail::connect_pipe(*this, std::move(protocol_factory), fd,
                                            detail::PipeMode::write);
  co_return std::pair<std::shared_ptr<WriteTransport>, detail::ProtocolPtrOf<F>>(
      std::move(made.first), std::move(made.second));
}

}  // namespace asyncuv
