// Popen's close_fds for asyncuv's spawns: the child gets only 0, 1, 2 and pass_fds; every other
// descriptor is closed on exec, whether or not it has FD_CLOEXEC (semantics 69).
//
// uv_spawn offers no hook in the child, so the parent does it around the spawn: every
// inheritable descriptor (no FD_CLOEXEC) except those to keep is marked close-on-exec for the
// duration of the fork/exec, then given its flag back. The same guard serves asyncuv's own
// fork/exec (process_group), so both paths behave the same. While the guard is up, another
// thread of the program that forks and execs at that moment does not pass those descriptors on
// either; a descriptor closed and reopened under the same number meanwhile is recognised (by
// device and inode) and left alone.
#pragma once

#include <sys/types.h>

#include <span>
#include <vector>

namespace asyncuv::detail {

class InheritableFdsHidden {
 public:
  /// Marks every inheritable descriptor >= 3 not in `keep` close-on-exec.
  explicit InheritableFdsHidden(std::span<const int> keep);
  /// Clears the flag again on the descriptors it set it on.
  ~InheritableFdsHidden();
  InheritableFdsHidden(const InheritableFdsHidden&) = delete;
  InheritableFdsHidden& operator=(const InheritableFdsHidden&) = delete;

 private:
  struct Marked {
    int fd;
    dev_t dev;
    ino_t ino;
  };
  void hide(int fd, std::span<const int> keep);
  std::vector<Marked> marked_;
};

}  // namespace asyncuv::detail
