// SeriesRing (control/core/series_ring) and page_data (control/core/page_data): the web page's
// per-second charts, 15 minutes of them in fixed memory, and the JSON the page polls.
#include <array>
#include <cstdint>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "control/core/page_data.hpp"
#include "control/core/series_ring.hpp"
#include "control/core/service_runtime.hpp"

namespace bgproxy::control {
namespace {

constexpr std::size_t blue = 0;
constexpr std::size_t green = 1;

/// One service's second: blue's figures, nothing on green.
WindowFigures second_of(double rps, double error_rate = 0, double p95 = 0) {
  stats::ColorWindow b;
  b.rps = rps;
  b.error_rate = error_rate;
  b.p95_seconds = p95;
  return {{b, stats::ColorWindow{}}};
}

config::Config config_of(std::initializer_list<const char*> names) {
  config::Config cfg;
  for (const auto* n : names) {
    config::Service s;
    s.name = n;
    cfg.services.push_back(s);
  }
  return cfg;
}

TEST(SeriesRing, KeepsTheSecondsOldestFirst) {
  SeriesRing ring(1);
  EXPECT_EQ(ring.size(), 0U);
  ring.push(1000, second_of(10, 0.5, 0.2));
  ring.push(2000, second_of(20));
  ASSERT_EQ(ring.size(), 2U);
  EXPECT_EQ(ring.time_ms(0), 1000);
  EXPECT_FLOAT_EQ(ring.at(0, blue, 0).rps, 10);
  EXPECT_FLOAT_EQ(ring.at(0, blue, 0).error_rate, 0.5);
  EXPECT_FLOAT_EQ(ring.at(0, blue, 0).p95_seconds, 0.2);
  EXPECT_FLOAT_EQ(ring.at(0, blue, 1).rps, 20);
  EXPECT_FLOAT_EQ(ring.at(0, green, 1).rps, 0);
}

TEST(SeriesRing, HoldsFifteenMinutesAndDropsTheOldest) {
  SeriesRing ring(1);
  for (std::int64_t s = 0; s < 1000; ++s) ring.push(s * 1000, second_of(static_cast<double>(s)));
  ASSERT_EQ(ring.size(), SeriesRing::capacity);
  EXPECT_EQ(ring.time_ms(0), 100'000);  // seconds 100..999 remain
  EXPECT_FLOAT_EQ(ring.at(0, blue, 0).rps, 100);
  EXPECT_EQ(ring.time_ms(SeriesRing::capacity - 1), 999'000);
  EXPECT_FLOAT_EQ(ring.at(0, blue, SeriesRing::capacity - 1).rps, 999);
}

TEST(SeriesRing, AServiceTheFiguresDoNotCoverGetsZeros) {
  SeriesRing ring(2);
  ring.push(1000, second_of(5));
  EXPECT_FLOAT_EQ(ring.at(0, blue, 0).rps, 5);
  EXPECT_FLOAT_EQ(ring.at(1, blue, 0).rps, 0);
}

TEST(SeriesRing, AReloadKeepsEachServicesSecondsByName) {
  const auto before = config_of({"a", "b"});
  const auto after = config_of({"b", "new"});
  SeriesRing ring(2);
  ring.push(1000, {{stats::ColorWindow{.rps = 1}, {}}, {stats::ColorWindow{.rps = 2}, {}}});
  ring.renumber(ServiceRenumbering(before, after));
  ASSERT_EQ(ring.services(), 2U);
  EXPECT_FLOAT_EQ(ring.at(0, blue, 0).rps, 2);  // b
  EXPECT_FLOAT_EQ(ring.at(1, blue, 0).rps, 0);  // new
}

TEST(PageData, WrapsTheAnswersAndTheSeries) {
  const auto cfg = config_of({"app"});
  SeriesRing ring(1);
  ring.push(5000, second_of(12.5, 0.25, 0.0123456));
  ring.push(6000, second_of(3));
  const auto text = page_data(R"({"ok":true,"services":[]})", R"({"ok":true,"history":[]})", ring, cfg);
  const auto v = boost::json::parse(text).as_object();
  EXPECT_TRUE(v.at("ok").as_bool());
  EXPECT_TRUE(v.at("status").as_object().contains("services"));
  EXPECT_TRUE(v.at("history").as_object().contains("history"));
  const auto& series = v.at("series").as_object();
  EXPECT_EQ(series.at("end_ms").to_number<std::int64_t>(), 6000);
  const auto& app = series.at("services").as_array().at(0).as_object();
  EXPECT_EQ(app.at("name").as_string(), "app");
  const auto& b = app.at("blue").as_object();
  EXPECT_EQ(b.at("rps").as_array().size(), 2U);
  EXPECT_DOUBLE_EQ(b.at("rps").as_array().at(0).to_number<double>(), 12.5);
  EXPECT_DOUBLE_EQ(b.at("error_rate").as_array().at(0).to_number<double>(), 0.25);
  EXPECT_DOUBLE_EQ(b.at("p95_seconds").as_array().at(0).to_number<double>(), 0.01235);  // 4 digits
  EXPECT_EQ(app.at("green").as_object().at("rps").as_array().size(), 2U);
}

TEST(PageData, NoSecondsYetIsEmptySeries) {
  const auto cfg = config_of({"app"});
  const SeriesRing ring(1);
  const auto v = boost::json::parse(page_data("{}", "{}", ring, cfg)).as_object();
  EXPECT_EQ(v.at("series").as_object().at("end_ms").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(v.at("series").at("services").as_array().at(0).at("blue").at("rps").as_array().empty());
}

}  // namespace
}  // namespace bgproxy::control
