// asyncio.Runner: see include/asyncuv/runner.hpp. The cleanup is asyncuv::run()'s
// (detail::finish_run in lib/tasks.cpp).
#include "asyncuv/runner.hpp"

namespace asyncuv {

Runner::Runner(std::optional<bool> debug, LoopFactory loop_factory)
    : debug_(debug), loop_factory_(std::move(loop_factory)) {}

Runner::~Runner() {
  close();
}

EventLoop& Runner::lazy_init() {
  if (state_ == State::closed) throw RuntimeError("Runner is closed");
  if (state_ == State::initialized) return *loop_;
  if (loop_factory_) {
    loop_ = loop_factory_();
    if (!loop_) throw TypeError("the loop factory returned nullptr");
  } else {
    loop_ = new_event_loop();
    set_event_loop(loop_);
    set_event_loop_ = true;
  }
  if (debug_) loop_->set_debug(*debug_);
  state_ = State::initialized;
  return *loop_;
}

void Runner::close() {
  if (state_ != State::initialized) return;  // as asyncio: a runner never used stays usable
  // As asyncio: cancel what is left, close the generators, join the executor, close the loop.
  detail::finish_run(*loop_, set_event_loop_);
  loop_.reset();
  state_ = State::closed;
}

}  // namespace asyncuv
