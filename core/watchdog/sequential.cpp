#include "bgproxy/watchdog/sequential.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bgproxy::watchdog {

namespace {

// The latency rules' shares: the p95 is above an edge exactly when more than 5 % of the requests
// are; the null is half of that, as for errors.
constexpr double slow_share = 0.05;
// The relative rules: bad evidence is against "the target's events are no more frequent than the
// other's", good evidence against "they are at least twice as frequent".
constexpr double relative_bad_null = 1.0;
constexpr double relative_good_null = 2.0;

double clamp_share(double p) { return std::clamp(p, 1e-6, 1 - 1e-6); }

std::uint64_t micros_of(double seconds) {
  return seconds <= 0 ? 0 : static_cast<std::uint64_t>(std::llround(seconds * 1e6));
}

/// "164", "3.2", "1.2e+05": evidence as people read it.
std::string evidence_text(double log_e) {
  char buf[32];
  const double e = std::exp(std::min(log_e, 700.0));
  std::snprintf(buf, sizeof buf, e >= 10 ? "%.3g" : "%.2g", e);
  return buf;
}

}  // namespace

unsigned edge_bucket(double seconds) noexcept {
  const std::uint64_t us = micros_of(seconds);
  const unsigned b = stats::LatencyHistogram::bucket_of(us);
  return stats::LatencyHistogram::bucket_low(b) == us ? b : std::min(b + 1, stats::LatencyHistogram::bucket_count - 1);
}

double edge_seconds(unsigned bucket) noexcept {
  return static_cast<double>(stats::LatencyHistogram::bucket_low(bucket)) / 1e6;
}

SecondCounts second_counts(const stats::WindowCounts& c, unsigned latency_edge, unsigned relative_edge) noexcept {
  SecondCounts out{c.requests, c.errors, 0, 0};
  for (unsigned b = std::min(latency_edge, relative_edge == 0 ? latency_edge : relative_edge);
       b < stats::LatencyHistogram::bucket_count; ++b) {
    const std::uint64_t n = c.latency.bucket(b);
    if (n == 0) continue;
    if (b >= latency_edge) out.slow += n;
    if (relative_edge != 0 && b >= relative_edge) out.slow_relative += n;
  }
  return out;
}

SequentialAnalysis::SequentialAnalysis(const config::Watchdog& policy, std::chrono::milliseconds now)
    : alpha_(policy.alpha),
      tau_(std::max(policy.max_error_rate_delta, 0.01)),
      counting_from_(now + warm_up),
      latency_edge_(edge_bucket(std::chrono::duration<double>(policy.max_p95).count())),
      max_p95_ratio_(policy.max_p95_ratio),
      errors_bad_(clamp_share(policy.max_error_rate / 2), clamp_share(policy.max_error_rate)),
      slow_bad_(slow_share / 2, slow_share),
      errors_relative_bad_(relative_bad_null, RatioMixture::Direction::up),
      slow_relative_bad_(relative_bad_null, RatioMixture::Direction::up),
      errors_good_(errors_bad_),
      slow_good_(slow_bad_),
      errors_relative_good_(relative_good_null, RatioMixture::Direction::down),
      slow_relative_good_(relative_good_null, RatioMixture::Direction::down) {}

void SequentialAnalysis::start_step(std::chrono::milliseconds now) {
  counting_from_ = now + warm_up;
  errors_good_.reset();
  slow_good_.reset();
  errors_relative_good_ = RatioMixture(relative_good_null, RatioMixture::Direction::down);
  slow_relative_good_ = RatioMixture(relative_good_null, RatioMixture::Direction::down);
  step_requests_ = 0;
}

void SequentialAnalysis::freeze_relative_edge(double other_p95_seconds) noexcept {
  if (relative_edge_ != 0 || !(other_p95_seconds > 0)) return;
  relative_edge_ =
      edge_bucket(std::max(other_p95_seconds * max_p95_ratio_, other_p95_seconds + relative_margin_seconds));
}

void SequentialAnalysis::observe(std::chrono::milliseconds now, const Second& s) {
  if (now < counting_from_) return;
  const auto& t = s.target;
  const auto& o = s.other;
  errors_bad_.observe(t.errors, t.requests);
  errors_good_.observe(t.errors, t.requests);
  slow_bad_.observe(t.slow, t.requests);
  slow_good_.observe(t.slow, t.requests);
  const std::uint64_t both = t.requests + o.requests;
  if (both > 0) {
    const double rho = static_cast<double>(t.requests) / static_cast<double>(both);
    errors_relative_bad_.observe(rho, t.errors, o.errors);
    errors_relative_good_.observe(rho, t.errors, o.errors);
    if (relative_edge_ != 0) {
      slow_relative_bad_.observe(rho, t.slow_relative, o.slow_relative);
      slow_relative_good_.observe(rho, t.slow_relative, o.slow_relative);
      target_slow_relative_ += t.slow_relative;
      other_slow_relative_ += o.slow_relative;
    }
  }
  target_requests_ += t.requests;
  target_errors_ += std::min(t.errors, t.requests);
  target_slow_ += t.slow;
  other_requests_ += o.requests;
  other_errors_ += std::min(o.errors, o.requests);
  step_requests_ += t.requests;
}

Evidence SequentialAnalysis::evidence() const {
  Evidence ev;
  ev.alpha = alpha_;
  const double bar = std::log(1 / alpha_);
  const auto rule = [bar](double log_bad, double log_good) {
    return RuleEvidence{log_bad, log_good, log_good >= bar ? Outcome::pass : Outcome::inconclusive};
  };
  auto& rules = ev.rules;
  rules[0] = rule(errors_bad_.log_lambda(), -errors_good_.log_lambda());
  rules[1] = rule(errors_relative_bad_.log_e(), errors_relative_good_.log_e());
  rules[2] = rule(slow_bad_.log_lambda(), -slow_good_.log_lambda());
  rules[3] = rule(slow_relative_bad_.log_e(), slow_relative_good_.log_e());
  // A relative rule sees only events: with none on either color it cannot speak, so it follows
  // its absolute rule unless its own bad evidence leans against the target.
  for (const auto& [relative, absolute] : {std::pair{1, 0}, std::pair{3, 2}}) {
    auto& r = rules[static_cast<std::size_t>(relative)];
    if (r.outcome == Outcome::inconclusive && rules[static_cast<std::size_t>(absolute)].outcome == Outcome::pass &&
        r.log_bad <= 0) {
      r.outcome = Outcome::pass;
    }
  }
  // The mean of the rules' bad evidence is an e-process when every rule's null holds (a healthy
  // target), so failing at 1/alpha keeps the false-rollback rate ≤ alpha for all four together;
  // the rule with the most evidence is the one that failed.
  double top = rules[0].log_bad;
  for (const auto& r : rules) top = std::max(top, r.log_bad);
  double sum = 0;
  for (const auto& r : rules) sum += std::exp(r.log_bad - top);
  ev.log_bad = top + std::log(sum / static_cast<double>(rules.size()));
  if (ev.log_bad >= bar) {
    auto worst = rules.begin();
    for (auto it = rules.begin(); it != rules.end(); ++it) {
      if (it->log_bad > worst->log_bad) worst = it;
    }
    worst->outcome = Outcome::fail;
    ev.outcome = Outcome::fail;
  } else {
    const bool all_pass =
        std::all_of(rules.begin(), rules.end(), [](const RuleEvidence& r) { return r.outcome == Outcome::pass; });
    ev.outcome = all_pass ? Outcome::pass : Outcome::inconclusive;
  }

  if (target_requests_ > 0 && other_requests_ > 0) {
    // Half an event of each kind keeps the variance away from 0 before the first error.
    const auto smoothed = [](std::uint64_t e, std::uint64_t n) {
      return (static_cast<double>(e) + 0.5) / (static_cast<double>(n) + 1);
    };
    const double pt = smoothed(target_errors_, target_requests_);
    const double po = smoothed(other_errors_, other_requests_);
    const double v = pt * (1 - pt) / static_cast<double>(target_requests_) +
                     po * (1 - po) / static_cast<double>(other_requests_);
    const double tau2 = tau_ * tau_;
    const double half = std::sqrt(v * (v + tau2) / tau2 * (2 * bar + std::log((v + tau2) / v)));
    auto& cs = ev.error_rate_difference;
    cs.known = true;
    cs.estimate = static_cast<double>(target_errors_) / static_cast<double>(target_requests_) -
                  static_cast<double>(other_errors_) / static_cast<double>(other_requests_);
    cs.low = std::max(cs.estimate - half, -1.0);
    cs.high = std::min(cs.estimate + half, 1.0);
  }
  ev.latency_edge_seconds = edge_seconds(latency_edge_);
  ev.relative_edge_seconds = relative_edge_ == 0 ? 0 : edge_seconds(relative_edge_);
  ev.target_requests = target_requests_;
  ev.target_errors = target_errors_;
  ev.other_requests = other_requests_;
  ev.other_errors = other_errors_;
  ev.step_requests = step_requests_;
  return ev;
}

Verdict SequentialAnalysis::verdict(std::string_view target_name, std::string_view other_name) const {
  const Evidence ev = evidence();
  const std::string bar = evidence_text(std::log(1 / alpha_));
  const std::string mean = evidence_text(ev.log_bad);
  const std::string t(target_name), o(other_name);
  char buf[320];
  if (ev.outcome == Outcome::fail) {
    constexpr std::array<Rule, 4> as_threshold{Rule::error_rate, Rule::error_rate_delta, Rule::p95, Rule::p95_ratio};
    std::size_t i = 0;
    while (ev.rules[i].outcome != Outcome::fail) ++i;
    const bool errors = i < 2;
    const double edge_ms = (i == 2 ? ev.latency_edge_seconds : ev.relative_edge_seconds) * 1000;
    const std::string what = errors ? "errors" : "slower than " + std::to_string(std::llround(edge_ms)) + "ms";
    const std::uint64_t te = errors ? target_errors_ : i == 2 ? target_slow_ : target_slow_relative_;
    // Relative rules (odd) also say what the other color had.
    char other[96] = "";
    if (i % 2 == 1) {
      const std::uint64_t oe = errors ? other_errors_ : other_slow_relative_;
      std::snprintf(other, sizeof other, ", %s %llu of %llu", o.c_str(), static_cast<unsigned long long>(oe),
                    static_cast<unsigned long long>(other_requests_));
    }
    std::snprintf(buf, sizeof buf, "%s evidence %s, mean of the rules %s >= %s (alpha %g): %s %llu %s of %llu%s",
                  sequential_rule_names[i], evidence_text(ev.rules[i].log_bad).c_str(), mean.c_str(), bar.c_str(),
                  alpha_, t.c_str(), static_cast<unsigned long long>(te), what.c_str(),
                  static_cast<unsigned long long>(target_requests_), other);
    return {Outcome::fail, as_threshold[i], buf};
  }
  if (ev.outcome == Outcome::pass) {
    std::snprintf(buf, sizeof buf, "pass: evidence >= %s on every rule (n=%llu this step, %llu errors in %llu)",
                  bar.c_str(), static_cast<unsigned long long>(step_requests_),
                  static_cast<unsigned long long>(target_errors_), static_cast<unsigned long long>(target_requests_));
    return {Outcome::pass, Rule::none, buf};
  }
  std::string waiting;
  for (std::size_t i = 0; i < ev.rules.size(); ++i) {
    if (ev.rules[i].outcome == Outcome::pass) continue;
    if (!waiting.empty()) waiting += ", ";
    waiting += sequential_rule_names[i];
  }
  std::snprintf(buf, sizeof buf, "inconclusive: %s not passed yet (n=%llu this step)",
                waiting.c_str(), static_cast<unsigned long long>(step_requests_));
  return {Outcome::inconclusive, Rule::none, buf};
}

}  // namespace bgproxy::watchdog
