#include "proxy/net/slab_pool.hpp"

#include <sys/mman.h>

#include <new>
#include <stdexcept>

namespace bgproxy::proxy {

/// At the start of its own slab, which is aligned to slab_size: an object's slab is its
/// address rounded down.
struct SlabPool::Slab {
  struct Free {
    Free* next;
  };
  Slab* prev = nullptr;  ///< in partial_ (both null and not the head: the slab is full)
  Slab* next = nullptr;
  Free* free = nullptr;
  char* fresh;            ///< slots never handed out start here
  char* end;
  std::size_t used = 0;
};

namespace {
constexpr std::size_t round_up(std::size_t n) {
  return (n + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) * alignof(std::max_align_t);
}
}  // namespace

SlabPool::~SlabPool() {
  // Sessions die with their worker's loop before the pool; whatever is left is unmapped whole.
  if (spare_ != nullptr) ::munmap(spare_, slab_size);
  while (partial_ != nullptr) {
    Slab* next = partial_->next;
    ::munmap(partial_, slab_size);
    partial_ = next;
  }
}

SlabPool::Slab* SlabPool::map_slab() {
  // Twice the size, then the unaligned ends go back: mmap only promises page alignment.
  void* raw = ::mmap(nullptr, 2 * slab_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const auto aligned = (start + slab_size - 1) & ~(slab_size - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  if (aligned + slab_size < start + 2 * slab_size) {
    ::munmap(reinterpret_cast<void*>(aligned + slab_size), start + 2 * slab_size - aligned - slab_size);
  }
  auto* base = reinterpret_cast<char*>(aligned);
  auto* s = new (base) Slab{};
  s->fresh = base + round_up(sizeof(Slab));
  s->end = s->fresh + (slab_size - round_up(sizeof(Slab))) / slot_ * slot_;
  ++slabs_;
  return s;
}

void SlabPool::unlink(Slab* s) noexcept {
  if (s->prev != nullptr) s->prev->next = s->next;
  else partial_ = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
}

void* SlabPool::allocate(std::size_t bytes) {
  const std::size_t slot = round_up(bytes);
  if (slot_ == 0) {
    if (slot > (slab_size - round_up(sizeof(Slab))) / 8) throw std::logic_error("SlabPool: object too large for a slab");
    slot_ = slot;
  } else if (slot != slot_) {
    throw std::logic_error("SlabPool: every object of a pool has the same size");
  }
  if (partial_ == nullptr) {
    partial_ = spare_ != nullptr ? spare_ : map_slab();
    spare_ = nullptr;
  }
  Slab* s = partial_;
  void* object;
  if (s->free != nullptr) {
    object = s->free;
    s->free = s->free->next;
  } else {
    object = s->fresh;
    s->fresh += slot_;
  }
  ++s->used;
  if (s->free == nullptr && s->fresh == s->end) unlink(s);
  return object;
}

void SlabPool::deallocate(void* object) noexcept {
  auto* s = reinterpret_cast<Slab*>(reinterpret_cast<std::uintptr_t>(object) & ~(slab_size - 1));
  const bool was_full = s->free == nullptr && s->fresh == s->end;
  if (--s->used == 0) {
    if (!was_full) unlink(s);
    if (spare_ == nullptr) {
      *s = Slab{nullptr, nullptr, nullptr, reinterpret_cast<char*>(s) + round_up(sizeof(Slab)), s->end, 0};
      spare_ = s;
    } else {
      ::munmap(s, slab_size);
      --slabs_;
    }
    return;
  }
  s->free = new (object) Slab::Free{s->free};
  if (was_full) {
    s->next = partial_;
    if (partial_ != nullptr) partial_->prev = s;
    partial_ = s;
  }
}

}  // namespace bgproxy::proxy
