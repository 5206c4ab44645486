#include "bgproxy/shadow/report.hpp"

#include <algorithm>
#include <cmath>

namespace bgproxy::shadow {
namespace {

double rate(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

bool clearly_above_noise(const FieldReport& f) {
  return f.compared >= min_reported_compared && f.mismatch_rate > f.noise_rate * (1 + reported_relative_margin) &&
         f.mismatch_rate > f.noise_rate + reported_absolute_margin;
}

/// The `q` quantile of shadow - primary over all pairs: the faster buckets from the largest
/// difference down (negative values), the ties at 0, then the slower buckets upwards.
double paired_quantile(const ServiceShadowStats& s, double q) {
  if (s.pairs == 0) return 0;
  const double target = q * static_cast<double>(s.pairs);
  double before = 0;
  for (std::size_t k = latency_bucket_count; k-- > 0;) {
    const auto c = static_cast<double>(s.faster_buckets[k]);
    if (c > 0 && before + c >= target) {
      const double lo = latency_bucket_floor(k);
      return -(2 * lo - (target - before) / c * lo);
    }
    before += c;
  }
  const auto ties = static_cast<double>(s.pairs - s.shadow_slower - s.shadow_faster);
  if (ties > 0 && before + ties >= target) return 0;
  before += ties;
  for (std::size_t k = 0; k < latency_bucket_count; ++k) {
    const auto c = static_cast<double>(s.slower_buckets[k]);
    if (c > 0 && before + c >= target) {
      const double lo = latency_bucket_floor(k);
      return lo + (target - before) / c * lo;
    }
    before += c;
  }
  return 0;
}

/// 4120 -> "4,120".
std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

LatencyReport latency_of(const ServiceShadowStats& s, std::string_view color) {
  LatencyReport l;
  l.pairs = s.pairs;
  l.slower = s.shadow_slower;
  l.faster = s.shadow_faster;
  l.median_seconds = paired_quantile(s, 0.5);
  l.p95_seconds = paired_quantile(s, 0.95);
  const std::uint64_t untied = l.slower + l.faster;
  if (untied == 0) {
    l.verdict = "no pairs";
    return l;
  }
  l.p_value = sign_test_p(l.slower, untied);
  l.significant = l.p_value < latency_significance;
  const bool slower = l.slower >= l.faster;
  const auto share = static_cast<int>(std::lround(100 * rate(slower ? l.slower : l.faster, untied)));
  std::string line = std::string(color) + (slower ? " slower in " : " faster in ") + std::to_string(share) +
                     " % of " + grouped(untied) + " pairs";
  l.verdict = l.significant ? line : "no clear difference (" + line + ")";
  return l;
}

}  // namespace

double sign_test_p(std::uint64_t k, std::uint64_t n) noexcept {
  if (n == 0) return 1;
  const std::uint64_t tail = std::min(k, n - k);
  const double nd = static_cast<double>(n);
  if (n > 1000) {
    const double excess = std::abs(static_cast<double>(k) - nd / 2) - 0.5;
    if (excess <= 0) return 1;
    return std::erfc(excess / (std::sqrt(nd) / 2) / std::sqrt(2.0));
  }
  // P(X <= tail) for X ~ Binomial(n, 1/2), by logs: C(n, i) / 2^n underflows nothing this way.
  double p = 0;
  const double log_all = std::lgamma(nd + 1) - nd * std::log(2.0);
  for (std::uint64_t i = 0; i <= tail; ++i) {
    const double id = static_cast<double>(i);
    p += std::exp(log_all - std::lgamma(id + 1) - std::lgamma(nd - id + 1));
  }
  return std::min(1.0, 2 * p);
}

Report report(const ServiceShadowStats& stats, std::string_view shadow_color) {
  Report r;
  r.pairs = stats.pairs;
  for (const auto& [name, c] : stats.fields) {
    FieldReport f;
    f.field = name;
    f.compared = c.compared;
    f.differing = c.differing;
    f.mismatch_rate = rate(c.differing, c.compared);
    f.noise_compared = c.noise_compared;
    f.noise_differing = c.noise_differing;
    f.noise_rate = rate(c.noise_differing, c.noise_compared);
    f.reported = clearly_above_noise(f);
    r.fields.push_back(std::move(f));
  }
  std::stable_sort(r.fields.begin(), r.fields.end(), [](const FieldReport& a, const FieldReport& b) {
    if (a.reported != b.reported) return a.reported;
    return a.mismatch_rate > b.mismatch_rate;
  });
  for (const auto& f : r.fields) {
    if (!f.reported) continue;
    r.reported_fields.push_back(f.field);
    r.mismatch_rate = std::max(r.mismatch_rate, f.mismatch_rate);
  }
  r.latency = latency_of(stats, shadow_color);
  return r;
}

}  // namespace bgproxy::shadow
