// Asynchronous generators and the loop's part in their life (asyncio base_events'
// _asyncgen_firstiter_hook, _asyncgen_finalizer_hook and shutdown_asyncgens): each loop tracks
// the generators first iterated on it, weakly, in a loop service.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "asyncuv/async_generator.hpp"
#include "asyncuv/detail/loop_service.hpp"
#include "asyncuv/events.hpp"
#include "asyncuv/helpers.hpp"
#include "asyncuv/log.hpp"
#include "internal.hpp"

namespace asyncuv {

namespace detail {

/// The generators a loop tracks (asyncio's loop._asyncgens, a WeakSet): a generator enters at
/// its first iteration and leaves when it finishes, is closed, or its last owner goes away.
class AsyncGenTracker final : public LoopService {
 public:
  explicit AsyncGenTracker(EventLoop&) {}

  /// asyncio's firstiter hook: starts tracking `core`; warns after shutdown_asyncgens().
  void first_iteration(const AsyncGenCore& core, std::weak_ptr<AsyncGenOwner> owner) {
    if (shutdown_called_) {
      logger()->warn("asynchronous generator {} was scheduled after loop.shutdown_asyncgens() call",
                     core.repr());
    }
    if (entries_.size() >= prune_at_) prune();
    entries_.insert_or_assign(&core, std::move(owner));
  }

  /// Stops tracking `core` (it finished or was closed).
  void forget(const AsyncGenCore& core) noexcept { entries_.erase(&core); }

  /// shutdown_asyncgens(): marks the loop and hands over the generators still alive.
  std::vector<std::shared_ptr<AsyncGenOwner>> take_all() {
    shutdown_called_ = true;
    std::vector<std::shared_ptr<AsyncGenOwner>> out;
    out.reserve(entries_.size());
    for (auto& [core, weak] : entries_) {
      if (auto owner = weak.lock()) out.push_back(std::move(owner));
    }
    entries_.clear();
    return out;
  }

  void close() noexcept override { entries_.clear(); }

 private:
  /// Drops the entries whose generator is gone (their owners were destroyed elsewhere).
  void prune() noexcept {
    std::erase_if(entries_, [](const auto& entry) { return entry.second.expired(); });
    prune_at_ = std::max<std::size_t>(64, 2 * entries_.size());
  }

  // Keyed by the state, which outlives its owner: a new generator at the same address simply
  // replaces an expired entry.
  std::unordered_map<const AsyncGenCore*, std::weak_ptr<AsyncGenOwner>> entries_;
  std::size_t prune_at_ = 64;
  bool shutdown_called_ = false;
};

AsyncGenCore::~AsyncGenCore() {
  destroy_frame();
}

void AsyncGenCore::destroy_frame() noexcept {
  // Destroying a suspended frame runs the destructors of its live locals (and may in turn
  // drop other generators, which is fine: nothing here is locked).
  if (frame_) std::exchange(frame_, nullptr).destroy();
}

void AsyncGenCore::mark_done() noexcept {
  status_ = Status::done;
  running_ = false;
  yielded_ = false;
  consumer_ = nullptr;
  throw_in_ = nullptr;
  discard_value();
  // The loop tracked it from its own thread; only that loop's thread may update its tracker.
  if (anchor_ != nullptr && anchor_->loop != nullptr && anchor_->loop == running_loop()) {
    if (auto* tracker = anchor_->loop->find_service<AsyncGenTracker>()) tracker->forget(*this);
  }
  destroy_frame();
}

std::string function_name_of(const char* signature) {
  std::string_view s = signature != nullptr ? signature : "";
  // "R ns::name(params)": drop the parameter list, then the return type.
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (std::size_t i = s.size(); i-- > 0;) {
      if (s[i] == ')') ++depth;
      if (s[i] == '(' && --depth == 0) {
        s = s.substr(0, i);
        break;
      }
    }
  }
  int angle = 0;
  for (std::size_t i = s.size(); i-- > 0;) {
    if (s[i] == '>') ++angle;
    if (s[i] == '<') --angle;
    if (s[i] == ' ' && angle == 0) return std::string(s.substr(i + 1));
  }
  return std::string(s);
}

std::string AsyncGenCore::repr() const {
  std::string name = function_name_of(function_);
  char address[32];
  std::snprintf(address, sizeof address, "%p", static_cast<const void*>(this));
  return "<async_generator object " + (name.empty() ? std::string() : name + " ") + "at " +
         address + ">";
}

void AsyncGenCore::begin(const char* op, const std::shared_ptr<AsyncGenOwner>* owner) {
  if (running_) throw RuntimeError(std::string(op) + ": asynchronous generator is already running");
  if (hooks_done_) return;
  // asyncio installs its hooks while a loop runs: the loop running now adopts the generator.
  EventLoop* loop = running_loop();
  if (loop == nullptr || owner == nullptr) return;
  hooks_done_ = true;
  anchor_ = loop->anchor();
  if (!loop->is_closed()) loop->service<AsyncGenTracker>().first_iteration(*this, *owner);
}

bool AsyncGenCore::end_resumption() {
  if (yielded_) {
    yielded_ = false;
    return true;
  }
  std::exception_ptr error = std::exchange(error_, nullptr);
  mark_done();
  if (error) std::rethrow_exception(error);
  return false;
}

void AsyncGenCore::close_unstarted() noexcept {
  if (status_ != Status::done) mark_done();
}

void AsyncGenCore::finalize(std::shared_ptr<AsyncGenCore> self) noexcept {
  if (!self || self->status_ != Status::suspended || self->running_ || !self->anchor_) return;
  // A generator waiting at a co_yield: the loop that first iterated it closes it in a task,
  // so that its cleanup (asynchronous too) runs inside the loop, as asyncio's finalizer hook
  // does with call_soon_threadsafe(loop.create_task, agen.aclose()).
  auto close_it = [core = self] {
    if (EventLoop* loop = running_loop()) loop->create_task(aclose_core(core));
  };
  {
    std::lock_guard lock(self->anchor_->mutex);
    if (EventLoop* loop = self->anchor_->loop) {
      try {
        loop->call_soon_threadsafe(close_it);
      } catch (...) {
        // The loop is closed: the frame is destroyed below, running the locals' destructors.
      }
    }
  }
  // `self` (and `close_it`) go last, outside the lock: destroying the frame may drop other
  // generators of the same loop.
}

Task<void> aclose_core(std::shared_ptr<AsyncGenCore> core) {
  struct Resume {
    AsyncGenCore* core;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) const noexcept {
      return core->resume_for(h, std::make_exception_ptr(GeneratorExit()));
    }
    void await_resume() const noexcept {}
  };
  core->begin("aclose()", nullptr);
  if (core->status() != AsyncGenCore::Status::suspended) {
    core->close_unstarted();  // not started, or done: just closed
    co_return;
  }
  co_await Resume{core.get()};
  bool yielded = false;
  try {
    yielded = core->end_resumption();
  } catch (const GeneratorExit&) {
    co_return;  // the generator let GeneratorExit through: closed
  }
  if (yielded) {
    core->discard_value();
    throw RuntimeError("async generator ignored GeneratorExit");
  }
}

Task<void> aclose_generator(std::shared_ptr<AsyncGenOwner> owner) {
  if (!owner) throw ValueError("aclose() on an empty AsyncGenerator");
  owner->core().begin("aclose()", &owner);
  co_await aclose_core(owner->core_ptr());
}

namespace {

/// asyncio reports only Exception subclasses: not CancelledError, GeneratorExit or the fatal
/// SystemExit / KeyboardInterrupt family. Other C++ exceptions count as errors.
bool is_reportable(const std::exception_ptr& e) {
  if (is_fatal(e)) return false;
  try {
    std::rethrow_exception(e);
  } catch (const Exception&) {
    return true;
  } catch (const BaseException&) {
    return false;
  } catch (...) {
    return true;
  }
}

}  // namespace

}  // namespace detail

Task<void> EventLoop::shutdown_asyncgens() {
  std::vector<std::shared_ptr<detail::AsyncGenOwner>> generators =
      service<detail::AsyncGenTracker>().take_all();
  if (generators.empty()) co_return;
  std::vector<std::string> reprs;
  std::vector<Task<void>> closing;
  reprs.reserve(generators.size());
  closing.reserve(generators.size());
  for (const auto& owner : generators) {
    reprs.push_back(owner->core().repr());
    closing.push_back(create_task(detail::aclose_generator(owner)));
  }
  auto gathered = gather(return_exceptions, std::move(closing));
  std::vector<Outcome<void>> results = co_await gathered;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].index() != 1) continue;
    const std::exception_ptr& e = std::get<1>(results[i]);
    if (!detail::is_reportable(e)) continue;
    ExceptionContext context(
        "an error occurred during closing of asynchronous generator " + reprs[i], e);
    context.set("asyncgen", AnyAsyncGenerator(generators[i]), reprs[i]);
    call_exception_handler(context);
  }
}

}  // namespace asyncuv
