#include "bgproxy/shadow/shadow_stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bgproxy::shadow {
namespace {

/// The counts of `field`, or of other_field once max_fields distinct fields are held.
FieldCounts& counts_of(std::map<std::string, FieldCounts>& fields, const std::string& field) {
  if (auto it = fields.find(field); it != fields.end()) return it->second;
  if (fields.size() < max_fields) return fields[field];
  return fields[std::string(other_field)];
}

std::string cut_path(std::string_view target) {
  if (target.size() <= max_sample_path) return std::string(target);
  std::string out(target.substr(0, max_sample_path));
  out.append("...");
  return out;
}

/// The newest sample of each field, newest last, at most max_samples: a field that differs in
/// every answer (an id) keeps one sample and leaves room for the others.
void keep_sample(std::vector<Sample>& samples, Sample s) {
  std::erase_if(samples, [&](const Sample& x) { return x.difference.field == s.difference.field; });
  if (samples.size() == max_samples) samples.erase(samples.begin());
  samples.push_back(std::move(s));
}

}  // namespace

std::size_t latency_bucket(double seconds) noexcept {
  const double ns = std::floor(seconds * 1e9);
  if (!(ns >= 1)) return 0;
  if (ns >= 0x1p63) return latency_bucket_count - 1;
  return static_cast<std::size_t>(std::bit_width(static_cast<std::uint64_t>(ns))) - 1;
}

double latency_bucket_floor(std::size_t i) noexcept { return std::ldexp(1.0, static_cast<int>(i)) * 1e-9; }

void ServiceShadowStats::record(const PairResult& pair, bool same_color, std::string_view target,
                                double primary_seconds, double shadow_seconds) {
  for (const auto& f : pair.compared) {
    auto& c = counts_of(fields, f);
    ++(same_color ? c.noise_compared : c.compared);
  }
  for (const auto& d : pair.differences) {
    auto& c = counts_of(fields, d.field);
    ++(same_color ? c.noise_differing : c.differing);
  }
  // A same-color pair measures noise only: its differences are not the new color's, and its
  // latency compares a color with itself.
  if (same_color) return;
  for (const auto& d : pair.differences) keep_sample(samples, {cut_path(target), d});
  ++pairs;
  const double diff = shadow_seconds - primary_seconds;
  if (std::floor(std::abs(diff) * 1e9) < 1) return;  // a tie: neither slower nor faster
  if (diff > 0) {
    ++shadow_slower;
    ++slower_buckets[latency_bucket(diff)];
  } else {
    ++shadow_faster;
    ++faster_buckets[latency_bucket(-diff)];
  }
}

void ServiceShadowStats::merge(const ServiceShadowStats& o) {
  for (std::size_t c = 0; c < requests.size(); ++c)
    for (std::size_t r = 0; r < requests[c].size(); ++r) requests[c][r] += o.requests[c][r];
  // Not capped again: which names a worker kept is fixed by its own first max_fields, whereas
  // workers answer a collection in any order, so a cap here would move names in and out of
  // other_field from one collection to the next. Merged, at most max_fields + 1 per worker.
  for (const auto& [name, oc] : o.fields) {
    auto& c = fields[name];
    c.compared += oc.compared;
    c.differing += oc.differing;
    c.noise_compared += oc.noise_compared;
    c.noise_differing += oc.noise_differing;
  }
  for (const auto& s : o.samples) keep_sample(samples, s);
  pairs += o.pairs;
  shadow_slower += o.shadow_slower;
  shadow_faster += o.shadow_faster;
  for (std::size_t i = 0; i < latency_bucket_count; ++i) {
    slower_buckets[i] += o.slower_buckets[i];
    faster_buckets[i] += o.faster_buckets[i];
  }
}

ServiceShadowStats since(const ServiceShadowStats& now, const ServiceShadowStats& base) {
  const auto minus = [](std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : 0; };
  ServiceShadowStats out;
  for (std::size_t c = 0; c < out.requests.size(); ++c)
    for (std::size_t r = 0; r < out.requests[c].size(); ++r) out.requests[c][r] = minus(now.requests[c][r], base.requests[c][r]);
  for (const auto& [name, nc] : now.fields) {
    const auto it = base.fields.find(name);
    const FieldCounts bc = it == base.fields.end() ? FieldCounts{} : it->second;
    const FieldCounts c{minus(nc.compared, bc.compared), minus(nc.differing, bc.differing),
                        minus(nc.noise_compared, bc.noise_compared), minus(nc.noise_differing, bc.noise_differing)};
    if (c.compared != 0 || c.noise_compared != 0) out.fields.emplace(name, c);
  }
  for (const auto& s : now.samples) {
    if (std::find(base.samples.begin(), base.samples.end(), s) == base.samples.end()) out.samples.push_back(s);
  }
  out.pairs = minus(now.pairs, base.pairs);
  out.shadow_slower = minus(now.shadow_slower, base.shadow_slower);
  out.shadow_faster = minus(now.shadow_faster, base.shadow_faster);
  for (std::size_t i = 0; i < latency_bucket_count; ++i) {
    out.slower_buckets[i] = minus(now.slower_buckets[i], base.slower_buckets[i]);
    out.faster_buckets[i] = minus(now.faster_buckets[i], base.faster_buckets[i]);
  }
  return out;
}

}  // namespace bgproxy::shadow
