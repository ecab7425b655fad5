// asyncio.locks semantics (Lib/test/test_asyncio/test_locks.py): Lock, Event, Condition,
// Semaphore, BoundedSemaphore. Scenarios are free coroutine functions (no lambda captures that
// a task could outlive); `co_await sleep(0)` lets the loop run exactly one iteration.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <string>
#include <utility>
#include <vector>

using asyncuv::AnyTask;
using asyncuv::BoundedSemaphore;
using asyncuv::CancelledError;
using asyncuv::Condition;
using asyncuv::Event;
using asyncuv::EventLoop;
using asyncuv::Lock;
using asyncuv::Semaphore;
using asyncuv::Task;

namespace locks_test {

using asyncuv::sleep;

/// Schedules `coro` as a task on the running loop.
template <class T>
Task<T> spawn(Task<T> coro) {
  return asyncuv::get_running_loop().create_task(std::move(coro));
}

/// Awaits `t`; true if it ended with CancelledError (its message goes to `message`).
template <class T>
Task<bool> ends_cancelled(Task<T> t, std::string* message = nullptr) {
  try {
    co_await t;
  } catch (const CancelledError& e) {
    if (message != nullptr) *message = e.what();
    co_return true;
  }
  co_return false;
}

/// Runs `scenario` to completion on a fresh loop.
void run(Task<void> scenario) {
  EventLoop loop;
  loop.run_until_complete(std::move(scenario));
}

// ---- Lock -----------------------------------------------------------------------------------

Task<void> set_flag(bool& flag) {
  flag = true;
  co_return;
}

Task<void> lock_basics() {
  Lock lock;
  CHECK_FALSE(lock.locked());
  CHECK(lock.repr() == "<Lock [unlocked]>");
  bool other_ran = false;
  auto other = spawn(set_flag(other_ran));
  co_await lock.acquire();  // free and nobody waits: no yield
  CHECK_FALSE(other_ran);
  CHECK(lock.locked());
  CHECK(lock.repr() == "<Lock [locked]>");
  lock.release();
  CHECK_FALSE(lock.locked());
  co_await other;
}

TEST_CASE("Lock: acquire/release/locked; a free lock is taken without yielding", "[locks]") {
  run(lock_basics());
}

Task<void> append_after_acquire(Lock& lock, std::vector<int>& result, int tag) {
  co_await lock.acquire();
  result.push_back(tag);
}

Task<void> lock_fifo() {
  Lock lock;
  std::vector<int> result;
  co_await lock.acquire();
  auto t1 = spawn(append_after_acquire(lock, result, 1));
  auto t2 = spawn(append_after_acquire(lock, result, 2));
  co_await sleep(0);
  CHECK(result.empty());
  CHECK(lock.repr() == "<Lock [locked, waiters:2]>");

  lock.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1});
  co_await sleep(0);
  CHECK(result == std::vector<int>{1});

  auto t3 = spawn(append_after_acquire(lock, result, 3));
  lock.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1, 2});
  lock.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1, 2, 3});
  CHECK(t1.done());
  CHECK(t2.done());
  CHECK(t3.done());
  CHECK(lock.locked());
  lock.release();
}

TEST_CASE("Lock: waiters acquire in FIFO order, one per release", "[locks]") {
  run(lock_fifo());
}

TEST_CASE("Lock: release() of an unlocked lock is RuntimeError('Lock is not acquired.')",
          "[locks]") {
  Lock lock;
  REQUIRE_THROWS_AS(lock.release(), asyncuv::RuntimeError);
  REQUIRE_THROWS_WITH(lock.release(), "Lock is not acquired.");
}

Task<void> lock_acquire_cancel() {
  Lock lock;
  co_await lock.acquire();
  auto waiter = spawn(lock.acquire());
  co_await sleep(0);
  CHECK(lock.repr() == "<Lock [locked, waiters:1]>");
  waiter.cancel("stop");
  std::string message;
  auto awaited1 = co_await ends_cancelled(waiter, &message);
  CHECK(awaited1);
  CHECK(message == "stop");
  CHECK(lock.repr() == "<Lock [locked]>");
  CHECK(lock.locked());
  lock.release();
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock: cancelling a waiting acquire() removes the waiter", "[locks][cancel]") {
  run(lock_acquire_cancel());
}

/// Acquires, waits for `blocker` (if any), releases.
Task<void> lockit(Lock& lock, asyncuv::Future<void> blocker) {
  co_await lock.acquire();
  try {
    if (blocker) co_await blocker;
  } catch (...) {
    lock.release();
    throw;
  }
  lock.release();
}

Task<void> lock_cancel_race() {
  // A holds the lock, B and C wait. B is cancelled while A releases: C must get the lock.
  Lock lock;
  auto fa = asyncuv::get_running_loop().create_future<void>();
  auto ta = spawn(lockit(lock, fa));
  co_await sleep(0);
  CHECK(lock.locked());
  auto tb = spawn(lockit(lock, {}));
  co_await sleep(0);
  CHECK(lock.repr() == "<Lock [locked, waiters:1]>");
  auto tc = spawn(lockit(lock, {}));
  co_await sleep(0);
  CHECK(lock.repr() == "<Lock [locked, waiters:2]>");

  fa.set_result();
  tb.cancel();
  co_await sleep(0);  // A releases; B's cancelled waiter is skipped over by B itself
  co_await sleep(0);
  CHECK(ta.done());
  CHECK(tb.cancelled());
  CHECK(tc.done());
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock: a waiter cancelled while the holder releases does not block the next",
          "[locks][cancel]") {
  run(lock_cancel_race());
}

Task<void> count_acquire(Lock& lock, int& calls, int& taken) {
  ++calls;
  co_await lock.acquire();
  ++taken;
}

Task<void> lock_cancel_release_race() {
  // Cancel the first waiter and release in the same callback: only one waiter gets the lock.
  Lock lock;
  int calls = 0;
  int taken = 0;
  co_await lock.acquire();
  auto t1 = spawn(count_acquire(lock, calls, taken));
  auto t2 = spawn(count_acquire(lock, calls, taken));
  auto t3 = spawn(count_acquire(lock, calls, taken));
  co_await sleep(0);
  asyncuv::get_running_loop().call_soon([t1, &lock] {
    t1.cancel();
    lock.release();
  });
  auto awaited2 = co_await ends_cancelled(t1);
  CHECK(awaited2);
  co_await sleep(0);
  CHECK(taken == 1);
  CHECK(calls == 3);
  CHECK(t1.cancelled());
  CHECK(t2.done());
  CHECK_FALSE(t3.done());
  t3.cancel();
  auto awaited3 = co_await ends_cancelled(t3);
  CHECK(awaited3);
  CHECK(lock.locked());  // still held by t2
}

TEST_CASE("Lock: cancel + release in one callback hands the lock to exactly one waiter",
          "[locks][cancel]") {
  run(lock_cancel_release_race());
}

Task<void> lock_cancel_before_wakeup() {
  // asyncio test_finished_waiter_cancelled: the first waiter is cancelled, then the lock is
  // released; a newcomer may take the free lock since every waiter gave up.
  Lock lock;
  co_await lock.acquire();
  auto tb = spawn(lock.acquire());
  co_await sleep(0);
  auto tc = spawn(lock.acquire());
  tb.cancel();
  lock.release();
  co_await sleep(0);
  CHECK(lock.locked());
  CHECK(tb.cancelled());
  co_await tc;
  CHECK(lock.repr() == "<Lock [locked]>");
}

TEST_CASE("Lock: a waiter cancelled before the release; the next acquirer gets the lock",
          "[locks][cancel]") {
  run(lock_cancel_before_wakeup());
}

Task<void> lock_cancel_after_wakeup() {
  // The first waiter is woken by release(), then cancelled before it runs: it must pass the
  // wake-up on to the second waiter.
  Lock lock;
  std::vector<int> result;
  co_await lock.acquire();
  auto tb = spawn(append_after_acquire(lock, result, 1));
  auto tc = spawn(append_after_acquire(lock, result, 2));
  co_await sleep(0);
  lock.release();  // wakes tb
  tb.cancel();     // ... which is cancelled before it could take the lock
  auto awaited4 = co_await ends_cancelled(tb);
  CHECK(awaited4);
  co_await tc;
  CHECK(result == std::vector<int>{2});
  CHECK(lock.locked());
  CHECK(lock.repr() == "<Lock [locked]>");
}

TEST_CASE("Lock: a waiter cancelled after being woken passes the lock on", "[locks][cancel]") {
  run(lock_cancel_after_wakeup());
}

Task<void> take_and_record(Lock& lock, std::vector<std::string>& order, std::string name) {
  co_await lock.acquire();
  order.push_back(std::move(name));
  lock.release();
}

Task<void> lock_no_barging() {
  // After release() woke a waiter, a new acquire() must queue behind it (fairness).
  Lock lock;
  std::vector<std::string> order;
  co_await lock.acquire();
  auto waiter = spawn(take_and_record(lock, order, "waiter"));
  co_await sleep(0);
  lock.release();
  CHECK_FALSE(lock.locked());
  co_await take_and_record(lock, order, "newcomer");
  co_await waiter;
  CHECK(order == std::vector<std::string>{"waiter", "newcomer"});
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock: a newcomer does not jump ahead of a woken waiter", "[locks]") {
  run(lock_no_barging());
}

Task<void> guarded_section(Lock& lock, bool fail) {
  auto guard = co_await lock.scoped();
  CHECK(guard.owns());
  CHECK(lock.locked());
  co_await sleep(0);
  if (fail) throw std::runtime_error("inside");
}

Task<void> lock_scoped() {
  Lock lock;
  co_await guarded_section(lock, false);
  CHECK_FALSE(lock.locked());
  bool caught = false;
  try {
    co_await guarded_section(lock, true);
  } catch (const std::runtime_error&) {
    caught = true;
  }
  CHECK(caught);
  CHECK_FALSE(lock.locked());
  {
    auto guard = co_await lock.scoped();
    guard.release();  // early
    CHECK_FALSE(guard.owns());
    CHECK_FALSE(lock.locked());
    guard.release();  // no-op
    auto moved = co_await lock.scoped();
    auto other = std::move(moved);
    CHECK(other.owns());
    CHECK_FALSE(moved.owns());  // NOLINT(bugprone-use-after-move): checking the moved-from
  }
  CHECK_FALSE(lock.locked());
  {
    // Released by hand inside the scope: the guard's release error is swallowed.
    auto guard = co_await lock.scoped();
    lock.release();
    REQUIRE_THROWS_WITH(guard.release(), "Lock is not acquired.");
  }
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Lock: scoped() releases at scope exit, on exception, or early", "[locks]") {
  run(lock_scoped());
}

Task<void> acquire_then_wait(Lock& lock) {
  co_await lock.acquire();  // blocks: the lock is held
}

TEST_CASE("Lock: binds to the first loop it waits on", "[locks]") {
  Lock lock;
  {
    EventLoop a;
    a.run_until_complete(lock.acquire());
    auto waiter = a.create_task(acquire_then_wait(lock));
    a.call_soon([&lock] { lock.release(); });
    a.run_until_complete(waiter);
    CHECK(lock.locked());
  }
  EventLoop b;
  REQUIRE_THROWS_WITH(b.run_until_complete(acquire_then_wait(lock)),
                      "<Lock [locked]> is bound to a different event loop");
  lock.release();
  b.run_until_complete(lock.acquire());  // the fast path needs no loop
  CHECK(lock.locked());
}

// ---- Event ----------------------------------------------------------------------------------

Task<void> append_after_wait(Event& ev, std::vector<int>& result, int tag) {
  co_await ev.wait();
  result.push_back(tag);
}

Task<void> event_wait_order() {
  Event ev;
  CHECK_FALSE(ev.is_set());
  CHECK(ev.repr() == "<Event [unset]>");
  std::vector<int> result;
  auto t1 = spawn(append_after_wait(ev, result, 1));
  auto t2 = spawn(append_after_wait(ev, result, 2));
  co_await sleep(0);
  CHECK(result.empty());
  CHECK(ev.repr() == "<Event [unset, waiters:2]>");
  auto t3 = spawn(append_after_wait(ev, result, 3));  // its first step is already queued
  ev.set();
  co_await sleep(0);
  CHECK(result == std::vector<int>{3, 1, 2});
  CHECK(t1.done());
  CHECK(t2.done());
  CHECK(t3.done());
  CHECK(ev.repr() == "<Event [set]>");
  co_await ev.wait();  // set: returns at once
}

TEST_CASE("Event: set() wakes every waiter in FIFO order; wait() on a set event returns",
          "[locks][event]") {
  run(event_wait_order());
}

Task<void> event_wait_cancel() {
  Event ev;
  auto waiter = spawn(ev.wait());
  co_await sleep(0);
  waiter.cancel();
  auto awaited5 = co_await ends_cancelled(waiter);
  CHECK(awaited5);
  CHECK(ev.repr() == "<Event [unset]>");

  // Cancelled after set() woke it: the waiter still ends cancelled.
  auto late = spawn(ev.wait());
  co_await sleep(0);
  ev.set();
  late.cancel();
  auto awaited6 = co_await ends_cancelled(late);
  CHECK(awaited6);
  CHECK(ev.repr() == "<Event [set]>");
}

TEST_CASE("Event: a cancelled wait() is removed from the waiters", "[locks][event][cancel]") {
  run(event_wait_cancel());
}

Task<void> event_clear_with_waiters() {
  Event ev;
  std::vector<int> result;
  auto t = spawn(append_after_wait(ev, result, 1));
  co_await sleep(0);
  CHECK(result.empty());
  ev.set();
  ev.clear();
  CHECK_FALSE(ev.is_set());
  ev.set();
  ev.set();
  CHECK(ev.repr() == "<Event [set, waiters:1]>");
  co_await sleep(0);
  CHECK(result == std::vector<int>{1});
  CHECK(ev.repr() == "<Event [set]>");
  CHECK(t.done());
  ev.clear();
  CHECK_FALSE(ev.is_set());
}

TEST_CASE("Event: set/clear/set with a waiter wakes it once", "[locks][event]") {
  run(event_clear_with_waiters());
}

// ---- Condition ------------------------------------------------------------------------------

Task<void> cond_wait_append(Condition& cond, std::vector<int>& result, int tag, bool release) {
  co_await cond.acquire();
  co_await cond.wait();
  result.push_back(tag);
  if (release) cond.release();
}

Task<void> condition_wait() {
  Condition cond;
  std::vector<int> result;
  auto t1 = spawn(cond_wait_append(cond, result, 1, false));
  auto t2 = spawn(cond_wait_append(cond, result, 2, false));
  auto t3 = spawn(cond_wait_append(cond, result, 3, false));
  co_await sleep(0);
  CHECK(result.empty());
  CHECK_FALSE(cond.locked());
  CHECK(cond.repr() == "<Condition [unlocked, waiters:3]>");

  co_await cond.acquire();
  cond.notify();
  co_await sleep(0);
  CHECK(result.empty());  // notified, but the lock is ours
  CHECK(cond.locked());

  cond.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1});
  CHECK(cond.locked());  // t1 holds it

  cond.notify(2);
  co_await sleep(0);
  CHECK(result == std::vector<int>{1});
  CHECK(cond.locked());

  cond.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1, 2});
  CHECK(cond.locked());

  cond.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1, 2, 3});
  CHECK(cond.locked());
  CHECK(t1.done());
  CHECK(t2.done());
  CHECK(t3.done());
  cond.release();
}

TEST_CASE("Condition: notify(n) wakes waiters in FIFO order, each re-acquiring the lock",
          "[locks][condition]") {
  run(condition_wait());
}

Task<void> condition_wait_cancel() {
  Condition cond;
  co_await cond.acquire();
  auto waiter = spawn(cond.wait());
  co_await sleep(0);
  CHECK_FALSE(cond.locked());
  waiter.cancel();
  auto awaited7 = co_await ends_cancelled(waiter);
  CHECK(awaited7);
  CHECK(cond.repr() == "<Condition [locked]>");  // re-acquired although cancelled
  cond.release();
}

TEST_CASE("Condition: a cancelled wait() still re-acquires the lock",
          "[locks][condition][cancel]") {
  run(condition_wait_cancel());
}

Task<void> condition_wait_cancel_contested() {
  Condition cond;
  co_await cond.acquire();
  auto waiter = spawn(cond.wait());
  co_await sleep(0);
  CHECK_FALSE(cond.locked());
  // Notify, but hold the lock while the waiter is cancelled.
  co_await cond.acquire();
  CHECK(cond.locked());
  cond.notify();
  auto& loop = asyncuv::get_running_loop();
  loop.call_soon([waiter] { waiter.cancel(); });
  loop.call_soon([&cond] { cond.release(); });
  bool cancelled = co_await ends_cancelled(waiter);
  CHECK(cancelled);  // woken by notify, cancelled before it could run
  CHECK(cond.locked());
  CHECK(cond.repr() == "<Condition [locked]>");
  cond.release();
}

TEST_CASE("Condition: wait() cancelled while the lock is contested ends with the lock held",
          "[locks][condition][cancel]") {
  run(condition_wait_cancel_contested());
}

Task<void> wait_on_cond(Condition& cond, bool& waited) {
  auto guard = co_await cond.scoped();
  waited = true;
  co_await cond.wait();
}

Task<void> condition_wait_cancel_after_notify() {
  bool waited = false;
  Condition cond;
  auto waiter = spawn(wait_on_cond(cond, waited));
  co_await sleep(0);  // start waiting
  co_await cond.acquire();
  cond.notify();
  co_await sleep(0);  // the waiter now blocks re-acquiring the lock
  waiter.cancel();
  co_await sleep(0);  // cancellation delivered inside the re-acquire
  CHECK_FALSE(waiter.done());
  cond.release();
  co_await sleep(0);
  co_await sleep(0);
  CHECK(waiter.cancelled());
  CHECK(waited);
  CHECK_FALSE(cond.locked());
}

TEST_CASE("Condition: cancelled while re-acquiring after notify (bpo-32841)",
          "[locks][condition][cancel]") {
  run(condition_wait_cancel_after_notify());
}

Task<void> cond_wait_unacquired() {
  Condition cond;
  std::string message;
  try {
    co_await cond.wait();
  } catch (const asyncuv::RuntimeError& e) {
    message = e.what();
  }
  CHECK(message == "cannot wait on un-acquired lock");
  // wait_for: a predicate true at once needs no lock; otherwise the same error.
  int value = co_await cond.wait_for([] { return 7; });
  CHECK(value == 7);
  message.clear();
  try {
    co_await cond.wait_for([] { return false; });
  } catch (const asyncuv::RuntimeError& e) {
    message = e.what();
  }
  CHECK(message == "cannot wait on un-acquired lock");
  CHECK_FALSE(cond.locked());
}

TEST_CASE("Condition: wait() without the lock is RuntimeError; notify() too",
          "[locks][condition]") {
  run(cond_wait_unacquired());
  Condition cond;
  REQUIRE_THROWS_WITH(cond.notify(), "cannot notify on un-acquired lock");
  REQUIRE_THROWS_WITH(cond.notify_all(), "cannot notify on un-acquired lock");
  REQUIRE_THROWS_WITH(cond.release(), "Lock is not acquired.");
}

Task<void> cond_wait_for_flag(Condition& cond, const bool& flag, std::vector<int>& result) {
  co_await cond.acquire();
  bool value = co_await cond.wait_for([&flag] { return flag; });
  CHECK(value);
  result.push_back(1);
  cond.release();
}

Task<void> condition_wait_for() {
  Condition cond;
  bool flag = false;
  std::vector<int> result;
  auto t = spawn(cond_wait_for_flag(cond, flag, result));
  co_await sleep(0);
  CHECK(result.empty());

  co_await cond.acquire();
  cond.notify();
  cond.release();
  co_await sleep(0);
  co_await sleep(0);
  CHECK(result.empty());  // woke, predicate still false, waits again

  flag = true;
  co_await cond.acquire();
  cond.notify();
  cond.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1});
  CHECK(t.done());
}

TEST_CASE("Condition: wait_for() re-waits until the predicate holds", "[locks][condition]") {
  run(condition_wait_for());
}

Task<void> condition_notify() {
  Condition cond;
  std::vector<int> result;
  auto t1 = spawn(cond_wait_append(cond, result, 1, true));
  auto t2 = spawn(cond_wait_append(cond, result, 2, true));
  auto t3 = spawn(cond_wait_append(cond, result, 3, true));
  co_await sleep(0);
  CHECK(result.empty());

  co_await cond.acquire();
  cond.notify(1);
  cond.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1});

  co_await cond.acquire();
  cond.notify(1);
  cond.notify(2048);
  cond.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1, 2, 3});
  co_await t1;
  co_await t2;
  co_await t3;

  // notify_all
  result.clear();
  auto u1 = spawn(cond_wait_append(cond, result, 1, true));
  auto u2 = spawn(cond_wait_append(cond, result, 2, true));
  co_await sleep(0);
  co_await cond.acquire();
  cond.notify_all();
  cond.release();
  co_await sleep(0);
  CHECK(result == std::vector<int>{1, 2});
  co_await u1;
  co_await u2;
  CHECK_FALSE(cond.locked());
}

TEST_CASE("Condition: notify(1), notify(n > waiters) and notify_all", "[locks][condition]") {
  run(condition_notify());
}

Task<void> condition_explicit_lock() {
  Lock lock;
  Condition cond(lock);
  co_await lock.acquire();
  CHECK(cond.locked());
  cond.release();
  CHECK_FALSE(lock.locked());
  {
    auto guard = co_await cond.scoped();
    CHECK(lock.locked());
  }
  CHECK_FALSE(lock.locked());
}

TEST_CASE("Condition: can share an explicit Lock", "[locks][condition]") {
  run(condition_explicit_lock());
}

Task<void> wait_for_bool(Condition& cond, const bool& wake) {
  auto guard = co_await cond.scoped();
  co_await cond.wait_for([&wake] { return wake; });
}

Task<void> condition_cancelled_error_wakeup() {
  bool wake = false;
  Condition cond;
  auto task = spawn(wait_for_bool(cond, wake));
  co_await sleep(0);
  task.cancel("foo");  // while waiting to be notified
  std::string message;
  auto awaited8 = co_await ends_cancelled(task, &message);
  CHECK(awaited8);
  CHECK(message == "foo");
  CHECK_FALSE(cond.locked());
}

TEST_CASE("Condition: CancelledError while awaiting the notification keeps its message",
          "[locks][condition][cancel]") {
  run(condition_cancelled_error_wakeup());
}

Task<void> condition_cancelled_error_reacquire() {
  bool wake = false;
  Condition cond;
  auto task = spawn(wait_for_bool(cond, wake));
  co_await sleep(0);
  co_await cond.acquire();
  wake = true;
  cond.notify();
  co_await sleep(0);   // the task now tries to re-acquire the lock
  task.cancel("foo");  // cancel it there
  cond.release();
  std::string message;
  auto awaited9 = co_await ends_cancelled(task, &message);
  CHECK(awaited9);
  CHECK(message == "foo");
  CHECK_FALSE(cond.locked());
}

TEST_CASE("Condition: CancelledError while re-acquiring keeps its message",
          "[locks][condition][cancel]") {
  run(condition_cancelled_error_reacquire());
}

Task<void> consumer(Condition& cond, int& state) {
  auto guard = co_await cond.scoped();
  for (;;) {
    co_await cond.wait_for([&state] { return state != 0; });
    if (state < 0) co_return;
    --state;
  }
}

Task<void> condition_cancelled_wakeup() {
  // A task cancelled just as notify() woke it must not swallow the notification.
  Condition cond;
  int state = 0;
  auto c0 = spawn(consumer(cond, state));
  auto c1 = spawn(consumer(cond, state));
  co_await sleep(0);
  {
    auto guard = co_await cond.scoped();
    state += 1;
    cond.notify(1);  // wakes c0 ...
    c0.cancel();     // ... which is cancelled before it runs
  }
  // c0 re-acquires, passes the notification on to c1, which consumes the item. A bounded
  // number of iterations suffices; nothing here depends on time.
  for (int i = 0; i < 20 && state != 0; ++i)
    co_await sleep(0);
  CHECK(state == 0);
  CHECK(c0.cancelled());
  {
    auto guard = co_await cond.scoped();
    state = -1;
    cond.notify_all();
  }
  co_await c1;
  CHECK_FALSE(cond.locked());
}

TEST_CASE("Condition: a waiter cancelled after notify() passes the wake-up on",
          "[locks][condition][cancel]") {
  run(condition_cancelled_wakeup());
}

// ---- Semaphore ------------------------------------------------------------------------------

TEST_CASE("Semaphore: initial value, locked(), repr, negative value", "[locks][semaphore]") {
  Semaphore zero(0);
  CHECK(zero.locked());
  CHECK(zero.repr() == "<Semaphore [locked]>");
  Semaphore sem;
  CHECK_FALSE(sem.locked());
  CHECK(sem.value() == 1);
  CHECK(sem.repr() == "<Semaphore [unlocked, value:1]>");
  REQUIRE_THROWS_AS(Semaphore(-1), asyncuv::ValueError);
  REQUIRE_THROWS_WITH(Semaphore(-1), "Semaphore initial value must be >= 0");
  REQUIRE_THROWS_WITH(BoundedSemaphore(-1), "Semaphore initial value must be >= 0");
  // An unbounded semaphore may be released above its initial value.
  sem.release();
  CHECK(sem.value() == 2);
  BoundedSemaphore bounded(2);
  CHECK(bounded.repr() == "<BoundedSemaphore [unlocked, value:2]>");
}

Task<void> sem_append(Semaphore& sem, std::vector<int>& result, int tag) {
  co_await sem.acquire();
  result.push_back(tag);
}

Task<void> semaphore_acquire() {
  Semaphore sem(3);
  std::vector<int> result;
  co_await sem.acquire();
  co_await sem.acquire();
  CHECK_FALSE(sem.locked());
  auto t1 = spawn(sem_append(sem, result, 1));
  auto t2 = spawn(sem_append(sem, result, 2));
  auto t3 = spawn(sem_append(sem, result, 3));
  co_await sleep(0);
  CHECK(result == std::vector<int>{1});
  CHECK(sem.locked());
  CHECK(sem.repr() == "<Semaphore [locked, waiters:2]>");
  CHECK(sem.value() == 0);

  auto t4 = spawn(sem_append(sem, result, 4));
  sem.release();
  sem.release();
  CHECK(sem.value() == 0);  // both units went to t2 and t3
  co_await sleep(0);
  CHECK(sem.value() == 0);
  CHECK(result == std::vector<int>{1, 2, 3});
  CHECK(sem.locked());
  CHECK(sem.repr() == "<Semaphore [locked, waiters:1]>");
  CHECK(t1.done());
  CHECK(t2.done());
  CHECK(t3.done());
  CHECK_FALSE(t4.done());
  sem.release();
  co_await t4;
  CHECK(result == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("Semaphore: acquire decrements, waiters are granted released units in order",
          "[locks][semaphore]") {
  run(semaphore_acquire());
}

Task<void> semaphore_acquire_cancel() {
  Semaphore sem(0);
  auto waiter = spawn(sem.acquire());
  co_await sleep(0);
  waiter.cancel();
  auto awaited10 = co_await ends_cancelled(waiter);
  CHECK(awaited10);
  CHECK(sem.repr() == "<Semaphore [locked]>");
  CHECK(sem.value() == 0);
  sem.release();
  CHECK_FALSE(sem.locked());
}

TEST_CASE("Semaphore: a cancelled waiting acquire() is removed, the value untouched",
          "[locks][semaphore][cancel]") {
  run(semaphore_acquire_cancel());
}

Task<void> semaphore_cancel_before_awoken() {
  Semaphore sem(0);
  auto t1 = spawn(sem.acquire());
  auto t2 = spawn(sem.acquire());
  auto t3 = spawn(sem.acquire());
  auto t4 = spawn(sem.acquire());
  co_await sleep(0);
  t1.cancel();
  t2.cancel();
  sem.release();
  co_await sleep(0);
  co_await sleep(0);
  CHECK(t1.cancelled());
  CHECK(t2.cancelled());
  CHECK(t3.done());
  CHECK_FALSE(t4.done());
  t4.cancel();
  auto awaited11 = co_await ends_cancelled(t4);
  CHECK(awaited11);
  CHECK(sem.value() == 0);
}

TEST_CASE("Semaphore: waiters cancelled before the release are skipped",
          "[locks][semaphore][cancel]") {
  run(semaphore_cancel_before_awoken());
}

Task<void> semaphore_acquire_hang() {
  Semaphore sem(0);
  auto t1 = spawn(sem.acquire());
  auto t2 = spawn(sem.acquire());
  co_await sleep(0);
  t1.cancel();
  sem.release();
  co_await sleep(0);
  co_await sleep(0);
  CHECK(sem.locked());
  CHECK(t1.cancelled());
  CHECK(t2.done());
}

TEST_CASE("Semaphore: release() after the first waiter was cancelled reaches the second",
          "[locks][semaphore][cancel]") {
  run(semaphore_acquire_hang());
}

Task<void> sem_hold_then_cancel(Semaphore& sem, AnyTask& victim) {
  {
    auto guard = co_await sem.scoped();
    co_await sleep(0);
  }
  // The guard's release woke the victim, which is cancelled before it runs.
  victim.cancel();
}

Task<void> sem_never_enters(Semaphore& sem, bool& entered) {
  auto guard = co_await sem.scoped();
  entered = true;
}

Task<void> semaphore_acquire_no_hang() {
  Semaphore sem(1);
  AnyTask victim;
  bool entered = false;
  auto t1 = spawn(sem_hold_then_cancel(sem, victim));
  auto t2 = spawn(sem_never_enters(sem, entered));
  victim = t2;
  co_await t1;
  auto awaited12 = co_await ends_cancelled(t2);
  CHECK(awaited12);
  CHECK_FALSE(entered);
  // The unit t2 was woken for came back.
  CHECK(sem.value() == 1);
  CHECK_FALSE(sem.locked());
  co_await sem.acquire();  // no hang
  CHECK(sem.locked());
}

TEST_CASE("Semaphore: a waiter cancelled after being woken gives its unit back",
          "[locks][semaphore][cancel]") {
  run(semaphore_acquire_no_hang());
}

Task<void> semaphore_cancel_after_wakeup_handoff() {
  Semaphore sem(0);
  std::vector<int> result;
  auto t1 = spawn(sem_append(sem, result, 1));
  auto t2 = spawn(sem_append(sem, result, 2));
  co_await sleep(0);
  sem.release();  // wakes t1 (value stays 0) ...
  CHECK(sem.value() == 0);
  t1.cancel();  // ... cancelled before it runs: the unit must reach t2
  auto awaited13 = co_await ends_cancelled(t1);
  CHECK(awaited13);
  co_await t2;
  CHECK(result == std::vector<int>{2});
  CHECK(sem.value() == 0);
  CHECK(sem.locked());
}

TEST_CASE("Semaphore: a waiter cancelled after wake-up passes the unit to the next waiter",
          "[locks][semaphore][cancel]") {
  run(semaphore_cancel_after_wakeup_handoff());
}

Task<void> sem_twice(Semaphore& sem, std::vector<std::string>& result, std::string tag) {
  co_await sem.acquire();
  result.push_back(tag + "_1");
  co_await sleep(0);
  sem.release();
  co_await sem.acquire();
  result.push_back(tag + "_2");
  co_await sleep(0);
  sem.release();
}

Task<void> semaphore_fifo_order() {
  Semaphore sem(1);
  std::vector<std::string> result;
  auto c1 = spawn(sem_twice(sem, result, "c1"));
  auto c2 = spawn(sem_twice(sem, result, "c2"));
  auto c3 = spawn(sem_twice(sem, result, "c3"));
  co_await c1;
  co_await c2;
  co_await c3;
  CHECK(result == std::vector<std::string>{"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"});
  CHECK(sem.value() == 1);
}

TEST_CASE("Semaphore: a task re-acquiring queues behind the tasks already waiting",
          "[locks][semaphore]") {
  run(semaphore_fifo_order());
}

Task<void> sem_release_reacquire(Semaphore& sem, std::vector<int>& result) {
  co_await sem.acquire();
  result.push_back(2);
  sem.release();
  co_await sem.acquire();
  result.push_back(4);
}

Task<void> semaphore_fifo_order_2() {
  Semaphore sem(1);
  std::vector<int> result;
  auto t1 = spawn(sem_append(sem, result, 1));
  auto t2 = spawn(sem_release_reacquire(sem, result));
  auto t3 = spawn(sem_append(sem, result, 3));
  co_await sleep(0);
  sem.release();
  sem.release();
  co_await t1;
  co_await t2;
  co_await t3;
  CHECK(result == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("Semaphore: release-then-acquire inside a holder keeps FIFO order",
          "[locks][semaphore]") {
  run(semaphore_fifo_order_2());
}

Task<void> semaphore_fifo_order_3() {
  Semaphore sem(0);
  std::vector<int> result;
  auto t1 = spawn(sem_append(sem, result, 1));
  auto t2 = spawn(sem_append(sem, result, 2));
  auto t3 = spawn(sem_append(sem, result, 3));
  co_await sleep(0);
  t1.cancel();
  co_await sleep(0);
  sem.release();
  sem.release();
  auto awaited14 = co_await ends_cancelled(t1);
  CHECK(awaited14);
  co_await t2;
  co_await t3;
  CHECK(result == std::vector<int>{2, 3});
}

TEST_CASE("Semaphore: FIFO order survives a cancelled first waiter", "[locks][semaphore]") {
  run(semaphore_fifo_order_3());
}

Task<void> bounded_semaphore() {
  BoundedSemaphore sem(2);
  REQUIRE_THROWS_AS(sem.release(), asyncuv::ValueError);
  REQUIRE_THROWS_WITH(sem.release(), "BoundedSemaphore released too many times");
  co_await sem.acquire();
  co_await sem.acquire();
  CHECK(sem.locked());
  std::vector<int> result;
  auto waiter = spawn(sem_append(sem, result, 1));
  co_await sleep(0);
  sem.release();  // hands the unit to the waiter
  co_await waiter;
  CHECK(result == std::vector<int>{1});
  sem.release();
  sem.release();
  CHECK(sem.value() == 2);
  REQUIRE_THROWS_WITH(sem.release(), "BoundedSemaphore released too many times");
  {
    // The guard releases through the bounded release().
    auto guard = co_await sem.scoped();
    CHECK(sem.value() == 1);
    sem.release();
    REQUIRE_THROWS_WITH(guard.release(), "BoundedSemaphore released too many times");
  }
  CHECK(sem.value() == 2);
}

TEST_CASE("BoundedSemaphore: release() above the initial value is ValueError",
          "[locks][semaphore]") {
  run(bounded_semaphore());
}

}  // namespace locks_test
