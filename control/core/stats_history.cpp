#include "control/core/stats_history.hpp"

#include <algorithm>
#include <iterator>

namespace bgproxy::control {

void StatsHistory::push(Clock::time_point at, stats::RequestStats snapshot, const config::Config& cfg) {
  snapshots_.emplace_back(at, std::move(snapshot));
  std::chrono::milliseconds longest{0};
  for (const auto& svc : cfg.services) longest = std::max(longest, svc.watchdog.window);
  // The second oldest already covers every window: the oldest is needed no more.
  while (snapshots_.size() > 2 && at - snapshots_[1].first >= longest) snapshots_.pop_front();
}

namespace {

using Snapshot = std::pair<StatsHistory::Clock::time_point, stats::RequestStats>;

ServiceWindow window_between(const Snapshot& oldest, const Snapshot& newest, std::size_t si) {
  ServiceWindow w;
  w.seconds = std::chrono::duration<double>(newest.first - oldest.first).count();
  // A snapshot collected while a reload switched configs may cover fewer services.
  if (si < newest.second.services.size() && si < oldest.second.services.size()) {
    for (std::size_t c = 0; c < 2; ++c) {
      w.colors[c] = stats::counts_between(oldest.second.services[si].colors[c], newest.second.services[si].colors[c]);
    }
  }
  return w;
}

}  // namespace

std::vector<ServiceWindow> StatsHistory::windows(const config::Config& cfg) const {
  std::vector<ServiceWindow> out;
  if (snapshots_.empty()) return out;
  const auto& newest = snapshots_.back();
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    // The oldest snapshot still inside this service's window.
    auto oldest = snapshots_.begin();
    while (std::next(oldest) != snapshots_.end() && newest.first - oldest->first > cfg.services[si].watchdog.window) {
      ++oldest;
    }
    out.push_back(window_between(*oldest, newest, si));
  }
  return out;
}

std::vector<ServiceWindow> StatsHistory::newest_step(const config::Config& cfg) const {
  std::vector<ServiceWindow> out;
  if (snapshots_.size() < 2) return out;
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    out.push_back(window_between(snapshots_[snapshots_.size() - 2], snapshots_.back(), si));
  }
  return out;
}

WindowFigures figures_of(const std::vector<ServiceWindow>& windows) {
  WindowFigures out;
  out.reserve(windows.size());
  for (const auto& w : windows) {
    out.push_back({stats::figures_of(w.colors[0], w.seconds), stats::figures_of(w.colors[1], w.seconds)});
  }
  return out;
}

void StatsHistory::renumber(const ServiceRenumbering& renumbering) {
  for (auto& [when, snapshot] : snapshots_) {
    snapshot.services = renumbering.apply(snapshot.services);
    snapshot.servers.clear();
  }
}

}  // namespace bgproxy::control
