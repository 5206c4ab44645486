#pragma once
/// Splits a request-target (RFC 9112 §3.2) into what routing and forwarding need.
/// I/O-free; the views point into the request head. Thread: any.

#include <string_view>

namespace bgproxy::proxy {

struct RequestTarget {
  bool valid = false;
  std::string_view origin_form;        ///< what is forwarded: "/path?query" (or "*")
  std::string_view path;               ///< origin_form without the query, for matching
  std::string_view host_without_port;  ///< from an absolute-form target, else from Host
  std::string_view authority;          ///< "host[:port]" of an absolute-form target; empty otherwise
};

/// @param target the request-target as received (origin-, absolute- or asterisk-form)
/// @param host_header the Host field value (may be empty for HTTP/1.0)
RequestTarget split_target(std::string_view target, std::string_view host_header) noexcept;

/// "example.com:8080" → "example.com", "[::1]:80" → "[::1]".
std::string_view strip_port(std::string_view host) noexcept;

}  // namespace bgproxy::proxy
