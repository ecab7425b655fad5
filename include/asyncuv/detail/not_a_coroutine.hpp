// Compile-time refusal of coroutine functions where asyncio expects a plain callable: call_soon
// and friends (asyncio: TypeError "coroutines cannot be used with call_soon()") and
// run_in_executor (asyncio: TypeError "coroutines cannot be used with run_in_executor()").
// Calling a coroutine function only creates an unstarted Task; scheduled as a callback it would
// never run, so it is a compile error with a message saying what to write instead.
#pragma once

#include <type_traits>

namespace asyncuv {

template <class T>
class Task;

namespace detail {

template <class R>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<Task<T>> = true;

/// True when calling F with Args gives a Task: F is a coroutine function.
template <class F, class... Args>
inline constexpr bool returns_task_v =
    is_task_v<std::remove_cvref_t<std::invoke_result_t<F&, Args&...>>>;

}  // namespace detail
}  // namespace asyncuv
