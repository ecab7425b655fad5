// asyncio's eager task factories: see include/asyncuv/eager_tasks.hpp. The eager first step
// itself is TaskStateBase::start (lib/tasks.cpp); create_task hands its eager_start to the
// factory through detail::EagerStartRequest.
#include "asyncuv/eager_tasks.hpp"

#include <utility>

#include "asyncuv/exceptions.hpp"

namespace asyncuv {

AnyTask eager_task_factory(EventLoop& loop, AnyTask coro) {
  const bool eager = detail::EagerStartRequest::take().value_or(true);
  return make_task(loop, std::move(coro), {}, eager);
}

TaskFactory create_eager_task_factory(TaskConstructor custom_task_constructor) {
  if (!custom_task_constructor) {
    throw TypeError("create_eager_task_factory() needs a task constructor, got nullptr");
  }
  return [custom = std::move(custom_task_constructor)](EventLoop& loop, AnyTask coro) {
    const bool eager = detail::EagerStartRequest::take().value_or(true);
    return custom(loop, std::move(coro), eager);
  };
}

}  // namespace asyncuv
