// The e-processes behind the sequential watchdog: the worked examples re-derived, and
// their validity (rejection rate under the null ≤ alpha) checked by seeded simulation.
#include "bgproxy/watchdog/e_process.hpp"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

namespace bgproxy::watchdog {
namespace {

const double ln100 = std::log(100.0);

TEST(RatioMixture, FourGreenErrorsAgainstNoneAtTenPercentGiveE164) {
  // q(r) = 0.1r / (0.1r + 0.9); E = mean over the grid of (q(r_k) / 0.1)^4
  // = (2.21 + 4.16 + 10.9 + 39.1 + 162.6 + 767.2) / 6 = 164.4: past 1/alpha = 100.
  RatioMixture m(1.0, RatioMixture::Direction::up);
  m.observe(0.1, 4, 0);
  EXPECT_NEAR(std::exp(m.log_e()), 164.4, 0.1);
  EXPECT_GE(m.log_e(), ln100);
}

TEST(RatioMixture, ThreeGreenErrorsAloneStayBelowOneHundredButPassTwenty) {
  RatioMixture m(1.0, RatioMixture::Direction::up);
  m.observe(0.1, 3, 0);
  EXPECT_NEAR(std::exp(m.log_e()), 36.3, 0.1);
  EXPECT_LT(m.log_e(), ln100);
  EXPECT_GE(m.log_e(), std::log(20.0));  // caught at alpha 0.05
}

TEST(RatioMixture, ErrorsSplitLikeTheTrafficAreEvidenceAgainstTheTarget) {
  // 10 % of the traffic and 10 % of the errors: no ratio above 1 fits better than 1.
  RatioMixture m(1.0, RatioMixture::Direction::up);
  m.observe(0.1, 10, 90);
  EXPECT_LT(m.log_e(), 0);
}

TEST(RatioMixture, DownwardFindsATargetWithFewerErrors) {
  // At a 50 % split, 5 errors against 45: far below twice the other's rate.
  RatioMixture m(2.0, RatioMixture::Direction::down);
  m.observe(0.5, 5, 45);
  EXPECT_GE(m.log_e(), ln100);
}

TEST(RatioMixture, SecondsWithoutBothColorsAddNothing) {
  RatioMixture m(1.0, RatioMixture::Direction::up);
  m.observe(1.0, 50, 0);
  m.observe(0.0, 0, 50);
  m.observe(0.3, 0, 0);
  EXPECT_DOUBLE_EQ(m.log_e(), 0);
}

TEST(Sprt, BrokenGreenAtTwoPercentFailsAfterAbout350Requests) {
  // p0 0.5 %, p1 2 %: per error ln 4 = 1.386, per success ln(0.98/0.995) = -0.0152; at 2 % the
  // drift is +0.0128 a request, so ln 100 = 4.61 takes 359 requests.
  Sprt s(0.005, 0.02);
  s.observe(6, 300);
  EXPECT_LT(s.log_lambda(), ln100);
  s.observe(2, 100);
  EXPECT_GE(s.log_lambda(), ln100);
  EXPECT_NEAR(s.log_lambda(), 400 * (0.02 * std::log(4.0) + 0.98 * std::log(0.98 / 0.995)), 1e-9);
}

TEST(Sprt, GoodGreenAtHalfAPercentPassesAfterAbout550Requests) {
  // At 0.5 % the drift is -0.0082 a request: Λ ≤ ln(alpha) after 563.
  Sprt s(0.005, 0.02);
  s.observe(2, 400);
  EXPECT_GT(s.log_lambda(), -ln100);
  s.observe(1, 200);
  EXPECT_LE(s.log_lambda(), -ln100);
}

TEST(Sprt, ClampsEventsToTrials) {
  Sprt a(0.01, 0.02), b(0.01, 0.02);
  a.observe(7, 5);
  b.observe(5, 5);
  EXPECT_DOUBLE_EQ(a.log_lambda(), b.log_lambda());
  a.reset();
  EXPECT_DOUBLE_EQ(a.log_lambda(), 0);
}

// Validity: under the null, the share of runs in which E ever reaches 1/alpha stays below alpha.
// 4,000 runs; with a true rate of 1 % the one-sided 99.9 % bound of the observed rate is
// 1 % + 3.1 · sqrt(0.01 · 0.99 / 4000) = 1.5 %.
TEST(Sprt, NeverRejectsMoreOftenThanAlphaUnderTheNull) {
  std::mt19937_64 rng(18);
  int rejected = 0;
  constexpr int runs = 4000;
  for (int run = 0; run < runs; ++run) {
    Sprt s(0.025, 0.05);
    for (int second = 0; second < 300; ++second) {
      std::binomial_distribution<int> errors(20, 0.025);
      s.observe(static_cast<std::uint64_t>(errors(rng)), 20);
      if (s.log_lambda() >= ln100) {
        ++rejected;
        break;
      }
    }
  }
  EXPECT_LE(rejected, runs * 15 / 1000) << rejected;
}

TEST(RatioMixture, NeverRejectsMoreOftenThanAlphaUnderTheNullWithMovingTraffic) {
  std::mt19937_64 rng(1818);
  int rejected = 0;
  constexpr int runs = 4000;
  for (int run = 0; run < runs; ++run) {
    RatioMixture m(1.0, RatioMixture::Direction::up);
    for (int second = 0; second < 300; ++second) {
      // Traffic rising tenfold and the split moving from 10 % to 50 %, same error rate.
      const int total = 10 + 90 * second / 300;
      const int green = total * (second < 150 ? 1 : 5) / 10;
      std::binomial_distribution<int> ge(green, 0.05), be(total - green, 0.05);
      m.observe(static_cast<double>(green) / total, static_cast<std::uint64_t>(ge(rng)),
                static_cast<std::uint64_t>(be(rng)));
      if (m.log_e() >= ln100) {
        ++rejected;
        break;
      }
    }
  }
  EXPECT_LE(rejected, runs * 15 / 1000) << rejected;
}

}  // namespace
}  // namespace bgproxy::watchdog
