// Issue 16, SPEC §15: the shipped dashboard and alert rules as files — the dashboard's structure,
// every query valid PromQL (promtool), every rule complete, and every alert unit-tested both ways.
// What they query is checked against a running bgproxy in live_test.cpp.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "../integration/harness.hpp"
#include "monitoring.hpp"

namespace bgtest::monitoring {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

json::object load_dashboard() {
  const auto text = read_file(dashboard_path());
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec) throw std::runtime_error(dashboard_path().string() + ": " + ec.message());
  return v.as_object();
}

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

const json::object* variable(const json::object& dashboard, const std::string& name) {
  for (const auto& v : dashboard.at("templating").at("list").as_array())
    if (str(v.as_object(), "name") == name) return &v.as_object();
  return nullptr;
}

/// Panels and queries take their data source from the $datasource variable, so one import
/// works with whatever the operator's Prometheus data source is called.
bool from_datasource_variable(const json::object& o) {
  const auto* ds = o.if_contains("datasource");
  return ds != nullptr && ds->is_object() && str(ds->as_object(), "type") == "prometheus" &&
         str(ds->as_object(), "uid") == "${datasource}";
}

TEST(MonitoringFiles, DashboardParsesWithVariablesAndEveryPanelTargetHasAnExpr) {
  const auto d = load_dashboard();
  EXPECT_GE(d.at("schemaVersion").to_number<int>(), 36);
  EXPECT_FALSE(str(d, "title").empty());
  EXPECT_FALSE(str(d, "uid").empty());

  const auto* ds = variable(d, "datasource");
  ASSERT_NE(ds, nullptr) << "no $datasource variable";
  EXPECT_EQ(str(*ds, "type"), "datasource");
  EXPECT_EQ(str(*ds, "query"), "prometheus");
  for (const std::string name : {"service", "instance"}) {
    const auto* v = variable(d, name);
    ASSERT_NE(v, nullptr) << "no $" << name << " variable";
    EXPECT_EQ(str(*v, "type"), "query") << name;
    EXPECT_TRUE(from_datasource_variable(*v)) << name;
    EXPECT_EQ(str(*v, "query").rfind("label_values(", 0), 0u) << name << ": " << str(*v, "query");
  }
  const auto variables = dashboard_variable_queries(d);
  ASSERT_EQ(variables.size(), 2u);
  EXPECT_EQ(variables[0].label, "service");
  EXPECT_EQ(variables[1].label, "instance");

  const auto panels = dashboard_panels(d);
  ASSERT_FALSE(panels.empty());
  std::set<std::int64_t> ids;
  for (const auto* p : panels) {
    const std::string title = str(*p, "title");
    SCOPED_TRACE("panel \"" + title + "\"");
    EXPECT_FALSE(title.empty());
    EXPECT_TRUE(ids.insert(p->at("id").to_number<std::int64_t>()).second) << "duplicate panel id";
    const auto& gp = p->at("gridPos").as_object();
    for (const char* k : {"h", "w", "x", "y"}) EXPECT_TRUE(gp.contains(k)) << "gridPos." << k;
    EXPECT_LE(gp.at("x").to_number<int>() + gp.at("w").to_number<int>(), 24) << "wider than the dashboard";
    EXPECT_TRUE(from_datasource_variable(*p));
    const auto* t = p->if_contains("targets");
    ASSERT_TRUE(t != nullptr && !t->as_array().empty()) << "no targets";
    std::set<std::string> ref_ids;
    for (const auto& target : t->as_array()) {
      const auto& to = target.as_object();
      EXPECT_FALSE(str(to, "expr").empty()) << "target " << str(to, "refId") << " has no expr";
      EXPECT_TRUE(ref_ids.insert(str(to, "refId")).second) << "duplicate refId " << str(to, "refId");
      EXPECT_TRUE(from_datasource_variable(to)) << "target " << str(to, "refId");
    }
  }
  // Every query sits where dashboard_queries() looks: panel targets and annotations.
  EXPECT_EQ(count_expr_keys(d), dashboard_queries(d).size());
}

// promtool is the parser Prometheus itself uses: each query (Grafana's variables filled in as for
// "All") goes into a recording rule of a scratch rules file that `promtool check rules` parses.
TEST(MonitoringFiles, DashboardQueriesAreValidPromql) {
  const auto promtool = find_tool("promtool");
  const auto queries = dashboard_queries(load_dashboard());
  YAML::Emitter y;
  y << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  y << YAML::Key << "name" << YAML::Value << "dashboard" << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
  for (std::size_t i = 0; i < queries.size(); ++i) {
    y << YAML::BeginMap << YAML::Key << "record" << YAML::Value << "dashboard_query_" + std::to_string(i);
    y << YAML::Key << "expr" << YAML::Value << substitute_variables(queries[i].promql, "1m", "1h") << YAML::EndMap;
  }
  y << YAML::EndSeq << YAML::EndMap << YAML::EndSeq << YAML::EndMap;
  TempDir dir;
  write_file(dir / "dashboard-queries.yml", y.c_str());
  const auto r = run_command({promtool.string(), "check", "rules", (dir / "dashboard-queries.yml").string()}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("SUCCESS: " + std::to_string(queries.size()) + " rules found"), std::string::npos) << r.out;
}

TEST(MonitoringFiles, EveryAlertRuleHasForSeverityAndAnnotations) {
  const YAML::Node doc = YAML::LoadFile(rules_path().string());
  std::size_t alerts = 0;
  for (const auto& group : doc["groups"]) {
    for (const auto& rule : group["rules"]) {
      ASSERT_TRUE(rule["alert"]) << "a rule that is not an alert";
      const auto name = rule["alert"].as<std::string>();
      SCOPED_TRACE(name);
      ++alerts;
      EXPECT_FALSE(rule["expr"].as<std::string>("").empty());
      EXPECT_TRUE(rule["for"]) << "no for:";
      const auto severity = rule["labels"]["severity"].as<std::string>("");
      EXPECT_TRUE(severity == "critical" || severity == "warning" || severity == "info") << "severity " << severity;
      EXPECT_FALSE(rule["annotations"]["summary"].as<std::string>("").empty());
      EXPECT_FALSE(rule["annotations"]["description"].as<std::string>("").empty());
    }
  }
  EXPECT_GT(alerts, 0u);
}

// promtool only runs the cases written: each alert must have one where it fires (non-empty
// exp_alerts) and one where it must not (empty exp_alerts), against the shipped rules file.
TEST(MonitoringFiles, EveryAlertHasFiringAndQuietCases) {
  const YAML::Node tests = YAML::LoadFile(rules_test_path().string());
  ASSERT_EQ(tests["rule_files"].size(), 1u);
  EXPECT_EQ(fs::weakly_canonical(rules_test_path().parent_path() / tests["rule_files"][0].as<std::string>()),
            fs::weakly_canonical(rules_path()));
  std::map<std::string, std::pair<int, int>> cases;  // alert -> (firing, quiet)
  for (const auto& t : tests["tests"]) {
    for (const auto& c : t["alert_rule_test"]) {
      auto& n = cases[c["alertname"].as<std::string>()];
      (c["exp_alerts"].size() > 0 ? n.first : n.second)++;
    }
  }
  const YAML::Node rules = YAML::LoadFile(rules_path().string());
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) {
      const auto name = rule["alert"].as<std::string>();
      const auto it = cases.find(name);
      ASSERT_NE(it, cases.end()) << name << " has no promtool test case";
      EXPECT_GT(it->second.first, 0) << name << " is never tested firing";
      EXPECT_GT(it->second.second, 0) << name << " is never tested quiet";
      cases.erase(it);
    }
  }
  for (const auto& [name, n] : cases) ADD_FAILURE() << "test cases for " << name << ", which is no alert of the rules file";
}

TEST(MonitoringFiles, ScanPromqlFindsSelectorsMatchersAndGroupingLabels) {
  const auto r = scan_promql(
      R"(histogram_quantile(0.95, sum by (service, le) (rate(a_bucket{code="5xx", x=~"$v"}[$__rate_interval])))
         / on (job) group_left b > 0.04 and ignoring(color) c{s!~'q'}[5m] unless sum(d) without (z))");
  ASSERT_EQ(r.selectors.size(), 4u);
  EXPECT_EQ(r.selectors[0].metric, "a_bucket");
  ASSERT_EQ(r.selectors[0].matchers.size(), 2u);
  EXPECT_EQ(r.selectors[0].matchers[0].label, "code");
  EXPECT_EQ(r.selectors[0].matchers[0].op, "=");
  EXPECT_EQ(r.selectors[0].matchers[0].value, "5xx");
  EXPECT_EQ(r.selectors[0].matchers[1].op, "=~");
  EXPECT_EQ(r.selectors[1].metric, "b");
  EXPECT_EQ(r.selectors[2].metric, "c");
  EXPECT_EQ(r.selectors[2].matchers[0].op, "!~");
  EXPECT_EQ(r.selectors[3].metric, "d");
  EXPECT_EQ(r.grouping_labels, (std::set<std::string>{"service", "le", "job", "color", "z"}));
  EXPECT_THROW(scan_promql(R"(a{b="c)"), std::runtime_error);
  EXPECT_EQ(substitute_variables(R"(x{s=~"$service", i=~"${instance}"}[$__rate_interval]) + y[$__range])", "1m", "1h"),
            R"(x{s=~".*", i=~".*"}[1m]) + y[1h])");
}

TEST(MonitoringFiles, CheckAgainstExpositionCatchesWrongNamesLabelsAndValues) {
  const auto e = parse_exposition(
      "# TYPE m_total counter\n"
      "m_total{service=\"app\",code=\"2xx\"} 1\n"
      "# TYPE h_seconds histogram\n"
      "h_seconds_bucket{service=\"app\",le=\"+Inf\"} 1\n"
      "h_seconds_sum{service=\"app\"} 0.1\n"
      "h_seconds_count{service=\"app\"} 1\n");
  const auto problems = [&](const std::string& q) { return check_against(Query{"q", q}, e).size(); };
  EXPECT_EQ(problems(R"(sum by (service, le, instance) (rate(h_seconds_bucket{service=~"$s"}[1m])))"), 0u);
  EXPECT_EQ(problems(R"(m_total{code="2xx", job="bgproxy"} + h_seconds_count)"), 0u);
  EXPECT_EQ(problems(R"(up{job="bgproxy"} == 0)"), 0u);
  EXPECT_EQ(problems("h_seconds"), 1u) << "a histogram without its suffix";
  EXPECT_EQ(problems("m_total_count"), 1u);
  EXPECT_EQ(problems("nope_total"), 1u);
  EXPECT_EQ(problems(R"(m_total{colour="blue"})"), 1u);
  EXPECT_EQ(problems(R"(m_total{code="5xx"})"), 1u) << "no sample has that value";
  EXPECT_EQ(problems("sum by (color) (m_total)"), 1u);
  EXPECT_EQ(problems("up == 0"), 1u) << "up of every job";
  EXPECT_EQ(problems("vector(1)"), 1u) << "no metric at all";
  EXPECT_EQ(check_against(LabelValuesQuery{"v", "m_total", "code"}, e).size(), 0u);
  EXPECT_EQ(check_against(LabelValuesQuery{"v", "m_total", "color"}, e).size(), 1u);
}

}  // namespace
}  // namespace bgtest::monitoring
