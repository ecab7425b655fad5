// asyncio.Future's state machine.
#include "asyncuv/futures.hpp"
#include <algorithm>

#include <spdlog/spdlog.h>

#include "asyncuv/log.hpp"

namespace asyncuv::detail {

namespace {
const char* state_name(FutureCore::State s) {
  switch (s) {
    case FutureCore::State::pending:
      return "PENDING";
    case FutureCore::State::cancelled:
      return "CANCELLED";
    case FutureCore::State::finished:
      break;
  }
  return "FINISHED";
}
}  // namespace

FutureCore::FutureCore(EventLoop& loop) : anchor_(loop.anchor()) {}

FutureCore::~FutureCore() {
  ContextRef context_owned(context_);
  if (!exception_ || exception_retrieved_) return;
  std::string message = std::string(kind_) + " exception was never retrieved";
  EventLoop* loop = loop_if_alive();
  if (loop == nullptr) {
    logger()->error("{}\n{}", message, describe_exception(exception_));
    return;
  }
  ExceptionContext context(message, exception_);
  // The object itself is being destroyed: the context carries its description.
  context.set("future", "<" + std::string(kind_) +
                            " finished exception=" + describe_exception(exception_) + ">");
  if (context_ != nullptr) context.set_run_context(Context(ContextRef::share(context_)));
  try {
    loop->call_exception_handler(context);
  } catch (...) {
    // A fatal error raised by a handler cannot leave a destructor.
    logger()->critical("fatal exception in exception handler during {} destruction", kind_);
  }
}

EventLoop& FutureCore::loop() const {
  if (anchor_ == nullptr) throw RuntimeError("the future is not attached to an event loop");
  if (anchor_->loop == nullptr) throw RuntimeError("the future's event loop was destroyed");
  return *anchor_->loop;
}

void FutureCore::throw_if_done() const {
  if (done()) throw InvalidStateError(std::string("invalid state: ") + state_name(state_));
}

bool FutureCore::cancel(std::string message) {
  if (done()) return false;
  state_ = State::cancelled;
  cancel_message_ = std::move(message);
  schedule_callbacks();
  return true;
}

void FutureCore::set_exception(std::exception_ptr e) {
  throw_if_done();
  if (!e) throw TypeError("set_exception() needs an exception");
  exception_ = std::move(e);
  exception_retrieved_ = false;
  finish();
}

std::exception_ptr FutureCore::exception() {
  if (state_ == State::cancelled) throw CancelledError(cancel_message_);
  if (state_ != State::finished) throw InvalidStateError("Exception is not set.");
  exception_retrieved_ = true;
  return exception_;
}

void FutureCore::check_result() {
  if (state_ == State::cancelled) throw CancelledError(cancel_message_);
  if (state_ != State::finished) throw InvalidStateError("Result is not set.");
  exception_retrieved_ = true;
  if (exception_) std::rethrow_exception(exception_);
}

void FutureCore::finish() {
  state_ = State::finished;
  schedule_callbacks();
}

void FutureCore::add_awaited_by(const std::shared_ptr<FutureCore>& waiter) {
  if (!awaited_by_) awaited_by_ = std::make_unique<std::vector<std::weak_ptr<FutureCore>>>();
  // A set, as asyncio's: each waiter once.
  for (const std::weak_ptr<FutureCore>& w : *awaited_by_) {
    if (w.lock() == waiter) return;
  }
  awaited_by_->push_back(waiter);
}

void FutureCore::discard_awaited_by(const FutureCore* waiter) noexcept {
  if (!awaited_by_) return;
  // Expired entries go at the same time.
  std::erase_if(*awaited_by_, [waiter](const std::weak_ptr<FutureCore>& w) {
    std::shared_ptr<FutureCore> alive = w.lock();
    return alive == nullptr || alive.get() == waiter;
  });
}

std::vector<std::shared_ptr<FutureCore>> FutureCore::awaited_by() const {
  std::vector<std::shared_ptr<FutureCore>> out;
  if (!awaited_by_) return out;
  for (const std::weak_ptr<FutureCore>& w : *awaited_by_) {
    if (std::shared_ptr<FutureCore> alive = w.lock()) out.push_back(std::move(alive));
  }
  return out;
}

std::uint64_t FutureCore::add_callback(Callback cb, void (*tag)()) {
  // asyncio's add_done_callback(fn, context=None) takes copy_context().
  ContextRef context;
  if (contexts_in_use()) [[unlikely]]
    context = ContextRef(capture_context());
  return add_entry(std::move(cb), tag, std::move(context));
}

std::uint64_t FutureCore::add_callback_in_context(Callback cb, ContextImpl* context) {
  return add_entry(std::move(cb), nullptr, ContextRef::share(context));
}

std::uint64_t FutureCore::add_entry(Callback cb, void (*tag)(), ContextRef context) {
  std::uint64_t id = next_callback_id_++;
  if (done()) {
    // Already done: scheduled at once, still through call_soon.
    loop().call_soon_in(context.get(),
                        [cb = std::move(cb), self = shared_from_this()]() mutable { cb(self); });
  } else {
    callbacks_.push_back(Entry{id, tag, std::move(cb), std::move(context)});
  }
  return id;
}

std::size_t FutureCore::remove_callback(std::uint64_t id) {
  return std::erase_if(callbacks_, [id](const Entry& e) { return e.id == id; });
}

std::size_t FutureCore::remove_callbacks_tagged(void (*tag)()) {
  if (tag == nullptr) return 0;
  return std::erase_if(callbacks_, [tag](const Entry& e) { return e.tag == tag; });
}

void FutureCore::schedule_callbacks() {
  std::vector<Entry> callbacks = std::move(callbacks_);
  callbacks_.clear();
  if (callbacks.empty()) return;
  EventLoop& l = loop();
  auto self = shared_from_this();
  for (Entry& e : callbacks) {
    // Each in the context it was added with (asyncio: call_soon(cb, self, context=ctx)).
    l.call_soon_in(e.context.get(), [cb = std::move(e.fn), self]() mutable { cb(self); });
  }
}

std::string FutureCore::repr() const {
  std::string text = "<" + std::string(kind_);
  switch (state_) {
    case State::pending:
      text += " pending";
      break;
    case State::cancelled:
      text += " cancelled";
      break;
    case State::finished:
      text += " finished";
      if (exception_) {
        text += " exception=" + describe_exception(exception_);
      } else {
        std::string r = result_repr();
        if (!r.empty()) text += " result=" + r;
      }
      break;
  }
  return text + ">";
}

}  // namespace asyncuv::detail
