// asyncio.queues semantics (Lib/test/test_asyncio/test_queues.py): Queue, LifoQueue,
// PriorityQueue, task_done/join and 3.13's shutdown. Scenarios are free coroutine functions;
// `co_await sleep(0)` lets the loop run exactly one iteration.
#include <catch2/catch.hpp>

#include <asyncuv/asyncuv.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using asyncuv::CancelledError;
using asyncuv::EventLoop;
using asyncuv::LifoQueue;
using asyncuv::PriorityQueue;
using asyncuv::Queue;
using asyncuv::QueueEmpty;
using asyncuv::QueueFull;
using asyncuv::QueueShutDown;
using asyncuv::Task;

namespace queues_test {

using asyncuv::sleep;

/// Schedules `coro` as a task on the running loop.
template <class T>
Task<T> spawn(Task<T> coro) {
  return asyncuv::get_running_loop().create_task(std::move(coro));
}

/// Awaits `t`; true if it ended with CancelledError.
template <class T>
Task<bool> ends_cancelled(Task<T> t) {
  try {
    co_await t;
  } catch (const CancelledError&) {
    co_return true;
  }
  co_return false;
}

/// Awaits `t`; true if it ended with QueueShutDown.
template <class T>
Task<bool> ends_shut_down(Task<T> t) {
  try {
    co_await t;
  } catch (const QueueShutDown&) {
    co_return true;
  }
  co_return false;
}

/// Runs `scenario` to completion on a fresh loop.
void run(Task<void> scenario) {
  EventLoop loop;
  loop.run_until_complete(std::move(scenario));
}

// ---- basics ---------------------------------------------------------------------------------

TEST_CASE("Queue: qsize/empty/full/maxsize, put_nowait/get_nowait, QueueEmpty/QueueFull",
          "[queues]") {
  Queue<int> q(2);
  CHECK(q.maxsize() == 2);
  CHECK(q.empty());
  CHECK_FALSE(q.full());
  CHECK(q.qsize() == 0);
  CHECK(q.repr() == "<Queue maxsize=2>");
  REQUIRE_THROWS_AS(q.get_nowait(), QueueEmpty);
  q.put_nowait(1);
  CHECK_FALSE(q.empty());
  CHECK_FALSE(q.full());
  q.put_nowait(2);
  CHECK(q.full());
  CHECK(q.qsize() == 2);
  REQUIRE_THROWS_AS(q.put_nowait(3), QueueFull);
  CHECK(q.repr() == "<Queue maxsize=2 qsize=2 tasks=2>");
  CHECK(q.get_nowait() == 1);
  CHECK(q.get_nowait() == 2);
  CHECK(q.empty());

  // maxsize <= 0: unbounded, never full.
  Queue<int> unbounded;
  Queue<int> negative(-1);
  CHECK(unbounded.maxsize() == 0);
  for (int i = 0; i < 1000; ++i) {
    unbounded.put_nowait(i);
    negative.put_nowait(i);
  }
  CHECK_FALSE(unbounded.full());
  CHECK_FALSE(negative.full());
  CHECK(unbounded.qsize() == 1000);
}

TEST_CASE("Queue / LifoQueue / PriorityQueue: retrieval order", "[queues]") {
  Queue<int> fifo;
  LifoQueue<int> lifo;
  PriorityQueue<int> prio;
  PriorityQueue<int, std::greater<int>> max_first;
  for (int v : {1, 3, 2, 3, 0}) {
    fifo.put_nowait(v);
    lifo.put_nowait(v);
    prio.put_nowait(v);
    max_first.put_nowait(v);
  }
  std::vector<int> a, b, c, d;
  while (!fifo.empty())
    a.push_back(fifo.get_nowait());
  while (!lifo.empty())
    b.push_back(lifo.get_nowait());
  while (!prio.empty())
    c.push_back(prio.get_nowait());
  while (!max_first.empty())
    d.push_back(max_first.get_nowait());
  CHECK(a == std::vector<int>{1, 3, 2, 3, 0});
  CHECK(b == std::vector<int>{0, 3, 2, 3, 1});
  CHECK(c == std::vector<int>{0, 1, 2, 3, 3});
  CHECK(d == std::vector<int>{3, 3, 2, 1, 0});
  CHECK(lifo.repr() == "<LifoQueue maxsize=0 tasks=5>");
  CHECK(prio.repr() == "<PriorityQueue maxsize=0 tasks=5>");

  // (priority, data) pairs, as asyncio's docs suggest.
  PriorityQueue<std::pair<int, std::string>> jobs;
  jobs.put_nowait({2, "code"});
  jobs.put_nowait({1, "eat"});
  jobs.put_nowait({3, "sleep"});
  CHECK(jobs.get_nowait().second == "eat");
  CHECK(jobs.get_nowait().second == "code");
  CHECK(jobs.get_nowait().second == "sleep");
}

Task<void> move_only_items() {
  Queue<std::unique_ptr<int>> q(1);
  co_await q.put(std::make_unique<int>(7));
  auto getter = spawn(q.get());
  std::unique_ptr<int> first = co_await q.get();
  CHECK(*first == 7);
  co_await q.put(std::make_unique<int>(8));
  std::unique_ptr<int> second = co_await getter;  // a move-only result of a scheduled task
  CHECK(*second == 8);
}

TEST_CASE("Queue: move-only items", "[queues]") {
  run(move_only_items());
}

// ---- blocking put / get ---------------------------------------------------------------------

Task<void> put_all(Queue<int>& q, std::vector<int> items, std::vector<int>& put_done) {
  for (int i : items) {
    co_await q.put(i);
    put_done.push_back(i);
  }
}

Task<void> queue_maxsize() {
  Queue<int> q(2);
  std::vector<int> have_put;
  auto putter = spawn(put_all(q, {0, 1, 2}, have_put));
  co_await sleep(0);
  CHECK(have_put == std::vector<int>{0, 1});  // the third put waits
  CHECK(q.repr() == "<Queue maxsize=2 qsize=2 _putters[1] tasks=2>");
  CHECK(q.get_nowait() == 0);
  co_await sleep(0);
  CHECK(have_put == std::vector<int>{0, 1, 2});
  co_await putter;
  CHECK(q.get_nowait() == 1);
  CHECK(q.get_nowait() == 2);
}

TEST_CASE("Queue: put() waits while the queue is full", "[queues]") {
  run(queue_maxsize());
}

Task<void> queue_blocking_get() {
  Queue<std::string> q;
  auto getter = spawn(q.get());
  co_await sleep(0);
  CHECK_FALSE(getter.done());
  CHECK(q.repr() == "<Queue maxsize=0 _getters[1]>");
  co_await q.put("a");  // no wait: unbounded
  auto awaited1 = co_await getter;
  CHECK(awaited1 == "a");
  CHECK(q.repr() == "<Queue maxsize=0 tasks=1>");
  q.put_nowait("b");
  auto awaited2 = co_await q.get();  // available: no wait
  CHECK(awaited2 == "b");
}

TEST_CASE("Queue: get() waits for an item; put() wakes the getter", "[queues]") {
  run(queue_blocking_get());
}

Task<void> get_into(Queue<int>& q, std::vector<std::string>& log, std::string name) {
  int v = co_await q.get();
  log.push_back(name + "=" + std::to_string(v));
}

Task<void> queue_getters_fifo() {
  Queue<int> q;
  std::vector<std::string> log;
  auto a = spawn(get_into(q, log, "a"));
  auto b = spawn(get_into(q, log, "b"));
  auto c = spawn(get_into(q, log, "c"));
  co_await sleep(0);
  q.put_nowait(1);
  q.put_nowait(2);
  q.put_nowait(3);
  co_await a;
  co_await b;
  co_await c;
  CHECK(log == std::vector<std::string>{"a=1", "b=2", "c=3"});
}

TEST_CASE("Queue: waiting getters are served in FIFO order", "[queues]") {
  run(queue_getters_fifo());
}

Task<void> queue_putters_fifo() {
  Queue<int> q(1);
  q.put_nowait(0);
  std::vector<int> put_done;
  auto p1 = spawn(put_all(q, {1}, put_done));
  auto p2 = spawn(put_all(q, {2}, put_done));
  auto p3 = spawn(put_all(q, {3}, put_done));
  co_await sleep(0);
  std::vector<int> got;
  for (int i = 0; i < 4; ++i)
    got.push_back(co_await q.get());
  co_await p1;
  co_await p2;
  co_await p3;
  CHECK(got == std::vector<int>{0, 1, 2, 3});
  CHECK(put_done == std::vector<int>{1, 2, 3});
}

TEST_CASE("Queue: waiting putters are served in FIFO order", "[queues]") {
  run(queue_putters_fifo());
}

// ---- cancellation ---------------------------------------------------------------------------

Task<void> get_cancelled_race() {
  Queue<std::string> q;
  auto t1 = spawn(q.get());
  auto t2 = spawn(q.get());
  co_await sleep(0);
  t1.cancel();
  co_await sleep(0);
  CHECK(t1.done());
  CHECK(q.repr() == "<Queue maxsize=0 _getters[1]>");  // the cancelled getter is gone
  co_await q.put("a");
  co_await sleep(0);
  auto awaited3 = co_await t2;
  CHECK(awaited3 == "a");
  CHECK(t1.cancelled());
}

TEST_CASE("Queue: a cancelled getter does not receive, the next one does", "[queues][cancel]") {
  run(get_cancelled_race());
}

Task<void> get_cancel_drop_one_pending_reader() {
  Queue<int> q;
  auto reader = spawn(q.get());
  co_await sleep(0);
  q.put_nowait(1);  // wakes the reader ...
  q.put_nowait(2);
  reader.cancel();  // ... which is cancelled before it runs
  int result = 0;
  if (co_await ends_cancelled(reader)) {
    reader = spawn(q.get());  // try again
  }
  result = co_await reader;
  CHECK(result == 1);  // 2 would mean 1 was lost
  CHECK(q.qsize() == 1);
}

TEST_CASE("Queue: cancelling a woken getter loses no item", "[queues][cancel]") {
  run(get_cancel_drop_one_pending_reader());
}

Task<void> get_cancel_drop_many_pending_readers() {
  Queue<int> q;
  auto reader1 = spawn(q.get());
  auto reader2 = spawn(q.get());
  auto reader3 = spawn(q.get());
  co_await sleep(0);
  q.put_nowait(1);
  q.put_nowait(2);
  reader1.cancel();  // woken, then cancelled: hands its wake-up to reader3
  auto awaited4 = co_await ends_cancelled(reader1);
  CHECK(awaited4);
  int r3 = co_await reader3;
  int r2 = co_await reader2;
  CHECK(((r2 == 1 && r3 == 2) || (r2 == 2 && r3 == 1)));
  CHECK(q.empty());
  CHECK(q.repr() == "<Queue maxsize=0 tasks=2>");
}

TEST_CASE("Queue: a cancelled woken getter passes its wake-up to a waiting getter",
          "[queues][cancel]") {
  run(get_cancel_drop_many_pending_readers());
}

Task<void> put_cancel_drop() {
  Queue<int> q(1);
  q.put_nowait(1);
  auto writer = spawn(q.put(2));  // blocks: full
  co_await sleep(0);
  CHECK(q.get_nowait() == 1);  // wakes the writer ...
  writer.cancel();             // ... which is cancelled before it puts
  if (co_await ends_cancelled(writer)) {
    writer = spawn(q.put(2));  // try again
    co_await writer;
  }
  CHECK(q.get_nowait() == 2);
  CHECK(q.qsize() == 0);
}

TEST_CASE("Queue: cancelling a woken putter; retrying puts the item", "[queues][cancel]") {
  run(put_cancel_drop());
}

Task<void> cancelled_putters_not_held() {
  Queue<int> q(1);
  q.put_nowait(1);
  auto put_task = spawn(q.put(1));
  co_await sleep(0);
  CHECK(q.repr() == "<Queue maxsize=1 qsize=1 _putters[1] tasks=1>");
  put_task.cancel();
  auto awaited5 = co_await ends_cancelled(put_task);
  CHECK(awaited5);
  CHECK(q.repr() == "<Queue maxsize=1 qsize=1 tasks=1>");

  // Woken by get_nowait() (which already removed its waiter), then cancelled: no error
  // about the missing waiter, just CancelledError.
  auto put2 = spawn(q.put(2));
  co_await sleep(0);
  CHECK(q.get_nowait() == 1);
  put2.cancel();
  auto awaited6 = co_await ends_cancelled(put2);
  CHECK(awaited6);
  CHECK(q.empty());
}

TEST_CASE("Queue: cancelled putters are removed from the putters", "[queues][cancel]") {
  run(cancelled_putters_not_held());
}

Task<void> cancelled_getters_not_held() {
  Queue<int> q;
  auto get_task = spawn(q.get());
  co_await sleep(0);
  get_task.cancel();
  auto awaited7 = co_await ends_cancelled(get_task);
  CHECK(awaited7);
  CHECK(q.repr() == "<Queue maxsize=0>");

  auto get2 = spawn(q.get());
  co_await sleep(0);
  q.put_nowait(1);  // removes get2's waiter and wakes it
  get2.cancel();
  auto awaited8 = co_await ends_cancelled(get2);
  CHECK(awaited8);
  CHECK(q.qsize() == 1);  // the item stays for the next getter
  auto awaited9 = co_await q.get();
  CHECK(awaited9 == 1);
}

TEST_CASE("Queue: cancelled getters are removed from the getters", "[queues][cancel]") {
  run(cancelled_getters_not_held());
}

Task<void> put_cancelled_race() {
  Queue<std::string> q(1);
  auto put_a = spawn(q.put("a"));
  auto put_b = spawn(q.put("b"));
  auto put_c = spawn(q.put("X"));
  co_await sleep(0);
  CHECK(put_a.done());
  CHECK_FALSE(put_b.done());
  put_c.cancel();
  co_await sleep(0);
  CHECK(put_c.done());
  CHECK(put_c.cancelled());
  CHECK(q.get_nowait() == "a");
  co_await sleep(0);
  CHECK(q.get_nowait() == "b");
  co_await put_b;
  CHECK(q.empty());
}

TEST_CASE("Queue: a cancelled waiting putter never puts", "[queues][cancel]") {
  run(put_cancelled_race());
}

Task<void> consume_n(Queue<int>& q, int n) {
  for (int i = 0; i < n; ++i)
    (void)co_await q.get();
}

Task<void> produce_n(Queue<int>& q, int n) {
  for (int i = 0; i < n; ++i)
    co_await q.put(i);
}

Task<void> no_stuck_waiters() {
  // asyncio test_why_are_getters_waiting / putters_waiting: maxsize 1 ping-pong ends.
  Queue<int> q(1);
  auto p = spawn(produce_n(q, 5));
  auto c = spawn(consume_n(q, 5));
  co_await p;
  co_await c;
  Queue<int> q2(1);
  auto c2 = spawn(consume_n(q2, 5));
  auto p2 = spawn(produce_n(q2, 5));
  co_await c2;
  co_await p2;
  CHECK(q.empty());
  CHECK(q2.empty());
}

TEST_CASE("Queue: maxsize-1 producer/consumer ping-pong completes", "[queues]") {
  run(no_stuck_waiters());
}

// ---- producers / consumers ------------------------------------------------------------------

struct Item {
  int producer;
  int seq;
};

Task<void> producer(Queue<Item>& q, int id, int count) {
  for (int i = 0; i < count; ++i) {
    co_await q.put(Item{id, i});
    if (i % 7 == 0) co_await sleep(0);
  }
}

Task<void> consumer(Queue<Item>& q, std::vector<Item>& received, int& handled_by_me) {
  for (;;) {
    Item item;
    try {
      item = co_await q.get();
    } catch (const QueueShutDown&) {
      co_return;
    }
    received.push_back(item);  // in get() order
    ++handled_by_me;
    if (item.seq % 5 == 0) co_await sleep(0);  // "process" it
    q.task_done();
  }
}

Task<void> producers_consumers() {
  constexpr int kProducers = 3;
  constexpr int kItems = 200;
  constexpr int kConsumers = 4;
  Queue<Item> q(5);
  std::vector<Item> received;
  std::vector<int> handled(kConsumers, 0);
  std::vector<Task<void>> consumers;
  for (int c = 0; c < kConsumers; ++c)
    consumers.push_back(spawn(consumer(q, received, handled[static_cast<std::size_t>(c)])));
  std::vector<Task<void>> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.push_back(spawn(producer(q, p, kItems)));
  for (auto& p : producers)
    co_await p;
  co_await q.join();
  CHECK(q.unfinished_tasks() == 0);
  CHECK(q.empty());
  q.shutdown();
  for (auto& c : consumers)
    co_await c;

  // Every item arrived exactly once, and each producer's items in the order put.
  REQUIRE(received.size() == static_cast<std::size_t>(kProducers * kItems));
  std::map<int, int> next;
  for (const Item& item : received) {
    REQUIRE(item.seq == next[item.producer]);
    ++next[item.producer];
  }
  for (int p = 0; p < kProducers; ++p)
    CHECK(next[p] == kItems);
  int sum = 0;
  for (int h : handled) {
    CHECK(h > 0);  // every consumer took part
    sum += h;
  }
  CHECK(sum == kProducers * kItems);
}

TEST_CASE("Queue: producers and consumers: every item exactly once, in order", "[queues][join]") {
  run(producers_consumers());
}

// ---- task_done / join -----------------------------------------------------------------------

template <class Q>
Task<void> summing_worker(Q& q, long& accumulator, const bool& running) {
  while (running) {
    int item = co_await q.get();
    accumulator += item;
    q.task_done();
  }
}

template <class Q>
Task<void> task_done_join() {
  Q q;
  for (int i = 0; i < 100; ++i)
    q.put_nowait(i);
  long accumulator = 0;
  bool running = true;
  auto w1 = spawn(summing_worker(q, accumulator, running));
  auto w2 = spawn(summing_worker(q, accumulator, running));
  co_await q.join();
  CHECK(accumulator == 4950);
  running = false;
  q.put_nowait(0);
  q.put_nowait(0);
  co_await w1;
  co_await w2;
}

TEST_CASE("Queue: join() returns once task_done() matched every put", "[queues][join]") {
  run(task_done_join<Queue<int>>());
  run(task_done_join<LifoQueue<int>>());
  run(task_done_join<PriorityQueue<int>>());
}

Task<void> join_empty_and_cancel() {
  Queue<int> q;
  co_await q.join();  // nothing unfinished: at once
  q.put_nowait(1);
  (void)q.get_nowait();
  auto joiner = spawn(q.join());  // got, but not task_done()
  co_await sleep(0);
  CHECK_FALSE(joiner.done());
  joiner.cancel();
  auto awaited10 = co_await ends_cancelled(joiner);
  CHECK(awaited10);
  auto joiner2 = spawn(q.join());
  co_await sleep(0);
  q.task_done();
  co_await joiner2;
  co_await q.join();
  REQUIRE_THROWS_AS(q.task_done(), asyncuv::ValueError);
  REQUIRE_THROWS_WITH(q.task_done(), "task_done() called too many times");
}

TEST_CASE("Queue: join on an empty queue; a cancelled join; task_done underflow",
          "[queues][join][cancel]") {
  run(join_empty_and_cancel());
  Queue<int> q;
  REQUIRE_THROWS_WITH(q.task_done(), "task_done() called too many times");
}

// ---- shutdown (3.13) ------------------------------------------------------------------------

Task<void> shutdown_empty() {
  Queue<int> q(1);
  auto getter = spawn(q.get());
  co_await sleep(0);
  q.shutdown();
  CHECK(q.is_shutdown());
  auto awaited11 = co_await ends_shut_down(getter);
  CHECK(awaited11);
  REQUIRE_THROWS_AS(q.put_nowait(1), QueueShutDown);
  REQUIRE_THROWS_AS(q.get_nowait(), QueueShutDown);
  auto awaited12 = co_await ends_shut_down(q.put(1));
  CHECK(awaited12);
  auto awaited13 = co_await ends_shut_down(q.get());
  CHECK(awaited13);
  co_await q.join();
  CHECK(q.repr() == "<Queue maxsize=1 shutdown>");
}

TEST_CASE("Queue: shutdown() of an empty queue wakes getters with QueueShutDown",
          "[queues][shutdown]") {
  run(shutdown_empty());
}

Task<void> shutdown_nonempty() {
  Queue<int> q(1);
  q.put_nowait(1);
  auto putter = spawn(q.put(2));  // blocked: full
  co_await sleep(0);
  q.shutdown();
  auto awaited14 = co_await ends_shut_down(putter);
  CHECK(awaited14);
  // Items already in are still delivered, then gets raise.
  auto awaited15 = co_await q.get();
  CHECK(awaited15 == 1);
  auto awaited16 = co_await ends_shut_down(q.get());
  CHECK(awaited16);
  REQUIRE_THROWS_AS(q.get_nowait(), QueueShutDown);
  auto joiner = spawn(q.join());
  co_await sleep(0);
  CHECK_FALSE(joiner.done());
  q.task_done();
  co_await joiner;
}

TEST_CASE("Queue: shutdown() lets remaining items be got, wakes putters with QueueShutDown",
          "[queues][shutdown]") {
  run(shutdown_nonempty());
}

Task<void> shutdown_immediate() {
  Queue<int> q;
  q.put_nowait(1);
  q.put_nowait(2);
  q.put_nowait(3);
  CHECK(q.get_nowait() == 1);  // taken, not task_done(): still unfinished afterwards
  auto joiner = spawn(q.join());
  co_await sleep(0);
  q.shutdown(true);
  CHECK(q.empty());
  CHECK(q.unfinished_tasks() == 1);
  REQUIRE_THROWS_AS(q.get_nowait(), QueueShutDown);
  co_await sleep(0);
  CHECK_FALSE(joiner.done());
  q.task_done();
  co_await joiner;

  Queue<int> q2;
  q2.put_nowait(1);
  auto joiner2 = spawn(q2.join());
  co_await sleep(0);
  q2.shutdown(true);  // discards the item, which counts as done: join returns
  co_await joiner2;
  CHECK(q2.unfinished_tasks() == 0);
}

TEST_CASE("Queue: shutdown(immediate) discards items and releases join()", "[queues][shutdown]") {
  run(shutdown_immediate());
}

// ---- loop binding ---------------------------------------------------------------------------

Task<int> get_one(Queue<int>& q) {
  co_return co_await q.get();
}

TEST_CASE("Queue: binds to the first loop it waits on", "[queues]") {
  Queue<int> q;
  {
    EventLoop a;
    auto getter = a.create_task(get_one(q));
    a.call_soon([&q] { q.put_nowait(5); });
    CHECK(a.run_until_complete(getter) == 5);
  }
  EventLoop b;
  q.put_nowait(6);
  CHECK(b.run_until_complete(get_one(q)) == 6);  // no wait: no loop needed
  REQUIRE_THROWS_WITH(b.run_until_complete(get_one(q)),
                      "<Queue maxsize=0 tasks=2> is bound to a different event loop");
}

}  // namespace queues_test
