// Unix signal handlers (asyncio unix_events' add_signal_handler / remove_signal_handler) over
// uv_signal_t. libuv's own OS-level handler only writes the signal to the loop's self-pipe; the
// watcher callback runs later on the loop and merely queues the user's handle, so user code
// always runs as an ordinary callback of a batch.
#include "asyncuv/detail/signal_handlers.hpp"

#include <signal.h>

#include <string>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"

namespace asyncuv {

namespace detail {

void SignalHandlers::check_signal(int sig) {
  // Python validates against signal.valid_signals(), which is sigfillset() on Linux: glibc
  // leaves out the two signals it reserves for threads (32 and 33), as does this check.
  sigset_t valid;
  sigfillset(&valid);
  if (sig < 1 || sig >= NSIG || sigismember(&valid, sig) != 1) {
    throw ValueError("invalid signal number " + std::to_string(sig));
  }
}

void SignalHandlers::add(int sig, Handle handler) {
  if (auto it = entries_.find(sig); it != entries_.end()) {
    it->second.handler.cancel();  // a delivery already queued for the old handler is dropped
    it->second.handler = std::move(handler);
    return;
  }
  Entry entry;
  int rc = entry.watcher.init(uv_signal_init, loop_.uv_loop(), this);
  if (rc != 0) throw_uv_error(rc);
  rc = uv_signal_start(entry.watcher.get(), &SignalHandlers::on_signal, sig);
  if (rc == UV_EINVAL) throw RuntimeError("sig " + std::to_string(sig) + " cannot be caught");
  if (rc != 0) throw_uv_error(rc);
  // Like the rest of asyncuv's handles, a watcher does not keep a host's uv_run() alive.
  uv_unref(entry.watcher.base());
  entry.handler = std::move(handler);
  entries_.emplace(sig, std::move(entry));
}

bool SignalHandlers::remove(int sig) noexcept {
  auto node = entries_.extract(sig);
  if (node.empty()) return false;
  node.mapped().handler.cancel();
  // The node's watcher is closed as it goes; uv_close stops it at once.
  return true;
}

void SignalHandlers::close() noexcept {
  for (auto& [sig, entry] : entries_)
    entry.handler.cancel();
  entries_.clear();
}

void SignalHandlers::on_signal(uv_signal_t* watcher, int signum) {
  auto* self = static_cast<SignalHandlers*>(watcher->data);
  if (self == nullptr) return;
  auto it = self->entries_.find(signum);
  if (it == self->entries_.end() || it->second.handler.cancelled()) return;
  // One queued run per delivery, as asyncio queues the handle once per byte of its wakeup fd.
  schedule(self->loop_, it->second.handler.impl());
}

}  // namespace detail

bool EventLoop::remove_signal_handler(int sig) {
  detail::SignalHandlers::check_signal(sig);
  auto* handlers = find_service<detail::SignalHandlers>();
  return handlers != nullptr && handlers->remove(sig);
}

}  // namespace asyncuv
