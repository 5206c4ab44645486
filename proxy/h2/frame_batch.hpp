#pragma once
/// The frames of one write on an HTTP/2 connection (to a client or to a backend): nghttp2's
/// serialized frames and small DATA payloads copied in, large DATA payloads pointed at where
/// they sit (their stream's PayloadQueue), so a 16 KiB body goes from the session's bytes to the
/// socket without being copied twice more on the way. The batch holds each stream it points into
/// until the write is done, then releases the written bytes to its queue.
/// Thread: the owning worker's only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "proxy/h2/payload_queue.hpp"

namespace bgproxy::proxy {

class FrameBatch {
 public:
  /// Copies `bytes` in (frames, frame headers, small payloads).
  void append(std::string_view bytes);
  /// Points at `payload` in place: it must stay put until written() (its stream is held).
  void point_at(std::string_view payload);
  /// Keeps `owner` (the stream that owns `queue`) until the write is done, then releases the
  /// queue's payload up to `upto`.
  void hold(std::shared_ptr<void> owner, PayloadQueue& queue, std::uint64_t upto);

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  /// What to write, in order; valid until the batch changes (a span: the write copies no vector).
  std::span<const boost::asio::const_buffer> buffers();
  /// The write is done (or failed): the payloads go back, the batch is empty again.
  void written() noexcept;

 private:
  /// `data` null: bytes_[at, at + len); else the payload at data.
  struct Piece {
    const char* data;
    std::size_t at;
    std::size_t len;
  };
  std::string bytes_;
  std::vector<Piece> pieces_;
  struct Held {
    std::shared_ptr<void> owner;
    PayloadQueue* queue;
    std::uint64_t upto;
  };
  std::vector<Held> held_;
  std::vector<boost::asio::const_buffer> buffers_;
  std::size_t size_ = 0;
};

}  // namespace bgproxy::proxy
