// loop.start_tls() (asyncio base_events.start_tls): upgrades a live stream connection to TLS
// by putting an SSLProtocol between the transport and the application's protocol.
#include <memory>
#include <utility>

#include "asyncuv/detail/ssl_protocol.hpp"
#include "asyncuv/detail/stream_reader_state.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

Task<std::shared_ptr<Transport>> EventLoop::start_tls(std::shared_ptr<Transport> transport,
                                                      std::shared_ptr<BaseProtocol> protocol,
                                                      std::shared_ptr<ssl::Context> sslcontext,
                                                      StartTlsOptions options) {
  if (!sslcontext) {
    throw TypeError("sslcontext is expected to be an instance of ssl.SSLContext, got None");
  }
  // Socket transports and TLS transports can be upgraded (asyncio's _start_tls_compatible).
  if (dynamic_cast<detail::StreamTransport*>(transport.get()) == nullptr &&
      dynamic_cast<detail::SSLTransport*>(transport.get()) == nullptr) {
    throw TypeError("transport " + detail::transport_repr(transport.get()) +
                    " is not supported by start_tls()");
  }
  Future<void> waiter = create_future<void>();
  detail::TlsSetup setup;
  setup.context = std::move(sslcontext);
  setup.server_side = options.server_side;
  setup.server_hostname = options.server_hostname.value_or(std::string());
  setup.handshake_timeout = options.ssl_handshake_timeout;
  setup.shutdown_timeout = options.ssl_shutdown_timeout;
  std::shared_ptr<detail::SSLProtocol> ssl_protocol =
      detail::make_ssl_protocol(*this, std::move(protocol), std::move(setup), waiter, false);

  // Paused first, so that no data reaches the SSLProtocol before its connection_made().
  transport->pause_reading();
  transport->set_protocol(ssl_protocol);
  Handle made = call_soon([ssl_protocol, transport] { ssl_protocol->connection_made(transport); });
  Handle resumed = call_soon([transport] { transport->resume_reading(); });
  try {
    co_await waiter;
  } catch (...) {
    transport->close();
    made.cancel();
    resumed.cancel();
    throw;
  }
  co_return ssl_protocol->app_transport();
}

}  // namespace asyncuv
