// The object behind asyncuv::Context (contextvars.Context) and the thread's current context.
//
// CPython keeps a Context object per task/handle holding an immutable HAMT: copying a context
// shares the map, and ContextVar.set replaces the map of the current context only. Here a
// ContextImpl holds a shared_ptr to an immutable sorted array (ContextData): a copy is O(1),
// a set copies the array (the vars set in one program are few, so a flat array beats a trie).
//
// Ownership: a ContextImpl is intrusively reference counted (atomically: contexts cross
// threads through call_soon_threadsafe). Handles, tasks and future callbacks own one reference
// each, or hold null for "a fresh empty context", which costs nothing. The thread's current
// context (lib/contexts.cpp) is a raw pointer owned by whoever entered it; null means the
// empty context, materialized on the first ContextVar.set by the scope that installed the
// null (it then owns it).
//
// The fast path: g_contexts_in_use stays false until the first ContextImpl is created; until
// then call_soon, the loop and task steps skip every context operation (one load and branch).
// Each EventLoop keeps a mirror of the flag in its own object (watch_contexts), which the
// loop's hottest paths test instead: a field of `this` costs less than a global behind the
// GOT. The mirrors are all set before the flag, so a thread that sees the flag (or made a
// context itself) sees every mirror set.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace asyncuv::detail {

/// One variable's value in a context: the var's unique id and a type-erased value.
struct ContextEntry {
  std::uint64_t var;
  std::shared_ptr<const void> value;
};
/// Immutable once shared, sorted by var id.
using ContextData = std::vector<ContextEntry>;

struct ContextImpl {
  std::atomic<std::uint32_t> refs{1};
  std::atomic<bool> entered{false};         // Context.run / a step is inside it now
  std::shared_ptr<const ContextData> data;  // null: empty
};

/// Set (for good) when the first ContextImpl is created: until then no context exists and the
/// loop skips all context work.
extern std::atomic<bool> g_contexts_in_use;
inline bool contexts_in_use() noexcept {
  return g_contexts_in_use.load(std::memory_order_relaxed);
}
/// Registers a loop's mirror of g_contexts_in_use (set now if contexts exist already); the
/// first context of the process sets every registered mirror. unwatch before it is destroyed.
void watch_contexts(std::atomic<bool>* mirror);
void unwatch_contexts(std::atomic<bool>* mirror) noexcept;

/// A new context holding `data` (one reference, owned by the caller).
ContextImpl* new_context(std::shared_ptr<const ContextData> data);
inline void retain_context(ContextImpl* c) noexcept {
  c->refs.fetch_add(1, std::memory_order_relaxed);
}
void release_context(ContextImpl* c) noexcept;

/// The thread's current context (no reference), null for the empty one.
ContextImpl* current_context() noexcept;
/// The current context, created empty (and made current) if it is null. The scope that made
/// null current owns the new one (see ContextSwitch::leave); at top level, the thread does.
ContextImpl* materialize_current_context();
/// copy_context() for a handle or task: a new reference, or null when the current context is
/// empty (a fresh empty context behaves the same as a copy of one).
ContextImpl* capture_context();

/// For a callback or step that ran on the fast path (no context existed when it started): the
/// context a ContextVar.set materialized while it ran, taken over by the caller (a reference),
/// and the current context reset to null. Null if none was.
ContextImpl* claim_current_context() noexcept;

/// Context.run's entry: RuntimeError if `c` is entered already; returns the previous current
/// context for leave_context.
ContextImpl* enter_context(ContextImpl* c);
void leave_context(ContextImpl* c, ContextImpl* previous) noexcept;

/// The value of var `var` in `c` (null `c`: the empty context), or null if unset.
const std::shared_ptr<const void>* context_find(const ContextImpl* c, std::uint64_t var) noexcept;
/// ContextVar.set in the current context (materialized if needed); `old` receives the
/// previous value (null if unset). Returns the current context.
ContextImpl* context_set(std::uint64_t var, std::shared_ptr<const void> value,
                         std::shared_ptr<const void>* old);
/// Removes `var` from the current context (ContextVar.reset to "unset").
void context_remove(std::uint64_t var);
/// A process-unique id for a new ContextVar.
std::uint64_t new_context_var_id() noexcept;

/// Makes `c` current for a callback or a task step (null: a fresh empty context). Entering a
/// context entered elsewhere throws RuntimeError, as Context.run does; a context that is
/// already the current one is not entered again.
class ContextSwitch {
 public:
  explicit ContextSwitch(ContextImpl* c);
  ContextSwitch(const ContextSwitch&) = delete;
  ContextSwitch& operator=(const ContextSwitch&) = delete;
  /// Restores the previous context. Returns the context a ContextVar.set materialized while
  /// `c` was null (a reference the caller now owns), or null.
  ContextImpl* leave() noexcept;

 private:
  ContextImpl* target_;
  ContextImpl* prev_;
  bool switched_;
};

/// An owning pointer to a ContextImpl (null allowed, then free of atomics).
class ContextRef {
 public:
  ContextRef() noexcept = default;
  /// Adopts one reference.
  explicit ContextRef(ContextImpl* c) noexcept : c_(c) {}
  ContextRef(const ContextRef& o) noexcept : c_(o.c_) {
    if (c_) retain_context(c_);
  }
  ContextRef(ContextRef&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  ContextRef& operator=(ContextRef o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~ContextRef() {
    if (c_) release_context(c_);
  }
  /// A new reference to `c`.
  static ContextRef share(ContextImpl* c) noexcept {
    if (c) retain_context(c);
    return ContextRef(c);
  }
  ContextImpl* get() const noexcept { return c_; }
  ContextImpl* release() noexcept { return std::exchange(c_, nullptr); }
  explicit operator bool() const noexcept { return c_ != nullptr; }

 private:
  ContextImpl* c_ = nullptr;
};

}  // namespace asyncuv::detail
