// How asyncuv takes delays and deadlines: asyncio's float seconds, or std::chrono values.
#pragma once

#include <chrono>

namespace asyncuv {

/// A delay in seconds: a double (asyncio's float) or any std::chrono duration.
struct Seconds {
  double value;
  Seconds(double seconds) : value(seconds) {}  // NOLINT: implicit on purpose
  template <class Rep, class Period>
  Seconds(std::chrono::duration<Rep, Period> d)  // NOLINT: implicit on purpose
      : value(std::chrono::duration<double>(d).count()) {}
};

/// A point in loop time: a double in loop.time() seconds or a std::chrono::steady_clock
/// time point.
struct LoopTime {
  double value;
  LoopTime(double when) : value(when) {}                 // NOLINT: implicit on purpose
  LoopTime(std::chrono::steady_clock::time_point when);  // NOLINT: implicit on purpose
};

}  // namespace asyncuv
