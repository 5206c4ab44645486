#include "proxy/http/keep_alive.hpp"

#include <algorithm>
#include <charconv>

#include <boost/beast/core/string.hpp>

namespace bgproxy::proxy {

namespace {

/// A decimal number, capped: a backend saying `timeout=99999999999` means "long".
std::uint32_t number(std::string_view s, bool& ok) noexcept {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  ok = ec == std::errc{} && end == s.data() + s.size();
  if (ec == std::errc::result_out_of_range) ok = true, v = ~0u;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, ~0u));
}

}  // namespace

KeepAliveHint parse_keep_alive(std::string_view value) noexcept {
  KeepAliveHint hint;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    return s;
  };
  // A comma-separated list of name=value parameters (`timeout=5, max=100`).
  while (!value.empty()) {
    const auto comma = value.find(',');
    const auto element = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    const auto eq = element.find('=');
    if (eq == std::string_view::npos) continue;
    const auto name = trim(element.substr(0, eq));
    bool ok = false;
    const auto n = number(trim(element.substr(eq + 1)), ok);
    if (!ok) continue;
    if (boost::beast::iequals(name, "timeout")) hint.timeout = std::chrono::seconds(n);
    if (boost::beast::iequals(name, "max")) hint.max = n;
  }
  return hint;
}

std::chrono::milliseconds retire_before(std::chrono::seconds timeout) noexcept {
  const auto full = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  return full - std::min<std::chrono::milliseconds>(std::chrono::seconds(1), full / 4);
}

}  // namespace bgproxy::proxy
