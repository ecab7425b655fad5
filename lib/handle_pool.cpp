// Per-thread free lists behind detail::allocate_block / free_block.
//
// Blocks are carved from 64 KiB slabs, so even a burst of a million pending callbacks costs
// no malloc per callback. Freed blocks go to the freeing thread's list; a thread that exits
// hands its list to a shared one that other threads draw from. Slabs are kept for the life of
// the process (they stay reachable through the slab registry), which bounds the memory the
// pool holds to the peak number of live handles.
#include "asyncuv/detail/handle_pool.hpp"

#include <mutex>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define ASYNCUV_POOL_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASYNCUV_POOL_DISABLED 1
#endif
#endif

#include "internal.hpp"

namespace asyncuv::detail {

#ifndef ASYNCUV_POOL_DISABLED
namespace {
constexpr std::size_t kSlabBytes = 64 * 1024;

struct FreeBlock {
  FreeBlock* next;
};

/// What exited threads left behind, and every slab ever made.
struct SharedPool {
  std::mutex mutex;
  FreeBlock* head[kPoolClasses] = {};
  std::vector<void*> slabs;
};

SharedPool& shared_pool() {
  static SharedPool* pool = new SharedPool;  // never destroyed: blocks may outlive statics
  return *pool;
}

struct ThreadLists {
  FreeBlock* head[kPoolClasses];
  char* bump[kPoolClasses];
  char* bump_end[kPoolClasses];
  bool registered;
};

// Trivially constructible, so access needs no guard; the flusher below is registered on first
// use and returns the lists at thread exit.
thread_local ThreadLists t_lists ASYNCUV_FAST_TLS;

struct Flusher {
  ~Flusher() {
    SharedPool& pool = shared_pool();
    std::lock_guard lock(pool.mutex);
    for (int c = 0; c < kPoolClasses; ++c) {
      // Unused bump space is dropped (it stays in its slab); freed blocks are shared.
      while (FreeBlock* b = t_lists.head[c]) {
        t_lists.head[c] = b->next;
        b->next = pool.head[c];
        pool.head[c] = b;
      }
      t_lists.bump[c] = t_lists.bump_end[c] = nullptr;
    }
  }
};

void register_flusher() {
  static thread_local Flusher flusher;
  (void)flusher;
  t_lists.registered = true;
}

[[gnu::noinline]] void* refill(int size_class) {
  if (!t_lists.registered) register_flusher();
  std::size_t size = kPoolClassSizes[size_class];
  SharedPool& pool = shared_pool();
  {
    std::lock_guard lock(pool.mutex);
    if (FreeBlock* b = pool.head[size_class]) {
      // Take the whole shared list.
      pool.head[size_class] = nullptr;
      t_lists.head[size_class] = b->next;
      return b;
    }
    char* slab = static_cast<char*>(::operator new(kSlabBytes));
    pool.slabs.push_back(slab);
    t_lists.bump[size_class] = slab + size;
    t_lists.bump_end[size_class] = slab + kSlabBytes;
    return slab;
  }
}
}  // namespace

void* pool_allocate(int size_class) {
  ThreadLists& lists = t_lists;
  if (FreeBlock* b = lists.head[size_class]) {
    lists.head[size_class] = b->next;
    return b;
  }
  char* p = lists.bump[size_class];
  if (p != nullptr && p != lists.bump_end[size_class]) {
    lists.bump[size_class] = p + kPoolClassSizes[size_class];
    return p;
  }
  return refill(size_class);
}

void pool_free(void* block, int size_class) noexcept {
  ThreadLists& lists = t_lists;
  auto* b = static_cast<FreeBlock*>(block);
  b->next = lists.head[size_class];
  lists.head[size_class] = b;
  if (!lists.registered) register_flusher();
}

#else  // AddressSanitizer: every block is a separate allocation, so misuse is caught.

void* pool_allocate(int size_class) {
  return ::operator new(kPoolClassSizes[size_class]);
}
void pool_free(void* block, int) noexcept {
  ::operator delete(block);
}

#endif

}  // namespace asyncuv::detail
