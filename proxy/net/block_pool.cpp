#include "proxy/net/block_pool.hpp"

#include <sys/mman.h>

#include <new>

namespace bgproxy::proxy {

void* BlockPool::take() {
  if (free_ != nullptr) {
    auto* block = free_;
    free_ = block->next;
    --kept_;
    return block;
  }
  void* block = ::mmap(nullptr, block_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (block == MAP_FAILED) throw std::bad_alloc();
  return block;
}

void BlockPool::give(void* block) noexcept {
  if (kept_ >= keep_) {
    ::munmap(block, block_size);
    return;
  }
  free_ = new (block) Free{free_};
  ++kept_;
}

void BlockPool::release() noexcept {
  while (free_ != nullptr) {
    auto* next = free_->next;
    ::munmap(free_, block_size);
    free_ = next;
  }
  kept_ = 0;
}

}  // namespace bgproxy::proxy
