// Popen's close_fds around a spawn: see lib/close_fds.hpp.
#include "close_fds.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace asyncuv::detail {

InheritableFdsHidden::InheritableFdsHidden(std::span<const int> keep) {
  // /proc/self/fd lists exactly the open descriptors; without /proc, every number below the
  // descriptor limit is tried.
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    const int own = ::dirfd(dir);
    std::vector<int> open;
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      const int fd = std::atoi(entry->d_name);
      if (fd >= 3 && fd != own) open.push_back(fd);
    }
    ::closedir(dir);
    for (int fd : open)
      hide(fd, keep);
    return;
  }
  rlimit limit{};
  rlim_t max = 4096;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    max = std::min<rlim_t>(limit.rlim_cur, 1 << 20);
  }
  for (int fd = 3; static_cast<rlim_t>(fd) < max; ++fd)
    hide(fd, keep);
}

void InheritableFdsHidden::hide(int fd, std::span<const int> keep) {
  if (std::find(keep.begin(), keep.end(), fd) != keep.end()) return;
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags == -1 || (flags & FD_CLOEXEC) != 0) return;  // closed, or closed on exec anyway
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  if (::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) return;
  marked_.push_back(Marked{fd, st.st_dev, st.st_ino});
}

InheritableFdsHidden::~InheritableFdsHidden() {
  for (const Marked& m : marked_) {
    struct stat st {};
    if (::fstat(m.fd, &st) != 0 || st.st_dev != m.dev || st.st_ino != m.ino) continue;
    const int flags = ::fcntl(m.fd, F_GETFD);
    if (flags != -1) (void)::fcntl(m.fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
}

}  // namespace asyncuv::detail
