#pragma once
/// The worker's read buffers: 32 KiB blocks mapped apart from the heap and kept on a free list
/// (HAProxy's buffer pools are the model). A connection holds one only while it reads or relays;
/// an idle one gives it back (issue 14). Two reasons not to take them from malloc: a block
/// freed between the long-lived small objects of other connections leaves a hole glibc cannot
/// give back, so a crowd of clients that went idle kept their buffers' pages for good; and a
/// free list hands the warmest block out again at the cost of a pointer swap.
/// Thread: the owning worker's only.

#include <cstddef>
#include <memory>

#include <boost/beast/core/flat_buffer.hpp>

namespace bgproxy::proxy {

class BlockPool {
 public:
  /// One read's worth: a 16 KiB body with its head arrives in one read and leaves in one write
  /// (with 16 KiB blocks it took two of each, and 16 % more CPU per request than HAProxy).
  static constexpr std::size_t block_size = 32 * 1024;

  /// @param keep blocks kept for reuse once given back; more are unmapped at once
  explicit BlockPool(std::size_t keep) noexcept : keep_(keep) {}
  ~BlockPool() { release(); }
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  /// @throws std::bad_alloc when the system has no memory to map
  void* take();
  void give(void* block) noexcept;
  /// Unmaps the blocks kept for reuse (a crowd of clients went idle or away).
  void release() noexcept;

  std::size_t kept() const noexcept { return kept_; }

 private:
  struct Free {
    Free* next;
  };
  Free* free_ = nullptr;
  std::size_t kept_ = 0;
  std::size_t keep_;
};

/// An allocator for ReadBuffer: a request of exactly one block comes from the pool, anything
/// else (a buffer grown for a long head or pipelined bytes) from the heap.
template <class T>
class PooledAllocator {
 public:
  using value_type = T;
  explicit PooledAllocator(BlockPool& pool) noexcept : pool_(&pool) {}
  template <class U>
  PooledAllocator(const PooledAllocator<U>& other) noexcept : pool_(other.pool()) {}

  T* allocate(std::size_t n) {
    if (n * sizeof(T) == BlockPool::block_size) return static_cast<T*>(pool_->take());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) == BlockPool::block_size) return pool_->give(p);
    std::allocator<T>().deallocate(p, n);
  }

  BlockPool* pool() const noexcept { return pool_; }
  friend bool operator==(const PooledAllocator& a, const PooledAllocator& b) noexcept { return a.pool_ == b.pool_; }

 private:
  BlockPool* pool_;
};

/// Bytes read from a client or a backend and not yet parsed or relayed.
using ReadBuffer = boost::beast::basic_flat_buffer<PooledAllocator<char>>;

}  // namespace bgproxy::proxy
