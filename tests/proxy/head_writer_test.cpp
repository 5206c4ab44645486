#include "proxy/http/head_writer.hpp"
#include "proxy/http/head_parser.hpp"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

namespace http = boost::beast::http;
using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Heads as the session's parser leaves them: views into bytes that outlive them (literals here).
RequestHead make_request(http::verb verb, std::string_view target, unsigned version, Fields fields) {
  RequestHead req;
  req.set_request_line(verb, http::to_string(verb), target, version);
  for (const auto& [name, value] : fields) req.add(http::string_to_field(name), name, value);
  return req;
}

ResponseHead make_response(unsigned status, unsigned version, Fields fields, std::string_view reason = {}) {
  ResponseHead res;
  res.set_status_line(status, reason, version);
  for (const auto& [name, value] : fields) res.add(http::string_to_field(name), name, value);
  return res;
}

const ForwardedFor fwd{"10.0.0.1", "http", "a.example", {}};

/// The framing a session derives from its parse: chunked, else the Content-Length the message has.
BodyHeader parsed_body(const ParsedHead& msg, bool chunked) {
  BodyHeader body;
  body.chunked = chunked;
  if (const auto cl = msg.find(http::field::content_length); !chunked && cl != msg.end()) {
    body.content_length = std::stoull(std::string(cl->value()));
  }
  return body;
}

std::string request_bytes(const RequestHead& req, std::string_view target = "/x", bool chunked = false,
                          bool upgrade = false, std::string_view strip = {},
                          const ForwardedFor& f = fwd, std::string_view sticky = {}) {
  std::string out;
  RequestForwarding how;
  how.body = parsed_body(req, chunked);
  how.upgrade = upgrade;
  how.strip = strip;
  how.sticky = sticky;
  write_request_head(out, req, target, f, how);
  return out;
}

constexpr std::string_view added_tail =
    "X-Forwarded-For: 10.0.0.1\r\n"
    "X-Forwarded-Proto: http\r\n"
    "X-Forwarded-Host: a.example\r\n"
    "Via: 1.1 bgproxy\r\n"
    "\r\n";

// ------------------------------------------------------------------ request head

TEST(HeadWriter, RequestBasic) {
  const auto req = make_request(http::verb::get, "/x", 11, {{"Host", "a.example"}, {"Accept", "*/*"}, {"User-Agent", "t/1"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "Accept: */*\r\n"
            "User-Agent: t/1\r\n" + std::string(added_tail));
}

TEST(HeadWriter, RequestAppendsToOutAndUsesTheGivenTarget) {
  auto req = make_request(http::verb::post, "http://a.example/up?x=1", 11, {{"Host", "a.example"}, {"Content-Length", "3"}});
  std::string out = "previous";
  RequestForwarding how;
  how.body.content_length = 3;
  write_request_head(out, req, "/up?x=1", fwd, how);
  EXPECT_EQ(out,
            "previousPOST /up?x=1 HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "Content-Length: 3\r\n" + std::string(added_tail));
}

TEST(HeadWriter, RequestCustomMethod) {
  auto req = make_request(http::verb::get, "/", 11, {{"Host", "h"}});
  req.set_request_line(http::verb::unknown, "PURGE", "/", 11);
  EXPECT_EQ(request_bytes(req, "/").substr(0, 17), "PURGE / HTTP/1.1\r");
}

TEST(HeadWriter, RequestHopByHopFieldsRemoved) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Connection", "keep-alive"},
                                 {"Host", "a.example"},
                                 {"Keep-Alive", "timeout=5"},
                                 {"Proxy-Connection", "keep-alive"},
                                 {"TE", "trailers"},
                                 {"Trailer", "X-Sum"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"Upgrade", "h2c"},
                                 {"X-End", "1"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-End: 1\r\n" + std::string(added_tail));
}

TEST(HeadWriter, RequestFieldsNamedInConnectionRemoved) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Host", "a.example"},
                                 {"Connection", "close, X-Secret ,x-other-hop"},
                                 {"x-secret", "1"},
                                 {"X-Other-Hop", "2"},
                                 {"X-Secret-Not", "3"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Secret-Not: 3\r\n" + std::string(added_tail));
}

TEST(HeadWriter, RequestExpectRemoved) {
  const auto req = make_request(http::verb::put, "/x", 11,
                                {{"Host", "a.example"}, {"Expect", "100-continue"}, {"Content-Length", "5"}});
  EXPECT_EQ(request_bytes(req),
            "PUT /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "Content-Length: 5\r\n" + std::string(added_tail));
}

TEST(HeadWriter, RequestStripHeaderRemovedCaseInsensitively) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Host", "a.example"}, {"x-bg-color", "green"}, {"X-BG-Color-2", "blue"}});
  EXPECT_EQ(request_bytes(req, "/x", false, false, "X-Bg-Color"),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-BG-Color-2: blue\r\n" + std::string(added_tail));
}

TEST(HeadWriter, RequestXffAppendedToOneExisting) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"X-Forwarded-For", "192.0.2.7"}, {"Host", "a.example"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Forwarded-For: 192.0.2.7, 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.1 bgproxy\r\n"
            "\r\n");
}

TEST(HeadWriter, RequestSeveralXffCombinedIntoOneLine) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"X-Forwarded-For", "192.0.2.7"},
                                 {"Host", "a.example"},
                                 {"x-forwarded-for", "198.51.100.1, 198.51.100.2"},
                                 {"X-FORWARDED-FOR", "203.0.113.9"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Forwarded-For: 192.0.2.7, 198.51.100.1, 198.51.100.2, 203.0.113.9, 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.1 bgproxy\r\n"
            "\r\n");
}

TEST(HeadWriter, RequestIncomingForwardedProtoAndHostReplaced) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Host", "a.example"},
                                 {"X-Forwarded-Proto", "https"},
                                 {"x-forwarded-host", "evil.example"},
                                 {"X-Forwarded-Proto", "ftp"}});
  const ForwardedFor tls{"2001:db8::1", "https", "a.example:8443", {}};
  EXPECT_EQ(request_bytes(req, "/x", false, false, {}, tls),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Forwarded-For: 2001:db8::1\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: a.example:8443\r\n"
            "Via: 1.1 bgproxy\r\n"
            "\r\n");
}

TEST(HeadWriter, RequestNoForwardedHostWithoutHost) {
  const auto req = make_request(http::verb::get, "/x", 10, {{"X-Forwarded-Host", "evil"}});
  const ForwardedFor no_host{"10.0.0.1", "http", "", {}};
  EXPECT_EQ(request_bytes(req, "/x", false, false, {}, no_host),
            "GET /x HTTP/1.1\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "Via: 1.0 bgproxy\r\n"
            "\r\n");
}

TEST(HeadWriter, RequestViaAppended) {
  auto req = make_request(http::verb::get, "/x", 11, {{"Host", "a.example"}, {"Via", "1.0 fred"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.0 fred, 1.1 bgproxy\r\n"
            "\r\n");
}

TEST(HeadWriter, RequestSeveralViaCombined) {
  auto req = make_request(http::verb::get, "/x", 11,
                          {{"via", "1.0 fred"}, {"Host", "a.example"}, {"Via", "1.1 p.example (Proxy)"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.0 fred, 1.1 p.example (Proxy), 1.1 bgproxy\r\n"
            "\r\n");
}

TEST(HeadWriter, RequestFromHttp10ClientIsSentAsHttp11WithVia10) {
  auto req = make_request(http::verb::get, "/x", 10, {{"Host", "a.example"}, {"Connection", "keep-alive"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.0 bgproxy\r\n"
            "\r\n");
}

TEST(HeadWriter, RequestChunkedAddsTransferEncoding) {
  auto req = make_request(http::verb::post, "/x", 11,
                          {{"Host", "a.example"}, {"Transfer-Encoding", "gzip, chunked"}, {"Content-Type", "a/b"}});
  EXPECT_EQ(request_bytes(req, "/x", true),
            "POST /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "Content-Type: a/b\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.1 bgproxy\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
}

TEST(HeadWriter, RequestUpgradeKeepsUpgradeAndAddsConnectionUpgrade) {
  const auto req = make_request(http::verb::get, "/ws", 11,
                                {{"Host", "a.example"},
                                 {"Connection", "Upgrade"},
                                 {"Upgrade", "websocket"},
                                 {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                 {"Sec-WebSocket-Version", "13"}});
  EXPECT_EQ(request_bytes(req, "/ws", false, true),
            "GET /ws HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.1 bgproxy\r\n"
            "Upgrade: websocket\r\n"
            "Connection: upgrade\r\n"
            "\r\n");
  // Without the upgrade flag the same request loses Upgrade.
  EXPECT_EQ(request_bytes(req, "/ws"),
            "GET /ws HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n" + std::string(added_tail));
}

// Issue 11: the forwarding trail is bgproxy's to extend, not the client's to cut by naming it.
TEST(HeadWriter, Issue11XffAndViaNamedInConnectionAreKeptAndAppended) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Host", "a.example"},
                                 {"Connection", "X-Forwarded-For, via, X-Forwarded-Host"},
                                 {"X-Forwarded-For", "6.6.6.6"},
                                 {"Via", "1.1 edge"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Forwarded-For: 6.6.6.6, 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.1 edge, 1.1 bgproxy\r\n"
            "\r\n");
}

// Issue 11: `Connection: Content-Length` used to strip the length while the body still went up,
// so the backend read the body as the next request.
TEST(HeadWriter, Issue11ContentLengthNamedInConnectionIsStillWritten) {
  for (std::string_view connection : {"Content-Length", "keep-alive, content-LENGTH", " Content-Length ,keep-alive"}) {
    SCOPED_TRACE(std::string(connection));
    const auto req = make_request(http::verb::post, "/x", 11,
                                  {{"Host", "a.example"}, {"Connection", connection}, {"Content-Length", "5"}});
    EXPECT_EQ(request_bytes(req),
              "POST /x HTTP/1.1\r\n"
              "Host: a.example\r\n"
              "Content-Length: 5\r\n" + std::string(added_tail));
  }
}

TEST(HeadWriter, Issue11TransferEncodingAndHostNamedInConnectionChangeNothing) {
  const auto req = make_request(http::verb::post, "/x", 11,
                                {{"Host", "a.example"},
                                 {"Connection", "Transfer-Encoding, Host"},
                                 {"Transfer-Encoding", "chunked"}});
  EXPECT_EQ(request_bytes(req, "/x", true),
            "POST /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example\r\n"
            "Via: 1.1 bgproxy\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
}

TEST(HeadWriter, Issue11StickyHeaderNamedInConnectionIsKept) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Host", "a.example"}, {"Connection", "x-user-id, X-Other"}, {"X-User-Id", "u1"},
                                 {"X-Other", "gone"}});
  EXPECT_EQ(request_bytes(req, "/x", false, false, {}, fwd, "X-User-Id"),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "X-User-Id: u1\r\n" + std::string(added_tail));
}

TEST(HeadWriter, Issue11DuplicateIdenticalContentLengthForwardedOnce) {
  const auto req = make_request(http::verb::post, "/x", 11,
                                {{"Host", "a.example"}, {"Content-Length", "5"}, {"X-A", "1"}, {"content-length", "5"}});
  EXPECT_EQ(request_bytes(req),
            "POST /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "Content-Length: 5\r\n"
            "X-A: 1\r\n" + std::string(added_tail));
}

TEST(HeadWriter, Issue11UpgradeOtherThanWebsocketIsNotForwarded) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Host", "a.example"},
                                 {"Connection", "Upgrade, HTTP2-Settings"},
                                 {"Upgrade", "h2c"},
                                 {"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"}});
  EXPECT_EQ(request_bytes(req), "GET /x HTTP/1.1\r\nHost: a.example\r\n" + std::string(added_tail));
}

TEST(HeadWriter, Issue11WebsocketUpgradeIsWrittenWithoutOtherOfferedProtocols) {
  const auto req = make_request(http::verb::get, "/ws", 11,
                                {{"Host", "a.example"}, {"Connection", "Upgrade"}, {"Upgrade", "websocket, h2c"}});
  const auto out = request_bytes(req, "/ws", false, true);
  EXPECT_EQ(out.find("h2c"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"), std::string::npos) << out;
}

TEST(HeadWriter, Issue11ManyNominationsStillRemoveEachNamedField) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Host", "a.example"},
                                 {"Connection", "a, b, c, d, e, f, g, h, i, j, Content-Length"},
                                 {"A", "1"}, {"J", "10"}, {"K", "11"}, {"Content-Length", "0"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n"
            "K: 11\r\n"
            "Content-Length: 0\r\n" + std::string(added_tail));
}

// RFC 9110 §5.3/§7.6.1: Connection is a list, and several Connection field
// lines are one list. Only the first line is honoured, so a field named in a
// second Connection line is forwarded to the backend.
TEST(HeadWriter, Issue2FieldNamedInSecondConnectionLineIsRemoved) {
  const auto req = make_request(http::verb::get, "/x", 11,
                                {{"Host", "a.example"},
                                 {"Connection", "keep-alive"},
                                 {"Connection", "X-Secret"},
                                 {"X-Secret", "1"}});
  EXPECT_EQ(request_bytes(req),
            "GET /x HTTP/1.1\r\n"
            "Host: a.example\r\n" + std::string(added_tail));
}

// ----------------------------------------------------------------- response head

/// As a session writes it: the framing's Content-Length comes from the parsed response.
std::string response_bytes(const ResponseHead& res, ResponseFraming framing, std::string_view extra = {}) {
  framing.body.content_length = parsed_body(res, framing.body.chunked).content_length;
  std::string out;
  write_response_head(out, res, framing, extra);
  return out;
}

TEST(HeadWriter, ResponseBasicWithObsoleteReason) {
  const auto res = make_response(200, 11, {{"Content-Type", "text/html"}, {"Content-Length", "5"}});
  EXPECT_EQ(response_bytes(res, {}),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/html\r\n"
            "Content-Length: 5\r\n"
            "\r\n");
  EXPECT_EQ(response_bytes(make_response(404, 11, {}), {}), "HTTP/1.1 404 Not Found\r\n\r\n");
}

TEST(HeadWriter, ResponseKeepsUpstreamReason) {
  const auto res = make_response(200, 11, {}, "Fine Thanks");
  EXPECT_EQ(response_bytes(res, {}), "HTTP/1.1 200 Fine Thanks\r\n\r\n");
}

TEST(HeadWriter, ResponseFromHttp10UpstreamIsHttp11) {
  const auto res = make_response(204, 10, {});
  EXPECT_EQ(response_bytes(res, {}), "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(HeadWriter, ResponseHopByHopRemoved) {
  const auto res = make_response(200, 11,
                                 {{"Connection", "keep-alive, X-Hop"},
                                  {"Keep-Alive", "timeout=5"},
                                  {"X-Hop", "1"},
                                  {"Trailer", "X-Sum"},
                                  {"Transfer-Encoding", "chunked"},
                                  {"Upgrade", "h2"},
                                  {"Proxy-Connection", "close"},
                                  {"Set-Cookie", "a=1"},
                                  {"Set-Cookie", "b=2"}});
  EXPECT_EQ(response_bytes(res, {}),
            "HTTP/1.1 200 OK\r\n"
            "Set-Cookie: a=1\r\n"
            "Set-Cookie: b=2\r\n"
            "\r\n");
}

TEST(HeadWriter, ResponseChunked) {
  const auto res = make_response(200, 11, {{"Transfer-Encoding", "chunked"}, {"Content-Type", "a/b"}});
  ResponseFraming framing;
  framing.body.chunked = true;
  EXPECT_EQ(response_bytes(res, framing),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: a/b\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
}

TEST(HeadWriter, ResponseConnectionCloseWhenNotKeepAlive) {
  const auto res = make_response(200, 11, {{"Connection", "keep-alive"}, {"Content-Length", "0"}});
  ResponseFraming framing;
  framing.keep_alive = false;
  EXPECT_EQ(response_bytes(res, framing),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "\r\n");
  framing.client_http10 = true;  // close wins over the HTTP/1.0 keep-alive
  EXPECT_EQ(response_bytes(res, framing),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(HeadWriter, ResponseKeepAliveForHttp10Client) {
  const auto res = make_response(200, 11, {{"Content-Length", "2"}});
  ResponseFraming framing;
  framing.client_http10 = true;
  EXPECT_EQ(response_bytes(res, framing),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 2\r\n"
            "Connection: keep-alive\r\n"
            "\r\n");
}

TEST(HeadWriter, ResponseUpgrade) {
  const auto res = make_response(101, 11,
                                 {{"Upgrade", "websocket"},
                                  {"Connection", "Upgrade"},
                                  {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}});
  ResponseFraming framing;
  framing.upgrade = true;
  framing.keep_alive = false;
  EXPECT_EQ(response_bytes(res, framing),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Connection: upgrade\r\n"
            "\r\n");
}

TEST(HeadWriter, ResponseExtraLinesComeLast) {
  const auto res = make_response(200, 11, {{"Content-Length", "0"}});
  ResponseFraming framing;
  framing.keep_alive = false;
  framing.body.content_length = 0;
  std::string out = "x";
  write_response_head(out, res, framing, "Set-Cookie: bg=abc; Path=/\r\nX-Bg-Color: green\r\n");
  EXPECT_EQ(out,
            "xHTTP/1.1 200 OK\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "Set-Cookie: bg=abc; Path=/\r\n"
            "X-Bg-Color: green\r\n"
            "\r\n");
}

TEST(HeadWriter, Issue2FieldNamedInSecondConnectionLineOfResponseIsRemoved) {
  const auto res = make_response(200, 11,
                                 {{"Connection", "keep-alive"}, {"Connection", "X-Internal"}, {"X-Internal", "secret"}});
  EXPECT_EQ(response_bytes(res, {}), "HTTP/1.1 200 OK\r\n\r\n");
}

// Issue 11, the response direction: a backend's Connection cannot make the client's framing
// ambiguous; duplicates become one field.
TEST(HeadWriter, Issue11ResponseContentLengthNamedInConnectionIsStillWritten) {
  const auto res = make_response(200, 11,
                                 {{"Connection", "keep-alive, Content-Length"}, {"Content-Length", "7"},
                                  {"Content-Length", "7"}, {"X-A", "1"}});
  EXPECT_EQ(response_bytes(res, {}), "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX-A: 1\r\n\r\n");
}

TEST(HeadWriter, Issue11ChunkedResponseDropsAnyContentLength) {
  const auto res = make_response(200, 11, {{"Content-Length", "7"}, {"Transfer-Encoding", "chunked"}});
  ResponseFraming framing;
  framing.body.chunked = true;
  EXPECT_EQ(response_bytes(res, framing), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
}

// An upstream status line with no reason ("HTTP/1.1 299 \r\n", valid per RFC
// 9112 §4: reason-phrase is optional) for a code Beast does not know reaches
// the client as "HTTP/1.1 299 <unknown-status>".
TEST(HeadWriter, Issue2UnknownStatusWithoutReasonKeepsEmptyReason) {
  const std::string_view upstream = "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n";
  ParsedHead head;
  ResponseHeadParser parser(head);
  parser.eager(false);
  boost::beast::error_code ec;
  parser.parse(boost::asio::buffer(upstream.data(), upstream.size()), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parser.is_header_done());
  ASSERT_EQ(head.result_int(), 299u);
  // Like Beast's header::reason(), ParsedHead::reason() never returns empty: it substitutes
  // obsolete_reason(result()), which is "<unknown-status>" for 299, and the writer leaves that out.
  EXPECT_EQ(response_bytes(head, {}), "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n");
}

// ------------------------------------------------------------- local responses

TEST(HeadWriter, LocalResponseExactBytes) {
  std::string out;
  write_local_response(out, 502, false);
  EXPECT_EQ(out,
            "HTTP/1.1 502 Bad Gateway\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 12\r\n"
            "Connection: close\r\n"
            "\r\n"
            "Bad Gateway\n");
  out.clear();
  write_local_response(out, 404, true, "Retry-After: 1\r\n");
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 10\r\n"
            "Retry-After: 1\r\n"
            "\r\n"
            "Not Found\n");
}

TEST(HeadWriter, LocalResponsesParseWithMatchingContentLength) {
  for (const unsigned status : {400u, 404u, 413u, 431u, 502u, 503u, 504u}) {
    for (const bool keep_alive : {true, false}) {
      std::string out;
      write_local_response(out, status, keep_alive);
      http::response_parser<http::string_body> parser;
      boost::beast::error_code ec;
      std::size_t used = 0;
      while (!parser.is_done() && used < out.size()) {
        const auto n = parser.put(boost::asio::buffer(out.data() + used, out.size() - used), ec);
        ASSERT_FALSE(ec) << status << ": " << ec.message();
        if (n == 0) break;
        used += n;
      }
      EXPECT_EQ(used, out.size()) << status;  // nothing beyond the declared body
      ASSERT_TRUE(parser.is_done()) << status;
      const auto& res = parser.get();
      EXPECT_EQ(res.result_int(), status);
      EXPECT_EQ(res.body(), std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\n");
      EXPECT_EQ(res.keep_alive(), keep_alive) << status;
      EXPECT_EQ(res[http::field::content_type], "text/plain");
    }
  }
}

// RFC 9110 §7.2: for an absolute-form target the proxy sends the target's
// authority as Host, replacing whatever Host the client sent.
TEST(HeadWriter, Issue2AbsoluteFormAuthorityReplacesHost) {
  const auto req = make_request(http::verb::get, "http://a.example:8080/p", 11, {{"Host", "b.example"}});
  const ForwardedFor absolute{"10.0.0.1", "http", "a.example:8080", "a.example:8080"};
  EXPECT_EQ(request_bytes(req, "/p", false, false, {}, absolute),
            "GET /p HTTP/1.1\r\n"
            "Host: a.example:8080\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.example:8080\r\n"
            "Via: 1.1 bgproxy\r\n"
            "\r\n");
}

}  // namespace
}  // namespace bgproxy::proxy
