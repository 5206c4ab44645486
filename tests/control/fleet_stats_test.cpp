// What fleet members tell each other about traffic (control/core/fleet_stats, README "Running a
// fleet", SPEC §12): one service's window as the JSON value of PREFIX/stats/SERVICE/INSTANCE,
// read back, refused when unusable, and summed over members (counts add, histograms add bucket
// by bucket, p95 read from the summed buckets). Also StatsHistory's windows as counts, which
// must say what its figures say.
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "bgproxy/stats/latency_histogram.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "bgproxy/stats/window.hpp"
#include "control/core/fleet_stats.hpp"
#include "control/core/stats_history.hpp"

namespace bgproxy::control {
namespace {

namespace json = boost::json;
using stats::LatencyHistogram;

constexpr std::size_t blue = 0;
constexpr std::size_t green = 1;

/// `n` requests of `seconds` each, `errors` of them 5xx.
stats::WindowCounts counts(std::uint64_t n, std::uint64_t errors, double seconds) {
  stats::WindowCounts c;
  c.requests = n;
  c.errors = errors;
  for (std::uint64_t i = 0; i < n; ++i) c.latency.record(seconds);
  return c;
}

/// A blue window with a spread of latencies, a green one with a few slow ones.
ServiceWindow sample_window() {
  ServiceWindow w;
  w.seconds = 30.0;
  w.colors[blue].requests = 200;
  w.colors[blue].errors = 3;
  w.colors[blue].streaming_calls = 12;
  for (int i = 0; i < 200; ++i) w.colors[blue].latency.record(0.0001 * (i + 1));  // 0.1 ms .. 20 ms
  w.colors[green] = counts(40, 7, 0.004);
  for (int i = 0; i < 5; ++i) w.colors[green].latency.record(2.5);
  w.colors[green].requests += 5;
  return w;
}

void expect_same_buckets(const LatencyHistogram& a, const LatencyHistogram& b) {
  EXPECT_EQ(a.count(), b.count());
  for (unsigned i = 0; i < LatencyHistogram::bucket_count; ++i) ASSERT_EQ(a.bucket(i), b.bucket(i)) << "bucket " << i;
}

ServiceWindow parsed(const std::string& text) {
  auto r = parse_stats_document(text);
  EXPECT_TRUE(r.has_value()) << (r.has_value() ? "" : r.error()) << "\n" << text;
  return r.has_value() ? *r : ServiceWindow{};
}

std::string error_of(const std::string& text) {
  auto r = parse_stats_document(text);
  EXPECT_FALSE(r.has_value()) << text;
  return r.has_value() ? std::string("<accepted>") : r.error();
}

// ----------------------------------------------------------------------- the document

TEST(FleetStatsDocument, RoundTripKeepsCountsAndEveryBucket) {
  const ServiceWindow w = sample_window();
  const ServiceWindow back = parsed(to_stats_document(w));
  EXPECT_EQ(back.seconds, 30.0);
  for (std::size_t c : {blue, green}) {
    EXPECT_EQ(back.colors[c].requests, w.colors[c].requests) << c;
    EXPECT_EQ(back.colors[c].errors, w.colors[c].errors) << c;
    EXPECT_EQ(back.colors[c].streaming_calls, w.colors[c].streaming_calls) << c;
    expect_same_buckets(back.colors[c].latency, w.colors[c].latency);
    EXPECT_EQ(back.colors[c].latency.quantile(0.95), w.colors[c].latency.quantile(0.95)) << c;
    EXPECT_EQ(back.colors[c].latency.quantile(0.5), w.colors[c].latency.quantile(0.5)) << c;
  }
  EXPECT_GT(back.colors[green].latency.quantile(0.95), 2.0);  // the slow ones are the top 10 %
}

TEST(FleetStatsDocument, FiguresOfTheParsedWindowAreTheOriginals) {
  const ServiceWindow w = sample_window();
  const auto before = figures_of(std::vector<ServiceWindow>{w});
  const auto after = figures_of(std::vector<ServiceWindow>{parsed(to_stats_document(w))});
  ASSERT_EQ(after.size(), 1u);
  for (std::size_t c : {blue, green}) {
    EXPECT_EQ(after[0][c].requests, before[0][c].requests);
    EXPECT_EQ(after[0][c].errors, before[0][c].errors);
    EXPECT_EQ(after[0][c].rps, before[0][c].rps);
    EXPECT_EQ(after[0][c].error_rate, before[0][c].error_rate);
    EXPECT_EQ(after[0][c].p95_seconds, before[0][c].p95_seconds);
    EXPECT_EQ(after[0][c].streaming_calls, before[0][c].streaming_calls);
  }
}

TEST(FleetStatsDocument, HistogramTravelsAsItsNonEmptyBuckets) {
  ServiceWindow w;
  w.seconds = 1.5;
  w.colors[blue] = counts(3, 1, 0.000010);  // bucket 10, exact below 64 µs
  w.colors[blue].latency.record(0.000020);  // bucket 20
  w.colors[blue].requests += 1;
  const std::string text = to_stats_document(w);
  const auto v = json::parse(text);
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("window_seconds").to_number<double>(), 1.5);
  const auto& b = o.at("colors").at("blue").as_object();
  EXPECT_EQ(b.at("requests").to_number<std::uint64_t>(), 4u);
  EXPECT_EQ(b.at("errors").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(json::serialize(b.at("latency")), "[[10,3],[20,1]]");
  const auto& g = o.at("colors").at("green").as_object();
  EXPECT_EQ(g.at("requests").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(json::serialize(g.at("latency")), "[]");
}

TEST(FleetStatsDocument, EmptyWindowRoundTrips) {
  const ServiceWindow back = parsed(to_stats_document(ServiceWindow{}));
  EXPECT_EQ(back.seconds, 0.0);
  for (std::size_t c : {blue, green}) {
    EXPECT_EQ(back.colors[c].requests, 0u);
    EXPECT_EQ(back.colors[c].errors, 0u);
    EXPECT_EQ(back.colors[c].latency.count(), 0u);
    EXPECT_EQ(back.colors[c].latency.quantile(0.95), 0.0);
  }
}

TEST(FleetStatsDocument, TheLastBucketRoundTrips) {
  ServiceWindow w;
  w.seconds = 30;
  w.colors[green] = counts(2, 0, 1e9);  // beyond the histogram's range: the last bucket
  ASSERT_EQ(w.colors[green].latency.bucket(LatencyHistogram::bucket_count - 1), 2u);
  const ServiceWindow back = parsed(to_stats_document(w));
  expect_same_buckets(back.colors[green].latency, w.colors[green].latency);
}

TEST(FleetStatsDocument, IntegralWindowSecondsAndKeyOrderAreFine) {
  const ServiceWindow w = parsed(
      R"({"colors":{"green":{"latency":[[100,2]],"errors":0,"requests":2},)"
      R"("blue":{"requests":5,"errors":5,"latency":[[0,5]]}},"window_seconds":30})");
  EXPECT_EQ(w.seconds, 30.0);
  EXPECT_EQ(w.colors[blue].requests, 5u);
  EXPECT_EQ(w.colors[blue].errors, 5u);
  EXPECT_EQ(w.colors[blue].latency.bucket(0), 5u);
  EXPECT_EQ(w.colors[green].latency.bucket(100), 2u);
  EXPECT_EQ(w.colors[green].latency.count(), 2u);
  EXPECT_EQ(w.colors[blue].streaming_calls, 0u);  // absent: a member from before it was sent
}

// ----------------------------------------------------------------------- refusals

constexpr const char* empty_color = R"({"requests":0,"errors":0,"latency":[]})";

/// A document whose blue color is `blue_json` (green empty).
std::string with_blue(const std::string& blue_json) {
  return R"({"window_seconds":30.0,"colors":{"blue":)" + blue_json + R"(,"green":)" + empty_color + "}}";
}

TEST(FleetStatsParse, MissingColorsAreRefused) {
  EXPECT_EQ(error_of(R"({"window_seconds":30.0,"colors":{"blue":)" + std::string(empty_color) + "}}"),
            "colors.green: missing");
  EXPECT_EQ(error_of(R"({"window_seconds":30.0,"colors":{"green":)" + std::string(empty_color) + "}}"),
            "colors.blue: missing");
  EXPECT_EQ(error_of(R"({"window_seconds":30.0,"colors":{}})"), "colors.blue: missing");
  EXPECT_EQ(error_of(R"({"window_seconds":30.0})"), "colors: must be an object");
  EXPECT_EQ(error_of(R"({"window_seconds":30.0,"colors":[]})"), "colors: must be an object");
  EXPECT_EQ(error_of(R"({"window_seconds":30.0,"colors":{"blue":7,"green":7}})"), "colors.blue: must be an object");
}

TEST(FleetStatsParse, BadBucketIndexIsRefused) {
  const std::string pairs = "colors.blue.latency: must hold [bucket, count] pairs";
  const std::string last = std::to_string(LatencyHistogram::bucket_count - 1);
  const std::string beyond = std::to_string(LatencyHistogram::bucket_count);
  EXPECT_TRUE(parse_stats_document(with_blue(R"({"requests":1,"errors":0,"latency":[[)" + last + ",1]]}")).has_value());
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[[)" + beyond + ",1]]}")), pairs);
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[[-1,1]]})")), pairs);
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[[1.5,1]]})")), pairs);
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[["3",1]]})")), pairs);
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[[18446744073709551615,1]]})")), pairs);
}

TEST(FleetStatsParse, MalformedPairsAreRefused) {
  const std::string pairs = "colors.blue.latency: must hold [bucket, count] pairs";
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[[3]]})")), pairs);
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[[3,1,1]]})")), pairs);
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[3,1]})")), pairs);
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[{"3":1}]})")), pairs);
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0})")), "colors.blue.latency: must be an array");
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":{}})")), "colors.blue.latency: must be an array");
}

TEST(FleetStatsParse, NegativeCountsAreRefused) {
  EXPECT_EQ(error_of(with_blue(R"({"requests":-1,"errors":0,"latency":[]})")), "colors.blue.requests: must be a count");
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":-1,"latency":[]})")), "colors.blue.errors: must be a count");
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"streaming_calls":-1,"latency":[]})")),
            "colors.blue.streaming_calls: must be a count");
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":0,"latency":[[3,-1]]})")),
            "colors.blue.latency: must hold [bucket, count] pairs");
}

TEST(FleetStatsParse, CountsMustBeWholeNumbers) {
  EXPECT_EQ(error_of(with_blue(R"({"requests":1.5,"errors":0,"latency":[]})")), "colors.blue.requests: must be a count");
  EXPECT_EQ(error_of(with_blue(R"({"requests":"1","errors":0,"latency":[]})")), "colors.blue.requests: must be a count");
  EXPECT_EQ(error_of(with_blue(R"({"errors":0,"latency":[]})")), "colors.blue.requests: must be a count");
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"latency":[]})")), "colors.blue.errors: must be a count");
  EXPECT_EQ(error_of(with_blue(R"({"requests":1,"errors":null,"latency":[]})")), "colors.blue.errors: must be a count");
}

TEST(FleetStatsParse, GreenErrorsNameGreen) {
  const std::string text = R"({"window_seconds":30.0,"colors":{"blue":)" + std::string(empty_color) +
                           R"(,"green":{"requests":1,"errors":-2,"latency":[]}}})";
  EXPECT_EQ(error_of(text), "colors.green.errors: must be a count");
}

TEST(FleetStatsParse, NotAWindowAtAll) {
  EXPECT_NE(error_of("").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"window_seconds\":").find("invalid JSON"), std::string::npos);
  EXPECT_EQ(error_of("[]"), "must be a JSON object");
  EXPECT_EQ(error_of("42"), "must be a JSON object");
  EXPECT_EQ(error_of(R"({"colors":{}})"), "window_seconds: must be a number");
  EXPECT_EQ(error_of(R"({"window_seconds":"30s","colors":{}})"), "window_seconds: must be a number");
}

// ----------------------------------------------------------------------- add_window

TEST(FleetStatsSum, RequestsErrorsAndBucketsAdd) {
  ServiceWindow a;
  a.seconds = 30;
  a.colors[blue] = counts(100, 2, 0.003);
  a.colors[green] = counts(10, 1, 0.2);
  ServiceWindow b;
  b.seconds = 31;
  b.colors[blue] = counts(50, 5, 0.050);
  b.colors[green] = counts(20, 0, 0.2);
  ServiceWindow sum = a;
  add_window(sum, b);
  EXPECT_EQ(sum.seconds, 30.0);  // the sum's own length
  EXPECT_EQ(sum.colors[blue].requests, 150u);
  EXPECT_EQ(sum.colors[blue].errors, 7u);
  EXPECT_EQ(sum.colors[green].requests, 30u);
  EXPECT_EQ(sum.colors[green].errors, 1u);
  for (std::size_t c : {blue, green}) {
    for (unsigned i = 0; i < LatencyHistogram::bucket_count; ++i) {
      ASSERT_EQ(sum.colors[c].latency.bucket(i), a.colors[c].latency.bucket(i) + b.colors[c].latency.bucket(i))
          << "color " << c << " bucket " << i;
    }
  }
  EXPECT_EQ(sum.colors[green].latency.count(), 30u);
}

TEST(FleetStatsSum, TwoMembersOf15RequestsMake30AndP95IsReadFromTheSummedBuckets) {
  // Each member alone is below a watchdog's min_requests of 20; together they are not.
  ServiceWindow a;
  a.seconds = 30;
  a.colors[green] = counts(15, 0, 0.001);  // fast
  ServiceWindow b;
  b.seconds = 30;
  b.colors[green] = counts(13, 0, 0.001);
  for (int i = 0; i < 2; ++i) b.colors[green].latency.record(0.9);  // the slow ones, answered 5xx
  b.colors[green].requests = 15;
  b.colors[green].errors = 2;

  // Through the documents, as members read each other.
  ServiceWindow sum = parsed(to_stats_document(a));
  add_window(sum, parsed(to_stats_document(b)));
  const auto f = figures_of(std::vector<ServiceWindow>{sum});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0][green].requests, 30u);
  EXPECT_EQ(f[0][green].errors, 2u);
  EXPECT_DOUBLE_EQ(f[0][green].error_rate, 2.0 / 30.0);
  EXPECT_DOUBLE_EQ(f[0][green].rps, 1.0);
  EXPECT_EQ(f[0][blue].requests, 0u);
  EXPECT_EQ(f[0][blue].p95_seconds, 0.0);

  // p95 of the 30 samples, as one histogram that saw them all would say it: rank 28.5 of 30
  // lies among the 2 slow ones (the summed p95 is not the mean or max of the members' p95).
  LatencyHistogram all;
  for (int i = 0; i < 28; ++i) all.record(0.001);
  for (int i = 0; i < 2; ++i) all.record(0.9);
  EXPECT_EQ(f[0][green].p95_seconds, all.quantile(0.95));
  EXPECT_NEAR(f[0][green].p95_seconds, 0.9, 0.9 / 64);
  EXPECT_NE(f[0][green].p95_seconds, a.colors[green].latency.quantile(0.95));
}

TEST(FleetStatsSum, AddingAnEmptyWindowChangesNothing) {
  ServiceWindow sum = sample_window();
  add_window(sum, ServiceWindow{});
  const ServiceWindow w = sample_window();
  for (std::size_t c : {blue, green}) {
    EXPECT_EQ(sum.colors[c].requests, w.colors[c].requests);
    EXPECT_EQ(sum.colors[c].errors, w.colors[c].errors);
    expect_same_buckets(sum.colors[c].latency, w.colors[c].latency);
  }
}

// ----------------------------------------------------------------------- StatsHistory windows

using namespace std::chrono_literals;
using Clock = StatsHistory::Clock;

config::Config config_of(std::vector<std::chrono::milliseconds> windows) {
  config::Config cfg;
  for (std::size_t i = 0; i < windows.size(); ++i) {
    config::Service s;
    s.name = "svc" + std::to_string(i);
    s.watchdog.window = windows[i];
    cfg.services.push_back(std::move(s));
  }
  return cfg;
}

/// Cumulative stats of `services` services after `tick` seconds of traffic: per second, per
/// service and color, some 200s and 503s with latencies that grow with the tick.
stats::RequestStats traffic_until(int tick, std::size_t services) {
  stats::RequestStats s(services, 0);
  for (int t = 1; t <= tick; ++t) {
    for (std::size_t si = 0; si < services; ++si) {
      for (std::size_t c = 0; c < 2; ++c) {
        const int n = 3 + t % 4 + static_cast<int>(si + c);
        for (int i = 0; i < n; ++i) s.services[si].colors[c].record(i == 0 && t % 3 == 0 ? 503 : 200, 0.001 * (t + i));
        if (t % 5 == 0) s.services[si].colors[c].record(404, 0.0002);
      }
    }
  }
  return s;
}

TEST(StatsHistoryWindows, WindowsSayWhatTheFiguresSay) {
  const auto cfg = config_of({5s, 30s, 1s});
  StatsHistory h;
  const Clock::time_point t0 = Clock::time_point{} + 1000s;
  for (int t = 0; t <= 40; ++t) {
    h.push(t0 + std::chrono::seconds(t), traffic_until(t, 3), cfg);
    const auto windows = h.windows(cfg);
    const auto figures = h.window_figures(cfg);
    ASSERT_EQ(windows.size(), 3u);
    ASSERT_EQ(figures.size(), 3u);
    const auto again = figures_of(windows);
    for (std::size_t si = 0; si < 3; ++si) {
      for (std::size_t c : {blue, green}) {
        const auto direct = stats::figures_of(windows[si].colors[c], windows[si].seconds);
        EXPECT_EQ(figures[si][c].requests, windows[si].colors[c].requests) << t << "/" << si << "/" << c;
        EXPECT_EQ(figures[si][c].errors, windows[si].colors[c].errors) << t << "/" << si << "/" << c;
        EXPECT_EQ(figures[si][c].requests, direct.requests);
        EXPECT_EQ(figures[si][c].rps, direct.rps);
        EXPECT_EQ(figures[si][c].error_rate, direct.error_rate);
        EXPECT_EQ(figures[si][c].p95_seconds, direct.p95_seconds);
        EXPECT_EQ(figures[si][c].p95_seconds, again[si][c].p95_seconds);
        EXPECT_EQ(figures[si][c].rps, again[si][c].rps);
      }
    }
  }
}

TEST(StatsHistoryWindows, CountsAreTheDifferenceOverEachServicesWindow) {
  const auto cfg = config_of({5s, 30s});
  StatsHistory h;
  const Clock::time_point t0 = Clock::time_point{} + 1000s;
  for (int t = 0; t <= 40; ++t) h.push(t0 + std::chrono::seconds(t), traffic_until(t, 2), cfg);
  const auto windows = h.windows(cfg);
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_DOUBLE_EQ(windows[0].seconds, 5.0);
  EXPECT_DOUBLE_EQ(windows[1].seconds, 30.0);
  const auto newest = traffic_until(40, 2);
  const std::array<stats::RequestStats, 2> oldest{traffic_until(35, 2), traffic_until(10, 2)};
  for (std::size_t si = 0; si < 2; ++si) {
    for (std::size_t c : {blue, green}) {
      const auto want = stats::counts_between(oldest[si].services[si].colors[c], newest.services[si].colors[c]);
      EXPECT_EQ(windows[si].colors[c].requests, want.requests) << si << "/" << c;
      EXPECT_EQ(windows[si].colors[c].errors, want.errors) << si << "/" << c;
      expect_same_buckets(windows[si].colors[c].latency, want.latency);
    }
  }
}

TEST(StatsHistoryWindows, EmptyBeforeTheFirstSnapshotAndZerosForUncoveredServices) {
  const auto cfg = config_of({30s, 30s});
  StatsHistory h;
  EXPECT_TRUE(h.windows(cfg).empty());
  EXPECT_TRUE(h.window_figures(cfg).empty());
  const Clock::time_point t0 = Clock::time_point{} + 1000s;
  h.push(t0, traffic_until(1, 1), cfg);  // covers svc0 only (a reload in between)
  h.push(t0 + 2s, traffic_until(3, 1), cfg);
  const auto windows = h.windows(cfg);
  const auto figures = h.window_figures(cfg);
  ASSERT_EQ(windows.size(), 2u);
  ASSERT_EQ(figures.size(), 2u);
  EXPECT_GT(windows[0].colors[green].requests, 0u);
  for (std::size_t c : {blue, green}) {
    EXPECT_EQ(windows[1].colors[c].requests, 0u);
    EXPECT_EQ(windows[1].colors[c].latency.count(), 0u);
    EXPECT_EQ(figures[1][c].requests, 0u);
    EXPECT_EQ(figures[1][c].rps, 0.0);
    EXPECT_EQ(figures[0][c].requests, windows[0].colors[c].requests);
  }
}

}  // namespace
}  // namespace bgproxy::control
