// The ready queue (asyncio's _ready deque): a growable ring buffer of owned handle pointers.
#pragma once

#include <cstddef>
#include <memory>

#include "asyncuv/detail/handle_impl.hpp"

namespace asyncuv::detail {

class ReadyQueue {
 public:
  ReadyQueue() = default;
  ReadyQueue(const ReadyQueue&) = delete;
  ReadyQueue& operator=(const ReadyQueue&) = delete;
  ~ReadyQueue() { clear(); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// Appends `h`, taking over one reference.
  void push(HandleImpl* h) {
    if (size_ == capacity_) grow();
    slots_[(head_ + size_) & (capacity_ - 1)] = h;
    ++size_;
  }

  /// Removes the oldest handle; the caller takes over its reference.
  HandleImpl* pop() noexcept {
    HandleImpl* h = slots_[head_];
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    return h;
  }

  /// Releases every queued handle (their callbacks never run).
  void clear() noexcept;

 private:
  void grow();

  std::unique_ptr<HandleImpl*[]> slots_;
  std::size_t capacity_ = 0;  // always a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace asyncuv::detail
