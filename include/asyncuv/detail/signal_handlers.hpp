// Per-loop state behind EventLoop::add_signal_handler / remove_signal_handler: one uv_signal_t
// watcher per signal number, paired with the persistent handle that runs the user's callback.
#pragma once

#include <uv.h>

#include <map>

#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/detail/uv_handle.hpp"
#include "asyncuv/handle.hpp"

namespace asyncuv::detail {

class SignalHandlers final : public LoopService {
 public:
  explicit SignalHandlers(EventLoop& loop) : loop_(loop) {}

  /// Throws ValueError("invalid signal number N") unless `sig` is one of the process's valid
  /// signals (Python's signal.valid_signals(): 1..NSIG-1 minus the C library's internal ones).
  static void check_signal(int sig);

  /// Makes `handler` (a persistent handle) the callback for `sig`. An existing handler for
  /// `sig` is cancelled and replaced; otherwise a watcher is started. Throws
  /// RuntimeError("sig N cannot be caught") for SIGKILL and SIGSTOP.
  void add(int sig, Handle handler);

  /// Cancels the handler for `sig` and closes its watcher (libuv restores SIG_DFL once no
  /// watcher of any loop is left for `sig`). False if there was no handler.
  bool remove(int sig) noexcept;

  /// Removes every handler (on loop.close()).
  void close() noexcept override;

 private:
  struct Entry {
    UvHandle<uv_signal_t> watcher;
    Handle handler;
  };

  /// Runs on the loop (libuv reads the signal from its self-pipe while polling): queues the
  /// handler for the coming batch.
  static void on_signal(uv_signal_t* watcher, int signum);

  EventLoop& loop_;
  std::map<int, Entry> entries_;
};

}  // namespace asyncuv::detail
