// asyncio.subprocess: SubprocessStreamProtocol (the pipes as StreamReader / StreamWriter),
// Process (wait, communicate, signals), create_subprocess_exec / create_subprocess_shell.
// See include/asyncuv/process.hpp.
#include "asyncuv/process.hpp"

#include <signal.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "asyncuv/detail/subprocess_transport.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/helpers.hpp"
#include "asyncuv/subprocess.hpp"

namespace asyncuv {

namespace detail {

/// asyncio's SubprocessStreamProtocol: feeds stdout / stderr into StreamReaders, gives the
/// stdin StreamWriter its flow control (through a StreamReaderProtocol without a reader, which
/// drain() waits on), and closes the transport once the child exited and its output pipes
/// are closed.
class SubprocessStreamProtocol final : public SubprocessProtocol {
 public:
  SubprocessStreamProtocol(EventLoop& loop, std::size_t limit)
      : loop_(loop),
        limit_(limit),
        stdin_protocol_(std::make_shared<StreamReaderProtocol>(loop, std::nullopt)) {}

  void connection_made(std::shared_ptr<SubprocessTransport> transport) override {
    transport_ = transport;
    if (auto pipe = std::dynamic_pointer_cast<Transport>(transport->get_pipe_transport(1))) {
      stdout_.emplace(loop_, limit_);
      stdout_->set_transport(pipe);
      pipe_fds_.push_back(1);
    }
    if (auto pipe = std::dynamic_pointer_cast<Transport>(transport->get_pipe_transport(2))) {
      stderr_.emplace(loop_, limit_);
      stderr_->set_transport(pipe);
      pipe_fds_.push_back(2);
    }
    if (auto pipe = std::dynamic_pointer_cast<Transport>(transport->get_pipe_transport(0))) {
      stdin_.emplace(pipe, stdin_protocol_, std::nullopt, loop_);
    }
  }

  void pipe_data_received(int fd, std::string_view data) override {
    if (std::optional<StreamReader>* reader = reader_for(fd); reader && *reader) {
      (*reader)->feed_data(data);
    }
  }

  void pipe_connection_lost(int fd, std::exception_ptr exc) override {
    if (fd == 0) {
      if (transport_) {
        if (auto pipe = transport_->get_pipe_transport(0)) pipe->close();
      }
      stdin_protocol_->connection_lost(exc);  // drain() and wait_closed() of stdin wake up
      return;
    }
    if (std::optional<StreamReader>* reader = reader_for(fd); reader && *reader) {
      if (exc) {
        (*reader)->set_exception(exc);
      } else {
        (*reader)->feed_eof();
      }
    }
    pipe_fds_.erase(std::remove(pipe_fds_.begin(), pipe_fds_.end(), fd), pipe_fds_.end());
    maybe_close_transport();
  }

  void process_exited() override {
    process_exited_ = true;
    maybe_close_transport();
  }

  void pause_writing() override { stdin_protocol_->pause_writing(); }
  void resume_writing() override { stdin_protocol_->resume_writing(); }
  void connection_lost(std::exception_ptr exc) override {
    if (!stdin_protocol_->connection_lost_called()) stdin_protocol_->connection_lost(exc);
  }

  std::optional<StreamWriter> stdin_;
  std::optional<StreamReader> stdout_;
  std::optional<StreamReader> stderr_;

 private:
  std::optional<StreamReader>* reader_for(int fd) {
    if (fd == 1) return &stdout_;
    if (fd == 2) return &stderr_;
    return nullptr;
  }

  void maybe_close_transport() {
    if (pipe_fds_.empty() && process_exited_ && transport_) {
      std::shared_ptr<SubprocessTransport> transport = std::move(transport_);
      transport->close();
    }
  }

  EventLoop& loop_;
  std::size_t limit_;
  std::shared_ptr<StreamReaderProtocol> stdin_protocol_;
  std::shared_ptr<SubprocessTransport> transport_;
  std::vector<int> pipe_fds_;
  bool process_exited_ = false;
};

}  // namespace detail

namespace {

detail::UnixSubprocessTransport& unix_transport(const std::shared_ptr<SubprocessTransport>& t) {
  auto* ours = dynamic_cast<detail::UnixSubprocessTransport*>(t.get());
  if (ours == nullptr) throw TypeError("the Process's transport was not made by asyncuv");
  return *ours;
}

Task<int> wait_coro(std::shared_ptr<SubprocessTransport> transport) {
  Future<int> finished = unix_transport(transport).wait_finished();
  co_return co_await finished;
}

/// asyncio Process._feed_stdin: writes, drains, closes; a child that stopped reading is not
/// an error.
Task<void> feed_stdin(StreamWriter writer, std::optional<std::string> input) {
  try {
    if (input) writer.write(*input);
    co_await writer.drain();
  } catch (const BrokenPipeError&) {
    // communicate() ignores BrokenPipeError and ConnectionResetError
  } catch (const ConnectionResetError&) {
  }
  writer.close();
}

Task<void> nothing() {
  co_return;
}

/// asyncio Process._read_stream: the whole stream, then its pipe is closed.
Task<std::string> read_stream(std::optional<StreamReader> reader,
                              std::shared_ptr<BaseTransport> pipe) {
  if (!reader) co_return std::string();
  std::string output = co_await reader->read();
  if (pipe) pipe->close();
  co_return output;
}

Task<std::pair<std::string, std::string>> communicate_coro(Process proc,
                                                           std::optional<std::string> input) {
  std::shared_ptr<SubprocessTransport> transport = proc.transport();
  Task<void> feeding = proc.stdin_ ? feed_stdin(*proc.stdin_, std::move(input)) : nothing();
  Task<std::string> out = read_stream(proc.stdout_, transport->get_pipe_transport(1));
  Task<std::string> err = read_stream(proc.stderr_, transport->get_pipe_transport(2));
  auto gathering = gather(std::move(feeding), std::move(out), std::move(err));
  auto results = co_await gathering;
  co_await proc.wait();
  co_return std::pair<std::string, std::string>(std::move(std::get<1>(results)),
                                                std::move(std::get<2>(results)));
}

Task<Process> create_process(std::vector<std::string> argv, bool shell, Stdio in, Stdio out,
                             Stdio err, SubprocessOptions options, std::size_t limit) {
  EventLoop& loop = get_running_loop();
  auto protocol = std::make_shared<detail::SubprocessStreamProtocol>(loop, limit);
  auto factory = [protocol] { return protocol; };
  auto starting = detail::make_subprocess(loop, factory, std::move(argv), shell, in, out, err,
                                          std::move(options));
  auto made = co_await std::move(starting);
  co_return Process(std::move(made.first), protocol);
}

}  // namespace

Process::Process(std::shared_ptr<SubprocessTransport> transport,
                 std::shared_ptr<detail::SubprocessStreamProtocol> protocol)
    : stdin_(protocol->stdin_),
      stdout_(protocol->stdout_),
      stderr_(protocol->stderr_),
      transport_(std::move(transport)),
      protocol_(std::move(protocol)) {}

int Process::pid() const {
  return transport_->get_pid();
}

std::optional<int> Process::returncode() const {
  return transport_->get_returncode();
}

Task<int> Process::wait() const {
  return wait_coro(transport_);
}

Task<std::pair<std::string, std::string>> Process::communicate(
    std::optional<std::string> input) const {
  return communicate_coro(*this, std::move(input));
}

void Process::send_signal(int sig) const {
  transport_->send_signal(sig);
}

void Process::terminate() const {
  transport_->terminate();
}

void Process::kill() const {
  transport_->kill();
}

std::string Process::repr() const {
  return "<Process " + std::to_string(pid()) + ">";
}

Task<Process> create_subprocess_exec(std::vector<std::string> argv, Stdio stdin_, Stdio stdout_,
                                     Stdio stderr_, SubprocessOptions options, std::size_t limit) {
  return create_process(std::move(argv), false, stdin_, stdout_, stderr_, std::move(options),
                        limit);
}

Task<Process> create_subprocess_shell(std::string cmd, Stdio stdin_, Stdio stdout_, Stdio stderr_,
                                      SubprocessOptions options, std::size_t limit) {
  std::vector<std::string> argv;
  argv.push_back(std::move(cmd));
  return create_process(std::move(argv), true, stdin_, stdout_, stderr_, std::move(options), limit);
}

}  // namespace asyncuv
