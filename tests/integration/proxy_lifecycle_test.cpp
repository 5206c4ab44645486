// SPEC §2 signals: SIGTERM stops accepting, lets in-flight requests finish, exits 0.

#include <signal.h>

#include <thread>

#include "harness.hpp"

namespace bgtest {
namespace {

class ProxyLifecycle : public IntegrationTest {};

/// Waits until the proxy has a connection open to the backend: it connects only after parsing a
/// request head, so the request is then in flight. (The /_stats connection counts itself.)
bool wait_backend_busy(Backend& b, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (b.stats().open_connections >= 2) return true;
    std::this_thread::sleep_for(Ms(10));
  }
  return false;
}

TEST_F(ProxyLifecycle, SigtermLetsInFlightRequestCompleteThenExitsZero) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/?delay_ms=1000&body_bytes=5000"));
  ASSERT_TRUE(wait_backend_busy(*backends_[0], Ms(2000))) << "request never reached the backend";
  auto t0 = Clock::now();
  p.process().signal(SIGTERM);
  auto r = c.read_response(Ms(5000));
  ASSERT_TRUE(r) << "in-flight request cut by SIGTERM: " << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, pattern_bytes(0, 5000));
  auto code = p.process().wait_exit(Ms(5000));
  ASSERT_TRUE(code) << "bgproxy still running 5 s after SIGTERM with nothing in flight";
  EXPECT_EQ(*code, 0) << "stderr:\n" << p.process().stderr_text();
  EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - t0).count(), 4000);
}

TEST_F(ProxyLifecycle, SigtermStopsAcceptingNewConnections) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/?delay_ms=1500"));
  ASSERT_TRUE(wait_backend_busy(*backends_[0], Ms(2000)));
  p.process().signal(SIGTERM);
  // Within a moment new connections are refused (or closed unserved), while the old one drains.
  bool stopped = false;
  auto deadline = Clock::now() + Ms(1000);
  while (Clock::now() < deadline && !stopped) {
    int err = 0;
    auto n = Client::try_connect(p.port(), Ms(200), &err);
    if (!n) {
      stopped = true;
      break;
    }
    (void)n->try_send(get_request("/new"), Ms(200));
    auto r = n->read_response(Ms(300));
    if (!r || r->status == 503) stopped = true;
    else std::this_thread::sleep_for(Ms(20));
  }
  EXPECT_TRUE(stopped) << "new connections still served after SIGTERM";
  auto r = c.read_response(Ms(5000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  auto code = p.process().wait_exit(Ms(5000));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
}

TEST_F(ProxyLifecycle, SigtermWithOnlyIdleKeepAliveConnectionsExitsPromptly) {
  ProxyConfig cfg;
  cfg.shutdown = "20s";
  Proxy& p = start_proxy(cfg);
  Client c(p.port());
  c.send(get_request("/"));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  auto t0 = Clock::now();
  p.process().signal(SIGTERM);
  auto code = p.process().wait_exit(Ms(5000));
  ASSERT_TRUE(code) << "an idle keep-alive connection held shutdown for the whole grace period";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - t0).count(), 3000);
  EXPECT_NE(c.read_until_close(Ms(1000)), ReadEnd::Timeout);
}

TEST_F(ProxyLifecycle, AdminHealthAndReadiness) {
  Proxy& p = start_proxy({});
  for (const char* path : {"/healthz", "/readyz"}) {
    std::string why;
    auto r = round_trip(p.admin_port(), get_request(path, "", "127.0.0.1"), Ms(3000), &why);
    ASSERT_TRUE(r) << path << ": " << why;
    EXPECT_EQ(r->status, 200) << path;
  }
}

TEST_F(ProxyLifecycle, SighupWithInvalidConfigKeepsServing) {
  Proxy& p = start_proxy({});
  std::string why;
  auto r = round_trip(p.port(), get_request("/before"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 200);
  std::string good = read_file(p.config_path());
  write_file(p.config_path(), good + "bogus_key: 1\n");
  p.process().signal(SIGHUP);
  auto line = p.process().wait_for_line(std::regex("bogus_key"), Ms(3000));
  EXPECT_TRUE(line) << "the rejected reload was not logged with its reason; stderr:\n" << p.process().stderr_text();
  ASSERT_TRUE(p.process().running()) << "bgproxy died on SIGHUP with an invalid config";
  r = round_trip(p.port(), get_request("/after"), Ms(3000), &why);
  ASSERT_TRUE(r) << "not serving after a rejected reload: " << why;
  EXPECT_EQ(r->status, 200);
}

TEST_F(ProxyLifecycle, AccessLogWrittenToFile) {
  ProxyConfig cfg;
  cfg.access_log = (dir_ / "access.log").string();
  Proxy& p = start_proxy(cfg);
  std::string why;
  auto r = round_trip(p.port(), get_request("/logged-path?q=1"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 200);
  auto deadline = Clock::now() + Ms(3000);
  std::string text;
  while (Clock::now() < deadline) {
    text = read_file(dir_ / "access.log");
    if (text.find("/logged-path") != std::string::npos) break;
    std::this_thread::sleep_for(Ms(50));
  }
  ASSERT_NE(text.find("/logged-path"), std::string::npos) << "access log:\n" << text;
  std::string line = text.substr(text.find("/logged-path"));
  line = line.substr(0, line.find('\n'));
  EXPECT_NE(line.find("200"), std::string::npos) << "status missing from the access-log line: " << line;
}

}  // namespace
}  // namespace bgtest
