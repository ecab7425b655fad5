// The TCP echo client sample over TLS: trusts the certificate tls_echo_server generated (in
// --cert-dir), sends one message, prints the echo and ends when the server closes.
//
//   tls_echo_client [--host 127.0.0.1] [--port 8443] [--cert-dir DIR] [--message TEXT]
#include <asyncuv/asyncuv.hpp>
#include <asyncuv/ssl.hpp>

#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "sample_args.hpp"
#include "tls_sample_cert.hpp"

namespace {

class EchoClientProtocol : public asyncuv::Protocol {
 public:
  EchoClientProtocol(std::string message, asyncuv::Future<void> on_con_lost)
      : message_(std::move(message)), on_con_lost_(std::move(on_con_lost)) {}

  void connection_made(std::shared_ptr<asyncuv::Transport> transport) override {
    auto object = transport->get_extra_info<std::shared_ptr<asyncuv::ssl::SSLObject>>("ssl_object");
    if (object) std::cout << "Connected with " << (*object)->version() << std::endl;
    transport->write(message_);
    std::cout << "Data sent: '" << message_ << "'" << std::endl;
  }

  void data_received(std::string_view data) override {
    std::cout << "Data received: '" << data << "'" << std::endl;
  }

  void connection_lost(std::exception_ptr exc) override {
    std::cout << "The server closed the connection" << std::endl;
    if (exc) {
      on_con_lost_.set_exception(exc);
    } else {
      on_con_lost_.set_result();
    }
  }

 private:
  std::string message_;
  asyncuv::Future<void> on_con_lost_;
};

asyncuv::Task<void> client(std::string host, std::uint16_t port, std::string cert_dir,
                           std::string message) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  // The server's self-signed certificate is the one trusted CA.
  auto context = asyncuv::ssl::create_default_context(asyncuv::ssl::Purpose::SERVER_AUTH,
                                                      tls_cert_dir(cert_dir) + "/cert.pem");
  asyncuv::Future<void> on_con_lost = loop.create_future<void>();
  auto factory = [&] { return std::make_shared<EchoClientProtocol>(message, on_con_lost); };
  asyncuv::ConnectionOptions options;
  options.ssl = context;
  auto [transport, protocol] =
      co_await loop.create_connection(factory, host, port, std::move(options));
  try {
    co_await on_con_lost;
  } catch (...) {
    transport->close();
    throw;
  }
  transport->close();
}

}  // namespace

int main(int argc, char** argv) {
  SampleArgs args(
      argc, argv, "usage: tls_echo_client [--host H] [--port P] [--cert-dir DIR] [--message TEXT]",
      {{"host", "127.0.0.1"}, {"port", "8443"}, {"cert-dir", ""}, {"message", "Hello TLS!"}});
  try {
    asyncuv::run(client(args.get("host"), args.port(), args.get("cert-dir"), args.get("message")));
  } catch (const asyncuv::OSError& e) {
    std::cerr << "tls_echo_client: " << e.what() << std::endl;
    return 1;
  }
}
