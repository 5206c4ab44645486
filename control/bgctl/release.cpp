#include "control/bgctl/release.hpp"

#include <boost/json.hpp>

#include "control/bgctl/answer_text.hpp"
#include "control/bgctl/cli.hpp"

namespace bgproxy::bgctl {

namespace json = boost::json;

std::string render_smoke(const json::object& answer) {
  const json::array* smoke = array_field(&answer, "smoke");
  if (smoke == nullptr) return {};
  std::string out;
  for (const auto& v : *smoke) {
    const json::object* r = v.if_object();
    out += "smoke " + text_or_dash(r, "path") + " on " + text_or_dash(r, "server") + ": ";
    const auto status = number_field(r, "status");
    out += status && *status > 0 ? integer_text(r, "status") : std::string("no answer");
    out += " in " + ms_text(number_field(r, "latency_seconds"));
    if (const auto error = string_field(r, "error"); error && !error->empty()) out += ": " + *error;
    out += '\n';
  }
  return out;
}

namespace {

std::string time_prefix(const json::object& e) {
  const auto time = string_field(&e, "time");
  return time ? *time + "  " : std::string();
}

}  // namespace

FollowStep follow_event(const json::object& event, std::string_view service) {
  const auto kind = string_field(&event, "event").value_or("");
  if (kind == "error") {
    return {"bgctl: the proxy stopped the event feed: " + text_or_dash(&event, "error") + "\n", exit_unreachable};
  }
  if (string_field(&event, "service").value_or("") != service) return {};
  const std::string at = time_prefix(event);
  if (kind == "canary_step") {
    return {at + "step " + integer_text(&event, "step") + ": " + weights_text(object_field(&event, "weights")) +
                "\n",
            std::nullopt};
  }
  if (kind == "verdict") {
    // A pass or inconclusive reason starts with its outcome already ("pass: error_rate ...").
    const std::string outcome = text_or_dash(&event, "outcome");
    const std::string reason = text_or_dash(&event, "reason");
    const bool labelled = reason.starts_with(outcome + ":");
    return {at + "verdict " + (labelled ? reason : outcome + ": " + reason) + "\n", std::nullopt};
  }
  if (kind == "health") {
    return {at + "server " + text_or_dash(&event, "color") + " " + text_or_dash(&event, "address") + " " +
                text_or_dash(&event, "state") + "\n",
            std::nullopt};
  }
  if (kind == "promoted") {
    return {at + "promoted: " + text_or_dash(&event, "color") + " has all the traffic (" +
                weights_text(object_field(&event, "weights")) + ")\n",
            exit_ok};
  }
  if (kind == "rollback") {
    return {at + "rolled back: " + text_or_dash(&event, "reason") + " (" +
                weights_text(object_field(&event, "after")) + ")\n",
            exit_refused};
  }
  // A change by hand ends the canary this release started (the release's own change is
  // announced as "release", and comes before anything is followed).
  if (kind == "switch" && string_field(&event, "command").value_or("") != "release") {
    return {at + "interrupted by " + text_or_dash(&event, "command") + ": " +
                weights_text(object_field(&event, "after")) + "\n",
            exit_refused};
  }
  return {};
}

}  // namespace bgproxy::bgctl
