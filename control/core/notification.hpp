#pragma once
/// bgproxy::control — what a webhook receives for an event (README "Notifications"): the event's
/// JSON line plus a one-line "text" for people, or in Slack format only {"text": ...}.
/// Pure. Thread: any.

#include <string>

#include "bgproxy/config/config.hpp"
#include "control/core/event_feed.hpp"

namespace bgproxy::control {

/// One line for people, with the figures that caused it, e.g.
/// "rolled back app green: error_rate 0.213 > 0.05 (n=412, window 30s)".
std::string event_text(const Event& e);

/// The POST body: json = the event object with "text" added; slack = {"text": event_text}.
std::string notification_body(const Event& e, config::Webhook::Format format);

/// Whether the webhook selected this kind of event.
bool wants(const config::Webhook& w, const Event& e);

}  // namespace bgproxy::control
