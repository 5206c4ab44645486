// Issue 18 in a fleet (SPEC §12, §16): with `watchdog.method: sequential` every instance feeds the
// fleet's aggregated window to its analysis, each time it reaches back to the previous feed, so a
// rollback can rest on errors that no single instance saw enough of: 5 green errors through each
// of a, b and c are too little evidence alone (mean of the rules 8.8 < 100), and any two
// instances' together are enough (10: 257). Other members' windows arrive through etcd up to a
// second late, so one instance's errors may fall between two feeds.

#include <algorithm>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "fleet_harness.hpp"

namespace bgtest::fleet {
namespace {

constexpr const char* kSequential =
    "sticky: none\n"
    "watchdog: { method: sequential, alpha: 0.01, window: 5s, max_error_rate: 0.05, max_p95: 5s, "
    "bake_time: 60s }\n";

// A suite of its own: gtest wants one fixture class per suite name across the binary.
class FleetSequentialTest : public FleetTest {};

TEST_F(FleetSequentialTest, RollbackRestsOnTheFleetsCounts) {
  FleetOptions o;
  o.service_extra = kSequential;
  start_fleet(o);
  ctl("a", {"split", "--green", "50"});
  ASSERT_TRUE(wait_green({"a", "b", "c"}, 50, Ms(3000)));
  ASSERT_TRUE(wait_stats_published({"a", "b", "c"}, Ms(5000)));

  // Clean green requests until every instance counts them: the warm-up after the split is over.
  const auto counted = [&](const std::string& i) {
    const json::object status = service_status(i);
    const auto& ev = status.at("watchdog").at("evidence");
    return ev.is_object() && num(ev.at("target").at("requests")) > 0;
  };
  ASSERT_TRUE(wait_until(
      [&] {
        for (const std::string i : {"a", "b", "c"}) send_forced(i, "green", 1);
        return counted("a") && counted("b") && counted("c");
      },
      Ms(20000), Ms(500)));

  green_->knobs("error_rate=1");
  for (const std::string i : {"a", "b", "c"}) {
    const auto statuses = send_forced(i, "green", 5);
    EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 500), 5) << i;
  }
  const bool rolled_back = wait_until(
      [&] { return phase("a") == "rolled_back" && phase("b") == "rolled_back" && phase("c") == "rolled_back"; },
      Ms(20000), Ms(200));
  ASSERT_TRUE(rolled_back) << "phases: a " << phase("a") << ", b " << phase("b") << ", c " << phase("c")
                           << "; a's status: " << json::serialize(service_status("a"));

  const auto rb = entries(history_json("a"), "rollback");
  ASSERT_EQ(rb.size(), 1u);
  const std::string reason = str(rb.front(), "reason");
  std::cout << "[ fleet ] sequential rollback by " << str(rb.front(), "instance") << ": " << reason << "\n";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(reason, m, std::regex(R"(^watchdog: error_rate evidence [0-9.e+]+, mean of the )"
                                                      R"(rules [0-9.e+]+ >= 100 \(alpha 0\.01\): green (\d+) errors)")))
      << reason;
  EXPECT_GT(std::stoi(m[1]), 5) << "the decision must rest on more than one instance's errors: " << reason;
  for (const std::string i : {"a", "b", "c"}) EXPECT_EQ(green_weight(i), 0.0) << i;
}

}  // namespace
}  // namespace bgtest::fleet
