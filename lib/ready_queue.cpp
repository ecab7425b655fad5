// The ready queue's slow paths.
#include "asyncuv/detail/ready_queue.hpp"

namespace asyncuv::detail {

void ReadyQueue::grow() {
  std::size_t capacity = capacity_ == 0 ? 64 : capacity_ * 2;
  auto slots = std::make_unique_for_overwrite<HandleImpl*[]>(capacity);
  for (std::size_t i = 0; i < size_; ++i)
    slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
  slots_ = std::move(slots);
  capacity_ = capacity;
  head_ = 0;
}

void ReadyQueue::clear() noexcept {
  while (!empty()) {
    HandleImpl* h = pop();
    drop_callback(h);
    release(h);
  }
}

}  // namespace asyncuv::detail
