// Must NOT compile: a lambda coroutine with bound arguments, scheduled with call_later (70).
#include <asyncuv/asyncuv.hpp>

void schedule(asyncuv::EventLoop& loop) {
  loop.call_later(
      1.0, [](int n) -> asyncuv::Task<int> { co_return n; }, 3);
}
