#include "proxy/h2/own_head.hpp"

#include <charconv>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

namespace bgproxy::proxy {
namespace http = boost::beast::http;

namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// "HTTP/1.x SSS reason": our writer always puts the space after the code, the reason may be empty.
bool split_status_line(std::string_view line, ParsedHead& head) noexcept {
  if (line.size() < 13 || !line.starts_with("HTTP/1.") || line[8] != ' ' || line[12] != ' ') return false;
  unsigned status = 0;
  const auto [end, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc{} || end != line.data() + 12 || status < 100) return false;
  head.set_status_line(status, line.substr(13), line[7] == '0' ? 10 : 11);
  return true;
}

/// "METHOD target HTTP/1.x", as write_request_head and H1Request make it.
bool split_request_line(std::string_view line, ParsedHead& head) noexcept {
  const auto method_end = line.find(' ');
  if (method_end == 0 || method_end == std::string_view::npos) return false;
  const auto target_end = line.find(' ', method_end + 1);
  if (target_end == std::string_view::npos || target_end == method_end + 1) return false;
  const auto version = line.substr(target_end + 1);
  if (version.size() != 8 || !version.starts_with("HTTP/1.")) return false;
  const auto method = line.substr(0, method_end);
  head.set_request_line(http::string_to_verb(method), method, line.substr(method_end + 1, target_end - method_end - 1),
                        version[7] == '0' ? 10 : 11);
  return true;
}

using StartLine = bool (*)(std::string_view, ParsedHead&) noexcept;

OwnHead split_own_head(std::string_view bytes, ParsedHead& head, StartLine start_line) {
  OwnHead r;
  head.clear();
  head.reserve(16);  // a fresh stream's: one allocation rather than one per doubling
  std::size_t pos = 0;
  bool first = true;
  for (;;) {
    const auto eol = bytes.find("\r\n", pos);
    if (eol == std::string_view::npos) return r;  // not all here yet
    const auto line = bytes.substr(pos, eol - pos);
    pos = eol + 2;
    if (first) {
      first = false;
      if (!start_line(line, head)) break;
      continue;
    }
    if (line.empty()) {
      r.size = pos;
      return r;
    }
    const auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) break;
    const auto name = line.substr(0, colon);
    const auto value = trim(line.substr(colon + 1));
    const auto id = http::string_to_field(name);
    head.add(id, name, value);
    if (id == http::field::content_length) {
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc{} || end != value.data() + value.size()) break;
      r.content_length = n;
    } else if (id == http::field::transfer_encoding) {
      r.chunked = value.size() >= 7 && boost::beast::iequals(value.substr(value.size() - 7), "chunked");
    }
  }
  r.malformed = true;
  return r;
}

}  // namespace

OwnHead split_own_response_head(std::string_view bytes, ParsedHead& head) {
  return split_own_head(bytes, head, &split_status_line);
}

OwnHead split_own_request_head(std::string_view bytes, ParsedHead& head) {
  return split_own_head(bytes, head, &split_request_line);
}

}  // namespace bgproxy::proxy
