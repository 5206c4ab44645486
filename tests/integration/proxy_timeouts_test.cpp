// SPEC §3/§4/§10 timeouts and upstream failures: 502 on connect refused (with one retry on another
// server), 504 after upstream_response, slow clients cut at client_header, idle keep-alive
// connections closed on both sides without the client noticing an upstream close.

#include <thread>

#include "harness.hpp"

namespace bgtest {
namespace {

class ProxyTimeouts : public IntegrationTest {};

long ms_since(Clock::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<Ms>(Clock::now() - t).count());
}

TEST_F(ProxyTimeouts, UpstreamConnectRefusedIs502) {
  ProxyConfig cfg;
  cfg.blue = {"127.0.0.1:" + std::to_string(refused_port())};
  Proxy& p = start_proxy(cfg);
  auto t0 = Clock::now();
  std::string why;
  auto r = round_trip(p.port(), get_request("/"), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 502) << r->raw_head;
  EXPECT_LT(ms_since(t0), 2000);
  // Still 502 (not a hang, not a crash) on a second try, on a kept-alive connection too.
  Client c(p.port());
  for (int i = 0; i < 2; ++i) {
    c.send(get_request("/again"));
    r = c.read_response(Ms(3000));
    if (!r) {
      // Closing after a 502 is allowed; a new connection must still work.
      Client c2(p.port());
      c = std::move(c2);
      c.send(get_request("/again"));
      r = c.read_response(Ms(3000));
    }
    ASSERT_TRUE(r) << c.last_error();
    EXPECT_EQ(r->status, 502);
  }
}

TEST_F(ProxyTimeouts, ConnectRefusedIdempotentRequestRetriedOnOtherServer) {
  ProxyConfig cfg;
  Backend& good = start_backend("blue");
  cfg.blue = {"127.0.0.1:" + std::to_string(refused_port()), good.address()};
  Proxy& p = start_proxy(cfg);
  for (int i = 0; i < 10; ++i) {
    std::string why;
    auto r = round_trip(p.port(), get_request("/retry/" + std::to_string(i)), Ms(5000), &why);
    ASSERT_TRUE(r) << why;
    EXPECT_EQ(r->status, 200) << "GET " << i << " not retried on the live server: " << r->raw_head;
  }
}

TEST_F(ProxyTimeouts, SlowUpstreamIs504AfterUpstreamResponse) {
  ProxyConfig cfg;
  cfg.upstream_response = "500ms";
  Proxy& p = start_proxy(cfg);
  auto t0 = Clock::now();
  std::string why;
  auto r = round_trip(p.port(), get_request("/?delay_ms=2000"), Ms(5000), &why);
  long took = ms_since(t0);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 504) << r->raw_head;
  EXPECT_GE(took, 400) << "504 before upstream_response elapsed";
  EXPECT_LT(took, 1300) << "504 came only after " << took << " ms (upstream_response is 500ms)";
  // A timeout is not a connect failure or reset: the request is not sent a second time.
  EXPECT_EQ(backends_[0]->stats().requests, 1u) << "the timed-out request was retried";
  r = round_trip(p.port(), get_request("/?delay_ms=100"), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200) << "a response within upstream_response must pass";
}

TEST_F(ProxyTimeouts, SlowlorisPartialHeaderCutAtClientHeaderOthersUnaffected) {
  ProxyConfig cfg;
  cfg.client_header = "1s";
  Proxy& p = start_proxy(cfg);
  Client slow(p.port());
  auto t0 = Clock::now();
  slow.send("GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: ");

  // Meanwhile other clients are served promptly.
  for (int i = 0; i < 3; ++i) {
    auto t1 = Clock::now();
    std::string why;
    auto r = round_trip(p.port(), get_request("/other"), Ms(3000), &why);
    ASSERT_TRUE(r) << why;
    EXPECT_EQ(r->status, 200);
    EXPECT_LT(ms_since(t1), 500) << "another client was slowed down by the stalled one";
  }

  ReadEnd end = slow.read_until_close(Ms(3500));
  long took = ms_since(t0);
  EXPECT_NE(end, ReadEnd::Timeout) << "stalled client not cut within 3.5 s";
  EXPECT_GE(took, 800) << "cut before client_header elapsed";
  EXPECT_LE(took, 3000) << "cut only after " << took << " ms";
  if (!slow.buffered().empty()) {
    EXPECT_EQ(slow.buffered().rfind("HTTP/1.1 408", 0), 0u) << "unexpected bytes: " << slow.buffered().substr(0, 200);
  }
  EXPECT_EQ(backends_[0]->stats().requests, 3u);
}

TEST_F(ProxyTimeouts, SlowlorisTrickleCutAtClientHeader) {
  // One header byte every 150 ms: client_header bounds the whole head, not each read.
  ProxyConfig cfg;
  cfg.client_header = "1s";
  Proxy& p = start_proxy(cfg);
  Client slow(p.port());
  auto t0 = Clock::now();
  slow.send("GET / HTTP/1.1\r\nHost: app.test\r\n");
  bool closed = false;
  while (ms_since(t0) < 4000) {
    if (!slow.try_send("X", Ms(500))) {
      closed = true;
      break;
    }
    if (slow.read_until_close(Ms(150)) != ReadEnd::Timeout) {
      closed = true;
      break;
    }
  }
  long took = ms_since(t0);
  EXPECT_TRUE(closed) << "a client trickling header bytes was never cut";
  EXPECT_GE(took, 800);
  EXPECT_LE(took, 3000) << "cut only after " << took << " ms";
}

TEST_F(ProxyTimeouts, ClientIdleKeepAliveConnectionClosed) {
  ProxyConfig cfg;
  cfg.client_idle = "1s";
  Proxy& p = start_proxy(cfg);
  Client c(p.port());
  c.send(get_request("/"));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  auto t0 = Clock::now();
  ReadEnd end = c.read_until_close(Ms(4000));
  long took = ms_since(t0);
  EXPECT_NE(end, ReadEnd::Timeout) << "idle keep-alive connection never closed";
  EXPECT_GE(took, 800);
  EXPECT_LE(took, 3000);
}

TEST_F(ProxyTimeouts, UpstreamClosingIdlePooledConnectionIsNot502) {
  Backend& b = start_backend("blue");
  b.knobs("idle_close_ms=50");
  ProxyConfig cfg;
  cfg.blue = {b.address()};
  Proxy& p = start_proxy(cfg);
  Client c(p.port());
  for (int i = 0; i < 4; ++i) {
    c.send(get_request("/idle/" + std::to_string(i)));
    auto r = c.read_response(Ms(3000));
    ASSERT_TRUE(r) << "request " << i << ": " << c.last_error();
    EXPECT_EQ(r->status, 200) << "request " << i << " after the backend closed the pooled connection";
    std::this_thread::sleep_for(Ms(200));  // the backend closes its side after 50 ms idle
  }
  EXPECT_GE(b.stats().connections, 4u);
}

TEST_F(ProxyTimeouts, UpstreamClosingIdlePooledConnectionPostIsNot502) {
  // POST cannot be retried blindly: the proxy must not pick a pooled connection the server has
  // already closed (it has seen the FIN by now).
  Backend& b = start_backend("blue");
  b.knobs("idle_close_ms=50");
  ProxyConfig cfg;
  cfg.blue = {b.address()};
  Proxy& p = start_proxy(cfg);
  Client c(p.port());
  for (int i = 0; i < 4; ++i) {
    c.send(request_with_body("POST", "/idle-post/" + std::to_string(i), "payload"));
    auto r = c.read_response(Ms(3000));
    ASSERT_TRUE(r) << "request " << i << ": " << c.last_error();
    EXPECT_EQ(r->status, 200) << "POST " << i << " after the backend closed the pooled connection";
    std::this_thread::sleep_for(Ms(200));
  }
}

}  // namespace
}  // namespace bgtest
