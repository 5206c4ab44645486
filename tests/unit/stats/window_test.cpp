// Window figures of one color (stats/window): requests, 5xx errors, rps, error rate and
// p95 between two cumulative snapshots, and the histogram quantile they rest on (SPEC §6).
#include <array>
#include <cstdint>

#include <gtest/gtest.h>

#include "bgproxy/stats/request_stats.hpp"
#include "bgproxy/stats/window.hpp"

namespace bgproxy::stats {
namespace {

using Buckets = std::array<std::uint64_t, duration_bounds.size() + 1>;
constexpr std::size_t kOverflow = duration_bounds.size();
constexpr double kEps = 1e-12;

// ----------------------------------------------------------------------- histogram_quantile

TEST(HistogramQuantile, EmptyIsZero) {
  const Buckets b{};
  EXPECT_EQ(histogram_quantile(b, 0.95), 0.0);
  EXPECT_EQ(histogram_quantile(b, 0.5), 0.0);
}

TEST(HistogramQuantile, FirstBucketInterpolatesFromZero) {
  Buckets b{};
  b[0] = 100;  // (0, 0.5 ms]
  EXPECT_NEAR(histogram_quantile(b, 0.5), 0.00025, kEps);
  EXPECT_NEAR(histogram_quantile(b, 0.95), 0.000475, kEps);
}

TEST(HistogramQuantile, InterpolatesInsideABucket) {
  Buckets b{};
  b[2] = 100;  // (1 ms, 2.5 ms]
  EXPECT_NEAR(histogram_quantile(b, 0.95), 0.001 + 0.0015 * 0.95, kEps);
  EXPECT_NEAR(histogram_quantile(b, 0.5), 0.00175, kEps);
  b = {};
  b[10] = 40;  // (0.5 s, 1 s]
  EXPECT_NEAR(histogram_quantile(b, 0.25), 0.625, kEps);
}

TEST(HistogramQuantile, SkipsLowerBucketsAndEmptyOnes) {
  Buckets b{};
  b[0] = 50;
  b[3] = 50;  // (2.5 ms, 5 ms]
  // rank 95: 45 of the 50 in bucket 3
  EXPECT_NEAR(histogram_quantile(b, 0.95), 0.0025 + 0.0025 * (45.0 / 50.0), kEps);
  // rank 50 is the top of bucket 0, not somewhere in the empty buckets between
  EXPECT_NEAR(histogram_quantile(b, 0.5), 0.0005, kEps);
  EXPECT_NEAR(histogram_quantile(b, 0.6), 0.0025 + 0.0025 * (10.0 / 50.0), kEps);
}

TEST(HistogramQuantile, SpreadOverSeveralBuckets) {
  Buckets b{};
  b[4] = 80;  // (5 ms, 10 ms]
  b[7] = 15;  // (50 ms, 100 ms]
  b[9] = 5;   // (250 ms, 500 ms]
  // rank 95 is the top of bucket 7
  EXPECT_NEAR(histogram_quantile(b, 0.95), 0.1, 1e-9);
  // rank 99: 4 of the 5 in bucket 9
  EXPECT_NEAR(histogram_quantile(b, 0.99), 0.25 + 0.25 * 0.8, 1e-9);
  // rank 40: half of bucket 4
  EXPECT_NEAR(histogram_quantile(b, 0.4), 0.0075, kEps);
}

TEST(HistogramQuantile, OverflowBucketReportsTheLastBound) {
  Buckets b{};
  b[kOverflow] = 10;
  EXPECT_EQ(histogram_quantile(b, 0.95), 10.0);
  EXPECT_EQ(histogram_quantile(b, 0.01), 10.0);
  b[0] = 90;
  EXPECT_EQ(histogram_quantile(b, 0.95), 10.0);  // rank 95 lies among the 10 slow ones
  EXPECT_NEAR(histogram_quantile(b, 0.5), 0.0005 * (50.0 / 90.0), kEps);
}

TEST(HistogramQuantile, LastFiniteBucket) {
  Buckets b{};
  b[kOverflow - 1] = 4;  // (5 s, 10 s]
  EXPECT_NEAR(histogram_quantile(b, 0.5), 7.5, kEps);
}

TEST(HistogramQuantile, SingleSample) {
  Buckets b{};
  b[5] = 1;  // (10 ms, 25 ms]
  EXPECT_NEAR(histogram_quantile(b, 0.95), 0.01 + 0.015 * 0.95, kEps);
}

// ----------------------------------------------------------------------- window_between

TEST(WindowBetween, CountsRatesAndErrorsOfTheDifference) {
  ColorStats older;
  older.responses = {10, 0, 0, 1};
  older.duration_buckets[0] = 11;
  ColorStats newer;
  newer.responses = {110, 5, 10, 26};  // +100 2xx, +5 3xx, +10 4xx, +25 5xx
  newer.duration_buckets[0] = 11;
  newer.duration_buckets[2] = 140;
  const ColorWindow w = window_between(older, newer, 30.0);
  EXPECT_EQ(w.requests, 140u);
  EXPECT_EQ(w.errors, 25u);  // 4xx are not errors
  EXPECT_NEAR(w.rps, 140.0 / 30.0, kEps);
  EXPECT_NEAR(w.error_rate, 25.0 / 140.0, kEps);
  EXPECT_NEAR(w.p95_seconds, 0.001 + 0.0015 * 0.95, kEps);
}

TEST(WindowBetween, P95IgnoresWhatCameBeforeTheWindow) {
  ColorStats older;
  older.responses = {1000, 0, 0, 0};
  older.duration_buckets[kOverflow] = 1000;  // slow, but before the window
  ColorStats newer = older;
  newer.responses[0] += 100;
  newer.duration_buckets[1] += 100;  // (0.5 ms, 1 ms]
  const ColorWindow w = window_between(older, newer, 10.0);
  EXPECT_EQ(w.requests, 100u);
  EXPECT_EQ(w.errors, 0u);
  EXPECT_EQ(w.error_rate, 0.0);
  EXPECT_NEAR(w.rps, 10.0, kEps);
  EXPECT_NEAR(w.p95_seconds, 0.0005 + 0.0005 * 0.95, kEps);
}

TEST(WindowBetween, NoTrafficIsAllZero) {
  ColorStats s;
  s.responses = {7, 1, 2, 3};
  s.duration_buckets[4] = 13;
  const ColorWindow w = window_between(s, s, 30.0);
  EXPECT_EQ(w.requests, 0u);
  EXPECT_EQ(w.errors, 0u);
  EXPECT_EQ(w.rps, 0.0);
  EXPECT_EQ(w.error_rate, 0.0);
  EXPECT_EQ(w.p95_seconds, 0.0);
}

TEST(WindowBetween, ZeroSecondsMeansNoRate) {
  ColorStats older;
  ColorStats newer;
  newer.record(200, 0.003);
  newer.record(503, 0.003);
  const ColorWindow w = window_between(older, newer, 0.0);
  EXPECT_EQ(w.requests, 2u);
  EXPECT_EQ(w.errors, 1u);
  EXPECT_EQ(w.rps, 0.0);
  EXPECT_NEAR(w.error_rate, 0.5, kEps);
}

TEST(WindowBetween, FromRecordedRequests) {
  ColorStats older;
  ColorStats newer;
  // 19 fast answers at 4 ms (bucket (2.5, 5] ms) and one 503 at 3 s (bucket (2.5 s, 5 s]).
  for (int i = 0; i < 19; ++i) newer.record(200, 0.004);
  newer.record(503, 3.0);
  const ColorWindow w = window_between(older, newer, 4.0);
  EXPECT_EQ(w.requests, 20u);
  EXPECT_EQ(w.errors, 1u);
  EXPECT_NEAR(w.rps, 5.0, kEps);
  EXPECT_NEAR(w.error_rate, 0.05, kEps);
  // rank 19 = the top of the 4 ms bucket
  EXPECT_NEAR(w.p95_seconds, 0.005, 1e-9);
  newer.record(502, 3.0);  // now 21 requests, rank 19.95 lies in the slow bucket
  const ColorWindow w2 = window_between(older, newer, 4.0);
  EXPECT_EQ(w2.errors, 2u);
  EXPECT_NEAR(w2.p95_seconds, 2.5 + 2.5 * (0.95 / 2.0), 1e-9);
}

TEST(WindowBetween, OnlyFiveHundredsAreErrors) {
  ColorStats older;
  ColorStats newer;
  newer.record(101, 0.001);
  newer.record(204, 0.001);
  newer.record(301, 0.001);
  newer.record(404, 0.001);
  newer.record(499, 0.001);
  newer.record(500, 0.001);
  newer.record(504, 0.001);
  newer.record(599, 0.001);
  const ColorWindow w = window_between(older, newer, 1.0);
  EXPECT_EQ(w.requests, 8u);
  EXPECT_EQ(w.errors, 3u);
  EXPECT_NEAR(w.error_rate, 3.0 / 8.0, kEps);
}

}  // namespace
}  // namespace bgproxy::stats
