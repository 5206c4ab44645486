// Scalar value parsers of the configuration: durations, endpoints, status lists and file
// modes (percentages: bgproxy/weights/basis_points.hpp). Hand-written rather than
// regex-based so that every rejection is deliberate and overflow is impossible.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "detail.hpp"

namespace bgproxy::config {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alnum(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

// Parses up to `max_digits` decimal digits; nullopt on anything else.
std::optional<std::uint64_t> parse_uint(std::string_view s, std::size_t max_digits) {
  if (!all_digits(s) || s.size() > max_digits) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  return v;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (is_digit(text[i]) || text[i] == '.')) ++i;
  const std::string_view number = text.substr(0, i);
  const std::string_view unit = text.substr(i);

  std::uint64_t unit_ms = 0;
  if (unit == "ms") unit_ms = 1;
  else if (unit == "s") unit_ms = 1000;
  else if (unit == "m") unit_ms = 60'000;
  else if (unit == "h") unit_ms = 3'600'000;
  else return std::nullopt;

  const auto dot = number.find('.');
  const std::string_view whole = number.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : number.substr(dot + 1);
  if (whole.empty() || (dot != std::string_view::npos && frac.empty())) return std::nullopt;
  if (!all_digits(whole) || (!frac.empty() && !all_digits(frac))) return std::nullopt;
  // 12 significant digits x 3.6e6 ms/h stays far below 2^63.
  if (whole.size() + frac.size() > 12) return std::nullopt;

  std::uint64_t mantissa = *parse_uint(whole, 12);
  std::uint64_t scale = 1;
  for (char c : frac) {
    mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');
    scale *= 10;
  }
  const std::uint64_t scaled = mantissa * unit_ms;
  if (scaled % scale != 0) return std::nullopt;  // finer than a millisecond
  return Duration(static_cast<Duration::rep>(scaled / scale));
}

std::optional<Endpoint> parse_endpoint(std::string_view text) { return detail::parse_endpoint(text, false); }

namespace detail {

std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text, bool* is_v4) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  std::array<std::uint8_t, 16> out{};
  in_addr v4{};
  if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    if (is_v4) *is_v4 = true;
    return out;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    if (is_v4) *is_v4 = false;
    return out;
  }
  return std::nullopt;
}

bool is_hostname(std::string_view text) noexcept {
  if (text.empty() || text.size() > 253) return false;
  bool numeric = true;
  std::size_t label = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!is_alnum(c) && c != '-' && c != '_') return false;
    if (!is_digit(c)) numeric = false;
    if (++label > 63) return false;
  }
  if (text.back() == '.' && text.size() > 1) {
    // A trailing dot (fully qualified) is fine, but "a..": caught above.
  } else if (label == 0) {
    return false;
  }
  // All digits and dots must be a real IPv4 address ("999.1.1.1" is not a host).
  if (numeric) return parse_ip(text).has_value();
  return true;
}

std::optional<Endpoint> parse_endpoint(std::string_view text, bool allow_port_zero) {
  if (text.empty() || text.size() > 300) return std::nullopt;
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    bool v4 = false;
    if (!parse_ip(host, &v4) || v4) return std::nullopt;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
    if (!is_hostname(host)) return std::nullopt;
  }
  const auto p = parse_uint(port, 5);
  if (!p || *p > 65535 || (*p == 0 && !allow_port_zero)) return std::nullopt;
  return Endpoint{std::string(text), std::string(host), static_cast<std::uint16_t>(*p)};
}

std::optional<std::vector<StatusRange>> parse_status_list(std::string_view text) {
  std::vector<StatusRange> out;
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  auto code = [](std::string_view s) -> std::optional<unsigned> {
    const auto v = parse_uint(s, 3);
    if (!v || s.size() != 3 || *v < 100 || *v > 599) return std::nullopt;
    return static_cast<unsigned>(*v);
  };
  while (true) {
    const auto comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    const auto dash = item.find('-');
    const auto low = code(trim(item.substr(0, dash)));
    const auto high = dash == std::string_view::npos ? low : code(trim(item.substr(dash + 1)));
    if (!low || !high || *low > *high) return std::nullopt;
    out.push_back(StatusRange{*low, *high});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<std::uint32_t> parse_mode(std::string_view text) {
  if (text.size() < 3 || text.size() > 5) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    v = v * 8 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 07777) return std::nullopt;
  return v;
}

bool looks_like_bare_number(std::string_view text) noexcept {
  if (text.empty()) return false;
  bool digit = false;
  for (char c : text) {
    if (is_digit(c)) digit = true;
    else if (c != '.' && c != '-' && c != '+') return false;
  }
  return digit;
}

bool is_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (char c : text) {
    if (is_alnum(c)) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr || c == '\0') return false;
  }
  return true;
}

std::string format_duration(Duration d) {
  const auto ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string make_message(std::string_view file, int line, std::string_view field, std::string_view problem) {
  std::string m;
  m.reserve(file.size() + field.size() + problem.size() + 16);
  m.append(file).append(":").append(std::to_string(line)).append(": ");
  m.append(field.empty() ? std::string_view("config") : field).append(": ").append(problem);
  return m;
}

}  // namespace detail
}  // namespace bgproxy::config
