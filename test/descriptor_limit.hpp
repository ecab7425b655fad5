// Test support: a process short of descriptors. Used by the EMFILE tests of the server
// (test_server_emfile.cpp, test_fault_emfile.cpp).
#pragma once

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <asyncuv/exception_context.hpp>
#include <asyncuv/exceptions.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include "stream_test_support.hpp"

namespace test_support {

/// Lowers RLIMIT_NOFILE and fills every free descriptor below it but `spare`, so that once
/// `spare` more are open the next accept() fails with EMFILE. Restores the limit and closes the
/// fillers when destroyed (or earlier, with release()): an RAII guard, so that a failed check
/// cannot leave the rest of the suite without descriptors.
///
/// While the descriptors are exhausted, only code paths that already ran in the process may
/// run: UBSan's vptr check needs a pipe to validate a type it meets for the first time, and
/// reports a false "invalid vptr" without one. So nothing here asserts until release(), the
/// exception handlers release first thing, and warm_up() runs the error path's types first.
class DescriptorsExhausted {
 public:
  explicit DescriptorsExhausted(int spare = 0) {
    ok_ = ::getrlimit(RLIMIT_NOFILE, &saved_) == 0 && exhaust(spare);
  }
  ~DescriptorsExhausted() { release(); }
  DescriptorsExhausted(const DescriptorsExhausted&) = delete;
  DescriptorsExhausted& operator=(const DescriptorsExhausted&) = delete;

  /// True if the limit went down and every descriptor below it was taken (check after
  /// release()).
  bool ok() const noexcept { return ok_; }

  /// Gives the descriptors back and restores the limit.
  void release() noexcept {
    for (int fd : fillers_)
      ::close(fd);
    fillers_.clear();
    if (lowered_) {
      ::setrlimit(RLIMIT_NOFILE, &saved_);
      lowered_ = false;
    }
  }

  /// Runs what the accept error path runs (an OSError described in an exception context),
  /// before the descriptors run out.
  static void warm_up() {
    asyncuv::ExceptionContext context("warm-up", asyncuv::make_os_error(EMFILE));
    context.set("socket", 0, "warm-up");
    asyncuv::ExceptionContext copy = context;
    CHECK(stream_test::holds<asyncuv::OSError>(copy.exception()));
  }

 private:
  bool exhaust(int spare) {
    // The highest descriptor in use, counted before the limit goes down (reading
    // /proc/self/fd needs a descriptor of its own).
    int highest = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return false;
    const int own = ::dirfd(dir);
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      int fd = std::atoi(entry->d_name);
      if (fd != own) highest = std::max(highest, fd);
    }
    ::closedir(dir);
    fillers_.reserve(highest + 8);  // no allocation needs a descriptor, but keep it simple
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest + 1 + 4 + spare);
    if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) return false;
    lowered_ = true;
    for (;;) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
    if (errno != EMFILE || fillers_.size() < static_cast<std::size_t>(4 + spare)) return false;
    for (int i = 0; i < spare; ++i) {  // the last ones opened: the highest numbers
      ::close(fillers_.back());
      fillers_.pop_back();
    }
    return true;
  }

  rlimit saved_{};
  bool lowered_ = false;
  bool ok_ = false;
  std::vector<int> fillers_;
};

}  // namespace test_support
