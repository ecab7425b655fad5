// asyncio's "TCP Echo Server" protocol example, in C++: every connection's first message is
// sent back, then the server closes that connection. Runs until interrupted (Ctrl+C).
//
//   tcp_echo_server [--host 127.0.0.1] [--port 8888]      (port 0: any free port)
#include <asyncuv/asyncuv.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "sample_args.hpp"
#include "stop_on_signal.hpp"

namespace {

class EchoServerProtocol : public asyncuv::Protocol {
 public:
  void connection_made(std::shared_ptr<asyncuv::Transport> transport) override {
    auto peername = transport->get_extra_info<asyncuv::SockAddr>("peername");
    std::cout << "Connection from " << (peername ? peername->to_string() : "?") << std::endl;
    transport_ = std::move(transport);
  }

  void data_received(std::string_view data) override {
    std::cout << "Data received: '" << data << "'" << std::endl;
    std::cout << "Send: '" << data << "'" << std::endl;
    transport_->write(data);
    std::cout << "Close the client socket" << std::endl;
    transport_->close();
  }

 private:
  std::shared_ptr<asyncuv::Transport> transport_;
};

asyncuv::Task<void> serve(std::string host, std::uint16_t port) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  auto factory = [] { return std::make_shared<EchoServerProtocol>(); };
  std::shared_ptr<asyncuv::Server> server = co_await loop.create_server(factory, host, port);
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
  SampleArgs args(argc, argv, "usage: tcp_echo_server [--host H] [--port P]",
                  {{"host", "127.0.0.1"}, {"port", "8888"}});
  asyncuv::run(serve(args.get("host"), args.port()));
}
