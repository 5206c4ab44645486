// shadow::ServiceShadowStats (SPEC §14): counts per field and per kind of pair, bounded samples,
// the paired latency's signs and histograms, and a merge that adds up in any grouping.
#include <string>

#include <gtest/gtest.h>

#include "bgproxy/shadow/shadow_stats.hpp"
#include "bgproxy/stats/request_stats.hpp"

namespace bgproxy::shadow {
namespace {

PairResult pair_with(std::vector<std::string> compared, std::vector<std::string> differing) {
  PairResult p;
  p.compared = std::move(compared);
  for (auto& f : differing) p.differences.push_back({f, "p-" + f, "s-" + f});
  return p;
}

TEST(ShadowStats, CountsResultsPerShadowColor) {
  ServiceShadowStats s;
  s.count(1, Result::compared);
  s.count(1, Result::compared);
  s.count(1, Result::dropped);
  s.count(0, Result::failed);
  s.count(0, Result::skipped);
  EXPECT_EQ(s.requests[1], (std::array<std::uint64_t, 4>{2, 1, 0, 0}));
  EXPECT_EQ(s.requests[0], (std::array<std::uint64_t, 4>{0, 0, 1, 1}));
}

TEST(ShadowStats, CrossColorAndNoisePairsCountApart) {
  ServiceShadowStats s;
  s.record(pair_with({"status", "$.ts", "$.price"}, {"$.ts", "$.price"}), false, "/a", 0.010, 0.012);
  s.record(pair_with({"status", "$.ts", "$.price"}, {"$.ts"}), false, "/b", 0.010, 0.012);
  s.record(pair_with({"status", "$.ts", "$.price"}, {"$.ts"}), true, "/c", 0.010, 0.012);
  const auto& ts = s.fields.at("$.ts");
  EXPECT_EQ(ts.compared, 2u);
  EXPECT_EQ(ts.differing, 2u);
  EXPECT_EQ(ts.noise_compared, 1u);
  EXPECT_EQ(ts.noise_differing, 1u);
  const auto& price = s.fields.at("$.price");
  EXPECT_EQ(price.compared, 2u);
  EXPECT_EQ(price.differing, 1u);
  EXPECT_EQ(price.noise_compared, 1u);
  EXPECT_EQ(price.noise_differing, 0u);
  EXPECT_EQ(s.fields.at("status").compared, 2u);
  EXPECT_EQ(s.fields.at("status").differing, 0u);
  // Samples and latency come from cross-color pairs only; a sample per field, the newest.
  ASSERT_EQ(s.samples.size(), 2u);
  EXPECT_EQ(s.samples[0].path, "/a");
  EXPECT_EQ(s.samples[0].difference.field, "$.price");
  EXPECT_EQ(s.samples[1].path, "/b");
  EXPECT_EQ(s.samples[1].difference.field, "$.ts");
  EXPECT_EQ(s.samples[1].difference.shadow, "s-$.ts");
  EXPECT_EQ(s.pairs, 2u);
}

TEST(ShadowStats, SamplesKeepTheNewestOfEightFields) {
  ServiceShadowStats s;
  for (int i = 0; i < 20; ++i) {
    const auto f = "$.f" + std::to_string(i);
    s.record(pair_with({f}, {f}), false, "/r" + std::to_string(i), 0.001, 0.001);
  }
  ASSERT_EQ(s.samples.size(), max_samples);
  EXPECT_EQ(s.samples.front().path, "/r12");
  EXPECT_EQ(s.samples.back().path, "/r19");
}

TEST(ShadowStats, AFieldThatDiffersEverywhereKeepsOneSampleAndCrowdsOutNoOther) {
  ServiceShadowStats s;
  s.record(pair_with({"$.version", "$.id"}, {"$.version", "$.id"}), false, "/first", 0.001, 0.001);
  for (int i = 0; i < 20; ++i) s.record(pair_with({"$.id"}, {"$.id"}), false, "/r" + std::to_string(i), 0.001, 0.001);
  ASSERT_EQ(s.samples.size(), 2u);
  EXPECT_EQ(s.samples[0].difference.field, "$.version");
  EXPECT_EQ(s.samples[1].difference.field, "$.id");
  EXPECT_EQ(s.samples[1].path, "/r19");
}

TEST(ShadowStats, SamplePathIsCut) {
  ServiceShadowStats s;
  s.record(pair_with({"body"}, {"body"}), false, "/" + std::string(200, 'p'), 0.001, 0.001);
  EXPECT_EQ(s.samples[0].path, "/" + std::string(79, 'p') + "...");
}

TEST(ShadowStats, PairedLatencySignsAndBuckets) {
  ServiceShadowStats s;
  const PairResult same = pair_with({"status"}, {});
  s.record(same, false, "/", 0.010, 0.013);   // +3 ms
  s.record(same, false, "/", 0.010, 0.0105);  // +0.5 ms
  s.record(same, false, "/", 0.010, 0.008);   // -2 ms
  s.record(same, false, "/", 0.010, 0.010);   // tie
  s.record(same, true, "/", 0.010, 0.500);    // noise pair: no latency
  EXPECT_EQ(s.pairs, 4u);
  EXPECT_EQ(s.shadow_slower, 2u);
  EXPECT_EQ(s.shadow_faster, 1u);
  EXPECT_EQ(s.slower_buckets[latency_bucket(0.003)], 1u);
  EXPECT_EQ(s.slower_buckets[latency_bucket(0.0005)], 1u);
  EXPECT_EQ(s.faster_buckets[latency_bucket(0.002)], 1u);
  std::uint64_t total = 0;
  for (auto n : s.slower_buckets) total += n;
  for (auto n : s.faster_buckets) total += n;
  EXPECT_EQ(total, 3u);
}

TEST(ShadowStats, LatencyBucketsAreLog2OfNanoseconds) {
  EXPECT_EQ(latency_bucket(1e-9), 0u);
  EXPECT_EQ(latency_bucket(0.001), 19u);  // 1e6 ns: 2^19 = 524288 <= 1e6 < 2^20
  EXPECT_EQ(latency_bucket(1.0), 29u);    // 2^29 = 536870912 <= 1e9 < 2^30
  EXPECT_EQ(latency_bucket(1e30), latency_bucket_count - 1);
  EXPECT_DOUBLE_EQ(latency_bucket_floor(19), 524288e-9);
  EXPECT_LE(latency_bucket_floor(latency_bucket(0.0042)), 0.0042);
  EXPECT_GT(latency_bucket_floor(latency_bucket(0.0042) + 1), 0.0042);
}

TEST(ShadowStats, FieldsBeyondTheCapGoToOther) {
  ServiceShadowStats s;
  for (std::size_t i = 0; i < max_fields + 10; ++i) {
    const auto f = "$[" + std::to_string(i) + "]";
    s.record(pair_with({f}, {f}), false, "/", 0.001, 0.001);
  }
  EXPECT_EQ(s.fields.size(), max_fields + 1);
  EXPECT_EQ(s.fields.at(std::string(other_field)).compared, 10u);
  EXPECT_EQ(s.fields.at(std::string(other_field)).differing, 10u);
}

ServiceShadowStats sample_stats(int seed) {
  ServiceShadowStats s;
  s.count(static_cast<std::uint8_t>(seed % 2), Result::compared);
  s.count(1, static_cast<Result>(seed % 4));
  for (int i = 0; i <= seed; ++i) {
    const std::string own = "$.b" + std::to_string(seed) + "_" + std::to_string(i);  // a sample each
    s.record(pair_with({"status", "$.a", own}, {own}), i % 3 == 0,
             "/s" + std::to_string(seed) + "/" + std::to_string(i), 0.010, 0.010 + 0.001 * (i - seed / 2));
  }
  return s;
}

void expect_equal(const ServiceShadowStats& x, const ServiceShadowStats& y) {
  EXPECT_EQ(x.requests, y.requests);
  ASSERT_EQ(x.fields.size(), y.fields.size());
  for (const auto& [name, c] : x.fields) {
    const auto& d = y.fields.at(name);
    EXPECT_EQ(c.compared, d.compared) << name;
    EXPECT_EQ(c.differing, d.differing) << name;
    EXPECT_EQ(c.noise_compared, d.noise_compared) << name;
    EXPECT_EQ(c.noise_differing, d.noise_differing) << name;
  }
  ASSERT_EQ(x.samples.size(), y.samples.size());
  for (std::size_t i = 0; i < x.samples.size(); ++i) EXPECT_EQ(x.samples[i].path, y.samples[i].path);
  EXPECT_EQ(x.pairs, y.pairs);
  EXPECT_EQ(x.shadow_slower, y.shadow_slower);
  EXPECT_EQ(x.shadow_faster, y.shadow_faster);
  EXPECT_EQ(x.slower_buckets, y.slower_buckets);
  EXPECT_EQ(x.faster_buckets, y.faster_buckets);
}

TEST(ShadowStats, MergingWorkersInEitherOrderGivesTheSameFieldNames) {
  // Two workers that each kept max_fields names of their own: merged in either order, the same
  // names with the same counts (a cap applied while merging would depend on the order).
  ServiceShadowStats a;
  ServiceShadowStats b;
  for (std::size_t i = 0; i < max_fields; ++i) {
    const auto fa = "$.a" + std::to_string(i);
    const auto fb = "$.b" + std::to_string(i);
    a.record(pair_with({fa}, {fa}), false, "/", 0.001, 0.001);
    b.record(pair_with({fb}, {}), false, "/", 0.001, 0.001);
  }
  ServiceShadowStats ab;
  ab.merge(a);
  ab.merge(b);
  ServiceShadowStats ba;
  ba.merge(b);
  ba.merge(a);
  EXPECT_EQ(ab.fields.size(), 2 * max_fields);
  EXPECT_EQ(ab.fields.count(std::string(other_field)), 0u);
  expect_equal(ab, ba);
  EXPECT_EQ(ab.fields.at("$.a255").differing, 1u);
  EXPECT_EQ(ab.fields.at("$.b255").compared, 1u);
}

TEST(ShadowStats, MergeAddsEverythingAndKeepsTheOthersSamplesAsNewer) {
  const auto a = sample_stats(3);
  const auto b = sample_stats(6);
  ServiceShadowStats m = a;
  m.merge(b);
  EXPECT_EQ(m.pairs, a.pairs + b.pairs);
  EXPECT_EQ(m.fields.at("$.a").compared, a.fields.at("$.a").compared + b.fields.at("$.a").compared);
  EXPECT_EQ(m.fields.at("$.a").noise_compared, a.fields.at("$.a").noise_compared + b.fields.at("$.a").noise_compared);
  EXPECT_EQ(m.fields.at("$.b3_1").differing, 1u);
  EXPECT_EQ(m.fields.at("$.b6_5").differing, 1u);
  EXPECT_EQ(m.requests[1][0] + m.requests[0][0], 2u);
  ASSERT_EQ(a.samples.size(), 2u);
  ASSERT_EQ(b.samples.size(), 4u);
  ASSERT_EQ(m.samples.size(), 6u);
  EXPECT_EQ(m.samples.front().path, a.samples.front().path);
  EXPECT_EQ(m.samples.back().path, b.samples.back().path);
  const auto c = sample_stats(9);
  ASSERT_EQ(c.samples.size(), 6u);
  m.merge(c);  // 12 samples offered: both of `a` and the oldest two of `b` go
  ASSERT_EQ(m.samples.size(), max_samples);
  EXPECT_EQ(m.samples.front().path, b.samples[2].path);
  EXPECT_EQ(m.samples.back().path, c.samples.back().path);
}

TEST(ShadowStats, MergeIsAssociative) {
  const auto a = sample_stats(2);
  const auto b = sample_stats(5);
  const auto c = sample_stats(9);
  ServiceShadowStats left = a;
  left.merge(b);
  left.merge(c);
  ServiceShadowStats bc = b;
  bc.merge(c);
  ServiceShadowStats right = a;
  right.merge(bc);
  expect_equal(left, right);
  ServiceShadowStats empty;
  empty.merge(a);
  expect_equal(empty, a);
}

TEST(ShadowStats, SinceSubtractsAnEarlierReadingOfTheSameCounters) {
  ServiceShadowStats base;
  base.count(1, Result::compared);
  base.count(1, Result::dropped);
  base.record(pair_with({"status", "$.v"}, {"$.v"}), false, "/old", 0.010, 0.020);
  ServiceShadowStats now = base;
  now.count(1, Result::compared);
  now.count(0, Result::failed);
  now.record(pair_with({"status", "$.v", "$.n"}, {"$.n"}), false, "/new", 0.020, 0.010);
  now.record(pair_with({"status", "$.v"}, {"$.v"}), true, "/noise", 0.010, 0.010);

  const auto d = since(now, base);
  EXPECT_EQ(d.requests[1], (std::array<std::uint64_t, 4>{1, 0, 0, 0}));
  EXPECT_EQ(d.requests[0], (std::array<std::uint64_t, 4>{0, 0, 1, 0}));
  EXPECT_EQ(d.pairs, 1u);
  EXPECT_EQ(d.shadow_slower, 0u);
  EXPECT_EQ(d.shadow_faster, 1u);
  EXPECT_EQ(d.fields.at("$.v").compared, 1u);
  EXPECT_EQ(d.fields.at("$.v").differing, 0u);
  EXPECT_EQ(d.fields.at("$.v").noise_compared, 1u);
  EXPECT_EQ(d.fields.at("$.v").noise_differing, 1u);
  EXPECT_EQ(d.fields.at("$.n").differing, 1u);
  std::uint64_t faster = 0;
  std::uint64_t slower = 0;
  for (std::size_t i = 0; i < latency_bucket_count; ++i) {
    faster += d.faster_buckets[i];
    slower += d.slower_buckets[i];
  }
  EXPECT_EQ(faster, 1u);
  EXPECT_EQ(slower, 0u);
  // Only the sample that was not there before.
  ASSERT_EQ(d.samples.size(), 1u);
  EXPECT_EQ(d.samples[0].path, "/new");
  EXPECT_EQ(d.samples[0].difference.field, "$.n");
}

TEST(ShadowStats, SinceLeavesOutFieldsNotComparedAgainAndReadsAnOlderCollectionAsNothing) {
  ServiceShadowStats base;
  base.record(pair_with({"status"}, {}), false, "/a", 0.001, 0.001);
  base.count(1, Result::compared);
  base.count(1, Result::compared);
  ServiceShadowStats older;  // collected before `base` and delivered after it
  older.count(1, Result::compared);
  const auto d = since(older, base);
  EXPECT_EQ(d.requests[1][0], 0u);
  EXPECT_TRUE(d.fields.empty());
  EXPECT_EQ(d.pairs, 0u);
  EXPECT_TRUE(since(base, base).fields.empty());
  EXPECT_TRUE(since(base, base).samples.empty());
}

}  // namespace
}  // namespace bgproxy::shadow

namespace bgproxy::stats {
namespace {

TEST(ShadowStats, RequestStatsMergeCarriesEachServicesShadowStats) {
  RequestStats a(2, 0);
  RequestStats b(2, 0);
  a.services[1].shadow.count(1, shadow::Result::compared);
  b.services[1].shadow.count(1, shadow::Result::compared);
  b.services[1].shadow.count(0, shadow::Result::dropped);
  a.merge(b);
  EXPECT_EQ(a.services[1].shadow.requests[1][0], 2u);
  EXPECT_EQ(a.services[1].shadow.requests[0][1], 1u);
  EXPECT_EQ(a.services[0].shadow.requests[1][0], 0u);
}

}  // namespace
}  // namespace bgproxy::stats
