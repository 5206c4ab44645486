#include "control/core/evidence_json.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bgproxy::control {

namespace json = boost::json;

namespace {

constexpr std::array<const char*, 3> outcome_names{"inconclusive", "pass", "fail"};

double shown(double log_e) { return std::exp(std::clamp(log_e, -690.0, 690.0)); }

double number(const json::object* o, std::string_view key) {
  if (o == nullptr) return 0;
  const auto it = o->find(key);
  if (it == o->end()) return 0;
  if (const auto* d = it->value().if_double()) return *d;
  if (const auto* i = it->value().if_int64()) return static_cast<double>(*i);
  if (const auto* u = it->value().if_uint64()) return static_cast<double>(*u);
  return 0;
}

std::string text(const json::object* o, std::string_view key) {
  if (o == nullptr) return "-";
  const auto it = o->find(key);
  if (it == o->end() || !it->value().is_string()) return "-";
  std::string out(it->value().as_string());
  // Text from the proxy, made safe for a terminal.
  for (char& ch : out) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  return out;
}

std::string format(const char* fmt, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

json::object evidence_json(const watchdog::Evidence& ev) {
  json::array rules;
  for (std::size_t i = 0; i < ev.rules.size(); ++i) {
    const auto& r = ev.rules[i];
    rules.push_back({{"rule", watchdog::sequential_rule_names[i]},
                     {"bad", shown(r.log_bad)},
                     {"good", shown(r.log_good)},
                     {"verdict", outcome_names[static_cast<std::size_t>(r.outcome)]}});
  }
  json::object o{{"alpha", ev.alpha},
                 {"outcome", outcome_names[static_cast<std::size_t>(ev.outcome)]},
                 {"bad_mean", shown(ev.log_bad)},
                 {"rules", std::move(rules)},
                 {"latency_edge_seconds", ev.latency_edge_seconds},
                 {"target", {{"requests", ev.target_requests}, {"errors", ev.target_errors}}},
                 {"other", {{"requests", ev.other_requests}, {"errors", ev.other_errors}}}};
  if (ev.error_rate_difference.known) {
    const auto& cs = ev.error_rate_difference;
    o["error_rate_difference"] = {{"estimate", cs.estimate}, {"low", cs.low}, {"high", cs.high}};
  } else {
    o["error_rate_difference"] = nullptr;
  }
  if (ev.relative_edge_seconds > 0) o["relative_latency_edge_seconds"] = ev.relative_edge_seconds;
  else o["relative_latency_edge_seconds"] = nullptr;
  return o;
}

std::string evidence_lines(const json::value* evidence, const std::string& indent) {
  const json::object* e = evidence != nullptr ? evidence->if_object() : nullptr;
  if (e == nullptr) return {};
  const double alpha = number(e, "alpha");
  const std::string bar = alpha > 0 ? format("%g", 1 / alpha) : "-";
  std::string out = indent + "evidence (alpha " + format("%g", alpha) + "): " + text(e, "outcome") +
                    ", mean BAD " + format("%.3g", number(e, "bad_mean")) + " (fail at " + bar +
                    "), pass when every rule's GOOD reaches " + bar + "\n";
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s  %-20s %10s %10s  %s\n", indent.c_str(), "RULE", "BAD", "GOOD", "VERDICT");
  out += buf;
  if (const auto it = e->find("rules"); it != e->end() && it->value().is_array()) {
    for (const auto& rv : it->value().as_array()) {
      const json::object* r = rv.if_object();
      std::snprintf(buf, sizeof buf, "%s  %-20s %10.3g %10.3g  %s\n", indent.c_str(), text(r, "rule").c_str(),
                    number(r, "bad"), number(r, "good"), text(r, "verdict").c_str());
      out += buf;
    }
  }
  const auto cs = e->find("error_rate_difference");
  if (cs != e->end() && cs->value().is_object()) {
    const json::object* c = cs->value().if_object();
    out += indent + "error rate, target - other: " + format("%+.4f", number(c, "estimate")) + " (anytime " +
           format("%g", 100 * (1 - alpha)) + "% interval " + format("%+.4f", number(c, "low")) + " .. " +
           format("%+.4f", number(c, "high")) + ")\n";
  }
  return out;
}

}  // namespace bgproxy::control
