// The subprocess transport's behaviour (asyncio's BaseSubprocessTransport): the pipe
// protocols, the order of the SubprocessProtocol callbacks, signals, close(), the exit and
// loop.close() with children still running. Starting the child is in subprocess_spawn.cpp.
// See include/asyncuv/detail/subprocess_transport.hpp.
#include <errno.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <time.h>

#include <typeinfo>
#include <utility>

#include "asyncuv/detail/describe.hpp"
#include "asyncuv/detail/subprocess_transport.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"

namespace asyncuv::detail {

/// The protocol of one stdio pipe: forwards to the subprocess transport (asyncio's
/// WriteSubprocessPipeProto / ReadSubprocessPipeProto).
class SubprocessPipeProtocol final : public Protocol {
 public:
  SubprocessPipeProtocol(std::weak_ptr<UnixSubprocessTransport> proc, int fd)
      : proc_(std::move(proc)), fd_(fd) {}

  void connection_lost(std::exception_ptr exc) override {
    if (auto proc = proc_.lock()) proc->pipe_connection_lost(fd_, exc);
  }
  void data_received(std::string_view data) override {
    if (auto proc = proc_.lock()) proc->pipe_data_received(fd_, data);
  }
  void pause_writing() override {
    if (auto proc = proc_.lock()) proc->pipe_pause_writing();
  }
  void resume_writing() override {
    if (auto proc = proc_.lock()) proc->pipe_resume_writing();
  }

 private:
  std::weak_ptr<UnixSubprocessTransport> proc_;
  int fd_;
};

namespace {

/// Reaps `pid` after SIGKILL without blocking the loop for long: a non-blocking waitpid,
/// retried every millisecond for up to two seconds.
void reap_killed(int pid) noexcept {
  for (int i = 0; i < 2000; ++i) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    if (r == 0) {
      timespec ms{0, 1000000};
      ::nanosleep(&ms, nullptr);
    }
  }
}

}  // namespace

UnixSubprocessTransport::UnixSubprocessTransport(Private, EventLoop& loop) : loop_(loop) {}

UnixSubprocessTransport::~UnixSubprocessTransport() {
  close_child();
}

void UnixSubprocessTransport::connect_pipe(int fd, int pipe_fd) {
  auto protocol = std::make_shared<SubprocessPipeProtocol>(weak_from_this(), fd);
  pipes_[fd].transport =
      make_pipe_transport(loop_, pipe_fd, fd == 0 ? PipeMode::write : PipeMode::read, protocol);
}

void UnixSubprocessTransport::start(Future<void> waiter) {
  auto self = shared_from_this();
  std::shared_ptr<SubprocessProtocol> protocol = protocol_;
  loop_.call_soon([self, protocol] { protocol->connection_made(self); });
  started_ = true;
  for (auto& fn : std::exchange(pending_calls_, {}))
    loop_.call_soon(std::move(fn));
  if (waiter) {
    loop_.call_soon([waiter] {
      if (!waiter.done()) waiter.set_result();
    });
  }
}

void UnixSubprocessTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
  auto typed = std::dynamic_pointer_cast<SubprocessProtocol>(protocol);
  if (!typed) {
    const BaseProtocol* given = protocol.get();  // typeid of a plain pointer: no side effects
    throw TypeError("a SubprocessProtocol was expected, got " +
                    (given ? demangle(typeid(*given).name()) : std::string("nullptr")));
  }
  if (proc_gone_) return;
  protocol_ = std::move(typed);
}

std::shared_ptr<BaseTransport> UnixSubprocessTransport::get_pipe_transport(int fd) const {
  if (fd < 0 || fd > 2) return nullptr;
  return pipes_[static_cast<std::size_t>(fd)].transport;
}

std::any UnixSubprocessTransport::extra_info(std::string_view name) const {
  if (name == "pid") return std::any(pid_);
  return {};
}

std::string UnixSubprocessTransport::repr() const {
  std::string text = "<_UnixSubprocessTransport";
  if (closed_) text += " closed";
  text += " pid=" + std::to_string(pid_);
  text += returncode_ ? " returncode=" + std::to_string(*returncode_) : std::string(" running");
  static const char* const names[] = {"stdin", "stdout", "stderr"};
  for (int fd = 0; fd < 3; ++fd) {
    if (const auto& t = pipes_[static_cast<std::size_t>(fd)].transport) {
      text += std::string(" ") + names[fd] + "=" + t->repr();
    }
  }
  return text + ">";
}

// ---- signals and closing ------------------------------------------------------------------

void UnixSubprocessTransport::send_signal(int sig) {
  // asyncio's _check_proc: the child is forgotten once connection_lost() ran.
  if (proc_gone_) throw ProcessLookupError(ESRCH, "No such process");
  // Exited (and reaped by libuv): as os.kill's ProcessLookupError, which asyncio ignores;
  // the pid may already belong to another process, so nothing is sent.
  if (returncode_ || child_ == nullptr) return;
  int rc = child_->kill(sig);
  if (rc != 0 && rc != UV_ESRCH) throw_uv_error(rc);
}

void UnixSubprocessTransport::terminate() {
  send_signal(SIGTERM);
}

void UnixSubprocessTransport::kill() {
  send_signal(SIGKILL);
}

void UnixSubprocessTransport::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& pipe : pipes_) {
    if (pipe.transport) pipe.transport->close();
  }
  if (!returncode_ && child_ != nullptr) {
    if (loop_.get_debug()) logger()->warn("Close running child process: kill {}", repr());
    (void)child_->kill(SIGKILL);  // gone already, or not ours to kill: ignored
  }
}

Future<int> UnixSubprocessTransport::wait_finished() {
  Future<int> waiter = loop_.create_future<int>();
  // asyncio's _wait: at once when the child has exited, else once connection_lost() ran.
  if (returncode_) {
    waiter.set_result(*returncode_);
  } else {
    exit_waiters_.push_back(waiter);
  }
  return waiter;
}

// ---- the callbacks, in asyncio's order ----------------------------------------------------

template <class Fn>
void UnixSubprocessTransport::call(Fn fn) {
  if (started_) {
    loop_.call_soon(std::move(fn));
  } else {
    pending_calls_.emplace_back(std::move(fn));
  }
}

void UnixSubprocessTransport::pipe_data_received(int fd, std::string_view data) {
  std::shared_ptr<SubprocessProtocol> protocol = protocol_;
  if (!protocol) return;
  call([protocol, fd, bytes = std::string(data)] { protocol->pipe_data_received(fd, bytes); });
}

void UnixSubprocessTransport::pipe_connection_lost(int fd, std::exception_ptr exc) {
  pipes_[static_cast<std::size_t>(fd)].disconnected = true;
  if (std::shared_ptr<SubprocessProtocol> protocol = protocol_) {
    call([protocol, fd, exc] { protocol->pipe_connection_lost(fd, exc); });
  }
  try_finish();
}

void UnixSubprocessTransport::pipe_pause_writing() {
  if (protocol_) protocol_->pause_writing();
}

void UnixSubprocessTransport::pipe_resume_writing() {
  if (protocol_) protocol_->resume_writing();
}

void UnixSubprocessTransport::child_exited(int64_t exit_status, int term_signal) {
  const int returncode = term_signal != 0 ? -term_signal : static_cast<int>(exit_status);
  close_child();  // the child has been reaped
  // What the child wrote before it exited may still sit in its pipes: libuv can report the
  // exit in the same poll as (or, for a quick child, before) the pipes' first reads. The exit
  // is delivered two loop iterations later, after a poll in which the pipes read what was
  // there, so that process_exited() follows that output as in asyncio.
  auto self = shared_from_this();
  auto deliver = [self, returncode] { self->process_exited(returncode); };
  auto hop = [self, deliver] { self->loop_.call_soon(deliver); };
  try {
    loop_.call_soon(hop);
  } catch (...) {
    // Only the loop's own failures (allocation) get here: they leave run_forever().
    std::exception_ptr e = std::current_exception();
    try {
      loop_.call_soon([e] { std::rethrow_exception(e); });
    } catch (...) {
    }
  }
}

void UnixSubprocessTransport::process_exited(int returncode) {
  if (proc_gone_ || returncode_) return;  // the loop closed meanwhile
  returncode_ = returncode;
  if (loop_.get_debug()) logger()->info("{} exited with return code {}", repr(), returncode);
  if (std::shared_ptr<SubprocessProtocol> protocol = protocol_) {
    call([protocol] { protocol->process_exited(); });
  }
  try_finish();
}

void UnixSubprocessTransport::try_finish() {
  if (!returncode_ || finished_) return;
  for (const Pipe& pipe : pipes_) {
    if (pipe.wanted && !pipe.disconnected) return;
  }
  finished_ = true;
  auto self = shared_from_this();
  call([self] { self->call_connection_lost(); });
}

void UnixSubprocessTransport::call_connection_lost() {
  if (proc_gone_) return;
  // asyncio's try/finally: the waiters learn the return code and everything is released even
  // if connection_lost() throws (its exception then reaches the exception handler).
  struct Release {
    UnixSubprocessTransport* t;
    ~Release() {
      for (const Future<int>& waiter : t->exit_waiters_) {
        if (!waiter.done()) waiter.set_result(*t->returncode_);
      }
      t->exit_waiters_.clear();
      t->proc_gone_ = true;
      std::shared_ptr<SubprocessProtocol> protocol = std::move(t->protocol_);
      if (auto* live = t->loop_.find_service<Subprocesses>()) live->remove(t);
      std::shared_ptr<UnixSubprocessTransport> last = std::move(t->self_);
      protocol.reset();
    }
  } release{this};
  if (std::shared_ptr<SubprocessProtocol> protocol = protocol_) protocol->connection_lost(nullptr);
}

void UnixSubprocessTransport::close_child() noexcept {
  child_.reset();
}

void UnixSubprocessTransport::loop_closed() noexcept {
  std::shared_ptr<UnixSubprocessTransport> keep = std::move(self_);
  closed_ = true;
  finished_ = true;
  proc_gone_ = true;
  if (child_ != nullptr) {
    // Still running (its exit was not reported): kill it and reap it ourselves, since its
    // watcher forgets the child once its handle is closed.
    (void)child_->kill(SIGKILL);
    close_child();
    reap_killed(pid_);
  }
  for (auto& pipe : pipes_)
    pipe.transport.reset();  // the loop closes the pipes themselves
  exit_waiters_.clear();
  pending_calls_.clear();
  protocol_.reset();
}

// ---- the loop's unfinished subprocesses ---------------------------------------------------

void Subprocesses::add(UnixSubprocessTransport* t) noexcept {
  t->prev_open = nullptr;
  t->next_open = head_;
  if (head_ != nullptr) head_->prev_open = t;
  head_ = t;
  ++count_;
}

void Subprocesses::remove(UnixSubprocessTransport* t) noexcept {
  if (t->prev_open == nullptr && head_ != t) return;
  if (t->prev_open != nullptr) t->prev_open->next_open = t->next_open;
  if (t->next_open != nullptr) t->next_open->prev_open = t->prev_open;
  if (head_ == t) head_ = t->next_open;
  t->prev_open = t->next_open = nullptr;
  --count_;
}

void Subprocesses::close() noexcept {
  while (head_ != nullptr) {
    UnixSubprocessTransport* t = head_;
    remove(t);
    t->loop_closed();
  }
}

}  // namespace asyncuv::detail
