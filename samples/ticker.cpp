// An asynchronous generator: ticker() yields a tick every --interval seconds; the consumer
// takes --count of them and stops. The generator is then still open, waiting at its co_yield:
// loop.shutdown_asyncgens() closes it at exit, and its cleanup, which itself awaits, runs
// inside the loop (asyncuv::run does the same before closing its loop).
#include <asyncuv/async_generator.hpp>
#include <asyncuv/asyncuv.hpp>

#include <cstdlib>
#include <iostream>
#include <optional>

#include "sample_args.hpp"

asyncuv::AsyncGenerator<int> ticker(double interval) {
  bool closing = false;
  try {
    for (int n = 0;; ++n) {
      co_await asyncuv::sleep(interval);
      co_yield n;
    }
  } catch (const asyncuv::GeneratorExit&) {
    closing = true;  // C++ cannot co_await in a catch block: the cleanup follows it
  }
  if (closing) {
    std::cout << "ticker: closing ..." << std::endl;
    co_await asyncuv::sleep(interval);
    std::cout << "ticker: closed" << std::endl;
  }
}

asyncuv::Task<void> consume(asyncuv::AsyncGenerator<int> ticks, int count) {
  double start = asyncuv::get_running_loop().time();
  while (std::optional<int> tick = co_await ticks.next()) {
    std::cout << "tick " << *tick << " at " << asyncuv::get_running_loop().time() - start << " s"
              << std::endl;
    if (*tick + 1 == count) break;  // leaves the generator open, as `break` in `async for`
  }
}

int main(int argc, char** argv) {
  SampleArgs args(argc, argv, "usage: ticker [--count N] [--interval SECONDS]",
                  {{"count", "5"}, {"interval", "0.2"}});
  int count = std::atoi(args.get("count").c_str());
  double interval = std::atof(args.get("interval").c_str());
  if (count < 1 || !(interval >= 0)) args.fail(2);

  auto loop = asyncuv::new_event_loop();
  asyncuv::AsyncGenerator<int> ticks = ticker(interval);
  loop->run_until_complete(consume(ticks, count));
  std::cout << "consumer done; generator closed: " << std::boolalpha << ticks.closed() << std::endl;
  loop->run_until_complete(loop->shutdown_asyncgens());
  std::cout << "after shutdown_asyncgens; generator closed: " << ticks.closed() << std::endl;
  loop->close();
}
