// The timer heap's slow paths: compaction and teardown.
#include "asyncuv/detail/timer_heap.hpp"

namespace asyncuv::detail {

void TimerHeap::compact() noexcept {
  std::size_t kept = 0;
  for (Entry& e : entries_) {
    if (e.handle->cancelled) {
      e.handle->in_heap = false;
      release(e.handle);
    } else {
      entries_[kept++] = e;
    }
  }
  entries_.resize(kept);
  std::make_heap(entries_.begin(), entries_.end(), Later{});
  cancelled_ = 0;
}

void TimerHeap::clear() noexcept {
  std::vector<Entry> entries = std::move(entries_);
  entries_.clear();
  cancelled_ = 0;
  for (Entry& e : entries) {
    e.handle->in_heap = false;
    e.handle->heap = nullptr;
    drop_callback(e.handle);
    release(e.handle);
  }
}

}  // namespace asyncuv::detail
