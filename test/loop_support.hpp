// Helpers shared by the test files that drive a loop with run_forever().
#pragma once

#include <catch2/catch.hpp>

#include <asyncuv/event_loop.hpp>

namespace test_support {

/// Runs `loop` until stop(), failing the test if a watchdog timer has to stop it after `limit`
/// seconds (so a bug cannot hang the suite). Returns how long the run took in loop time.
inline double run_with_watchdog(asyncuv::EventLoop& loop, double limit = 20.0) {
  bool fired = false;
  asyncuv::TimerHandle watchdog = loop.call_later(limit, [&] {
    fired = true;
    loop.stop();
  });
  double start = loop.time();
  loop.run_forever();
  double took = loop.time() - start;
  watchdog.cancel();
  CHECK_FALSE(fired);
  return took;
}

}  // namespace test_support
