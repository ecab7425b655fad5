// The echo server in standalone Asio (bench/echo/run.sh): one single-threaded io_context, a
// session per connection with its own 64 KiB buffer, async_read_some then async_write of what
// was read, TCP_NODELAY on every connection.
//
//   asio_server [--host 127.0.0.1] [--port 8888]
#include <asio.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

namespace {

using asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() {
    asio::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    read();
  }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buffer_),
                            [self = shared_from_this()](asio::error_code ec, std::size_t n) {
                              if (!ec) self->write(n);
                            });
  }

  void write(std::size_t n) {
    asio::async_write(socket_, asio::buffer(buffer_.data(), n),
                      [self = shared_from_this()](asio::error_code ec, std::size_t) {
                        if (!ec) self->read();
                      });
  }

  tcp::socket socket_;
  std::array<char, 64 * 1024> buffer_;
};

class Server {
 public:
  Server(asio::io_context& io, const tcp::endpoint& endpoint) : acceptor_(io) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(1024);
    accept();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](asio::error_code ec, tcp::socket socket) {
      if (!ec) std::make_shared<Session>(std::move(socket))->start();
      accept();
    });
  }

  tcp::acceptor acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  unsigned short port = 8888;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: asio_server [--host H] [--port P]\n");
      return 2;
    }
  }
  try {
    asio::io_context io(1);
    Server server(io, tcp::endpoint(asio::ip::make_address(host), port));
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_server: %s\n", e.what());
    return 2;
  }
  return 0;
}
