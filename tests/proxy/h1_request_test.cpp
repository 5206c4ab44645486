// H1Request (SPEC §13): an HTTP/2 request's fields, pseudo-fields first in arrival order, written
// as the HTTP/1.1 head the session parses. Every refusal here is a byte or a field that would mean
// something else (or a second request) once it is HTTP/1.1.
#include "proxy/h2/h1_request.hpp"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

using Field = std::pair<std::string_view, std::string_view>;

/// Adds every field; false at the first one add() refuses (the stream would be reset there).
bool add_all(H1Request& r, std::initializer_list<Field> fields) {
  for (const auto& [name, value] : fields)
    if (!r.add(name, value)) return false;
  return true;
}

/// The whole request is taken: every add() and finish() succeed.
bool accepted(std::initializer_list<Field> fields, bool body_follows = false) {
  H1Request r;
  return add_all(r, fields) && r.finish(body_follows);
}

/// The head of an accepted request; fails the test if it is refused.
std::string head_of(std::initializer_list<Field> fields, bool body_follows = false) {
  H1Request r;
  if (!add_all(r, fields)) {
    ADD_FAILURE() << "a field was refused";
    return {};
  }
  if (!r.finish(body_follows)) {
    ADD_FAILURE() << "finish() refused the request";
    return {};
  }
  return r.head();
}

// ---- the head that is written ---------------------------------------------------------------

TEST(H1Request, PlainGetExactBytes) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "GET"},
                          {":scheme", "http"},
                          {":authority", "example.com:8080"},
                          {":path", "/a/b?x=1&y=%20"},
                          {"user-agent", "curl/8"},
                          {"accept", "*/*"},
                          {"x-b", "2"},
                          {"x-a", "1"}}));
  ASSERT_TRUE(r.finish(false));
  EXPECT_EQ(r.head(),
            "GET /a/b?x=1&y=%20 HTTP/1.1\r\n"
            "Host: example.com:8080\r\n"
            "user-agent: curl/8\r\n"
            "accept: */*\r\n"
            "x-b: 2\r\n"
            "x-a: 1\r\n"
            "\r\n");
  EXPECT_FALSE(r.chunked());
  EXPECT_FALSE(r.head_method());
}

TEST(H1Request, PseudoFieldsInAnyOrderAmongThemselves) {
  EXPECT_EQ(head_of({{":path", "/"}, {":authority", "h"}, {":scheme", "https"}, {":method", "DELETE"}}),
            "DELETE / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(H1Request, HostFieldWhenNoAuthority) {
  EXPECT_EQ(head_of({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"x-a", "1"}, {"host", "h.example:81"}}),
            "GET / HTTP/1.1\r\nHost: h.example:81\r\nx-a: 1\r\n\r\n");
}

TEST(H1Request, AuthorityAndEqualHostAccepted) {
  // One Host line, from :authority; the host field is not repeated.
  EXPECT_EQ(head_of({{":method", "GET"}, {":scheme", "http"}, {":authority", "Example.COM"}, {":path", "/"},
                     {"host", "example.com"}}),
            "GET / HTTP/1.1\r\nHost: Example.COM\r\n\r\n");
  EXPECT_TRUE(accepted({{":method", "GET"}, {":scheme", "http"}, {":authority", "a.b:80"}, {":path", "/"},
                        {"host", "a.b:80"}}));
}

TEST(H1Request, AuthorityAndDifferentHostRefused) {
  EXPECT_FALSE(accepted({{":method", "GET"}, {":scheme", "http"}, {":authority", "a.example"}, {":path", "/"},
                         {"host", "b.example"}}));
  EXPECT_FALSE(accepted({{":method", "GET"}, {":scheme", "http"}, {":authority", "a.example"}, {":path", "/"},
                         {"host", "a.example:80"}}));
}

TEST(H1Request, NoHostAtAllRefused) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"x-a", "1"}}));
  EXPECT_FALSE(r.finish(false));
}

TEST(H1Request, SecondHostFieldRefused) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "a"}}));
  EXPECT_FALSE(r.add("host", "a"));
}

TEST(H1Request, HostFieldWithUserinfoOrPathRefused) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}));
  EXPECT_FALSE(H1Request(r).add("host", "user@h"));
  EXPECT_FALSE(H1Request(r).add("host", "h/x"));
  EXPECT_FALSE(H1Request(r).add("host", ""));
  EXPECT_FALSE(H1Request(r).add("host", "h x"));
}

TEST(H1Request, SplitCookiesJoinedIntoOneLine) {
  EXPECT_EQ(head_of({{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"},
                     {"cookie", "a=1"}, {"x-a", "1"}, {"cookie", "b=2"}, {"cookie", "bg_id=xyz"}}),
            "GET / HTTP/1.1\r\nHost: h\r\nx-a: 1\r\nCookie: a=1; b=2; bg_id=xyz\r\n\r\n");
}

TEST(H1Request, SingleCookie) {
  EXPECT_EQ(head_of({{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"},
                     {"cookie", "a=1"}}),
            "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\n\r\n");
}

TEST(H1Request, TeTrailersAcceptedAndDropped) {
  EXPECT_EQ(head_of({{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/svc/M"},
                     {"te", "trailers"}, {"content-type", "application/grpc"}}),
            "POST /svc/M HTTP/1.1\r\nHost: h\r\ncontent-type: application/grpc\r\n\r\n");
}

TEST(H1Request, TeOtherThanTrailersRefused) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"}}));
  EXPECT_FALSE(H1Request(r).add("te", "gzip"));
  EXPECT_FALSE(H1Request(r).add("te", "trailers, gzip"));
  EXPECT_FALSE(H1Request(r).add("te", "chunked"));
}

TEST(H1Request, ExpectDropped) {
  EXPECT_EQ(head_of({{":method", "PUT"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/f"},
                     {"expect", "100-continue"}, {"content-length", "3"}},
                    true),
            "PUT /f HTTP/1.1\r\nHost: h\r\ncontent-length: 3\r\n\r\n");
}

TEST(H1Request, ConnectionSpecificFieldsRefused) {
  H1Request base;
  ASSERT_TRUE(add_all(base, {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"}}));
  for (const std::string_view name : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}) {
    H1Request r(base);
    EXPECT_FALSE(r.add(name, "x")) << name;
  }
  EXPECT_FALSE(H1Request(base).add("transfer-encoding", "chunked"));
  EXPECT_FALSE(H1Request(base).add("upgrade", "h2c"));
  EXPECT_FALSE(H1Request(base).add("connection", "close"));
  EXPECT_FALSE(H1Request(base).add("keep-alive", "timeout=5"));
}

TEST(H1Request, UppercaseOrNonTokenNamesRefused) {
  H1Request base;
  ASSERT_TRUE(add_all(base, {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"}}));
  for (const std::string_view name :
       {"X-Forwarded-For", "Host", "Content-Length", "x a", "x:a", "x\ta", "x(a)", "x\"a", "x/a", "x@a", "x,a",
        "x;a", "x=a", "x{a}", "x[a]", "x?a", "x\\a", "\xc3\xa9", "x\x7f"}) {
    EXPECT_FALSE(H1Request(base).add(name, "v")) << name;
  }
  EXPECT_FALSE(H1Request(base).add(std::string_view("x\0a", 3), "v"));
  EXPECT_FALSE(H1Request(base).add("x\r\nevil", "v"));
  EXPECT_FALSE(H1Request(base).add("", "v"));
  // Every tchar but letters is fine in a name.
  EXPECT_TRUE(H1Request(base).add("x!#$%&'*+-.^_`|~09", "v"));
}

TEST(H1Request, NulCrLfInValueRefused) {
  H1Request base;
  ASSERT_TRUE(add_all(base, {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"}}));
  EXPECT_FALSE(H1Request(base).add("x-a", std::string_view("a\0b", 3)));
  EXPECT_FALSE(H1Request(base).add("x-a", "a\rb"));
  EXPECT_FALSE(H1Request(base).add("x-a", "a\nb"));
  EXPECT_FALSE(H1Request(base).add("x-a", "a\r\nGET /smuggled HTTP/1.1"));
  EXPECT_FALSE(H1Request(base).add("cookie", "a=1\r\nx-b: 2"));
  EXPECT_FALSE(H1Request(base).add("host", "h\r\nx"));
  // In pseudo-fields too.
  H1Request r;
  EXPECT_FALSE(r.add(":method", "GET\r\n"));
  EXPECT_FALSE(H1Request().add(":path", "/a\r\nx-b: 1"));
  EXPECT_FALSE(H1Request().add(":authority", std::string_view("h\0", 2)));
  EXPECT_FALSE(H1Request().add(":scheme", "http\n"));
}

TEST(H1Request, TabAndObsTextInValueKept) {
  EXPECT_EQ(head_of({{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"},
                     {"x-a", "a\tb \xc3\xa9"}}),
            "GET / HTTP/1.1\r\nHost: h\r\nx-a: a\tb \xc3\xa9\r\n\r\n");
}

// ---- pseudo-fields ---------------------------------------------------------------------------

TEST(H1Request, PseudoFieldAfterRegularFieldRefused) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"x-a", "1"}}));
  EXPECT_FALSE(r.add(":authority", "h"));

  H1Request c;
  ASSERT_TRUE(add_all(c, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"cookie", "a=1"}}));
  EXPECT_FALSE(c.add(":authority", "h"));

  H1Request h;
  ASSERT_TRUE(add_all(h, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "h"}}));
  EXPECT_FALSE(h.add(":authority", "h"));
}

// RFC 9113 §8.3: a pseudo-field after *any* regular field makes the request malformed, including
// the regular fields H1Request drops (te, expect) or that leave nothing behind (an empty cookie).
TEST(H1Request, PseudoFieldAfterDroppedRegularFieldRefused) {
  H1Request te;
  ASSERT_TRUE(add_all(te, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"te", "trailers"}}));
  EXPECT_FALSE(te.add(":authority", "h"));

  H1Request expect;
  ASSERT_TRUE(add_all(expect, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"expect", "100-continue"}}));
  EXPECT_FALSE(expect.add(":authority", "h"));

  H1Request cookie;
  ASSERT_TRUE(add_all(cookie, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"cookie", ""}}));
  EXPECT_FALSE(cookie.add(":authority", "h"));
}

TEST(H1Request, DuplicatePseudoFieldsRefused) {
  H1Request m;
  ASSERT_TRUE(m.add(":method", "GET"));
  EXPECT_FALSE(m.add(":method", "GET"));

  H1Request p;
  ASSERT_TRUE(p.add(":path", "/a"));
  EXPECT_FALSE(p.add(":path", "/b"));

  H1Request a;
  ASSERT_TRUE(a.add(":authority", "h"));
  EXPECT_FALSE(a.add(":authority", "h"));

  H1Request s;
  ASSERT_TRUE(s.add(":scheme", "http"));
  EXPECT_FALSE(s.add(":scheme", "https"));
}

// An empty :path is malformed by itself (RFC 9113 §8.3.1), and a second :path after it is a
// duplicate: whichever way, the request is not taken.
TEST(H1Request, DuplicatePathAfterEmptyPathRefused) {
  H1Request r;
  EXPECT_FALSE(add_all(r, {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", ""},
                           {":path", "/admin"}}) &&
               r.finish(false))
      << "accepted as: " << r.head();
}

TEST(H1Request, UnknownPseudoFieldsRefused) {
  EXPECT_FALSE(H1Request().add(":status", "200"));
  EXPECT_FALSE(H1Request().add(":protocol", "websocket"));
  EXPECT_FALSE(H1Request().add(":host", "h"));
  EXPECT_FALSE(H1Request().add(":", "x"));
  EXPECT_FALSE(H1Request().add(":Method", "GET"));
}

TEST(H1Request, EmptyMethodOrNonTokenMethodRefused) {
  EXPECT_FALSE(H1Request().add(":method", ""));
  EXPECT_FALSE(H1Request().add(":method", "G T"));
  EXPECT_FALSE(H1Request().add(":method", "GET /x HTTP/1.1"));
  EXPECT_FALSE(H1Request().add(":method", "GE(T"));
  EXPECT_TRUE(H1Request().add(":method", "PROPFIND"));
}

TEST(H1Request, MissingPseudoFieldsRefusedAtFinish) {
  H1Request no_method;
  ASSERT_TRUE(add_all(no_method, {{":scheme", "http"}, {":authority", "h"}, {":path", "/"}}));
  EXPECT_FALSE(no_method.finish(false));

  H1Request no_path;
  ASSERT_TRUE(add_all(no_path, {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}}));
  EXPECT_FALSE(no_path.finish(false));

  H1Request no_scheme;
  ASSERT_TRUE(add_all(no_scheme, {{":method", "GET"}, {":authority", "h"}, {":path", "/"}}));
  EXPECT_FALSE(no_scheme.finish(false));

  EXPECT_FALSE(H1Request().finish(false));
}

// ---- :path -----------------------------------------------------------------------------------

bool path_accepted(std::string_view method, std::string_view path) {
  H1Request r;
  return add_all(r, {{":method", method}, {":scheme", "http"}, {":authority", "h"}, {":path", path}}) &&
         r.finish(false);
}

TEST(H1Request, PathMustBeOriginForm) {
  EXPECT_TRUE(path_accepted("GET", "/"));
  EXPECT_TRUE(path_accepted("GET", "/a/b;c?d=e&f=%2F~!$'()*+,:@"));
  EXPECT_FALSE(path_accepted("GET", "a/b"));
  EXPECT_FALSE(path_accepted("GET", "http://other.example/"));
  EXPECT_TRUE(path_accepted("GET", "//a"));  // empty segments are still origin-form
  EXPECT_FALSE(path_accepted("GET", ""));
}

TEST(H1Request, PathWithFragmentRefused) {
  EXPECT_FALSE(path_accepted("GET", "/a#frag"));
  EXPECT_FALSE(path_accepted("GET", "/#"));
}

TEST(H1Request, PathWithSpaceOrControlRefused) {
  EXPECT_FALSE(path_accepted("GET", "/a b"));
  EXPECT_FALSE(path_accepted("GET", "/a HTTP/1.1\r\nx: y"));
  EXPECT_FALSE(path_accepted("GET", "/a\tb"));
  EXPECT_FALSE(path_accepted("GET", "/a\x01"));
  EXPECT_FALSE(path_accepted("GET", "/a\x7f"));
  EXPECT_FALSE(path_accepted("GET", "/a\xc3\xa9"));
}

TEST(H1Request, AsteriskOnlyForOptions) {
  EXPECT_TRUE(path_accepted("OPTIONS", "*"));
  EXPECT_FALSE(path_accepted("GET", "*"));
  EXPECT_FALSE(path_accepted("POST", "*"));
  EXPECT_FALSE(path_accepted("OPTIONS", "*x"));
  EXPECT_EQ(head_of({{":method", "OPTIONS"}, {":scheme", "http"}, {":authority", "h"}, {":path", "*"}}),
            "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
}

// `*` is judged against the method at finish(), so a :path that arrives before :method is fine.
TEST(H1Request, PathCheckedAgainstMethodWhateverTheOrder) {
  EXPECT_TRUE(accepted({{":path", "*"}, {":scheme", "http"}, {":authority", "h"}, {":method", "OPTIONS"}}));
  EXPECT_FALSE(accepted({{":path", "*"}, {":scheme", "http"}, {":authority", "h"}, {":method", "GET"}}));
}

// ---- :authority ------------------------------------------------------------------------------

TEST(H1Request, AuthorityForms) {
  EXPECT_TRUE(H1Request().add(":authority", "example.com"));
  EXPECT_TRUE(H1Request().add(":authority", "example.com:443"));
  EXPECT_TRUE(H1Request().add(":authority", "10.0.0.1:80"));
  EXPECT_TRUE(H1Request().add(":authority", "[::1]:8443"));
  EXPECT_TRUE(H1Request().add(":authority", "xn--bcher-kva.example"));
}

TEST(H1Request, AuthorityWithUserinfoOrPathRefused) {
  EXPECT_FALSE(H1Request().add(":authority", "user@example.com"));
  EXPECT_FALSE(H1Request().add(":authority", "user:pass@example.com"));
  EXPECT_FALSE(H1Request().add(":authority", "example.com/path"));
  EXPECT_FALSE(H1Request().add(":authority", "example.com?q"));
  EXPECT_FALSE(H1Request().add(":authority", "example.com#f"));
  EXPECT_FALSE(H1Request().add(":authority", "a b"));
  EXPECT_FALSE(H1Request().add(":authority", "a\tb"));
  EXPECT_FALSE(H1Request().add(":authority", ""));
}

// ---- body framing ----------------------------------------------------------------------------

TEST(H1Request, BodyWithoutContentLengthGoesChunked) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/up"},
                          {"content-type", "text/plain"}, {"cookie", "a=1"}}));
  ASSERT_TRUE(r.finish(true));
  EXPECT_TRUE(r.chunked());
  EXPECT_EQ(r.head(),
            "POST /up HTTP/1.1\r\nHost: h\r\ncontent-type: text/plain\r\nCookie: a=1\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
}

TEST(H1Request, BodyWithContentLengthNotChunked) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/up"},
                          {"content-length", "5"}}));
  ASSERT_TRUE(r.finish(true));
  EXPECT_FALSE(r.chunked());
  EXPECT_EQ(r.head(), "POST /up HTTP/1.1\r\nHost: h\r\ncontent-length: 5\r\n\r\n");
  EXPECT_EQ(r.head().find("Transfer-Encoding"), std::string::npos);
}

TEST(H1Request, NoBodyNeitherChunkedNorLength) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"}}));
  ASSERT_TRUE(r.finish(false));
  EXPECT_FALSE(r.chunked());
  EXPECT_EQ(r.head(), "POST / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(H1Request, TwoContentLengthsRefused) {
  H1Request r;
  ASSERT_TRUE(add_all(r, {{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"},
                          {"content-length", "5"}}));
  EXPECT_FALSE(r.add("content-length", "5"));

  H1Request d;
  ASSERT_TRUE(add_all(d, {{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"},
                          {"content-length", "5"}}));
  EXPECT_FALSE(d.add("content-length", "6"));
}

// ---- accounting and HEAD ---------------------------------------------------------------------

TEST(H1Request, ListSizeCountsNameValueAnd32PerField) {
  H1Request r;
  EXPECT_EQ(r.list_size(), 0u);
  ASSERT_TRUE(r.add(":method", "GET"));  // 7 + 3 + 32
  EXPECT_EQ(r.list_size(), 42u);
  ASSERT_TRUE(add_all(r, {{":scheme", "https"}, {":authority", "h"}, {":path", "/abc"}}));
  // (7+5+32) + (10+1+32) + (5+4+32)
  EXPECT_EQ(r.list_size(), 42u + 44u + 43u + 41u);
  ASSERT_TRUE(add_all(r, {{"cookie", "a=1"}, {"cookie", "b=2"}, {"te", "trailers"}, {"x-e", ""}}));
  // Split cookies count one by one; dropped fields count too.
  EXPECT_EQ(r.list_size(), 170u + (6 + 3 + 32) * 2 + (2 + 8 + 32) + (3 + 0 + 32));
  ASSERT_TRUE(r.finish(false));
  EXPECT_EQ(r.list_size(), 170u + 82u + 42u + 35u);
}

TEST(H1Request, ListSizeCountsRefusedFieldToo) {
  H1Request r;
  EXPECT_FALSE(r.add("connection", "close"));
  EXPECT_EQ(r.list_size(), 10u + 5u + 32u);
}

TEST(H1Request, HeadMethod) {
  H1Request head;
  ASSERT_TRUE(add_all(head, {{":method", "HEAD"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"}}));
  ASSERT_TRUE(head.finish(false));
  EXPECT_TRUE(head.head_method());
  EXPECT_EQ(head.head(), "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");

  H1Request get;
  ASSERT_TRUE(add_all(get, {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/"}}));
  ASSERT_TRUE(get.finish(false));
  EXPECT_FALSE(get.head_method());
}

}  // namespace
}  // namespace bgproxy::proxy
