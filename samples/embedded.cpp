// A plain libuv program that keeps driving its own loop with uv_run, and adopts that loop
// into asyncuv to schedule call_soon / call_later work alongside its own uv_timer.
#include <uv.h>
#include <asyncuv/asyncuv.hpp>

#include <iostream>

namespace {
struct HostState {
  int ticks = 0;
};

void on_host_tick(uv_timer_t* timer) {
  auto* state = static_cast<HostState*>(timer->data);
  std::cout << "host: uv_timer tick " << ++state->ticks << std::endl;
  if (state->ticks == 3) uv_timer_stop(timer);
}
}  // namespace

int main() {
  // The host program's own loop and timer, as it had them before asyncuv.
  uv_loop_t host;
  uv_loop_init(&host);
  HostState state;
  uv_timer_t tick;
  uv_timer_init(&host, &tick);
  tick.data = &state;
  uv_timer_start(&tick, on_host_tick, 10, 10);

  {
    // asyncuv adopts the host's loop: it never runs, closes or frees it.
    asyncuv::EventLoop loop(&host);
    loop.call_soon(
        [] { std::cout << "asyncuv: call_soon ran inside the host's uv_run" << std::endl; });
    loop.call_later(0.015, [&loop] {
      std::cout << "asyncuv: call_later(0.015) ran; scheduling a follow-up" << std::endl;
      loop.call_soon([] { std::cout << "asyncuv: follow-up call_soon ran" << std::endl; });
    });
    loop.call_later(0.035, [] { std::cout << "asyncuv: call_later(0.035) ran" << std::endl; });

    // The host drives everything. uv_run returns once no work is left: the host's timer
    // stopped itself and asyncuv has nothing pending.
    uv_run(&host, UV_RUN_DEFAULT);
    std::cout << "host: uv_run returned" << std::endl;
    loop.close();  // closes asyncuv's handles; the host's next uv_run frees them
  }

  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(&host, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&host);
  std::cout << "host: uv_loop_close " << (rc == 0 ? "succeeded" : uv_strerror(rc)) << std::endl;
  return rc == 0 ? 0 : 1;
}
