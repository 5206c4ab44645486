#pragma once
/// One-line JSON text for control-socket answers. Boost 1.81's serializer
/// writes doubles in exponent form (70.0 → "7E1"); operators read these answers
/// with their eyes and jq, so numbers are written the plain way here.
/// Thread: any.

#include <string>

#include <boost/json/value.hpp>

namespace bgproxy::control {

/// Serializes `v` on one line; doubles as "70.0", "12.5", "0.213".
std::string to_line(const boost::json::value& v);

}  // namespace bgproxy::control
