#pragma once
/// bgproxy::config — the configuration model (conf/bgproxy.yaml) as plain structs.
/// Every field carries its documented default, so a value-initialised struct is the
/// default configuration (except `services`, which the file must provide).
/// Thread: any (immutable once loaded).

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bgproxy::config {

using Duration = std::chrono::milliseconds;

/// A host:port as written in the config. `text` is kept verbatim because it is
/// the `server` label value of the metrics (README "Metrics").
struct Endpoint {
  std::string text;   ///< as written, e.g. "127.0.0.1:5006"
  std::string host;   ///< "127.0.0.1", "::1" (no brackets), or a DNS name
  std::uint16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

/// An IPv4 or IPv6 network. IPv4 is stored as an IPv4-mapped IPv6 address
/// (::ffff:a.b.c.d) with prefix + 96, so one comparison serves both families.
struct Cidr {
  std::array<std::uint8_t, 16> address{};
  std::uint8_t prefix = 0;  ///< 0..128, in IPv6 terms
  std::string text;         ///< as written
  /// @param v6 an address in IPv6 (or IPv4-mapped) form
  /// @return true when `v6` lies inside this network
  bool contains(const std::array<std::uint8_t, 16>& v6) const noexcept;
};

struct TlsCertificate {
  std::string certificate;
  std::string private_key;
};

/// What a listener speaks (SPEC §13): `http/1.1`; `h2` offered by ALPN on a TLS listener; `h2c`,
/// HTTP/2 with prior knowledge on a plain one.
enum class Protocol : std::uint8_t { http1, h2, h2c };

struct Listener {
  Endpoint address;
  std::vector<TlsCertificate> tls;  ///< empty: plain TCP; several: chosen by SNI
  /// In the config's order (the ALPN preference). Default: [h2, http/1.1] with TLS, [http/1.1] without.
  std::vector<Protocol> protocols{Protocol::http1};

  bool speaks(Protocol p) const noexcept {
    for (auto q : protocols)
      if (q == p) return true;
    return false;
  }
};

/// HTTP/2 connection settings (SPEC §13), the same for every listener.
struct Http2 {
  std::uint32_t max_concurrent_streams = 100;
  std::uint32_t initial_stream_window = 65536;
  std::uint32_t initial_connection_window = 1048576;
  std::uint32_t max_header_list_bytes = 16384;
};

struct Admin {
  Endpoint address{"127.0.0.1:9901", "127.0.0.1", 9901};
};

struct Control {
  std::string socket = "/run/bgproxy/control.sock";
  std::uint32_t mode = 0660;
};

struct Limits {
  std::uint64_t max_connections = 100000;
  std::uint64_t max_header_bytes = 16384;
  std::uint64_t max_body_bytes = 0;  ///< 0 = unlimited, streamed
};

struct Timeouts {
  Duration client_header = std::chrono::seconds(10);
  Duration client_idle = std::chrono::seconds(60);
  Duration upstream_connect = std::chrono::seconds(2);
  Duration upstream_response = std::chrono::seconds(30);
  /// A pooled upstream connection idle longer than this is closed, not reused: below the 5 s
  /// keep-alive of common servers (Node.js, Apache), so bgproxy lets go first.
  Duration upstream_idle = std::chrono::seconds(4);
  Duration shutdown = std::chrono::seconds(30);
};

struct AccessLog {
  enum class Kind { stdout_stream, off, file };
  Kind kind = Kind::stdout_stream;
  std::string path;  ///< only for Kind::file
};

struct Match {
  std::string host = "*";         ///< exact host (case-insensitive, no port) or "*"
  std::string path_prefix = "/";
};

/// Upstream TLS of one color pool (`blue.tls` / `green.tls`).
struct UpstreamTls {
  bool enabled = false;       ///< false: plain TCP (no `tls` key, or `enabled: false`)
  bool verify = true;         ///< verify the server's chain and name
  std::string ca;             ///< CA bundle; empty: the system default paths
  std::string sni;            ///< empty: each server's host when it is a name (not an IP)
  std::string client_certificate;  ///< both or neither
  std::string client_key;
};

struct Pool {
  std::vector<Endpoint> servers;
  UpstreamTls tls;
  /// How requests reach these servers (SPEC §13): http/1.1, or HTTP/2 — h2c in clear, h2 over `tls`.
  Protocol protocol = Protocol::http1;
};

struct Sticky {
  enum class Kind { none, cookie, header, source_ip };
  Kind kind = Kind::cookie;
  std::string name = "bg_id";  ///< cookie or header name; empty for none/source_ip
};

struct Override {
  bool enabled = true;
  std::string header = "X-Bg-Color";
  std::vector<Cidr> allow_from;  ///< default: 127.0.0.0/8 and ::1/128 (set by the parser)
};

/// Inclusive status ranges, e.g. "200-399" or "200,204,300-399".
struct StatusRange {
  unsigned low = 200;
  unsigned high = 399;
};

/// What an active check asks a server (SPEC §13), always over the color's own protocol (HTTP/1.1,
/// h2c or h2): `GET path`, or the unary call grpc.health.v1.Health/Check, which needs HTTP/2.
enum class HealthProtocol : std::uint8_t { http, grpc };

struct HealthCheck {
  bool enabled = true;  ///< `health_check: off` sets false
  HealthProtocol protocol = HealthProtocol::http;
  std::string service;  ///< grpc: the HealthCheckRequest's service; empty = the server as a whole
  std::string path = "/health";  ///< http only
  Duration interval = std::chrono::seconds(1);
  Duration timeout = std::chrono::milliseconds(500);
  unsigned rise = 2;
  unsigned fall = 3;
  std::vector<StatusRange> expect_status{StatusRange{}};  ///< http only: grpc needs 200 and SERVING
  unsigned passive_failures = 5;  ///< 0 = off
};

/// How the watchdog decides: fixed thresholds over a sliding window (SPEC §6), or evidence that
/// stays valid however often it is looked at (SPEC §16).
enum class WatchdogMethod : std::uint8_t { threshold, sequential };

struct Watchdog {
  bool enabled = true;
  bool dry_run = false;
  WatchdogMethod method = WatchdogMethod::threshold;
  double alpha = 0.01;  ///< sequential: the false-rollback rate allowed over a whole rollout
  Duration window = std::chrono::seconds(30);
  std::uint64_t min_requests = 20;
  double max_error_rate = 0.05;
  Duration max_p95 = std::chrono::seconds(2);
  Duration bake_time = std::chrono::minutes(5);
  double max_error_rate_delta = 0.02;
  double max_p95_ratio = 1.5;
  /// SPEC §14: `canary start` and `release` are refused while the target's shadow mismatch rate
  /// (shadow::Report::mismatch_rate) is above it, unless forced; absent = no gate.
  std::optional<double> max_shadow_mismatch_rate;
};

struct Canary {
  std::vector<std::uint32_t> steps_bp{1000, 5000, 10000};  ///< green weights in basis points
  Duration interval = std::chrono::seconds(60);
};

/// `shadow.compare` (SPEC §14): what of a mirrored pair's answers is compared.
struct ShadowCompare {
  bool status = true;
  std::vector<std::string> headers{"content-type"};  ///< lower-case names
  bool body = true;  ///< bytes, or field by field when both bodies are JSON
  /// Header names (lower-case) and JSON paths ("$.timestamp", "$.items[*].id") left out.
  std::vector<std::string> ignore;
  friend bool operator==(const ShadowCompare&, const ShadowCompare&) = default;
};

/// `shadow:` (SPEC §14): a share of eligible requests also sent to the idle color, whose answers
/// are compared with the client's and thrown away. percent_bp 0 = off.
struct Shadow {
  std::uint32_t percent_bp = 0;  ///< 0..10000 (percent × 100), like weights
  std::vector<std::string> methods{"GET", "HEAD"};  ///< upper-case
  std::uint64_t max_body_bytes = 64 * 1024;  ///< larger requests are not mirrored
  std::uint32_t max_in_flight = 64;          ///< per worker; beyond it a shadow is dropped
  ShadowCompare compare;
  friend bool operator==(const Shadow&, const Shadow&) = default;
};

struct Service {
  std::string name;
  Match match;
  Pool blue;
  Pool green;
  std::uint32_t initial_green_bp = 0;  ///< 0..10000 (percent × 100)
  Sticky sticky;
  Override override_color;  ///< YAML key `override`
  bool expose_color_header = true;
  /// A gRPC service (SPEC §13): answers are errors by their grpc-status, not only their HTTP status.
  bool grpc = false;
  HealthCheck health_check;
  Watchdog watchdog;
  Canary canary;
  Shadow shadow;
};

/// One etcd client URL: `http://host:port` or `https://host:port` (port 2379 when left out).
struct EtcdEndpoint {
  std::string text;  ///< as written
  bool tls = false;
  std::string host;
  std::uint16_t port = 2379;
  bool operator==(const EtcdEndpoint&) const = default;
};

/// `cluster:` — several bgproxy instances share one state through etcd v3 (README "Running a
/// fleet"). Absent: one process and its state file, as before.
struct Cluster {
  bool enabled = false;  ///< a `cluster` section is present
  std::vector<EtcdEndpoint> endpoints{EtcdEndpoint{"http://127.0.0.1:2379", false, "127.0.0.1", 2379}};
  std::string prefix = "/bgproxy";  ///< every key of this fleet lives under it; no trailing '/'
  std::string username;             ///< etcd auth; its password is read from password_file
  std::string password_file;
  std::string ca;                   ///< https endpoints: CA bundle (empty = system CAs)
  std::string certificate;          ///< client certificate and key, both or neither
  std::string private_key;
  Duration timeout = std::chrono::seconds(2);     ///< one etcd request
  Duration lease_ttl = std::chrono::seconds(10);  ///< liveness of this instance's member and stats keys
  std::string instance;  ///< this instance's name; empty = hostname:admin port
};

/// One receiver of `notify.webhooks` (README "Notifications"): a POST per selected event.
struct Webhook {
  enum class Format : std::uint8_t { json, slack };
  std::string url;  ///< as written: http://HOST:PORT/PATH
  std::string host;
  std::uint16_t port = 80;
  std::string target = "/";  ///< the path (and query) the POST goes to
  /// Event kinds to send (switch, canary_step, verdict, rollback, promoted, health, release);
  /// left out: all but verdict.
  std::vector<std::string> events{"switch", "canary_step", "rollback", "promoted", "health", "release"};
  Format format = Format::json;
  Duration timeout = std::chrono::seconds(2);  ///< one attempt: connect, send, answer
};

/// `notify:` — who hears about changes. Absent: nobody.
struct Notify {
  std::vector<Webhook> webhooks;
};

struct Config {
  std::string source_path;  ///< file it was read from, for messages
  std::vector<Listener> listen{Listener{Endpoint{"0.0.0.0:8080", "0.0.0.0", 8080}, {}}};
  Admin admin;
  Control control;
  std::string state_file = "/var/lib/bgproxy/state.json";
  unsigned threads = 0;  ///< 0 = auto (hardware concurrency)
  Limits limits;
  Timeouts timeouts;
  Http2 http2;
  AccessLog access_log;
  Cluster cluster;
  Notify notify;
  std::vector<Service> services;
};

}  // namespace bgproxy::config
