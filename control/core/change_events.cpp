#include "control/core/change_events.hpp"

#include <utility>

#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::control {
namespace {

Event make(std::string kind, std::string time, std::string service, std::string instance, bool here = true) {
  Event e;
  e.kind = std::move(kind);
  e.time = std::move(time);
  e.service = std::move(service);
  e.instance = std::move(instance);
  e.here = here;
  return e;
}

std::string_view action_of(const HistoryEntry& entry) {
  const auto* a = entry.args.if_contains("action");
  return a != nullptr && a->is_string() ? std::string_view(a->get_string()) : std::string_view{};
}

/// The color a rollback took traffic from: the one whose weight went down.
std::string_view rolled_back_color(const HistoryEntry& entry, const ServiceState& after) {
  if (entry.after.green_bp < entry.before.green_bp) return "green";
  if (entry.after.green_bp > entry.before.green_bp) return "blue";
  return after.target ? routing::color_name(*after.target) : std::string_view("green");
}

}  // namespace

boost::json::object weights_object(const Weights& w) {
  return {{"blue", weights::to_percent(weights::full_bp - w.green_bp)}, {"green", weights::to_percent(w.green_bp)}};
}

std::vector<Event> change_events(const HistoryEntry& entry, const ServiceState& after, std::string_view instance,
                                 bool here) {
  Event e = make({}, entry.time, entry.service, std::string(instance), here);
  const std::string_view action = entry.command == "canary" ? action_of(entry) : std::string_view{};
  if (entry.command == "rollback" || action == "abort") {
    e.kind = "rollback";
    e.fields = {{"color", rolled_back_color(entry, after)}, {"command", entry.command}, {"reason", entry.reason},
                {"before", weights_object(entry.before)}, {"after", weights_object(entry.after)}};
  } else if (action == "advance") {
    e.kind = "canary_step";
    e.fields = {{"step", after.step}, {"weights", weights_object(entry.after)}, {"reason", entry.reason}};
  } else if (action == "promote") {
    e.kind = "promoted";
    const auto color = after.target ? routing::color_name(*after.target)
                                    : (entry.after.green_bp >= weights::full_bp ? "green" : "blue");
    e.fields = {{"color", color}, {"weights", weights_object(entry.after)}, {"reason", entry.reason}};
  } else if (entry.before != entry.after) {
    e.kind = "switch";
    e.fields = {{"command", entry.command}, {"args", entry.args}, {"reason", entry.reason},
                {"before", weights_object(entry.before)}, {"after", weights_object(entry.after)}};
  } else {
    return {};
  }
  return {std::move(e)};
}

Event health_event(std::string time, std::string service, std::string instance, routing::Color color,
                   std::string address, std::string_view state, std::string reason) {
  Event e = make("health", std::move(time), std::move(service), std::move(instance));
  e.fields = {{"color", routing::color_name(color)}, {"address", std::move(address)}, {"state", state},
              {"reason", std::move(reason)}};
  return e;
}

Event verdict_event(std::string time, std::string service, std::string instance, watchdog::Outcome outcome,
                    std::string reason) {
  Event e = make("verdict", std::move(time), std::move(service), std::move(instance));
  e.fields = {{"outcome", outcome_name(outcome)}, {"reason", std::move(reason)}};
  return e;
}

Event release_event(std::string time, std::string service, std::string instance, routing::Color color,
                    boost::json::array steps, boost::json::array smoke) {
  Event e = make("release", std::move(time), std::move(service), std::move(instance));
  e.fields = {{"color", routing::color_name(color)}, {"steps", std::move(steps)}, {"smoke", std::move(smoke)}};
  return e;
}

std::string_view outcome_name(watchdog::Outcome o) noexcept {
  switch (o) {
    case watchdog::Outcome::pass: return "pass";
    case watchdog::Outcome::fail: return "fail";
    case watchdog::Outcome::inconclusive: break;
  }
  return "inconclusive";
}

}  // namespace bgproxy::control
