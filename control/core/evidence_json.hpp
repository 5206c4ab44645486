#pragma once
/// bgproxy::control — the sequential watchdog's evidence (SPEC §16) in the status answer's
/// `watchdog.evidence` object, and as the lines `bgctl status` prints from that object.
/// Pure. Thread: any.

#include <string>

#include <boost/json.hpp>

#include "bgproxy/watchdog/sequential.hpp"

namespace bgproxy::control {

/// {"alpha":0.01,"outcome":"inconclusive","bad_mean":2.5,"rules":[{"rule":"error_rate","bad":2.1,"good":0.4,
/// "verdict":"inconclusive"},...],"error_rate_difference":{"estimate":0.01,"low":-0.02,"high":0.04}
/// (null until both colors had requests),"latency_edge_seconds":2.0,
/// "relative_latency_edge_seconds":0.152 (null until frozen),"target":{"requests":..,"errors":..},
/// "other":{...}}. Evidence past 1e300 is written as 1e300: JSON has no infinity.
boost::json::object evidence_json(const watchdog::Evidence& ev);

/// The lines `bgctl status` prints under the watchdog line, each starting with `indent`; empty
/// when `evidence` is not an evidence object.
std::string evidence_lines(const boost::json::value* evidence, const std::string& indent);

}  // namespace bgproxy::control
