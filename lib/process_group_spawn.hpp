// Starting a child with fork/exec so that it can call setpgid() before exec (Popen's
// process_group), which uv_spawn cannot do. Used by lib/process_group_child.cpp.
#pragma once

#include <sys/types.h>
#include <uv.h>

namespace asyncuv::detail {

/// Forks and execs the child that `options` describes, read as uv_spawn reads them (file
/// searched in PATH, args, env, cwd, stdio containers UV_IGNORE / UV_INHERIT_FD /
/// UV_INHERIT_STREAM, UV_PROCESS_DETACHED, UV_PROCESS_SETUID, UV_PROCESS_SETGID; exit_cb is
/// not used). The child calls setsid() (if detached) then setpgid(0, pgid) before the rest.
/// Returns the pid once the child has exec'd, or a libuv error code (-errno) for a failure of
/// fork, of a step in the child or of exec; a child that failed has been reaped. Every
/// descriptor it opened is closed again.
pid_t fork_exec_in_process_group(uv_loop_t* loop, const uv_process_options_t& options, pid_t pgid);

}  // namespace asyncuv::detail
