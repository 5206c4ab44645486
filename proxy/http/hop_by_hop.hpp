#pragma once
/// Hop-by-hop header rules (RFC 9110 §7.6.1): which fields a proxy must not forward.
/// Thread: any.

#include <array>
#include <cstddef>
#include <string_view>

#include <boost/beast/http/field.hpp>

#include "proxy/http/parsed_head.hpp"

namespace bgproxy::proxy {

/// @return true for the fixed hop-by-hop fields: Connection, Keep-Alive,
/// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade.
bool is_hop_by_hop(boost::beast::http::field f) noexcept;

/// @return true when `name` appears as a token of the Connection header value `connection`.
bool named_in_connection(std::string_view connection, std::string_view name) noexcept;

/// @return true for the fields a name in Connection never removes, because bgproxy frames,
/// routes or traces by them: Content-Length, Transfer-Encoding, Host, X-Forwarded-For,
/// X-Forwarded-Proto, X-Forwarded-Host and Via (README "Security: what a proxy may drop").
/// Removing them on a client's or backend's word would let the message be re-framed or re-routed
/// behind bgproxy's back (the `Connection: Content-Length` smuggling shape).
bool kept_despite_connection(std::string_view name) noexcept;

/// The field names that a message's Connection field lines nominate for removal (several lines
/// form one list), less the fixed hop-by-hop ones, `close`, and those kept_despite_connection() or
/// equal to `keep` (the sticky header a service routes by). Read once per message, so the usual
/// `Connection: keep-alive` costs nothing per forwarded field.
class NominatedFields {
 public:
  NominatedFields(const ParsedHead& msg, std::string_view keep);

  /// @return true when the field named `name` must not be forwarded because Connection names it.
  bool contains(std::string_view name) const noexcept;

 private:
  static constexpr std::size_t inline_names = 8;
  std::array<std::string_view, inline_names> names_{};
  std::size_t count_ = 0;
  /// More names than fit inline (an odd message): contains() scans the Connection lines instead.
  const ParsedHead* overflow_ = nullptr;
  std::string_view keep_;
};

}  // namespace bgproxy::proxy
