// SPEC §4: requests relayed to blue with X-Forwarded-*/Via, hop-by-hop headers removed,
// keep-alive on both sides, pipelining, HTTP/1.0, bodiless responses, routing misses.

#include <atomic>
#include <set>
#include <thread>

#include "harness.hpp"

namespace bgtest {
namespace {

class ProxyBasic : public IntegrationTest {};

std::string joined(const std::vector<std::string>& v) {
  std::string r;
  for (const auto& s : v) r += (r.empty() ? "" : ", ") + s;
  return r;
}

TEST_F(ProxyBasic, SimpleGetRelayedWithForwardedHeaders) {
  Proxy& p = start_proxy({});
  std::string why;
  auto r = round_trip(p.port(), get_request("/hello?a=1", "", "app.example"), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Backend"), "blue");
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.target, "/hello?a=1");
  EXPECT_EQ(e.value("Host"), "app.example");
  EXPECT_EQ(joined(e.values("X-Forwarded-For")), "127.0.0.1");
  EXPECT_EQ(e.value("X-Forwarded-Proto"), "http");
  EXPECT_EQ(e.value("X-Forwarded-Host"), "app.example");
  auto via = e.value("Via");
  ASSERT_TRUE(via) << "no Via header reached the backend";
  EXPECT_NE(via->find("1.1 "), std::string::npos) << *via;
}

TEST_F(ProxyBasic, ForwardedForAndViaAreAppended) {
  Proxy& p = start_proxy({});
  std::string why;
  auto r = round_trip(p.port(),
                      get_request("/", "X-Forwarded-For: 203.0.113.7, 198.51.100.2\r\nVia: 1.0 fred\r\n"),
                      Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 200);
  Echo e = parse_echo(r->body);
  // Two header lines or one comma-joined line are the same field (RFC 9110 §5.3).
  EXPECT_EQ(joined(e.values("X-Forwarded-For")), "203.0.113.7, 198.51.100.2, 127.0.0.1");
  std::string via = joined(e.values("Via"));
  EXPECT_EQ(via.rfind("1.0 fred, 1.1 ", 0), 0u) << "Via as received by the backend: " << via;
}

TEST_F(ProxyBasic, HopByHopHeadersRemoved) {
  Proxy& p = start_proxy({});
  std::string why;
  auto r = round_trip(p.port(),
                      get_request("/", "Connection: keep-alive, X-Drop-Me, x-drop-too\r\n"
                                       "Keep-Alive: timeout=5\r\n"
                                       "X-Drop-Me: secret\r\n"
                                       "X-Drop-Too: secret2\r\n"
                                       "Proxy-Connection: keep-alive\r\n"
                                       "TE: trailers\r\n"
                                       "Trailer: X-Checksum\r\n"
                                       "X-Keep-Me: yes\r\n"),
                      Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 200);
  Echo e = parse_echo(r->body);
  for (const char* h : {"Keep-Alive", "X-Drop-Me", "X-Drop-Too", "Proxy-Connection", "TE", "Trailer"})
    EXPECT_FALSE(e.has(h)) << h << " was forwarded: " << *e.value(h);
  for (const auto& c : e.values("Connection")) {
    std::string lc = c;
    for (auto& ch : lc) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_EQ(lc.find("x-drop"), std::string::npos) << "forwarded Connection: " << c;
  }
  EXPECT_EQ(e.value("X-Keep-Me"), "yes");
}

TEST_F(ProxyBasic, KeepAliveClientSideAndUpstreamConnectionReused) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    c.send(get_request("/ka/" + std::to_string(i)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << "request " << i << " on the same client connection: " << c.last_error();
    ASSERT_EQ(r->status, 200);
    Echo e = parse_echo(r->body);
    EXPECT_EQ(e.target, "/ka/" + std::to_string(i));
    ids.push_back(e.connection_id);
  }
  std::set<std::uint64_t> distinct(ids.begin(), ids.end());
  EXPECT_LT(distinct.size(), ids.size()) << "every request opened a new upstream connection";
  EXPECT_EQ(distinct.size(), 1u) << "sequential requests of one client should reuse one upstream connection";
  EXPECT_EQ(backends_[0]->stats().requests, 5u);
}

// Issue 14: a keep-alive client silent for a while sheds its buffers and waits on the socket
// alone. The pauses are the client's think time (longer than the 250 ms after which the proxy
// sheds); what comes after each must be served as if nothing happened: a whole request, a head
// arriving in pieces, two pipelined requests, and a client that leaves while shed.
TEST_F(ProxyBasic, Issue14IdleClientThatShedItsBuffersIsServedOnItsNextRequest) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  const auto think = [] { std::this_thread::sleep_for(Ms(600)); };
  c.send(get_request("/before"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/before");

  think();
  c.send(get_request("/after-idle"));
  r = c.read_response();
  ASSERT_TRUE(r) << "the request after an idle pause: " << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(parse_echo(r->body).target, "/after-idle");

  think();
  const std::string split = get_request("/in-pieces");
  c.send(split.substr(0, 7));
  std::this_thread::sleep_for(Ms(50));
  c.send(split.substr(7));
  r = c.read_response();
  ASSERT_TRUE(r) << "a head arriving in pieces after an idle pause: " << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/in-pieces");

  think();
  c.send(get_request("/one") + get_request("/two"));
  for (const char* target : {"/one", "/two"}) {
    r = c.read_response();
    ASSERT_TRUE(r) << "pipelined after an idle pause: " << c.last_error();
    EXPECT_EQ(parse_echo(r->body).target, target);
  }

  {
    Client leaving(p.port());
    leaving.send(get_request("/x"));
    ASSERT_TRUE(leaving.read_response());
    think();
  }  // closed while shed
  c.send(get_request("/still-here"));
  r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/still-here");
  EXPECT_TRUE(p.process().running());
}

// Issue 14: a head that arrives in pieces, split after its request line and inside a field, is
// forwarded as it was sent (views into the read buffer must never outlive a read).
TEST_F(ProxyBasic, Issue14HeadInPiecesIsForwardedWhole) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  const std::vector<std::string> pieces = {"GET /split?x=1 HTTP/1.1\r\n", "Host: a.example\r\nX-Pie",
                                           "ce: one\r\nX-Other: two\r\n", "\r\n"};
  for (const auto& piece : pieces) {
    c.send(piece);
    std::this_thread::sleep_for(Ms(30));  // each piece its own read
  }
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 200);
  const Echo e = parse_echo(r->body);
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.target, "/split?x=1");
  EXPECT_EQ(e.value("host"), "a.example");
  EXPECT_EQ(e.value("x-piece"), "one");
  EXPECT_EQ(e.value("x-other"), "two");
}

// Issue 14: a folded field value (obs-fold) is refused with 400, and only that connection closes.
TEST_F(ProxyBasic, Issue14FoldedFieldValueIsRefused) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send("GET /fold HTTP/1.1\r\nHost: a.example\r\nX-Folded: one\r\n two\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 400);
  Client other(p.port());
  other.send(get_request("/still"));
  r = other.read_response();
  ASSERT_TRUE(r) << other.last_error();
  EXPECT_EQ(r->status, 200);
}

TEST_F(ProxyBasic, UpstreamConnectionsReusedAcrossClientConnections) {
  Proxy& p = start_proxy({});
  std::set<std::uint64_t> distinct;
  const int n = 8;
  for (int i = 0; i < n; ++i) {
    std::string why;
    auto r = round_trip(p.port(), get_request("/", "Connection: close\r\n"), Ms(5000), &why);
    ASSERT_TRUE(r) << why;
    ASSERT_EQ(r->status, 200);
    distinct.insert(parse_echo(r->body).connection_id);
  }
  // Two workers, each with its own pool: at most one upstream connection each for sequential use.
  EXPECT_LE(distinct.size(), 2u) << "upstream connections were not pooled across client connections";
}

TEST_F(ProxyBasic, PipelinedRequestsAnsweredInOrder) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/p1") + request_with_body("POST", "/p2", "hello world") +
         get_request("/p3?body_bytes=10") + get_request("/p4"));
  const char* targets[] = {"/p1", "/p2", nullptr, "/p4"};
  for (int i = 0; i < 4; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << "pipelined response " << i + 1 << ": " << c.last_error();
    ASSERT_EQ(r->status, 200);
    if (targets[i] == nullptr) {
      EXPECT_EQ(r->body, pattern_bytes(0, 10));
      continue;
    }
    Echo e = parse_echo(r->body);
    EXPECT_EQ(e.target, targets[i]) << "response " << i + 1 << " out of order";
    if (i == 1) {
      EXPECT_EQ(e.body_bytes, 11u);
      EXPECT_EQ(e.body_fnv1a, fnv1a_hex("hello world"));
    }
  }
}

TEST_F(ProxyBasic, Http10Request) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send("GET /old HTTP/1.0\r\nHost: app.test\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->chunked) << "chunked sent to an HTTP/1.0 client";
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.target, "/old");
  // No keep-alive asked for: the proxy closes after the response.
  EXPECT_EQ(c.read_until_close(Ms(3000)), ReadEnd::Eof) << "connection not closed after HTTP/1.0 response";
  EXPECT_TRUE(c.buffered().empty()) << "extra bytes after the response: " << c.buffered().substr(0, 200);

  // A large chunked upstream body reaches an HTTP/1.0 client unchunked.
  Client c2(p.port());
  c2.send("GET /?body_bytes=100000&chunked=1 HTTP/1.0\r\nHost: app.test\r\n\r\n");
  r = c2.read_response();
  ASSERT_TRUE(r) << c2.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->chunked);
  EXPECT_EQ(r->body.size(), 100000u);
  EXPECT_EQ(r->body, pattern_bytes(0, 100000));
}

TEST_F(ProxyBasic, HeadWithContentLengthDoesNotHang) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send("HEAD /?body_bytes=1000 HTTP/1.1\r\nHost: app.test\r\n\r\n");
  auto r = c.read_response(Ms(3000), /*head_request=*/true);
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Length"), "1000");
  // The next request on the same connection is answered: the proxy did not wait for 1000 bytes,
  // and sent none.
  c.send(get_request("/after-head"));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << "request after HEAD: " << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(parse_echo(r->body).target, "/after-head");

  // HEAD of a chunked resource: a chunked head, no chunks follow.
  c.send("HEAD /?body_bytes=1000&chunked=1 HTTP/1.1\r\nHost: app.test\r\n\r\n");
  r = c.read_response(Ms(3000), /*head_request=*/true);
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  c.send(get_request("/after-chunked-head"));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << "request after a chunked HEAD: " << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(parse_echo(r->body).target, "/after-chunked-head");
}

TEST_F(ProxyBasic, NoContentAndNotModifiedHaveNoBody) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/?status=204") + get_request("/?status=304") + get_request("/after"));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 204);
  EXPECT_FALSE(r->has_header("Transfer-Encoding")) << r->raw_head;
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 304);
  EXPECT_FALSE(r->has_header("Transfer-Encoding")) << r->raw_head;
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << "request after 204/304: " << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(parse_echo(r->body).target, "/after") << "bytes after the bodiless responses were misframed";
}

TEST_F(ProxyBasic, NoMatchingServiceIs404) {
  ProxyConfig cfg;
  cfg.match_host = "only.example";
  Proxy& p = start_proxy(cfg);
  std::string why;
  auto r = round_trip(p.port(), get_request("/", "", "other.example"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 404);
  EXPECT_FALSE(r->has_header("X-Backend")) << "a miss reached a backend";
  r = round_trip(p.port(), get_request("/", "", "only.example"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Backend"), "blue");
  EXPECT_EQ(backends_[0]->stats().requests, 1u);
}

TEST_F(ProxyBasic, SeveralListenersAllServe) {
  ProxyConfig cfg;
  cfg.listeners = 2;
  Proxy& p = start_proxy(cfg);
  ASSERT_EQ(p.ports().size(), 2u);
  EXPECT_NE(p.port(0), p.port(1));
  for (auto port : p.ports()) {
    std::string why;
    auto r = round_trip(port, get_request("/"), Ms(3000), &why);
    ASSERT_TRUE(r) << "listener " << port << ": " << why;
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(ProxyBasic, AbsoluteFormTargetRoutedAndForwardedAsOriginForm) {
  ProxyConfig cfg;
  cfg.match_host = "only.example";
  Proxy& p = start_proxy(cfg);
  std::string why;
  auto r = round_trip(p.port(), "GET http://only.example/abs?x=1 HTTP/1.1\r\nHost: only.example\r\n\r\n",
                      Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 200) << r->raw_head;
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.target, "/abs?x=1");
  EXPECT_EQ(e.value("Host"), "only.example");
}

TEST_F(ProxyBasic, ClientConnectionCloseHonoured) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/", "Connection: close\r\n"));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c.read_until_close(Ms(3000)), ReadEnd::Eof) << "connection kept open after Connection: close";
}

TEST_F(ProxyBasic, UpstreamErrorStatusRelayedAsIs) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/?status=503"));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("X-Backend"), "blue") << "the backend's own 503 was replaced";
  EXPECT_EQ(parse_echo(r->body).target, "/?status=503");
  c.send(get_request("/after"));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << "keep-alive lost after a relayed 503: " << c.last_error();
  EXPECT_EQ(r->status, 200);
}

TEST_F(ProxyBasic, SetCookieFromBackendRelayed) {
  Proxy& p = start_proxy({});
  std::string why;
  auto r = round_trip(p.port(), get_request("/?set_cookie=session%3Dabc"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 200);
  auto cookies = r->headers_named("Set-Cookie");
  bool found = false;
  for (const auto& v : cookies) found = found || v.find("session") != std::string::npos;
  EXPECT_TRUE(found) << r->raw_head;
}

TEST_F(ProxyBasic, ConcurrentKeepAliveClientsGetTheirOwnAnswers) {
  Proxy& p = start_proxy({});
  const int clients = 16, per_client = 25;
  std::atomic<int> ok{0};
  std::vector<std::string> errors(clients);
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      try {
        Client c(p.port());
        for (int i = 0; i < per_client; ++i) {
          std::string target = "/c" + std::to_string(t) + "/r" + std::to_string(i);
          std::string body(static_cast<std::size_t>(i * 37 + t), 'q');
          c.send(request_with_body("POST", target, body));
          auto r = c.read_response(Ms(5000));
          if (!r) throw std::runtime_error(target + ": " + c.last_error());
          if (r->status != 200) throw std::runtime_error(target + ": status " + std::to_string(r->status));
          Echo e = parse_echo(r->body);
          if (e.target != target || e.body_bytes != body.size())
            throw std::runtime_error(target + ": got the answer for " + e.target);
          ++ok;
        }
      } catch (const std::exception& ex) {
        errors[static_cast<std::size_t>(t)] = ex.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < clients; ++t) EXPECT_TRUE(errors[static_cast<std::size_t>(t)].empty()) << errors[static_cast<std::size_t>(t)];
  EXPECT_EQ(ok.load(), clients * per_client);
  EXPECT_EQ(backends_[0]->stats().requests, static_cast<std::uint64_t>(clients * per_client));
}

TEST_F(ProxyBasic, NoNagleStallOnSequentialSmallRequests) {
  // Head and body sent separately both ways: without TCP_NODELAY each exchange would stall
  // ~40 ms on delayed ACKs (60 requests > 2.4 s).
  Proxy& p = start_proxy({});
  Client c(p.port());
  auto t0 = Clock::now();
  for (int i = 0; i < 60; ++i) {
    c.send("POST /n HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\n");
    c.send("ping");
    auto r = c.read_response(Ms(3000));
    ASSERT_TRUE(r) << c.last_error();
    ASSERT_EQ(r->status, 200);
  }
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  EXPECT_LT(took, 1500) << "60 small keep-alive requests took " << took << " ms";
}

TEST_F(ProxyBasic, PipelinedSlowThenFastAnsweredInOrder) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send(get_request("/slow?delay_ms=300") + get_request("/fast"));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/slow?delay_ms=300");
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/fast");
}

TEST_F(ProxyBasic, ClientAbortMidUploadReleasesUpstreamAndOthersContinue) {
  Proxy& p = start_proxy({});
  Backend& b = *backends_[0];
  {
    Client c(p.port());
    c.send("POST /abort HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10000000\r\n\r\n");
    c.send(pattern_bytes(0, 1 << 20));
  }  // closed mid-body
  std::string why;
  auto r = round_trip(p.port(), get_request("/next"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);
  // The upstream connection that carried the half body is closed, not pooled or leaked (the
  // /_stats connection counts itself, and at most one idle pooled connection may remain).
  auto deadline = Clock::now() + Ms(3000);
  BackendStats st;
  while (Clock::now() < deadline) {
    st = b.stats();
    if (st.open_connections <= 2) break;
    std::this_thread::sleep_for(Ms(50));
  }
  EXPECT_LE(st.open_connections, 2u) << "upstream connection of the aborted upload left open";
  EXPECT_EQ(st.requests, 1u) << "the aborted upload was completed towards the backend";
  auto v = p.wait_metric("bgproxy_client_connections", {}, [](double x) { return x == 0; });
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 0);
}

}  // namespace
}  // namespace bgtest
