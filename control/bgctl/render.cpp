#include "control/bgctl/render.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <vector>

#include <boost/json.hpp>

#include "bgproxy/weights/basis_points.hpp"
#include "control/core/evidence_json.hpp"
#include "control/bgctl/answer_text.hpp"
#include "control/bgctl/release.hpp"

namespace bgproxy::bgctl {

namespace json = boost::json;

namespace {

std::string servers_text(const json::array* servers) {
  if (servers == nullptr) return std::string(missing);
  if (servers->empty()) return "(none)";
  std::string out;
  for (const auto& s : *servers) {
    const json::object* o = s.if_object();
    if (!out.empty()) out += ", ";
    out += text_or_dash(o, "address") + " " + text_or_dash(o, "state");
  }
  return out;
}

std::string last_check_text(const json::value* v) {
  const json::object* c = v != nullptr ? v->if_object() : nullptr;
  if (c == nullptr) return std::string(missing);
  const json::value* ok = field(c, "ok");
  std::string out = (ok != nullptr && ok->is_bool()) ? (ok->get_bool() ? "ok" : "failed") : std::string(missing);
  // Appended piecewise: `" " + temporary` trips a false -Wrestrict in GCC 12.
  if (field(c, "status") != nullptr && !field(c, "status")->is_null()) {
    out += ' ';
    out += integer_text(c, "status");
  }
  if (const auto latency = number_field(c, "latency_seconds")) {
    out += ' ';
    out += ms_text(latency);
  }
  if (const auto error = string_field(c, "error"); error && !error->empty()) {
    out += ": ";
    out += *error;
  }
  return out;
}

/// One argument of a history entry as an operator reads it: weights "green 10%", canary steps
/// "10%,50%,100%", the interval "every 60s", "--force"; names and addresses bare ("disable",
/// "127.0.0.1:5006"); anything else key=JSON, so a newer proxy's arguments still show.
std::string arg_text(std::string_view key, const json::value& v) {
  const auto number = number_of(v);
  if ((key == "green" || key == "blue") && number) return std::string(key) + " " + percent_text(number);
  if (key == "interval_seconds" && number) return "every " + trimmed(*number, 3) + "s";
  if (key == "force" && v.is_bool()) return v.get_bool() ? "--force" : "";
  if (key == "steps" && v.is_array()) {
    std::string out;
    for (const auto& step : v.get_array()) {
      if (!out.empty()) out += ',';
      out += percent_text(number_of(step));
    }
    return out;
  }
  if (v.is_string()) return clean(v.get_string());
  return clean(key) + "=" + clean(json::serialize(v));
}

/// The entry's command with its args: "split green 10%", "switch green", "canary start green
/// 10%,50%,100% every 60s", "server drain 127.0.0.1:5006". An older proxy's entries carry the
/// arguments in the command text and no args; they print as they are.
std::string command_text(const json::object* entry) {
  std::string out = text_or_dash(entry, "command");
  if (const json::object* args = object_field(entry, "args")) {
    for (const auto& kv : *args) {
      const std::string arg = arg_text(kv.key(), kv.value());
      if (arg.empty()) continue;
      out += ' ';
      out += arg;
    }
  }
  return out;
}

std::string by_text(const json::object* by) {
  if (by == nullptr) return std::string(missing);
  return "uid " + integer_text(by, "uid") + " pid " + integer_text(by, "pid");
}

}  // namespace

std::string service_line(const json::object& service) {
  std::string out = text_or_dash(&service, "name") + ": " + weights_text(object_field(&service, "weights"));
  std::vector<std::string> notes;
  const auto phase = string_field(&service, "phase");
  if (phase) {
    std::string p = "phase " + *phase;
    if (field(&service, "step") != nullptr && *phase != "idle" && *phase != "promoted")
      p += ", step " + integer_text(&service, "step");
    notes.push_back(std::move(p));
  }
  if (const auto target = string_field(&service, "target"); target && !target->empty())
    notes.push_back("target " + *target);
  if (!notes.empty()) {
    out += " (";
    for (std::size_t i = 0; i < notes.size(); ++i) out += (i == 0 ? "" : ", ") + notes[i];
    out += ")";
  }
  return out;
}

/// The fleet part of a status (README "Running a fleet"): empty outside a fleet.
///   fleet: connected to etcd, routing by revision 42, 3 members
///     a  127.0.0.1:9901  revision 42  connected
std::string fleet_text(const json::object* fleet) {
  if (fleet == nullptr) return {};
  const auto connected = field(fleet, "connected");
  const bool is_connected = connected && connected->is_bool() && connected->as_bool();
  const json::array* members = array_field(fleet, "members");
  const std::size_t count = members ? members->size() : 0;
  std::string out = "\nfleet: " + std::string(is_connected ? "connected to etcd" : "NOT connected to etcd") +
                    ", routing by revision " + integer_text(fleet, "revision") + ", " + std::to_string(count) +
                    (count == 1 ? " member" : " members") + '\n';
  std::vector<std::vector<std::string>> rows;
  if (members != nullptr) {
    for (const auto& v : *members) {
      const json::object* m = v.if_object();
      const auto up = field(m, "connected");
      rows.push_back({text_or_dash(m, "instance"), text_or_dash(m, "address"), "revision " + integer_text(m, "revision"),
                      up && up->is_bool() && up->as_bool() ? "connected" : "not connected"});
    }
  }
  return rows.empty() ? out : out + table(rows, "  ");
}

std::string render_status(const json::object& answer) {
  const json::array* services = array_field(&answer, "services");
  if (services == nullptr || services->empty()) return "no services\n";
  std::string out;
  for (const auto& sv : *services) {
    const json::object* s = sv.if_object();
    if (s == nullptr) continue;
    if (!out.empty()) out += '\n';
    out += service_line(*s) + '\n';
    if (const auto reason = string_field(s, "reason"); reason && !reason->empty()) out += "  reason: " + *reason + '\n';
    const json::object* colors = object_field(s, "colors");
    std::vector<std::vector<std::string>> rows{{"COLOR", "RPS", "REQUESTS", "ERRORS", "P95", "SERVERS"}};
    for (const std::string_view color : {"blue", "green"}) {
      const json::object* c = object_field(colors, color);
      rows.push_back({std::string(color), rps_text(number_field(c, "rps")), integer_text(c, "requests"),
                      rate_text(number_field(c, "error_rate")), ms_text(number_field(c, "p95_seconds")),
                      servers_text(array_field(c, "servers"))});
    }
    if (const json::object* w = object_field(s, "watchdog")) {
      rows.push_back({"limit", "", "min " + integer_text(w, "min_requests"), rate_text(number_field(w, "max_error_rate")),
                      ms_text(number_field(w, "max_p95_seconds")), ""});
    }
    out += table(rows, "  ");
    // A gRPC service's streaming calls are among REQUESTS but not in P95: say how many.
    for (const std::string_view color : {"blue", "green"}) {
      const json::object* c = object_field(colors, color);
      if (field(c, "streaming_calls") == nullptr) continue;
      out += "  " + std::string(color) + " streaming calls: " + integer_text(c, "streaming_calls") + " (not in p95)\n";
    }
    if (const json::object* w = object_field(s, "watchdog")) {
      const auto window = number_field(w, "window_seconds");
      out += "  watchdog: ";
      const auto enabled = field(w, "enabled");
      if (enabled && enabled->is_bool() && !enabled->as_bool()) {
        out += "off";
      } else {
        const auto dry = field(w, "dry_run");
        out += std::string(dry && dry->is_bool() && dry->as_bool() ? "dry run" : "on") + ", ";
        if (const auto method = string_field(w, "method"); method && *method == "sequential") out += "sequential, ";
        out += "window " + (window ? fixed(*window, 0) + "s" : std::string("-"));
        if (const auto verdict = string_field(w, "verdict")) out += ", last verdict: " + *verdict;
      }
      out += '\n';
      out += control::evidence_lines(w->if_contains("evidence"), "    ");
    }
    out += shadow_summary_text(object_field(s, "shadow"));
  }
  return out + fleet_text(object_field(&answer, "fleet"));
}

/// Time since the server's state last changed: "42s", "12m", "3h".
std::string since_text(std::optional<double> seconds) {
  if (!seconds || *seconds < 0) return "-";
  if (*seconds < 120) return fixed(*seconds, 0) + "s";
  if (*seconds < 7200) return fixed(*seconds / 60, 0) + "m";
  return fixed(*seconds / 3600, 0) + "h";
}

std::string render_health(const json::object& answer) {
  const json::array* services = array_field(&answer, "services");
  std::vector<std::vector<std::string>> rows{
      {"SERVICE", "COLOR", "ADDRESS", "STATE", "FAILURES", "SUCCESSES", "SINCE", "LAST CHECK"}};
  if (services != nullptr) {
    for (const auto& sv : *services) {
      const json::object* s = sv.if_object();
      const json::array* servers = array_field(s, "servers");
      if (servers == nullptr) continue;
      for (const auto& v : *servers) {
        const json::object* o = v.if_object();
        rows.push_back({text_or_dash(s, "name"), text_or_dash(o, "color"), text_or_dash(o, "address"),
                        text_or_dash(o, "state"), integer_text(o, "consecutive_failures"),
                        integer_text(o, "consecutive_successes"), since_text(number_field(o, "since_seconds")),
                        last_check_text(field(o, "last_check"))});
      }
    }
  }
  if (rows.size() == 1) return "no servers\n";
  return table(rows);
}

std::string render_history(const json::object& answer) {
  const json::array* history = array_field(&answer, "history");
  std::vector<std::vector<std::string>> rows{{"TIME", "SERVICE", "COMMAND", "BY", "WEIGHTS", "REASON"}};
  if (history != nullptr) {
    for (const auto& v : *history) {
      const json::object* e = v.if_object();
      if (e == nullptr) continue;
      rows.push_back({text_or_dash(e, "time"), text_or_dash(e, "service"), command_text(e),
                      by_text(object_field(e, "by")),
                      weights_text(object_field(e, "before")) + " -> " + weights_text(object_field(e, "after")),
                      text_or_dash(e, "reason")});
    }
  }
  if (rows.size() == 1) return "no history\n";
  return table(rows);
}

std::string render_change(const json::object& answer) {
  const json::value* state = field(&answer, "state");
  const json::array* list = nullptr;
  if (state != nullptr && state->is_array()) list = &state->get_array();
  else if (state != nullptr && state->is_object()) {
    if (const json::array* services = array_field(&state->get_object(), "services")) list = services;
    else if (field(&state->get_object(), "name") != nullptr) return service_line(state->get_object()) + '\n';
  }
  std::string out;
  if (list != nullptr) {
    for (const auto& v : *list)
      if (const json::object* s = v.if_object()) out += service_line(*s) + '\n';
  }
  if (!out.empty()) return out;
  if (const auto message = string_field(&answer, "message"); message && !message->empty()) return *message + '\n';
  return "ok\n";
}

namespace {

/// What `rollback --drain` cut, if it was asked to.
std::string render_cut(const json::object& answer) {
  const json::object* cut = object_field(&answer, "cut");
  if (cut == nullptr) return {};
  const auto color = string_field(cut, "color");
  if (!color) return "nothing cut: both colors keep traffic\n";
  return "cut " + integer_text(cut, "exchanges") + " exchanges in flight to " + *color + "\n";
}

}  // namespace

std::string render(std::string_view command, const json::object& answer) {
  if (command == "status") return render_status(answer);
  if (command == "health") return render_health(answer);
  if (command == "history") return render_history(answer);
  if (command == "shadow") return render_shadow(answer);
  if (command == "release") return render_smoke(answer) + render_change(answer);
  return render_change(answer) + render_cut(answer);
}

}  // namespace bgproxy::bgctl
