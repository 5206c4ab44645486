// Parsing valid configurations: SPEC §3 defaults, the full SPEC example, every
// alternative form of a field, load_file() and the shipped conf/ files.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "bgproxy/config/parse.hpp"

namespace bgproxy::config {
namespace {

using namespace std::chrono_literals;

constexpr const char* kMinimal =
    "services:\n"
    "  - name: app\n"
    "    blue: { servers: [\"127.0.0.1:5005\"] }\n";

// The example of SPEC §3, verbatim apart from the cert/key paths.
constexpr const char* kSpecExample = R"(listen:                          # one or more
  - address: 0.0.0.0:8080
  - address: 0.0.0.0:8443
    tls: { certificate: cert.pem, private_key: key.pem }   # SNI: a list of these
admin:
  address: 127.0.0.1:9901        # GET /metrics /healthz /readyz /status (read-only)
control:
  socket: /run/bgproxy/control.sock
  mode: "0660"
state_file: /var/lib/bgproxy/state.json
threads: auto                    # worker event loops; auto = cores
limits: { max_connections: 100000, max_header_bytes: 16384, max_body_bytes: 0 }  # 0 = unlimited, streamed
timeouts: { client_header: 10s, client_idle: 60s, upstream_connect: 2s,
            upstream_response: 30s, shutdown: 30s }
access_log: stdout               # stdout | off | /path
services:
  - name: app
    match: { host: "*", path_prefix: "/" }     # first match wins
    blue:  { servers: ["127.0.0.1:5005"] }
    green: { servers: ["127.0.0.1:5006"] }
    initial: { green: 0 }                        # used only when no state file exists
    sticky: { cookie: bg_id }                    # or { header: X-User-Id } or { source_ip: true } or none
    override: { header: X-Bg-Color, allow_from: ["127.0.0.0/8"] }
    expose_color_header: true                    # adds X-Bg-Color to responses
    health_check: { path: /health, interval: 1s, timeout: 500ms, rise: 2, fall: 3,
                    expect_status: "200-399", passive_failures: 5 }   # `health_check: off` = no active checks
    watchdog: { enabled: true, window: 30s, min_requests: 20,
                max_error_rate: 0.05, max_p95: 2s, bake_time: 5m,
                max_error_rate_delta: 0.02, max_p95_ratio: 1.5 }   # the last two compare against the other color
    canary: { steps: [10, 50, 100], interval: 60s }
)";

Config parse_ok(std::string_view yaml) {
  auto r = parse(yaml, "test.yaml");
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return Config{};
  }
  return std::move(*r);
}

std::array<std::uint8_t, 16> v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

std::string with_service(std::string_view extra) { return std::string(kMinimal) + std::string(extra); }

TEST(ConfigParse, DefaultsMatchSpec) {
  const Config c = parse_ok(kMinimal);
  EXPECT_EQ(c.source_path, "test.yaml");
  ASSERT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(c.listen[0].address, (Endpoint{"0.0.0.0:8080", "0.0.0.0", 8080}));
  EXPECT_TRUE(c.listen[0].tls.empty());
  EXPECT_EQ(c.admin.address, (Endpoint{"127.0.0.1:9901", "127.0.0.1", 9901}));
  EXPECT_EQ(c.control.socket, "/run/bgproxy/control.sock");
  EXPECT_EQ(c.control.mode, 0660u);
  EXPECT_EQ(c.state_file, "/var/lib/bgproxy/state.json");
  EXPECT_EQ(c.threads, 0u);
  EXPECT_EQ(c.limits.max_connections, 100000u);
  EXPECT_EQ(c.limits.max_header_bytes, 16384u);
  EXPECT_EQ(c.limits.max_body_bytes, 0u);
  EXPECT_EQ(c.timeouts.client_header, 10s);
  EXPECT_EQ(c.timeouts.client_idle, 60s);
  EXPECT_EQ(c.timeouts.upstream_connect, 2s);
  EXPECT_EQ(c.timeouts.upstream_response, 30s);
  EXPECT_EQ(c.timeouts.upstream_idle, 4s);
  EXPECT_EQ(c.timeouts.shutdown, 30s);
  EXPECT_EQ(c.access_log.kind, AccessLog::Kind::stdout_stream);

  ASSERT_EQ(c.services.size(), 1u);
  const Service& s = c.services[0];
  EXPECT_EQ(s.name, "app");
  EXPECT_EQ(s.match.host, "*");
  EXPECT_EQ(s.match.path_prefix, "/");
  ASSERT_EQ(s.blue.servers.size(), 1u);
  EXPECT_EQ(s.blue.servers[0], (Endpoint{"127.0.0.1:5005", "127.0.0.1", 5005}));
  EXPECT_TRUE(s.green.servers.empty());
  EXPECT_EQ(s.initial_green_bp, 0u);
  EXPECT_EQ(s.sticky.kind, Sticky::Kind::cookie);
  EXPECT_EQ(s.sticky.name, "bg_id");
  EXPECT_TRUE(s.override_color.enabled);
  EXPECT_EQ(s.override_color.header, "X-Bg-Color");
  ASSERT_EQ(s.override_color.allow_from.size(), 2u);
  EXPECT_EQ(s.override_color.allow_from[0].text, "127.0.0.0/8");
  EXPECT_EQ(s.override_color.allow_from[1].text, "::1/128");
  EXPECT_TRUE(s.override_color.allow_from[0].contains(v4(127, 1, 2, 3)));
  EXPECT_TRUE(s.expose_color_header);

  const HealthCheck& h = s.health_check;
  EXPECT_TRUE(h.enabled);
  EXPECT_EQ(h.protocol, HealthProtocol::http);
  EXPECT_EQ(h.service, "");
  EXPECT_EQ(h.path, "/health");
  EXPECT_EQ(h.interval, 1s);
  EXPECT_EQ(h.timeout, 500ms);
  EXPECT_EQ(h.rise, 2u);
  EXPECT_EQ(h.fall, 3u);
  ASSERT_EQ(h.expect_status.size(), 1u);
  EXPECT_EQ(h.expect_status[0].low, 200u);
  EXPECT_EQ(h.expect_status[0].high, 399u);
  EXPECT_EQ(h.passive_failures, 5u);

  const Watchdog& w = s.watchdog;
  EXPECT_TRUE(w.enabled);
  EXPECT_FALSE(w.dry_run);
  EXPECT_EQ(w.window, 30s);
  EXPECT_EQ(w.min_requests, 20u);
  EXPECT_DOUBLE_EQ(w.max_error_rate, 0.05);
  EXPECT_EQ(w.max_p95, 2s);
  EXPECT_EQ(w.bake_time, 5min);
  EXPECT_DOUBLE_EQ(w.max_error_rate_delta, 0.02);
  EXPECT_DOUBLE_EQ(w.max_p95_ratio, 1.5);

  EXPECT_EQ(s.canary.steps_bp, (std::vector<std::uint32_t>{1000, 5000, 10000}));
  EXPECT_EQ(s.canary.interval, 60s);
}

TEST(ConfigParse, SpecExample) {
  const Config c = parse_ok(kSpecExample);
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].address.text, "0.0.0.0:8080");
  EXPECT_TRUE(c.listen[0].tls.empty());
  EXPECT_EQ(c.listen[1].address.port, 8443);
  ASSERT_EQ(c.listen[1].tls.size(), 1u);
  EXPECT_EQ(c.listen[1].tls[0].certificate, "cert.pem");
  EXPECT_EQ(c.listen[1].tls[0].private_key, "key.pem");
  EXPECT_EQ(c.admin.address.text, "127.0.0.1:9901");
  EXPECT_EQ(c.control.socket, "/run/bgproxy/control.sock");
  EXPECT_EQ(c.control.mode, 0660u);
  EXPECT_EQ(c.threads, 0u);
  EXPECT_EQ(c.limits.max_connections, 100000u);
  EXPECT_EQ(c.timeouts.upstream_response, 30s);
  EXPECT_EQ(c.access_log.kind, AccessLog::Kind::stdout_stream);
  ASSERT_EQ(c.services.size(), 1u);
  const Service& s = c.services[0];
  EXPECT_EQ(s.name, "app");
  ASSERT_EQ(s.green.servers.size(), 1u);
  EXPECT_EQ(s.green.servers[0].text, "127.0.0.1:5006");
  EXPECT_EQ(s.green.servers[0].port, 5006);
  EXPECT_EQ(s.sticky.kind, Sticky::Kind::cookie);
  EXPECT_EQ(s.sticky.name, "bg_id");
  ASSERT_EQ(s.override_color.allow_from.size(), 1u);
  EXPECT_EQ(s.override_color.allow_from[0].text, "127.0.0.0/8");
  EXPECT_FALSE(s.override_color.allow_from[0].contains(
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));  // ::1 no longer allowed
  EXPECT_EQ(s.health_check.timeout, 500ms);
  EXPECT_EQ(s.watchdog.bake_time, 5min);
  EXPECT_DOUBLE_EQ(s.watchdog.max_p95_ratio, 1.5);
  EXPECT_EQ(s.canary.steps_bp, (std::vector<std::uint32_t>{1000, 5000, 10000}));
}

TEST(ConfigParse, EveryFieldOverridden) {
  const Config c = parse_ok(R"(
listen:
  - address: "[::]:0"
  - address: 127.0.0.1:8443
    tls:
      - { certificate: /etc/a.pem, private_key: /etc/a.key }
      - { certificate: /etc/b.pem, private_key: /etc/b.key }
admin: { address: "127.0.0.1:0" }
control: { socket: /tmp/c.sock, mode: "0600" }
state_file: /tmp/state.json
threads: 4
limits: { max_connections: 10, max_header_bytes: 2048, max_body_bytes: 1048576 }
timeouts: { client_header: 1s, client_idle: 2s, upstream_connect: 250ms, upstream_response: 1.5s, upstream_idle: 900ms,
            shutdown: 1m }
access_log: /var/log/bgproxy/access.log
services:
  - name: api.v2
    match: { host: api.example.com, path_prefix: /api }
    blue: { servers: ["10.0.0.1:80", "10.0.0.2:80"] }
    green: { servers: ["[fd00::1]:80"] }
    initial: { green: 12.5 }
    sticky: { header: X-User-Id }
    override: { header: X-Force, allow_from: ["10.0.0.0/8", "fd00::/8"] }
    expose_color_header: false
    health_check: { path: /ready, interval: 2s, timeout: 1s, rise: 1, fall: 1,
                    expect_status: "200,204,300-399", passive_failures: 0 }
    watchdog: { enabled: false, dry_run: true, window: 10s, min_requests: 100, max_error_rate: 0.1,
                max_p95: 500ms, bake_time: 0s, max_error_rate_delta: 0, max_p95_ratio: 1 }
    canary: { steps: [1, 5.5, 25, 100], interval: 5m }
)");
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].address, (Endpoint{"[::]:0", "::", 0}));
  ASSERT_EQ(c.listen[1].tls.size(), 2u);
  EXPECT_EQ(c.listen[1].tls[1].certificate, "/etc/b.pem");
  EXPECT_EQ(c.listen[1].tls[1].private_key, "/etc/b.key");
  EXPECT_EQ(c.admin.address.port, 0);
  EXPECT_EQ(c.control.socket, "/tmp/c.sock");
  EXPECT_EQ(c.control.mode, 0600u);
  EXPECT_EQ(c.state_file, "/tmp/state.json");
  EXPECT_EQ(c.threads, 4u);
  EXPECT_EQ(c.limits.max_connections, 10u);
  EXPECT_EQ(c.limits.max_header_bytes, 2048u);
  EXPECT_EQ(c.limits.max_body_bytes, 1048576u);
  EXPECT_EQ(c.timeouts.client_header, 1s);
  EXPECT_EQ(c.timeouts.client_idle, 2s);
  EXPECT_EQ(c.timeouts.upstream_connect, 250ms);
  EXPECT_EQ(c.timeouts.upstream_response, 1500ms);
  EXPECT_EQ(c.timeouts.upstream_idle, 900ms);
  EXPECT_EQ(c.timeouts.shutdown, 1min);
  EXPECT_EQ(c.access_log.kind, AccessLog::Kind::file);
  EXPECT_EQ(c.access_log.path, "/var/log/bgproxy/access.log");

  const Service& s = c.services.at(0);
  EXPECT_EQ(s.name, "api.v2");
  EXPECT_EQ(s.match.host, "api.example.com");
  EXPECT_EQ(s.match.path_prefix, "/api");
  EXPECT_EQ(s.blue.servers.size(), 2u);
  ASSERT_EQ(s.green.servers.size(), 1u);
  EXPECT_EQ(s.green.servers[0].host, "fd00::1");
  EXPECT_EQ(s.initial_green_bp, 1250u);
  EXPECT_EQ(s.sticky.kind, Sticky::Kind::header);
  EXPECT_EQ(s.sticky.name, "X-User-Id");
  EXPECT_EQ(s.override_color.header, "X-Force");
  ASSERT_EQ(s.override_color.allow_from.size(), 2u);
  EXPECT_TRUE(s.override_color.allow_from[0].contains(v4(10, 9, 8, 7)));
  EXPECT_FALSE(s.expose_color_header);
  const HealthCheck& h = s.health_check;
  EXPECT_EQ(h.path, "/ready");
  EXPECT_EQ(h.interval, 2s);
  EXPECT_EQ(h.timeout, 1s);
  EXPECT_EQ(h.rise, 1u);
  EXPECT_EQ(h.fall, 1u);
  ASSERT_EQ(h.expect_status.size(), 3u);
  EXPECT_EQ(h.expect_status[0].low, 200u);
  EXPECT_EQ(h.expect_status[0].high, 200u);
  EXPECT_EQ(h.expect_status[1].low, 204u);
  EXPECT_EQ(h.expect_status[2].low, 300u);
  EXPECT_EQ(h.expect_status[2].high, 399u);
  EXPECT_EQ(h.passive_failures, 0u);
  const Watchdog& w = s.watchdog;
  EXPECT_FALSE(w.enabled);
  EXPECT_TRUE(w.dry_run);
  EXPECT_EQ(w.window, 10s);
  EXPECT_EQ(w.min_requests, 100u);
  EXPECT_DOUBLE_EQ(w.max_error_rate, 0.1);
  EXPECT_EQ(w.max_p95, 500ms);
  EXPECT_EQ(w.bake_time, 0ms);
  EXPECT_DOUBLE_EQ(w.max_error_rate_delta, 0.0);
  EXPECT_DOUBLE_EQ(w.max_p95_ratio, 1.0);
  EXPECT_EQ(s.canary.steps_bp, (std::vector<std::uint32_t>{100, 550, 2500, 10000}));
  EXPECT_EQ(s.canary.interval, 5min);
}

TEST(ConfigParse, StickyForms) {
  auto sticky_of = [](std::string_view v) { return parse_ok(with_service("    sticky: " + std::string(v) + "\n")).services.at(0).sticky; };
  auto s = sticky_of("none");
  EXPECT_EQ(s.kind, Sticky::Kind::none);
  EXPECT_EQ(s.name, "");
  s = sticky_of("{ source_ip: true }");
  EXPECT_EQ(s.kind, Sticky::Kind::source_ip);
  EXPECT_EQ(s.name, "");
  s = sticky_of("{ source_ip: false }");
  EXPECT_EQ(s.kind, Sticky::Kind::none);
  s = sticky_of("{ cookie: session }");
  EXPECT_EQ(s.kind, Sticky::Kind::cookie);
  EXPECT_EQ(s.name, "session");
  s = sticky_of("{ header: X-User-Id }");
  EXPECT_EQ(s.kind, Sticky::Kind::header);
  EXPECT_EQ(s.name, "X-User-Id");
}

TEST(ConfigParse, PercentagesFollowTheOneRule) {
  // Issue 12: the config reads percentages as the control protocol and bgctl do (bgproxy/weights):
  // by value, so 10.250 is 10.25 and -0 is 0, as YAML itself would read those numbers.
  const Config c = parse_ok(with_service("    green: { servers: [\"127.0.0.1:5006\"] }\n"
                                         "    initial: { green: 10.250 }\n"
                                         "    canary: { steps: [0050, 99.990, 100.00] }\n"));
  EXPECT_EQ(c.services.at(0).initial_green_bp, 1025u);
  EXPECT_EQ(c.services.at(0).canary.steps_bp, (std::vector<std::uint32_t>{5000, 9999, 10000}));
  EXPECT_EQ(parse_ok(with_service("    initial: { green: -0 }\n")).services.at(0).initial_green_bp, 0u);
}

TEST(ConfigParse, OffSwitches) {
  const Config c = parse_ok(with_service("    override: off\n    health_check: off\n    watchdog: off\n") +
                            "access_log: off\n");
  const Service& s = c.services.at(0);
  EXPECT_FALSE(s.override_color.enabled);
  EXPECT_FALSE(s.health_check.enabled);
  EXPECT_FALSE(s.watchdog.enabled);
  EXPECT_EQ(c.access_log.kind, AccessLog::Kind::off);
}

TEST(ConfigParse, HealthCheckOffSkipsItsValidation) {
  // A disabled check keeps its defaults, which would be valid anyway; nothing to trip on.
  EXPECT_FALSE(parse_ok(with_service("    health_check: false\n")).services.at(0).health_check.enabled);
}

// SPEC §13: checks speak the color's protocol; grpc asks grpc.health.v1.Health/Check of HTTP/2 colors.
TEST(ConfigParse, HealthCheckProtocols) {
  const std::string h2 = "services:\n"
                         "  - name: api\n"
                         "    blue: { servers: [\"127.0.0.1:50051\"], protocol: h2c }\n"
                         "    green: { servers: [\"127.0.0.1:50052\"], tls: { verify: false }, protocol: h2 }\n";
  auto hc = parse_ok(h2 + "    health_check: { protocol: grpc, service: my.pkg.Echo, interval: 2s }\n")
                .services.at(0).health_check;
  EXPECT_TRUE(hc.enabled);
  EXPECT_EQ(hc.protocol, HealthProtocol::grpc);
  EXPECT_EQ(hc.service, "my.pkg.Echo");
  EXPECT_EQ(hc.interval, 2s);
  EXPECT_EQ(hc.path, "/health");  // unused by grpc, kept at its default

  hc = parse_ok(h2 + "    health_check: { protocol: grpc, service: \"\" }\n").services.at(0).health_check;
  EXPECT_EQ(hc.protocol, HealthProtocol::grpc);
  EXPECT_EQ(hc.service, "");

  // An HTTP check of HTTP/2 colors (GET path over h2c / h2), and the explicit default.
  hc = parse_ok(h2 + "    health_check: { protocol: http, path: /ready, expect_status: \"204\" }\n")
           .services.at(0).health_check;
  EXPECT_EQ(hc.protocol, HealthProtocol::http);
  EXPECT_EQ(hc.path, "/ready");
  ASSERT_EQ(hc.expect_status.size(), 1u);
  EXPECT_EQ(hc.expect_status[0].low, 204u);
  EXPECT_EQ(parse_ok(with_service("    health_check: { protocol: http }\n")).services.at(0).health_check.protocol,
            HealthProtocol::http);
}

TEST(ConfigParse, EmptyAllowFromHonoursNobody) {
  const Config c = parse_ok(with_service("    override: { allow_from: [] }\n"));
  EXPECT_TRUE(c.services.at(0).override_color.enabled);
  EXPECT_TRUE(c.services.at(0).override_color.allow_from.empty());
}

TEST(ConfigParse, EmptySectionsKeepDefaults) {
  const Config c = parse_ok(std::string("limits:\ntimeouts: {}\n") + kMinimal + "    watchdog:\n");
  EXPECT_EQ(c.limits.max_header_bytes, 16384u);
  EXPECT_EQ(c.timeouts.shutdown, 30s);
  EXPECT_TRUE(c.services.at(0).watchdog.enabled);
}

TEST(ConfigParse, UnquotedModeAndThreads) {
  const Config c = parse_ok(std::string("control: { mode: 0640 }\nthreads: 256\n") + kMinimal);
  EXPECT_EQ(c.control.mode, 0640u);
  EXPECT_EQ(c.threads, 256u);
}

TEST(ConfigParse, SeveralServicesInOrder) {
  const Config c = parse_ok(with_service(
      "    match: { path_prefix: /api }\n"
      "  - name: web\n"
      "    blue: { servers: [\"127.0.0.1:5005\"] }\n"));
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services[0].name, "app");
  EXPECT_EQ(c.services[1].name, "web");
  EXPECT_EQ(c.services[1].override_color.allow_from.size(), 2u);
}

TEST(ConfigParse, TwoEphemeralListenersAreNotDuplicates) {
  const Config c = parse_ok(std::string("listen:\n  - address: 127.0.0.1:0\n  - address: 127.0.0.1:0\n") + kMinimal);
  EXPECT_EQ(c.listen.size(), 2u);
}

// SPEC §13: a plain listener speaks HTTP/1.1 unless it lists h2c; a TLS one offers h2 first.
TEST(ConfigParse, ListenProtocolsDefaultByTls) {
  const Config none = parse_ok(kMinimal);
  ASSERT_EQ(none.listen.size(), 1u);
  EXPECT_EQ(none.listen[0].protocols, (std::vector<Protocol>{Protocol::http1}));

  const Config c = parse_ok(std::string("listen:\n"
                                        "  - address: 0.0.0.0:8080\n"
                                        "  - address: 0.0.0.0:8443\n"
                                        "    tls: { certificate: c.pem, private_key: k.pem }\n") +
                            kMinimal);
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].protocols, (std::vector<Protocol>{Protocol::http1}));
  EXPECT_TRUE(c.listen[0].speaks(Protocol::http1));
  EXPECT_FALSE(c.listen[0].speaks(Protocol::h2c));
  EXPECT_FALSE(c.listen[0].speaks(Protocol::h2));
  EXPECT_EQ(c.listen[1].protocols, (std::vector<Protocol>{Protocol::h2, Protocol::http1}));
  EXPECT_TRUE(c.listen[1].speaks(Protocol::h2));
  EXPECT_TRUE(c.listen[1].speaks(Protocol::http1));
  EXPECT_FALSE(c.listen[1].speaks(Protocol::h2c));
}

TEST(ConfigParse, Http2DefaultsMatchSpec) {
  const Config c = parse_ok(kMinimal);
  EXPECT_EQ(c.http2.max_concurrent_streams, 100u);
  EXPECT_EQ(c.http2.initial_stream_window, 65536u);
  EXPECT_EQ(c.http2.initial_connection_window, 1048576u);
  EXPECT_EQ(c.http2.max_header_list_bytes, 16384u);
  // An empty section keeps them too.
  const Config e = parse_ok(std::string("http2:\n") + kMinimal);
  EXPECT_EQ(e.http2.max_concurrent_streams, 100u);
  EXPECT_EQ(e.http2.initial_stream_window, 65536u);
  EXPECT_EQ(e.http2.initial_connection_window, 1048576u);
  EXPECT_EQ(e.http2.max_header_list_bytes, 16384u);
}

// The listen and http2 parts of the example of SPEC §13, verbatim.
TEST(ConfigParse, Http2SpecExample) {
  const Config c = parse_ok(std::string(R"(listen:
  - address: 0.0.0.0:8443
    tls: { certificate: cert.pem, private_key: key.pem }
    protocols: [h2, http/1.1]          # ALPN offer; default on TLS listeners: [h2, http/1.1]
  - address: 0.0.0.0:8080
    protocols: [http/1.1, h2c]         # h2c = HTTP/2 with prior knowledge on a plain listener;
                                       # default on plain listeners: [http/1.1]
http2: { max_concurrent_streams: 100, initial_stream_window: 65536,
         initial_connection_window: 1048576, max_header_list_bytes: 16384 }
)") + kMinimal);
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].protocols, (std::vector<Protocol>{Protocol::h2, Protocol::http1}));
  EXPECT_EQ(c.listen[1].protocols, (std::vector<Protocol>{Protocol::http1, Protocol::h2c}));
  EXPECT_TRUE(c.listen[1].speaks(Protocol::h2c));
  EXPECT_EQ(c.http2.max_concurrent_streams, 100u);
  EXPECT_EQ(c.http2.initial_stream_window, 65536u);
  EXPECT_EQ(c.http2.initial_connection_window, 1048576u);
  EXPECT_EQ(c.http2.max_header_list_bytes, 16384u);
}

TEST(ConfigParse, ListenProtocolsExplicitOrderKept) {
  const Config c = parse_ok(std::string("listen:\n"
                                        "  - address: 127.0.0.1:8080\n"
                                        "    protocols: [h2c, http/1.1]\n"
                                        "  - address: 127.0.0.1:8081\n"
                                        "    protocols: [h2c]\n"
                                        "  - address: 127.0.0.1:8082\n"
                                        "    protocols:\n"
                                        "      - http/1.1\n"
                                        "  - address: 127.0.0.1:8443\n"
                                        "    tls: { certificate: c.pem, private_key: k.pem }\n"
                                        "    protocols: [http/1.1, h2]\n"
                                        "  - address: 127.0.0.1:8444\n"
                                        "    protocols: [h2]\n"  // before tls: keys are read in any order
                                        "    tls: { certificate: c.pem, private_key: k.pem }\n"
                                        "  - address: 127.0.0.1:8445\n"
                                        "    tls: { certificate: c.pem, private_key: k.pem }\n"
                                        "    protocols: [http/1.1]\n") +
                            kMinimal);
  ASSERT_EQ(c.listen.size(), 6u);
  EXPECT_EQ(c.listen[0].protocols, (std::vector<Protocol>{Protocol::h2c, Protocol::http1}));
  EXPECT_EQ(c.listen[1].protocols, (std::vector<Protocol>{Protocol::h2c}));
  EXPECT_FALSE(c.listen[1].speaks(Protocol::http1));
  EXPECT_EQ(c.listen[2].protocols, (std::vector<Protocol>{Protocol::http1}));
  EXPECT_EQ(c.listen[3].protocols, (std::vector<Protocol>{Protocol::http1, Protocol::h2}));
  EXPECT_EQ(c.listen[4].protocols, (std::vector<Protocol>{Protocol::h2}));
  EXPECT_EQ(c.listen[5].protocols, (std::vector<Protocol>{Protocol::http1}));
  EXPECT_FALSE(c.listen[5].speaks(Protocol::h2));
}

TEST(ConfigParse, Http2ValuesParsed) {
  const Config c = parse_ok(std::string("http2:\n"
                                        "  max_concurrent_streams: 250\n"
                                        "  initial_stream_window: 131072\n"
                                        "  initial_connection_window: 4194304\n"
                                        "  max_header_list_bytes: 32768\n") +
                            kMinimal);
  EXPECT_EQ(c.http2.max_concurrent_streams, 250u);
  EXPECT_EQ(c.http2.initial_stream_window, 131072u);
  EXPECT_EQ(c.http2.initial_connection_window, 4194304u);
  EXPECT_EQ(c.http2.max_header_list_bytes, 32768u);

  // One field set, the others keep their defaults.
  const Config one = parse_ok(std::string("http2: { max_concurrent_streams: 8 }\n") + kMinimal);
  EXPECT_EQ(one.http2.max_concurrent_streams, 8u);
  EXPECT_EQ(one.http2.initial_stream_window, 65536u);
  EXPECT_EQ(one.http2.initial_connection_window, 1048576u);
  EXPECT_EQ(one.http2.max_header_list_bytes, 16384u);
}

// The bounds themselves are allowed: at least one stream, 1 KiB windows/headers, the 65535 that
// RFC 9113 gives a connection, and windows up to 2^31-1 (RFC 9113 §6.9.1).
TEST(ConfigParse, Http2BoundsInclusive) {
  const Config lo = parse_ok(std::string("http2: { max_concurrent_streams: 1, initial_stream_window: 1024,\n"
                                         "         initial_connection_window: 65535, max_header_list_bytes: 1024 }\n") +
                             kMinimal);
  EXPECT_EQ(lo.http2.max_concurrent_streams, 1u);
  EXPECT_EQ(lo.http2.initial_stream_window, 1024u);
  EXPECT_EQ(lo.http2.initial_connection_window, 65535u);
  EXPECT_EQ(lo.http2.max_header_list_bytes, 1024u);

  const Config hi = parse_ok(std::string("http2: { max_concurrent_streams: 100000, initial_stream_window: 2147483647,\n"
                                         "         initial_connection_window: 2147483647,\n"
                                         "         max_header_list_bytes: 16777216 }\n") +
                             kMinimal);
  EXPECT_EQ(hi.http2.max_concurrent_streams, 100000u);
  EXPECT_EQ(hi.http2.initial_stream_window, 2147483647u);
  EXPECT_EQ(hi.http2.initial_connection_window, 2147483647u);
  EXPECT_EQ(hi.http2.max_header_list_bytes, 16777216u);
}

TEST(ConfigParse, ValueThrowsRuntimeErrorWithMessage) {
  auto r = parse("threads: 0\n", "x.yaml");
  ASSERT_FALSE(r);
  try {
    (void)r.value();
    FAIL() << "value() did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "x.yaml:1: threads: expected auto or a positive integer, got \"0\"");
  }
}

class TempDir {
public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bgproxy-config-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name, std::string_view content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

TEST(ConfigLoadFile, ReadsFileAndSetsSourcePath) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string p = dir.file("ok.yaml", kMinimal);
  auto r = load_file(p);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->source_path, p);
  EXPECT_EQ(r->services.at(0).name, "app");
}

TEST(ConfigLoadFile, ErrorsNameThePath) {
  TempDir dir;
  const std::string p = dir.file("bad.yaml", "services:\n  - name: app\n    blue: { servers: [\"nope\"] }\n");
  auto r = load_file(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, p + ":3: services[0].blue.servers[0]: invalid address \"nope\" (expected host:port)");
}

TEST(ConfigLoadFile, MissingFile) {
  TempDir dir;
  const std::string p = dir.path() + "/missing.yaml";
  auto r = load_file(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, p + ":0: file: cannot read (No such file or directory)");
}

TEST(ConfigLoadFile, DirectoryIsNotAFile) {
  TempDir dir;
  auto r = load_file(dir.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, dir.path() + ":0: file: cannot read (Is a directory)");
}

TEST(ConfigLoadFile, ShippedReferenceConfig) {
  auto r = load_file(BGPROXY_SOURCE_DIR "/conf/bgproxy.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const Config& c = *r;
  ASSERT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(c.listen[0].address.text, "0.0.0.0:8080");
  EXPECT_EQ(c.control.socket, "/run/bgproxy/control.sock");
  EXPECT_EQ(c.state_file, "/var/lib/bgproxy/state.json");
  // The reference file spells out every default: it must equal the built-in values.
  const Config d = parse_ok(kMinimal);
  EXPECT_EQ(c.admin.address, d.admin.address);
  EXPECT_EQ(c.control.mode, d.control.mode);
  EXPECT_EQ(c.threads, d.threads);
  EXPECT_EQ(c.limits.max_connections, d.limits.max_connections);
  EXPECT_EQ(c.limits.max_header_bytes, d.limits.max_header_bytes);
  EXPECT_EQ(c.limits.max_body_bytes, d.limits.max_body_bytes);
  EXPECT_EQ(c.timeouts.client_header, d.timeouts.client_header);
  EXPECT_EQ(c.timeouts.client_idle, d.timeouts.client_idle);
  EXPECT_EQ(c.timeouts.upstream_connect, d.timeouts.upstream_connect);
  EXPECT_EQ(c.timeouts.upstream_response, d.timeouts.upstream_response);
  EXPECT_EQ(c.timeouts.shutdown, d.timeouts.shutdown);
  EXPECT_EQ(c.access_log.kind, d.access_log.kind);
  ASSERT_EQ(c.services.size(), 1u);
  const Service& s = c.services[0];
  const Service& ds = d.services[0];
  EXPECT_EQ(s.match.host, ds.match.host);
  EXPECT_EQ(s.match.path_prefix, ds.match.path_prefix);
  EXPECT_EQ(s.green.servers.size(), 1u);
  EXPECT_EQ(s.initial_green_bp, ds.initial_green_bp);
  EXPECT_EQ(s.sticky.kind, ds.sticky.kind);
  EXPECT_EQ(s.sticky.name, ds.sticky.name);
  EXPECT_EQ(s.override_color.header, ds.override_color.header);
  ASSERT_EQ(s.override_color.allow_from.size(), ds.override_color.allow_from.size());
  EXPECT_EQ(s.override_color.allow_from[1].text, ds.override_color.allow_from[1].text);
  EXPECT_EQ(s.expose_color_header, ds.expose_color_header);
  EXPECT_EQ(s.health_check.protocol, ds.health_check.protocol);
  EXPECT_EQ(s.health_check.path, ds.health_check.path);
  EXPECT_EQ(s.health_check.interval, ds.health_check.interval);
  EXPECT_EQ(s.health_check.timeout, ds.health_check.timeout);
  EXPECT_EQ(s.health_check.rise, ds.health_check.rise);
  EXPECT_EQ(s.health_check.fall, ds.health_check.fall);
  EXPECT_EQ(s.health_check.passive_failures, ds.health_check.passive_failures);
  EXPECT_EQ(s.watchdog.enabled, ds.watchdog.enabled);
  EXPECT_EQ(s.watchdog.dry_run, ds.watchdog.dry_run);
  EXPECT_EQ(s.watchdog.window, ds.watchdog.window);
  EXPECT_EQ(s.watchdog.min_requests, ds.watchdog.min_requests);
  EXPECT_DOUBLE_EQ(s.watchdog.max_error_rate, ds.watchdog.max_error_rate);
  EXPECT_EQ(s.watchdog.max_p95, ds.watchdog.max_p95);
  EXPECT_EQ(s.watchdog.bake_time, ds.watchdog.bake_time);
  EXPECT_DOUBLE_EQ(s.watchdog.max_error_rate_delta, ds.watchdog.max_error_rate_delta);
  EXPECT_DOUBLE_EQ(s.watchdog.max_p95_ratio, ds.watchdog.max_p95_ratio);
  EXPECT_EQ(s.canary.steps_bp, ds.canary.steps_bp);
  EXPECT_EQ(s.canary.interval, ds.canary.interval);
}

TEST(ConfigLoadFile, ShippedDemoConfig) {
  auto r = load_file(BGPROXY_SOURCE_DIR "/conf/demo.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const Config& c = *r;
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].address.text, "127.0.0.1:5004");
  EXPECT_EQ(c.listen[1].address.text, "127.0.0.1:5443");
  EXPECT_EQ(c.listen[1].tls.size(), 1u);
  EXPECT_EQ(c.admin.address.text, "127.0.0.1:9901");
  EXPECT_EQ(c.control.socket, "/tmp/bgproxy-demo/control.sock");
  EXPECT_EQ(c.state_file, "/tmp/bgproxy-demo/state.json");
  EXPECT_EQ(c.access_log.kind, AccessLog::Kind::stdout_stream);
  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].name, "app");
  EXPECT_EQ(c.services[0].blue.servers.at(0).text, "127.0.0.1:5005");
  EXPECT_EQ(c.services[0].green.servers.at(0).text, "127.0.0.1:5006");
  EXPECT_EQ(c.services[0].health_check.interval, 1s);
}

}  // namespace
}  // namespace bgproxy::config
