#pragma once
/// An HTTP/2 request stream, written as the HTTP/1.1 request the proxy's session reads (SPEC §13):
/// every stream then goes through the same parser, routing, stickiness, override, limits,
/// accounting and upstream code as a request on an HTTP/1.1 connection. Written as its fields
/// arrive (nghttp2's header callback), re-validated on the way, because what is harmless in an
/// HTTP/2 field can be a second request or a smuggled header in HTTP/1.1:
/// - names lowercase tokens, values without NUL, CR or LF (nghttp2 checks them too);
/// - `:path` origin-form (`/...`, or `*` for OPTIONS) without `#` or controls;
/// - `:authority` a host[:port] without userinfo, and a `host` field, if any, the same;
/// - connection-specific fields (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
///   Upgrade) refused as RFC 9113 §8.2.2 says; `te` (only `trailers` is legal) and `expect`
///   dropped; split `cookie` fields joined with "; " (§8.2.3);
/// - a body without Content-Length goes chunked, so its end is the stream's end.
/// Pure. Thread: owned by one stream.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace bgproxy::proxy {

class H1Request {
 public:
  /// One field of the request's HEADERS (pseudo-fields included, in arrival order).
  /// @return false when the stream is malformed (RFC 9113 §8.1.1: a stream error)
  bool add(std::string_view name, std::string_view value);
  /// The head is complete. @param body_follows the HEADERS frame did not end the stream
  /// @return false when the request is malformed (a pseudo-field missing, host mismatch)
  bool finish(bool body_follows);

  /// The HTTP/1.1 request head (after finish()).
  const std::string& head() const noexcept { return head_; }
  /// Moves the head out (it becomes the stream's input without a copy); head() is empty after.
  std::string take_head() noexcept { return std::move(head_); }
  bool head_method() const noexcept { return method_ == "HEAD"; }
  /// The body is sent chunked: no Content-Length came with it.
  bool chunked() const noexcept { return chunked_; }
  /// Bytes the fields took, as SETTINGS_MAX_HEADER_LIST_SIZE counts them (RFC 9113 §6.5.2).
  std::size_t list_size() const noexcept { return list_size_; }

 private:
  std::string method_;
  std::string path_;
  std::string authority_;
  std::string host_;
  std::string cookie_;
  std::string fields_;  ///< "Name: value\r\n" lines of the regular fields
  std::string head_;
  std::size_t list_size_ = 0;
  bool scheme_seen_ = false;
  bool regular_seen_ = false;
  bool content_length_ = false;
  bool chunked_ = false;
};

}  // namespace bgproxy::proxy
