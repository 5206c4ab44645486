#pragma once
/// bgproxy::config::detail — helpers shared by the config parser and validator.
/// Private to bg_core (not under include/): they are implementation details of parse().
/// Thread: any (pure functions).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/config/parse.hpp"
#include "bgproxy/text/quote.hpp"

namespace bgproxy::config::detail {

/// Dotted field path ("services[0].health_check.interval") -> 1-based line where the
/// parser saw it. The validator uses it so its errors name a line too.
using LineMap = std::unordered_map<std::string, int>;

/// Like parse_endpoint(), but accepts port 0 when `allow_port_zero` (listen/admin: ephemeral).
std::optional<Endpoint> parse_endpoint(std::string_view text, bool allow_port_zero);

/// Parses an IPv4 ("1.2.3.4", stored IPv4-mapped) or IPv6 address into 16 bytes.
/// @param is_v4 set to true when the text was IPv4
std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text, bool* is_v4 = nullptr);

/// Parses "200-399" or "200,204,300-399" (codes 100..599). @return nullopt when malformed.
std::optional<std::vector<StatusRange>> parse_status_list(std::string_view text);

/// Parses an octal file mode "0660" / "660" (at most 07777). @return nullopt when malformed.
std::optional<std::uint32_t> parse_mode(std::string_view text);

/// True for a bare number such as "5" or "1.5" (a duration missing its unit).
bool looks_like_bare_number(std::string_view text) noexcept;

/// True for an RFC 9110 token (header and cookie names).
bool is_token(std::string_view text) noexcept;

/// True for a DNS name or an IPv4 literal without port ("*" is not a hostname).
bool is_hostname(std::string_view text) noexcept;

/// "500ms", "2s", "1500ms", "5m", "1h": the shortest exact form.
std::string format_duration(Duration d);

/// Shortest round-trip-ish text of a double for messages ("0.05", "1.5").
std::string format_number(double v);

/// Checks the rules of the configuration that span fields.
/// @param lines where each field was seen (missing paths fall back to their parent)
/// @return the first problem as "FILE:LINE: field: problem", or nullopt
std::optional<ConfigError> validate(const Config& cfg, const LineMap& lines, std::string_view file);

/// A value for a message (text::quote): config messages show up to 80 bytes of it, as a
/// config value is read by a person at a terminal, not relayed in a protocol answer.
inline std::string quoted(std::string_view s) { return text::quote(s, {.mark = '"', .max_bytes = 80}); }

/// Builds "FILE:LINE: field: problem".
std::string make_message(std::string_view file, int line, std::string_view field, std::string_view problem);

}  // namespace bgproxy::config::detail
