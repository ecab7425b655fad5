// Test support for the subprocess and pipe tests: a recording SubprocessProtocol, open-fd
// counting, zombie checks and a protocol recording a pipe's callbacks.
#pragma once

#include <catch2/catch.hpp>

#include <dirent.h>
#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asyncuv/asyncuv.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subprocess_test {

using asyncuv::EventLoop;

/// How many descriptors the process has open (entries of /proc/self/fd, minus the one
/// opendir uses).
inline int count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  int n = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;
}

/// True when `pid` is not a child of ours any more (reaped): no zombie is left behind.
inline bool reaped(int pid) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  return r == -1 && errno == ECHILD;
}

/// Records every SubprocessProtocol callback as text: "made", "data1:out", "pipe_lost2",
/// "exited", "lost"; completes `done` in connection_lost.
class Recorder : public asyncuv::SubprocessProtocol {
 public:
  explicit Recorder(EventLoop& loop) : done(loop.create_future<void>()) {}

  void connection_made(std::shared_ptr<asyncuv::SubprocessTransport> t) override {
    events.push_back("made");
    transport = std::move(t);
  }
  void pipe_data_received(int fd, std::string_view data) override {
    (fd == 1 ? out : err).append(data);
    std::string text = "data" + std::to_string(fd);
    if (events.empty() || events.back() != text) events.push_back(text);
  }
  void pipe_connection_lost(int fd, std::exception_ptr exc) override {
    events.push_back("pipe_lost" + std::to_string(fd));
    if (exc) pipe_errors.push_back(exc);
  }
  void process_exited() override {
    events.push_back("exited");
    if (transport) returncode_at_exit = transport->get_returncode();
  }
  void connection_lost(std::exception_ptr exc) override {
    events.push_back("lost");
    lost_exc = exc;
    if (!done.done()) done.set_result();
  }
  void pause_writing() override { ++pauses; }
  void resume_writing() override { ++resumes; }

  std::vector<std::string> events;
  std::string out, err;
  std::vector<std::exception_ptr> pipe_errors;
  std::exception_ptr lost_exc;
  std::optional<int> returncode_at_exit;
  std::shared_ptr<asyncuv::SubprocessTransport> transport;
  asyncuv::Future<void> done;
  int pauses = 0, resumes = 0;
};

/// Records a pipe protocol's callbacks: "made", "data", "eof", "lost", "pause", "resume".
class PipeRecorder : public asyncuv::Protocol {
 public:
  explicit PipeRecorder(EventLoop& loop) : done(loop.create_future<void>()) {}

  void connection_made(std::shared_ptr<asyncuv::Transport> t) override {
    events.push_back("made");
    transport = std::move(t);
  }
  void data_received(std::string_view data) override {
    received.append(data);
    if (events.back() != "data") events.push_back("data");
  }
  bool eof_received() override {
    events.push_back("eof");
    return false;
  }
  void connection_lost(std::exception_ptr exc) override {
    events.push_back("lost");
    lost_exc = exc;
    ++lost_calls;
    if (!done.done()) done.set_result();
  }
  void pause_writing() override { events.push_back("pause"); }
  void resume_writing() override { events.push_back("resume"); }

  std::vector<std::string> events;
  std::string received;
  std::exception_ptr lost_exc;
  int lost_calls = 0;
  std::shared_ptr<asyncuv::Transport> transport;
  asyncuv::Future<void> done;
};

/// The OSError errno of `e` (-1 if it is no OSError).
inline int errno_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const asyncuv::OSError& os) {
    return os.errnum();
  } catch (...) {
    return -1;
  }
}

}  // namespace subprocess_test
