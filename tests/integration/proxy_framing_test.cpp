// Message framing through the proxy: chunked in both directions, EOF-delimited upstream bodies,
// an upstream dying mid-body, Expect: 100-continue.

#include "harness.hpp"

namespace bgtest {
namespace {

class ProxyFraming : public IntegrationTest {};

TEST_F(ProxyFraming, ChunkedResponseOneByteChunksOneByteWritesRelayedIntact) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/?body_bytes=3000&chunked=1&chunk_bytes=1&write_bytes=1"));
  auto r = c.read_response(Ms(10000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), 3000u);
  EXPECT_EQ(r->body, pattern_bytes(0, 3000));
  // Still usable afterwards: the terminating chunk was relayed and consumed exactly.
  c.send(get_request("/after"));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << "request after the chunked response: " << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/after");
}

TEST_F(ProxyFraming, ChunkedRequestBodyRelayed) {
  Proxy& p = start_proxy({});
  std::string body = pattern_bytes(0, 5 + 10 + 0xFFFF + 1 + 0x1388);
  std::string req =
      "POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\n" + body.substr(0, 5) + "\r\n"
      "a;name=value\r\n" + body.substr(5, 10) + "\r\n"
      "FFFF\r\n" + body.substr(15, 0xFFFF) + "\r\n"
      "1\r\n" + body.substr(15 + 0xFFFF, 1) + "\r\n" +
      "1388\r\n" + body.substr(16 + 0xFFFF, 0x1388) + "\r\n" +
      "0\r\n\r\n";
  Client c(p.port());
  // Sent in small pieces so the proxy sees chunk boundaries split across reads.
  for (std::size_t off = 0; off < req.size(); off += 997) c.send(std::string_view(req).substr(off, 997));
  auto r = c.read_response(Ms(5000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 200);
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.body_bytes, body.size());
  EXPECT_EQ(e.body_fnv1a, fnv1a_hex(body));
  c.send(get_request("/after"));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << "request after the chunked upload: " << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/after");
}

TEST_F(ProxyFraming, ChunkedRequestBodyWithTrailerRelayed) {
  Proxy& p = start_proxy({});
  std::string req =
      "POST /t HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n" + get_request("/after");
  Client c(p.port());
  c.send(req);
  auto r = c.read_response(Ms(5000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 200);
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.body_bytes, 3u);
  EXPECT_EQ(e.body_fnv1a, fnv1a_hex("abc"));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << "pipelined request after the trailer: " << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/after");
}

TEST_F(ProxyFraming, EofDelimitedUpstreamBodyDelivered) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/?body_bytes=300000&no_length=1"));
  auto r = c.read_response(Ms(5000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), 300000u);
  EXPECT_EQ(r->body, pattern_bytes(0, 300000));
  if (r->close_delimited) {
    EXPECT_EQ(c.read_until_close(Ms(3000)), ReadEnd::Eof);
  } else {
    // Re-framed (chunked): the client connection stays usable.
    c.send(get_request("/after"));
    auto r2 = c.read_response(Ms(3000));
    ASSERT_TRUE(r2) << c.last_error();
    EXPECT_EQ(r2->status, 200);
  }
}

TEST_F(ProxyFraming, UpstreamClosingMidBodyClosesClientConnection) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/?body_bytes=200000&close_mid=1"));
  auto start = Clock::now();
  ReadEnd end = c.read_until_close(Ms(5000));
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - start);
  EXPECT_NE(end, ReadEnd::Timeout) << "client left hanging after the upstream died mid-body ("
                                    << c.buffered().size() << " bytes received)";
  EXPECT_LT(took.count(), 5000);
  ResponseParser parser;
  parser.feed(c.buffered());
  parser.feed_eof();
  EXPECT_FALSE(parser.done()) << "a truncated body was presented to the client as complete";
  if (parser.response().status != 0) {
    EXPECT_EQ(parser.response().status, 200);
    EXPECT_LT(parser.response().body.size(), 200000u);
  }
  // Other requests are unaffected.
  std::string why;
  auto r = round_trip(p.port(), get_request("/"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);
}

TEST_F(ProxyFraming, Expect100ContinueUpload) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  std::string body = pattern_bytes(0, 100000);
  c.send("POST /expect HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000\r\n"
         "Expect: 100-continue\r\n\r\n");
  auto interim = c.read_response(Ms(3000));
  ASSERT_TRUE(interim) << "no 100 Continue: " << c.last_error();
  ASSERT_EQ(interim->status, 100) << interim->raw_head;
  c.send(body);
  auto r = c.read_response(Ms(5000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 200);
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.body_bytes, 100000u);
  EXPECT_EQ(e.body_fnv1a, fnv1a_hex(body));
}

TEST_F(ProxyFraming, ContentLengthRequestBodyNotOverReadIntoNextRequest) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  // Body bytes that look like a request: they must stay body.
  std::string body = "GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n";
  c.send(request_with_body("POST", "/first", body) + get_request("/second"));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.target, "/first");
  EXPECT_EQ(e.body_fnv1a, fnv1a_hex(body));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/second");
  EXPECT_EQ(backends_[0]->stats().requests, 2u);
}

}  // namespace
}  // namespace bgtest
