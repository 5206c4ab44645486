#include "proxy/h2/h1_request.hpp"

#include <algorithm>
#include <array>

#include <boost/beast/core/string.hpp>

#include "proxy/h2/connection_fields.hpp"

namespace bgproxy::proxy {
namespace {

/// Byte classes as lookup tables: the checks below run over every byte of every request field.
template <class Pred>
constexpr std::array<bool, 256> byte_table(Pred pred) {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[static_cast<std::size_t>(c)] = pred(static_cast<char>(c));
  return t;
}

constexpr bool in(std::string_view set, char c) { return set.find(c) != std::string_view::npos; }

/// RFC 9110 §5.6.2 token characters, lower case only (HTTP/2 field names, §8.2.1).
constexpr auto tchar_lower = byte_table([](char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || in("!#$%&'*+-.^_`|~", c);
});
constexpr auto tchar = byte_table([](char c) {
  return tchar_lower[static_cast<unsigned char>(c)] || (c >= 'A' && c <= 'Z');
});
/// host [":" port] of RFC 3986 (reg-name, IPv4 or a bracketed IPv6): no userinfo, no path.
constexpr auto authority_char = byte_table([](char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || in("-._~!$&'()*+,;=:[]%", c);
});

bool all_in(const std::array<bool, 256>& table, std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [&table](char c) { return table[static_cast<unsigned char>(c)]; });
}

bool valid_name(std::string_view name) noexcept { return !name.empty() && all_in(tchar_lower, name); }

/// Field values: anything but NUL, CR and LF (RFC 9113 §8.2.1).
constexpr auto value_char = byte_table([](char c) { return c != '\0' && c != '\r' && c != '\n'; });

bool valid_value(std::string_view value) noexcept { return all_in(value_char, value); }

/// Origin-form (RFC 9112 §3.2.1) in visible ASCII, no fragment; `*` only for OPTIONS.
bool valid_path(std::string_view path, std::string_view method) noexcept {
  if (path == "*") return method == "OPTIONS";
  if (path.empty() || path.front() != '/') return false;
  return std::all_of(path.begin(), path.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '#';
  });
}

bool valid_authority(std::string_view a) noexcept { return !a.empty() && all_in(authority_char, a); }

}  // namespace

bool H1Request::add(std::string_view name, std::string_view value) {
  list_size_ += name.size() + value.size() + 32;
  if (!valid_value(value)) return false;
  if (!name.empty() && name.front() == ':') {
    if (regular_seen_) return false;  // pseudo-fields come first (§8.3)
    if (name == ":method") {
      if (!method_.empty() || value.empty() || !all_in(tchar, value)) return false;
      method_ = value;
    } else if (name == ":path") {
      if (!path_.empty() || value.empty()) return false;
      path_ = value;
    } else if (name == ":authority") {
      if (!authority_.empty() || !valid_authority(value)) return false;
      authority_ = value;
    } else if (name == ":scheme") {
      if (scheme_seen_) return false;
      scheme_seen_ = true;
    } else {
      return false;  // :status, :protocol: not in a request we take
    }
    return true;
  }
  if (!regular_seen_) fields_.reserve(256);  // one allocation for a typical request's fields
  regular_seen_ = true;
  if (!valid_name(name) || connection_specific(name)) return false;
  if (name == "te") return value == "trailers";
  if (name == "expect") return true;
  if (name == "host") {
    if (!host_.empty() || !valid_authority(value)) return false;
    host_ = value;
    return true;
  }
  if (name == "cookie") {
    if (!cookie_.empty()) cookie_.append("; ");
    cookie_.append(value);
    return true;
  }
  if (name == "content-length") {
    if (content_length_) return false;
    content_length_ = true;
  }
  fields_.append(name).append(": ").append(value).append("\r\n");
  return true;
}

bool H1Request::finish(bool body_follows) {
  if (method_.empty() || path_.empty() || !scheme_seen_ || !valid_path(path_, method_)) return false;
  if (!authority_.empty() && !host_.empty() && !boost::beast::iequals(authority_, host_)) return false;
  const std::string_view host = authority_.empty() ? std::string_view(host_) : std::string_view(authority_);
  if (host.empty()) return false;
  chunked_ = body_follows && !content_length_;
  head_.reserve(method_.size() + path_.size() + host.size() + cookie_.size() + fields_.size() + 80);
  head_.assign(method_).append(" ").append(path_).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
  head_.append(fields_);
  if (!cookie_.empty()) head_.append("Cookie: ").append(cookie_).append("\r\n");
  if (chunked_) head_.append("Transfer-Encoding: chunked\r\n");
  head_.append("\r\n");
  return true;
}

}  // namespace bgproxy::proxy
