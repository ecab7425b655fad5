// The process's first context made in the middle of a batch (semantics 61): each scenario of
// asyncuv_first_context (test/first_context_main.cpp) needs a fresh process, since a process
// has only one first context; this runs the program once per scenario and checks its verdict.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <cstdlib>
#include <string>

namespace {

int run_scenario(const std::string& name) {
  std::string command = std::string(ASYNCUV_FIRST_CONTEXT_EXE) + " " + name;
  int status = std::system(command.c_str());
  REQUIRE(status != -1);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("61: the first context, made by a callback mid-batch, stays its own",
          "[contexts][first-context]") {
  const char* scenario = GENERATE("set", "copy", "get_context", "raise");
  INFO("asyncuv_first_context " << scenario);
  CHECK(run_scenario(scenario) == 0);
}
