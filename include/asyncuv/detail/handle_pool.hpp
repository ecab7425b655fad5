// Per-thread free lists for handle blocks: call_soon and call_later allocate one block per
// callback, and recycling blocks of a few fixed sizes is cheaper than malloc/free. Under
// AddressSanitizer the pool is bypassed so use-after-free stays detectable.
#pragma once

#include <cstddef>
#include <new>

namespace asyncuv::detail {

/// Size classes served by the pool; larger or over-aligned blocks use operator new.
inline constexpr std::size_t kPoolClassSizes[] = {64, 128, 256, 512};
inline constexpr int kPoolClasses = 4;

template <std::size_t Size, std::size_t Align>
constexpr int pool_class() {
  if constexpr (Align > alignof(std::max_align_t)) {
    return -1;
  } else if constexpr (Size <= 64) {
    return 0;
  } else if constexpr (Size <= 128) {
    return 1;
  } else if constexpr (Size <= 256) {
    return 2;
  } else if constexpr (Size <= 512) {
    return 3;
  } else {
    return -1;
  }
}

/// The class for a size known only at run time (coroutine frames), or -1.
inline int pool_class_for(std::size_t size) noexcept {
  for (int c = 0; c < kPoolClasses; ++c) {
    if (size <= kPoolClassSizes[c]) return c;
  }
  return -1;
}

void* pool_allocate(int size_class);
void pool_free(void* block, int size_class) noexcept;

/// Storage for an object of type T.
template <class T>
void* allocate_block() {
  constexpr int cls = pool_class<sizeof(T), alignof(T)>();
  if constexpr (cls < 0) {
    return ::operator new(sizeof(T), std::align_val_t(alignof(T)));
  } else {
    return pool_allocate(cls);
  }
}

/// Returns storage obtained from allocate_block<T>().
template <class T>
void free_block(void* block) noexcept {
  constexpr int cls = pool_class<sizeof(T), alignof(T)>();
  if constexpr (cls < 0) {
    ::operator delete(block, std::align_val_t(alignof(T)));
  } else {
    pool_free(block, cls);
  }
}

/// Storage of `size` bytes (for coroutine frames); release with free_sized.
inline void* allocate_sized(std::size_t size) {
  int cls = pool_class_for(size);
  return cls < 0 ? ::operator new(size) : pool_allocate(cls);
}
inline void free_sized(void* block, std::size_t size) noexcept {
  int cls = pool_class_for(size);
  if (cls < 0) {
    ::operator delete(block);
  } else {
    pool_free(block, cls);
  }
}

/// A standard allocator over the pool (for std::allocate_shared of task states).
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_sized(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { free_sized(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace asyncuv::detail
