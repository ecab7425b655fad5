// asyncio's "Hello World with call_soon()" example, in C++.
#include <asyncuv/asyncuv.hpp>

#include <iostream>

void hello_world(asyncuv::EventLoop& loop) {
  // A callback that prints "Hello World" and stops the event loop.
  std::cout << "Hello World" << std::endl;
  loop.stop();
}

int main() {
  auto loop = asyncuv::new_event_loop();

  // Schedule a call to hello_world().
  loop->call_soon(hello_world, std::ref(*loop));

  // Blocking call interrupted by loop.stop().
  loop->run_forever();
  loop->close();
}
