#pragma once
/// HTTP/1.1 heads bgproxy wrote itself, read back into a ParsedHead on the way to HTTP/2: the
/// answer a session writes to an HTTP/2 client's stream, and the request a session writes to an
/// HTTP/2 backend's stream. Both come from head_writer.cpp (fields Beast's strict parser took
/// from the peer, or a local answer), so they are split at their CRLFs, not parsed a second time
/// (Beast's parser cost ~4,000 instructions per head there, a tenth of an HTTP/2 request's cost).
/// Thread: pure functions.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/http/parsed_head.hpp"

namespace bgproxy::proxy {

struct OwnHead {
  std::size_t size = 0;  ///< bytes of the head with its blank line; 0 while it is not all there
  bool malformed = false;  ///< not a head our writer makes (a bug): the stream is reset
  bool chunked = false;    ///< Transfer-Encoding ends in chunked
  std::optional<std::uint64_t> content_length;
};

/// Splits the answer head at the start of `bytes` into `head` (cleared first; views into `bytes`).
OwnHead split_own_response_head(std::string_view bytes, ParsedHead& head);
/// The same for a request head ("METHOD target HTTP/1.1").
OwnHead split_own_request_head(std::string_view bytes, ParsedHead& head);

}  // namespace bgproxy::proxy
