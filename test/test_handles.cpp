#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <string>
#include <vector>

TEST_CASE("1: call_soon is FIFO and passes arguments positionally", "[call_soon]") {
  asyncuv::EventLoop loop;
  std::vector<std::string> seen;
  auto cb = [&](const std::string& s) { seen.push_back(s); };
  loop.call_soon(cb, std::string("a"));
  loop.call_soon(cb, std::string("b"));
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  CHECK(seen == std::vector<std::string>{"a", "b"});
}
