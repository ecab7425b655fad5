// The UDP echo server on asyncuv (bench/udp/run.sh): a DatagramProtocol whose
// datagram_received sends the datagram straight back, as asyncio's UDP echo example.
//
//   udp_asyncuv_server [--host 127.0.0.1] [--port 9999]
#include <signal.h>

#include <asyncuv/asyncuv.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

namespace {

class Echo : public asyncuv::DatagramProtocol {
 public:
  void connection_made(std::shared_ptr<asyncuv::DatagramTransport> transport) override {
    transport_ = std::move(transport);
  }
  void datagram_received(std::string_view data, const asyncuv::SockAddr& addr) override {
    transport_->sendto(data, addr);
  }
  void connection_lost(std::exception_ptr) override { transport_.reset(); }

 private:
  std::shared_ptr<asyncuv::DatagramTransport> transport_;
};

asyncuv::Task<void> serve(std::string host, std::uint16_t port) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  auto factory = [] { return std::make_shared<Echo>(); };
  // A named variable, not a braced temporary inside co_await (GCC 12; see datagram.hpp).
  asyncuv::DatagramEndpointOptions options{.local_addr = {{host, port}}};
  auto [transport, protocol] = co_await loop.create_datagram_endpoint(factory, std::move(options));
  asyncuv::Future<void> done = loop.create_future<void>();
  // SIGINT / SIGTERM end the run cleanly (callgrind writes its profile at exit).
  for (int sig : {SIGINT, SIGTERM}) {
    loop.add_signal_handler(sig, [done] {
      if (!done.done()) done.set_result();
    });
  }
  std::printf("Serving on %s:%u\n", host.c_str(), static_cast<unsigned>(port));
  std::fflush(stdout);
  co_await done;
  transport->close();
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 9999;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: udp_asyncuv_server [--host H] [--port P]\n");
      return 2;
    }
  }
  asyncuv::run(serve(host, static_cast<std::uint16_t>(port)));
}
