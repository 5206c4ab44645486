#include "simulate.hpp"

#include <array>
#include <chrono>
#include <cmath>
#include <deque>
#include <random>

#include "bgproxy/watchdog/policy.hpp"
#include "bgproxy/watchdog/sequential.hpp"

namespace bgproxy::bench {

namespace {

constexpr double median_seconds = 0.050;  // blue: p95 = 50 ms · e^(1.645 · 0.5) = 114 ms
constexpr double sigma = 0.5;
constexpr double pi = 3.14159265358979323846;

// The threshold method reads a p95 from a histogram over its window: 5 % wide log bins from
// 1 ms are precise enough to judge 1.5 × against 1 × and cheap to slide.
constexpr double bin_ratio = 1.05;
constexpr int bins = 256;

int bin_of(double seconds) {
  if (seconds <= 0.001) return 0;
  const int b = static_cast<int>(std::log(seconds / 0.001) / std::log(bin_ratio));
  return b >= bins ? bins - 1 : b;
}

struct ColorSecond {
  std::uint64_t requests = 0, errors = 0, slow = 0, slow_relative = 0;
  std::array<std::uint32_t, bins> latency{};
};

// Counts leave the window by adding them times -1: unsigned arithmetic wraps back exactly.
struct WindowSum {
  std::uint64_t requests = 0, errors = 0;
  std::array<std::uint64_t, bins> latency{};
  void add(const ColorSecond& s, int sign) {
    requests += static_cast<std::uint64_t>(sign) * s.requests;
    errors += static_cast<std::uint64_t>(sign) * s.errors;
    for (int b = 0; b < bins; ++b) latency[b] += static_cast<std::uint64_t>(sign) * s.latency[b];
  }
  double p95() const {
    if (requests == 0) return 0;
    const double want = 0.95 * static_cast<double>(requests);
    double seen = 0;
    for (int b = 0; b < bins; ++b) {
      const auto n = static_cast<double>(latency[b]);
      if (seen + n >= want && n > 0) return 0.001 * std::pow(bin_ratio, b + (want - seen) / n);
      seen += n;
    }
    return 0.001 * std::pow(bin_ratio, bins);
  }
  watchdog::Figures figures() const {
    return {requests, requests ? static_cast<double>(errors) / static_cast<double>(requests) : 0, p95()};
  }
};

}  // namespace

Run simulate(const Scenario& s, const config::Watchdog& policy, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z;
  std::uniform_real_distribution<double> u;
  const double latency_edge =
      watchdog::edge_seconds(watchdog::edge_bucket(std::chrono::duration<double>(policy.max_p95).count()));
  const double green_error = std::min(1.0, s.blue_error_rate * s.green_error_factor);
  const int window = static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(policy.window).count());
  const auto rate_at = [&](int t) { return s.base_rps * (1 + 9 * 0.5 * (1 - std::cos(2 * pi * t / s.seconds))); };

  double relative_edge = 0;
  const auto draw = [&](ColorSecond& c, std::uint64_t n, double error_rate, double latency_factor) {
    c.requests = n;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (u(rng) < error_rate) ++c.errors;
      const double d = median_seconds * latency_factor * std::exp(sigma * z(rng));
      ++c.latency[bin_of(d)];
      if (d >= latency_edge) ++c.slow;
      if (relative_edge > 0 && d >= relative_edge) ++c.slow_relative;
    }
  };

  // Before the rollout, blue has all the traffic: the window the control plane freezes the
  // relative latency edge from.
  WindowSum before;
  for (int t = -window; t < 0; ++t) {
    ColorSecond b;
    draw(b, std::poisson_distribution<std::uint64_t>(rate_at(0))(rng), s.blue_error_rate, 1);
    before.add(b, 1);
  }
  watchdog::SequentialAnalysis analysis(policy, std::chrono::milliseconds(0));
  analysis.freeze_relative_edge(before.p95());
  relative_edge = analysis.relative_edge_frozen() ? watchdog::edge_seconds(analysis.relative_edge()) : 0;

  Run run;
  std::deque<std::array<ColorSecond, 2>> seconds;  // blue, green over the threshold window
  std::array<WindowSum, 2> sum;
  std::uint64_t green_requests = 0;
  for (int t = 0; t < s.seconds; ++t) {
    if (run.threshold.rolled_back && run.sequential.rolled_back) break;
    const auto all = std::poisson_distribution<std::uint64_t>(rate_at(t))(rng);
    std::uint64_t green = 0;
    std::uint64_t blue = all;
    if (s.quiet) {
      green = t % 60 == 0 ? 1 : 0;
    } else if (s.split >= 1) {
      green = all;
      blue = 0;
    } else {
      green = std::binomial_distribution<std::uint64_t>(all, s.split)(rng);
      blue = all - green;
    }
    std::array<ColorSecond, 2> now{};
    draw(now[0], blue, s.blue_error_rate, 1);
    draw(now[1], green, green_error, s.green_latency_factor);
    green_requests += green;

    const auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(t) * 1000);
    if (!run.sequential.rolled_back) {
      analysis.observe(ms, watchdog::Second{{now[1].requests, now[1].errors, now[1].slow, now[1].slow_relative},
                                            {now[0].requests, now[0].errors, now[0].slow, now[0].slow_relative}});
      const auto outcome = analysis.evidence().outcome;
      if (outcome == watchdog::Outcome::fail) run.sequential = {true, t, green_requests, run.sequential.passed,
                                                                run.sequential.pass_second};
      if (outcome == watchdog::Outcome::pass && !run.sequential.passed) {
        run.sequential.passed = true;
        run.sequential.pass_second = t;
      }
    }
    seconds.push_back(now);
    sum[0].add(now[0], 1);
    sum[1].add(now[1], 1);
    if (static_cast<int>(seconds.size()) > window) {
      sum[0].add(seconds.front()[0], -1);
      sum[1].add(seconds.front()[1], -1);
      seconds.pop_front();
    }
    if (!run.threshold.rolled_back) {
      const auto v = watchdog::evaluate(sum[1].figures(), sum[0].figures(), policy, "blue");
      if (v.outcome == watchdog::Outcome::fail) run.threshold = {true, t, green_requests, run.threshold.passed,
                                                                 run.threshold.pass_second};
      if (v.outcome == watchdog::Outcome::pass && !run.threshold.passed) {
        run.threshold.passed = true;
        run.threshold.pass_second = t;
      }
    }
  }
  return run;
}

}  // namespace bgproxy::bench
