#pragma once
/// bgproxy::stats — per-worker request counters and their merged view.
/// Each worker owns one RequestStats and increments plain integers in it on its
/// own thread; the control thread asks every worker for a copy and merges them
/// (no locks or shared atomics on the request path).
/// Thread: a shard belongs to one worker; copies are free to move.

#include <array>
#include <cstdint>
#include <vector>

#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/shadow/shadow_stats.hpp"
#include "bgproxy/stats/latency_histogram.hpp"

namespace bgproxy::stats {

/// Upper bounds (seconds) of the request-duration histogram buckets; +Inf is implicit.
inline constexpr std::array<double, 14> duration_bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,    0.25,  0.5,    1.0,   2.5,   5.0,  10.0};

enum class CodeClass : std::uint8_t { c2xx = 0, c3xx, c4xx, c5xx };
inline constexpr std::array<const char*, 4> code_class_names{"2xx", "3xx", "4xx", "5xx"};

/// Maps a status to its class; 1xx finals (101) count as 2xx, the request succeeded.
constexpr CodeClass code_class(unsigned status) noexcept {
  if (status < 300) return CodeClass::c2xx;
  if (status < 400) return CodeClass::c3xx;
  if (status < 500) return CodeClass::c4xx;
  return CodeClass::c5xx;
}

enum class FailureReason : std::uint8_t { connect = 0, timeout, reset, protocol };
inline constexpr std::array<const char*, 4> failure_reason_names{"connect", "timeout", "reset", "protocol"};

/// Why a client's TLS handshake failed: a version or non-TLS bytes (`protocol`, plaintext HTTP
/// included), no common cipher, any other handshake alert, the client_header deadline, or the
/// client going away mid-handshake.
/// Why an HTTP/2 client connection or stream was cut (bgproxy_http2_protocol_errors_total{reason}):
/// a flood nghttp2's limits caught (rapid reset, SETTINGS, PING, CONTINUATION, empty frames), a
/// connection that did not open with the preface, a header list over http2.max_header_list_bytes,
/// a malformed request stream, or another protocol error that ends the connection.
enum class Http2ErrorReason : std::uint8_t { flood = 0, bad_preface, headers_too_large, malformed_stream, protocol };
inline constexpr std::array<const char*, 5> http2_error_reason_names{"flood", "bad_preface", "headers_too_large",
                                                                     "malformed_stream", "protocol"};

enum class TlsFailureReason : std::uint8_t { protocol = 0, no_shared_cipher, handshake, timeout, eof };
inline constexpr std::array<const char*, 5> tls_failure_reason_names{"protocol", "no_shared_cipher", "handshake",
                                                                     "timeout", "eof"};

struct ColorStats {
  std::array<std::uint64_t, 4> responses{};  ///< by CodeClass
  std::array<std::uint64_t, duration_bounds.size() + 1> duration_buckets{};  ///< non-cumulative, last = +Inf
  double duration_sum = 0;  ///< seconds
  LatencyHistogram latency;  ///< the same durations, precise enough for the watchdog's p95
  std::uint64_t upstream_failures = 0;  ///< requests that failed for an upstream reason
  /// Answers of a gRPC service by grpc-status 0..16; the last: none at the stream's end.
  std::array<std::uint64_t, 18> grpc_statuses{};
  /// gRPC streaming calls (SPEC §13): counted in `responses`, their durations in no histogram.
  std::uint64_t streaming_calls = 0;

  void record(unsigned status, double seconds) noexcept;
  /// A streaming call: more than one message either way, or longer than upstream_response. Its
  /// duration is how long the stream stayed open, not a latency: it would only skew p95.
  void record_streaming(unsigned status) noexcept;
  void merge(const ColorStats& o) noexcept;
};

struct ServerStats {
  std::array<std::uint64_t, 4> failures{};  ///< by FailureReason
  /// Requests answered 502 because a reused keep-alive connection had been closed by the
  /// backend (also counted as a `reset` failure).
  std::uint64_t stale_reuses = 0;
  /// The idle age after which pooled connections to this server are retired because the
  /// backend was seen closing them (80 % of the shortest age seen), in microseconds; 0 =
  /// nothing learned. Merged as the tightest of the workers' values.
  std::uint64_t learned_idle_us = 0;
  void merge(const ServerStats& o) noexcept;
};

struct ServiceStats {
  std::array<ColorStats, 2> colors;  ///< by routing::Color
  std::uint64_t failovers_from[2]{};  ///< requests moved away from this color
  shadow::ServiceShadowStats shadow;  ///< mirrored requests (SPEC §14); never in `colors`
  void merge(const ServiceStats& o);
};

struct RequestStats {
  std::vector<ServiceStats> services;  ///< by service index
  std::vector<ServerStats> servers;    ///< by server id
  std::uint64_t unrouted = 0;          ///< requests answered locally (404, 400, ...) before routing
  std::int64_t client_connections = 0;
  std::uint64_t tls_handshakes = 0;                   ///< completed client handshakes
  std::array<std::uint64_t, 5> tls_handshake_failures{};  ///< by TlsFailureReason
  std::array<std::uint64_t, 5> http2_protocol_errors{};   ///< by Http2ErrorReason

  RequestStats() = default;
  RequestStats(std::size_t service_count, std::size_t server_count)
      : services(service_count), servers(server_count) {}
  void merge(const RequestStats& o);
};

}  // namespace bgproxy::stats
