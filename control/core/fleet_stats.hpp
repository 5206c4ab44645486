#pragma once
/// bgproxy::control — what fleet members tell each other about traffic (README "Running a
/// fleet"): each publishes its per-color window of every service under a leased key
/// (PREFIX/stats/SERVICE/INSTANCE) once a second, and each evaluates the rollout over the sum.
/// The value: {"window_seconds":30.0,"colors":{"blue":{"requests":N,"errors":N,
/// "streaming_calls":N,"latency":[[bucket,count],...]},"green":{...}}}, the histogram as its
/// non-empty buckets; streaming_calls (gRPC calls not in p95) may be absent, meaning 0.
/// Pure. Thread: control.

#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "control/core/stats_history.hpp"

namespace bgproxy::control {

std::string to_stats_document(const ServiceWindow& w);
/// @return the window, or why the value is unusable
boost::system::result<ServiceWindow, std::string> parse_stats_document(std::string_view text);

/// Adds `other`'s counts to `sum`; the sum's length stays `sum`'s (each member's window is as
/// long, give or take the second between publications).
void add_window(ServiceWindow& sum, const ServiceWindow& other);

}  // namespace bgproxy::control
