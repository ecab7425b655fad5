// Eager tasks (asyncio 3.12 eager_task_factory, 3.14 create_task(eager_start=True)): the
// coroutine's first step runs synchronously inside create_task, with current_task() being the
// new task, up to its first real suspension. A coroutine that returns or raises without
// suspending gives an already-done task that is never scheduled (and never in all_tasks());
// one that suspends goes on like any task. Eager start needs a running loop: otherwise (say,
// create_task before run_until_complete) the task is scheduled as usual.
//
//   loop.set_task_factory(asyncuv::eager_task_factory);     // every create_task is eager
//   auto t = loop.create_task(cached_lookup(key));           // done already on a cache hit
//   auto lazy = loop.create_task(work(), {}, false);         // eager_start=false overrides
//
//   // A factory doing more (asyncio: a Task subclass), still eager by default:
//   loop.set_task_factory(asyncuv::create_eager_task_factory(
//       [](asyncuv::EventLoop& loop, asyncuv::AnyTask coro, bool eager_start) {
//         return asyncuv::make_task(loop, std::move(coro), "worker", eager_start);
//       }));
#pragma once

#include <functional>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/tasks.hpp"

namespace asyncuv {

/// asyncio.eager_task_factory, for loop.set_task_factory(): tasks start eagerly unless
/// create_task asked for eager_start=false.
AnyTask eager_task_factory(EventLoop& loop, AnyTask coro);

/// What create_eager_task_factory wraps (asyncio's custom_task_constructor): makes and starts
/// the task, normally through make_task(loop, coro, name, eager_start).
using TaskConstructor = std::function<AnyTask(EventLoop& loop, AnyTask coro, bool eager_start)>;

/// asyncio.create_eager_task_factory(custom_task_constructor): a task factory calling
/// `custom_task_constructor` with eager_start true unless create_task asked for false.
/// TypeError for an empty constructor.
TaskFactory create_eager_task_factory(TaskConstructor custom_task_constructor);

}  // namespace asyncuv
