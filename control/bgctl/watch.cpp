#include "control/bgctl/watch.hpp"

#include <chrono>
#include <ctime>
#include <sstream>
#include <thread>
#include <unordered_set>

namespace bgproxy::bgctl {

namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// "2026-12-03T19:30:01Z", UTC like the proxy's logs and history.
std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

std::vector<std::string> changed_lines(const std::string& before, const std::string& now) {
  // By content, not by place: a line that appears (a "reason:" under the service) must not make
  // every line below it count as changed.
  std::unordered_multiset<std::string> old_lines;
  for (auto& line : split_lines(before)) old_lines.insert(std::move(line));
  std::vector<std::string> changed;
  for (auto& line : split_lines(now)) {
    if (const auto it = old_lines.find(line); it != old_lines.end()) old_lines.erase(it);
    else changed.push_back(std::move(line));
  }
  return changed;
}

void watch(const Ask& ask, bool terminal, std::ostream& out) {
  std::string last;
  for (;;) {
    const auto started = std::chrono::steady_clock::now();
    std::string now = ask();
    if (terminal) {
      out << "\x1b[H\x1b[2J" << now << std::flush;  // cursor home, clear: redrawn in place, no scrolling
    } else {
      const std::string stamp = now_utc();
      for (const auto& line : changed_lines(last, now)) out << stamp << ' ' << line << '\n';
      out << std::flush;
    }
    last = std::move(now);
    std::this_thread::sleep_until(started + std::chrono::seconds(1));
  }
}

}  // namespace bgproxy::bgctl
