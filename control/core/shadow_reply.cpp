#include "control/core/shadow_reply.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "bgproxy/weights/basis_points.hpp"
#include "control/core/json_line.hpp"

namespace bgproxy::control {
namespace json = boost::json;
namespace {

json::value color_json(const ShadowView& v) {
  if (v.settings.percent_bp == 0) return nullptr;
  return json::value(routing::color_name(v.color));
}

json::array reported_json(const shadow::Report& r) {
  json::array out;
  for (const auto& f : r.reported_fields) out.push_back(json::value(f));
  return out;
}

json::object latency_json(const shadow::LatencyReport& l) {
  return {{"pairs", l.pairs},
          {"slower", l.slower},
          {"faster", l.faster},
          {"median_seconds", l.median_seconds},
          {"p95_seconds", l.p95_seconds},
          {"p_value", l.p_value},
          {"significant", l.significant},
          {"verdict", l.verdict}};
}

}  // namespace

json::object shadow_json(const ShadowView& v) {
  json::object requests;
  for (auto color : {routing::Color::blue, routing::Color::green}) {
    json::object by_result;
    for (std::size_t r = 0; r < shadow::result_names.size(); ++r) {
      by_result[shadow::result_names[r]] = v.counts.requests[static_cast<std::size_t>(color)][r];
    }
    requests[routing::color_name(color)] = std::move(by_result);
  }
  json::array fields;
  for (const auto& f : v.report.fields) {
    fields.push_back({{"field", f.field},
                      {"compared", f.compared},
                      {"differing", f.differing},
                      {"mismatch_rate", f.mismatch_rate},
                      {"noise_compared", f.noise_compared},
                      {"noise_differing", f.noise_differing},
                      {"noise_rate", f.noise_rate},
                      {"reported", f.reported}});
  }
  // The reported fields' samples first: those are the differences worth reading.
  json::array samples;
  const auto& reported = v.report.reported_fields;
  for (const bool want_reported : {true, false}) {
    for (const auto& s : v.counts.samples) {
      const bool is_reported = std::find(reported.begin(), reported.end(), s.difference.field) != reported.end();
      if (is_reported != want_reported) continue;
      samples.push_back({{"path", s.path},
                         {"field", s.difference.field},
                         {"primary", s.difference.primary},
                         {"shadow", s.difference.shadow}});
    }
  }
  return {{"percent", weights::to_percent(v.settings.percent_bp)},
          {"color", color_json(v)},
          {"since", v.since},
          {"requests", std::move(requests)},
          {"pairs", v.report.pairs},
          {"mismatch_rate", v.report.mismatch_rate},
          {"reported_fields", reported_json(v.report)},
          {"fields", std::move(fields)},
          {"samples", std::move(samples)},
          {"latency", latency_json(v.report.latency)}};
}

json::object shadow_summary_json(const ShadowView& v) {
  return {{"percent", weights::to_percent(v.settings.percent_bp)},
          {"color", color_json(v)},
          {"pairs", v.report.pairs},
          {"mismatch_rate", v.report.mismatch_rate},
          {"reported_fields", reported_json(v.report)},
          {"latency", v.report.latency.verdict}};
}

std::string shadow_reply(const config::Config& cfg, const ShadowLedger& ledger, int service) {
  json::array services;
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    if (service >= 0 && static_cast<std::size_t>(service) != si) continue;
    json::object s{{"service", cfg.services[si].name}};
    for (auto& [k, val] : shadow_json(ledger.view(si))) s[k] = std::move(val);
    services.push_back(std::move(s));
  }
  return to_line(json::object{{"ok", true}, {"services", std::move(services)}});
}

}  // namespace bgproxy::control
