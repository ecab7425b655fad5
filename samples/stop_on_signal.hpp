// How the network samples end on Ctrl+C: SIGINT or SIGTERM cancels the task that serves, so
// serve_forever() closes the server and the program exits normally (asyncio.run gets the
// same effect from KeyboardInterrupt).
#pragma once

#include <signal.h>

#include <asyncuv/asyncuv.hpp>

#include <iostream>

/// Makes SIGINT and SIGTERM cancel the current task (call from inside it).
inline void cancel_current_task_on_signal() {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  asyncuv::AnyTask task = asyncuv::current_task();
  for (int sig : {SIGINT, SIGTERM}) {
    loop.add_signal_handler(sig, [task, sig] {
      std::cout << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ": stopping" << std::endl;
      task.cancel();
    });
  }
}
