// SPEC §10: request smuggling shapes are answered 400, the connection is closed, and nothing of
// them reaches the backend; a malformed request only costs its own connection.

#include <algorithm>

#include "harness.hpp"

namespace bgtest {
namespace {

class ProxySmuggling : public IntegrationTest {
protected:
  void SetUp() override {
    proxy_ = &start_proxy({});
    backend_ = backends_.at(0).get();
  }

  /// Sends `raw` on a fresh connection and expects: a 400 from the proxy itself, the connection
  /// closed after it, and the backend's completed-request count unchanged once a valid control
  /// request has gone through.
  void expect_400_not_forwarded(const std::string& raw) {
    SCOPED_TRACE("request: " + printable(raw));
    std::uint64_t before = backend_->stats().requests;
    {
      Client c(proxy_->port());
      (void)c.try_send(raw, Ms(3000));  // the proxy may close before reading everything
      auto r = c.read_response(Ms(3000));
      ASSERT_TRUE(r) << "no response: " << c.last_error();
      EXPECT_EQ(r->status, 400) << r->raw_head;
      EXPECT_FALSE(r->has_header("X-Backend")) << "the backend answered: " << r->raw_head << r->body;
      ReadEnd end = c.read_until_close(Ms(3000));
      EXPECT_NE(end, ReadEnd::Timeout) << "connection left open after the 400";
      EXPECT_EQ(c.buffered().find("HTTP/1.1 2"), std::string::npos)
          << "a second response followed the 400: " << printable(c.buffered());
    }
    expect_only_control_request_counted(before);
  }

  /// Sync point: a valid request is forwarded and counted; nothing else was.
  void expect_only_control_request_counted(std::uint64_t before) {
    std::string why;
    auto ok = round_trip(proxy_->port(), get_request("/control"), Ms(3000), &why);
    ASSERT_TRUE(ok) << "control request: " << why;
    EXPECT_EQ(ok->status, 200);
    EXPECT_EQ(backend_->stats().requests, before + 1)
        << "the rejected request (or bytes smuggled in it) reached the backend";
  }

  static std::string printable(const std::string& s) {
    std::string r;
    for (char c : s.substr(0, 300)) r += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : std::string(1, c);
    return r;
  }

  Proxy* proxy_ = nullptr;
  Backend* backend_ = nullptr;
};

const std::string kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n";

TEST_F(ProxySmuggling, ContentLengthAndTransferEncodingRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n" + kSmuggled);
}

TEST_F(ProxySmuggling, TransferEncodingThenContentLengthRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n"
      "0\r\n\r\n" + kSmuggled);
}

TEST_F(ProxySmuggling, DifferingDuplicateContentLengthRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
}

TEST_F(ProxySmuggling, DifferingContentLengthListRejected) {
  expect_400_not_forwarded("POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5, 6\r\n\r\nhello!");
}

TEST_F(ProxySmuggling, ContentLengthWithNonDigitsRejected) {
  for (const char* v : {"5a", "-1", "+5", "0x5", "5 5", "5.0"}) {
    SCOPED_TRACE(std::string("Content-Length: ") + v);
    expect_400_not_forwarded(std::string("POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: ") + v +
                             "\r\n\r\nhello");
  }
}

TEST_F(ProxySmuggling, BadChunkSizeRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
}

TEST_F(ProxySmuggling, OverflowingChunkSizeRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "10000000000000005\r\nhello\r\n0\r\n\r\n");
}

TEST_F(ProxySmuggling, ChunkDataLongerThanChunkSizeRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n");
}

TEST_F(ProxySmuggling, TransferEncodingChunkedThenIdentityRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
      "0\r\n\r\n" + kSmuggled);
}

TEST_F(ProxySmuggling, TransferEncodingNotEndingInChunkedRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip\r\n\r\n" + kSmuggled);
}

TEST_F(ProxySmuggling, DuplicateTransferEncodingChunkedRejected) {
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n" + kSmuggled);
}

TEST_F(ProxySmuggling, SpaceBeforeColonRejected) {
  // RFC 9112 §5.1: a server MUST reject whitespace between a field name and the colon.
  expect_400_not_forwarded(
      "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n" + kSmuggled);
}

TEST_F(ProxySmuggling, ObsFoldRejectedOrUnfolded) {
  // RFC 9112 §5.2: reject with 400, or replace the fold with SP before forwarding.
  std::uint64_t before = backend_->stats().requests;
  std::string why;
  auto r = round_trip(proxy_->port(),
                      get_request("/fold", "X-Folded: first\r\n  second\r\n"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  if (r->status == 400) {
    EXPECT_FALSE(r->has_header("X-Backend"));
    expect_only_control_request_counted(before);
    return;
  }
  ASSERT_EQ(r->status, 200) << r->raw_head;
  Echo e = parse_echo(r->body);
  auto v = e.value("X-Folded");
  ASSERT_TRUE(v) << "folded header lost";
  EXPECT_EQ(v->find_first_of("\r\n"), std::string::npos) << "fold forwarded raw";
  EXPECT_NE(v->find("first"), std::string::npos);
  EXPECT_NE(v->find("second"), std::string::npos) << "continuation line dropped: " << *v;
  for (const auto& [name, value] : e.headers)
    EXPECT_NE(name.find("second"), 0u) << "the continuation became a header of its own";
}

TEST_F(ProxySmuggling, ObsFoldedTransferEncodingNotSmuggled) {
  // "Transfer-Encoding:\r\n chunked": whichever way the proxy reads it, the backend must not see
  // a different framing than the proxy used.
  std::uint64_t before = backend_->stats().requests;
  Client c(proxy_->port());
  (void)c.try_send("POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding:\r\n chunked\r\n"
                   "Content-Length: 5\r\n\r\n0\r\n\r\n" + kSmuggled, Ms(3000));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 400) << r->raw_head;
  c.read_until_close(Ms(3000));
  expect_only_control_request_counted(before);
}

TEST_F(ProxySmuggling, BareCarriageReturnInHeaderValueRejectedOrReplaced) {
  std::uint64_t before = backend_->stats().requests;
  std::string why;
  auto r = round_trip(proxy_->port(), get_request("/cr", "X-Bad: a\rb\r\n"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  if (r->status == 400) {
    expect_only_control_request_counted(before);
    return;
  }
  ASSERT_EQ(r->status, 200) << r->raw_head;
  Echo e = parse_echo(r->body);
  auto v = e.value("X-Bad");
  if (v) {
    EXPECT_EQ(v->find('\r'), std::string::npos) << "bare CR forwarded";
  }
}

TEST_F(ProxySmuggling, MalformedRequestLineClosesOnlyThatConnection) {
  Client a(proxy_->port());
  a.send(get_request("/a1"));
  auto r = a.read_response(Ms(3000));
  ASSERT_TRUE(r) << a.last_error();
  ASSERT_EQ(r->status, 200);

  std::uint64_t before = backend_->stats().requests;
  {
    Client b(proxy_->port());
    (void)b.try_send("GET /nope HTTP/1.1 extra\r\nHost: app.test\r\n\r\n", Ms(3000));
    auto bad = b.read_response(Ms(3000));
    ASSERT_TRUE(bad) << b.last_error();
    EXPECT_EQ(bad->status, 400);
    EXPECT_NE(b.read_until_close(Ms(3000)), ReadEnd::Timeout) << "bad connection left open";
  }
  {
    Client b(proxy_->port());
    (void)b.try_send("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n", Ms(3000));
    auto bad = b.read_response(Ms(3000));
    ASSERT_TRUE(bad) << "binary garbage: " << b.last_error();
    EXPECT_EQ(bad->status, 400);
    EXPECT_NE(b.read_until_close(Ms(3000)), ReadEnd::Timeout) << "bad connection left open";
  }
  EXPECT_EQ(backend_->stats().requests, before);

  // The other keep-alive connection is untouched.
  a.send(get_request("/a2"));
  r = a.read_response(Ms(3000));
  ASSERT_TRUE(r) << "the good connection suffered: " << a.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(parse_echo(r->body).target, "/a2");
}

TEST_F(ProxySmuggling, BadRequestAfterGoodOnePipelinedAnswersGoodThen400) {
  std::uint64_t before = backend_->stats().requests;
  Client c(proxy_->port());
  (void)c.try_send(get_request("/good") +
                       "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"
                       "hello" + kSmuggled,
                   Ms(3000));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(c.read_until_close(Ms(3000)), ReadEnd::Timeout);
  EXPECT_EQ(backend_->stats().requests, before + 1) << "only /good may reach the backend";
}

TEST_F(ProxySmuggling, MissingHostRejected) {
  // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400.
  expect_400_not_forwarded("GET / HTTP/1.1\r\nX-No-Host: 1\r\n\r\n");
}

TEST_F(ProxySmuggling, DuplicateHostRejected) {
  expect_400_not_forwarded("GET / HTTP/1.1\r\nHost: app.test\r\nHost: evil.example\r\n\r\n");
}

TEST_F(ProxySmuggling, TargetNotInOriginFormRejected) {
  expect_400_not_forwarded("GET nothing-here HTTP/1.1\r\nHost: app.test\r\n\r\n");
}

}  // namespace
}  // namespace bgtest
