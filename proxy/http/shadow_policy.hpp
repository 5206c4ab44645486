#pragma once
/// Which requests are mirrored, and what the copy says (SPEC §14, README "Shadow traffic"): the
/// pure decisions of a ClientSession before a ShadowExchange starts.
/// Thread: any.

#include <cstdint>
#include <string>
#include <string_view>

#include "bgproxy/config/config.hpp"

namespace bgproxy::proxy {

/// Every this-many-th pair of a worker is a noise-floor pair: the copy goes to the client's own
/// color, so that fields differing between two answers of one color are told from real changes.
inline constexpr std::uint64_t shadow_noise_every = 10;

/// The header a shadow copy carries, so a backend can tell it (and, say, not send the email).
inline constexpr std::string_view shadow_marker = "X-Bg-Shadow: 1\r\n";

/// The method is one `shadow.methods` lists (methods are case-sensitive, RFC 9110 §9.1).
bool shadow_method(const config::Shadow& s, std::string_view method) noexcept;

/// The request falls in the mirrored share: by a hash of method and target, so the same
/// request is mirrored or not every time (reproducible), `percent_bp` of 10,000 buckets.
bool shadow_sampled(const config::Shadow& s, std::string_view method, std::string_view target) noexcept;

/// The copy: the forwarded head with shadow_marker added as its last field, then the body.
std::string shadow_request(std::string_view forwarded_head, std::string_view body);

}  // namespace bgproxy::proxy
