// asyncio's "TCP echo client/server using streams" examples, in C++, in one program:
//
//   stream_echo server [--host 127.0.0.1] [--port 8888]    runs until interrupted (Ctrl+C)
//   stream_echo client [--host 127.0.0.1] [--port 8888] [--message "Hello World!"]
//
// The server reads up to 100 bytes from each client, sends them back and closes the
// connection; the client sends a message, prints the answer and closes.
#include <asyncuv/asyncuv.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "sample_args.hpp"
#include "stop_on_signal.hpp"

namespace {

asyncuv::Task<void> handle_echo(asyncuv::StreamReader reader, asyncuv::StreamWriter writer) {
  std::string data = co_await reader.read(100);
  auto addr = writer.get_extra_info<asyncuv::SockAddr>("peername");
  std::cout << "Received '" << data << "' from " << (addr ? addr->to_string() : "?") << std::endl;

  std::cout << "Send: '" << data << "'" << std::endl;
  writer.write(data);
  co_await writer.drain();

  std::cout << "Close the connection" << std::endl;
  writer.close();
  co_await writer.wait_closed();
}

asyncuv::Task<void> serve(std::string host, std::uint16_t port) {
  std::shared_ptr<asyncuv::Server> server = co_await asyncuv::start_server(handle_echo, host, port);
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

asyncuv::Task<void> tcp_echo_client(std::string host, std::uint16_t port, std::string message) {
  auto [reader, writer] = co_await asyncuv::open_connection(host, port);

  std::cout << "Send: '" << message << "'" << std::endl;
  writer.write(message);
  co_await writer.drain();

  std::string data = co_await reader.read(100);
  std::cout << "Received: '" << data << "'" << std::endl;

  std::cout << "Close the connection" << std::endl;
  writer.close();
  co_await writer.wait_closed();
}

}  // namespace

int main(int argc, char** argv) {
  SampleArgs args(argc, argv,
                  "usage: stream_echo server|client [--host H] [--port P] [--message TEXT]",
                  {{"host", "127.0.0.1"}, {"port", "8888"}, {"message", "Hello World!"}});
  if (args.positional().size() != 1) args.fail(2);
  const std::string& mode = args.positional()[0];
  try {
    if (mode == "server") {
      asyncuv::run(serve(args.get("host"), args.port()));
    } else if (mode == "client") {
      asyncuv::run(tcp_echo_client(args.get("host"), args.port(), args.get("message")));
    } else {
      args.fail(2);
    }
  } catch (const asyncuv::OSError& e) {
    std::cerr << "stream_echo: " << e.what() << std::endl;
    return 1;
  }
}
