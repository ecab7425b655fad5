// contextvars' machinery: the thread's current context, context copies, ContextVar storage
// and the switch the loop makes around callbacks and task steps (asyncio's
// Handle._run -> context.run and Task.__step under its _context).
//
// The current context is a thread-local raw pointer: null stands for an empty context nobody
// materialized. Whoever makes null current (ContextSwitch, or the thread itself at top level)
// owns what a ContextVar.set materializes in its place; see context_impl.hpp.
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "asyncuv/context.hpp"
#include "asyncuv/event_loop.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/exceptions.hpp"
#include "internal.hpp"

namespace asyncuv::detail {

std::atomic<bool> g_contexts_in_use{false};

namespace {

thread_local ContextImpl* t_current ASYNCUV_FAST_TLS = nullptr;
std::atomic<std::uint64_t> g_var_ids{0};

/// The loops' mirrors of g_contexts_in_use. Never destroyed: a loop in a static may outlive
/// any static here.
struct Mirrors {
  std::mutex mutex;
  std::vector<std::atomic<bool>*> list;
};
Mirrors& mirrors() {
  static auto* m = new Mirrors;
  return *m;
}

/// The first context of the process: every mirror first, then the flag (release), so that
/// whoever sees the flag (acquire) sees the mirrors set.
void start_using_contexts() {
  Mirrors& m = mirrors();
  std::lock_guard lock(m.mutex);
  if (g_contexts_in_use.load(std::memory_order_relaxed)) return;
  for (std::atomic<bool>* mirror : m.list)
    mirror->store(true, std::memory_order_relaxed);
  g_contexts_in_use.store(true, std::memory_order_release);
}

/// Owns a context materialized at top level (outside any loop callback, task or Context.run):
/// the thread's base context, released when the thread ends.
struct ThreadBaseContext {
  ThreadBaseContext() = default;
  ThreadBaseContext(const ThreadBaseContext&) = delete;
  ThreadBaseContext& operator=(const ThreadBaseContext&) = delete;
  ~ThreadBaseContext() {
    if (t_current != nullptr) release_context(std::exchange(t_current, nullptr));
  }
  void touch() noexcept {}
};
thread_local ThreadBaseContext t_base;

std::string context_repr(const ContextImpl* c) {
  char text[64];
  std::snprintf(text, sizeof text, "<Context object at %p>", static_cast<const void*>(c));
  return text;
}

[[noreturn]] void throw_entered(const ContextImpl* c) {
  throw RuntimeError("cannot enter context: " + context_repr(c) + " is already entered");
}

template <class Data>
auto lower(Data& data, std::uint64_t var) {
  return std::lower_bound(data.begin(), data.end(), var,
                          [](const ContextEntry& e, std::uint64_t v) { return e.var < v; });
}

}  // namespace

ContextImpl* new_context(std::shared_ptr<const ContextData> data) {
  auto* c = new ContextImpl;
  c->data = std::move(data);
  if (!g_contexts_in_use.load(std::memory_order_acquire)) [[unlikely]]
    start_using_contexts();
  // A batch that began before any context existed runs its callbacks bare; tell it.
  if (EventLoop* loop = running_loop()) notice_context_created(*loop);
  return c;
}

void watch_contexts(std::atomic<bool>* mirror) {
  Mirrors& m = mirrors();
  std::lock_guard lock(m.mutex);
  m.list.push_back(mirror);
  mirror->store(g_contexts_in_use.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void unwatch_contexts(std::atomic<bool>* mirror) noexcept {
  Mirrors& m = mirrors();
  std::lock_guard lock(m.mutex);
  std::erase(m.list, mirror);
}

void release_context(ContextImpl* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete c;
}

ContextImpl* current_context() noexcept {
  return t_current;
}

ContextImpl* materialize_current_context() {
  if (t_current == nullptr) {
    t_base.touch();  // registers the thread's owner of a top-level context
    t_current = new_context(nullptr);
  }
  return t_current;
}

ContextImpl* claim_current_context() noexcept {
  return std::exchange(t_current, nullptr);
}

ContextImpl* capture_context() {
  ContextImpl* c = t_current;
  if (c == nullptr || c->data == nullptr) return nullptr;
  return new_context(c->data);
}

ContextImpl* enter_context(ContextImpl* c) {
  if (c->entered.exchange(true, std::memory_order_acquire)) throw_entered(c);
  return std::exchange(t_current, c);
}

void leave_context(ContextImpl* c, ContextImpl* previous) noexcept {
  c->entered.store(false, std::memory_order_release);
  t_current = previous;
}

ContextSwitch::ContextSwitch(ContextImpl* c) : target_(c), prev_(t_current), switched_(false) {
  if (c == prev_) return;
  if (c != nullptr && c->entered.exchange(true, std::memory_order_acquire)) throw_entered(c);
  switched_ = true;
  t_current = c;
}

ContextImpl* ContextSwitch::leave() noexcept {
  if (target_ == nullptr) {
    // Whatever is current now was materialized by a ContextVar.set inside: ours to keep.
    ContextImpl* made = t_current;
    t_current = prev_;
    return made;
  }
  if (switched_) {
    target_->entered.store(false, std::memory_order_release);
    t_current = prev_;
  }
  return nullptr;
}

const std::shared_ptr<const void>* context_find(const ContextImpl* c, std::uint64_t var) noexcept {
  if (c == nullptr || c->data == nullptr) return nullptr;
  auto it = lower(*c->data, var);
  if (it == c->data->end() || it->var != var) return nullptr;
  return &it->value;
}

ContextImpl* context_set(std::uint64_t var, std::shared_ptr<const void> value,
                         std::shared_ptr<const void>* old) {
  ContextImpl* c = materialize_current_context();
  // Copy-on-write: contexts sharing the old array keep seeing it unchanged.
  auto data = c->data ? std::make_shared<ContextData>(*c->data) : std::make_shared<ContextData>();
  auto it = lower(*data, var);
  if (it != data->end() && it->var == var) {
    if (old != nullptr) *old = std::move(it->value);
    it->value = std::move(value);
  } else {
    if (old != nullptr) old->reset();
    data->insert(it, ContextEntry{var, std::move(value)});
  }
  c->data = std::move(data);
  return c;
}

void context_remove(std::uint64_t var) {
  ContextImpl* c = t_current;
  if (c == nullptr || c->data == nullptr) return;
  auto it = lower(*c->data, var);
  if (it == c->data->end() || it->var != var) return;
  auto data = std::make_shared<ContextData>(*c->data);
  data->erase(data->begin() + (it - c->data->begin()));
  c->data = data->empty() ? nullptr : std::shared_ptr<const ContextData>(std::move(data));
}

std::uint64_t new_context_var_id() noexcept {
  return g_var_ids.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace asyncuv::detail

namespace asyncuv {

Context::Context() : impl_(detail::new_context(nullptr)) {}

Context Context::copy() const {
  return Context(detail::ContextRef(detail::new_context(impl_.get()->data)));
}

std::size_t Context::size() const noexcept {
  const auto& data = impl_.get()->data;
  return data ? data->size() : 0;
}

std::string Context::repr() const {
  return detail::context_repr(impl_.get());
}

Context copy_context() {
  detail::ContextImpl* c = detail::current_context();
  return Context(detail::ContextRef(detail::new_context(c ? c->data : nullptr)));
}

}  // namespace asyncuv
