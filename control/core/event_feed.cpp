#include "control/core/event_feed.hpp"

#include <utility>

#include "control/core/json_line.hpp"

namespace bgproxy::control {

std::string event_line(const Event& e) {
  boost::json::object o{{"event", e.kind}, {"time", e.time}, {"service", e.service}, {"instance", e.instance}};
  for (const auto& [key, value] : e.fields) o[key] = value;
  return to_line(o);
}

std::string dropped_line() {
  return to_line(boost::json::object{{"event", "error"}, {"error", "subscriber too slow: dropped"}});
}

EventFeed::Id EventFeed::subscribe(std::string service, Ready ready) {
  const Id id = next_id_++;
  subscribers_.emplace(id, Subscriber{std::move(service), std::move(ready), {}, 0, false});
  return id;
}

void EventFeed::unsubscribe(Id id) { subscribers_.erase(id); }

void EventFeed::publish(const Event& e) {
  const std::string line = event_line(e) + '\n';
  // Told after the loop: a ready() that takes lines or unsubscribes must not disturb it.
  std::vector<std::pair<Id, bool>> told;
  for (auto& [id, s] : subscribers_) {
    if (s.dropped || (!s.service.empty() && s.service != e.service)) continue;
    if (s.lines.size() + 1 > limits_.max_lines || s.bytes + line.size() > limits_.max_bytes) {
      // Everything it has not taken goes: the client learns it missed events, and reconnects.
      s.lines.clear();
      s.lines.push_back(dropped_line() + '\n');
      s.bytes = s.lines.back().size();
      s.dropped = true;
    } else {
      s.lines.push_back(line);
      s.bytes += line.size();
    }
    told.emplace_back(id, s.dropped);
  }
  for (const auto& [id, dropped] : told) {
    const auto it = subscribers_.find(id);
    if (it == subscribers_.end() || !it->second.ready) continue;
    // A copy: taking a dropped subscriber's last line forgets it, and its ready() with it.
    const Ready ready = it->second.ready;
    ready(dropped);
  }
  for (const auto& l : listeners_) l(e);
}

EventFeed::Taken EventFeed::take(Id id) {
  Taken t;
  const auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return t;
  for (auto& line : it->second.lines) t.lines += line;
  it->second.lines.clear();
  it->second.bytes = 0;
  t.last = it->second.dropped;
  if (t.last) subscribers_.erase(it);
  return t;
}

}  // namespace bgproxy::control
