// asyncio's "Set signal handlers for SIGINT and SIGTERM" example, in C++: the loop runs for an
// hour unless SIGINT or SIGTERM arrives; the handler prints the signal and stops the loop.
//
//   signals                        wait for Ctrl+C (or `kill -TERM <pid>`)
//   signals --self-signal SECONDS  send itself SIGINT after SECONDS (used by scripts/demo)
#include <asyncuv/asyncuv.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <iostream>
#include <string>

namespace {
void ask_exit(const std::string& signame, asyncuv::EventLoop& loop) {
  std::cout << "got signal " << signame << ": exit" << std::endl;
  loop.stop();
}
}  // namespace

int main(int argc, char** argv) {
  double self_signal = -1;
  if (argc == 3 && std::strcmp(argv[1], "--self-signal") == 0) {
    self_signal = std::stod(argv[2]);
  } else if (argc != 1) {
    std::cerr << "usage: " << argv[0] << " [--self-signal SECONDS]\n";
    return 2;
  }

  asyncuv::EventLoop loop;
  loop.add_signal_handler(SIGINT, ask_exit, std::string("SIGINT"), std::ref(loop));
  loop.add_signal_handler(SIGTERM, ask_exit, std::string("SIGTERM"), std::ref(loop));

  // asyncio's example sleeps for an hour.
  loop.call_later(3600, [&loop] { loop.stop(); });
  if (self_signal >= 0) loop.call_later(self_signal, [] { ::kill(::getpid(), SIGINT); });

  std::cout << "Event loop running for 1 hour, press Ctrl+C to interrupt." << std::endl;
  std::cout << "pid " << ::getpid() << ": send SIGINT or SIGTERM to exit." << std::endl;
  loop.run_forever();
  loop.close();
}
