// A shell pipeline `printf 'b\na\nc\n' | sort` made of two children joined by an os pipe:
// the first one's stdout is the pipe's write end, the second one's stdin its read end.
#include <fcntl.h>
#include <unistd.h>

#include <asyncuv/asyncuv.hpp>

#include <cerrno>
#include <iostream>
#include <string>
#include <vector>

asyncuv::Task<void> main_coroutine() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw asyncuv::OSError(errno, "pipe2 failed");

  std::vector<std::string> producer_argv{"printf", "b\\na\\nc\\n"};
  auto starting_producer = asyncuv::create_subprocess_exec(
      std::move(producer_argv), asyncuv::Stdio::devnull(), asyncuv::Stdio::fd(fds[1]));
  asyncuv::Process producer = co_await std::move(starting_producer);

  std::vector<std::string> consumer_argv{"sort"};
  auto starting_consumer = asyncuv::create_subprocess_exec(
      std::move(consumer_argv), asyncuv::Stdio::fd(fds[0]), asyncuv::Stdio::pipe());
  asyncuv::Process consumer = co_await std::move(starting_consumer);

  // The children have their copies; sort sees end of file once printf is done.
  ::close(fds[0]);
  ::close(fds[1]);

  auto sorting = consumer.communicate();
  auto [sorted, err] = co_await std::move(sorting);
  int producer_status = co_await producer.wait();
  std::cout << "printf exited with " << producer_status << ", sort with " << *consumer.returncode()
            << "; sort's output:\n"
            << sorted;
}

int main() {
  asyncuv::run(main_coroutine());
}
