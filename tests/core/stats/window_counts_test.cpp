// A window's figures in a form that adds up across fleet members (stats/window WindowCounts,
// README "Running a fleet"): the counts between two cumulative snapshots, the figures read from
// them, their sum; and the latency histogram read and filled bucket by bucket, as it travels
// between members.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "bgproxy/stats/latency_histogram.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "bgproxy/stats/window.hpp"

namespace bgproxy::stats {
namespace {

using H = LatencyHistogram;

void expect_same_buckets(const H& a, const H& b) {
  EXPECT_EQ(a.count(), b.count());
  for (unsigned i = 0; i < H::bucket_count; ++i) ASSERT_EQ(a.bucket(i), b.bucket(i)) << "bucket " << i;
}

/// The bucket a duration of `seconds` is recorded in.
unsigned bucket_of_seconds(double seconds) {
  H h;
  h.record(seconds);
  for (unsigned i = 0; i < H::bucket_count; ++i)
    if (h.bucket(i) != 0) return i;
  ADD_FAILURE() << "no bucket for " << seconds;
  return 0;
}

/// Cumulative stats after 10 2xx, 2 3xx, 4 4xx and 1 5xx at 1 ms.
ColorStats older_stats() {
  ColorStats s;
  for (int i = 0; i < 10; ++i) s.record(200, 0.001);
  for (int i = 0; i < 2; ++i) s.record(302, 0.001);
  for (int i = 0; i < 4; ++i) s.record(404, 0.001);
  s.record(503, 0.001);
  return s;
}

/// `older` plus 90 2xx at 3 ms, 5 4xx at 0.2 ms and 6 5xx at 700 ms.
ColorStats newer_stats(const ColorStats& older) {
  ColorStats s = older;
  for (int i = 0; i < 90; ++i) s.record(200, 0.003);
  for (int i = 0; i < 5; ++i) s.record(404, 0.0002);
  for (int i = 0; i < 6; ++i) s.record(500, 0.7);
  return s;
}

// ----------------------------------------------------------------------- counts_between

TEST(CountsBetween, RequestsOfEveryClassAnd5xxErrorsOfTheDifference) {
  const ColorStats older = older_stats();
  const ColorStats newer = newer_stats(older);
  const WindowCounts c = counts_between(older, newer);
  EXPECT_EQ(c.requests, 101u);  // 4xx count as requests
  EXPECT_EQ(c.errors, 6u);      // but not as errors
}

TEST(CountsBetween, LatencyIsTheDifferenceBucketByBucket) {
  const ColorStats older = older_stats();
  const ColorStats newer = newer_stats(older);
  const WindowCounts c = counts_between(older, newer);
  EXPECT_EQ(c.latency.count(), 101u);
  for (unsigned i = 0; i < H::bucket_count; ++i) {
    ASSERT_EQ(c.latency.bucket(i), newer.latency.bucket(i) - older.latency.bucket(i)) << "bucket " << i;
  }
  // The 1 ms requests before the window are not in it.
  EXPECT_EQ(c.latency.bucket(bucket_of_seconds(0.001)), 0u);
  EXPECT_EQ(c.latency.bucket(bucket_of_seconds(0.003)), 90u);
  EXPECT_EQ(c.latency.bucket(bucket_of_seconds(0.0002)), 5u);
  EXPECT_EQ(c.latency.bucket(bucket_of_seconds(0.7)), 6u);
}

TEST(CountsBetween, SameSnapshotIsAnEmptyWindow) {
  const ColorStats s = older_stats();
  const WindowCounts c = counts_between(s, s);
  EXPECT_EQ(c.requests, 0u);
  EXPECT_EQ(c.errors, 0u);
  EXPECT_EQ(c.latency.count(), 0u);
  EXPECT_EQ(c.latency.quantile(0.95), 0.0);
}

// ----------------------------------------------------------------------- figures_of

TEST(FiguresOf, RatesAndP95OfTheCounts) {
  WindowCounts c;
  c.requests = 200;
  c.errors = 10;
  for (int i = 0; i < 190; ++i) c.latency.record(0.002);
  for (int i = 0; i < 10; ++i) c.latency.record(0.5);
  const ColorWindow w = figures_of(c, 40.0);
  EXPECT_EQ(w.requests, 200u);
  EXPECT_EQ(w.errors, 10u);
  EXPECT_DOUBLE_EQ(w.rps, 5.0);
  EXPECT_DOUBLE_EQ(w.error_rate, 0.05);
  EXPECT_EQ(w.p95_seconds, c.latency.quantile(0.95));
  EXPECT_NEAR(w.p95_seconds, 0.002, 0.002 / 32);  // rank 190 is the last fast one
}

TEST(FiguresOf, NoRequestsAndNoLengthGiveZeros) {
  const ColorWindow empty = figures_of(WindowCounts{}, 30.0);
  EXPECT_EQ(empty.requests, 0u);
  EXPECT_EQ(empty.rps, 0.0);
  EXPECT_EQ(empty.error_rate, 0.0);
  EXPECT_EQ(empty.p95_seconds, 0.0);

  WindowCounts c;
  c.requests = 10;
  c.errors = 1;
  c.latency.record(0.01);
  const ColorWindow no_length = figures_of(c, 0.0);
  EXPECT_EQ(no_length.rps, 0.0);
  EXPECT_DOUBLE_EQ(no_length.error_rate, 0.1);
  EXPECT_EQ(figures_of(c, -1.0).rps, 0.0);
}

TEST(FiguresOf, OfCountsBetweenIsWindowBetween) {
  const ColorStats older = older_stats();
  const ColorStats newer = newer_stats(older);
  for (double seconds : {0.0, 1.0, 7.5, 30.0}) {
    const ColorWindow a = figures_of(counts_between(older, newer), seconds);
    const ColorWindow b = window_between(older, newer, seconds);
    EXPECT_EQ(a.requests, b.requests);
    EXPECT_EQ(a.errors, b.errors);
    EXPECT_EQ(a.rps, b.rps);
    EXPECT_EQ(a.error_rate, b.error_rate);
    EXPECT_EQ(a.p95_seconds, b.p95_seconds);
  }
}

// ----------------------------------------------------------------------- WindowCounts::add

TEST(WindowCountsAdd, SumsCountsAndMergesLatency) {
  const ColorStats older = older_stats();
  WindowCounts a = counts_between(older, newer_stats(older));
  WindowCounts b;
  b.requests = 15;
  b.errors = 4;
  b.streaming_calls = 3;
  for (int i = 0; i < 15; ++i) b.latency.record(0.09);
  const WindowCounts a0 = a;
  a.add(b);
  EXPECT_EQ(a.requests, 116u);
  EXPECT_EQ(a.errors, 10u);
  EXPECT_EQ(a.streaming_calls, 3u);
  EXPECT_EQ(a.latency.count(), 116u);
  for (unsigned i = 0; i < H::bucket_count; ++i) {
    ASSERT_EQ(a.latency.bucket(i), a0.latency.bucket(i) + b.latency.bucket(i)) << "bucket " << i;
  }
}

TEST(WindowCountsAdd, P95OfTheSumIsThatOfAllSamples) {
  WindowCounts a;
  WindowCounts b;
  H all;
  a.requests = b.requests = 15;
  for (int i = 0; i < 15; ++i) {
    a.latency.record(0.001 * (i + 1));
    b.latency.record(0.1 * (i + 1));
    all.record(0.001 * (i + 1));
    all.record(0.1 * (i + 1));
  }
  WindowCounts sum;
  sum.add(a);
  sum.add(b);
  const ColorWindow w = figures_of(sum, 30.0);
  EXPECT_EQ(w.requests, 30u);
  EXPECT_DOUBLE_EQ(w.rps, 1.0);
  EXPECT_EQ(w.p95_seconds, all.quantile(0.95));
  expect_same_buckets(sum.latency, all);
}

TEST(WindowCountsAdd, AddingNothingChangesNothing) {
  const ColorStats older = older_stats();
  WindowCounts a = counts_between(older, newer_stats(older));
  const WindowCounts a0 = a;
  a.add(WindowCounts{});
  EXPECT_EQ(a.requests, a0.requests);
  EXPECT_EQ(a.errors, a0.errors);
  expect_same_buckets(a.latency, a0.latency);
}

// ----------------------------------------------------------------------- LatencyHistogram::bucket / add

TEST(LatencyHistogramBuckets, BucketReadsWhatRecordPut) {
  H h;
  h.record(0.0000055);  // 5.5 µs: bucket 5 (exact below 64 µs)
  h.record(0.0000055);
  h.record(0.0010005);  // 1000.5 µs
  EXPECT_EQ(h.bucket(5), 2u);
  EXPECT_EQ(h.bucket(H::bucket_of(1000)), 1u);
  EXPECT_EQ(h.bucket(4), 0u);
  EXPECT_EQ(h.bucket(6), 0u);
  std::uint64_t total = 0;
  for (unsigned i = 0; i < H::bucket_count; ++i) total += h.bucket(i);
  EXPECT_EQ(total, h.count());
}

TEST(LatencyHistogramBuckets, BucketBeyondTheLastReadsZero) {
  H h;
  h.record(1e9);  // the last bucket
  EXPECT_EQ(h.bucket(H::bucket_count - 1), 1u);
  EXPECT_EQ(h.bucket(H::bucket_count), 0u);
  EXPECT_EQ(h.bucket(~0u), 0u);
}

TEST(LatencyHistogramBuckets, AddCountsInABucket) {
  H h;
  h.add(100, 7);
  h.add(100, 3);
  h.add(0, 1);
  EXPECT_EQ(h.bucket(100), 10u);
  EXPECT_EQ(h.bucket(0), 1u);
  EXPECT_EQ(h.count(), 11u);
  h.add(200, 0);
  EXPECT_EQ(h.bucket(200), 0u);
  EXPECT_EQ(h.count(), 11u);
}

TEST(LatencyHistogramBuckets, AddBeyondTheLastLandsInTheLast) {
  H h;
  h.add(H::bucket_count, 2);
  h.add(~0u, 1);
  EXPECT_EQ(h.bucket(H::bucket_count - 1), 3u);
  EXPECT_EQ(h.count(), 3u);
}

TEST(LatencyHistogramBuckets, RebuiltFromItsBucketsItIsTheSame) {
  H h;
  for (int i = 0; i < 1000; ++i) h.record(0.00001 * (i * i % 997 + 1));
  for (int i = 0; i < 20; ++i) h.record(3.0 + i);
  H copy;
  for (unsigned i = 0; i < H::bucket_count; ++i) {
    if (const auto n = h.bucket(i); n != 0) copy.add(i, n);
  }
  expect_same_buckets(copy, h);
  for (double q : {0.0, 0.5, 0.9, 0.95, 0.99, 1.0}) EXPECT_EQ(copy.quantile(q), h.quantile(q)) << q;
}

TEST(LatencyHistogramBuckets, AddedBucketsMergeAndSubtractLikeRecordedOnes) {
  H recorded;
  for (int i = 0; i < 50; ++i) recorded.record(0.0040005);  // 4000.5 µs
  H added;
  added.add(H::bucket_of(4000), 50);
  H sum = recorded;
  sum.merge(added);
  EXPECT_EQ(sum.bucket(H::bucket_of(4000)), 100u);
  EXPECT_EQ(sum.count(), 100u);
  sum.subtract(recorded);
  expect_same_buckets(sum, added);
}

}  // namespace
}  // namespace bgproxy::stats
