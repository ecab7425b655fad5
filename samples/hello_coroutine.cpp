// asyncio's coroutine "Hello World": prints, sleeps a second, prints again.
#include <asyncuv/asyncuv.hpp>

#include <iostream>

asyncuv::Task<void> main_coroutine() {
  std::cout << "Hello ..." << std::endl;
  co_await asyncuv::sleep(1);
  std::cout << "... World!" << std::endl;
}

int main() {
  asyncuv::run(main_coroutine());
}
