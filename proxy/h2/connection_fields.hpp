#pragma once
/// Fields that belong to one HTTP/1.1 connection, not to the message (RFC 9113 §8.2.2): HTTP/2
/// carries none of them, so they are refused from HTTP/2 clients and dropped on the way from
/// HTTP/1.1 to HTTP/2. (`te` is the one such field HTTP/2 allows, as `te: trailers`: callers
/// decide about it.) Thread: any.

#include <string_view>

#include <boost/beast/http/field.hpp>

namespace bgproxy::proxy {

/// @param lower a field name in lower case
constexpr bool connection_specific(std::string_view lower) noexcept {
  return lower == "connection" || lower == "keep-alive" || lower == "proxy-connection" ||
         lower == "transfer-encoding" || lower == "upgrade";
}

/// The same for a classified field, `te` included (an answer from HTTP/1.1 has no use for it).
constexpr bool connection_specific(boost::beast::http::field id) noexcept {
  using boost::beast::http::field;
  return id == field::connection || id == field::keep_alive || id == field::proxy_connection ||
         id == field::transfer_encoding || id == field::upgrade || id == field::te;
}

}  // namespace bgproxy::proxy
