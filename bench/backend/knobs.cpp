#include "knobs.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "util.hpp"

namespace bgproxy::demo {

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr std::int64_t kMaxMs = 3'600'000;
constexpr std::int64_t kMaxSeconds = 3'600;
constexpr std::int64_t kMaxRequests = 1'000'000'000;
}  // namespace

int KnobValues::idle_limit_ms() const noexcept {
  const int advertised = keep_alive_timeout * 1000;
  if (idle_close_ms > 0 && advertised > 0) return std::min(idle_close_ms, advertised);
  return idle_close_ms > 0 ? idle_close_ms : advertised;
}

KnobValues Knobs::load() const noexcept {
  KnobValues v;
  v.status = status_.load(kRelaxed);
  v.error_rate = error_rate_.load(kRelaxed);
  v.latency_ms = latency_ms_.load(kRelaxed);
  v.health_status = health_status_.load(kRelaxed);
  v.idle_close_ms = idle_close_ms_.load(kRelaxed);
  v.keep_alive_timeout = keep_alive_timeout_.load(kRelaxed);
  v.keep_alive_max = keep_alive_max_.load(kRelaxed);
  v.app_version = app_version_.load(kRelaxed);
  return v;
}

std::string Knobs::apply(std::string_view query) {
  std::optional<std::int64_t> status, latency, health, idle, ka_timeout, ka_max, app_version;
  std::optional<double> rate;
  bool reset = false;
  std::string error;
  for_each_query_param(query, [&](std::string_view k, std::string_view v) {
    if (!error.empty()) return;
    bool ok = true;
    if (k == "status") {
      ok = (status = parse_int(v, 0, 999)).has_value() && (*status == 0 || *status >= 100);
    } else if (k == "error_rate") {
      ok = (rate = parse_double(v, 0.0, 1.0)).has_value();
    } else if (k == "latency_ms") {
      ok = (latency = parse_int(v, 0, kMaxMs)).has_value();
    } else if (k == "health_status") {
      ok = (health = parse_int(v, 100, 999)).has_value();
    } else if (k == "idle_close_ms") {
      ok = (idle = parse_int(v, 0, kMaxMs)).has_value();
    } else if (k == "keep_alive_timeout") {
      ok = (ka_timeout = parse_int(v, 0, kMaxSeconds)).has_value();
    } else if (k == "keep_alive_max") {
      ok = (ka_max = parse_int(v, 0, kMaxRequests)).has_value();
    } else if (k == "app_version") {
      ok = (app_version = parse_int(v, 0, kMaxRequests)).has_value();
    } else if (k == "reset") {
      reset = v.empty() || v == "1" || v == "true";
    } else {
      error = "unknown knob: " + std::string(k);
      return;
    }
    if (!ok) error = "bad value for knob " + std::string(k) + ": " + std::string(v);
  });
  if (!error.empty()) return error;

  // reset first, so `reset=1&latency_ms=5` means "defaults, except latency".
  if (reset) {
    status_.store(0, kRelaxed);
    error_rate_.store(0.0, kRelaxed);
    latency_ms_.store(0, kRelaxed);
    health_status_.store(200, kRelaxed);
    idle_close_ms_.store(0, kRelaxed);
    keep_alive_timeout_.store(0, kRelaxed);
    keep_alive_max_.store(0, kRelaxed);
    app_version_.store(0, kRelaxed);
    error_draws_.store(0, kRelaxed);
  }
  if (status) status_.store(static_cast<int>(*status), kRelaxed);
  if (rate) {
    error_rate_.store(*rate, kRelaxed);
    error_draws_.store(0, kRelaxed);  // restart the deterministic sequence
  }
  if (latency) latency_ms_.store(static_cast<int>(*latency), kRelaxed);
  if (health) health_status_.store(static_cast<int>(*health), kRelaxed);
  if (idle) idle_close_ms_.store(static_cast<int>(*idle), kRelaxed);
  if (ka_timeout) keep_alive_timeout_.store(static_cast<int>(*ka_timeout), kRelaxed);
  if (ka_max) keep_alive_max_.store(static_cast<int>(*ka_max), kRelaxed);
  if (app_version) app_version_.store(static_cast<int>(*app_version), kRelaxed);
  return {};
}

bool Knobs::draw_error(double rate) noexcept {
  if (rate <= 0.0) return false;
  if (rate >= 1.0) return true;
  // Request n fails when floor((n+1)*rate) > floor(n*rate): exactly rate*N of any N consecutive
  // draws (±1), spread evenly, and reproducible run to run.
  std::uint64_t n = error_draws_.fetch_add(1, kRelaxed);
  auto a = static_cast<double>(n);
  return std::floor((a + 1.0) * rate) > std::floor(a * rate);
}

void Knobs::append_json(std::string& out) const {
  KnobValues v = load();
  out += "{\"status\":";
  append_number(out, v.status);
  out += ",\"error_rate\":";
  append_number(out, v.error_rate);
  out += ",\"latency_ms\":";
  append_number(out, v.latency_ms);
  out += ",\"health_status\":";
  append_number(out, v.health_status);
  out += ",\"idle_close_ms\":";
  append_number(out, v.idle_close_ms);
  out += ",\"keep_alive_timeout\":";
  append_number(out, v.keep_alive_timeout);
  out += ",\"keep_alive_max\":";
  append_number(out, v.keep_alive_max);
  out += ",\"app_version\":";
  append_number(out, v.app_version);
  out += '}';
}

void Stats::append_json(std::string& out) const {
  out += "{\"requests\":";
  append_number(out, requests.load(kRelaxed));
  out += ",\"connections\":";
  append_number(out, connections.load(kRelaxed));
  out += ",\"open_connections\":";
  append_number(out, open_connections.load(kRelaxed));
  out += '}';
}

}  // namespace bgproxy::demo
