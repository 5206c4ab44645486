#pragma once
/// Incremental validator of HTTP/1.1 chunked framing (RFC 9112 §7.1).
/// It finds where a chunked body ends without copying it, so the proxy can
/// forward the validated bytes as they are, and it rejects the malformed chunk
/// sizes that request smuggling relies on. I/O-free.
/// Thread: owned by one session.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bgproxy::proxy {

class ChunkedScanner {
 public:
  struct Result {
    std::size_t consumed = 0;  ///< bytes of the input that belong to the body
    bool done = false;         ///< the last-chunk and trailer section ended inside them
    bool error = false;        ///< framing is invalid; nothing after `consumed` may be forwarded
  };

  /// Receives the byte range [offset, offset + size) of the input that is chunk payload.
  class PayloadSink {
   public:
    virtual void on_payload(std::size_t offset, std::size_t size) = 0;
    /// The byte range [offset, offset + size) of the input is part of a trailer field line
    /// (its CRLF included), for a de-chunker that passes trailers on (HTTP/2, gRPC).
    virtual void on_trailer(std::size_t, std::size_t) {}

   protected:
    ~PayloadSink() = default;
  };

  /// Scans as much of `input` as belongs to the body.
  /// @param sink when not null, told where payload bytes lie (to de-chunk a body)
  Result scan(std::string_view input, PayloadSink* sink = nullptr) noexcept;

  /// @return the sum of chunk sizes seen so far (to enforce a body limit)
  std::uint64_t payload_bytes() const noexcept { return payload_bytes_; }

  void reset() noexcept { *this = ChunkedScanner{}; }

 private:
  enum class State : std::uint8_t {
    size_first, size, size_ws, ext, size_lf, data, data_cr, data_lf,
    trailer_start, trailer_line, trailer_lf, final_lf, done
  };

  static constexpr unsigned max_size_digits = 16;
  static constexpr std::size_t max_line_bytes = 8192;

  State state_ = State::size_first;
  std::uint64_t chunk_left_ = 0;
  std::uint64_t payload_bytes_ = 0;
  unsigned digits_ = 0;
  std::size_t line_bytes_ = 0;
};

}  // namespace bgproxy::proxy
