#include "proxy/http/hop_by_hop.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

namespace bgproxy::proxy {

namespace http = boost::beast::http;

bool is_hop_by_hop(http::field f) noexcept {
  switch (f) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
      return true;
    default:
      return false;
  }
}

bool named_in_connection(std::string_view connection, std::string_view name) noexcept {
  for (auto token : http::token_list{connection}) {
    if (boost::beast::iequals(token, name)) return true;
  }
  return false;
}

}  // namespace bgproxy::proxy
