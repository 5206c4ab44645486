#pragma once
// Small I/O-free helpers of the demo backend: query strings, JSON text, FNV-1a, the body pattern.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace bgproxy::demo {

/// FNV-1a 64, fed incrementally. Thread: any.
struct Fnv1a64 {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  void update(const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t x = h;
    for (std::size_t i = 0; i < n; ++i) {
      x ^= p[i];
      x *= 0x100000001b3ULL;
    }
    h = x;
  }
};

/// Calls `f(key, value)` for each `k=v` pair of a query string (the part after '?').
/// Keys and values are percent-decoded ('+' becomes a space); a pair without '=' has an empty
/// value.
template <class F>
void for_each_query_param(std::string_view query, F&& f);

/// Percent-decodes `in` ('+' as space); malformed escapes are kept verbatim.
std::string percent_decode(std::string_view in);

/// Appends `s` as a JSON string literal (quotes included). Bytes >= 0x80 are escaped as \u00XX so
/// the output is always valid JSON whatever the header bytes were.
void append_json_string(std::string& out, std::string_view s);

template <class T>
void append_number(std::string& out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;
  out.append(buf, end);
}

/// Appends `v` as 16 lower-case hex digits.
void append_hex16(std::string& out, std::uint64_t v);

/// Parses the whole of `s` as an integer in [lo, hi].
std::optional<std::int64_t> parse_int(std::string_view s, std::int64_t lo, std::int64_t hi);
/// Parses the whole of `s` as a double in [lo, hi].
std::optional<double> parse_double(std::string_view s, double lo, double hi);

/// Reason phrase of a status code ("Unknown" when it has none).
std::string_view reason_phrase(unsigned status);

/// The response body pattern: byte i is 'a' + i % 26. `pattern_slice(offset, n)` returns a pointer
/// to n (<= kPatternMaxSlice) bytes equal to bytes [offset, offset + n) of the pattern.
inline constexpr std::size_t kPatternMaxSlice = 64 * 1024;
const char* pattern_slice(std::uint64_t offset);

// ---------------------------------------------------------------------------------------------

template <class F>
void for_each_query_param(std::string_view query, F&& f) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    bool plain = k.find_first_of("%+") == std::string_view::npos &&
                 v.find_first_of("%+") == std::string_view::npos;
    if (plain) {
      f(k, v);
    } else {
      std::string dk = percent_decode(k);
      std::string dv = percent_decode(v);
      f(std::string_view{dk}, std::string_view{dv});
    }
  }
}

}  // namespace bgproxy::demo
