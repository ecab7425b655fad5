// The echo server on asyncuv (bench/echo/run.sh): a Protocol whose data_received writes the
// data straight back, served by loop.create_server, as the asyncio/uvloop peer does.
//
//   asyncuv_server [--host 127.0.0.1] [--port 8888]
#include <asyncuv/asyncuv.hpp>
#include <asyncuv/protocols.hpp>
#include <asyncuv/transports.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace {

class Echo : public asyncuv::Protocol {
 public:
  void connection_made(std::shared_ptr<asyncuv::Transport> transport) override {
    transport_ = std::move(transport);
  }
  void data_received(std::string_view data) override { transport_->write(data); }
  void connection_lost(std::exception_ptr) override { transport_.reset(); }

 private:
  std::shared_ptr<asyncuv::Transport> transport_;
};

asyncuv::Task<void> serve(std::string host, int port) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  auto factory = [] { return std::make_shared<Echo>(); };
  auto server = co_await loop.create_server(factory, host, port);
  co_await server->serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 8888;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: asyncuv_server [--host H] [--port P]\n");
      return 2;
    }
  }
  try {
    asyncuv::run(serve(host, port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asyncuv_server: %s\n", e.what());
    return 2;
  }
  return 0;
}
