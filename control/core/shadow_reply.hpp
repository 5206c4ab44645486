#pragma once
/// bgproxy::control — shadow traffic in control-socket answers (README "Shadow traffic"): the
/// whole comparison for `bgctl shadow`, and its summary in each service of `bgctl status`.
/// Pure. Thread: control.

#include <string>

#include <boost/json/object.hpp>

#include "bgproxy/config/config.hpp"
#include "control/core/shadow_ledger.hpp"

namespace bgproxy::control {

/// {"percent","color","since","requests":{color:{result:n}},"pairs","mismatch_rate",
///  "reported_fields","fields":[...],"samples":[...],"latency":{...}}; "color" is null while
/// nothing is mirrored (percent 0).
boost::json::object shadow_json(const ShadowView& v);
/// {"percent","color","pairs","mismatch_rate","reported_fields","latency":"<verdict>"}
boost::json::object shadow_summary_json(const ShadowView& v);

/// {"ok":true,"services":[{"service":name, <shadow_json>}...]}
/// @param service -1 for every service
std::string shadow_reply(const config::Config& cfg, const ShadowLedger& ledger, int service);

}  // namespace bgproxy::control
