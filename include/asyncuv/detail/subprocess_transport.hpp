// The subprocess transport: a child started with uv_spawn (or, for Popen's process_group, with
// asyncuv's own fork/exec: detail::SubprocessChild), its stdio pipes wrapped in pipe
// transports (detail::PipeTransport), asyncio's BaseSubprocessTransport /
// _UnixSubprocessTransport (base_subprocess.py, unix_events.py).
//
// Entry point: detail::spawn_subprocess() (below); loop.subprocess_exec / subprocess_shell
// (<asyncuv/subprocess.hpp>) are built on it.
//
// How it maps onto libuv and asyncio:
// - The pipes are made here, as asyncio's Popen does: a socket pair for stdin (so that the
//   parent notices the child closing its end, asyncio's reader trick), pipes for stdout and
//   stderr; the child's ends are handed to uv_spawn as UV_INHERIT_FD (which also makes
//   stderr=STDOUT share stdout's pipe) and closed in the parent once the child runs. DEVNULL
//   is UV_IGNORE (libuv opens /dev/null), an fd or inherit is UV_INHERIT_FD, pass_fds are
//   extra UV_INHERIT_FD entries under their own numbers.
// - Each parent end becomes a pipe transport whose protocol forwards to the transport:
//   data -> pipe_data_received(fd, data), connection_lost -> pipe_connection_lost(fd, exc),
//   pause/resume_writing of stdin -> the SubprocessProtocol's.
// - Every SubprocessProtocol callback is scheduled with call_soon (asyncio's _call), so its
//   exceptions reach the exception handler as any callback's. Order: connection_made (after
//   the pipes' own connection_made), the pipes' data as it comes, pipe_connection_lost per
//   pipe and process_exited in whichever order they happen, and connection_lost(nullptr)
//   last, once the child exited and every pipe is closed.
// - process_group: uv_spawn cannot call setpgid() in the child, so such a child is started
//   by fork/exec done as libuv does it, with the same stdio containers and options
//   (lib/process_group_spawn.cpp); every other child goes through uv_spawn.
// - The exit: libuv reaps a uv_spawn child (its SIGCHLD watcher, which coexists with
//   add_signal_handler(SIGCHLD)); a process-group child is reaped by a SIGCHLD watcher of its
//   own and waitpid() for its pid. Either calls the exit callback: returncode = -signal if a
//   signal killed it, else the exit status. The exit is taken into account two loop
//   iterations later (get_returncode(), process_exited()), after the pipes had a poll to read
//   what the child wrote before exiting, so that its output comes first, as in asyncio.
// - close(): closes the pipes and kills (SIGKILL) a child still running; the exit then
//   follows as usual. Closing the loop with a child still running kills it and reaps it (a
//   non-blocking waitpid, retried for up to two seconds) so that no zombie is left, calling no
//   protocol method.
//
// Lifetime: the transport owns itself (and its protocol) until connection_lost() ran, so the
// user may drop every reference; the process handle lives until the exit was reported.
#pragma once

#include <uv.h>

#include <array>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/detail/pipe_transport.hpp"
#include "asyncuv/detail/subprocess_child.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/protocols.hpp"
#include "asyncuv/subprocess_options.hpp"
#include "asyncuv/transports.hpp"

namespace asyncuv::detail {

class UnixSubprocessTransport;

/// Starts `argv` (with /bin/sh -c when `shell`, argv then holding the one command) and returns
/// its transport. connection_made(transport) is scheduled once the pipe transports are set
/// up; `waiter` (if given) is completed right after it ran. Throws ValueError for bad
/// arguments (empty argv, an embedded NUL, STDOUT for stdin or stdout, a negative fd),
/// RuntimeError("Event loop is closed"), a negative process_group (ValueError), and the
/// OSError the spawn reports (uv_spawn's, or with process_group the errno of the failed step in
/// the child), with the program's name as Python words it:
/// FileNotFoundError("[Errno 2] No such file or directory: 'prog'").
/// Every descriptor it opened is closed on failure.
std::shared_ptr<UnixSubprocessTransport> spawn_subprocess(
    EventLoop& loop, std::vector<std::string> argv, bool shell, Stdio stdin_, Stdio stdout_,
    Stdio stderr_, const SubprocessOptions& options, std::shared_ptr<SubprocessProtocol> protocol,
    Future<void> waiter = {});

/// The transport (see the file comment); only spawn_subprocess() creates it.
class UnixSubprocessTransport final : public SubprocessTransport,
                                      public std::enable_shared_from_this<UnixSubprocessTransport> {
  struct Private {};

 public:
  /// Use spawn_subprocess().
  UnixSubprocessTransport(Private, EventLoop& loop);
  ~UnixSubprocessTransport() override;
  UnixSubprocessTransport(const UnixSubprocessTransport&) = delete;
  UnixSubprocessTransport& operator=(const UnixSubprocessTransport&) = delete;

  // ---- BaseTransport ----
  /// Closes the pipes; kills the child (SIGKILL) if it still runs. Idempotent.
  void close() override;
  bool is_closing() const override { return closed_; }
  /// Replaces the protocol (a SubprocessProtocol; TypeError otherwise).
  void set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
  std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
  EventLoop& get_loop() const override { return loop_; }

  // ---- SubprocessTransport ----
  int get_pid() const override { return pid_; }
  std::optional<int> get_returncode() const override { return returncode_; }
  std::shared_ptr<BaseTransport> get_pipe_transport(int fd) const override;
  /// Sends `sig`. After connection_lost(): ProcessLookupError. Between the exit and then it
  /// does nothing (the child is gone). An invalid signal: OSError (EINVAL).
  void send_signal(int sig) override;
  void terminate() override;
  void kill() override;

  /// A future of the return code, completed once connection_lost() ran (asyncio _wait).
  Future<int> wait_finished();
  /// asyncio-style text: "<_UnixSubprocessTransport pid=42 running stdin=<...>>".
  std::string repr() const;

  /// Intrusive list of the loop's unfinished subprocess transports.
  UnixSubprocessTransport* prev_open = nullptr;
  UnixSubprocessTransport* next_open = nullptr;

 private:
  friend std::shared_ptr<UnixSubprocessTransport> spawn_subprocess(
      EventLoop&, std::vector<std::string>, bool, Stdio, Stdio, Stdio, const SubprocessOptions&,
      std::shared_ptr<SubprocessProtocol>, Future<void>);
  friend class Subprocesses;
  friend class SubprocessPipeProtocol;

  std::any extra_info(std::string_view name) const override;

  /// Wraps the parent's end `pipe_fd` of the child's `fd` in a pipe transport.
  void connect_pipe(int fd, int pipe_fd);
  /// Schedules connection_made, then the calls queued meanwhile, then completes `waiter`
  /// (asyncio's _connect_pipes tail).
  void start(Future<void> waiter);

  // asyncio's _call, _pipe_data_received, _pipe_connection_lost, _process_exited,
  // _try_finish and _call_connection_lost.
  template <class Fn>
  void call(Fn fn);
  void pipe_data_received(int fd, std::string_view data);
  void pipe_connection_lost(int fd, std::exception_ptr exc);
  void pipe_pause_writing();
  void pipe_resume_writing();
  /// The child's exit callback (SubprocessChild::ExitCallback).
  void child_exited(int64_t exit_status, int term_signal);
  void process_exited(int returncode);
  void try_finish();
  void call_connection_lost();
  /// Stops watching the child (destroys child_, which closes its uv handle).
  void close_child() noexcept;
  /// The loop is closing: kills and reaps a running child, closes the handle, drops the
  /// protocol without calling it.
  void loop_closed() noexcept;

  struct Pipe {
    bool wanted = false;  // the stream is a PIPE
    std::shared_ptr<PipeTransport> transport;
    bool disconnected = false;
  };

  EventLoop& loop_;
  std::unique_ptr<SubprocessChild> child_;  // until the exit was reported
  int pid_ = 0;
  std::optional<int> returncode_;
  bool closed_ = false;
  bool finished_ = false;   // connection_lost scheduled
  bool proc_gone_ = false;  // connection_lost ran (asyncio's _proc = None)
  bool started_ = false;    // connection_made scheduled; calls go straight to call_soon
  std::vector<std::function<void()>> pending_calls_;  // asyncio's _pending_calls
  std::array<Pipe, 3> pipes_;
  std::shared_ptr<SubprocessProtocol> protocol_;
  std::vector<Future<int>> exit_waiters_;
  std::shared_ptr<UnixSubprocessTransport> self_;  // until connection_lost ran
};

/// The loop's unfinished subprocess transports, so that loop.close() can kill and reap their
/// children.
class Subprocesses final : public LoopService {
 public:
  explicit Subprocesses(EventLoop&) {}
  ~Subprocesses() override = default;

  /// Kills and reaps every running child, without calling any protocol.
  void close() noexcept override;

  void add(UnixSubprocessTransport* t) noexcept;
  void remove(UnixSubprocessTransport* t) noexcept;
  /// How many subprocess transports are unfinished.
  std::size_t size() const noexcept { return count_; }

 private:
  UnixSubprocessTransport* head_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace asyncuv::detail
