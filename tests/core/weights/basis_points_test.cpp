// Basis points: the one percentage rule of the configuration, the control protocol and bgctl;
// the shortest exact percentage text; the canary-step rule.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::weights {
namespace {

// ----------------------------------------------------------------------- parse_percent

TEST(ParsePercent, AcceptsPercentWithUpToTwoDecimals) {
  EXPECT_EQ(parse_percent("0"), 0u);
  EXPECT_EQ(parse_percent("10"), 1000u);
  EXPECT_EQ(parse_percent("10.5"), 1050u);
  EXPECT_EQ(parse_percent("10.25"), 1025u);
  EXPECT_EQ(parse_percent("12.5"), 1250u);
  EXPECT_EQ(parse_percent("33.33"), 3333u);
  EXPECT_EQ(parse_percent("0.29"), 29u);
  EXPECT_EQ(parse_percent("0.01"), 1u);
  EXPECT_EQ(parse_percent("99.99"), 9999u);
  EXPECT_EQ(parse_percent("100"), 10000u);
  EXPECT_EQ(parse_percent("100.00"), 10000u);
  EXPECT_EQ(parse_percent("050"), 5000u);
}

TEST(ParsePercent, TheValueCountsNotTheSpelling) {
  // As a YAML or JSON number would read: trailing zeros after the second decimal, leading
  // zeros and a minus sign on zero do not change the value. One rule for config, protocol, bgctl.
  EXPECT_EQ(parse_percent("10.250"), 1025u);
  EXPECT_EQ(parse_percent("10.500"), 1050u);
  EXPECT_EQ(parse_percent("100.000"), 10000u);
  EXPECT_EQ(parse_percent("0050"), 5000u);
  EXPECT_EQ(parse_percent("007"), 700u);
  EXPECT_EQ(parse_percent("-0"), 0u);
  EXPECT_EQ(parse_percent("-0.0"), 0u);
  EXPECT_EQ(parse_percent("-00.00"), 0u);
}

TEST(ParsePercent, RefusesEverythingElse) {
  for (std::string_view bad : {"", "abc", "150", "100.01", "101", "-1", "-0.01", "10.555", "0.001", "10.2500001",
                               "1e2", "1e400", "NaN", "nan", "inf", "-inf", "Infinity", "+5", ".5", "5.", "5..5",
                               "5.5.5", " 5", "5 ", "5%", "0x10", "true", "null", "1,5", "99999999999999999999",
                               "\"50\"", "-", ".", "1.", "1000", "--0", "-+0", "-.5"}) {
    EXPECT_FALSE(parse_percent(bad).has_value()) << bad;
  }
}

TEST(ParsePercent, SaysWhy) {
  const auto why = [](std::string_view text) {
    PercentProblem p = PercentProblem::none;
    parse_percent(text, &p);
    return p;
  };
  EXPECT_EQ(why("12.5"), PercentProblem::none);
  EXPECT_EQ(why("-0"), PercentProblem::none);
  for (std::string_view text : {"", "abc", "1e2", "+5", ".5", "5.", "5%", " 5", "-", "1,5", "\"50\""})
    EXPECT_EQ(why(text), PercentProblem::not_number) << text;
  for (std::string_view text : {"150", "101", "100.01", "-1", "-0.01", "1000", "99999999999999999999"})
    EXPECT_EQ(why(text), PercentProblem::out_of_range) << text;
  for (std::string_view text : {"10.555", "0.001", "10.2500001", "33.333"})
    EXPECT_EQ(why(text), PercentProblem::too_precise) << text;
}

TEST(ParsePercent, EveryTwoDecimalValueIsExact) {
  // Binary floating point must never leak in: k/100 for every k in [0, 10000].
  for (std::uint32_t k = 0; k <= full_bp; ++k) {
    const std::string text = std::to_string(k / 100) + "." + (k % 100 < 10 ? "0" : "") + std::to_string(k % 100);
    ASSERT_EQ(parse_percent(text), k) << text;
  }
}

TEST(ParsePercent, AnyLengthIsSafe) {
  EXPECT_EQ(parse_percent(std::string(5000, '0') + "12.5" + std::string(5000, '0')), 1250u);
  EXPECT_FALSE(parse_percent("1" + std::string(5000, '0')).has_value());
}

// ----------------------------------------------------------------------- format_percent

TEST(FormatPercent, ShortestExactText) {
  EXPECT_EQ(format_percent(0), "0");
  EXPECT_EQ(format_percent(5), "0.05");
  EXPECT_EQ(format_percent(10), "0.1");
  EXPECT_EQ(format_percent(1000), "10");
  EXPECT_EQ(format_percent(1250), "12.5");
  EXPECT_EQ(format_percent(3333), "33.33");
  EXPECT_EQ(format_percent(5001), "50.01");
  EXPECT_EQ(format_percent(10000), "100");
}

TEST(FormatPercent, ReadsBackToTheSameValue) {
  for (std::uint32_t k = 0; k <= full_bp; ++k) ASSERT_EQ(parse_percent(format_percent(k)), k) << k;
}

TEST(ToPercent, IsTheValueInPercent) {
  EXPECT_EQ(to_percent(0), 0.0);
  EXPECT_EQ(to_percent(1250), 12.5);
  EXPECT_EQ(to_percent(3333), 33.33);
  EXPECT_EQ(to_percent(full_bp), 100.0);
}

// ----------------------------------------------------------------------- canary steps

std::optional<StepsError> check(std::vector<std::uint32_t> steps) { return check_steps(steps); }

TEST(CheckSteps, AcceptsRisingStepsEndingAtFull) {
  EXPECT_FALSE(check({10000}));
  EXPECT_FALSE(check({1000, 5000, 10000}));
  EXPECT_FALSE(check({1, 2, 10000}));
  EXPECT_FALSE(check({9999, 10000}));
}

TEST(CheckSteps, NamesTheFirstProblemAndItsStep) {
  const auto is = [](std::optional<StepsError> e, StepProblem p, std::size_t i) {
    return e.has_value() && e->problem == p && e->index == i;
  };
  EXPECT_TRUE(is(check({}), StepProblem::empty, 0));
  EXPECT_TRUE(is(check({0, 10000}), StepProblem::zero, 0));
  EXPECT_TRUE(is(check({1000, 0, 10000}), StepProblem::zero, 1));
  EXPECT_TRUE(is(check({5000, 1000, 10000}), StepProblem::not_rising, 1));
  EXPECT_TRUE(is(check({1000, 1000, 10000}), StepProblem::not_rising, 1));
  EXPECT_TRUE(is(check({1000, 5000}), StepProblem::not_ending_at_full, 1));
  EXPECT_TRUE(is(check({10000, 10000}), StepProblem::not_rising, 1));
  // A step's own problem comes before the end rule, the earlier step before the later one.
  EXPECT_TRUE(is(check({5000, 1000, 0}), StepProblem::not_rising, 1));
  EXPECT_TRUE(is(check({5000, 0}), StepProblem::zero, 1));
  // Above 100 % cannot be parsed, and still never passes.
  EXPECT_TRUE(is(check({12000}), StepProblem::not_ending_at_full, 0));
  EXPECT_TRUE(is(check({12000, 10000}), StepProblem::not_rising, 1));
}

TEST(NextStepProblem, IsTheRuleForOneStep) {
  EXPECT_EQ(next_step_problem(0, 1000), std::nullopt);
  EXPECT_EQ(next_step_problem(1000, 1001), std::nullopt);
  EXPECT_EQ(next_step_problem(0, 0), StepProblem::zero);
  EXPECT_EQ(next_step_problem(5000, 0), StepProblem::zero);
  EXPECT_EQ(next_step_problem(5000, 5000), StepProblem::not_rising);
  EXPECT_EQ(next_step_problem(5000, 1000), StepProblem::not_rising);
}

}  // namespace
}  // namespace bgproxy::weights
