#include "control/core/notification.hpp"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include <boost/json/parse.hpp>

#include "control/core/json_line.hpp"

namespace bgproxy::control {
namespace {

namespace json = boost::json;

std::string_view str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

double num(const json::value& v) { return v.is_double() ? v.get_double() : v.is_int64() ? double(v.get_int64()) : 0.0; }

/// "blue 70% / green 30%" from {"blue":70.0,"green":30.0}
std::string weights_text(const json::object& o, std::string_view key) {
  const auto* w = o.if_contains(key);
  if (w == nullptr || !w->is_object()) return {};
  const auto& ww = w->get_object();
  const auto* b = ww.if_contains("blue");
  const auto* g = ww.if_contains("green");
  char buf[64];
  std::snprintf(buf, sizeof buf, "blue %g%% / green %g%%", b ? num(*b) : 0.0, g ? num(*g) : 0.0);
  return buf;
}

/// The watchdog's figures without the "watchdog: " its history reason begins with.
std::string_view figures(std::string_view reason) {
  constexpr std::string_view prefix = "watchdog: ";
  if (reason.starts_with(prefix)) reason.remove_prefix(prefix.size());
  return reason;
}

}  // namespace

std::string event_text(const Event& e) {
  const auto& f = e.fields;
  const std::string svc = e.service;
  if (e.kind == "rollback")
    return "rolled back " + svc + " " + std::string(str(f, "color")) + ": " + std::string(figures(str(f, "reason")));
  if (e.kind == "promoted")
    return "promoted " + svc + " " + std::string(str(f, "color")) + ": " + weights_text(f, "weights");
  if (e.kind == "canary_step") {
    const auto* step = f.if_contains("step");
    const std::string n = step != nullptr && step->is_number() ? std::to_string(step->to_number<std::int64_t>()) : "?";
    return svc + " canary step " + n + ": " + weights_text(f, "weights") + " (" + std::string(str(f, "reason")) + ")";
  }
  if (e.kind == "switch")
    return svc + ": " + std::string(str(f, "command")) + " " + weights_text(f, "before") + " -> " +
           weights_text(f, "after") + " (" + std::string(str(f, "reason")) + ")";
  if (e.kind == "verdict")
    return "watchdog verdict for " + svc + ": " + std::string(str(f, "outcome")) + ": " + std::string(str(f, "reason"));
  if (e.kind == "health")
    return svc + " " + std::string(str(f, "color")) + " server " + std::string(str(f, "address")) + " " +
           std::string(str(f, "state")) + ": " + std::string(str(f, "reason"));
  if (e.kind == "release") return "release of " + svc + " to " + std::string(str(f, "color")) + " started";
  return svc + ": " + e.kind;
}

std::string notification_body(const Event& e, config::Webhook::Format format) {
  if (format == config::Webhook::Format::slack) return to_line(json::object{{"text", event_text(e)}});
  json::value v = json::parse(event_line(e));
  v.get_object()["text"] = event_text(e);
  return to_line(v);
}

bool wants(const config::Webhook& w, const Event& e) {
  return std::find(w.events.begin(), w.events.end(), e.kind) != w.events.end();
}

}  // namespace bgproxy::control
