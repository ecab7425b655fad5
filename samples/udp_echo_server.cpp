// asyncio's "UDP Echo Server" example, in C++: every datagram is sent back to where it came
// from. Runs until interrupted (Ctrl+C).
//
//   udp_echo_server [--host 127.0.0.1] [--port 9999]      (port 0: any free port)
#include <asyncuv/asyncuv.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "sample_args.hpp"
#include "stop_on_signal.hpp"

namespace {

class EchoServerProtocol : public asyncuv::DatagramProtocol {
 public:
  void connection_made(std::shared_ptr<asyncuv::DatagramTransport> transport) override {
    transport_ = std::move(transport);
  }

  void datagram_received(std::string_view data, const asyncuv::SockAddr& addr) override {
    std::cout << "Received '" << data << "' from " << addr.to_string() << std::endl;
    std::cout << "Send '" << data << "' to " << addr.to_string() << std::endl;
    transport_->sendto(data, addr);
  }

  void connection_lost(std::exception_ptr) override { transport_.reset(); }

 private:
  std::shared_ptr<asyncuv::DatagramTransport> transport_;
};

asyncuv::Task<void> serve(std::string host, std::uint16_t port) {
  std::cout << "Starting UDP server" << std::endl;
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  auto factory = [] { return std::make_shared<EchoServerProtocol>(); };
  // A named variable, not a braced temporary inside co_await (GCC 12; see datagram.hpp).
  asyncuv::DatagramEndpointOptions options{.local_addr = {{host, port}}};
  auto [transport, protocol] = co_await loop.create_datagram_endpoint(factory, std::move(options));
  auto sockname = transport->get_extra_info<asyncuv::SockAddr>("sockname");
  std::cout << "Serving on " << (sockname ? sockname->to_string() : "?") << std::endl;
  cancel_current_task_on_signal();
  asyncuv::Future<void> forever = loop.create_future<void>();
  try {
    co_await forever;  // until a signal cancels the task
  } catch (const asyncuv::CancelledError&) {
    std::cout << "Server closed" << std::endl;
  }
  transport->close();
}

}  // namespace

int main(int argc, char** argv) {
  SampleArgs args(argc, argv, "usage: udp_echo_server [--host H] [--port P]",
                  {{"host", "127.0.0.1"}, {"port", "9999"}});
  asyncuv::run(serve(args.get("host"), args.port()));
}
