#pragma once
/// The JSON the admin web page polls (GET /ui/data on the admin listener, README "The web
/// page"): the status and history answers of the control socket as they are, and the charts'
/// per-second series.
/// Pure. Thread: control.

#include <string>
#include <string_view>

#include "bgproxy/config/config.hpp"
#include "control/core/series_ring.hpp"

namespace bgproxy::control {

/// How many history entries the page shows.
inline constexpr std::size_t page_history_entries = 20;

/// {"ok":true,"status":<status>,"history":<history>,"series":{"period_seconds":1,
///  "end_ms":<unix ms the newest second ended, 0 before the first>,"services":[{"name":"app",
///  "blue":{"rps":[..],"error_rate":[..],"p95_seconds":[..]},"green":{..}}]}}
/// Each array holds the same seconds, oldest first.
/// @param status, history the control answers (status_reply, history_reply), one JSON object each
std::string page_data(std::string_view status, std::string_view history, const SeriesRing& series,
                      const config::Config& cfg);

}  // namespace bgproxy::control
