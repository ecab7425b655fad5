// Must NOT compile: run_in_executor takes a blocking function, not a coroutine function (70).
#include <asyncuv/asyncuv.hpp>

asyncuv::Task<int> work() {
  co_return 1;
}

void schedule(asyncuv::EventLoop& loop) {
  (void)loop.run_in_executor(nullptr, work);
}
