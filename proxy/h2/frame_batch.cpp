#include "proxy/h2/frame_batch.hpp"

#include <utility>

namespace bgproxy::proxy {

void FrameBatch::append(std::string_view bytes) {
  if (bytes.empty()) return;
  if (!pieces_.empty() && pieces_.back().data == nullptr) {
    pieces_.back().len += bytes.size();  // the copied bytes run on
  } else {
    pieces_.push_back(Piece{nullptr, bytes_.size(), bytes.size()});
  }
  bytes_.append(bytes);
  size_ += bytes.size();
}

void FrameBatch::add_data(const std::uint8_t* framehd, std::string_view payload, std::shared_ptr<void> owner,
                          PayloadQueue& queue, std::uint64_t upto) {
  append({reinterpret_cast<const char*>(framehd), 9});
  if (payload.size() < copy_below_) {
    append(payload);
  } else {
    pieces_.push_back(Piece{payload.data(), 0, payload.size()});
    size_ += payload.size();
  }
  if (!held_.empty() && held_.back().queue == &queue) {
    held_.back().upto = upto;  // the stream's frames follow each other: one entry for them
    return;
  }
  held_.push_back(Held{std::move(owner), &queue, upto});
}

std::span<const boost::asio::const_buffer> FrameBatch::buffers() {
  buffers_.clear();
  for (const auto& p : pieces_) buffers_.emplace_back(p.data != nullptr ? p.data : bytes_.data() + p.at, p.len);
  return buffers_;
}

void FrameBatch::written() noexcept {
  for (auto& h : held_) h.queue->release(h.upto);
  held_.clear();
  pieces_.clear();
  bytes_.clear();
  size_ = 0;
}

}  // namespace bgproxy::proxy
