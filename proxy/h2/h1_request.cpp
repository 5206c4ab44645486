#include "proxy/h2/h1_request.hpp"

#include <algorithm>

#include <boost/beast/core/string.hpp>

#include "proxy/h2/connection_fields.hpp"

namespace bgproxy::proxy {
namespace {

bool is_tchar_lower(char c) noexcept {
  if (c >= 'a' && c <= 'z') return true;
  if (c >= '0' && c <= '9') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_tchar(char c) noexcept { return is_tchar_lower(c) || (c >= 'A' && c <= 'Z'); }

bool valid_name(std::string_view name) noexcept {
  return !name.empty() && std::all_of(name.begin(), name.end(), is_tchar_lower);
}

bool valid_value(std::string_view value) noexcept {
  return value.find_first_of(std::string_view("\0\r\n", 3)) == std::string_view::npos;
}

/// Origin-form (RFC 9112 §3.2.1) in visible ASCII, no fragment; `*` only for OPTIONS.
bool valid_path(std::string_view path, std::string_view method) noexcept {
  if (path == "*") return method == "OPTIONS";
  if (path.empty() || path.front() != '/') return false;
  return std::all_of(path.begin(), path.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '#';
  });
}

/// host [":" port] of RFC 3986 (reg-name, IPv4 or a bracketed IPv6): no userinfo, no path.
bool valid_authority(std::string_view a) noexcept {
  if (a.empty()) return false;
  return std::all_of(a.begin(), a.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("-._~!$&'()*+,;=:[]%").find(c) != std::string_view::npos;
  });
}

}  // namespace

bool H1Request::add(std::string_view name, std::string_view value) {
  list_size_ += name.size() + value.size() + 32;
  if (!valid_value(value)) return false;
  if (!name.empty() && name.front() == ':') {
    if (regular_seen_) return false;  // pseudo-fields come first (§8.3)
    if (name == ":method") {
      if (!method_.empty() || value.empty() || !std::all_of(value.begin(), value.end(), is_tchar)) return false;
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
