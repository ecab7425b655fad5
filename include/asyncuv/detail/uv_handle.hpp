// RAII ownership of one libuv handle: heap-allocated so it can outlive its owner until libuv
// has finished with it, closed through uv_close, and freed in the close callback.
#pragma once

#include <uv.h>

#include <utility>

namespace asyncuv::detail {

template <class T>
class UvHandle {
 public:
  UvHandle() = default;
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  ~UvHandle() { close(); }

  /// Allocates the handle and initialises it with `init(loop, handle, extra...)`; `data`
  /// becomes handle->data. Returns the libuv result; on failure nothing is kept.
  template <class Init, class... Extra>
  int init(Init init_fn, uv_loop_t* loop, void* data, Extra&&... extra) {
    close();
    T* h = new T{};
    int rc = init_fn(loop, h, std::forward<Extra>(extra)...);
    if (rc != 0) {
      delete h;
      return rc;
    }
    h->data = data;
    handle_ = h;
    return 0;
  }

  T* get() const noexcept { return handle_; }
  uv_handle_t* base() const noexcept { return reinterpret_cast<uv_handle_t*>(handle_); }
  explicit operator bool() const noexcept { return handle_ != nullptr; }

  /// Starts closing: callbacks stop now, the memory is freed when libuv runs the close
  /// callback (on the loop's next iteration).
  void close() noexcept {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    uv_close(base(), [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
    handle_ = nullptr;
  }

 private:
  T* handle_ = nullptr;
};

}  // namespace asyncuv::detail
