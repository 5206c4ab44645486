#include "proxy/http/hop_by_hop.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

namespace bgproxy::proxy {

namespace http = boost::beast::http;
using boost::beast::iequals;

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
    if (iequals(token, name)) return true;
  }
  return false;
}

bool kept_despite_connection(std::string_view name) noexcept {
  switch (http::string_to_field(name)) {
    case http::field::content_length:
    case http::field::transfer_encoding:
    case http::field::host:
    case http::field::via:
      return true;
    default:
      return iequals(name, "X-Forwarded-For") || iequals(name, "X-Forwarded-Proto") ||
             iequals(name, "X-Forwarded-Host");
  }
}

namespace {

/// A nomination that changes nothing: a fixed hop-by-hop field (removed anyway), `close` (no
/// field), or a field bgproxy keeps.
bool nomination_moot(std::string_view name, std::string_view keep) noexcept {
  if (iequals(name, "close")) return true;
  if (const auto f = http::string_to_field(name); f != http::field::unknown && is_hop_by_hop(f)) return true;
  if (!keep.empty() && iequals(name, keep)) return true;
  return kept_despite_connection(name);
}

}  // namespace

NominatedFields::NominatedFields(const ParsedHead& msg, std::string_view keep) : keep_(keep) {
  for (const auto& c : msg) {
    if (c.name() != http::field::connection) continue;
    for (auto token : http::token_list{c.value()}) {
      const std::string_view name(token.data(), token.size());
      if (nomination_moot(name, keep)) continue;
      if (count_ == inline_names) {
        overflow_ = &msg;
        return;
      }
      names_[count_++] = name;
    }
  }
}

bool NominatedFields::contains(std::string_view name) const noexcept {
  if (overflow_) {
    if (nomination_moot(name, keep_)) return false;
    for (const auto& c : *overflow_) {
      if (c.name() == http::field::connection && named_in_connection(c.value(), name)) return true;
    }
    return false;
  }
  for (std::size_t i = 0; i < count_; ++i) {
    if (iequals(names_[i], name)) return true;
  }
  return false;
}

}  // namespace bgproxy::proxy
