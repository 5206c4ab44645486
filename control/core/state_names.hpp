#pragma once
/// Names and the format version shared by the state file's reader (state.cpp) and writer
/// (state_write.cpp). Private to control/core.
/// Thread: any.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include "control/core/state.hpp"

namespace bgproxy::control {

/// The state document's text as JSON, or why it is not ("invalid JSON at byte 12: ...").
boost::system::result<boost::json::value, std::string> parse_state_text(std::string_view text);
/// Reads a state document already parsed (a fleet's service value carries more fields).
boost::system::result<State, std::string> from_json(const boost::json::value& root);

/// The state file format; a breaking change bumps it and the reader refuses other versions.
inline constexpr std::int64_t state_version = 1;

inline constexpr std::array<std::string_view, 3> admin_names = {"enabled", "disabled", "draining"};

inline std::string_view admin_name(AdminState a) noexcept {
  const auto i = static_cast<std::size_t>(a);
  return i < admin_names.size() ? admin_names[i] : "enabled";
}

inline std::optional<AdminState> parse_admin(std::string_view name) noexcept {
  for (std::size_t i = 0; i < admin_names.size(); ++i) {
    if (admin_names[i] == name) return static_cast<AdminState>(i);
  }
  return std::nullopt;
}

}  // namespace bgproxy::control
