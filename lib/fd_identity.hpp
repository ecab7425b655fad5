// Which open file an fd number names right now: the platform seam behind the fd watchers'
// closed-fd and reused-fd checks (POSIX: fstat's st_dev and st_ino; see fd_identity_posix.cpp).
//
// libuv registers a uv_poll_t's fd with the kernel lazily, in its next poll, and aborts the
// process if the fd is closed by then; if the number was reused meanwhile, it silently watches
// the new file. Comparing the identity taken when a watcher was added with the identity just
// before libuv's poll tells both cases apart from a live fd.
#pragma once

#include <cstdint>
#include <optional>

namespace asyncuv::detail {

struct FdIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;

  friend bool operator==(const FdIdentity&, const FdIdentity&) = default;
};

/// The identity of the file `fd` names, or nullopt if `fd` is not open (EBADF).
std::optional<FdIdentity> fd_identity(int fd) noexcept;

}  // namespace asyncuv::detail
