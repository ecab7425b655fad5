// Where a child's standard streams go (Stdio: subprocess.PIPE, DEVNULL, STDOUT, an fd, or
// inherited) and subprocess.Popen's other options (SubprocessOptions), for
// loop.subprocess_exec / subprocess_shell and create_subprocess_exec / create_subprocess_shell.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace asyncuv {

/// One of the child's standard streams (fd 0, 1 or 2): what subprocess.Popen's stdin, stdout
/// and stderr arguments take.
class Stdio {
 public:
  enum class Kind {
    pipe,       ///< subprocess.PIPE: a pipe to the parent (a transport / a stream)
    devnull,    ///< subprocess.DEVNULL: /dev/null
    to_stdout,  ///< subprocess.STDOUT (stderr only): wherever the child's stdout goes
    fd,         ///< an open descriptor of the parent, duplicated into the child
    inherit,    ///< None: the parent's own stream
  };

  /// A pipe to the parent (subprocess.PIPE).
  static Stdio pipe() noexcept { return Stdio(Kind::pipe, -1); }
  /// /dev/null (subprocess.DEVNULL).
  static Stdio devnull() noexcept { return Stdio(Kind::devnull, -1); }
  /// The same as the child's stdout (subprocess.STDOUT); only valid for stderr.
  static Stdio to_stdout() noexcept { return Stdio(Kind::to_stdout, -1); }
  /// The parent's descriptor `fd` (which stays the parent's: it is not closed).
  static Stdio fd(int fd) noexcept { return Stdio(Kind::fd, fd); }
  /// The parent's own stdin / stdout / stderr (Popen's None).
  static Stdio inherit() noexcept { return Stdio(Kind::inherit, -1); }

  /// Which kind of stream this is.
  Kind kind() const noexcept { return kind_; }
  /// The descriptor of a Stdio::fd(), else -1.
  int fileno() const noexcept { return fd_; }

  friend bool operator==(const Stdio&, const Stdio&) = default;

 private:
  Stdio(Kind kind, int fd) noexcept : kind_(kind), fd_(fd) {}
  Kind kind_;
  int fd_;
};

/// subprocess.Popen's options beyond the standard streams.
struct SubprocessOptions {
  /// The child's working directory (default: the parent's).
  std::optional<std::string> cwd;
  /// The child's whole environment (Popen's env); empty: the parent's environment.
  std::optional<std::map<std::string, std::string>> env;
  /// Variables added to (or replaced in) the environment above, whichever it is.
  std::map<std::string, std::string> extend_env;
  /// The program to run instead of argv[0], which the child still sees as argv[0]
  /// (Popen's executable). For subprocess_shell: the shell (default /bin/sh).
  std::optional<std::string> executable;
  /// Descriptors of the parent that the child gets under the same numbers (Popen's
  /// pass_fds), even if they are close-on-exec.
  std::vector<int> pass_fds;
  /// Popen's close_fds (default true): the child gets only 0, 1, 2 and pass_fds; every other
  /// descriptor of the parent is closed in the child, even one opened without O_CLOEXEC (the
  /// parent marks those close-on-exec for the moment of the spawn and restores them after).
  /// false: descriptors without FD_CLOEXEC are inherited, as plain fork/exec does.
  bool close_fds = true;
  /// Runs the child in a new session (setsid(), Popen's start_new_session).
  bool start_new_session = false;
  /// The user id the child runs as (setuid; needs the privilege: PermissionError otherwise).
  std::optional<uid_t> uid;
  /// The group id the child runs as (setgid; needs the privilege).
  std::optional<gid_t> gid;
  /// The process group the child joins before exec (Popen's process_group, setpgid(0, N)):
  /// 0 makes the child the leader of a new group whose id is its pid; N > 0 puts it in the
  /// existing group N of the same session (PermissionError otherwise). Negative: ValueError.
  /// With start_new_session the child leads its session, and a session leader cannot change
  /// its group: PermissionError, as in Python. Unset: the parent's group.
  ///
  /// uv_spawn has no such option (and a parent cannot setpgid() a child that has exec'd), so
  /// such a child is started with asyncuv's own fork/exec, which honours every other option the
  /// same way; its exit is watched through SIGCHLD, next to libuv's watcher and to an
  /// add_signal_handler(SIGCHLD).
  std::optional<pid_t> process_group;
};

}  // namespace asyncuv
