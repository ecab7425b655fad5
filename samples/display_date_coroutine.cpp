// asyncio's coroutine that displays the current date every second for five seconds.
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

asyncuv::Task<void> display_date() {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  double end_time = loop.time() + 5.0;
  while (true) {
    print_now();
    if (loop.time() + 1.0 >= end_time) break;
    co_await asyncuv::sleep(1);
  }
}

int main() {
  asyncuv::run(display_date());
}
