#include "control/core/page_data.hpp"

#include <charconv>
#include <cmath>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

namespace bgproxy::control {
namespace {

/// Four significant digits: what a chart a few hundred pixels high can show, and the answer
/// stays small (15 minutes × 6 series per service, every second).
void append_number(std::string& out, float v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 4);
  out.append(buf, ec == std::errc{} ? end : buf);
}

void append_series(std::string& out, const SeriesRing& series, std::size_t si, std::size_t color) {
  const auto one = [&](const char* name, float SecondFigures::*field) {
    out += '"';
    out += name;
    out += "\":[";
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (i) out += ',';
      append_number(out, series.at(si, color, i).*field);
    }
    out += ']';
  };
  out += '{';
  one("rps", &SecondFigures::rps);
  out += ',';
  one("error_rate", &SecondFigures::error_rate);
  out += ',';
  one("p95_seconds", &SecondFigures::p95_seconds);
  out += '}';
}

}  // namespace

std::string page_data(std::string_view status, std::string_view history, const SeriesRing& series,
                      const config::Config& cfg) {
  std::string out = "{\"ok\":true,\"status\":";
  out += status;
  out += ",\"history\":";
  out += history;
  out += ",\"series\":{\"period_seconds\":1,\"end_ms\":";
  out += std::to_string(series.size() ? series.time_ms(series.size() - 1) : 0);
  out += ",\"services\":[";
  for (std::size_t si = 0; si < cfg.services.size() && si < series.services(); ++si) {
    if (si) out += ',';
    out += "{\"name\":";
    out += boost::json::serialize(boost::json::string(cfg.services[si].name));
    out += ",\"blue\":";
    append_series(out, series, si, 0);
    out += ",\"green\":";
    append_series(out, series, si, 1);
    out += '}';
  }
  out += "]}}";
  return out;
}

}  // namespace bgproxy::control
