#include "bgproxy/stats/latency_histogram.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace bgproxy::stats {
namespace {

using H = LatencyHistogram;

TEST(LatencyHistogram, LayoutConstants) {
  EXPECT_EQ(H::sub_buckets, 64u);
  EXPECT_EQ(H::bucket_count, 29u * 64u);
  EXPECT_EQ(H::bucket_low(0), 0u);
  EXPECT_EQ(H::bucket_high(H::bucket_count - 1), std::uint64_t{1} << 34);  // ≈ 4.8 h
}

TEST(LatencyHistogram, EveryBucketHoldsItsBoundsAndTheyAreContiguous) {
  for (unsigned b = 0; b < H::bucket_count; ++b) {
    const std::uint64_t low = H::bucket_low(b);
    const std::uint64_t high = H::bucket_high(b);
    ASSERT_LT(low, high) << "bucket " << b;
    ASSERT_EQ(H::bucket_of(low), b) << "bucket " << b;
    ASSERT_EQ(H::bucket_of(high - 1), b) << "bucket " << b;
    ASSERT_EQ(H::bucket_of(low + (high - low) / 2), b) << "bucket " << b;
    if (b + 1 < H::bucket_count) {
      ASSERT_EQ(H::bucket_low(b + 1), high) << "bucket " << b;  // contiguous, hence monotonic
      ASSERT_EQ(H::bucket_of(high), b + 1) << "bucket " << b;
      ASSERT_GE(H::bucket_high(b + 1) - H::bucket_low(b + 1), high - low) << "bucket " << b;
    }
    // Relative width: 1 µs below 128 µs, then at most 1/64 of the lower bound.
    if (low >= 64) {
      ASSERT_LE((high - low) * 64, low) << "bucket " << b;
    }
  }
}

TEST(LatencyHistogram, BucketOfIsMonotonicAcrossOctaveEdges) {
  // At each power of two from 64 µs on, the next octave starts in the very next bucket.
  for (unsigned shift = 6; shift <= 33; ++shift) {
    const std::uint64_t edge = std::uint64_t{1} << shift;
    ASSERT_EQ(H::bucket_of(edge), H::bucket_of(edge - 1) + 1) << shift;
    ASSERT_EQ(H::bucket_of(edge) % 64, 0u) << shift;
  }
  unsigned previous = 0;
  for (std::uint64_t v = 0; v < 100'000; ++v) {
    const unsigned b = H::bucket_of(v);
    ASSERT_GE(b, previous) << v;
    ASSERT_LE(b, previous + 1) << v;
    previous = b;
  }
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  for (std::uint64_t v = 0; v < 128; ++v) {
    EXPECT_EQ(H::bucket_of(v), v);
    EXPECT_EQ(H::bucket_low(static_cast<unsigned>(v)), v);
    EXPECT_EQ(H::bucket_high(static_cast<unsigned>(v)), v + 1);
  }
  H h;
  h.record(5e-6);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_DOUBLE_EQ(h.quantile(0), 5e-6);
  EXPECT_DOUBLE_EQ(h.quantile(1), 6e-6);
  EXPECT_GE(h.quantile(0.5), 5e-6);
  EXPECT_LT(h.quantile(0.5), 6e-6);
}

TEST(LatencyHistogram, WholeMicrosAndMillisInSecondsLandInTheirBucket) {
  // 0.000249 * 1e6 == 248.99999999999997 in double, which rounds down to 248 µs: still the bucket
  // of 249 µs, as the bucket bounds above 128 µs are even.
  for (std::uint64_t k = 0; k < 5000; ++k) {
    H h;
    h.record(static_cast<double>(k) / 1e6);
    ASSERT_DOUBLE_EQ(h.quantile(0) * 1e6, static_cast<double>(H::bucket_low(H::bucket_of(k)))) << k;
  }
  for (std::uint64_t ms = 0; ms < 5000; ++ms) {
    H h;
    h.record(static_cast<double>(ms) / 1e3);
    ASSERT_DOUBLE_EQ(h.quantile(0) * 1e6, static_cast<double>(H::bucket_low(H::bucket_of(ms * 1000)))) << ms;
  }
}

TEST(LatencyHistogram, KnownBuckets) {
  EXPECT_EQ(H::bucket_of(128), 128u);  // octave 2 starts: step 2 µs
  EXPECT_EQ(H::bucket_of(129), 128u);
  EXPECT_EQ(H::bucket_of(130), 129u);
  EXPECT_EQ(H::bucket_of(255), 191u);
  EXPECT_EQ(H::bucket_of(256), 192u);
  EXPECT_EQ(H::bucket_of(1000), 4u * 64 + (1000 >> 3) - 64);  // msb 9, octave 4, step 8 µs
  EXPECT_EQ(H::bucket_low(H::bucket_of(1000)), 1000u);
  EXPECT_EQ(H::bucket_high(H::bucket_of(1000)), 1008u);
}

TEST(LatencyHistogram, HugeValuesClampToTheLastBucket) {
  const unsigned last = H::bucket_count - 1;
  EXPECT_EQ(H::bucket_of((std::uint64_t{1} << 34) - 1), last);
  EXPECT_EQ(H::bucket_of(std::uint64_t{1} << 34), last);
  EXPECT_EQ(H::bucket_of(std::numeric_limits<std::uint64_t>::max()), last);
  EXPECT_EQ(H::bucket_low(last + 5), H::bucket_low(last));  // out-of-range buckets clamp too

  H h;
  h.record(86400.0 * 365);  // a year
  h.record(1e300);
  h.record(std::numeric_limits<double>::infinity());
  EXPECT_EQ(h.count(), 3u);
  EXPECT_GE(h.quantile(0), static_cast<double>(H::bucket_low(last)) / 1e6);
  EXPECT_LE(h.quantile(1), static_cast<double>(H::bucket_high(last)) / 1e6);
}

TEST(LatencyHistogram, NegativeAndNanCountAsZero) {
  H h;
  h.record(-1.0);
  h.record(-1e-9);
  h.record(-std::numeric_limits<double>::infinity());
  h.record(std::numeric_limits<double>::quiet_NaN());
  h.record(0.0);
  h.record(0.4e-6);  // rounds down to 0 µs
  EXPECT_EQ(h.count(), 6u);
  EXPECT_DOUBLE_EQ(h.quantile(0), 0.0);
  EXPECT_LE(h.quantile(1), 1e-6);
}

TEST(LatencyHistogram, QuantileOfEmptyIsZero) {
  H h;
  EXPECT_EQ(h.count(), 0u);
  for (double q : {0.0, 0.5, 0.95, 1.0}) EXPECT_EQ(h.quantile(q), 0.0);
}

TEST(LatencyHistogram, QuantileInterpolatesInsideTheBucket) {
  H h;
  // 100 samples at 1000 µs: all in bucket [1000, 1008).
  for (int i = 0; i < 100; ++i) h.record(0.001);
  EXPECT_DOUBLE_EQ(h.quantile(0), 1000e-6);
  EXPECT_NEAR(h.quantile(0.5), 1004e-6, 1e-12);
  EXPECT_NEAR(h.quantile(0.95), 1007.6e-6, 1e-12);
  EXPECT_DOUBLE_EQ(h.quantile(1), 1008e-6);
  // Out-of-range q clamps.
  EXPECT_DOUBLE_EQ(h.quantile(-3), h.quantile(0));
  EXPECT_DOUBLE_EQ(h.quantile(7), h.quantile(1));
}

TEST(LatencyHistogram, QuantileWalksTheBuckets) {
  H h;
  for (int i = 0; i < 90; ++i) h.record(10e-6);  // bucket [10, 11)
  for (int i = 0; i < 10; ++i) h.record(50e-6);  // bucket [50, 51)
  EXPECT_NEAR(h.quantile(0.5), (10 + 50.0 / 90) * 1e-6, 1e-15);
  EXPECT_NEAR(h.quantile(0.9), 11e-6, 1e-15);  // the rank ends exactly at the end of bucket 10
  EXPECT_NEAR(h.quantile(0.95), 50.5e-6, 1e-15);
  EXPECT_NEAR(h.quantile(0.99), 50.9e-6, 1e-15);
}

H random_histogram(std::uint64_t seed, int n, std::vector<double>* samples = nullptr) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> d(std::log(0.02), 1.5);
  H h;
  for (int i = 0; i < n; ++i) {
    const double s = d(rng);
    h.record(s);
    if (samples) samples->push_back(s);
  }
  return h;
}

void expect_same(const H& a, const H& b) {
  ASSERT_EQ(a.count(), b.count());
  for (double q = 0; q <= 1.0; q += 0.01) ASSERT_DOUBLE_EQ(a.quantile(q), b.quantile(q)) << q;
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  std::vector<double> all;
  H a = random_histogram(1, 5000, &all);
  const H b = random_histogram(2, 3000, &all);
  H one;
  for (double s : all) one.record(s);
  a.merge(b);
  expect_same(a, one);

  H empty;
  H copy = one;
  copy.merge(empty);
  expect_same(copy, one);
  empty.merge(one);
  expect_same(empty, one);
}

TEST(LatencyHistogram, SubtractUndoesMerge) {
  const H a = random_histogram(3, 4000);
  const H b = random_histogram(4, 6000);
  H sum = a;
  sum.merge(b);
  sum.subtract(a);
  expect_same(sum, b);

  H zero = a;
  zero.subtract(a);
  EXPECT_EQ(zero.count(), 0u);
  EXPECT_EQ(zero.quantile(0.95), 0.0);
}

TEST(LatencyHistogram, SubtractOfCumulativeSnapshotsGivesTheWindow) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> early(0.001, 0.002);
  std::uniform_real_distribution<double> late(0.5, 0.6);
  H cumulative;
  for (int i = 0; i < 1000; ++i) cumulative.record(early(rng));
  const H snapshot = cumulative;
  for (int i = 0; i < 1000; ++i) cumulative.record(late(rng));
  H window = cumulative;
  window.subtract(snapshot);
  EXPECT_EQ(window.count(), 1000u);
  EXPECT_GE(window.quantile(0), 0.5 * (1 - 1.0 / 64));
  EXPECT_LE(window.quantile(1), 0.6 * (1 + 1.0 / 64));
}

// Accuracy: p50/p95/p99 within 2 % of the exact quantile of the samples (nearest rank).
struct Accuracy {
  double p50, p95, p99;  // relative errors
};

Accuracy measure(const std::vector<double>& samples) {
  H h;
  for (double s : samples) h.record(s);
  std::vector<double> sorted = samples;
  const auto exact = [&](double q) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    const auto it = sorted.begin() + static_cast<std::ptrdiff_t>(std::max<std::size_t>(rank, 1) - 1);
    std::nth_element(sorted.begin(), it, sorted.end());
    return *it;
  };
  const auto rel = [&](double q) {
    const double e = exact(q);
    return std::abs(h.quantile(q) - e) / e;
  };
  return {rel(0.5), rel(0.95), rel(0.99)};
}

template <typename Draw>
std::vector<double> draw(std::uint64_t seed, Draw&& one) {
  constexpr std::size_t n = 1'000'000;
  std::mt19937_64 rng(seed);
  std::vector<double> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) v.push_back(one(rng));
  return v;
}

void expect_accurate(const char* name, const std::vector<double>& samples) {
  const Accuracy a = measure(samples);
  SCOPED_TRACE(name);
  EXPECT_LT(a.p50, 0.02);
  EXPECT_LT(a.p95, 0.02);
  EXPECT_LT(a.p99, 0.02);
  ::testing::Test::RecordProperty(std::string(name) + "_rel_err_p50_p95_p99",
                                  std::to_string(a.p50) + " " + std::to_string(a.p95) + " " +
                                      std::to_string(a.p99));
}

TEST(LatencyHistogram, AccuracyUniform) {
  std::uniform_real_distribution<double> d(0.001, 0.100);
  expect_accurate("uniform", draw(11, [&](std::mt19937_64& r) { return d(r); }));
}

TEST(LatencyHistogram, AccuracyLognormal) {
  std::lognormal_distribution<double> d(std::log(0.020), 1.0);
  expect_accurate("lognormal", draw(12, [&](std::mt19937_64& r) { return d(r); }));
}

TEST(LatencyHistogram, AccuracyBimodal) {
  std::bernoulli_distribution slow(0.10);
  std::normal_distribution<double> fast_mode(0.005, 0.001);
  std::normal_distribution<double> slow_mode(0.800, 0.100);
  expect_accurate("bimodal", draw(13, [&](std::mt19937_64& r) {
                    return std::max(0.0, slow(r) ? slow_mode(r) : fast_mode(r));
                  }));
}

TEST(LatencyHistogram, AccuracyExponential) {
  std::exponential_distribution<double> d(1.0 / 0.050);
  expect_accurate("exponential", draw(14, [&](std::mt19937_64& r) { return d(r); }));
}

}  // namespace
}  // namespace bgproxy::stats
