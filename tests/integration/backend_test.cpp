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

}  // namespace
}  // namespace bgtest
