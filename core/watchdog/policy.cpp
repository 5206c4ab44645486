#include "bgproxy/watchdog/policy.hpp"

#include <chrono>
#include <cstdarg>
#include <cstdio>

namespace bgproxy::watchdog {

namespace {

// Relative rules compare computed figures (a difference, a product, a sum), whose rounding must
// not turn "exactly at the threshold" into a failure: 0.05 - 0.03 is 0.020000000000000004.
constexpr double tolerance = 1e-12;
// The p95 ratio rule also requires an absolute margin, so that tiny baselines (2 ms vs 4 ms) do
// not roll back a healthy color.
constexpr double p95_margin_seconds = 0.050;

[[gnu::format(printf, 1, 2)]] std::string format(const char* fmt, ...) {
  char buf[256];
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  if (n < 0) return {};
  if (static_cast<std::size_t>(n) < sizeof buf) return std::string(buf, static_cast<std::size_t>(n));
  std::string out(static_cast<std::size_t>(n), '\0');
  va_start(args, fmt);
  std::vsnprintf(out.data(), out.size() + 1, fmt, args);
  va_end(args);
  return out;
}

double seconds_of(config::Duration d) { return std::chrono::duration<double>(d).count(); }

/// "30s", "1.5s", "500ms".
std::string window_text(config::Duration window) {
  if (window < std::chrono::seconds(1)) return format("%lldms", static_cast<long long>(window.count()));
  return format("%gs", seconds_of(window));
}

/// " (n=412, window 30s)"
std::string context(const Figures& target, const config::Watchdog& policy) {
  return format(" (n=%llu, window %s)", static_cast<unsigned long long>(target.requests),
                window_text(policy.window).c_str());
}

}  // namespace

Verdict evaluate(const Figures& target, const Figures& other, const config::Watchdog& policy,
                 std::string_view other_name) {
  const std::string other_str(other_name);  // for %s

  if (target.requests < policy.min_requests) {
    return {Outcome::inconclusive, Rule::none,
            format("inconclusive: %llu requests < min_requests %llu (window %s)",
                   static_cast<unsigned long long>(target.requests),
                   static_cast<unsigned long long>(policy.min_requests), window_text(policy.window).c_str())};
  }

  if (target.error_rate > policy.max_error_rate) {
    return {Outcome::fail, Rule::error_rate,
            format("error_rate %.3f > %g", target.error_rate, policy.max_error_rate) + context(target, policy)};
  }

  const double max_p95 = seconds_of(policy.max_p95);
  if (target.p95_seconds > max_p95) {
    return {Outcome::fail, Rule::p95,
            format("p95 %.3fs > %gs", target.p95_seconds, max_p95) + context(target, policy)};
  }

  if (other.requests >= policy.min_requests) {
    if (target.error_rate - other.error_rate > policy.max_error_rate_delta + tolerance) {
      return {Outcome::fail, Rule::error_rate_delta,
              format("error_rate %.3f exceeds %s's %.3f by more than %g", target.error_rate, other_str.c_str(),
                     other.error_rate, policy.max_error_rate_delta) +
                  context(target, policy)};
    }
    if (target.p95_seconds > other.p95_seconds * policy.max_p95_ratio + tolerance &&
        target.p95_seconds > other.p95_seconds + p95_margin_seconds + tolerance) {
      return {Outcome::fail, Rule::p95_ratio,
              format("p95 %.3fs > %g x %s's %.3fs and %s's + %gms", target.p95_seconds, policy.max_p95_ratio,
                     other_str.c_str(), other.p95_seconds, other_str.c_str(), p95_margin_seconds * 1000) +
                  context(target, policy)};
    }
  }

  return {Outcome::pass, Rule::none,
          format("pass: error_rate %.3f, p95 %.3fs", target.error_rate, target.p95_seconds) +
              context(target, policy)};
}

}  // namespace bgproxy::watchdog
