// asyncio's "Display the current date with call_later()" example, in C++: prints the date
// every second for five seconds.
#include <asyncuv/asyncuv.hpp>

#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>

namespace {
void print_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()) %
                std::chrono::seconds(1);
  std::tm local{};
  localtime_r(&seconds, &local);
  std::cout << std::put_time(&local, "%Y-%m-%d %H:%M:%S") << '.' << std::setw(6)
            << std::setfill('0') << micros.count() << std::endl;
}
}  // namespace

void display_date(double end_time, asyncuv::EventLoop& loop) {
  print_now();
  if (loop.time() + 1.0 < end_time) {
    loop.call_later(1, display_date, end_time, std::ref(loop));
  } else {
    loop.stop();
  }
}

int main() {
  auto loop = asyncuv::new_event_loop();

  // Schedule the first call to display_date().
  double end_time = loop->time() + 5.0;
  loop->call_soon(display_date, end_time, std::ref(*loop));

  // Blocking call interrupted by loop.stop().
  loop->run_forever();
  loop->close();
}
