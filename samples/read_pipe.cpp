// asyncio's connect_read_pipe example: a protocol reads one end of an os pipe while a
// callback writes to the other end and closes it; the protocol sees the data, then EOF.
#include <fcntl.h>
#include <unistd.h>

#include <asyncuv/asyncuv.hpp>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

class ReadPipeProtocol : public asyncuv::Protocol {
 public:
  explicit ReadPipeProtocol(asyncuv::Future<void> done) : done_(std::move(done)) {}

  void connection_made(std::shared_ptr<asyncuv::Transport>) override {
    std::cout << "pipe opened" << std::endl;
  }
  void data_received(std::string_view data) override {
    std::cout << "received: " << data << std::flush;
  }
  bool eof_received() override {
    std::cout << "end of the pipe" << std::endl;
    return false;
  }
  void connection_lost(std::exception_ptr) override {
    std::cout << "pipe closed" << std::endl;
    done_.set_result();
  }

 private:
  asyncuv::Future<void> done_;
};

asyncuv::Task<void> main_coroutine() {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw asyncuv::OSError(errno, "pipe2 failed");
  const int rfd = fds[0];
  const int wfd = fds[1];

  asyncuv::Future<void> done = loop.create_future<void>();
  auto factory = [done] { return std::make_shared<ReadPipeProtocol>(done); };
  auto connecting = loop.connect_read_pipe(factory, rfd);  // the transport owns rfd now
  auto [transport, protocol] = co_await std::move(connecting);

  // Write from a callback, as another part of the program would.
  loop.call_soon([wfd] {
    const std::string message = "Hello World!\n";
    if (::write(wfd, message.data(), message.size()) < 0) std::perror("write");
    ::close(wfd);
  });
  co_await done;
}

int main() {
  asyncuv::run(main_coroutine());
}
