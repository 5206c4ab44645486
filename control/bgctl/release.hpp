#pragma once
/// bgproxy::bgctl — `bgctl release` (README "Release in one command"): the smoke results and the
/// started canary as an operator reads them, and, with --wait, the rollout followed through the
/// proxy's event feed (`{"command":"events"}`) until it is promoted, rolled back or interrupted.
/// Pure: no I/O. Thread: any.

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

namespace bgproxy::bgctl {

/// Exit code of `release --wait` when --timeout passed first (SPEC §15).
inline constexpr int exit_timeout = 4;

/// One line per smoke request of a release answer (refused ones too, whose answers carry the
/// results that were asked before the failure):
/// "smoke /health on 127.0.0.1:5006: 200 in 3.1ms", "smoke /api: 500 in 2ms: status 500".
std::string render_smoke(const boost::json::object& answer);

/// What one event line of the feed means for a release being followed.
struct FollowStep {
  std::string line;              ///< to print (with '\n'); empty: nothing to say
  std::optional<int> exit_code;  ///< set: the release is over (0 promoted, 1 rolled back/interrupted, 3 feed lost)
};

/// @param service the service released: events of others are ignored
FollowStep follow_event(const boost::json::object& event, std::string_view service);

}  // namespace bgproxy::bgctl
