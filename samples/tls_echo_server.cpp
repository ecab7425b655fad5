// The TCP echo server sample over TLS: every connection's first message is sent back, then
// the server closes that connection (with close_notify). On first run a self-signed
// certificate for localhost / 127.0.0.1 is generated into --cert-dir (default: a per-user
// cache directory), which tls_echo_client trusts. Runs until interrupted (Ctrl+C).
//
//   tls_echo_server [--host 127.0.0.1] [--port 8443] [--cert-dir DIR]   (port 0: any free port)
#include <asyncuv/asyncuv.hpp>
#include <asyncuv/ssl.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "sample_args.hpp"
#include "stop_on_signal.hpp"
#include "tls_sample_cert.hpp"

namespace {

class EchoServerProtocol : public asyncuv::Protocol {
 public:
  void connection_made(std::shared_ptr<asyncuv::Transport> transport) override {
    auto peername = transport->get_extra_info<asyncuv::SockAddr>("peername");
    auto cipher = transport->get_extra_info<asyncuv::ssl::CipherInfo>("cipher");
    std::cout << "TLS connection from " << (peername ? peername->to_string() : "?") << " ("
              << (cipher ? cipher->protocol + ", " + cipher->name : "?") << ")" << std::endl;
    transport_ = std::move(transport);
  }

  void data_received(std::string_view data) override {
    std::cout << "Data received: '" << data << "'" << std::endl;
    transport_->write(data);
    std::cout << "Close the client connection" << std::endl;
    transport_->close();
  }

 private:
  std::shared_ptr<asyncuv::Transport> transport_;
};

asyncuv::Task<void> serve(std::string host, std::uint16_t port, std::string cert_dir) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  auto [cert, key] = ensure_self_signed(tls_cert_dir(cert_dir));
  auto context = asyncuv::ssl::create_default_context(asyncuv::ssl::Purpose::CLIENT_AUTH);
  context->load_cert_chain(cert, key);
  std::cout << "Certificate: " << cert << std::endl;

  auto factory = [] { return std::make_shared<EchoServerProtocol>(); };
  asyncuv::ServerOptions options;
  options.ssl = context;
  std::shared_ptr<asyncuv::Server> server =
      co_await loop.create_server(factory, host, port, std::move(options));
  for (const asyncuv::TransportSocket& sock : server->sockets()) {
    std::cout << "Serving on " << sock.getsockname().to_string() << std::endl;
  }
  cancel_current_task_on_signal();
  try {
    co_await server->serve_forever();
  } catch (const asyncuv::CancelledError&) {
    std::cout << "Server closed" << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  SampleArgs args(argc, argv, "usage: tls_echo_server [--host H] [--port P] [--cert-dir DIR]",
                  {{"host", "127.0.0.1"}, {"port", "8443"}, {"cert-dir", ""}});
  asyncuv::run(serve(args.get("host"), args.port(), args.get("cert-dir")));
}
