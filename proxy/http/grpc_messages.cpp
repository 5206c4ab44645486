#include "proxy/http/grpc_messages.hpp"

#include <algorithm>

namespace bgproxy::proxy {

void GrpcMessages::feed(std::string_view bytes) noexcept {
  std::size_t i = 0;
  while (i < bytes.size() && started_ < 2) {
    if (payload_left_ != 0) {
      const auto skip = std::min<std::uint64_t>(payload_left_, bytes.size() - i);
      payload_left_ -= skip;
      i += static_cast<std::size_t>(skip);
      continue;
    }
    if (prefix_left_ == 0) {
      ++started_;
      prefix_left_ = prefix_bytes;
      length_ = 0;
    }
    const auto byte = static_cast<unsigned char>(bytes[i++]);
    // The first prefix byte is the compressed flag; the four after it, the length.
    if (prefix_left_ != prefix_bytes) length_ = length_ << 8 | byte;
    if (--prefix_left_ == 0) payload_left_ = length_;
  }
}

}  // namespace bgproxy::proxy
