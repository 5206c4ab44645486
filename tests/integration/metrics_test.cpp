// SPEC §9: the admin listener's /metrics counts what crossed the wire.

#include "harness.hpp"

namespace bgtest {
namespace {

class Metrics : public IntegrationTest {};

using Labels = std::map<std::string, std::string>;

TEST_F(Metrics, RequestsTotalAndDurationCountEveryRequest) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  for (int i = 0; i < 7; ++i) {
    c.send(get_request("/m"));
    auto r = c.read_response(Ms(3000));
    ASSERT_TRUE(r) << c.last_error();
    ASSERT_EQ(r->status, 200);
  }
  for (int i = 0; i < 2; ++i) {
    c.send(get_request("/m?status=404"));
    auto r = c.read_response(Ms(3000));
    ASSERT_TRUE(r) << c.last_error();
    ASSERT_EQ(r->status, 404);
  }
  auto v = p.wait_metric("bgproxy_requests_total", {{"service", "app"}, {"color", "blue"}, {"code", "2xx"}},
                         [](double x) { return x >= 7; });
  ASSERT_TRUE(v) << "no bgproxy_requests_total{service=\"app\",color=\"blue\",code=\"2xx\"}:\n" << p.metrics();
  EXPECT_EQ(*v, 7);
  v = p.wait_metric("bgproxy_requests_total", {{"service", "app"}, {"color", "blue"}, {"code", "4xx"}},
                    [](double x) { return x >= 2; });
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 2);
  std::string text = p.metrics();
  EXPECT_FALSE(metric_value(text, "bgproxy_requests_total", {{"service", "app"}, {"color", "green"}}).value_or(0) > 0)
      << "requests counted for green at weight 0";
  auto count = metric_value(text, "bgproxy_request_duration_seconds_count", {{"service", "app"}, {"color", "blue"}});
  ASSERT_TRUE(count) << "no histogram bgproxy_request_duration_seconds:\n" << text;
  EXPECT_EQ(*count, 9);
  auto inf = metric_value(text, "bgproxy_request_duration_seconds_bucket",
                          {{"service", "app"}, {"color", "blue"}, {"le", "+Inf"}});
  ASSERT_TRUE(inf);
  EXPECT_EQ(*inf, 9);
  EXPECT_EQ(metric_value(text, "bgproxy_weight", {{"service", "app"}, {"color", "green"}}), 0.0);
  EXPECT_EQ(metric_value(text, "bgproxy_weight", {{"service", "app"}, {"color", "blue"}}), 100.0);
}

TEST_F(Metrics, UpstreamConnectFailureCounted) {
  ProxyConfig cfg;
  std::string dead = "127.0.0.1:" + std::to_string(refused_port());
  cfg.blue = {dead};
  Proxy& p = start_proxy(cfg);
  std::string why;
  auto r = round_trip(p.port(), get_request("/"), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 502);
  auto v = p.wait_metric("bgproxy_upstream_failures_total",
                         {{"service", "app"}, {"color", "blue"}, {"server", dead}, {"reason", "connect"}},
                         [](double x) { return x >= 1; });
  ASSERT_TRUE(v) << "no upstream failure sample for " << dead << ":\n" << p.metrics();
  EXPECT_GE(*v, 1);
  v = p.wait_metric("bgproxy_requests_total", {{"service", "app"}, {"color", "blue"}, {"code", "5xx"}},
                    [](double x) { return x >= 1; });
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 1);
}

TEST_F(Metrics, UpstreamTimeoutCounted) {
  ProxyConfig cfg;
  cfg.upstream_response = "300ms";
  Proxy& p = start_proxy(cfg);
  std::string why;
  auto r = round_trip(p.port(), get_request("/?delay_ms=1500"), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 504);
  auto v = p.wait_metric("bgproxy_upstream_failures_total",
                         {{"service", "app"}, {"color", "blue"}, {"server", backends_[0]->address()}, {"reason", "timeout"}},
                         [](double x) { return x >= 1; });
  ASSERT_TRUE(v) << p.metrics();
  EXPECT_EQ(*v, 1);
}

TEST_F(Metrics, ClientConnectionsGauge) {
  Proxy& p = start_proxy({});
  {
    std::vector<Client> open;
    for (int i = 0; i < 3; ++i) {
      open.emplace_back(p.port());
      open.back().send(get_request("/"));
      auto r = open.back().read_response(Ms(3000));
      ASSERT_TRUE(r) << open.back().last_error();
    }
    auto v = p.wait_metric("bgproxy_client_connections", {}, [](double x) { return x == 3; });
    ASSERT_TRUE(v) << p.metrics();
    EXPECT_EQ(*v, 3);
  }
  auto v = p.wait_metric("bgproxy_client_connections", {}, [](double x) { return x == 0; });
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 0) << "closed connections still counted";
}

}  // namespace
}  // namespace bgtest
