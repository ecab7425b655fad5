// Per-loop state of an optional subsystem (fd watchers, signal handlers, the default executor,
// …): created on first use, closed when its loop closes, destroyed with the loop.
#pragma once

namespace asyncuv {
class EventLoop;
}

namespace asyncuv::detail {

struct HandleImpl;

class LoopService {
 public:
  LoopService() = default;
  LoopService(const LoopService&) = delete;
  LoopService& operator=(const LoopService&) = delete;
  virtual ~LoopService() = default;

  /// Called once by EventLoop::close(), before the loop's own handles close and its queues are
  /// cleared; services are closed in the reverse order of their creation. Must close every
  /// libuv handle the service opened (through uv_close).
  virtual void close() noexcept = 0;

 protected:
  /// Puts `h` on `loop`'s ready queue for the next batch, taking a new reference to it. For
  /// handles marked `persistent` (fd watchers, signal handlers) the callable survives the run.
  static void schedule(EventLoop& loop, HandleImpl* h);
};

/// A unique key per service type, for EventLoop::service<S>().
template <class S>
const void* service_key() noexcept {
  static const char key = 0;
  return &key;
}

}  // namespace asyncuv::detail
