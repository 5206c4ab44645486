// split_own_response_head / split_own_request_head: the heads bgproxy's writers make, read back
// on the way to HTTP/2 without a second parse. Each head here is written by head_writer.cpp (or
// H1Request), and the split must agree with Beast's strict parser on the start line, every field
// and the body framing.
#include "proxy/h2/own_head.hpp"

#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <gtest/gtest.h>

#include "proxy/http/head_parser.hpp"
#include "proxy/http/head_writer.hpp"

namespace bgproxy::proxy {
namespace {

namespace http = boost::beast::http;

ResponseHead backend_head(unsigned status, std::string_view reason) {
  ResponseHead res;
  res.set_status_line(status, reason, 11);
  return res;
}

void add(ResponseHead& res, std::string_view name, std::string_view value) {
  res.add(http::string_to_field(name), name, value);
}

/// Splits the head `bytes` (a request head when isRequest, else an answer's) and parses it with
/// Beast's HeadParser; both must take the same start line, fields and framing.
template <bool isRequest>
void expect_same_head_as_beast(const std::string& bytes) {
  ParsedHead split_head;
  const auto split = isRequest ? split_own_request_head(bytes, split_head) : split_own_response_head(bytes, split_head);
  ParsedHead parsed_head;
  HeadParser<isRequest> parser(parsed_head);
  parser.eager(false);
  boost::beast::error_code ec;
  const auto n = parser.parse(boost::asio::buffer(bytes), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_FALSE(split.malformed);
  EXPECT_EQ(split.size, n);
  if constexpr (isRequest) {
    EXPECT_EQ(split_head.method(), parsed_head.method());
    EXPECT_EQ(split_head.method_string(), parsed_head.method_string());
    EXPECT_EQ(split_head.target(), parsed_head.target());
    EXPECT_EQ(split_head.version(), parsed_head.version());
  } else {
    EXPECT_EQ(split_head.result_int(), parsed_head.result_int());
    EXPECT_EQ(split_head.reason(), parsed_head.reason());
  }
  ASSERT_EQ(split_head.size(), parsed_head.size());
  for (auto a = split_head.begin(), b = parsed_head.begin(); a != split_head.end(); ++a, ++b) {
    EXPECT_EQ(a->name(), b->name());
    EXPECT_EQ(a->name_string(), b->name_string());
    EXPECT_EQ(a->value(), b->value());
  }
  EXPECT_EQ(split.chunked, parser.chunked());
  EXPECT_EQ(split.content_length.has_value(), parser.content_length().has_value());
  if (split.content_length && parser.content_length()) {
    EXPECT_EQ(*split.content_length, *parser.content_length());
  }
}

void expect_same_as_beast(const std::string& bytes) { expect_same_head_as_beast<false>(bytes); }
void expect_same_request_as_beast(const std::string& bytes) { expect_same_head_as_beast<true>(bytes); }

TEST(OwnHead, ForwardedAnswerWithLengthMatchesBeast) {
  auto res = backend_head(200, "OK");
  add(res, "Content-Type", "text/html; charset=utf-8");
  add(res, "Content-Length", "1234");
  add(res, "Set-Cookie", "a=b; Path=/; HttpOnly");
  add(res, "X-Empty", "");
  add(res, "X-Custom", "v\tw");
  std::string out;
  ResponseFraming framing;
  framing.body.content_length = 1234;
  write_response_head(out, res, framing, "X-Bg-Color: blue\r\nSet-Cookie: bg_id=1\r\n");
  expect_same_as_beast(out);
}

TEST(OwnHead, ChunkedAnswerMatchesBeast) {
  auto res = backend_head(201, "Created");
  add(res, "Transfer-Encoding", "chunked");
  add(res, "Trailer", "grpc-status");
  std::string out;
  ResponseFraming framing;
  framing.body.chunked = true;
  framing.keep_alive = false;
  write_response_head(out, res, framing, {});
  expect_same_as_beast(out);
  ParsedHead head;
  EXPECT_TRUE(split_own_response_head(out, head).chunked);
}

TEST(OwnHead, UnknownStatusWithoutReasonAndAnswerWithoutFramingMatchBeast) {
  std::string out;
  write_response_head(out, backend_head(299, ""), ResponseFraming{}, {});
  expect_same_as_beast(out);
  ParsedHead head;
  const auto split = split_own_response_head(out, head);
  EXPECT_FALSE(split.chunked);
  EXPECT_FALSE(split.content_length.has_value());  // framed by the connection's end
}

TEST(OwnHead, LocalAndGrpcAnswersMatchBeast) {
  for (const unsigned status : {400u, 404u, 502u, 503u, 504u}) {
    std::string out;
    write_local_response(out, status, status != 400, "X-Bg-Color: green\r\n");
    expect_same_as_beast(out.substr(0, out.find("\r\n\r\n") + 4));
    std::string grpc;
    write_grpc_error(grpc, status, true);
    expect_same_as_beast(grpc);
  }
}

TEST(OwnHead, AHeadNotAllThereYetAsksForMoreAtEveryByte) {
  std::string out;
  ResponseFraming framing;
  framing.body.content_length = 2;
  auto res = backend_head(200, "OK");
  add(res, "X-Backend", "b1");
  write_response_head(out, res, framing, {});
  for (std::size_t cut = 0; cut < out.size(); ++cut) {
    ParsedHead head;
    const auto split = split_own_response_head(std::string_view(out).substr(0, cut), head);
    EXPECT_EQ(split.size, 0u) << cut;
    EXPECT_FALSE(split.malformed) << cut;
  }
  ParsedHead head;
  EXPECT_EQ(split_own_response_head(out + "hi", head).size, out.size());  // the payload is not the head's
}

TEST(OwnHead, BytesNoWriterMakesAreMalformed) {
  for (const std::string_view bad : {"HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 20x OK\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
                                     "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\n: v\r\n\r\n",
                                     "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"}) {
    ParsedHead head;
    EXPECT_TRUE(split_own_response_head(bad, head).malformed) << bad;
  }
}

RequestHead client_request(http::verb verb, std::string_view method, std::string_view target) {
  RequestHead req;
  req.set_request_line(verb, method, target, 11);
  return req;
}

TEST(OwnHead, ForwardedRequestsMatchBeast) {
  const ForwardedFor fwd{"10.0.0.1", "http", "app.example", {}};
  {
    auto req = client_request(http::verb::get, "GET", "/a?b=1");
    req.add(http::field::host, "Host", "app.example");
    req.add(http::field::user_agent, "User-Agent", "h2load nghttp2/1.52.0");
    req.add(http::field::cookie, "Cookie", "a=1; bg_id=5f3a");
    req.add(http::field::unknown, "X-Empty", "");
    std::string out;
    write_request_head(out, req, "/a?b=1", fwd, RequestForwarding{});
    expect_same_request_as_beast(out);
  }
  {
    auto req = client_request(http::verb::post, "POST", "/up");
    req.add(http::field::host, "Host", "app.example");
    req.add(http::field::content_length, "Content-Length", "5");
    RequestForwarding how;
    how.body.content_length = 5;
    std::string out;
    write_request_head(out, req, "/up", fwd, how);
    expect_same_request_as_beast(out);
  }
  {
    auto req = client_request(http::verb::unknown, "PURGE", "/cache");
    req.add(http::field::host, "Host", "app.example");
    RequestForwarding how;
    how.body.chunked = true;
    std::string out;
    write_request_head(out, req, "/cache", fwd, how);
    expect_same_request_as_beast(out);
    ParsedHead head;
    EXPECT_TRUE(split_own_request_head(out, head).chunked);
  }
}

TEST(OwnHead, RequestLinesNoWriterMakesAreMalformed) {
  for (const std::string_view bad : {"GET /\r\n\r\n", " / HTTP/1.1\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
                                     "GET / HTTP/2\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"}) {
    ParsedHead head;
    EXPECT_TRUE(split_own_request_head(bad, head).malformed) << bad;
  }
}

}  // namespace
}  // namespace bgproxy::proxy
