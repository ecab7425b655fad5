// Per-thread free lists behind detail::allocate_block / free_block.
#include "asyncuv/detail/handle_pool.hpp"

#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#define ASYNCUV_POOL_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASYNCUV_POOL_DISABLED 1
#endif
#endif

namespace asyncuv::detail {

namespace {
/// Blocks kept per size class and thread; beyond that they go back to the allocator.
constexpr unsigned kMaxCached = 4096;

struct FreeBlock {
  FreeBlock* next;
};

struct ThreadCache {
  FreeBlock* head[kPoolClasses] = {};
  unsigned count[kPoolClasses] = {};

  ThreadCache() = default;
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;
  ~ThreadCache() {
    for (int c = 0; c < kPoolClasses; ++c) {
      while (head[c] != nullptr) {
        FreeBlock* b = head[c];
        head[c] = b->next;
        ::operator delete(b);
      }
    }
  }
};

#ifndef ASYNCUV_POOL_DISABLED
thread_local ThreadCache t_cache;
#endif
}  // namespace

void* pool_allocate(int size_class) {
#ifndef ASYNCUV_POOL_DISABLED
  ThreadCache& cache = t_cache;
  if (FreeBlock* b = cache.head[size_class]) {
    cache.head[size_class] = b->next;
    --cache.count[size_class];
    return b;
  }
#endif
  return ::operator new(kPoolClassSizes[size_class]);
}

void pool_free(void* block, int size_class) noexcept {
#ifndef ASYNCUV_POOL_DISABLED
  ThreadCache& cache = t_cache;
  if (cache.count[size_class] < kMaxCached) {
    auto* b = static_cast<FreeBlock*>(block);
    b->next = cache.head[size_class];
    cache.head[size_class] = b;
    ++cache.count[size_class];
    return;
  }
#endif
  ::operator delete(block);
}

}  // namespace asyncuv::detail
