#pragma once
/// The payload of one HTTP/2 answer, between the session that writes it and the DATA frames that
/// carry it. The bytes sit in the worker's pooled blocks (block_pool.hpp), so a frame can point
/// at them instead of copying them into nghttp2's frame buffer and again into the write buffer
/// (NGHTTP2_DATA_FLAG_NO_COPY). A block goes back to the pool once every frame that points into
/// it has been written. Positions are counted from the first byte of the answer, so a frame
/// written late releases exactly what it held. Thread: the owning worker's only.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/container/small_vector.hpp>

#include "proxy/net/block_pool.hpp"

namespace bgproxy::proxy {

class PayloadQueue {
 public:
  explicit PayloadQueue(BlockPool& pool) noexcept : pool_(&pool) {}
  ~PayloadQueue();
  PayloadQueue(const PayloadQueue&) = delete;
  PayloadQueue& operator=(const PayloadQueue&) = delete;

  /// @throws std::bad_alloc when a block cannot be mapped
  void append(std::string_view bytes);
  /// Bytes appended and not yet handed to a frame.
  std::size_t pending() const noexcept { return static_cast<std::size_t>(end_ - framed_); }
  /// The next bytes to frame, at most `at_most` and all in one block (a frame points at one span).
  std::string_view next(std::size_t at_most) const noexcept;
  /// Hands the first `n` pending bytes to a frame; they stay in place until released.
  /// @return the position just past them, for release()
  std::uint64_t frame(std::size_t n) noexcept { return framed_ += n; }
  /// Everything before `upto` is written: the blocks wholly before it go back to the pool.
  void release(std::uint64_t upto) noexcept;

 private:
  BlockPool* pool_;
  /// blocks_[k] holds positions [base_ + k * block_size, base_ + (k + 1) * block_size)
  boost::container::small_vector<char*, 4> blocks_;
  std::uint64_t base_ = 0;
  std::uint64_t framed_ = 0;
  std::uint64_t end_ = 0;
};

}  // namespace bgproxy::proxy
