// Window figures of one color (stats/window): requests, 5xx errors, rps, error rate and
// p95 between two cumulative snapshots (SPEC §6).
#include <array>
#include <cstdint>

#include <gtest/gtest.h>

#include "bgproxy/stats/request_stats.hpp"
#include "bgproxy/stats/window.hpp"

namespace bgproxy::stats {
namespace {

constexpr double kEps = 1e-12;

/// The log-linear histogram's buckets are at most 1/64 wide.
void expect_p95_near(double actual, double expected) { EXPECT_NEAR(actual, expected, expected * 0.02); }

// ----------------------------------------------------------------------- window_between

TEST(WindowBetween, CountsRatesAndErrorsOfTheDifference) {
  ColorStats older;
  older.responses = {10, 0, 0, 1};
  for (int i = 0; i < 11; ++i) older.latency.record(0.0003);
  ColorStats newer;
  newer.responses = {110, 5, 10, 26};  // +100 2xx, +5 3xx, +10 4xx, +25 5xx
  newer.latency = older.latency;
  for (int i = 0; i < 140; ++i) newer.latency.record(0.002);
  const ColorWindow w = window_between(older, newer, 30.0);
  EXPECT_EQ(w.requests, 140u);
  EXPECT_EQ(w.errors, 25u);  // 4xx are not errors
  EXPECT_NEAR(w.rps, 140.0 / 30.0, kEps);
  EXPECT_NEAR(w.error_rate, 25.0 / 140.0, kEps);
  expect_p95_near(w.p95_seconds, 0.002);
}

TEST(WindowBetween, P95IgnoresWhatCameBeforeTheWindow) {
  ColorStats older;
  older.responses = {1000, 0, 0, 0};
  for (int i = 0; i < 1000; ++i) older.latency.record(20.0);  // slow, but before the window
  ColorStats newer = older;
  newer.responses[0] += 100;
  for (int i = 0; i < 100; ++i) newer.latency.record(0.0007);
  const ColorWindow w = window_between(older, newer, 10.0);
  EXPECT_EQ(w.requests, 100u);
  EXPECT_EQ(w.errors, 0u);
  EXPECT_EQ(w.error_rate, 0.0);
  EXPECT_NEAR(w.rps, 10.0, kEps);
  expect_p95_near(w.p95_seconds, 0.0007);
}

TEST(WindowBetween, NoTrafficIsAllZero) {
  ColorStats s;
  s.responses = {7, 1, 2, 3};
  for (int i = 0; i < 13; ++i) s.latency.record(0.01);
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
  // 19 fast answers at 4 ms and one 503 at 3 s.
  for (int i = 0; i < 19; ++i) newer.record(200, 0.004);
  newer.record(503, 3.0);
  const ColorWindow w = window_between(older, newer, 4.0);
  EXPECT_EQ(w.requests, 20u);
  EXPECT_EQ(w.errors, 1u);
  EXPECT_NEAR(w.rps, 5.0, kEps);
  EXPECT_NEAR(w.error_rate, 0.05, kEps);
  expect_p95_near(w.p95_seconds, 0.004);  // rank 19 is the last of the fast ones
  newer.record(502, 3.0);  // now 21 requests: rank 19.95 lies among the slow ones
  const ColorWindow w2 = window_between(older, newer, 4.0);
  EXPECT_EQ(w2.errors, 2u);
  expect_p95_near(w2.p95_seconds, 3.0);
}

TEST(WindowBetween, StreamingCallsCountAsRequestsButStayOutOfP95) {
  ColorStats older;
  older.record_streaming(200);  // before the window
  ColorStats newer = older;
  for (int i = 0; i < 10; ++i) newer.record(200, 0.004);
  newer.record_streaming(200);
  newer.record_streaming(500);
  const ColorWindow w = window_between(older, newer, 1.0);
  EXPECT_EQ(w.requests, 12u);
  EXPECT_EQ(w.errors, 1u);
  EXPECT_EQ(w.streaming_calls, 2u);
  expect_p95_near(w.p95_seconds, 0.004);
  std::uint64_t in_histogram = 0;
  for (auto n : newer.duration_buckets) in_histogram += n;
  EXPECT_EQ(in_histogram, 10u);
  EXPECT_EQ(newer.latency.count(), 10u);
}

TEST(ColorStatsMerge, AddsStreamingCalls) {
  ColorStats a;
  ColorStats b;
  a.record_streaming(200);
  b.record_streaming(200);
  b.record_streaming(200);
  a.merge(b);
  EXPECT_EQ(a.streaming_calls, 3u);
  EXPECT_EQ(a.responses[0], 3u);
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
