#pragma once
/// The wall-clock time as the control plane records it: in history entries, events and the
/// canary's step timing. The pure core takes these as arguments; only control/server reads the clock.
/// Thread: any.

#include <cstdint>
#include <string>

namespace bgproxy::control {

/// Milliseconds since the Unix epoch.
std::int64_t unix_ms();

/// "2026-11-24T21:30:00.123Z"
std::string now_rfc3339();

}  // namespace bgproxy::control
