// The file positioning both sendfile fallbacks (loop.sock_sendfile, loop.sendfile) start with.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "asyncuv/exceptions.hpp"

namespace asyncuv::detail {

/// Moves `file_fd` to `offset` and returns true for a seekable file. A non-seekable file
/// (pipe, character device) returns false and is read as it comes; it cannot start at a
/// non-zero offset (OSError ESPIPE). Other lseek failures throw their OSError.
inline bool position_for_fallback(int file_fd, std::uint64_t offset) {
  if (::lseek(file_fd, 0, SEEK_CUR) >= 0) {
    if (::lseek(file_fd, static_cast<off_t>(offset), SEEK_SET) < 0) throw_os_error(errno);
    return true;
  }
  if (errno != ESPIPE) throw_os_error(errno);
  if (offset != 0) throw_os_error(ESPIPE, "cannot start at an offset in a non-seekable file");
  return false;
}

}  // namespace asyncuv::detail
