#pragma once
/// The worker's client sessions and their idle waits: objects of one size in 64 KiB slabs mapped apart from the heap,
/// each slab unmapped as soon as its last object is freed, but one (issue 14, "RSS returns near
/// its baseline after they close"; the one kept spares a client that connects for each request
/// three mmap calls per connection).
///
/// Why not malloc: Asio keeps the reactor state of every socket it ever opened (its
/// descriptor_state pool) on the heap for reuse, allocated as each connection was accepted,
/// so each sat next to that connection's session. When a crowd of 20,000 clients closed, every
/// heap page still held a descriptor_state, and glibc could give back none of the sessions'
/// pages: RSS stayed 17 MiB above its baseline (8.6 MiB with the sessions here; the op of each
/// idle connection's wait sat between them too). With both here, the descriptor_states pack
/// densely and closed sessions leave whole slabs that go back to the system.
/// Thread: the owning worker's only.

#include <cstddef>
#include <cstdint>

namespace bgproxy::proxy {

class SlabPool {
 public:
  static constexpr std::size_t slab_size = 64 * 1024;

  SlabPool() noexcept = default;
  ~SlabPool();
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  /// Every call with the same `bytes` (the pool's size is set by the first one).
  /// @throws std::bad_alloc when the system has no memory to map; std::logic_error for another size
  void* allocate(std::size_t bytes);
  void deallocate(void* object) noexcept;

  /// Slabs mapped now (for tests and the bench's explanations).
  std::size_t slabs() const noexcept { return slabs_; }

 private:
  struct Slab;
  Slab* map_slab();
  void unlink(Slab* s) noexcept;

  Slab* partial_ = nullptr;  ///< slabs with a free slot, most recently freed into first
  Slab* spare_ = nullptr;    ///< an empty slab, kept
  std::size_t slot_ = 0;
  std::size_t slabs_ = 0;
};

/// Allocates through a SlabPool (for std::allocate_shared: the session and its control block in
/// one slot).
template <class T>
class SlabAllocator {
 public:
  using value_type = T;
  explicit SlabAllocator(SlabPool& pool) noexcept : pool_(&pool) {}
  template <class U>
  SlabAllocator(const SlabAllocator<U>& other) noexcept : pool_(other.pool()) {}  // NOLINT(google-explicit-constructor)

  T* allocate(std::size_t n) { return static_cast<T*>(pool_->allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { pool_->deallocate(p); }

  SlabPool* pool() const noexcept { return pool_; }
  friend bool operator==(const SlabAllocator& a, const SlabAllocator& b) noexcept { return a.pool_ == b.pool_; }

 private:
  SlabPool* pool_;
};

}  // namespace bgproxy::proxy
