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
  /// A write stops gathering once it holds this much (its last frame may take it past).
  static constexpr std::size_t limit = 64 * 1024;

  /// @param over_tls copy every payload: the TLS stream would make each buffer of a sequence a
  ///        record of its own. Otherwise payloads below 4 KiB are copied (cheaper than another
  ///        buffer in the write) and larger ones pointed at: about 35 buffers at most, within one
  ///        sendmsg (Asio gathers 64).
  explicit FrameBatch(bool over_tls) noexcept : copy_below_(over_tls ? limit + 1 : 4096) {}

  /// Copies `bytes` in (frames nghttp2 serialized).
  void append(std::string_view bytes);
  /// A DATA frame (nghttp2's send-data callback): its 9-byte header copied, its payload copied or
  /// pointed at in `queue`; `owner` (the stream that owns the queue) is kept until the write is
  /// done, then the queue's payload up to `upto` is released. No padding is ever chosen (no
  /// select_padding callback), so the header is the whole frame prefix.
  void add_data(const std::uint8_t* framehd, std::string_view payload, std::shared_ptr<void> owner,
                PayloadQueue& queue, std::uint64_t upto);

  bool full() const noexcept { return size_ >= limit; }
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
  std::size_t copy_below_;
};

}  // namespace bgproxy::proxy
