// Issue 16, SPEC §15: the shipped dashboard and alert rules against a real bgproxy (in a fleet of
// one, on a real etcd): every metric, label and label value they query is in its /metrics; and a
// real Prometheus scraping it evaluates every rule without error, returns data for every dashboard
// query, and raises the alerts an operator would expect as the proxy goes through a split onto a
// color without servers, a rollback and the loss of etcd.

#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../cluster/etcd_server.hpp"
#include "../integration/harness.hpp"
#include "monitoring.hpp"

namespace bgtest::monitoring {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

bool wait_until(const std::function<bool()>& pred, Ms timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Ms(200));
  }
}

class MonitoringLive : public IntegrationTest {
protected:
  void TearDown() override {
    if (HasFailure()) {
      if (prometheus_) std::cerr << "----- prometheus stderr -----\n" << prometheus_->stderr_text() << "\n";
      if (etcd_) {
        const auto log = etcd_->log();
        std::cerr << "----- etcd log (tail) -----\n" << log.substr(log.size() > 4000 ? log.size() - 4000 : 0) << "\n";
      }
    }
    IntegrationTest::TearDown();
    prometheus_.reset();
    etcd_.reset();
  }

  /// etcd, the blue backend, and a bgproxy in front of it with health checks, `grpc: true` and a
  /// `cluster:` section — what it takes for every metric family to be exported. Green is a
  /// refused address: its health checks fail. The demo backend sends no grpc-status, so every
  /// answer counts as grpc_status="missing", an error: blue's error rate is 100 %.
  Proxy& start_stack() {
    fs::create_directories(dir_ / "etcd");
    etcd_ = std::make_unique<etcd::Member>(dir_ / "etcd");
    ProxyConfig cfg;
    cfg.health_check = true;
    cfg.service_extra = "grpc: true\n";
    cfg.cluster = "etcd:\n"
                  "  endpoints: [\"" + etcd_->url() + "\"]\n"
                  "  prefix: /bgproxy/monitoring-test\n"
                  "  timeout: 1s\n"
                  "  lease_ttl: 2s\n"
                  "instance: a\n";
    Proxy& p = start_proxy(cfg);
    const auto connected = p.wait_metric("bgproxy_cluster_connected", {}, [](double v) { return v == 1; }, Ms(10000));
    if (!connected || *connected != 1) throw std::runtime_error("bgproxy did not connect to etcd:\n" + p.metrics());
    return p;
  }

  /// GETs through the proxy on one keep-alive connection.
  static void send_requests(Proxy& p, int n, const std::string& extra = "") {
    Client c(p.port());
    for (int i = 0; i < n; ++i) {
      c.send(get_request("/monitoring", extra));
      if (!c.read_response(Ms(3000))) throw std::runtime_error("request " + std::to_string(i) + ": " + c.last_error());
    }
  }

  CommandResult bgctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{BGCTL_BIN, "-S", (dir_ / "control-0.sock").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_.path());
  }

  /// A Prometheus scraping `targets` every second under job "bgproxy" and evaluating the shipped
  /// rules every second; returns once it is ready.
  void start_prometheus(const std::vector<std::string>& targets) {
    const auto binary = find_tool("prometheus");
    std::string list;
    for (const auto& t : targets) list += (list.empty() ? "\"" : ", \"") + t + "\"";
    const auto config = dir_ / "prometheus.yml";
    write_file(config, "global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }\n"
                       "rule_files: [\"" + rules_path().string() + "\"]\n"
                       "scrape_configs:\n"
                       "  - job_name: bgproxy\n"
                       "    static_configs: [ { targets: [" + list + "] } ]\n");
    prometheus_port_ = etcd::free_port();
    prometheus_ = std::make_unique<Process>(
        std::vector<std::string>{binary.string(), "--config.file=" + config.string(),
                                 "--storage.tsdb.path=" + (dir_ / "prometheus-data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_)},
        dir_.path(), "prometheus");
    const bool ready = wait_until([&] {
      auto r = round_trip(prometheus_port_, get_request("/-/ready", "Connection: close\r\n", "127.0.0.1"), Ms(1000));
      return r && r->status == 200;
    }, Ms(20000));
    if (!ready) throw std::runtime_error("prometheus not ready within 20 s:\n" + prometheus_->stderr_text());
  }

  json::object prometheus_get(const std::string& target) {
    std::string why;
    auto r = round_trip(prometheus_port_, get_request(target, "Connection: close\r\n", "127.0.0.1"), Ms(5000), &why);
    if (!r) throw std::runtime_error("GET " + target + ": " + why);
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    if (ec || r->status != 200) throw std::runtime_error("GET " + target + ": " + std::to_string(r->status) + " " + r->body);
    return v.as_object();
  }

  /// Series an instant query returns now (throws on a query Prometheus refuses).
  std::size_t series_count(const std::string& promql) {
    return prometheus_get("/api/v1/query?query=" + url_encode(promql)).at("data").at("result").as_array().size();
  }

  /// State ("pending" or "firing") of the alert `name` whose labels include `labels`; "" when none.
  std::string alert_state(const std::string& name, const Labels& labels) {
    const auto answer = prometheus_get("/api/v1/alerts");  // the loop below refers into it
    for (const auto& a : answer.at("data").at("alerts").as_array()) {
      const auto& l = a.at("labels").as_object();
      if (l.at("alertname").as_string() != name) continue;
      const bool match = std::all_of(labels.begin(), labels.end(), [&](const auto& kv) {
        const auto* v = l.if_contains(kv.first);
        return v != nullptr && v->as_string() == kv.second;
      });
      if (match) return std::string(a.at("state").as_string());
    }
    return "";
  }

  std::string all_alerts() { return json::serialize(prometheus_get("/api/v1/alerts").at("data")); }

  std::unique_ptr<etcd::Member> etcd_;
  std::unique_ptr<Process> prometheus_;
  std::uint16_t prometheus_port_ = 0;
};

TEST_F(MonitoringLive, EveryMetricLabelAndValueTheDashboardAndRulesQueryIsExported) {
  Proxy& p = start_stack();
  send_requests(p, 5);
  send_requests(p, 5, "X-Bg-Color: green\r\n");

  boost::system::error_code ec;
  const auto dashboard = json::parse(read_file(dashboard_path()), ec).as_object();
  ASSERT_FALSE(ec) << ec.message();
  auto queries = dashboard_queries(dashboard);
  const auto rules = rule_queries(rules_path());
  queries.insert(queries.end(), rules.begin(), rules.end());
  const auto variables = dashboard_variable_queries(dashboard);

  // Counters reach /metrics within a second, health checks within their interval: poll until
  // nothing is missing, and report what still is.
  std::vector<std::string> problems;
  std::string text;
  wait_until([&] {
    text = p.metrics();
    const auto e = parse_exposition(text);
    problems.clear();
    for (const auto& q : queries) {
      auto more = check_against(q, e);
      problems.insert(problems.end(), more.begin(), more.end());
    }
    for (const auto& v : variables) {
      auto more = check_against(v, e);
      problems.insert(problems.end(), more.begin(), more.end());
    }
    return problems.empty();
  }, Ms(10000));
  EXPECT_TRUE(problems.empty()) << "queried but not exported:\n" << joined(problems) << "/metrics:\n" << text;
  std::cout << "[ monitoring ] " << queries.size() << " queries and " << variables.size()
            << " variables checked against /metrics\n";
}

TEST_F(MonitoringLive, PrometheusEvaluatesTheRulesAndDashboardAndAlertsFollowTheProxy) {
  Proxy& p = start_stack();
  // A second target where nothing answers: bgproxy down, as Prometheus sees it.
  const std::string admin = "127.0.0.1:" + std::to_string(p.admin_port());
  const std::string dead = "127.0.0.1:" + std::to_string(refused_port());
  start_prometheus({admin, dead});
  const std::string up_query = "up{job=\"bgproxy\",instance=\"" + admin + "\"} == 1";
  ASSERT_TRUE(wait_until([&] { return series_count(up_query) == 1; }, Ms(15000))) << "bgproxy never scraped";

  // Traffic after the first scrape, so that rates and increases see the counters rise: 60
  // requests in the minute, above the rules' minimum volume (40), all errors (see start_stack).
  send_requests(p, 60);
  EXPECT_TRUE(wait_until([&] { return alert_state("BgproxyErrorRateNearThreshold", {{"color", "blue"}}) == "pending"; },
                         Ms(15000)))
      << all_alerts();
  EXPECT_EQ(alert_state("BgproxyDown", {{"instance", dead}}), "pending") << all_alerts();
  // Healthy or idle, these say nothing: bgproxy itself is up, green is down but gets no traffic,
  // nothing was rolled back, p95 is low, etcd answers and the fleet of one agrees with itself.
  EXPECT_EQ(alert_state("BgproxyDown", {{"instance", admin}}), "") << all_alerts();
  for (const char* quiet : {"BgproxyColorWithoutHealthyServers", "BgproxyRollback", "BgproxyP95NearThreshold",
                            "BgproxyClusterDisconnected", "BgproxyClusterRevisionLag"})
    EXPECT_EQ(alert_state(quiet, {}), "") << quiet << "\n" << all_alerts();

  // 10 % to green, which has no healthy server.
  auto r = bgctl({"split", "--green", "10", "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(wait_until([&] {
    return alert_state("BgproxyColorWithoutHealthyServers", {{"service", "app"}, {"color", "green"}, {"instance", admin}}) ==
           "pending";
  }, Ms(15000))) << all_alerts();

  r = bgctl({"rollback"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(wait_until([&] {
    return alert_state("BgproxyRollback", {{"service", "app"}, {"reason", "manual"}}) == "firing";
  }, Ms(15000))) << all_alerts();

  // Every dashboard query, as Grafana sends it with "All" selected, returns data now: traffic,
  // health, a weight change and a rollback in the last minute, the fleet's figures.
  boost::system::error_code ec;
  const auto queries = dashboard_queries(json::parse(read_file(dashboard_path()), ec).as_object());
  ASSERT_FALSE(ec);
  std::vector<std::string> empty;
  wait_until([&] {
    empty.clear();
    for (const auto& q : queries) {
      const auto promql = substitute_variables(q.promql, "30s", "1h");
      if (series_count(promql) == 0) empty.push_back(q.where + ": " + promql);
    }
    return empty.empty();
  }, Ms(15000));
  EXPECT_TRUE(empty.empty()) << "dashboard queries without data:\n" << joined(empty);

  etcd_->stop();
  EXPECT_TRUE(wait_until([&] { return alert_state("BgproxyClusterDisconnected", {{"instance", admin}}) == "pending"; },
                         Ms(20000)))
      << all_alerts();

  // Every rule was evaluated, and none failed (a many-to-many match, say, fails only at run time).
  std::size_t rules = 0;
  const auto answer = prometheus_get("/api/v1/rules");
  for (const auto& g : answer.at("data").at("groups").as_array()) {
    for (const auto& rule : g.at("rules").as_array()) {
      ++rules;
      EXPECT_EQ(rule.at("health").as_string(), "ok") << json::serialize(rule);
    }
  }
  EXPECT_EQ(rules, rule_queries(rules_path()).size());
}

}  // namespace
}  // namespace bgtest::monitoring
