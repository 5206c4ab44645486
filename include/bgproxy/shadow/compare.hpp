#pragma once
/// bgproxy::shadow — comparing the two answers of a mirrored request (SPEC §14): the client's
/// (the primary) and the shadow's. Status, the configured headers, and the body: as bytes, or
/// field by field by JSON path when both bodies are JSON. Pure: no I/O, no clock.
/// Thread: any.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bgproxy/config/config.hpp"

namespace bgproxy::shadow {

/// The most of a body kept for comparison; a longer body is compared on its first bytes only
/// (and as bytes: a cut JSON document does not parse).
inline constexpr std::size_t max_compared_body = 256 * 1024;

/// One side's answer as the comparison needs it.
struct Answer {
  unsigned status = 0;  ///< the final status
  /// The answer's header fields that compare.headers names, lower-case names, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  ///< at most max_compared_body bytes
  bool body_cut = false;  ///< the body was longer than what `body` holds
};

/// A field that differed, with both values cut to a few dozen bytes for display.
struct Difference {
  std::string field;  ///< "status", "header:content-type", "body" (bytes), or a JSON path "$.user.id"
  std::string primary;
  std::string shadow;
  friend bool operator==(const Difference&, const Difference&) = default;
};

struct PairResult {
  /// Every field compared in this pair, differing or not (the denominators of the rates).
  std::vector<std::string> compared;
  std::vector<Difference> differences;  ///< the subset of `compared` that differed
};

/// Compares `shadow` with `primary` as `cfg` says. JSON bodies (both parse as JSON) compare
/// leaf by leaf: a path present on one side only differs; arrays by index ("$.items[0].id");
/// `cfg.ignore` names header names and JSON paths (a "[*]" matches every index) left out.
PairResult compare(const Answer& primary, const Answer& shadow, const config::ShadowCompare& cfg);

}  // namespace bgproxy::shadow
