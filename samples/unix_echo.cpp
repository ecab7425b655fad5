// An echo server and client over a Unix domain socket, with asyncio's streams API
// (start_unix_server / open_unix_connection):
//
//   unix_echo server [--path /tmp/asyncuv_echo.sock]    runs until interrupted (Ctrl+C)
//   unix_echo client [--path /tmp/asyncuv_echo.sock] [--message "Hello World!"] [--count 3]
//
// The server echoes every line back until the client closes; the client sends its message
// --count times, one line each, and checks every answer. A path starting with '@' is taken
// as Linux's abstract namespace ("@name" becomes "\0name"): no file is created.
#include <asyncuv/asyncuv.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "sample_args.hpp"
#include "stop_on_signal.hpp"

namespace {

std::string socket_path(std::string path) {
  if (!path.empty() && path[0] == '@') path[0] = '\0';
  return path;
}

asyncuv::Task<void> echo_lines(asyncuv::StreamReader reader, asyncuv::StreamWriter writer) {
  std::cout << "Client connected" << std::endl;
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty()) break;  // EOF
    writer.write(line);
    co_await writer.drain();
  }
  std::cout << "Client done" << std::endl;
  writer.close();
  co_await writer.wait_closed();
}

asyncuv::Task<void> serve(std::string path) {
  auto server = co_await asyncuv::start_unix_server(echo_lines, socket_path(path));
  std::cout << "Serving on " << path << std::endl;
  cancel_current_task_on_signal();
  try {
    co_await server->serve_forever();
  } catch (const asyncuv::CancelledError&) {
    std::cout << "Server closed" << std::endl;
  }
}

asyncuv::Task<int> client(std::string path, std::string message, int count) {
  auto [reader, writer] = co_await asyncuv::open_unix_connection(socket_path(path));
  int failures = 0;
  for (int i = 1; i <= count; ++i) {
    std::string line = message + " #" + std::to_string(i) + "\n";
    writer.write(line);
    co_await writer.drain();
    std::string answer = co_await reader.readline();
    bool same = answer == line;
    if (!same) ++failures;
    std::cout << "Sent and received back " << (same ? "" : "(DIFFERENT) ") << "'"
              << line.substr(0, line.size() - 1) << "'" << std::endl;
  }
  writer.close();
  co_await writer.wait_closed();
  co_return failures;
}

}  // namespace

int main(int argc, char** argv) {
  SampleArgs args(
      argc, argv, "usage: unix_echo server|client [--path P] [--message TEXT] [--count N]",
      {{"path", "/tmp/asyncuv_echo.sock"}, {"message", "Hello World!"}, {"count", "3"}});
  if (args.positional().size() != 1) args.fail(2);
  const std::string& mode = args.positional()[0];
  try {
    if (mode == "server") {
      asyncuv::run(serve(args.get("path")));
      return 0;
    }
    if (mode == "client") {
      return asyncuv::run(
                 client(args.get("path"), args.get("message"), std::stoi(args.get("count"))))
                 ? 1
                 : 0;
    }
    args.fail(2);
  } catch (const asyncuv::OSError& e) {
    std::cerr << "unix_echo: " << e.what() << std::endl;
    return 1;
  }
}
