// asyncio's _SSLProtocolTransport (the application's side of a TLS connection), the wrapping
// of a socket in a TLS connection, and the checks of the TLS arguments.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "asyncuv/detail/ssl_protocol.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/ssl_errors.hpp"

namespace asyncuv::detail {

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  std::string text = buf;
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

void check_tls_timeouts(const std::optional<Seconds>& handshake_timeout,
                        const std::optional<Seconds>& shutdown_timeout) {
  if (handshake_timeout && !(handshake_timeout->value > 0)) {
    throw ValueError("ssl_handshake_timeout should be a positive number, got " +
                     python_float_repr(handshake_timeout->value));
  }
  if (shutdown_timeout && !(shutdown_timeout->value > 0)) {
    throw ValueError("ssl_shutdown_timeout should be a positive number, got " +
                     python_float_repr(shutdown_timeout->value));
  }
}

std::shared_ptr<Transport> make_ssl_connection(EventLoop& loop, Socket sock,
                                               std::shared_ptr<BaseProtocol> app_protocol,
                                               TlsSetup setup, Future<void> waiter,
                                               std::shared_ptr<ConnectionTracker> tracker) {
  std::shared_ptr<SSLProtocol> protocol =
      make_ssl_protocol(loop, std::move(app_protocol), std::move(setup), std::move(waiter));
  std::shared_ptr<Transport> app_transport = protocol->app_transport();
  (void)make_socket_transport(loop, std::move(sock), protocol, std::move(tracker));
  return app_transport;
}

// ---- SSLTransport -------------------------------------------------------------------------------

void SSLTransport::close() {
  if (closed_) return;
  closed_ = true;
  if (auto protocol = protocol_.lock()) protocol->start_shutdown();
}

void SSLTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  if (auto ssl = protocol_.lock()) ssl->set_app_protocol(std::move(protocol));
}

std::shared_ptr<BaseProtocol> SSLTransport::get_protocol() const {
  auto protocol = protocol_.lock();
  return protocol ? protocol->app_protocol() : nullptr;
}

bool SSLTransport::is_reading() const {
  auto protocol = protocol_.lock();
  return !closed_ && protocol && !protocol->app_reading_paused();
}

void SSLTransport::pause_reading() {
  if (auto protocol = protocol_.lock()) protocol->pause_app_reading();
}

void SSLTransport::resume_reading() {
  if (auto protocol = protocol_.lock()) protocol->resume_app_reading();
}

void SSLTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                           std::optional<std::size_t> low) {
  auto protocol = protocol_.lock();
  if (!protocol) return;
  protocol->set_write_buffer_limits(high, low);
  protocol->control_app_writing();
}

std::pair<std::size_t, std::size_t> SSLTransport::get_write_buffer_limits() const {
  auto protocol = protocol_.lock();
  return protocol ? protocol->write_buffer_limits() : std::pair<std::size_t, std::size_t>{0, 0};
}

std::size_t SSLTransport::get_write_buffer_size() const {
  auto protocol = protocol_.lock();
  return protocol ? protocol->write_buffer_size() : 0;
}

void SSLTransport::set_read_buffer_limits(std::optional<std::size_t> high,
                                          std::optional<std::size_t> low) {
  auto protocol = protocol_.lock();
  if (!protocol) return;
  protocol->set_read_buffer_limits(high, low);
  protocol->control_ssl_reading();
}

std::pair<std::size_t, std::size_t> SSLTransport::get_read_buffer_limits() const {
  auto protocol = protocol_.lock();
  return protocol ? protocol->read_buffer_limits() : std::pair<std::size_t, std::size_t>{0, 0};
}

std::size_t SSLTransport::get_read_buffer_size() const {
  auto protocol = protocol_.lock();
  return protocol ? protocol->read_buffer_size() : 0;
}

void SSLTransport::write(std::string_view data) {
  if (data.empty()) return;
  if (auto protocol = protocol_.lock())
    protocol->write_appdata(std::span<const std::string_view>(&data, 1));
}

void SSLTransport::writelines(std::span<const std::string_view> pieces) {
  if (auto protocol = protocol_.lock()) protocol->write_appdata(pieces);
}

void SSLTransport::write_eof() {
  throw NotImplementedError("");
}

void SSLTransport::abort() {
  closed_ = true;
  if (auto protocol = protocol_.lock()) protocol->abort(nullptr);
}

std::any SSLTransport::extra_info(std::string_view name) const {
  auto protocol = protocol_.lock();
  return protocol ? protocol->extra(name) : std::any();
}

}  // namespace asyncuv::detail
