// The child process behind a subprocess transport (detail::UnixSubprocessTransport), as one
// small interface with two implementations:
// - libuv's uv_process_t, started with uv_spawn (lib/uv_process_child.cpp): every child
//   without Popen's process_group, the usual path;
// - asyncuv's own fork/exec, which can call setpgid() in the child before exec, watched with
//   a SIGCHLD uv_signal_t and waitpid() for its pid (lib/process_group_child.cpp): the
//   children started with process_group.
// Both take the same uv_process_options_t (program, arguments, environment, cwd, stdio
// containers, UV_PROCESS_DETACHED / SETUID / SETGID), so the caller prepares one description.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace asyncuv::detail {

/// A started child. Destroying the object closes it: it stops watching the child (no exit
/// callback afterwards) and closes its uv handle through uv_close, the handle's memory being
/// freed in the close callback. Destroying it does not kill the child.
class SubprocessChild {
 public:
  /// Called once, on the loop, when the child has exited and was reaped: its exit status and
  /// the signal that terminated it (0 if none). The object may be destroyed inside it.
  using ExitCallback = std::function<void(int64_t exit_status, int term_signal)>;

  SubprocessChild() = default;
  SubprocessChild(const SubprocessChild&) = delete;
  SubprocessChild& operator=(const SubprocessChild&) = delete;
  virtual ~SubprocessChild() = default;

  /// The child's process id.
  virtual int pid() const noexcept = 0;
  /// Sends `sig` to the child: 0, or a libuv error code (UV_ESRCH once it has been reaped,
  /// UV_EINVAL for an invalid signal).
  virtual int kill(int sig) noexcept = 0;
};

/// Starts the child with uv_spawn (options.exit_cb is replaced). Returns 0 with `out` set, or
/// the libuv error code uv_spawn reported (`out` untouched, nothing left open).
int spawn_uv_process(uv_loop_t* loop, uv_process_options_t options,
                     SubprocessChild::ExitCallback on_exit, std::unique_ptr<SubprocessChild>& out);

/// Starts the child with fork/exec, the child calling setpgid(0, pgid) before exec (pgid 0:
/// a new group led by the child), as Popen's process_group. `options` is read as uv_spawn
/// reads it. Returns 0 with `out` set, or a libuv error code (-errno) for a failure of fork,
/// of any step in the child or of exec (`out` untouched, the failed child reaped, nothing
/// left open).
int spawn_in_process_group(uv_loop_t* loop, const uv_process_options_t& options, pid_t pgid,
                           SubprocessChild::ExitCallback on_exit,
                           std::unique_ptr<SubprocessChild>& out);

}  // namespace asyncuv::detail
