// The TLS echo server on asyncuv (bench/tls/run.sh): a Protocol whose data_received writes the
// data straight back, served by loop.create_server with ssl=, as the asyncio/uvloop peer does.
//
//   asyncuv_tls_server --cert CERT --key KEY [--host 127.0.0.1] [--port 8443]
#include <asyncuv/asyncuv.hpp>
#include <asyncuv/ssl.hpp>

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

asyncuv::Task<void> serve(std::string host, int port, std::string cert, std::string key) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  auto context = asyncuv::ssl::create_default_context(asyncuv::ssl::Purpose::CLIENT_AUTH);
  context->load_cert_chain(cert, key);
  asyncuv::ServerOptions options;
  options.ssl = context;
  options.backlog = 1024;
  auto factory = [] { return std::make_shared<Echo>(); };
  auto server = co_await loop.create_server(factory, host, static_cast<std::uint16_t>(port),
                                            std::move(options));
  co_await server->serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", cert, key;
  int port = 8443;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--cert") == 0) {
      cert = argv[i + 1];
    } else if (std::strcmp(argv[i], "--key") == 0) {
      key = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: asyncuv_tls_server --cert C --key K [--host H] [--port P]\n");
      return 2;
    }
  }
  try {
    asyncuv::run(serve(host, port, cert, key));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asyncuv_tls_server: %s\n", e.what());
    return 2;
  }
  return 0;
}
