// SPEC §3 limits: max_header_bytes → 431, max_body_bytes → 413, max_connections.

#include "harness.hpp"

namespace bgtest {
namespace {

class ProxyLimits : public IntegrationTest {};

TEST_F(ProxyLimits, OversizedHeaderIs431AndNotForwarded) {
  ProxyConfig cfg;
  cfg.max_header_bytes = 4096;
  Proxy& p = start_proxy(cfg);
  Backend& b = *backends_[0];

  std::string why;
  auto r = round_trip(p.port(), get_request("/small", "X-Pad: " + std::string(2000, 'x') + "\r\n"),
                      Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200) << "a header well under the limit was refused";

  Client c(p.port());
  (void)c.try_send(get_request("/big", "X-Pad: " + std::string(8000, 'x') + "\r\n"), Ms(3000));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 431) << r->raw_head;
  EXPECT_FALSE(r->has_header("X-Backend"));
  EXPECT_NE(c.read_until_close(Ms(3000)), ReadEnd::Timeout) << "connection left open after 431";

  // Many small headers adding up beyond the limit count too.
  std::string many;
  for (int i = 0; i < 200; ++i) many += "X-H" + std::to_string(i) + ": " + std::string(40, 'y') + "\r\n";
  Client c2(p.port());
  (void)c2.try_send(get_request("/many", many), Ms(3000));
  r = c2.read_response(Ms(3000));
  ASSERT_TRUE(r) << c2.last_error();
  EXPECT_EQ(r->status, 431) << r->raw_head;

  EXPECT_EQ(b.stats().requests, 1u) << "an oversized request reached the backend";
}

TEST_F(ProxyLimits, ContentLengthAboveMaxBodyIs413AndNotForwarded) {
  ProxyConfig cfg;
  cfg.max_body_bytes = 1024;
  Proxy& p = start_proxy(cfg);
  Backend& b = *backends_[0];

  std::string why;
  auto r = round_trip(p.port(), request_with_body("POST", "/ok", std::string(1000, 'a')), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);

  // Only the head is sent: the answer must come from the Content-Length alone.
  Client c(p.port());
  c.send("POST /big HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2048\r\n\r\n");
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 413) << r->raw_head;
  EXPECT_FALSE(r->has_header("X-Backend"));
  EXPECT_NE(c.read_until_close(Ms(3000)), ReadEnd::Timeout) << "connection left open after 413";
  EXPECT_EQ(b.stats().requests, 1u);
}

TEST_F(ProxyLimits, ChunkedBodyAboveMaxBodyIs413) {
  ProxyConfig cfg;
  cfg.max_body_bytes = 1024;
  Proxy& p = start_proxy(cfg);
  Backend& b = *backends_[0];
  Client c(p.port());
  std::string chunk(800, 'z');
  (void)c.try_send("POST /big HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n",
                   Ms(3000));
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 413) << r->raw_head;
  EXPECT_NE(c.read_until_close(Ms(3000)), ReadEnd::Timeout);
  EXPECT_EQ(b.stats().requests, 0u) << "the backend received the whole oversized body";
}

TEST_F(ProxyLimits, MaxConnectionsThirdConnectionRefusedWhileTwoOpen) {
  ProxyConfig cfg;
  cfg.max_connections = 2;
  Proxy& p = start_proxy(cfg);

  // Two connections, each proven accepted by a served request.
  std::vector<Client> open;
  for (int i = 0; i < 2; ++i) {
    open.emplace_back(p.port());
    open.back().send(get_request("/held"));
    auto r = open.back().read_response(Ms(3000));
    ASSERT_TRUE(r) << "connection " << i + 1 << ": " << open.back().last_error();
    ASSERT_EQ(r->status, 200);
  }

  int err = 0;
  auto third = Client::try_connect(p.port(), Ms(1000), &err);
  if (third) {
    (void)third->try_send(get_request("/third"), Ms(1000));
    auto r = third->read_response(Ms(2000));
    if (r) {
      EXPECT_EQ(r->status, 503) << "the third connection was served: " << r->raw_head;
      EXPECT_NE(third->read_until_close(Ms(2000)), ReadEnd::Timeout);
    } else {
      EXPECT_EQ(third->last_error().find("timeout"), std::string::npos)
          << "third connection neither refused nor closed (left pending): " << third->last_error();
    }
  }  // else: refused at connect: fine
  EXPECT_EQ(backends_[0]->stats().requests, 2u);

  // Closing one frees a slot.
  open.pop_back();
  auto deadline = Clock::now() + Ms(3000);
  std::optional<Response> r;
  std::string why;
  while (Clock::now() < deadline) {
    r = round_trip(p.port(), get_request("/after"), Ms(1000), &why);
    if (r && r->status == 200) break;
    std::this_thread::sleep_for(Ms(50));
  }
  ASSERT_TRUE(r && r->status == 200) << "no slot freed after closing a connection: " << why;
}

}  // namespace
}  // namespace bgtest
