// asyncio's "TCP Echo Client" protocol example, in C++: sends one message, prints what comes
// back and ends when the server closes the connection.
//
//   tcp_echo_client [--host 127.0.0.1] [--port 8888] [--message "Hello World!"]
#include <asyncuv/asyncuv.hpp>

#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "sample_args.hpp"

namespace {

class EchoClientProtocol : public asyncuv::Protocol {
 public:
  EchoClientProtocol(std::string message, asyncuv::Future<bool> on_con_lost)
      : message_(std::move(message)), on_con_lost_(std::move(on_con_lost)) {}

  void connection_made(std::shared_ptr<asyncuv::Transport> transport) override {
    transport->write(message_);
    std::cout << "Data sent: '" << message_ << "'" << std::endl;
  }

  void data_received(std::string_view data) override {
    std::cout << "Data received: '" << data << "'" << std::endl;
  }

  void connection_lost(std::exception_ptr) override {
    std::cout << "The server closed the connection" << std::endl;
    on_con_lost_.set_result(true);
  }

 private:
  std::string message_;
  asyncuv::Future<bool> on_con_lost_;
};

asyncuv::Task<void> client(std::string host, std::uint16_t port, std::string message) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  asyncuv::Future<bool> on_con_lost = loop.create_future<bool>();
  auto factory = [&] { return std::make_shared<EchoClientProtocol>(message, on_con_lost); };
  auto [transport, protocol] = co_await loop.create_connection(factory, host, port);
  // Wait until the protocol signals that the connection is lost, then close the transport.
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
  SampleArgs args(argc, argv, "usage: tcp_echo_client [--host H] [--port P] [--message TEXT]",
                  {{"host", "127.0.0.1"}, {"port", "8888"}, {"message", "Hello World!"}});
  try {
    asyncuv::run(client(args.get("host"), args.port(), args.get("message")));
  } catch (const asyncuv::OSError& e) {
    std::cerr << "tcp_echo_client: " << e.what() << std::endl;
    return 1;
  }
}
