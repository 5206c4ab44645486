#include "bgproxy/health/tracker.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "bgproxy/config/config.hpp"

namespace bgproxy::health {

namespace {

// A threshold of 0 would never be reached by a counter that was just incremented;
// treat it as 1 so a misconfigured value cannot pin a server in one state.
unsigned at_least_one(unsigned n) noexcept { return std::max(n, 1u); }

}  // namespace

Tracker::Tracker(const config::Config& cfg, std::vector<routing::ServerInfo> servers,
                 Clock::time_point now)
    : cfg_(cfg), servers_(std::move(servers)), health_(servers_.size()) {
  for (std::uint32_t id = 0; id < servers_.size(); ++id) {
    if (servers_[id].service >= cfg_.services.size()) {
      throw std::out_of_range("health::Tracker: server " + std::to_string(id) +
                              " names an unknown service");
    }
    auto& h = health_[id];
    h.since = now;
    h.up = !settings(id).enabled;  // `health_check: off`: always up
  }
}

void Tracker::carry_over(const Tracker& old) {
  for (std::uint32_t id = 0; id < servers_.size(); ++id) {
    if (!settings(id).enabled) continue;
    const auto& s = servers_[id];
    const auto& name = cfg_.services[s.service].name;
    for (std::uint32_t o = 0; o < old.servers_.size(); ++o) {
      const auto& os = old.servers_[o];
      if (os.color == s.color && os.endpoint.text == s.endpoint.text &&
          old.cfg_.services[os.service].name == name && old.settings(o).enabled) {
        health_[id] = old.health_[o];
        break;
      }
    }
  }
}

void Tracker::assume(std::uint32_t server, bool up, Clock::time_point now) {
  if (!settings(server).enabled) return;
  auto& h = health_.at(server);
  h.up = up;
  h.consecutive_successes = 0;
  h.consecutive_failures = 0;
  h.since = now;
}

const config::HealthCheck& Tracker::settings(std::uint32_t server) const {
  return cfg_.services.at(servers_.at(server).service).health_check;
}

std::optional<Transition> Tracker::record_check(std::uint32_t server, const CheckResult& r,
                                                Clock::time_point now) {
  const auto& hc = settings(server);
  if (!hc.enabled) return std::nullopt;
  auto& h = health_.at(server);

  h.last_check = r;
  h.last_check_time = now;
  if (r.ok) {
    ++h.checks_ok;
    ++h.consecutive_successes;
    h.consecutive_failures = 0;
    if (!h.up && h.consecutive_successes >= at_least_one(hc.rise)) {
      h.up = true;
      h.since = now;
      return Transition{server, true, std::to_string(h.consecutive_successes) + " consecutive successes"};
    }
  } else {
    ++h.checks_failed;
    ++h.consecutive_failures;
    h.consecutive_successes = 0;
    if (h.up && h.consecutive_failures >= at_least_one(hc.fall)) {
      h.up = false;
      h.since = now;
      std::string reason = std::to_string(h.consecutive_failures) + " consecutive failures";
      if (!r.error.empty()) reason += " (" + r.error + ")";
      return Transition{server, false, std::move(reason)};
    }
  }
  return std::nullopt;
}

std::optional<Transition> Tracker::record_passive_ejection(std::uint32_t server,
                                                            Clock::time_point now) {
  const auto& hc = settings(server);
  if (!hc.enabled || hc.passive_failures == 0) return std::nullopt;
  auto& h = health_.at(server);
  if (!h.up) return std::nullopt;
  h.up = false;
  h.since = now;
  h.consecutive_successes = 0;  // active checks must bring it back: `rise` fresh successes
  return Transition{server, false,
                    "passive: " + std::to_string(hc.passive_failures) + " consecutive failures"};
}

bool Tracker::is_up(std::uint32_t server) const noexcept {
  if (server >= health_.size()) return false;
  return health_[server].up;
}

std::vector<bool> Tracker::up_flags() const {
  std::vector<bool> out;
  out.reserve(health_.size());
  for (const auto& h : health_) out.push_back(h.up);
  return out;
}

bool Tracker::status_expected(const config::HealthCheck& hc, unsigned status) noexcept {
  return std::any_of(hc.expect_status.begin(), hc.expect_status.end(),
                     [status](const config::StatusRange& r) { return status >= r.low && status <= r.high; });
}

}  // namespace bgproxy::health
