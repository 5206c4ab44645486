// The harness against the demo backend alone (no proxy): proves the client, the parser and the
// echo reader, so that a proxy test failure is about the proxy.

#include "harness.hpp"

namespace bgtest {
namespace {

class Backend_ : public IntegrationTest {};

TEST_F(Backend_, EchoStatsAndPatternThroughHarness) {
  Backend& b = start_backend("blue");
  Client c(b.port());
  c.send(request_with_body("POST", "/echo?x=1", "hello", "X-Test: 1\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Backend"), "blue");
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.method, "POST");
  EXPECT_EQ(e.target, "/echo?x=1");
  EXPECT_EQ(e.body_bytes, 5u);
  EXPECT_EQ(e.body_fnv1a, fnv1a_hex("hello"));
  EXPECT_EQ(e.value("x-test"), "1");

  c.send(get_request("/?body_bytes=1000&chunked=1&chunk_bytes=7"));
  r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body, pattern_bytes(0, 1000));
  EXPECT_EQ(r->chunks, 143u);

  EXPECT_EQ(b.stats().requests, 2u);
}

// The keep-alive knobs of issue 19 close the way a real server does: a plain close() once the
// time or the count is up (the client reads EOF, never a reset), with the `Keep-Alive` header
// saying so when asked to, and never `Connection: close`.

TEST_F(Backend_, IdleCloseIsASilentFinAfterTheIdleTime) {
  Backend& b = start_backend("blue");
  b.knobs("idle_close_ms=300");
  Client c(b.port());
  c.send(request_with_body("POST", "/a", "hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_FALSE(r->has_header("Keep-Alive"));
  EXPECT_FALSE(r->has_header("Connection"));
  // The backend's timer started when it wrote the response, a little before it was read here.
  const auto t0 = Clock::now();
  EXPECT_EQ(c.read_until_close(Ms(3000)), ReadEnd::Eof);
  const auto idle = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  EXPECT_GE(idle, Ms(280));
  EXPECT_LT(idle, Ms(800));
}

TEST_F(Backend_, KeepAliveTimeoutIsAdvertisedAndEnforced) {
  Backend& b = start_backend("blue");
  b.knobs("keep_alive_timeout=1");
  Client c(b.port());
  c.send(request_with_body("POST", "/a", "hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->header("Keep-Alive"), "timeout=1");
  EXPECT_FALSE(r->has_header("Connection"));
  // Idle for half the timeout: still the same connection.
  std::this_thread::sleep_for(Ms(500));
  c.send(get_request("/b"));
  r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->header("Keep-Alive"), "timeout=1");
  EXPECT_EQ(parse_echo(r->body).request_on_connection, 2u);
  const auto t0 = Clock::now();
  EXPECT_EQ(c.read_until_close(Ms(3000)), ReadEnd::Eof);
  const auto idle = std::chrono::duration_cast<Ms>(Clock::now() - t0);
  EXPECT_GE(idle, Ms(950));
  EXPECT_LT(idle, Ms(1500));

  // With a shorter idle_close_ms too, the shorter one closes (the header still says 1 s).
  b.knobs("idle_close_ms=200");
  Client d(b.port());
  d.send(get_request("/c"));
  r = d.read_response();
  ASSERT_TRUE(r) << d.last_error();
  EXPECT_EQ(r->header("Keep-Alive"), "timeout=1");
  const auto t1 = Clock::now();
  EXPECT_EQ(d.read_until_close(Ms(3000)), ReadEnd::Eof);
  EXPECT_LT(Clock::now() - t1, Ms(700));
}

TEST_F(Backend_, KeepAliveMaxClosesRightAfterTheMthResponseWithoutSayingSo) {
  Backend& b = start_backend("blue");
  b.knobs("keep_alive_max=3&keep_alive_timeout=5");
  Client c(b.port());
  for (std::uint64_t i = 1; i <= 3; ++i) {
    c.send(request_with_body("POST", "/p", "body"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << "response " << i << ": " << c.last_error();
    EXPECT_EQ(r->header("Keep-Alive"), "timeout=5, max=3") << "response " << i;
    EXPECT_FALSE(r->has_header("Connection")) << "response " << i;
    EXPECT_EQ(parse_echo(r->body).request_on_connection, i);
  }
  // Right after the third response, long before the 5 s timeout: EOF, not a reset.
  const auto t0 = Clock::now();
  EXPECT_EQ(c.read_until_close(Ms(3000)), ReadEnd::Eof);
  EXPECT_LT(Clock::now() - t0, Ms(500));

  // max alone; then reset=1 turns both off: no header, the connection stays open.
  b.knobs("reset=1&keep_alive_max=2");
  Client d(b.port());
  d.send(get_request("/q"));
  auto r = d.read_response();
  ASSERT_TRUE(r) << d.last_error();
  EXPECT_EQ(r->header("Keep-Alive"), "max=2");
  b.knobs("reset=1");
  Client e(b.port());
  for (int i = 0; i < 4; ++i) {
    e.send(get_request("/r"));
    r = e.read_response();
    ASSERT_TRUE(r) << e.last_error();
    EXPECT_FALSE(r->has_header("Keep-Alive"));
  }
  EXPECT_EQ(e.read_until_close(Ms(200)), ReadEnd::Timeout);

  std::string why;
  auto bad = round_trip(b.port(), get_request("/_knobs?keep_alive_max=-1", "Connection: close\r\n"),
                        Ms(3000), &why);
  ASSERT_TRUE(bad) << why;
  EXPECT_EQ(bad->status, 400);
}

}  // namespace
}  // namespace bgtest
