#pragma once
/// The answer head a session writes to an HTTP/2 stream, read back into a ParsedHead. That head
/// is always bgproxy's own (head_writer.cpp): the backend's fields after Beast's strict parser
/// took them, or a local answer. So it is split at its CRLFs, not parsed a second time (Beast's
/// parser cost ~4,000 instructions per answer here, a tenth of an HTTP/2 request's cost).
/// Thread: a pure function.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/http/parsed_head.hpp"

namespace bgproxy::proxy {

struct OwnResponseHead {
  std::size_t size = 0;  ///< bytes of the head with its blank line; 0 while it is not all there
  bool malformed = false;  ///< not a head our writer makes (a bug): the stream is reset
  bool chunked = false;    ///< Transfer-Encoding ends in chunked
  std::optional<std::uint64_t> content_length;
};

/// Splits the head at the start of `bytes` into `head` (cleared first; views into `bytes`).
OwnResponseHead split_own_response_head(std::string_view bytes, ParsedHead& head);

}  // namespace bgproxy::proxy
