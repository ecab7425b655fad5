// asyncio's subprocess example with `cat`: create_subprocess_exec with pipes, communicate()
// sends the input, closes stdin and collects what came back.
#include <asyncuv/asyncuv.hpp>

#include <iostream>
#include <string>
#include <vector>

asyncuv::Task<void> main_coroutine() {
  std::vector<std::string> argv{"cat"};
  auto starting = asyncuv::create_subprocess_exec(std::move(argv), asyncuv::Stdio::pipe(),
                                                  asyncuv::Stdio::pipe());
  asyncuv::Process proc = co_await std::move(starting);
  std::cout << "started cat, pid " << proc.pid() << std::endl;

  auto talking = proc.communicate("Hello through cat!\nA second line.\n");
  auto [out, err] = co_await std::move(talking);
  std::cout << "cat answered:\n" << out;
  std::cout << "cat exited with " << *proc.returncode() << std::endl;
}

int main() {
  asyncuv::run(main_coroutine());
}
