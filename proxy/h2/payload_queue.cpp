#include "proxy/h2/payload_queue.hpp"

#include <algorithm>
#include <cstring>

namespace bgproxy::proxy {
namespace {
constexpr std::uint64_t block = BlockPool::block_size;
}

PayloadQueue::~PayloadQueue() {
  for (char* b : blocks_) pool_->give(b);
}

void PayloadQueue::append(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto pos = end_ - base_;
    if (pos == blocks_.size() * block) blocks_.push_back(static_cast<char*>(pool_->take()));
    const auto offset = static_cast<std::size_t>(pos % block);
    const auto n = std::min(bytes.size(), static_cast<std::size_t>(block) - offset);
    std::memcpy(blocks_[static_cast<std::size_t>(pos / block)] + offset, bytes.data(), n);
    bytes.remove_prefix(n);
    end_ += n;
  }
}

std::string_view PayloadQueue::next(std::size_t at_most) const noexcept {
  const auto pos = framed_ - base_;
  const auto offset = static_cast<std::size_t>(pos % block);
  const auto n = std::min({at_most, pending(), static_cast<std::size_t>(block) - offset});
  if (n == 0) return {};
  return {blocks_[static_cast<std::size_t>(pos / block)] + offset, n};
}

void PayloadQueue::release(std::uint64_t upto) noexcept {
  std::size_t done = 0;
  while (done < blocks_.size() && base_ + block <= upto) {
    pool_->give(blocks_[done++]);
    base_ += block;
  }
  // All of it written: the last, partly filled block goes too (an idle stream holds none).
  if (upto == end_ && done < blocks_.size()) {
    pool_->give(blocks_[done++]);
    base_ = end_;
  }
  blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(done));
}

}  // namespace bgproxy::proxy
