#include "proxy/http/exchange_policy.hpp"

#include <map>
#include <random>
#include <vector>

#include <boost/beast/http/fields.hpp>
#include <gtest/gtest.h>

#include "bgproxy/config/parse.hpp"

namespace bgproxy::proxy {
namespace {

namespace http = boost::beast::http;
using routing::Color;
using routing::ServerRoute;
using stats::FailureReason;

// ------------------------------------------------------------------ idempotency, upgrade

TEST(ExchangePolicy, IdempotentMethods) {
  for (auto m : {http::verb::get, http::verb::head, http::verb::options, http::verb::put, http::verb::delete_,
                 http::verb::trace}) {
    EXPECT_TRUE(is_idempotent(m)) << http::to_string(m);
  }
  for (auto m : {http::verb::post, http::verb::patch, http::verb::connect, http::verb::unknown}) {
    EXPECT_FALSE(is_idempotent(m)) << http::to_string(m);
  }
}

TEST(ExchangePolicy, OnlyTheWebsocketTokenIsAnUpgradeWeTunnel) {
  EXPECT_TRUE(offers_websocket("websocket"));
  EXPECT_TRUE(offers_websocket("WebSocket"));
  EXPECT_TRUE(offers_websocket("h2c, websocket"));
  EXPECT_FALSE(offers_websocket("h2c"));
  EXPECT_FALSE(offers_websocket("websocket2"));
  EXPECT_FALSE(offers_websocket(""));
}

// ------------------------------------------------------------------ sticky key, forced color

ParsedHead request_fields(std::initializer_list<std::pair<const char*, const char*>> fields) {
  ParsedHead f;
  for (const auto& [name, value] : fields) f.add(http::string_to_field(name), name, value);
  return f;
}

TEST(ExchangePolicy, StickyKeyByKind) {
  const auto req = request_fields({{"X-User-Id", "u7"}, {"Cookie", "a=1; bg_id=abc"}});
  config::Sticky header{config::Sticky::Kind::header, "x-user-id"};
  config::Sticky cookie{config::Sticky::Kind::cookie, "bg_id"};
  config::Sticky source{config::Sticky::Kind::source_ip, ""};
  config::Sticky none{config::Sticky::Kind::none, ""};
  EXPECT_EQ(sticky_key(header, req, "10.0.0.1"), "u7");
  EXPECT_EQ(sticky_key(cookie, req, "10.0.0.1"), "abc");
  EXPECT_EQ(sticky_key(source, req, "10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(sticky_key(none, req, "10.0.0.1"), "");
}

TEST(ExchangePolicy, StickyCookieFoundInAnyCookieLineAndMissingIsEmpty) {
  config::Sticky cookie{config::Sticky::Kind::cookie, "bg_id"};
  EXPECT_EQ(sticky_key(cookie, request_fields({{"Cookie", "x=1"}, {"Cookie", "bg_id=second"}}), "ip"), "second");
  EXPECT_EQ(sticky_key(cookie, request_fields({{"Cookie", "x=1"}}), "ip"), "");
  config::Sticky header{config::Sticky::Kind::header, "X-User-Id"};
  EXPECT_EQ(sticky_key(header, request_fields({}), "ip"), "");
}

config::Override allow_loopback() {
  config::Override o;
  const auto loopback = config::parse_cidr("127.0.0.0/8");
  EXPECT_TRUE(loopback);
  if (loopback) o.allow_from = {*loopback};
  return o;
}

std::array<std::uint8_t, 16> v4_mapped(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

TEST(ExchangePolicy, ForcedColorOnlyFromAllowedAddresses) {
  const auto o = allow_loopback();
  EXPECT_EQ(forced_color(o, "green", v4_mapped(127, 0, 0, 1)), Color::green);
  EXPECT_EQ(forced_color(o, "BLUE", v4_mapped(127, 0, 0, 1)), Color::blue);
  EXPECT_EQ(forced_color(o, "green", v4_mapped(10, 0, 0, 1)), std::nullopt);
  EXPECT_EQ(forced_color(o, "purple", v4_mapped(127, 0, 0, 1)), std::nullopt);
  EXPECT_EQ(forced_color(o, "", v4_mapped(127, 0, 0, 1)), std::nullopt);
  auto off = o;
  off.enabled = false;
  EXPECT_EQ(forced_color(off, "green", v4_mapped(127, 0, 0, 1)), std::nullopt);
}

// ------------------------------------------------------------------ least-outstanding pick

std::vector<ServerRoute> servers(std::initializer_list<ServerRoute> s) { return s; }

TEST(ExchangePolicy, PickTheLeastOutstandingUsableServer) {
  const auto pool = servers({{10, true, true}, {11, true, true}, {12, true, true}});
  std::map<std::uint32_t, unsigned> load{{10, 3}, {11, 1}, {12, 2}};
  const auto by = [&](std::uint32_t id) { return load[id]; };
  for (std::size_t start = 0; start < 3; ++start) EXPECT_EQ(pick_server(pool, false, no_server, start, by), 11u);
}

TEST(ExchangePolicy, TiesGoToTheFirstFromTheStartOffset) {
  const auto pool = servers({{10, true, true}, {11, true, true}, {12, true, true}});
  const auto idle = [](std::uint32_t) { return 0u; };
  EXPECT_EQ(pick_server(pool, false, no_server, 0, idle), 10u);
  EXPECT_EQ(pick_server(pool, false, no_server, 1, idle), 11u);
  EXPECT_EQ(pick_server(pool, false, no_server, 2, idle), 12u);
}

TEST(ExchangePolicy, UnhealthyAndDisabledServersAreSkippedOutsidePanic) {
  const auto pool = servers({{10, true, false}, {11, false, true}, {12, true, true}});
  const auto idle = [](std::uint32_t) { return 0u; };
  EXPECT_EQ(pick_server(pool, false, no_server, 0, idle), 12u);
  const auto none = servers({{10, true, false}, {11, false, true}});
  EXPECT_EQ(pick_server(none, false, no_server, 0, idle), no_server);
}

TEST(ExchangePolicy, PanicServesEnabledServersWhateverTheirHealth) {
  const auto pool = servers({{10, true, false}, {11, false, false}});
  const auto idle = [](std::uint32_t) { return 0u; };
  EXPECT_EQ(pick_server(pool, true, no_server, 1, idle), 10u) << "a disabled server stays out even in panic";
}

TEST(ExchangePolicy, TheExcludedServerIsSkippedUnlessItIsTheOnlyOne) {
  const auto idle = [](std::uint32_t) { return 0u; };
  const auto two = servers({{10, true, true}, {11, true, true}});
  EXPECT_EQ(pick_server(two, false, 10, 0, idle), 11u);
  const auto one = servers({{10, true, true}});
  EXPECT_EQ(pick_server(one, false, 10, 0, idle), 10u);
  EXPECT_EQ(pick_server(servers({}), false, 10, 0, idle), no_server);
}

// ------------------------------------------------------------------ retry verdict

FailedAttempt reset_before_response() {
  FailedAttempt a;
  a.reason = FailureReason::reset;
  a.status = 502;
  a.retries_left = 1;
  return a;
}

TEST(ExchangePolicy, RefusedConnectionIsRetriedOnAnotherServerWhateverTheMethod) {
  FailedAttempt a;
  a.reason = FailureReason::connect;
  a.connect_phase = true;
  a.body_intact = true;
  a.retries_left = 1;
  EXPECT_EQ(retry_verdict(a), RetryVerdict::other_server);
  a.retries_left = 0;
  EXPECT_EQ(retry_verdict(a), RetryVerdict::fail);
}

TEST(ExchangePolicy, ConnectTimeoutIsNeverRetried) {
  FailedAttempt a;
  a.reason = FailureReason::connect;
  a.status = 504;
  a.connect_phase = true;
  a.body_intact = true;
  a.retries_left = 1;
  EXPECT_EQ(retry_verdict(a), RetryVerdict::fail);
}

TEST(ExchangePolicy, StalePooledConnectionGoesToAFreshOneWithoutUsingTheRetry) {
  auto a = reset_before_response();
  a.reused = true;
  a.idempotent = true;
  a.body_intact = true;
  a.retries_left = 0;
  EXPECT_EQ(retry_verdict(a), RetryVerdict::fresh_connection);
  EXPECT_TRUE(stale_reuse(a));
}

TEST(ExchangePolicy, ResetOfANonIdempotentOrBodyRequestFails) {
  auto post = reset_before_response();
  post.reused = true;
  post.body_intact = true;
  EXPECT_EQ(retry_verdict(post), RetryVerdict::fail);
  EXPECT_TRUE(stale_reuse(post)) << "counted as a stale reuse";
  auto put_with_body = reset_before_response();
  put_with_body.idempotent = true;
  put_with_body.body_intact = false;
  EXPECT_EQ(retry_verdict(put_with_body), RetryVerdict::fail);
}

TEST(ExchangePolicy, ResetAfterResponseBytesOrATimeoutIsNeverReplayed) {
  auto seen = reset_before_response();
  seen.idempotent = true;
  seen.body_intact = true;
  seen.reused = true;
  seen.response_bytes_seen = true;
  EXPECT_EQ(retry_verdict(seen), RetryVerdict::fail);
  EXPECT_FALSE(stale_reuse(seen));
  auto timeout = reset_before_response();
  timeout.reason = FailureReason::timeout;
  timeout.status = 504;
  timeout.idempotent = true;
  timeout.body_intact = true;
  EXPECT_EQ(retry_verdict(timeout), RetryVerdict::fail);
  auto protocol = reset_before_response();
  protocol.reason = FailureReason::protocol;
  protocol.idempotent = true;
  protocol.body_intact = true;
  EXPECT_EQ(retry_verdict(protocol), RetryVerdict::fail);
}

TEST(ExchangePolicy, FreshConnectionResetOfAnIdempotentRequestUsesTheOneRetry) {
  auto a = reset_before_response();
  a.idempotent = true;
  a.body_intact = true;
  EXPECT_EQ(retry_verdict(a), RetryVerdict::other_server);
  a.retries_left = 0;
  EXPECT_EQ(retry_verdict(a), RetryVerdict::fail);
}

TEST(ExchangePolicy, StreamRefusedByAnHttp2ServerGoesAgainWhateverTheMethodWithoutUsingTheRetry) {
  auto post = reset_before_response();
  post.refused = true;
  post.body_intact = true;  // the stream kept the body it sent
  post.retries_left = 0;
  EXPECT_EQ(retry_verdict(post), RetryVerdict::fresh_connection);
  post.reused = true;
  EXPECT_EQ(retry_verdict(post), RetryVerdict::fresh_connection);
  EXPECT_FALSE(stale_reuse(post)) << "a GOAWAY is no stale connection";
  auto answered = post;
  answered.response_bytes_seen = true;
  EXPECT_EQ(retry_verdict(answered), RetryVerdict::fail);
  auto body_gone = post;
  body_gone.body_intact = false;  // larger than the stream keeps
  EXPECT_EQ(retry_verdict(body_gone), RetryVerdict::fail);
}

}  // namespace
}  // namespace bgproxy::proxy
