// fd_identity over POSIX fstat. The only direct system call behind the fd watchers; see
// fd_identity.hpp.
#include <sys/stat.h>

#include "fd_identity.hpp"

namespace asyncuv::detail {

std::optional<FdIdentity> fd_identity(int fd) noexcept {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;  // EBADF: closed (nothing else fails here)
  return FdIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

}  // namespace asyncuv::detail
