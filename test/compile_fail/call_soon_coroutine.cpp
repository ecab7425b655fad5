// Must NOT compile: a coroutine function scheduled as a callback would never run (70).
#include <asyncuv/asyncuv.hpp>

asyncuv::Task<void> work() {
  co_return;
}

void schedule(asyncuv::EventLoop& loop) {
  loop.call_soon(work);
}
