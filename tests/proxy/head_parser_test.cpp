// Issue 14 item 5: the head parser (HeadParser, a basic_parser filling a flat ParsedHead of views)
// against Beast's own request_parser/response_parser over basic_fields, the path it replaced and
// the reference here. For every header shape the old path handled: the same start line, the same
// fields in the same order (names as received, values OWS-trimmed), the same framing verdicts
// (keep_alive, chunked, content_length, upgrade, need_eof), the same error for bad input, and the
// same forwarded bytes from the head writer; in one piece and split across two reads at every
// byte, fed the way the session feeds its flat_buffer.

#include "proxy/http/head_parser.hpp"
#include "proxy/http/head_writer.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

namespace http = boost::beast::http;
using boost::beast::error_code;

constexpr std::uint32_t session_header_limit = 16384;  // limits.max_header_bytes' default
constexpr std::uint32_t response_header_limit = 64 * 1024;  // ClientSession::upstream_header_limit
constexpr std::size_t read_chunk = 16 * 1024;                // ClientSession::read_chunk

/// Everything the proxy reads off a parsed head, owned, rendered as text so a mismatch reads as
/// a diff.
struct Outcome {
  std::string ec;
  std::size_t consumed = 0;
  bool header_done = false;
  std::string start_line;
  std::vector<std::string> fields;  // "<id>|<name>|<value>"
  std::string framing;
  std::string forwarded;  // the head writer's output for the head

  std::string text() const {
    std::ostringstream os;
    // Bytes consumed only count once the head is done: HeadParser consumes nothing before.
    os << "ec=" << ec << " consumed=" << (header_done ? consumed : 0) << " header_done=" << header_done << "\n"
       << "start: " << start_line << "\n";
    for (const auto& f : fields) os << "field: " << f << "\n";
    os << "framing: " << framing << "\n"
       << "forwarded:\n" << forwarded;
    return os.str();
  }
};

/// "" when equal, else the first line where `ours` and `beast` differ (shortened): the texts of
/// long heads are too long for a readable gtest diff.
std::string first_difference(const std::string& ours, const std::string& beast) {
  if (ours == beast) return {};
  std::istringstream a(ours), b(beast);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool more_a = static_cast<bool>(std::getline(a, la)), more_b = static_cast<bool>(std::getline(b, lb));
    if (!more_a && !more_b) return "differ in line ends";
    if (la != lb || more_a != more_b) {
      const auto cut = [](const std::string& t) { return t.size() > 160 ? t.substr(0, 160) + "..." : t; };
      return "line " + std::to_string(line) + ":\n  HeadParser: " + (more_a ? cut(la) : "<end>") +
             "\n  Beast:      " + (more_b ? cut(lb) : "<end>");
    }
  }
}

struct Options {
  std::uint32_t header_limit = session_header_limit;
  bool skip = false;  // a response to HEAD
};

template <bool isRequest>
std::uint32_t default_limit() {
  return isRequest ? session_header_limit : response_header_limit;
}

template <class Parser>
void configure(Parser& p, const Options& o) {
  p.header_limit(o.header_limit);
  p.body_limit(boost::none);
  p.eager(false);
  if (o.skip) p.skip(true);
}

std::string field_text(http::field id, std::string_view name, std::string_view value) {
  std::string s = std::to_string(static_cast<int>(id));
  s.append("|").append(name).append("|").append(value);
  return s;
}

template <class Parser>
std::string framing_text(const Parser& p) {
  if (!p.is_header_done()) return {};
  std::ostringstream os;
  os << "keep_alive=" << p.keep_alive() << " chunked=" << p.chunked() << " upgrade=" << p.upgrade()
     << " need_eof=" << p.need_eof() << " content_length=";
  if (const auto cl = p.content_length()) os << *cl;
  else os << "none";
  return os.str();
}

/// The head writer's output, with the framing a session derives from its parser.
template <bool isRequest, class Parser>
std::string forwarded_bytes(const ParsedHead& head, const Parser& p) {
  BodyHeader body;
  body.chunked = p.chunked();
  if (const auto cl = p.content_length(); cl && !body.chunked) body.content_length = *cl;
  std::string out;
  if constexpr (isRequest) {
    RequestForwarding how;
    how.body = body;
    how.upgrade = p.upgrade();
    write_request_head(out, head, head.target(), ForwardedFor{"10.0.0.1", "http", head[http::field::host], {}}, how);
  } else {
    ResponseFraming framing;
    framing.body = body;
    framing.keep_alive = p.keep_alive();
    framing.upgrade = p.upgrade();
    write_response_head(out, head, framing, {});
  }
  return out;
}

std::string request_line(const ParsedHead& h) {
  return std::to_string(static_cast<int>(h.method())) + "|" + std::string(h.method_string()) + "|" +
         std::string(h.target()) + "|" + std::to_string(h.version());
}

std::string status_line(const ParsedHead& h) {
  return std::to_string(h.result_int()) + "|" + std::string(h.reason()) + "|" + std::to_string(h.version());
}

/// A ParsedHead over the reference message (views into its basic_fields), for the head writer.
template <bool isRequest>
ParsedHead head_of(const http::message<isRequest, http::empty_body>& m) {
  ParsedHead h;
  if constexpr (isRequest) {
    h.set_request_line(m.method(), m.method_string(), m.target(), m.version());
  } else {
    h.set_status_line(m.result_int(), m.reason(), m.version());
  }
  for (const auto& f : m) h.add(f.name(), f.name_string(), f.value());
  return h;
}

/// Fills `o` from the reference parser once its head is done.
template <bool isRequest>
void describe_reference(Outcome& o, const http::parser<isRequest, http::empty_body>& p) {
  o.header_done = p.is_header_done();
  if (!o.header_done) return;
  const auto head = head_of<isRequest>(p.get());
  o.start_line = isRequest ? request_line(head) : status_line(head);
  for (const auto& f : p.get()) o.fields.push_back(field_text(f.name(), f.name_string(), f.value()));
  o.framing = framing_text(p);
  o.forwarded = forwarded_bytes<isRequest>(head, p);
}

/// `h` with its repeated fields moved next to the first of their name (names compared in any
/// case), the order basic_fields::insert gives them ("after the last field with the same name").
/// ParsedHead keeps arrival order instead: see RepeatedFieldsKeepArrivalOrder below.
template <bool isRequest>
ParsedHead grouped_like_basic_fields(const ParsedHead& h) {
  ParsedHead g;
  if constexpr (isRequest) {
    g.set_request_line(h.method(), h.method_string(), h.target(), h.version());
  } else {
    g.set_status_line(h.result_int(), h.reason(), h.version());
  }
  for (auto it = h.begin(); it != h.end(); ++it) {
    const auto same_name = [&](const HeadField& f) { return boost::beast::iequals(f.name_string(), it->name_string()); };
    if (std::any_of(h.begin(), it, same_name)) continue;
    for (auto jt = it; jt != h.end(); ++jt) {
      if (same_name(*jt)) g.add(jt->name(), jt->name_string(), jt->value());
    }
  }
  return g;
}

/// Fills `o` from HeadParser's ParsedHead once its head is done. Every view must point into
/// `bytes`, the buffer the completing put() was given (the session relies on it); one that does
/// not is reported, never read (it may point into freed memory or a dead stack frame).
template <bool isRequest>
void describe_ours(Outcome& o, const HeadParser<isRequest>& p, const ParsedHead& arrived, std::string_view bytes) {
  o.header_done = p.is_header_done();
  if (!o.header_done) return;
  const std::less<const char*> before;
  const auto inside = [&](std::string_view v) {
    return v.empty() || (!before(v.data(), bytes.data()) && !before(bytes.data() + bytes.size(), v.data() + v.size()));
  };
  constexpr std::string_view outside = "<view outside the parsed bytes>";
  const auto safe = [&](std::string_view v) { return inside(v) ? v : outside; };
  bool all_inside = inside(arrived.method_string()) && inside(arrived.target());
  const auto head = grouped_like_basic_fields<isRequest>(arrived);
  if constexpr (isRequest) {
    o.start_line = std::to_string(static_cast<int>(head.method())) + "|" + std::string(safe(head.method_string())) + "|" +
                   std::string(safe(head.target())) + "|" + std::to_string(head.version());
  } else {
    o.start_line = status_line(head);
  }
  for (const auto& f : head) {
    o.fields.push_back(field_text(f.name(), safe(f.name_string()), safe(f.value())));
    all_inside = all_inside && inside(f.name_string()) && inside(f.value());
  }
  o.framing = framing_text(p);
  o.forwarded = all_inside ? forwarded_bytes<isRequest>(head, p) : std::string("<not written: ") + std::string(outside) + ">";
}

template <bool isRequest>
Outcome reference_one_piece(std::string_view bytes, const Options& opt) {
  http::parser<isRequest, http::empty_body> p;
  configure(p, opt);
  error_code ec;
  Outcome o;
  o.consumed = p.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  o.ec = ec.message();
  describe_reference(o, p);
  return o;
}

template <bool isRequest>
Outcome ours_one_piece(std::string_view bytes, const Options& opt) {
  ParsedHead head;
  HeadParser<isRequest> p(head);
  configure(p, opt);
  error_code ec;
  Outcome o;
  o.consumed = p.parse(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  o.ec = ec.message();
  describe_ours(o, p, head, bytes);
  return o;
}

/// Two reads, as the session gets them (parse_head / parse_response_head): after each read a
/// fresh parser parses everything received, and nothing is consumed until the head is done.
template <bool isRequest>
Outcome ours_split(std::string_view bytes, std::size_t at, const Options& opt) {
  boost::beast::flat_buffer buffer;
  ParsedHead head;
  std::optional<HeadParser<isRequest>> p;
  Outcome o;
  const std::string_view pieces[] = {bytes.substr(0, at), bytes.substr(at)};
  for (const auto piece : pieces) {
    if (piece.empty()) continue;
    const auto mb = buffer.prepare(read_chunk);  // as read_head_more()
    std::memcpy(mb.data(), piece.data(), piece.size());
    buffer.commit(piece.size());
    p.emplace(head);
    configure(*p, opt);
    error_code ec;
    const auto data = buffer.data();
    const std::string_view parsed(static_cast<const char*>(data.data()), data.size());
    const auto n = p->parse(data, ec);
    o.ec = ec.message();
    if (n != 0) {
      o.consumed = n;
      describe_ours(o, *p, head, parsed);
      buffer.consume(n);
      break;
    }
    if (ec != http::error::need_more) break;
  }
  return o;
}

/// One piece: HeadParser agrees with Beast's parser. @return the reference outcome.
template <bool isRequest>
Outcome expect_same(std::string_view bytes, Options opt = {}) {
  if (opt.header_limit == session_header_limit) opt.header_limit = default_limit<isRequest>();
  const auto ref = reference_one_piece<isRequest>(bytes, opt);
  const auto ours = ours_one_piece<isRequest>(bytes, opt);
  EXPECT_EQ(first_difference(ours.text(), ref.text()), "") << "input: " << bytes.substr(0, 300);
  return ref;
}

/// Every split into two reads: HeadParser, fed as the session feeds it, ends exactly where the
/// one-piece parse ends (which expect_same() compares with Beast's parser). Failing splits are
/// counted and summarized (the first one in full), so a failure says which part of the head is
/// affected.
template <bool isRequest>
void expect_same_split(std::string_view bytes, Options opt = {}) {
  if (opt.header_limit == session_header_limit) opt.header_limit = default_limit<isRequest>();
  const auto whole = ours_one_piece<isRequest>(bytes, opt);
  std::vector<std::size_t> failed;
  std::string first;
  for (std::size_t at = 1; at < bytes.size(); ++at) {
    const auto ours = ours_split<isRequest>(bytes, at, opt);
    const auto why = first_difference(ours.text(), whole.text());
    if (why.empty()) continue;
    failed.push_back(at);
    if (first.empty()) first = "split at " + std::to_string(at) + ": vs one piece, " + why;
  }
  if (failed.empty()) return;
  std::string where;
  for (std::size_t i = 0; i < failed.size() && i < 12; ++i) where += std::to_string(failed[i]) + " ";
  const auto line_end = bytes.find("\r\n");
  ADD_FAILURE() << failed.size() << " of " << bytes.size() - 1 << " splits differ (the start line ends at byte "
                << (line_end == std::string_view::npos ? 0 : line_end + 2) << "; failing splits: " << where
                << (failed.size() > 12 ? "..." : "") << ")\n"
                << first << "\ninput: " << bytes.substr(0, 300);
}

std::string ec_text(http::error e) { return http::make_error_code(e).message(); }
const std::string ok = error_code{}.message();

// ------------------------------------------------------------------ request shapes

/// Heads the proxy accepts; a body or the next pipelined request may follow (eager(false) stops
/// at the end of the head).
const std::vector<std::string> good_requests = {
    "GET / HTTP/1.1\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n",
    // empty values, with and without whitespace after the colon
    "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Empty:\r\nX-Blank: \r\nX-Tabs:\t \t\r\nAccept:\r\n\r\n",
    // repeated fields, kept apart and in order
    "GET /x HTTP/1.1\r\nHost: a.example\r\nCookie: a=1\r\nAccept: */*\r\nCookie: b=2; c=3\r\n\r\n",
    "GET /x HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a.example\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0\r\n\r\n",
    // OWS around values: trimmed; inner whitespace kept
    "GET /x HTTP/1.1\r\nHost:   a.example \t\r\nX-A:\tv\r\nX-B: \t v  w \t \r\nX-C:v\r\n\r\n",
    // unknown and mixed-case names, as received
    "GET /x HTTP/1.1\r\nhOsT: a.example\r\nX-Custom-Thing: 1\r\nfoo_bar: 2\r\nX-~!#$%&'*+-.^_`|: 3\r\n"
    "CONTENT-LENGTH: 0\r\ncontent-type: text/plain\r\nuSeR-aGeNt: t/1\r\n\r\n",
    // obs-text in a value
    "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Latin: caf\xc3\xa9 \x80\xff\r\n\r\n",
    // versions and connection management
    "GET /x HTTP/1.0\r\nHost: a.example\r\n\r\n",
    "GET /x HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nConnection: TE\r\nTE: trailers\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a.example\r\nProxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
    // absolute-form and other targets
    "GET http://a.example:8080/p?q=1#f HTTP/1.1\r\nHost: b.example\r\n\r\n",
    "GET https://a.example/ HTTP/1.0\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n",
    "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
    "GET /a%20b/../c?x=%2F&y=[1] HTTP/1.1\r\nHost: a.example\r\n\r\n",
    // methods, known and not
    "HEAD /x HTTP/1.1\r\nHost: a.example\r\n\r\n",
    "DELETE /x HTTP/1.1\r\nHost: a.example\r\n\r\n",
    "PURGE /x HTTP/1.1\r\nHost: a.example\r\n\r\n",
    "FROBNICATE /x HTTP/1.1\r\nHost: a.example\r\n\r\n",
    // framing: chunked, upgrade, expect
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTRANSFER-ENCODING: Chunked\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "GET /ws HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: "
    "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "GET /x HTTP/1.1\r\nHost: a.example\r\nUpgrade: h2c\r\n\r\n",
    // forwarded fields the writer rewrites
    "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nVia: 1.0 a\r\nVia: 1.1 b\r\n\r\n",
};

/// Framing Beast's parser lets through and the session judges (body_framing, the smuggling rules):
/// the same verdicts (chunked, content_length, keep_alive) from both parsers.
const std::vector<std::string> odd_framing_requests = {
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip\r\n\r\n",
    "POST /x HTTP/1.0\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5, 5\r\n\r\n",
};

/// Heads Beast's parser refuses (the session answers 400/431): the same error from both parsers.
const std::vector<std::string> bad_requests = {
    // chunked and Content-Length together
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    // bad chunked Transfer-Encoding
    "POST /x HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    // Content-Length values
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: -1\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1a\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: +5\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length:\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    // field syntax
    "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",
    "GET /x HTTP/1.1\r\nBad Name : v\r\n\r\n",
    "GET /x HTTP/1.1\r\n: v\r\n\r\n",
    "GET /x HTTP/1.1\r\nNoColon\r\n\r\n",
    "GET /x HTTP/1.1\r\nX(y): v\r\n\r\n",
    "GET /x HTTP/1.1\r\nX-A: a\x01z\r\n\r\n",
    "GET /x HTTP/1.1\r\nX-A: a\x7fz\r\n\r\n",
    "GET /x HTTP/1.1\r\nX-A: a\rz\r\n\r\n",
    "GET /x HTTP/1.1\r\nX-A: v\nX-B: w\r\n\r\n",
    "GET /x HTTP/1.1\r\nX-A: v\r\n\n",
    "GET /x HTTP/1.1\r\nConnection: a b\r\n\r\n",
    // leading whitespace before the first field (obs-fold of nothing)
    "GET /x HTTP/1.1\r\n X-A: v\r\n\r\n",
    // request line
    "GET /x HTTP/1.1 \r\nHost: a\r\n\r\n",
    "GET  /x HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /x HTTP/2.0\r\nHost: a\r\n\r\n",
    "GET /x HTTP/1.10\r\nHost: a\r\n\r\n",
    "GET /x http/1.1\r\nHost: a\r\n\r\n",
    "GET /x y HTTP/1.1\r\nHost: a\r\n\r\n",
    "G@T /x HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /x HTTP/1.1\nHost: a\r\n\r\n",
    "\r\nGET /x HTTP/1.1\r\n\r\n",
};

TEST(HeadParser, GoodRequestsMatchBeastsParser) {
  for (const auto& raw : good_requests) {
    const auto ref = expect_same<true>(raw);
    EXPECT_EQ(ref.ec, ok) << raw;
    EXPECT_TRUE(ref.header_done) << raw;
  }
}

TEST(HeadParser, OddFramingMatchesBeastsParser) {
  for (const auto& raw : odd_framing_requests) {
    const auto ref = expect_same<true>(raw);
    EXPECT_EQ(ref.ec, ok) << "the reference refuses: " << raw;
  }
}

TEST(HeadParser, BadRequestsFailLikeBeastsParser) {
  for (const auto& raw : bad_requests) {
    const auto ref = expect_same<true>(raw);
    EXPECT_NE(ref.ec, ok) << "the reference accepts: " << raw;
  }
}

TEST(HeadParser, SpecificShapes) {
  // Spot checks of what the reference (and so HeadParser) yields, so the table above means what
  // it says.
  {
    ParsedHead head;
    RequestHeadParser p(head);
    configure(p, {});
    const std::string_view raw =
        "GET http://a.example/p HTTP/1.0\r\nhOsT: a.example\r\nX-Empty:\r\nCookie: a=1\r\nX-B: \t v  w \t \r\n"
        "Cookie: b=2\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc";
    error_code ec;
    const auto n = p.parse(boost::asio::buffer(raw.data(), raw.size()), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(n, raw.size() - 3);
    EXPECT_EQ(head.method(), http::verb::get);
    EXPECT_EQ(head.target(), "http://a.example/p");
    EXPECT_EQ(head.version(), 10u);
    ASSERT_EQ(head.size(), 7u);
    EXPECT_EQ(head.begin()->name_string(), "hOsT");
    EXPECT_EQ(head.begin()->name(), http::field::host);
    EXPECT_EQ(head[http::field::host], "a.example");
    EXPECT_EQ(head["x-empty"], "");
    EXPECT_NE(head.find("X-EMPTY"), head.end());
    EXPECT_EQ(head["X-B"], "v  w");
    EXPECT_EQ(head.count(http::field::cookie), 2u);
    EXPECT_EQ(head.count(http::field::content_length), 2u);
    EXPECT_FALSE(p.keep_alive());
    EXPECT_EQ(p.content_length().value_or(0), 3u);
  }
  EXPECT_EQ(expect_same<true>(bad_requests[0]).ec, ec_text(http::error::bad_transfer_encoding));
  EXPECT_EQ(expect_same<true>("GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n").ec, ec_text(http::error::bad_field));
  EXPECT_EQ(expect_same<true>("POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").ec,
            ec_text(http::error::multiple_content_length));
}

TEST(HeadParser, RequestsSplitAtEveryByteMatchOnePiece) {
  for (const auto& raw : good_requests) expect_same_split<true>(raw);
  for (const auto& raw : odd_framing_requests) expect_same_split<true>(raw);
  for (const auto& raw : bad_requests) expect_same_split<true>(raw);
}

// Beast 1.81 does not wait for the whole head on a first put(): it parses the request line and
// every complete field line at once and reports them consumed, with views into that buffer,
// which the next read may move or free. So the session parses a head whole: after each read a
// fresh parser parses everything received, and nothing is consumed before the head is done.
// Here in the session's own steps (parse_head / read_head_more), with the first read holding the
// request line and part of the fields.
TEST(HeadParser, HeadInTwoReadsKeepsItsRequestLineAndFields) {
  struct Case {
    std::string_view first, second;
  };
  for (const Case c : {Case{"GET /x HTTP/1.1\r\n", "Host: a.example\r\n\r\n"},                // buffer reused
                       Case{"GET /x HTTP/1.1\r\nHost: a.example\r\nX-A", ": 1\r\n\r\n"}}) {  // buffer moved
    boost::beast::flat_buffer buffer;
    ParsedHead head;
    std::optional<RequestHeadParser> p;
    std::vector<std::size_t> consumed;
    std::string_view last;
    for (const auto piece : {c.first, c.second}) {
      const auto mb = buffer.prepare(read_chunk);
      std::memcpy(mb.data(), piece.data(), piece.size());
      buffer.commit(piece.size());
      p.emplace(head);
      configure(*p, {});
      error_code ec;
      last = std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size());
      const auto n = p->parse(buffer.data(), ec);
      consumed.push_back(n);
      if (n == 0) {
        EXPECT_EQ(ec, http::error::need_more);
      }
    }
    ASSERT_TRUE(p->is_header_done());
    EXPECT_EQ(consumed[0], 0u) << "bytes of an incomplete head were consumed";
    const std::less<const char*> before;
    const auto inside = [&](std::string_view v) {
      return !before(v.data(), last.data()) && !before(last.data() + last.size(), v.data() + v.size());
    };
    ASSERT_TRUE(inside(head.method_string()) && inside(head.target()))
        << "the request line's views point outside the buffer of the completing parse";
    EXPECT_EQ(head.method_string(), std::string_view("GET"));
    EXPECT_EQ(head.target(), std::string_view("/x"));
    ASSERT_NE(head.find(http::field::host), head.end());
    ASSERT_TRUE(inside(head.find(http::field::host)->value()));
    EXPECT_EQ(head[http::field::host], std::string_view("a.example"));
  }
}

// A difference from the old path that is not a bug: basic_fields::insert puts a repeated field
// right after the last field of its name, so Beast's message (and the head the old path
// forwarded) grouped repeated fields; ParsedHead keeps them in arrival order, and so does the
// forwarded head now. RFC 9110 §5.3 only asks that field lines of one name keep their relative
// order, which both do. The comparisons above regroup ParsedHead (grouped_like_basic_fields) to
// compare everything else.
TEST(HeadParser, RepeatedFieldsKeepArrivalOrder) {
  const std::string raw = "GET /x HTTP/1.1\r\nHost: a.example\r\nCookie: a=1\r\nAccept: */*\r\ncookie: b=2\r\n"
                          "X-Forwarded-For: 1.1.1.1\r\nUser-Agent: t/1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n";
  ParsedHead head;
  RequestHeadParser p(head);
  configure(p, {});
  error_code ec;
  p.parse(boost::asio::buffer(raw.data(), raw.size()), ec);
  ASSERT_FALSE(ec) << ec.message();
  std::vector<std::string> names;
  for (const auto& f : head) names.emplace_back(f.name_string());
  EXPECT_EQ(names, (std::vector<std::string>{"Host", "Cookie", "Accept", "cookie", "X-Forwarded-For", "User-Agent",
                                             "X-Forwarded-For"}));

  http::request_parser<http::empty_body> beast;
  configure(beast, {});
  beast.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  ASSERT_FALSE(ec) << ec.message();
  std::vector<std::string> beast_names;
  for (const auto& f : beast.get()) beast_names.emplace_back(f.name_string());
  EXPECT_EQ(beast_names, (std::vector<std::string>{"Host", "Cookie", "cookie", "Accept", "X-Forwarded-For",
                                                   "X-Forwarded-For", "User-Agent"}));

  std::string out;
  write_request_head(out, head, "/x", ForwardedFor{"10.0.0.1", "http", "a.example", {}}, RequestForwarding{});
  EXPECT_EQ(out,
            "GET /x HTTP/1.1\r\nHost: a.example\r\nCookie: a=1\r\nAccept: */*\r\ncookie: b=2\r\nUser-Agent: t/1\r\n"
            "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: a.example\r\n"
            "Via: 1.1 bgproxy\r\n\r\n");
}

// ------------------------------------------------------------------ obs-fold

// RFC 9112 §5.2: obs-fold must be rejected or replaced by SP. Beast 1.81's parser does the
// latter: parse_field() unfolds into a char_buffer that is a local of parse_fields(), and passes
// on_field_impl a value view into it. basic_fields copies the value at once; a parser that keeps
// the view (ParsedHead) must not, or it holds a view into a dead stack frame. Either refusing the
// fold or keeping Beast's unfolded value is fine; a value that is not the bytes Beast unfolded is
// not.
TEST(HeadParser, ObsFoldIsRefusedOrUnfoldedLikeBeast) {
  const std::vector<std::string> folded = {
      "GET /fold HTTP/1.1\r\nHost: a.example\r\nX-Folded: first\r\n  second\r\nX-After: 1\r\n\r\n",
      "GET /fold HTTP/1.1\r\nHost: a.example\r\nX-A: a1\r\n\ta2\r\nX-B: b1\r\n b2\r\n \r\n b3\r\n\r\n",
      "GET /fold HTTP/1.1\r\nHost: a.example\r\nX-Empty-First:\r\n second\r\n\r\n",
      "POST /fold HTTP/1.1\r\nHost: a.example\r\nContent-Length:\r\n 5\r\n\r\nhello",
      "POST /fold HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n",
  };
  for (const auto& raw : folded) {
    const auto ref = reference_one_piece<true>(raw, {});
    const auto ours = ours_one_piece<true>(raw, {});
    if (ours.ec != ok) {
      EXPECT_FALSE(ours.header_done) << raw;  // refused: the session answers 400
      continue;
    }
    // Accepted: exactly what Beast's parser made of it, and nothing pointing outside the input.
    EXPECT_EQ(first_difference(ours.text(), ref.text()), "") << raw;
  }
  const auto ref = reference_one_piece<true>(folded[0], {});
  EXPECT_EQ(ref.ec, ok) << "Beast refuses obs-fold now: update the comment above";
  ASSERT_GE(ref.fields.size(), 2u);
  EXPECT_EQ(ref.fields[1], field_text(http::field::unknown, "X-Folded", "first second"));
}

TEST(HeadParser, ObsFoldInResponsesIsRefusedOrUnfoldedLikeBeast) {
  const std::string raw = "HTTP/1.1 200 OK\r\nX-A: a1\r\n a2\r\nX-B: b1\r\n b2\r\nContent-Length: 0\r\n\r\n";
  const auto ref = reference_one_piece<false>(raw, {response_header_limit, false});
  const auto ours = ours_one_piece<false>(raw, {response_header_limit, false});
  if (ours.ec != ok) {
    EXPECT_FALSE(ours.header_done);
  } else {
    EXPECT_EQ(first_difference(ours.text(), ref.text()), "");
  }
}

// ------------------------------------------------------------------ header_limit

std::string request_with_value(std::size_t value_size) {
  return "GET /x HTTP/1.1\r\nHost: a.example\r\nX-Long: " + std::string(value_size, 'v') + "\r\n\r\n";
}

TEST(HeadParser, LongValuesUpToTheHeaderLimitThenOneByteOver) {
  for (const std::uint32_t limit : {1024u, session_header_limit}) {
    const Options opt{limit, false};
    // The longest value Beast's parser accepts in one piece (binary search), then one byte more.
    std::size_t good = 0, bad = 2 * std::size_t{limit};
    ASSERT_EQ(reference_one_piece<true>(request_with_value(good), opt).ec, ok);
    ASSERT_EQ(reference_one_piece<true>(request_with_value(bad), opt).ec, ec_text(http::error::header_limit));
    while (bad - good > 1) {
      const auto mid = good + (bad - good) / 2;
      (reference_one_piece<true>(request_with_value(mid), opt).ec == ok ? good : bad) = mid;
    }
    const auto at = expect_same<true>(request_with_value(good), opt);
    EXPECT_EQ(at.ec, ok);
    EXPECT_TRUE(at.header_done);
    const auto over = expect_same<true>(request_with_value(good + 1), opt);
    EXPECT_EQ(over.ec, ec_text(http::error::header_limit)) << limit;
    // Where Beast 1.81 puts the boundary in one piece: the field section (after the request line,
    // up to and including the blank line) may be `limit` bytes; the request line counts apart.
    constexpr std::string_view request_line = "GET /x HTTP/1.1\r\n";
    EXPECT_EQ(request_with_value(good).size() - request_line.size(), limit) << "Beast's header_limit boundary moved";
    // Also in two reads at every byte (1024 only: that is 2 x 1k parses of 1k heads).
    if (limit == 1024u) {
      expect_same_split<true>(request_with_value(good), opt);
      expect_same_split<true>(request_with_value(good + 1), opt);
    }
  }
}

TEST(HeadParser, ManyFieldsAndLongCookieUpToTheLimit) {
  std::string raw = "GET /x HTTP/1.1\r\nHost: a.example\r\n";
  for (int i = 0; i < 100; ++i) raw += "X-Field-" + std::to_string(i) + ": value " + std::to_string(i) + "\r\n";
  raw += "Cookie: " + std::string(4000, 'c') + "\r\n\r\n";
  const auto ref = expect_same<true>(raw);
  EXPECT_EQ(ref.ec, ok);
  EXPECT_EQ(ref.fields.size(), 102u);
  const Options tight{static_cast<std::uint32_t>(raw.size() - std::string_view("GET /x HTTP/1.1\r\n").size() - 1), false};
  EXPECT_EQ(expect_same<true>(raw, tight).ec, ec_text(http::error::header_limit));
}

// ------------------------------------------------------------------ responses

const std::vector<std::string> good_responses = {
    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello",
    "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 Fine Thanks\r\nX-Empty:\r\nX-Ows: \t v \t\r\nsErVeR: t\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n",
    "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil eof",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nuntil eof",
    "HTTP/1.1 200 OK\r\n\r\nuntil eof",
    "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 3\r\n\r\nabc",
    "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nContent-Length: 3\r\n\r\nabc",
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n",
};

const std::vector<std::string> bad_responses = {
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 2000 OK\r\n\r\n",
    "HTTP/1.1 200OK\r\n\r\n",
    "HTTP/1.1 200 O\x01K\r\n\r\n",
    "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
    "HTTX/1.1 200 OK\r\n\r\n",
};

TEST(HeadParser, GoodResponsesMatchBeastsParser) {
  for (const auto& raw : good_responses) {
    const auto ref = expect_same<false>(raw);
    EXPECT_EQ(ref.ec, ok) << raw;
    EXPECT_TRUE(ref.header_done) << raw;
    // The answer to a HEAD request: no body whatever the framing says.
    expect_same<false>(raw, {response_header_limit, true});
  }
}

TEST(HeadParser, BadResponsesFailLikeBeastsParser) {
  for (const auto& raw : bad_responses) {
    const auto ref = expect_same<false>(raw);
    EXPECT_NE(ref.ec, ok) << "the reference accepts: " << raw;
  }
}

TEST(HeadParser, ResponseReasonAndStatus) {
  ParsedHead head;
  ResponseHeadParser p(head);
  configure(p, {response_header_limit, false});
  const std::string_view raw = "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n";
  error_code ec;
  p.parse(boost::asio::buffer(raw.data(), raw.size()), ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(head.result_int(), 200u);
  EXPECT_EQ(head.reason(), "OK");  // as Beast's header::reason(): the obsolete phrase for an empty one
  EXPECT_EQ(head.version(), 11u);
}

TEST(HeadParser, ResponsesSplitAtEveryByteMatchOnePiece) {
  for (const auto& raw : good_responses) expect_same_split<false>(raw);
  for (const auto& raw : bad_responses) expect_same_split<false>(raw);
}

// ------------------------------------------------------------------ forwarded bytes

// A browser-like request of 16 fields with a ~300-byte cookie and a client X-Forwarded-For,
// parsed from raw bytes and written by the head writer: the exact bytes sent upstream.
TEST(HeadParser, BrowserRequestForwardedBytes) {
  const std::string cookie = "session=" + std::string(120, 's') + "; prefs=" + std::string(80, 'p') +
                             "; _ga=GA1.2.1234567890.1234567890; _gid=GA1.2.987654321.987654321; consent=yes; theme=dark";
  const std::string fields_kept =
      "Host: shop.example\r\n"
      "sec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
      "sec-ch-ua-mobile: ?0\r\n"
      "sec-ch-ua-platform: \"Linux\"\r\n"
      "Upgrade-Insecure-Requests: 1\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
      "Safari/537.36\r\n"
      "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
      "Sec-Fetch-Site: same-origin\r\n"
      "Sec-Fetch-Mode: navigate\r\n"
      "Sec-Fetch-Dest: document\r\n"
      "Referer: https://shop.example/app/\r\n"
      "Accept-Encoding: gzip, deflate, br\r\n"
      "Accept-Language: en-US,en;q=0.9\r\n"
      "Cookie: " + cookie + "\r\n";
  // Connection and X-Forwarded-For in among the rest, as browsers and a front proxy place them.
  const std::string raw = "GET /app/page?id=42 HTTP/1.1\r\n"
                          "Host: shop.example\r\n"
                          "Connection: keep-alive\r\n" +
                          fields_kept.substr(fields_kept.find("sec-ch-ua:")) +
                          "X-Forwarded-For: 203.0.113.7\r\n"
                          "\r\n";
  ASSERT_GE(cookie.size(), 300u);

  ParsedHead head;
  RequestHeadParser p(head);
  configure(p, {});
  error_code ec;
  const auto n = p.parse(boost::asio::buffer(raw.data(), raw.size()), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(n, raw.size());
  ASSERT_EQ(head.size(), 16u);
  EXPECT_EQ(head.begin()->name_string(), "Host");
  EXPECT_EQ((head.begin() + 1)->name(), http::field::connection);
  EXPECT_EQ((head.begin() + 15)->name_string(), "X-Forwarded-For");
  EXPECT_EQ(head[http::field::cookie], cookie);

  std::string out;
  RequestForwarding how;
  how.body.chunked = p.chunked();
  write_request_head(out, head, head.target(), ForwardedFor{"10.0.0.1", "http", head[http::field::host], {}}, how);
  EXPECT_EQ(out, "GET /app/page?id=42 HTTP/1.1\r\n" + fields_kept +
                     "X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n"
                     "X-Forwarded-Proto: http\r\n"
                     "X-Forwarded-Host: shop.example\r\n"
                     "Via: 1.1 bgproxy\r\n"
                     "\r\n");
  // The order of a few fields, and the client's X-Forwarded-For extended rather than copied.
  EXPECT_LT(out.find("Host: "), out.find("sec-ch-ua: "));
  EXPECT_LT(out.find("User-Agent: "), out.find("Accept: "));
  EXPECT_LT(out.find("Cookie: "), out.find("X-Forwarded-For: "));
  EXPECT_EQ(out.find("Connection:"), std::string::npos);
  EXPECT_EQ(out.find("X-Forwarded-For: 203.0.113.7\r\n"), std::string::npos);

  // The same bytes from Beast's parser (the old path), and at every split into two reads.
  expect_same<true>(raw);
  expect_same_split<true>(raw);
}

}  // namespace
}  // namespace bgproxy::proxy
