// Starting a child (asyncio's _UnixSubprocessTransport._start and subprocess.Popen's argument
// handling): the argument checks, the stdio pipes, the environment, pass_fds, and the error
// Python would raise. The child starts with uv_spawn, or with process_group through
// spawn_in_process_group() (same options). See include/asyncuv/detail/subprocess_transport.hpp.
#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/detail/subprocess_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "close_fds.hpp"

extern char** environ;

namespace asyncuv::detail {

namespace {

/// Descriptors opened for one spawn; whatever is still here at the end is closed.
struct OwnedFds {
  std::vector<int> fds;
  OwnedFds() = default;
  OwnedFds(const OwnedFds&) = delete;
  OwnedFds& operator=(const OwnedFds&) = delete;
  ~OwnedFds() {
    for (int fd : fds)
      ::close(fd);
  }
  int keep(int fd) {
    fds.push_back(fd);
    return fd;
  }
  /// Stops owning `fd` (its new owner closes it).
  void release(int fd) { fds.erase(std::remove(fds.begin(), fds.end(), fd), fds.end()); }
};

void check_no_nul(const std::string& s) {
  if (s.find('\0') != std::string::npos) throw ValueError("embedded null byte");
}

/// The child's environment as "NAME=value" strings, or nothing to inherit the parent's.
std::optional<std::vector<std::string>> child_environment(const SubprocessOptions& o) {
  if (!o.env && o.extend_env.empty()) return std::nullopt;
  std::map<std::string, std::string> vars;
  if (o.env) {
    vars = *o.env;
  } else {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string entry(*e);
      std::size_t eq = entry.find('=');
      if (eq == std::string::npos) continue;
      vars[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
  }
  for (const auto& [name, value] : o.extend_env)
    vars[name] = value;
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [name, value] : vars) {
    check_no_nul(name);
    check_no_nul(value);
    if (name.empty() || name.find('=') != std::string::npos) {
      throw ValueError("illegal environment variable name");
    }
    out.push_back(name + "=" + value);
  }
  return out;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// The error Python's Popen raises: an exec failure names the program (or the cwd that could
/// not be entered): "[Errno 2] No such file or directory: 'prog'".
[[noreturn]] void throw_spawn_error(int uv_code, const std::string& program,
                                    const SubprocessOptions& o) {
  const int err = uv_code_to_errno(uv_code);
  if (err == ENOENT || err == EACCES || err == ENOTDIR || err == ENOEXEC || err == EISDIR) {
    std::string filename = program;
    if (o.cwd && !is_directory(*o.cwd)) filename = *o.cwd;
    std::rethrow_exception(
        make_os_error_with_message(err, std::string(std::strerror(err)) + ": '" + filename + "'"));
  }
  throw_os_error(err);
}

/// The parent's end and the child's end of a new stdio pipe for fd `fd` (0: a socket pair,
/// as asyncio uses for stdin; 1 and 2: a pipe). Both are close-on-exec.
std::pair<int, int> make_stdio_pipe(int fd, OwnedFds& owned) {
  int ends[2];
  if (fd == 0) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) throw_os_error(errno);
    owned.keep(ends[0]);
    owned.keep(ends[1]);
    return {ends[0], ends[1]};
  }
  if (::pipe2(ends, O_CLOEXEC) != 0) throw_os_error(errno);
  owned.keep(ends[0]);
  owned.keep(ends[1]);
  return {ends[0], ends[1]};
}

uv_stdio_container_t inherit_fd(int fd) {
  uv_stdio_container_t c{};
  c.flags = UV_INHERIT_FD;
  c.data.fd = fd;
  return c;
}

}  // namespace

std::shared_ptr<UnixSubprocessTransport> spawn_subprocess(
    EventLoop& loop, std::vector<std::string> argv, bool shell, Stdio stdin_, Stdio stdout_,
    Stdio stderr_, const SubprocessOptions& options, std::shared_ptr<SubprocessProtocol> protocol,
    Future<void> waiter) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  if (!protocol) throw TypeError("a SubprocessProtocol was expected, got nullptr");
  if (argv.empty()) throw ValueError("the program arguments must not be empty");
  for (const std::string& arg : argv)
    check_no_nul(arg);
  if (options.cwd) check_no_nul(*options.cwd);
  if (options.executable) check_no_nul(*options.executable);
  const std::array<Stdio, 3> stdio{stdin_, stdout_, stderr_};
  for (int fd = 0; fd < 3; ++fd) {
    if (stdio[fd].kind() == Stdio::Kind::to_stdout && fd != 2) {
      throw ValueError("STDOUT can only be used for stderr");
    }
    if (stdio[fd].kind() == Stdio::Kind::fd && stdio[fd].fileno() < 0) {
      throw ValueError("Invalid file descriptor: " + std::to_string(stdio[fd].fileno()));
    }
  }
  for (int fd : options.pass_fds) {
    if (fd < 0) throw ValueError("bad value(s) in fds_to_keep");
  }
  if (options.process_group && *options.process_group < 0) {
    throw ValueError("process_group must not be negative");
  }

  // Program and arguments, as Popen: shell runs [executable or /bin/sh, "-c", cmd]; exec
  // runs `executable` (default argv[0]) with argv unchanged.
  std::string program;
  if (shell) {
    std::string shell_path = options.executable.value_or("/bin/sh");
    argv = {shell_path, "-c", argv.front()};
    program = shell_path;
  } else {
    program = options.executable.value_or(argv.front());
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (std::string& arg : argv)
    args.push_back(arg.data());
  args.push_back(nullptr);

  std::optional<std::vector<std::string>> env = child_environment(options);
  std::vector<char*> envp;
  if (env) {
    for (std::string& entry : *env)
      envp.push_back(entry.data());
    envp.push_back(nullptr);
  }

  // The standard streams, then pass_fds under their own numbers.
  Subprocesses& live = loop.service<Subprocesses>();
  OwnedFds owned;
  std::array<int, 3> parent_fds{-1, -1, -1};
  std::array<int, 3> child_fds{-1, -1, -1};
  int max_fd = 2;
  for (int fd : options.pass_fds)
    max_fd = std::max(max_fd, fd);
  std::vector<uv_stdio_container_t> containers(static_cast<std::size_t>(max_fd) + 1);
  for (auto& c : containers)
    c.flags = UV_IGNORE;
  for (int fd = 0; fd < 3; ++fd) {
    switch (stdio[fd].kind()) {
      case Stdio::Kind::pipe: {
        auto [parent, child] = make_stdio_pipe(fd, owned);
        parent_fds[fd] = parent;
        child_fds[fd] = child;
        containers[fd] = inherit_fd(child);
        break;
      }
      case Stdio::Kind::devnull:
        containers[fd].flags = UV_IGNORE;  // libuv opens /dev/null for fds 0-2
        break;
      case Stdio::Kind::to_stdout:
        containers[fd] = containers[1];
        break;
      case Stdio::Kind::fd:
        containers[fd] = inherit_fd(stdio[fd].fileno());
        break;
      case Stdio::Kind::inherit:
        containers[fd] = inherit_fd(fd);
        break;
    }
  }
  for (int fd : options.pass_fds) {
    if (fd > 2) containers[static_cast<std::size_t>(fd)] = inherit_fd(fd);
  }

  uv_process_options_t uv_options{};
  uv_options.file = program.c_str();
  uv_options.args = args.data();
  uv_options.env = env ? envp.data() : nullptr;
  uv_options.cwd = options.cwd ? options.cwd->c_str() : nullptr;
  uv_options.stdio_count = static_cast<int>(containers.size());
  uv_options.stdio = containers.data();
  if (options.start_new_session) uv_options.flags |= UV_PROCESS_DETACHED;
  if (options.uid) {
    uv_options.flags |= UV_PROCESS_SETUID;
    uv_options.uid = *options.uid;
  }
  if (options.gid) {
    uv_options.flags |= UV_PROCESS_SETGID;
    uv_options.gid = *options.gid;
  }

  auto t = std::make_shared<UnixSubprocessTransport>(UnixSubprocessTransport::Private{}, loop);
  // The child's object is owned by the transport and destroyed (its callback with it) before
  // the transport is.
  UnixSubprocessTransport* raw = t.get();
  SubprocessChild::ExitCallback on_exit = [raw](int64_t exit_status, int term_signal) {
    raw->child_exited(exit_status, term_signal);
  };
  std::optional<InheritableFdsHidden> close_fds;  // Popen's close_fds: see lib/close_fds.hpp
  if (options.close_fds) close_fds.emplace(options.pass_fds);
  const int rc = options.process_group
                     ? spawn_in_process_group(loop.uv_loop(), uv_options, *options.process_group,
                                              std::move(on_exit), t->child_)
                     : spawn_uv_process(loop.uv_loop(), uv_options, std::move(on_exit), t->child_);
  close_fds.reset();
  if (rc != 0) throw_spawn_error(rc, program, options);
  t->pid_ = t->child_->pid();
  t->protocol_ = std::move(protocol);
  t->self_ = t;
  live.add(t.get());
  for (int fd = 0; fd < 3; ++fd) {
    t->pipes_[fd].wanted = parent_fds[fd] >= 0;
    if (child_fds[fd] >= 0) {
      ::close(child_fds[fd]);  // the child has its copy
      owned.release(child_fds[fd]);
    }
  }
  if (loop.get_debug()) logger()->debug("process '{}' created: pid {}", argv.front(), t->pid_);

  // The pipes become transports; a failure here kills the child (asyncio closes it too).
  try {
    for (int fd = 0; fd < 3; ++fd) {
      if (parent_fds[fd] < 0) continue;
      t->connect_pipe(fd, parent_fds[fd]);
      owned.release(parent_fds[fd]);
    }
  } catch (...) {
    // The protocol never hears of this child (asyncio never flushes its pending calls).
    for (auto& pipe : t->pipes_) {
      if (!pipe.transport) pipe.wanted = false;
    }
    t->protocol_.reset();
    t->started_ = true;
    t->close();
    throw;
  }
  t->start(std::move(waiter));
  return t;
}

}  // namespace asyncuv::detail
