// The TLS echo server in standalone Asio (bench/tls/run.sh): one single-threaded io_context,
// asio::ssl::stream per connection with a 64 KiB buffer, async_read_some then async_write of
// what was read, TCP_NODELAY; the same TLS settings as the others (TLS 1.2+, server cert).
//
//   asio_tls_server --cert CERT --key KEY [--host 127.0.0.1] [--port 8443]
#include <asio.hpp>
#include <asio/ssl.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

namespace {

using asio::ip::tcp;
using Stream = asio::ssl::stream<tcp::socket>;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, asio::ssl::context& context) : stream_(std::move(socket), context) {}

  void start() {
    asio::error_code ignored;
    stream_.lowest_layer().set_option(tcp::no_delay(true), ignored);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](asio::error_code ec) {
                              if (!ec) self->read();
                            });
  }

 private:
  void read() {
    stream_.async_read_some(asio::buffer(buffer_),
                            [self = shared_from_this()](asio::error_code ec, std::size_t n) {
                              if (!ec) self->write(n);
                            });
  }

  void write(std::size_t n) {
    asio::async_write(stream_, asio::buffer(buffer_.data(), n),
                      [self = shared_from_this()](asio::error_code ec, std::size_t) {
                        if (!ec) self->read();
                      });
  }

  Stream stream_;
  std::array<char, 64 * 1024> buffer_;
};

class Server {
 public:
  Server(asio::io_context& io, const tcp::endpoint& endpoint, asio::ssl::context& context)
      : acceptor_(io), context_(context) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(1024);
    accept();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](asio::error_code ec, tcp::socket socket) {
      if (!ec) std::make_shared<Session>(std::move(socket), context_)->start();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  asio::ssl::context& context_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", cert, key;
  unsigned short port = 8443;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    } else if (std::strcmp(argv[i], "--cert") == 0) {
      cert = argv[i + 1];
    } else if (std::strcmp(argv[i], "--key") == 0) {
      key = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: asio_tls_server --cert C --key K [--host H] [--port P]\n");
      return 2;
    }
  }
  try {
    asio::io_context io(1);
    asio::ssl::context context(asio::ssl::context::tls_server);
    context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
    context.use_certificate_chain_file(cert);
    context.use_private_key_file(key, asio::ssl::context::pem);
    Server server(io, tcp::endpoint(asio::ip::make_address(host), port), context);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_tls_server: %s\n", e.what());
    return 2;
  }
  return 0;
}
