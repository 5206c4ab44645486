#pragma once
/// Hop-by-hop header rules (RFC 9110 §7.6.1): which fields a proxy must not forward.
/// Thread: any.

#include <string_view>

#include <boost/beast/http/field.hpp>

namespace bgproxy::proxy {

/// @return true for the fixed hop-by-hop fields: Connection, Keep-Alive,
/// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade.
bool is_hop_by_hop(boost::beast::http::field f) noexcept;

/// @return true when `name` appears as a token of the Connection header value `connection`.
bool named_in_connection(std::string_view connection, std::string_view name) noexcept;

}  // namespace bgproxy::proxy
