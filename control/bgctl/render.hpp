#pragma once
/// bgproxy::bgctl — the human form of the proxy's answers: what an operator reads at
/// a glance. Every field may be missing; a missing value prints as "-". Text from the proxy is
/// printed with control characters replaced, so an answer cannot drive the terminal.
/// Pure: no I/O. Thread: any.

#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

namespace bgproxy::bgctl {

/// The text for an {"ok":true,...} answer to `command`, ending in '\n'.
/// status, health and history get tables; every other command one line per service from the
/// answer's "state" (e.g. "app: blue 50% / green 50% (phase canary)"), see render_change().
std::string render(std::string_view command, const boost::json::object& answer);

/// status: per service a header line, the reason if any, then one row per color
/// (rps, requests, error rate, p95, servers with their state).
std::string render_status(const boost::json::object& answer);

/// health: one row per server (service, color, address, state, failures, last check).
std::string render_health(const boost::json::object& answer);

/// history: one row per entry (time, service, command with its args, uid/pid, before -> after, reason).
std::string render_history(const boost::json::object& answer);

/// shadow: per service the mirrored requests by result, the mismatch rate and the fields that
/// differ (with their noise floor), sample differences and the paired latency.
std::string render_shadow(const boost::json::object& answer);
/// The shadow line of a status service: "  shadow: 20% to green, mismatch 100.00% over 108 pairs
/// ($.app_version); green faster in 68 % of 108 pairs\n"; empty when nothing is mirrored.
std::string shadow_summary_text(const boost::json::object* summary);

/// Any change (split, switch, rollback, canary, server, reload): the new state in one line
/// per service; without a "state", the answer's "message", else "ok".
std::string render_change(const boost::json::object& answer);

/// "app: blue 70% / green 30% (phase canary, step 1, target green)" from one service object.
std::string service_line(const boost::json::object& service);

}  // namespace bgproxy::bgctl
