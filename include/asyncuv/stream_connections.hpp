// Stream connections (asyncio base_events / selector_events): the transport every TCP and
// Unix stream connection uses, loop.connect_accepted_socket() and loop.sendfile().
//
// Semantics (as CPython's selector event loop, _SelectorSocketTransport):
//  - Order: connection_made(transport) (scheduled with call_soon) -> data_received()* ->
//    eof_received() -> connection_lost(nullptr), which comes last, exactly once. If
//    eof_received() returns false the transport closes itself; true keeps it half-open
//    (reading stops, writing goes on until close()). TCP sockets get TCP_NODELAY.
//  - write() never blocks: what the socket does not take at once is buffered.
//    get_write_buffer_size() counts the bytes not yet handed to the OS; above the high-water
//    mark (64 KiB by default, low = high / 4) the protocol's pause_writing() is called once,
//    and resume_writing() once the buffer is at or below the low-water mark.
//  - close() sends what is buffered first, then connection_lost(nullptr); writes after close()
//    with an empty buffer are dropped (a warning is logged from the 5th). abort() drops the
//    buffer at once. write_eof() half-closes once the buffer drained; write() afterwards
//    throws RuntimeError("Cannot call write() after write_eof()").
//  - A reset peer ends the connection with connection_lost(ConnectionResetError) (OS errors
//    are only logged in debug mode); an exception thrown by data_received(), eof_received(),
//    get_buffer() or buffer_updated() goes to the loop's exception handler ("Fatal error:
//    protocol.data_received() call failed.", with "transport" and "protocol" in the context)
//    and the connection is aborted with connection_lost(that exception).
//  - The transport keeps itself and its protocol alive until connection_lost() ran: dropping
//    every reference never loses data close() promised to send. Closing the loop closes the
//    sockets of open transports without calling their protocols again.
//  - get_extra_info("peername") / ("sockname"): SockAddr; ("socket"): the fd (int).
#pragma once

#include <sys/socket.h>

#include <memory>
#include <type_traits>
#include <utility>

#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/socket.hpp"
#include "asyncuv/tasks.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv {

namespace detail {
/// Logs "<socket> handled: (<transport>, <protocol>)" at debug level (debug mode only).
void log_connection_handled(EventLoop& loop, const std::shared_ptr<Transport>& transport);
}  // namespace detail

template <class F>
auto EventLoop::connect_accepted_socket(F protocol_factory, Socket sock)
    -> Task<std::pair<std::shared_ptr<Transport>, std::remove_cvref_t<std::invoke_result_t<F&>>>> {
  using ProtocolPtr = std::remove_cvref_t<std::invoke_result_t<F&>>;
  using P = typename ProtocolPtr::element_type;
  static_assert(std::is_same_v<ProtocolPtr, std::shared_ptr<P>>,
                "the protocol factory must return a std::shared_ptr");
  static_assert(std::is_base_of_v<Protocol, P> || std::is_base_of_v<BufferedProtocol, P>,
                "the protocol must be a Protocol or a BufferedProtocol");
  if (sock.type() != SOCK_STREAM) {
    throw ValueError("A Stream Socket was expected, got " + detail::describe_socket(sock));
  }
  ProtocolPtr protocol = protocol_factory();
  Future<void> waiter = create_future<void>();
  std::shared_ptr<Transport> transport =
      detail::make_socket_transport(*this, std::move(sock), protocol, {}, waiter);
  try {
    co_await waiter;
  } catch (...) {
    transport->close();
    throw;
  }
  detail::log_connection_handled(*this, transport);
  co_return std::pair<std::shared_ptr<Transport>, ProtocolPtr>(std::move(transport),
                                                               std::move(protocol));
}

}  // namespace asyncuv
