#pragma once
/// How many gRPC messages a body carried: 0, 1 or more than 1 (SPEC §13). A call whose request
/// or response carried more than one is a streaming call, kept out of p95. Messages are
/// length-prefixed (1 byte compressed flag, 4 bytes big-endian length, the payload); the body's
/// payload bytes come in pieces as the relay sees them, a prefix possibly split across pieces.
/// I/O-free, no allocation. Thread: owned by one session.

#include <cstdint>
#include <string_view>

namespace bgproxy::proxy {

class GrpcMessages {
 public:
  /// The next payload bytes of the body (de-chunked: chunk framing is not payload).
  void feed(std::string_view bytes) noexcept;

  /// 0, 1, or 2 for two or more: messages whose first prefix byte was seen.
  unsigned count() const noexcept { return started_; }

  void reset() noexcept { *this = GrpcMessages{}; }

 private:
  static constexpr std::uint8_t prefix_bytes = 5;

  std::uint8_t started_ = 0;      ///< saturates at 2: past that, nothing more is read
  std::uint8_t prefix_left_ = 0;  ///< bytes of the current prefix still to come
  std::uint32_t length_ = 0;      ///< the current message's length, as its prefix gives it
  std::uint64_t payload_left_ = 0;
};

}  // namespace bgproxy::proxy
