#pragma once
/// The pure decisions of one exchange (one request and its response), apart from the I/O that
/// carries them out, so an HTTP/1.1 connection today and an HTTP/2 stream later make them the
/// same way: the sticky key and forced color of a request, the least-outstanding server pick,
/// whether a failed upstream attempt goes again, and which methods are idempotent.
/// Header-only: each is a few comparisons the compiler should inline into the session.
/// Thread: any.

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/verb.hpp>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "proxy/http/cookie.hpp"
#include "proxy/http/parsed_head.hpp"

namespace bgproxy::proxy {

inline constexpr std::uint32_t no_server = ~0u;

/// The largest response head read from a backend (the client's answer and a shadow copy's).
inline constexpr std::uint64_t upstream_header_limit = 64 * 1024;

/// Methods whose request may be sent twice with the effect of once (RFC 9110 §9.2.2).
constexpr bool is_idempotent(boost::beast::http::verb m) noexcept {
  using boost::beast::http::verb;
  return m == verb::get || m == verb::head || m == verb::options || m == verb::put || m == verb::delete_ ||
         m == verb::trace;
}

/// @return true when an Upgrade value offers the websocket protocol (any case, anywhere in the list).
inline bool offers_websocket(std::string_view upgrade) noexcept {
  for (auto token : boost::beast::http::token_list{upgrade}) {
    if (boost::beast::iequals(token, "websocket")) return true;
  }
  return false;
}

/// The key a request's sticky bucket is hashed from (conf/bgproxy.yaml `sticky`: the configured header, else the
/// cookie, or the source address). Empty when the client brings none: a cookie service then
/// gives it a fresh id; a service without stickiness routes it by a random bucket.
inline std::string_view sticky_key(const config::Sticky& sticky, const ParsedHead& req, std::string_view client_ip) {
  namespace http = boost::beast::http;
  switch (sticky.kind) {
    case config::Sticky::Kind::source_ip:
      return client_ip;
    case config::Sticky::Kind::header:
      return req[sticky.name];
    case config::Sticky::Kind::cookie:
      for (const auto& field : req) {
        if (field.name() != http::field::cookie) continue;
        if (const auto key = find_cookie(field.value(), sticky.name); !key.empty()) return key;
      }
      return {};
    case config::Sticky::Kind::none:
      break;
  }
  return {};
}

/// The color an override header forces: honoured only from an allowed address, and only for
/// `green` or `blue` (any case); anything else is ignored (and, like every override header,
/// never forwarded).
inline std::optional<routing::Color> forced_color(const config::Override& o, std::string_view value,
                                                  const std::array<std::uint8_t, 16>& client_addr) {
  if (!o.enabled || value.empty()) return std::nullopt;
  const bool allowed = std::any_of(o.allow_from.begin(), o.allow_from.end(),
                                   [&](const config::Cidr& c) { return c.contains(client_addr); });
  if (!allowed) return std::nullopt;
  if (boost::beast::iequals(value, "green")) return routing::Color::green;
  if (boost::beast::iequals(value, "blue")) return routing::Color::blue;
  return std::nullopt;
}

/// Least outstanding requests among a color's eligible servers (usable; in panic, merely
/// enabled), starting the scan at `start` so ties spread; `excluded` (the server that just
/// failed) is skipped unless it is the only one left.
/// @param load outstanding requests of a server id, e.g. the worker pool's counter
template <class Load>
std::uint32_t pick_server(const std::vector<routing::ServerRoute>& pool, bool panic, std::uint32_t excluded,
                          std::size_t start, const Load& load) {
  std::uint32_t best = no_server;
  unsigned best_load = ~0u;
  const auto n = pool.size();
  for (std::size_t k = 0; k < n; ++k) {
    const auto& s = pool[(start + k) % n];
    if (!(panic ? s.enabled : s.usable()) || s.id == excluded) continue;
    if (const unsigned l = load(s.id); l < best_load) {
      best = s.id;
      best_load = l;
    }
  }
  if (best == no_server && excluded != no_server) return pick_server(pool, panic, no_server, start, load);
  return best;
}

/// What is known of an upstream attempt that failed before any response byte reached the client.
struct FailedAttempt {
  stats::FailureReason reason = stats::FailureReason::connect;
  unsigned status = 502;       ///< what the client gets if nothing goes again (502, 504)
  bool connect_phase = false;  ///< nothing of the request was sent yet
  bool reused = false;         ///< the connection came from the pool
  bool response_bytes_seen = false;
  bool body_intact = false;    ///< the request body can be sent again (none, or not yet sent)
  bool idempotent = false;
  /// An HTTP/2 server refused the stream (REFUSED_STREAM, or above its GOAWAY's last id): it
  /// did nothing with the request, which may go again whatever its method (RFC 9113 §8.7).
  bool refused = false;
  int retries_left = 0;
};

/// Envoy's RetryState idea, as a value: what a failed attempt leads to.
enum class RetryVerdict : std::uint8_t {
  fresh_connection,  ///< a pooled connection the backend had closed: says nothing of the server
  other_server,      ///< one retry, on another server of the color if there is one
  fail,              ///< answer `status`
};

/// Only a refused connection or a reset before any response byte may be replayed (a timeout
/// may mean the backend is still working on it), and only when the request can be sent again
/// as it was: nothing of it sent yet, an idempotent method with no body, or a refused stream
/// whose body was kept. A refused stream says nothing against the server (a graceful GOAWAY).
constexpr RetryVerdict retry_verdict(const FailedAttempt& a) noexcept {
  const bool retriable = (a.reason == stats::FailureReason::connect && a.status == 502) ||
                         (a.reason == stats::FailureReason::reset && !a.response_bytes_seen);
  const bool replayable = retriable && a.body_intact && (a.connect_phase || a.idempotent || a.refused);
  if (!replayable) return RetryVerdict::fail;
  if (a.refused) return RetryVerdict::fresh_connection;
  if (a.reused && !a.response_bytes_seen && a.reason == stats::FailureReason::reset) return RetryVerdict::fresh_connection;
  return a.retries_left > 0 ? RetryVerdict::other_server : RetryVerdict::fail;
}

/// The failure was a pooled connection the backend had closed while it idled: a stale reuse.
constexpr bool stale_reuse(const FailedAttempt& a) noexcept {
  return a.reused && !a.response_bytes_seen && a.reason == stats::FailureReason::reset && !a.refused;
}

}  // namespace bgproxy::proxy
