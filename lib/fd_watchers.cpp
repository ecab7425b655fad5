// add_reader / add_writer / remove_reader / remove_writer (asyncio selector_events) over one
// uv_poll_t per watched fd. See include/asyncuv/detail/fd_watchers.hpp.
#include "asyncuv/detail/fd_watchers.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "fd_identity.hpp"

namespace asyncuv {

namespace {
/// selectors' message for a negative fd.
[[noreturn]] void throw_invalid_fd(int fd) {
  throw ValueError("Invalid file descriptor: " + std::to_string(fd));
}
}  // namespace

// ---- EventLoop members ------------------------------------------------------------------

void EventLoop::fd_watcher_check(int fd) {
  service<detail::FdWatchers>().check_add(fd);  // service() throws on a closed loop
}

void EventLoop::fd_watcher_add(int fd, int event, detail::HandleImpl* h) {
  auto* watchers = find_service<detail::FdWatchers>();
  if (watchers == nullptr) {
    // Only reachable without fd_watcher_check: the handle is ours to free.
    detail::release(h);
    detail::release(h);
    throw_closed();
  }
  watchers->add(fd, event, h);
}

namespace {
bool remove_watcher(EventLoop& loop, int fd, int event) {
  auto* watchers = loop.find_service<detail::FdWatchers>();
  if (watchers == nullptr) {
    // Nothing was ever watched on this loop; the answers asyncio's selector would give.
    if (loop.is_closed()) return false;
    if (fd < 0) throw_invalid_fd(fd);
    return false;
  }
  watchers->check_not_claimed(fd);
  return watchers->remove(fd, event);
}
}  // namespace

bool EventLoop::remove_reader(int fd) {
  return remove_watcher(*this, fd, UV_READABLE);
}

bool EventLoop::remove_writer(int fd) {
  return remove_watcher(*this, fd, UV_WRITABLE);
}

// ---- the service ------------------------------------------------------------------------

namespace detail {

struct FdWatchers::Watch {
  FdWatchers* owner = nullptr;
  int fd = -1;
  UvHandle<uv_poll_t> poll;
  Handle reader;
  Handle writer;
  // loop.iteration_count() + 1 when last queued: the batch the handle is queued for.
  std::uint64_t reader_queued_for = 0;
  std::uint64_t writer_queued_for = 0;
  int polling = 0;       // the events the poll handle was last started with
  FdIdentity file;       // the file the fd named when the watch was added
  bool pending = false;  // started since libuv's last poll: on_prepare checks the fd
  bool lost = false;     // the fd was closed or reused under the watch: stopped for good

  int wanted() const noexcept { return (reader ? UV_READABLE : 0) | (writer ? UV_WRITABLE : 0); }
  Handle& slot(int event) noexcept { return event == UV_READABLE ? reader : writer; }
  std::uint64_t& queued_for(int event) noexcept {
    return event == UV_READABLE ? reader_queued_for : writer_queued_for;
  }
};

FdWatchers::FdWatchers(EventLoop& loop) : loop_(loop) {
  if (int rc = prepare_.init(uv_prepare_init, loop_.uv_loop(), this); rc != 0) throw_uv_error(rc);
  uv_unref(prepare_.base());
}

FdWatchers::~FdWatchers() = default;

void FdWatchers::close() noexcept {
  for (auto& entry : watches_) {
    entry.second->reader.cancel();
    entry.second->writer.cancel();
  }
  watches_.clear();  // each Watch closes its poll handle through uv_close
  pending_.clear();
  prepare_.close();
}

void FdWatchers::check_not_claimed(int fd) const {
  auto it = claims_.find(fd);
  if (it != claims_.end()) {
    throw RuntimeError("File descriptor " + std::to_string(fd) + " is used by transport " +
                       it->second);
  }
}

void FdWatchers::check_add(int fd) const {
  check_not_claimed(fd);
  if (loop_.is_closed()) throw RuntimeError("Event loop is closed");
  if (fd < 0) throw_invalid_fd(fd);
}

Handle FdWatchers::add(int fd, int event, HandleImpl* h) {
  Handle handle(h);
  release(h);  // make_handle counted a queue's reference; the watch holds `handle` instead
  h->persistent = true;
  if (contexts_in_use() && h->context == nullptr) h->context = capture_context();
  if (loop_.is_closed()) throw RuntimeError("Event loop is closed");
  if (fd < 0) throw_invalid_fd(fd);

  std::optional<FdIdentity> file = fd_identity(fd);
  if (!file) {
    drop(fd);  // as selectors' modify(): a registration that cannot be updated is dropped
    throw_uv_error(UV_EBADF);
  }
  auto it = watches_.find(fd);
  if (it != watches_.end() && (it->second->lost || !(it->second->file == *file))) {
    // The watch belongs to a file that was closed under it: the kernel forgot it, so do we.
    drop(fd);
    it = watches_.end();
  }
  if (it == watches_.end()) {
    // Room for every watch to be marked pending once more, so that mark_pending (called from
    // libuv callbacks through the noexcept restart) never allocates: each watch appears at
    // most once in pending_ between two prepare callbacks.
    pending_.reserve(pending_.size() + watches_.size() + 1);
    auto w = std::make_unique<Watch>();
    w->owner = this;
    w->fd = fd;
    w->file = *file;
    int rc = w->poll.init(uv_poll_init, loop_.uv_loop(), w.get(), fd);
    if (rc != 0) throw_uv_error(rc);
    w->slot(event) = handle;
    rc = restart(*w);
    if (rc != 0) throw_uv_error(rc);  // `w` closes its poll handle
    watches_.emplace(fd, std::move(w));
    return handle;
  }

  Watch& w = *it->second;
  Handle old = std::exchange(w.slot(event), handle);
  w.queued_for(event) = 0;
  if (int rc = restart(w); rc != 0) {
    // As selectors' modify(): a registration that cannot be updated is dropped.
    drop(fd);
    old.cancel();
    throw_uv_error(rc);
  }
  old.cancel();
  return handle;
}

bool FdWatchers::remove(int fd, int event) {
  if (loop_.is_closed()) return false;
  if (fd < 0) throw_invalid_fd(fd);
  auto it = watches_.find(fd);
  if (it == watches_.end()) return false;
  Watch& w = *it->second;
  Handle old = std::exchange(w.slot(event), Handle{});
  if (!old) return false;
  w.queued_for(event) = 0;
  if (w.wanted() == 0) {
    watches_.erase(it);  // closes the poll handle: the fd may be closed and reused at once
  } else if (w.lost) {
    // Nothing to restart: the other watcher stays registered but never runs.
  } else if (int rc = restart(w); rc != 0) {
    drop(fd);
    old.cancel();
    throw_uv_error(rc);
  }
  old.cancel();
  return true;
}

void FdWatchers::claim_for_transport(int fd, std::string description) {
  claims_[fd] = std::move(description);
}

void FdWatchers::release_from_transport(int fd) {
  claims_.erase(fd);
}

bool FdWatchers::is_claimed(int fd) const {
  return claims_.count(fd) != 0;
}

int FdWatchers::restart(Watch& w) noexcept {
  int want = w.wanted();
  if (want == w.polling && uv_is_active(w.poll.base())) return 0;
  // uv_poll_start re-registers the fd with epoll on the next poll, and libuv aborts if the fd
  // is closed by then: a closed or reused fd is reported here instead (and on_prepare catches
  // one closed between now and the poll).
  std::optional<FdIdentity> now = fd_identity(w.fd);
  if (!now) return UV_EBADF;
  if (!(*now == w.file)) return UV_ENOENT;
  int rc = uv_poll_start(w.poll.get(), want, &FdWatchers::on_poll);
  w.polling = rc == 0 ? want : 0;
  if (rc == 0) mark_pending(w);
  return rc;
}

void FdWatchers::mark_pending(Watch& w) noexcept {
  if (w.pending) return;
  // Never reallocates: add() reserved a place for every watch (see there).
  w.pending = true;
  pending_.push_back(w.fd);
  if (!uv_is_active(prepare_.base())) uv_prepare_start(prepare_.get(), &FdWatchers::on_prepare);
}

void FdWatchers::on_prepare(uv_prepare_t* prepare) {
  auto* self = static_cast<FdWatchers*>(prepare->data);
  if (self == nullptr) return;
  for (int fd : self->pending_) {
    auto it = self->watches_.find(fd);
    if (it == self->watches_.end()) continue;  // removed since
    Watch& w = *it->second;
    w.pending = false;
    std::optional<FdIdentity> now = fd_identity(fd);
    if (now && *now == w.file) continue;
    // Closed (libuv would abort) or reused (libuv would watch the new file): stop the poll
    // handle, which takes it off libuv's list of registrations to make.
    uv_poll_stop(w.poll.get());
    w.polling = 0;
    w.lost = true;
  }
  self->pending_.clear();
  uv_prepare_stop(prepare);
}

void FdWatchers::drop(int fd) noexcept {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  it->second->reader.cancel();
  it->second->writer.cancel();
  watches_.erase(it);
}

void FdWatchers::fire(Handle& handle, std::uint64_t& queued_for) {
  // libuv may report an fd twice in one poll (it polls again when its event array fills up);
  // asyncio's selector reports it once per iteration, so it is queued once per batch.
  std::uint64_t batch = loop_.iteration_count() + 1;
  if (queued_for == batch) return;
  queued_for = batch;
  schedule(loop_, handle.impl());
}

void FdWatchers::on_poll(uv_poll_t* poll, int status, int events) {
  auto* w = static_cast<Watch*>(poll->data);
  if (w == nullptr) return;
  FdWatchers& self = *w->owner;
  if (status < 0) {
    // libuv stopped the poll handle. Both callbacks wake so that they meet the error when they
    // use the fd; polling goes on while the fd is open, so the error is reported again in the
    // next iteration, as epoll keeps reporting it to asyncio's selector.
    events = UV_READABLE | UV_WRITABLE;
    w->polling = 0;
    (void)self.restart(*w);
  }
  // asyncio's _process_events: reader first, then writer; a handle cancelled behind the
  // loop's back (through a copy of its Handle) is unregistered instead of run.
  int stale = 0;
  if ((events & UV_READABLE) != 0 && w->reader) {
    if (w->reader.cancelled()) {
      stale |= UV_READABLE;
    } else {
      self.fire(w->reader, w->reader_queued_for);
    }
  }
  if ((events & UV_WRITABLE) != 0 && w->writer) {
    if (w->writer.cancelled()) {
      stale |= UV_WRITABLE;
    } else {
      self.fire(w->writer, w->writer_queued_for);
    }
  }
  if (stale != 0) {
    if ((stale & UV_READABLE) != 0) w->reader = Handle{};
    if ((stale & UV_WRITABLE) != 0) w->writer = Handle{};
    if (w->wanted() == 0 || self.restart(*w) != 0) self.drop(w->fd);
  }
}

}  // namespace detail

}  // namespace asyncuv
