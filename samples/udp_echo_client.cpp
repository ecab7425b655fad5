// asyncio's "UDP Echo Client" example, in C++: sends one datagram, prints the echo, closes the
// endpoint and exits. Gives up after --timeout seconds if no echo comes (UDP may lose it).
//
//   udp_echo_client [--host 127.0.0.1] [--port 9999] [--message "Hello World!"] [--timeout 5]
#include <asyncuv/asyncuv.hpp>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "sample_args.hpp"

namespace {

class EchoClientProtocol : public asyncuv::DatagramProtocol {
 public:
  EchoClientProtocol(std::string message, asyncuv::Future<bool> on_con_lost)
      : message_(std::move(message)), on_con_lost_(std::move(on_con_lost)) {}

  void connection_made(std::shared_ptr<asyncuv::DatagramTransport> transport) override {
    transport_ = std::move(transport);
    std::cout << "Send: " << message_ << std::endl;
    transport_->sendto(message_);
  }

  void datagram_received(std::string_view data, const asyncuv::SockAddr&) override {
    std::cout << "Received: " << data << std::endl;
    std::cout << "Close the socket" << std::endl;
    transport_->close();
  }

  void error_received(std::exception_ptr exc) override {
    try {
      std::rethrow_exception(exc);
    } catch (const std::exception& e) {
      std::cout << "Error received: " << e.what() << std::endl;
    }
  }

  void connection_lost(std::exception_ptr) override {
    std::cout << "Connection closed" << std::endl;
    transport_.reset();
    if (!on_con_lost_.done()) on_con_lost_.set_result(true);
  }

 private:
  std::string message_;
  asyncuv::Future<bool> on_con_lost_;
  std::shared_ptr<asyncuv::DatagramTransport> transport_;
};

asyncuv::Task<void> client(std::string host, std::uint16_t port, std::string message,
                           double timeout) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  asyncuv::Future<bool> on_con_lost = loop.create_future<bool>();
  auto factory = [&] { return std::make_shared<EchoClientProtocol>(message, on_con_lost); };
  // A named variable, not a braced temporary inside co_await (GCC 12; see datagram.hpp).
  asyncuv::DatagramEndpointOptions options{.remote_addr = {{host, port}}};
  auto [transport, protocol] = co_await loop.create_datagram_endpoint(factory, std::move(options));
  try {
    co_await asyncuv::wait_for(on_con_lost, timeout);
  } catch (const asyncuv::TimeoutError&) {
    std::cout << "No echo after " << timeout << " s" << std::endl;
  }
  transport->close();
}

}  // namespace

int main(int argc, char** argv) {
  SampleArgs args(
      argc, argv,
      "usage: udp_echo_client [--host H] [--port P] [--message TEXT] [--timeout SECONDS]",
      {{"host", "127.0.0.1"}, {"port", "9999"}, {"message", "Hello World!"}, {"timeout", "5"}});
  try {
    asyncuv::run(client(args.get("host"), args.port(), args.get("message"),
                        std::strtod(args.get("timeout").c_str(), nullptr)));
  } catch (const asyncuv::OSError& e) {
    std::cerr << "udp_echo_client: " << e.what() << std::endl;
    return 1;
  }
}
