// SubprocessChild for a child started with fork/exec in a process group (Popen's
// process_group; lib/process_group_spawn.cpp starts it). libuv does not know this child, so it
// is watched here: a uv_signal_t on SIGCHLD, armed before the fork as uv_spawn arms its own
// child watcher (so no exit can go unnoticed), and a non-blocking waitpid() for this pid alone
// on every SIGCHLD. libuv's watcher waits only for its own pids and asyncuv's
// add_signal_handler(SIGCHLD) has a uv_signal_t of its own: all of them coexist.
// See include/asyncuv/detail/subprocess_child.hpp.
#include <errno.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <utility>

#include "asyncuv/detail/subprocess_child.hpp"
#include "asyncuv/detail/uv_handle.hpp"
#include "asyncuv/log.hpp"
#include "process_group_spawn.hpp"

namespace asyncuv::detail {

namespace {

/// A child started by fork_exec_in_process_group(), reaped on SIGCHLD.
class ProcessGroupChild final : public SubprocessChild {
 public:
  /// Reports the exit to `on_exit`; watch() then set_pid() make it live.
  explicit ProcessGroupChild(ExitCallback on_exit) : on_exit_(std::move(on_exit)) {}

  /// The SIGCHLD watcher closes through uv_close (UvHandle); the child is not killed.
  ~ProcessGroupChild() override = default;

  /// Starts the SIGCHLD watcher. Returns 0 or a libuv error code.
  int watch(uv_loop_t* loop) {
    int rc = watcher_.init(uv_signal_init, loop, this);
    if (rc != 0) return rc;
    rc = uv_signal_start(watcher_.get(), &ProcessGroupChild::on_sigchld, SIGCHLD);
    if (rc != 0) watcher_.close();
    return rc;
  }

  /// The child's pid, once it has exec'd.
  void set_pid(pid_t pid) noexcept { pid_ = pid; }

  /// The child's pid.
  int pid() const noexcept override { return pid_; }

  /// kill(2) on the pid while the child is not reaped; afterwards UV_ESRCH (the pid may
  /// already be another process's).
  int kill(int sig) noexcept override {
    if (reaped_) return UV_ESRCH;
    return ::kill(pid_, sig) == 0 ? 0 : -errno;
  }

 private:
  /// The watcher's callback: some child changed state; this one may have exited.
  static void on_sigchld(uv_signal_t* handle, int /*signum*/) {
    if (auto* self = static_cast<ProcessGroupChild*>(handle->data)) self->try_reap();
  }

  /// waitpid(pid, WNOHANG): if the child has exited, stops watching and reports the exit.
  /// The owner's callback may destroy this object, so it is moved out and called last.
  void try_reap() {
    if (reaped_ || pid_ <= 0) return;
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, WNOHANG);
    } while (r == -1 && errno == EINTR);
    if (r == 0) return;  // still running: the signal was for another child
    int64_t exit_status = 0;
    int term_signal = 0;
    if (r == pid_) {
      if (WIFEXITED(status)) exit_status = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) term_signal = WTERMSIG(status);
    } else {
      // ECHILD: the program reaped it itself (a waitpid(-1)); asyncio's child watchers
      // report 255 then.
      logger()->warn("Unknown child process pid {}, will report returncode 255", pid_);
      exit_status = 255;
    }
    reaped_ = true;
    watcher_.close();
    ExitCallback callback = std::move(on_exit_);
    if (callback) callback(exit_status, term_signal);
  }

  UvHandle<uv_signal_t> watcher_;
  pid_t pid_ = 0;
  bool reaped_ = false;
  ExitCallback on_exit_;
};

}  // namespace

int spawn_in_process_group(uv_loop_t* loop, const uv_process_options_t& options, pid_t pgid,
                           SubprocessChild::ExitCallback on_exit,
                           std::unique_ptr<SubprocessChild>& out) {
  auto child = std::make_unique<ProcessGroupChild>(std::move(on_exit));
  int rc = child->watch(loop);
  if (rc != 0) return rc;
  const pid_t pid = fork_exec_in_process_group(loop, options, pgid);
  if (pid < 0) return pid;  // the failed child is reaped; the watcher closes with `child`
  child->set_pid(pid);
  out = std::move(child);
  return 0;
}

}  // namespace asyncuv::detail
