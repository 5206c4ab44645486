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

std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view v) noexcept {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  std::int64_t n = 0;
  const auto digits = v.substr(0, v.size() - 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc{} || end != digits.data() + digits.size() || n < 0) return std::nullopt;
  using namespace std::chrono;
  switch (v.back()) {
    case 'H': return duration_cast<nanoseconds>(hours(n));
    case 'M': return duration_cast<nanoseconds>(minutes(n));
    case 'S': return duration_cast<nanoseconds>(seconds(n));
    case 'm': return duration_cast<nanoseconds>(milliseconds(n));
    case 'u': return duration_cast<nanoseconds>(microseconds(n));
    case 'n': return nanoseconds(n);
    default: return std::nullopt;
  }
}

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
