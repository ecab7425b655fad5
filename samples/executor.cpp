// Blocking work off the loop with run_in_executor: a CPU-heavy prime count and a blocking call
// run on the default executor's threads while a ticker coroutine keeps printing from the loop.
#include <asyncuv/asyncuv.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

/// CPU-heavy: how many primes are below `limit` (sieve of Eratosthenes).
long count_primes(long limit) {
  std::vector<bool> composite(static_cast<std::size_t>(limit), false);
  long count = 0;
  for (long i = 2; i < limit; ++i) {
    if (composite[static_cast<std::size_t>(i)]) continue;
    ++count;
    for (long j = i * i; j < limit; j += i)
      composite[static_cast<std::size_t>(j)] = true;
  }
  return count;
}

/// A blocking call, like a synchronous database query or file read: it takes about a second.
std::string slow_query(const std::string& what) {
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  return "rows for '" + what + "'";
}

asyncuv::Task<void> ticker(const bool& done) {
  // `done` is set by main_coroutine while this task sleeps (clang 14 warns on `!done` as the loop
  // condition, since nothing in the body changes it).
  for (int i = 1;; ++i) {
    if (done) break;
    std::printf("tick %d: the loop is free\n", i);
    co_await asyncuv::sleep(0.2);
  }
}

asyncuv::Task<void> main_coroutine() {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  bool done = false;
  asyncuv::Task<void> ticks = loop.create_task(ticker(done));

  // nullptr: the loop's default executor, a thread pool created on first use.
  asyncuv::Future<long> primes = loop.run_in_executor(nullptr, count_primes, 2'000'000L);
  asyncuv::Future<std::string> rows =
      loop.run_in_executor(nullptr, slow_query, std::string("SELECT 1"));

  long prime_count = co_await primes;
  std::printf("primes below 2,000,000: %ld\n", prime_count);
  std::string result = co_await rows;
  std::printf("query returned %s\n", result.c_str());

  done = true;
  co_await ticks;
}

}  // namespace

int main() {
  asyncuv::run(main_coroutine());
}
