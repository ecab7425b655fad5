// The scheduled-timer heap (asyncio's _scheduled): a binary min-heap on (when, sequence).
// Cancelled timers stay in place until they reach the top or the heap is compacted.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "asyncuv/detail/handle_impl.hpp"

namespace asyncuv::detail {

class TimerHeap {
 public:
  /// asyncio compacts when more than this many timers are scheduled...
  static constexpr std::size_t kMinForCompaction = 100;

  TimerHeap() = default;
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;
  ~TimerHeap() { clear(); }

  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t cancelled_count() const noexcept { return cancelled_; }

  /// Inserts timer `h` (taking over one reference).
  void push(HandleImpl* h) {
    h->in_heap = true;
    entries_.push_back(Entry{h->when, next_seq_++, h});
    std::push_heap(entries_.begin(), entries_.end(), Later{});
  }

  /// The earliest entry (the heap must not be empty).
  HandleImpl* top() const noexcept { return entries_.front().handle; }

  /// Removes the earliest entry; the caller takes over its reference.
  HandleImpl* pop() noexcept {
    std::pop_heap(entries_.begin(), entries_.end(), Later{});
    HandleImpl* h = entries_.back().handle;
    entries_.pop_back();
    h->in_heap = false;
    if (h->cancelled) --cancelled_;
    return h;
  }

  /// Called when a timer in this heap is cancelled; compacts as asyncio does once more than
  /// half of over kMinForCompaction scheduled timers are cancelled. When the earliest timer was
  /// cancelled the owner is told, so it can re-arm its wake-up.
  void note_cancelled(HandleImpl* h) noexcept {
    bool was_top = entries_.front().handle == h;
    // The last slot of the array is a leaf: a timer cancelled while it is still there (the
    // common "schedule a timeout, then cancel it" pattern) leaves in O(1).
    if (entries_.back().handle == h) {
      entries_.pop_back();
      h->in_heap = false;
      release(h);
    } else {
      ++cancelled_;
      if (entries_.size() > kMinForCompaction && cancelled_ * 2 > entries_.size()) compact();
    }
    if (was_top && on_top_cancelled_ != nullptr) on_top_cancelled_(owner_);
  }

  /// Registers `fn(owner)`, called when the earliest timer is cancelled.
  void on_top_cancelled(void (*fn)(void*), void* owner) noexcept {
    on_top_cancelled_ = fn;
    owner_ = owner;
  }

  /// Drops cancelled timers from the top, so top() is the first live one (if any).
  void drop_cancelled_top() noexcept {
    while (!entries_.empty() && entries_.front().handle->cancelled)
      release(pop());
  }

  /// Removes every cancelled timer and rebuilds the heap.
  void compact() noexcept;

  /// Releases every timer, detaching each from its loop (their callbacks never run).
  void clear() noexcept;

 private:
  struct Entry {
    double when;
    std::uint64_t seq;
    HandleImpl* handle;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const noexcept {
      return a.when > b.when || (a.when == b.when && a.seq > b.seq);
    }
  };

  std::vector<Entry> entries_;
  std::size_t cancelled_ = 0;
  std::uint64_t next_seq_ = 0;
  void (*on_top_cancelled_)(void*) = nullptr;
  void* owner_ = nullptr;
};

}  // namespace asyncuv::detail
