// shadow::report (SPEC §14): fields reported only clearly above the noise floor (Diffy's rule),
// the service's mismatch rate, and the paired latency's quantiles and sign test.
#include <gtest/gtest.h>

#include "bgproxy/shadow/report.hpp"

namespace bgproxy::shadow {
namespace {

FieldCounts counts(std::uint64_t compared, std::uint64_t differing, std::uint64_t noise_compared,
                   std::uint64_t noise_differing) {
  return {compared, differing, noise_compared, noise_differing};
}

const FieldReport& field(const Report& r, const std::string& name) {
  for (const auto& f : r.fields)
    if (f.field == name) return f;
  throw std::runtime_error("no field " + name);
}

TEST(ShadowReport, TimestampThatAlsoDiffersBetweenBlueAndBlueIsNotReported) {
  ServiceShadowStats s;
  s.pairs = 400;
  s.fields["$.timestamp"] = counts(400, 400, 40, 40);
  s.fields["$.price"] = counts(400, 100, 40, 0);
  s.fields["status"] = counts(400, 0, 40, 0);
  const auto r = report(s, "green");
  EXPECT_FALSE(field(r, "$.timestamp").reported);
  EXPECT_DOUBLE_EQ(field(r, "$.timestamp").noise_rate, 1.0);
  EXPECT_TRUE(field(r, "$.price").reported);
  EXPECT_DOUBLE_EQ(field(r, "$.price").mismatch_rate, 0.25);
  EXPECT_FALSE(field(r, "status").reported);
  EXPECT_EQ(r.reported_fields, (std::vector<std::string>{"$.price"}));
  EXPECT_DOUBLE_EQ(r.mismatch_rate, 0.25);
  EXPECT_EQ(r.fields[0].field, "$.price");  // reported first
  EXPECT_EQ(r.fields[1].field, "$.timestamp");
  EXPECT_EQ(r.fields[2].field, "status");
}

TEST(ShadowReport, RelativeMarginIsTwentyPercentOfTheNoise) {
  ServiceShadowStats s;
  s.fields["$.a"] = counts(1000, 119, 1000, 100);  // 11.9 % vs 10 %: within 20 % of noise
  s.fields["$.b"] = counts(1000, 121, 1000, 100);  // 12.1 %: above
  const auto r = report(s, "green");
  EXPECT_FALSE(field(r, "$.a").reported);
  EXPECT_TRUE(field(r, "$.b").reported);
  EXPECT_DOUBLE_EQ(r.mismatch_rate, 0.121);
}

TEST(ShadowReport, AbsoluteMarginIsThreeHundredthsOfAPercent) {
  ServiceShadowStats s;
  s.fields["$.rare"] = counts(10000, 3, 100, 0);   // 0.03 %: not above 0.03 %
  s.fields["$.rarer"] = counts(10000, 4, 100, 0);  // 0.04 %
  const auto r = report(s, "green");
  EXPECT_FALSE(field(r, "$.rare").reported);
  EXPECT_TRUE(field(r, "$.rarer").reported);
}

TEST(ShadowReport, FieldWithoutNoisePairsNeedsTwentyComparisons) {
  ServiceShadowStats s;
  s.fields["$.a"] = counts(19, 19, 0, 0);
  s.fields["$.b"] = counts(20, 1, 0, 0);
  const auto r = report(s, "green");
  EXPECT_FALSE(field(r, "$.a").reported);
  EXPECT_DOUBLE_EQ(field(r, "$.a").noise_rate, 0.0);
  EXPECT_TRUE(field(r, "$.b").reported);
  EXPECT_DOUBLE_EQ(r.mismatch_rate, 0.05);
}

TEST(ShadowReport, NothingReportedGivesRateZero) {
  ServiceShadowStats s;
  s.fields["status"] = counts(100, 0, 10, 0);
  const auto r = report(s, "green");
  EXPECT_TRUE(r.reported_fields.empty());
  EXPECT_DOUBLE_EQ(r.mismatch_rate, 0.0);
  EXPECT_EQ(r.latency.verdict, "no pairs");
}

TEST(ShadowReport, SignTestExactAndApproximate) {
  EXPECT_DOUBLE_EQ(sign_test_p(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(sign_test_p(5, 10), 1.0);
  EXPECT_NEAR(sign_test_p(10, 10), 2.0 / 1024, 1e-12);
  EXPECT_NEAR(sign_test_p(0, 10), 2.0 / 1024, 1e-12);
  EXPECT_NEAR(sign_test_p(8, 10), 2.0 * 56 / 1024, 1e-12);  // P(X<=2) = (1+10+45)/1024
  // n = 4,120, 68 % slower: z ~ 23, p far below 0.01.
  EXPECT_LT(sign_test_p(2802, 4120), 1e-50);
  // n = 2,000 at 1,060: z = (60 - 0.5) / sqrt(500) = 2.661, p = 0.00779.
  EXPECT_NEAR(sign_test_p(1060, 2000), 0.00779, 0.00005);
  EXPECT_DOUBLE_EQ(sign_test_p(1000, 2000), 1.0);
}

ServiceShadowStats latency_stats(std::uint64_t slower, double slower_by, std::uint64_t faster, double faster_by) {
  ServiceShadowStats s;
  s.pairs = slower + faster;
  s.shadow_slower = slower;
  s.shadow_faster = faster;
  s.slower_buckets[latency_bucket(slower_by)] = slower;
  s.faster_buckets[latency_bucket(faster_by)] = faster;
  return s;
}

TEST(ShadowReport, GreenSlowerInMostPairsIsAClearDifference) {
  const auto r = report(latency_stats(2802, 0.003, 1318, 0.001), "green");
  EXPECT_EQ(r.latency.pairs, 4120u);
  EXPECT_TRUE(r.latency.significant);
  EXPECT_EQ(r.latency.verdict, "green slower in 68 % of 4,120 pairs");
  // The median is among the slower pairs (bucket [2.097, 4.194) ms), the p95 too.
  EXPECT_GE(r.latency.median_seconds, latency_bucket_floor(latency_bucket(0.003)));
  EXPECT_LT(r.latency.median_seconds, 2 * latency_bucket_floor(latency_bucket(0.003)));
  EXPECT_GT(r.latency.p95_seconds, r.latency.median_seconds);
}

TEST(ShadowReport, BalancedPairsAreNoClearDifference) {
  const auto r = report(latency_stats(52, 0.002, 48, 0.002), "green");
  EXPECT_FALSE(r.latency.significant);
  EXPECT_EQ(r.latency.verdict, "no clear difference (green slower in 52 % of 100 pairs)");
}

TEST(ShadowReport, ShadowFasterIsSaidSo) {
  const auto r = report(latency_stats(10, 0.001, 90, 0.004), "blue");
  EXPECT_EQ(r.latency.verdict, "blue faster in 90 % of 100 pairs");
  EXPECT_LT(r.latency.median_seconds, -latency_bucket_floor(latency_bucket(0.004)));
  EXPECT_GT(r.latency.p95_seconds, 0.0);  // the top 10 % are the slower pairs
}

TEST(ShadowReport, QuantilesInterpolateWithinABucket) {
  // 100 pairs all in the bucket [lo, 2 lo): the median is at 1.5 lo, the p95 at 1.95 lo.
  const auto s = latency_stats(100, 0.003, 0, 0.003);
  const double lo = latency_bucket_floor(latency_bucket(0.003));
  const auto r = report(s, "green");
  EXPECT_NEAR(r.latency.median_seconds, 1.5 * lo, 1e-12);
  EXPECT_NEAR(r.latency.p95_seconds, 1.95 * lo, 1e-12);
  // Mostly ties: the median is 0.
  auto t = latency_stats(10, 0.003, 0, 0.003);
  t.pairs = 100;
  EXPECT_DOUBLE_EQ(report(t, "green").latency.median_seconds, 0.0);
}

}  // namespace
}  // namespace bgproxy::shadow
