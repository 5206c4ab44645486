#include "proxy/http/grpc_status.hpp"

#include <charconv>

#include <boost/beast/core/string.hpp>

namespace bgproxy::proxy {
namespace {

std::size_t parse_status(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  unsigned code = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), code);
  if (v.empty() || ec != std::errc{} || end != v.data() + v.size() || code > 16) return grpc_status_missing;
  return code;
}

}  // namespace

std::size_t grpc_status_of(std::string_view head_value, std::string_view trailers) noexcept {
  if (!head_value.empty()) return parse_status(head_value);
  while (!trailers.empty()) {
    const auto eol = trailers.find("\r\n");
    const auto line = trailers.substr(0, eol);
    trailers.remove_prefix(eol == std::string_view::npos ? trailers.size() : eol + 2);
    const auto colon = line.find(':');
    if (colon != std::string_view::npos && boost::beast::iequals(line.substr(0, colon), "grpc-status")) {
      return parse_status(line.substr(colon + 1));
    }
  }
  return grpc_status_missing;
}

}  // namespace bgproxy::proxy
