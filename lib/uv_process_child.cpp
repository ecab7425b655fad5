// SubprocessChild over libuv's uv_process_t: uv_spawn starts the child, libuv's own SIGCHLD
// watcher reaps it and calls the exit callback. See include/asyncuv/detail/subprocess_child.hpp.
#include <utility>

#include "asyncuv/detail/subprocess_child.hpp"

namespace asyncuv::detail {

namespace {

/// Closes a uv_process_t (initialised by uv_spawn, even a failed one) and frees it once libuv
/// is done with it.
void close_process(uv_process_t* process) noexcept {
  process->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(process),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
}

/// A child started with uv_spawn.
class UvProcessChild final : public SubprocessChild {
 public:
  /// Allocates the process handle, which uv_spawn() then initialises, and reports the exit
  /// to `on_exit`.
  explicit UvProcessChild(ExitCallback on_exit)
      : process_(new uv_process_t{}), on_exit_(std::move(on_exit)) {
    process_->data = this;
  }

  /// Closes the process handle (libuv then forgets the child); uv_spawn() must have been
  /// called on it, since it initialises the handle even when it fails.
  ~UvProcessChild() override { close_process(process_); }

  /// Starts the child: uv_spawn() on this object's handle.
  int spawn(uv_loop_t* loop, uv_process_options_t& options) noexcept {
    options.exit_cb = &UvProcessChild::on_exit;
    return uv_spawn(loop, process_, &options);
  }

  /// The pid uv_spawn reported.
  int pid() const noexcept override { return process_->pid; }

  /// uv_process_kill: kill(2) on the pid.
  int kill(int sig) noexcept override { return uv_process_kill(process_, sig); }

 private:
  /// libuv's exit callback: forwards to the owner's callback, which may destroy this object
  /// (so the callback is moved out first and nothing of the object is used afterwards).
  static void on_exit(uv_process_t* process, int64_t exit_status, int term_signal) {
    auto* self = static_cast<UvProcessChild*>(process->data);
    if (self == nullptr || !self->on_exit_) return;
    ExitCallback callback = std::move(self->on_exit_);
    callback(exit_status, term_signal);
  }

  uv_process_t* process_;  // heap-allocated; freed by its close callback
  ExitCallback on_exit_;
};

}  // namespace

int spawn_uv_process(uv_loop_t* loop, uv_process_options_t options,
                     SubprocessChild::ExitCallback on_exit, std::unique_ptr<SubprocessChild>& out) {
  auto child = std::make_unique<UvProcessChild>(std::move(on_exit));
  // On failure the object's destructor closes the handle uv_spawn initialised.
  int rc = child->spawn(loop, options);
  if (rc != 0) return rc;
  out = std::move(child);
  return 0;
}

}  // namespace asyncuv::detail
