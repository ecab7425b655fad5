// Event loop policies: the global policy and the default per-thread one (asyncio events.py).
#include "asyncuv/policies.hpp"

#include <atomic>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

namespace asyncuv {

namespace {

std::mutex g_policy_mutex;
std::shared_ptr<EventLoopPolicy> g_policy;  // guarded by g_policy_mutex

std::atomic<std::uint64_t> g_next_policy_id{1};

/// Set once this thread's map below is destroyed (trivial, so still readable afterwards: a
/// policy destroyed during static destruction must not touch the map).
thread_local bool t_loops_gone = false;

/// Each thread's current loops, one per DefaultEventLoopPolicy object (by id): Python's
/// policy._local. Released when the thread exits.
struct ThreadLoops {
  std::unordered_map<std::uint64_t, std::shared_ptr<EventLoop>> map;
  ThreadLoops() = default;
  ThreadLoops(const ThreadLoops&) = delete;
  ThreadLoops& operator=(const ThreadLoops&) = delete;
  ~ThreadLoops() {
    auto loops = std::move(map);
    map.clear();
    loops.clear();  // loops closing here still see an empty, valid map
    t_loops_gone = true;
  }
};
thread_local ThreadLoops t_current_loops;

}  // namespace

DefaultEventLoopPolicy::DefaultEventLoopPolicy()
    : id_(g_next_policy_id.fetch_add(1, std::memory_order_relaxed)) {}

DefaultEventLoopPolicy::~DefaultEventLoopPolicy() {
  if (t_loops_gone) return;
  // Extracted first: closing the loop must not find the map half-updated.
  auto node = t_current_loops.map.extract(id_);
}

EventLoop& DefaultEventLoopPolicy::get_event_loop() {
  if (!t_loops_gone) {
    auto it = t_current_loops.map.find(id_);
    if (it != t_current_loops.map.end()) return *it->second;
  }
  std::ostringstream thread;
  thread << std::this_thread::get_id();
  throw RuntimeError("There is no current event loop in thread '" + thread.str() + "'.");
}

void DefaultEventLoopPolicy::set_event_loop(std::shared_ptr<EventLoop> loop) {
  if (t_loops_gone) {
    // At thread exit, after the thread's loops were released: nothing can be kept any more.
    if (loop) throw RuntimeError("set_event_loop() called while the thread is exiting");
    return;
  }
  std::shared_ptr<EventLoop> previous;
  if (loop) {
    std::shared_ptr<EventLoop>& slot = t_current_loops.map[id_];
    previous = std::exchange(slot, std::move(loop));
  } else if (auto node = t_current_loops.map.extract(id_)) {
    previous = std::move(node.mapped());
  }
  // `previous` is released last, after the map is consistent again.
}

std::shared_ptr<EventLoop> DefaultEventLoopPolicy::new_event_loop() {
  return std::make_shared<EventLoop>();
}

std::shared_ptr<EventLoopPolicy> get_event_loop_policy() {
  std::lock_guard lock(g_policy_mutex);
  if (!g_policy) g_policy = std::make_shared<DefaultEventLoopPolicy>();
  return g_policy;
}

void set_event_loop_policy(std::shared_ptr<EventLoopPolicy> policy) {
  std::shared_ptr<EventLoopPolicy> previous;
  {
    std::lock_guard lock(g_policy_mutex);
    previous = std::exchange(g_policy, std::move(policy));
  }
  // The previous policy is released outside the lock (its destructor may close a loop).
}

}  // namespace asyncuv
