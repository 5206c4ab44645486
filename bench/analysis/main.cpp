// bgproxy-bench-analysis [RUNS] [SEED] [BASE_RPS]: issue 18's validation by simulation, both watchdog
// methods on the same simulated traffic, printed as the Markdown tables of bench/RESULTS.md.
// (a) healthy canaries (green = blue): how often each method rolls back anyway, with a one-sided
//     95 % Clopper-Pearson upper bound; (b) broken canaries at a 10 % split: requests and seconds
//     to the rollback; (c) a quiet canary (one request a minute): how often it is passed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "simulate.hpp"

namespace {

using bgproxy::bench::Outcome;
using bgproxy::bench::Run;
using bgproxy::bench::Scenario;

/// P(X ≤ k) for X ~ Binomial(n, p).
double binomial_cdf(int k, int n, double p) {
  double sum = 0;
  for (int i = 0; i <= k; ++i) {
    sum += std::exp(std::lgamma(n + 1) - std::lgamma(i + 1) - std::lgamma(n - i + 1) + i * std::log(p) +
                    (n - i) * std::log1p(-p));
  }
  return sum;
}

/// The one-sided 95 % Clopper-Pearson upper bound of a rate seen k times in n.
double upper_bound(int k, int n) {
  if (k >= n) return 1;
  double lo = 0, hi = 1;
  for (int i = 0; i < 60; ++i) {
    const double mid = (lo + hi) / 2;
    (binomial_cdf(k, n, mid) > 0.05 ? lo : hi) = mid;
  }
  return hi;
}

/// The q-quantile of values where a missing one (never rolled back) counts as infinite.
std::string quantile_text(std::vector<double> v, double q, const char* fmt) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  const double x = v[static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1];
  if (std::isinf(x)) return "never";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

std::string percent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %%", 100 * x);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 2000;
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 18;
  // (a) and (c): the quietest second's mean rate; the busiest is ten times that.
  const double base_rps = argc > 3 ? std::atof(argv[3]) : 2;
  bgproxy::config::Watchdog policy;  // the defaults: window 30 s, min_requests 20, 5 %, 2 s, 0.02, 1.5
  policy.method = bgproxy::config::WatchdogMethod::sequential;
  policy.alpha = 0.01;

  std::printf("Simulated %d runs per row (seed %llu), 30 minutes each, looked at every second; traffic Poisson, "
              "%g to %g requests/s on a day-shaped curve; blue errors 1 %%, durations log-normal (median 50 ms, p95 "
              "114 ms); watchdog defaults (threshold: window 30 s, min_requests 20, max_error_rate 5 %%, "
              "max_error_rate_delta 0.02, max_p95 2 s, max_p95_ratio 1.5; sequential: alpha 0.01).\n\n",
              runs, static_cast<unsigned long long>(seed), base_rps, 10 * base_rps);

  std::printf("**(a) Healthy canaries (green = blue): false rollbacks in 30 minutes**\n\n");
  std::printf("| split | threshold: rolled back | 95 %% bound | threshold: median green requests to it | "
              "sequential: rolled back | 95 %% bound | sequential: median s to pass |\n"
              "|---|---|---|---|---|---|---|\n");
  for (const double split : {0.1, 0.5, 1.0}) {
    Scenario s;
    s.split = split;
    s.base_rps = base_rps;
    int th = 0, sq = 0;
    std::vector<double> pass, false_rollback_requests;
    for (int r = 0; r < runs; ++r) {
      const Run run = bgproxy::bench::simulate(s, policy, seed * 1'000'003 + static_cast<std::uint64_t>(r));
      th += run.threshold.rolled_back;
      false_rollback_requests.push_back(run.threshold.rolled_back
                                            ? static_cast<double>(run.threshold.rollback_requests)
                                            : std::numeric_limits<double>::infinity());
      sq += run.sequential.rolled_back;
      pass.push_back(run.sequential.passed ? run.sequential.pass_second : std::numeric_limits<double>::infinity());
    }
    std::printf("| %.0f %% | %d of %d (%s) | %s | %s | %d of %d (%s) | %s | %s |\n", split * 100, th, runs,
                percent(double(th) / runs).c_str(), percent(upper_bound(th, runs)).c_str(),
                quantile_text(false_rollback_requests, 0.5, "%.0f").c_str(), sq, runs,
                percent(double(sq) / runs).c_str(), percent(upper_bound(sq, runs)).c_str(),
                quantile_text(pass, 0.5, "%.0f").c_str());
    std::fflush(stdout);
  }

  const int broken_runs = std::max(runs / 4, 1);
  std::printf("\n**(b) Broken canaries at a 10 %% split: green requests and seconds to the rollback** (%d runs "
              "each; \"never\": not rolled back within 30 minutes; busy: 20 to 200 requests/s)\n\n",
              broken_runs);
  std::printf("| traffic | green | method | rolled back | requests median | requests p95 | seconds median | "
              "seconds p95 |\n|---|---|---|---|---|---|---|---|\n");
  struct Broken {
    const char* name;
    double error_factor;
    double latency_factor;
  };
  for (const double base_rps : {2.0, 20.0})
  for (const Broken& b : {Broken{"errors 2x blue (2 %)", 2, 1}, Broken{"errors 5x blue (5 %)", 5, 1},
                          Broken{"errors 20x blue (20 %)", 20, 1}, Broken{"p95 +50 %", 1, 1.5},
                          Broken{"p95 +200 %", 1, 3}}) {
    Scenario s;
    s.base_rps = base_rps;
    s.green_error_factor = b.error_factor;
    s.green_latency_factor = b.latency_factor;
    std::vector<Run> all;
    for (int r = 0; r < broken_runs; ++r) {
      all.push_back(bgproxy::bench::simulate(s, policy, seed * 2'000'003 + static_cast<std::uint64_t>(r)));
    }
    for (const bool sequential : {false, true}) {
      std::vector<double> requests, seconds;
      int caught = 0;
      for (const Run& run : all) {
        const Outcome& o = sequential ? run.sequential : run.threshold;
        caught += o.rolled_back;
        requests.push_back(o.rolled_back ? static_cast<double>(o.rollback_requests)
                                         : std::numeric_limits<double>::infinity());
        seconds.push_back(o.rolled_back ? o.rollback_second : std::numeric_limits<double>::infinity());
      }
      std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", base_rps < 10 ? "quiet" : "busy", b.name,
                  sequential ? "sequential" : "threshold",
                  percent(double(caught) / broken_runs).c_str(), quantile_text(requests, 0.5, "%.0f").c_str(),
                  quantile_text(requests, 0.95, "%.0f").c_str(), quantile_text(seconds, 0.5, "%.0f").c_str(),
                  quantile_text(seconds, 0.95, "%.0f").c_str());
    }
    std::fflush(stdout);
  }

  std::printf("\n**(c) A quiet canary: one green request a minute for 30 minutes, blue busy**\n\n");
  std::printf("| method | passed at least once | rolled back |\n|---|---|---|\n");
  Scenario quiet;
  quiet.quiet = true;
  quiet.base_rps = base_rps;
  int passed[2] = {0, 0}, rolled[2] = {0, 0};
  for (int r = 0; r < runs; ++r) {
    const Run run = bgproxy::bench::simulate(quiet, policy, seed * 3'000'017 + static_cast<std::uint64_t>(r));
    passed[0] += run.threshold.passed;
    passed[1] += run.sequential.passed;
    rolled[0] += run.threshold.rolled_back;
    rolled[1] += run.sequential.rolled_back;
  }
  for (const int m : {0, 1}) {
    std::printf("| %s | %d of %d | %d of %d |\n", m ? "sequential" : "threshold", passed[m], runs, rolled[m], runs);
  }
  return 0;
}
