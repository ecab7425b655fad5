// fork/exec with setpgid() in the child, done as libuv's uv_spawn does it
// (src/unix/process.c): everything is prepared before fork(), the child makes only
// async-signal-safe calls, and a failure of any step in the child, or of exec, is written as
// an errno to a close-on-exec pipe whose end-of-file tells the parent that exec succeeded.
// See lib/process_group_spawn.hpp.
#include "process_group_spawn.hpp"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

extern char** environ;

namespace asyncuv::detail {

namespace {

/// Everything the child needs, prepared before fork() so that the child allocates nothing.
struct ChildPlan {
  const char* file = nullptr;  // searched in PATH (execvp)
  char** args = nullptr;
  char** env = nullptr;  // nullptr: the parent's environment
  const char* cwd = nullptr;
  int* sources = nullptr;  // sources[fd]: the descriptor that becomes the child's fd, or -1
  int count = 0;           // entries of sources (at least 3)
  bool new_session = false;
  pid_t pgid = 0;
  bool set_uid = false;
  uid_t uid = 0;
  bool set_gid = false;
  gid_t gid = 0;
  int error_fd = -1;  // write end of the close-on-exec error pipe
};

/// Descriptors the parent opened for one spawn, closed when it returns.
struct ParentFds {
  std::vector<int> fds;
  ParentFds() = default;
  ParentFds(const ParentFds&) = delete;
  ParentFds& operator=(const ParentFds&) = delete;
  ~ParentFds() {
    for (int fd : fds)
      ::close(fd);
  }
};

/// In the child: writes errno `err` to the error pipe and ends the child.
[[noreturn]] void fail_in_child(int error_fd, int err) noexcept {
  ssize_t n;
  do {
    n = ::write(error_fd, &err, sizeof err);
  } while (n == -1 && errno == EINTR);
  ::_exit(127);
}

/// In the child: makes sources[fd] the child's descriptor fd for every fd that has one, as
/// libuv's uv__process_child_init. Returns 0 or an errno.
int set_up_descriptors(ChildPlan& plan) noexcept {
  // A source numbered below its target would be overwritten by an earlier dup2() (stdout and
  // stderr swapped, say): such sources are first copied above every target.
  for (int fd = 0; fd < plan.count; ++fd) {
    const int source = plan.sources[fd];
    if (source < 0 || source >= fd) continue;
    const int moved = ::fcntl(source, F_DUPFD_CLOEXEC, plan.count);
    if (moved == -1) return errno;
    plan.sources[fd] = moved;  // the copy is closed by exec
  }
  for (int fd = 0; fd < plan.count; ++fd) {
    const int source = plan.sources[fd];
    if (source < 0) continue;
    if (source == fd) {
      // Already in place (pass_fds, or an inherited stdio): it must survive exec.
      const int flags = ::fcntl(fd, F_GETFD);
      if (flags == -1) return errno;
      if ((flags & FD_CLOEXEC) != 0 && ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == -1) {
        return errno;
      }
    } else if (::dup2(source, fd) == -1) {  // dup2's copy is not close-on-exec
      return errno;
    }
    if (fd <= 2) {
      // Programs expect blocking standard streams (libuv clears O_NONBLOCK too).
      const int status = ::fcntl(fd, F_GETFL);
      if (status != -1 && (status & O_NONBLOCK) != 0) {
        (void)::fcntl(fd, F_SETFL, status & ~O_NONBLOCK);
      }
    }
  }
  return 0;
}

/// In the child: restores the default disposition of the standard signals and an empty
/// signal mask, as libuv does (the realtime signals are glibc's). Returns 0 or an errno.
int reset_signals() noexcept {
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 32; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;  // cannot be changed
    if (::sigaction(sig, &default_action, nullptr) != 0) return errno;
  }
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) return errno;
  return 0;
}

/// The child's side of the fork: async-signal-safe calls only, in subprocess.Popen's order
/// (setsid, setpgid, descriptors, cwd, groups, gid, uid), then exec. Never returns: exec
/// replaces the program, or the errno of the failed step goes to the parent.
[[noreturn]] void run_child(ChildPlan& plan) noexcept {
  // The error pipe must not be one of the descriptors about to be replaced (0-2, when the
  // parent runs with a standard stream closed).
  if (plan.error_fd < plan.count) {
    const int moved = ::fcntl(plan.error_fd, F_DUPFD_CLOEXEC, plan.count);
    if (moved == -1) fail_in_child(plan.error_fd, errno);
    plan.error_fd = moved;
  }
  if (plan.new_session && ::setsid() == -1) fail_in_child(plan.error_fd, errno);
  if (::setpgid(0, plan.pgid) != 0) fail_in_child(plan.error_fd, errno);
  if (int err = set_up_descriptors(plan); err != 0) fail_in_child(plan.error_fd, err);
  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) fail_in_child(plan.error_fd, errno);
  if (plan.set_uid || plan.set_gid) {
    // Drops the supplementary groups when root gives its privileges away; it fails without
    // the privilege, which the setgid/setuid below then report (as libuv).
    const int saved = errno;
    (void)::setgroups(0, nullptr);
    errno = saved;
  }
  if (plan.set_gid && ::setgid(plan.gid) != 0) fail_in_child(plan.error_fd, errno);
  if (plan.set_uid && ::setuid(plan.uid) != 0) fail_in_child(plan.error_fd, errno);
  if (plan.env != nullptr) environ = plan.env;  // execvp searches the child's PATH, as libuv
  if (int err = reset_signals(); err != 0) fail_in_child(plan.error_fd, err);
  ::execvp(plan.file, plan.args);
  fail_in_child(plan.error_fd, errno);
}

/// Opens /dev/null (close-on-exec) for a UV_IGNORE standard stream: read-only for stdin,
/// read-write otherwise, as libuv. Returns the descriptor or -errno.
int open_devnull(int fd, ParentFds& opened) {
  const int devnull = ::open("/dev/null", (fd == 0 ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (devnull == -1) return -errno;
  opened.fds.push_back(devnull);
  return devnull;
}

/// The source descriptor of every child fd (see ChildPlan::sources) from the stdio
/// containers. Returns 0 or a libuv error code.
int stdio_sources(const uv_process_options_t& options, std::vector<int>& sources,
                  ParentFds& opened) {
  for (int fd = 0; fd < static_cast<int>(sources.size()); ++fd) {
    const uv_stdio_flags flags = fd < options.stdio_count ? options.stdio[fd].flags : UV_IGNORE;
    if ((flags & UV_INHERIT_FD) != 0) {
      sources[fd] = options.stdio[fd].data.fd;
    } else if ((flags & UV_INHERIT_STREAM) != 0) {
      uv_os_fd_t stream_fd = -1;
      int rc = uv_fileno(reinterpret_cast<const uv_handle_t*>(options.stdio[fd].data.stream),
                         &stream_fd);
      if (rc != 0) return rc;
      sources[fd] = stream_fd;
    } else if ((flags & UV_CREATE_PIPE) != 0) {
      return UV_ENOTSUP;  // asyncuv makes its pipes itself
    } else if (fd <= 2) {
      sources[fd] = open_devnull(fd, opened);
      if (sources[fd] < 0) return sources[fd];
    }
    if ((flags & (UV_INHERIT_FD | UV_INHERIT_STREAM)) != 0 && sources[fd] < 0) return UV_EINVAL;
  }
  return 0;
}

}  // namespace

pid_t fork_exec_in_process_group(uv_loop_t* loop, const uv_process_options_t& options, pid_t pgid) {
  ParentFds opened;
  std::vector<int> sources(static_cast<std::size_t>(std::max(options.stdio_count, 3)), -1);
  if (int rc = stdio_sources(options, sources, opened); rc != 0) return rc;

  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) return -errno;
  opened.fds.push_back(error_pipe[0]);

  ChildPlan plan;
  plan.file = options.file;
  plan.args = options.args;
  plan.env = options.env;
  plan.cwd = options.cwd;
  plan.sources = sources.data();
  plan.count = static_cast<int>(sources.size());
  plan.new_session = (options.flags & UV_PROCESS_DETACHED) != 0;
  plan.pgid = pgid;
  plan.set_uid = (options.flags & UV_PROCESS_SETUID) != 0;
  plan.uid = options.uid;
  plan.set_gid = (options.flags & UV_PROCESS_SETGID) != 0;
  plan.gid = options.gid;
  plan.error_fd = error_pipe[1];

  // As uv_spawn: libuv's threads open descriptors that cannot be made close-on-exec
  // atomically under this lock's read side, so none of them leaks into the child.
  uv_rwlock_wrlock(&loop->cloexec_lock);
  const pid_t pid = ::fork();
  if (pid == 0) run_child(plan);
  const int fork_errno = errno;
  uv_rwlock_wrunlock(&loop->cloexec_lock);
  ::close(error_pipe[1]);
  if (pid == -1) return -fork_errno;

  // End of file: exec succeeded (the pipe was closed on exec). An errno: the child failed and
  // exits at once.
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_pipe[0], &child_errno, sizeof child_errno);
  } while (n == -1 && errno == EINTR);
  if (n == 0) return pid;
  if (n != static_cast<ssize_t>(sizeof child_errno)) {
    // The pipe failed us: the child's state is unknown, so it is not left running.
    child_errno = n == -1 ? errno : EIO;
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) == -1 && errno == EINTR) {
  }
  return -child_errno;
}

}  // namespace asyncuv::detail
