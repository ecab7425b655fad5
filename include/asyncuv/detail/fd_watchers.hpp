// The loop's file-descriptor watchers: asyncio's selector registrations behind add_reader /
// add_writer, over one uv_poll_t per watched fd.
//
// Each registration is one persistent Handle, scheduled on the loop's ready queue every
// iteration in which libuv reports its fd ready (level-triggered, as asyncio's selectors):
// a readable fd keeps its reader firing until the data is read or the reader is removed.
// Reader and writer of one fd share its uv_poll_t, started with the union of the wanted
// events and closed once neither remains. A poll error (status < 0) wakes both, so that their
// callbacks meet the error when they touch the fd, as libuv recommends.
//
// An fd closed under its watcher (asyncio's selector simply stops seeing it). libuv hands a
// uv_poll_start to the kernel only in its next poll and calls abort() if the fd is closed by
// then; if the number was reused meanwhile (a new pipe, a new socket), it would watch the new
// file and run the old callback for it. So each watch remembers which file it was added for
// (fd_identity: device and inode), and a uv_prepare handle, which libuv runs right before its
// poll, checks every watch started since the last poll: one whose fd is closed or now names
// another file is stopped ("lost") before libuv sees it. Its callbacks never run, remove_*
// still finds it (true, as asyncio's selector keeps the key), and add_* on that fd number
// forgets it and watches the fd's current file afresh (asyncio's epoll would refuse with
// ENOENT or watch nothing). A watch that libuv registered already needs no check: the kernel
// drops the registration when the fd closes.
//
// Transport ownership (asyncio's _ensure_fd_no_transport): a transport that drives an fd
// itself claims it with claim_for_transport(fd, description) and gives it back with
// release_from_transport(fd). While claimed, the user-facing add_reader / add_writer /
// remove_reader / remove_writer on that fd throw RuntimeError("File descriptor N is used by
// transport <description>"). add() and remove() themselves do not look at claims: they are
// asyncio's _add_reader / _remove_reader, for asyncuv's own code that checked first.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/detail/uv_handle.hpp"
#include "asyncuv/handle.hpp"

namespace asyncuv::detail {

struct HandleImpl;

class FdWatchers final : public LoopService {
 public:
  explicit FdWatchers(EventLoop& loop);
  ~FdWatchers() override;

  /// Cancels every watcher handle and closes every poll handle (EventLoop::close()).
  void close() noexcept override;

  /// The checks asyncio makes before it builds a watcher's handle: RuntimeError for an fd
  /// claimed by a transport, RuntimeError("Event loop is closed") on a closed loop,
  /// ValueError("Invalid file descriptor: N") for a negative fd.
  void check_add(int fd) const;

  /// Watches `fd` for `event` (UV_READABLE: the reader, UV_WRITABLE: the writer) with handle
  /// `h`, as made by make_handle (this takes over both of its references) and marks it
  /// persistent. Replaces and cancels a previous handle for the same fd and event. Throws
  /// ValueError for a negative fd, RuntimeError on a closed loop, and the OSError libuv's
  /// uv_poll_init reports (EBADF for a closed fd, PermissionError for a regular file,
  /// FileExistsError for an fd some other uv_poll_t of this loop watches); `h` is then
  /// released. Does not check transport claims. Returns the watcher's Handle.
  Handle add(int fd, int event, HandleImpl* h);

  /// Stops watching `fd` for `event` and cancels its handle. True if there was one; false if
  /// not, or on a closed loop. ValueError for a negative fd on an open loop. Does not check
  /// transport claims.
  bool remove(int fd, int event);

  /// Marks `fd` as owned by a transport described by `description` (its repr).
  void claim_for_transport(int fd, std::string description);
  /// Ends the transport's ownership of `fd`; nothing happens if it was not claimed.
  void release_from_transport(int fd);
  /// True while a transport owns `fd`.
  bool is_claimed(int fd) const;
  /// Throws RuntimeError("File descriptor N is used by transport ...") if a transport owns `fd`.
  void check_not_claimed(int fd) const;

  /// How many fds have a reader or a writer.
  std::size_t watched_count() const noexcept { return watches_.size(); }

 private:
  struct Watch;

  static void on_poll(uv_poll_t* poll, int status, int events);
  /// Before libuv's poll: stops every watch started since the last poll whose fd was closed
  /// or reused since (see the file comment).
  static void on_prepare(uv_prepare_t* prepare);
  /// Notes that `w` handed libuv a registration it performs in its next poll.
  void mark_pending(Watch& w) noexcept;
  /// Queues `handle` for the next batch, at most once per batch.
  void fire(Handle& handle, std::uint64_t& queued_for);
  /// Starts `w`'s poll with the events its reader and writer want, if that changed. A libuv
  /// error code, UV_EBADF when the fd was closed under it, UV_ENOENT when its number now names
  /// another file (asyncio's epoll modify() fails the same two ways).
  int restart(Watch& w) noexcept;
  /// Forgets `fd`'s watch: cancels both handles and closes its poll handle.
  void drop(int fd) noexcept;

  EventLoop& loop_;
  std::unordered_map<int, std::unique_ptr<Watch>> watches_;
  std::unordered_map<int, std::string> claims_;  // fd -> the owning transport's description
  UvHandle<uv_prepare_t>
      prepare_;               // active while pending_ is not empty; never keeps the loop alive
  std::vector<int> pending_;  // fds of watches started since libuv's last poll
};

}  // namespace asyncuv::detail
