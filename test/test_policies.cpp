// Event loop policies (asyncio events.py; test_events.py PolicyTests): the default per-thread
// policy, a custom policy behind get_event_loop / set_event_loop / new_event_loop and
// asyncuv::run, and going back to the default.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/policies.hpp>
#include <asyncuv/tasks.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

using asyncuv::DefaultEventLoopPolicy;
using asyncuv::EventLoop;
using asyncuv::EventLoopPolicy;
using asyncuv::RuntimeError;
using asyncuv::Task;

namespace {

/// Restores the policy installed before the test, whatever the test did.
struct PolicyGuard {
  std::shared_ptr<EventLoopPolicy> saved = asyncuv::get_event_loop_policy();
  PolicyGuard() = default;
  PolicyGuard(const PolicyGuard&) = delete;
  PolicyGuard& operator=(const PolicyGuard&) = delete;
  ~PolicyGuard() { asyncuv::set_event_loop_policy(saved); }
};

/// The loop subclass the custom policy makes (asyncio's documentation example: a policy whose
/// new_event_loop returns a customised loop).
class DebugLoop : public EventLoop {
 public:
  DebugLoop() { set_debug(true); }
};

/// A DefaultEventLoopPolicy subclass that counts its calls and makes DebugLoops.
class CountingPolicy : public DefaultEventLoopPolicy {
 public:
  EventLoop& get_event_loop() override {
    ++gets;
    return DefaultEventLoopPolicy::get_event_loop();
  }
  void set_event_loop(std::shared_ptr<EventLoop> loop) override {
    sets.push_back(loop.get());
    DefaultEventLoopPolicy::set_event_loop(std::move(loop));
  }
  std::shared_ptr<EventLoop> new_event_loop() override {
    auto loop = std::make_shared<DebugLoop>();
    made.push_back(loop.get());
    return loop;
  }

  int gets = 0;
  std::vector<EventLoop*> sets;
  std::vector<EventLoop*> made;
};

/// Not a DefaultEventLoopPolicy: one current loop for the whole program, whatever the thread.
class GlobalLoopPolicy : public EventLoopPolicy {
 public:
  EventLoop& get_event_loop() override {
    std::lock_guard lock(mutex_);
    if (!loop_) throw RuntimeError("no global loop");
    return *loop_;
  }
  void set_event_loop(std::shared_ptr<EventLoop> loop) override {
    std::lock_guard lock(mutex_);
    loop_ = std::move(loop);
  }
  std::shared_ptr<EventLoop> new_event_loop() override { return std::make_shared<EventLoop>(); }

 private:
  std::mutex mutex_;
  std::shared_ptr<EventLoop> loop_;
};

/// What get_event_loop() does in a new thread: the loop's address, or the error's text.
std::string get_event_loop_in_thread(EventLoop** out) {
  std::string error;
  std::thread([&] {
    try {
      *out = &asyncuv::get_event_loop();
    } catch (const RuntimeError& e) {
      error = e.what();
    }
  }).join();
  return error;
}

TEST_CASE("policy: the default policy keeps one current loop per thread", "[policy]") {
  PolicyGuard guard;
  asyncuv::set_event_loop_policy(nullptr);
  auto policy = asyncuv::get_event_loop_policy();
  REQUIRE(std::dynamic_pointer_cast<DefaultEventLoopPolicy>(policy) != nullptr);
  CHECK(asyncuv::get_event_loop_policy() == policy);  // created once

  auto loop = asyncuv::new_event_loop();
  REQUIRE(loop != nullptr);
  asyncuv::set_event_loop(loop);
  CHECK(&asyncuv::get_event_loop() == loop.get());
  CHECK(&policy->get_event_loop() == loop.get());

  EventLoop* seen = nullptr;
  std::string error = get_event_loop_in_thread(&seen);
  CHECK(seen == nullptr);
  CHECK(error.rfind("There is no current event loop in thread '", 0) == 0);
  CHECK(error.substr(error.size() - 2) == "'.");

  asyncuv::set_event_loop(nullptr);
  CHECK_THROWS_AS(asyncuv::get_event_loop(), RuntimeError);
}

TEST_CASE("policy: the running loop comes before the policy's current loop", "[policy]") {
  PolicyGuard guard;
  auto policy = std::make_shared<CountingPolicy>();
  asyncuv::set_event_loop_policy(policy);
  EventLoop loop;
  EventLoop* seen = nullptr;
  loop.call_soon([&] {
    seen = &asyncuv::get_event_loop();
    loop.stop();
  });
  loop.run_forever();
  CHECK(seen == &loop);
  CHECK(policy->gets == 0);
}

TEST_CASE("policy: a custom policy serves get_event_loop, set_event_loop and new_event_loop",
          "[policy]") {
  PolicyGuard guard;
  auto policy = std::make_shared<CountingPolicy>();
  asyncuv::set_event_loop_policy(policy);
  CHECK(asyncuv::get_event_loop_policy() == policy);

  std::shared_ptr<EventLoop> loop = asyncuv::new_event_loop();
  REQUIRE(policy->made.size() == 1);
  CHECK(policy->made[0] == loop.get());
  CHECK(dynamic_cast<DebugLoop*>(loop.get()) != nullptr);
  CHECK(loop->get_debug());

  asyncuv::set_event_loop(loop);
  CHECK(policy->sets == std::vector<EventLoop*>{loop.get()});
  CHECK(&asyncuv::get_event_loop() == loop.get());
  CHECK(policy->gets == 1);

  asyncuv::set_event_loop(nullptr);
  CHECK(policy->sets.size() == 2);
  CHECK_THROWS_AS(asyncuv::get_event_loop(), RuntimeError);
}

TEST_CASE("policy: asyncuv::run makes its loop with the policy and clears it afterwards",
          "[policy]") {
  PolicyGuard guard;
  auto policy = std::make_shared<CountingPolicy>();
  asyncuv::set_event_loop_policy(policy);
  auto main_coro = []() -> Task<bool> {
    EventLoop& loop = asyncuv::get_running_loop();
    co_await asyncuv::sleep(0);
    co_return dynamic_cast<DebugLoop*>(&loop) != nullptr&& loop.get_debug();
  };
  CHECK(asyncuv::run(main_coro()));
  REQUIRE(policy->made.size() == 1);
  CHECK(policy->sets == std::vector<EventLoop*>{policy->made[0], nullptr});
}

TEST_CASE("policy: a policy that is not the default one decides what 'current' means", "[policy]") {
  PolicyGuard guard;
  asyncuv::set_event_loop_policy(std::make_shared<GlobalLoopPolicy>());
  auto loop = asyncuv::new_event_loop();
  asyncuv::set_event_loop(loop);
  EventLoop* seen = nullptr;
  CHECK(get_event_loop_in_thread(&seen).empty());
  CHECK(seen == loop.get());  // the same loop from any thread
  asyncuv::set_event_loop(nullptr);
}

TEST_CASE("policy: set_event_loop_policy(nullptr) goes back to a default policy", "[policy]") {
  PolicyGuard guard;
  auto custom = std::make_shared<CountingPolicy>();
  asyncuv::set_event_loop_policy(custom);
  asyncuv::set_event_loop_policy(nullptr);
  auto policy = asyncuv::get_event_loop_policy();
  CHECK(policy != custom);
  REQUIRE(policy != nullptr);
  EventLoopPolicy& installed = *policy;
  CHECK(typeid(installed) == typeid(DefaultEventLoopPolicy));
  auto loop = asyncuv::new_event_loop();
  EventLoop& made = *loop;
  CHECK(typeid(made) == typeid(EventLoop));
  CHECK(custom->made.empty());
}

}  // namespace
