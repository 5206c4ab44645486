// Invalid configurations: each asserts the exact "FILE:LINE: field: problem" message.
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "bgproxy/config/parse.hpp"

namespace bgproxy::config {
namespace {

std::string error_of(std::string_view yaml) {
  auto r = parse(yaml, "bad.yaml");
  if (r) return "<accepted>";
  return r.error().message;
}

TEST(ConfigParse, RejectsTopLevelList) {
  EXPECT_EQ(error_of("- a\n"
                     "- b\n"),
            "bad.yaml:1: config: expected a map at the top level, got a list");
}

TEST(ConfigParse, RejectsUnknownTopKey) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "colour: blue\n"),
            "bad.yaml:4: colour: unknown key");
}

TEST(ConfigParse, RejectsUnknownServiceKey) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    colour: blue\n"),
            "bad.yaml:4: services[0].colour: unknown key");
}

TEST(ConfigParse, RejectsUnknownNestedKey) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check:\n"
                     "      path: /h\n"
                     "      intervall: 2s\n"),
            "bad.yaml:6: services[0].health_check.intervall: unknown key");
}

TEST(ConfigParse, RejectsDuplicateKey) {
  EXPECT_EQ(error_of("threads: 2\n"
                     "threads: 3\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: threads: duplicate key");
}

TEST(ConfigParse, RejectsYamlSyntax) {
  EXPECT_EQ(error_of("listen: [\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: yaml: illegal block entry");
}

TEST(ConfigParse, RejectsBadIndent) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "   blue: x\n"),
            "bad.yaml:3: yaml: end of sequence not found");
}

TEST(ConfigParse, RejectsListWhereMapExpected) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue:\n"
                     "      - 127.0.0.1:5005\n"),
            "bad.yaml:3: services[0].blue: expected a map, got a list");
}

TEST(ConfigParse, RejectsMapWhereListExpected) {
  EXPECT_EQ(error_of("listen: { address: 0.0.0.0:80 }\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:1: listen: expected a list, got a map");
}

TEST(ConfigParse, RejectsScalarWhereMapExpected) {
  EXPECT_EQ(error_of("limits: 5\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:1: limits: expected a map, got a scalar");
}

TEST(ConfigParse, RejectsBackendWithoutPort) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue:\n"
                     "      servers:\n"
                     "        - 127.0.0.1:5005\n"
                     "        - 127.0.0.1\n"),
            "bad.yaml:6: services[0].blue.servers[1]: invalid address \"127.0.0.1\" (expected host:port)");
}

TEST(ConfigParse, RejectsBackendPortZero) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:0\"] }\n"),
            "bad.yaml:3: services[0].blue.servers[0]: invalid address \"127.0.0.1:0\" (port must be 1-65535)");
}

TEST(ConfigParse, RejectsBackendPortTooBig) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:70000\"] }\n"),
            "bad.yaml:3: services[0].blue.servers[0]: invalid address \"127.0.0.1:70000\" (port must be 1-65535)");
}

TEST(ConfigParse, RejectsBareIpv6) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"::1:5005\"] }\n"),
            "bad.yaml:3: services[0].blue.servers[0]: invalid address \"::1:5005\" (expected host:port)");
}

TEST(ConfigParse, RejectsListenBadAddress) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "  - address: nowhere\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[1].address: invalid address \"nowhere\" (expected host:port)");
}

TEST(ConfigParse, RejectsListenMissingAddress) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - tls: { certificate: c.pem, private_key: k.pem }\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: listen[0].address: required field is missing");
}

TEST(ConfigParse, RejectsTlsMissingKey) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8443\n"
                     "    tls: { certificate: c.pem }\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[0].tls.private_key: required field is missing");
}

TEST(ConfigParse, RejectsH2OnPlainListener) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "    protocols: [http/1.1, h2]\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[0].protocols[1]: h2 needs tls on this listener (h2c is HTTP/2 with prior knowledge on a plain one)");
}

TEST(ConfigParse, RejectsH2cOnTlsListener) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "  - address: 0.0.0.0:8443\n"
                     "    tls: { certificate: c.pem, private_key: k.pem }\n"
                     "    protocols:\n"
                     "      - h2\n"
                     "      - h2c\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:7: listen[1].protocols[1]: h2c is for plain listeners; a TLS listener offers h2");
}

TEST(ConfigParse, RejectsUnknownProtocol) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "    protocols: [http/2]\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[0].protocols[0]: unknown protocol \"http/2\" (known: http/1.1, h2, h2c)");
  // Names are exact, as ALPN's are.
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "    protocols: [HTTP/1.1]\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[0].protocols[0]: unknown protocol \"HTTP/1.1\" (known: http/1.1, h2, h2c)");
}

TEST(ConfigParse, RejectsDuplicateProtocol) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "    protocols:\n"
                     "      - http/1.1\n"
                     "      - h2c\n"
                     "      - http/1.1\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:6: listen[0].protocols[2]: duplicate protocol \"http/1.1\"");
}

TEST(ConfigParse, RejectsEmptyProtocolList) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "    protocols: []\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[0].protocols: at least one protocol is required");
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "    protocols:\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[0].protocols: at least one protocol is required");
}

TEST(ConfigParse, RejectsProtocolsNotAList) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "    protocols: h2c\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[0].protocols: expected a list, got a scalar");
}

TEST(ConfigParse, RejectsHttp2BelowMinimum) {
  const auto with_http2 = [](std::string_view field) {
    return error_of("services:\n"
                    "  - name: app\n"
                    "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                    "http2:\n"
                    "  " + std::string(field) + "\n");
  };
  EXPECT_EQ(with_http2("max_concurrent_streams: 0"), "bad.yaml:5: http2.max_concurrent_streams: must be at least 1");
  EXPECT_EQ(with_http2("initial_stream_window: 1023"), "bad.yaml:5: http2.initial_stream_window: must be at least 1024");
  EXPECT_EQ(with_http2("initial_connection_window: 65534"),
            "bad.yaml:5: http2.initial_connection_window: must be at least 65535");
  EXPECT_EQ(with_http2("max_header_list_bytes: 1023"), "bad.yaml:5: http2.max_header_list_bytes: must be at least 1024");
  EXPECT_EQ(with_http2("max_concurrent_streams: -1"),
            "bad.yaml:5: http2.max_concurrent_streams: expected a non-negative integer, got \"-1\"");
}

TEST(ConfigParse, RejectsHttp2AboveMaximum) {
  const auto with_http2 = [](std::string_view field) {
    return error_of("http2:\n"
                    "  " + std::string(field) + "\n"
                    "services:\n"
                    "  - name: app\n"
                    "    blue: { servers: [\"127.0.0.1:5005\"] }\n");
  };
  EXPECT_EQ(with_http2("max_concurrent_streams: 100001"),
            "bad.yaml:2: http2.max_concurrent_streams: value 100001 is too large (max 100000)");
  EXPECT_EQ(with_http2("initial_stream_window: 2147483648"),
            "bad.yaml:2: http2.initial_stream_window: value 2147483648 is too large (max 2147483647)");
  EXPECT_EQ(with_http2("initial_connection_window: 4294967296"),
            "bad.yaml:2: http2.initial_connection_window: value 4294967296 is too large (max 2147483647)");
  EXPECT_EQ(with_http2("max_header_list_bytes: 16777217"),
            "bad.yaml:2: http2.max_header_list_bytes: value 16777217 is too large (max 16777216)");
}

TEST(ConfigParse, RejectsUnknownHttp2Key) {
  EXPECT_EQ(error_of("http2:\n"
                     "  max_concurrent_streams: 10\n"
                     "  max_streams: 10\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: http2.max_streams: unknown key");
}

TEST(ConfigParse, RejectsHttp2NotAMap) {
  EXPECT_EQ(error_of("http2: on\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:1: http2: expected a map, got a scalar");
}

TEST(ConfigParse, RejectsDurationWithoutUnit) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check:\n"
                     "      interval: 5\n"),
            "bad.yaml:5: services[0].health_check.interval: duration needs a unit (ms, s, m or h): \"5\"");
}

TEST(ConfigParse, RejectsDurationBadUnit) {
  EXPECT_EQ(error_of("timeouts:\n"
                     "  client_idle: 5d\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: timeouts.client_idle: invalid duration \"5d\" (expected e.g. 500ms, 2s, 1.5s, 5m, 1h)");
}

TEST(ConfigParse, RejectsFallNegative) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check:\n"
                     "      fall: -1\n"),
            "bad.yaml:5: services[0].health_check.fall: expected a non-negative integer, got \"-1\"");
}

TEST(ConfigParse, RejectsHealthCheckOn) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check: on\n"),
            "bad.yaml:4: services[0].health_check: expected off or a map, got \"on\"");
}

TEST(ConfigParse, RejectsExpectStatusBad) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check: { expect_status: \"399-200\" }\n"),
            "bad.yaml:4: services[0].health_check.expect_status: invalid status list \"399-200\" (expected e.g. \"200-399\" or \"200,204\")");
}

TEST(ConfigParse, RejectsWatchdogRateNotNumber) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    watchdog:\n"
                     "      max_error_rate: lots\n"),
            "bad.yaml:5: services[0].watchdog.max_error_rate: expected a number, got \"lots\"");
}

TEST(ConfigParse, RejectsWatchdogEnabledNotBool) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    watchdog: { enabled: maybe }\n"),
            "bad.yaml:4: services[0].watchdog.enabled: expected true or false, got \"maybe\"");
}

TEST(ConfigParse, RejectsCanaryTooManyDecimals) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    canary: { steps: [10.555, 100] }\n"),
            "bad.yaml:4: services[0].canary.steps[0]: invalid percentage \"10.555\" (expected 0-100 with at most two decimals)");
}

TEST(ConfigParse, RejectsInitialAbove100) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    initial: { green: 150 }\n"),
            "bad.yaml:4: services[0].initial.green: invalid percentage \"150\" (expected 0-100 with at most two decimals)");
}

TEST(ConfigParse, RejectsInitialNegative) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    initial: { green: -1 }\n"),
            "bad.yaml:4: services[0].initial.green: invalid percentage \"-1\" (expected 0-100 with at most two decimals)");
}

TEST(ConfigParse, RejectsThreadsZero) {
  EXPECT_EQ(error_of("threads: 0\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:1: threads: expected auto or a positive integer, got \"0\"");
}

TEST(ConfigParse, RejectsThreadsWord) {
  EXPECT_EQ(error_of("threads: many\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:1: threads: expected auto or a positive integer, got \"many\"");
}

TEST(ConfigParse, RejectsAccessLogRelative) {
  EXPECT_EQ(error_of("access_log: logs/access.log\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:1: access_log: expected stdout, off or an absolute path, got \"logs/access.log\"");
}

TEST(ConfigParse, RejectsControlModeNotOctal) {
  EXPECT_EQ(error_of("control:\n"
                     "  socket: /tmp/c.sock\n"
                     "  mode: \"0669\"\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: control.mode: invalid mode \"0669\" (expected octal like \"0660\")");
}

TEST(ConfigParse, RejectsStickyTwoKinds) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    sticky: { cookie: a, header: B }\n"),
            "bad.yaml:4: services[0].sticky: expected exactly one of cookie, header, source_ip");
}

TEST(ConfigParse, RejectsStickyUnknown) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    sticky: always\n"),
            "bad.yaml:4: services[0].sticky: expected none or a map with one of cookie, header, source_ip, got \"always\"");
}

TEST(ConfigParse, RejectsOverrideBadCidr) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    override:\n"
                     "      allow_from: [\"10.0.0.0/33\"]\n"),
            "bad.yaml:5: services[0].override.allow_from[0]: invalid network \"10.0.0.0/33\" (expected e.g. 10.0.0.0/8 or ::1/128)");
}

TEST(ConfigParse, RejectsMissingName) {
  EXPECT_EQ(error_of("services:\n"
                     "  - blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: services[0].name: required field is missing");
}

TEST(ConfigParse, RejectsBadServiceName) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: \"my app\"\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: services[0].name: invalid name \"my app\" (letters, digits, '-', '_', '.'; at most 64)");
}

TEST(ConfigParse, RejectsServiceNotMap) {
  EXPECT_EQ(error_of("services:\n"
                     "  - app\n"),
            "bad.yaml:2: services[0]: expected a map, got a scalar");
}

TEST(ConfigParse, RejectsExposeNotBool) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    expose_color_header: sometimes\n"),
            "bad.yaml:4: services[0].expose_color_header: expected true or false, got \"sometimes\"");
}

TEST(ConfigParse, RejectsNullServerItem) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue:\n"
                     "      servers:\n"
                     "        -\n"),
            "bad.yaml:6: services[0].blue.servers[0]: missing value");
}

TEST(ConfigParse, RejectsLimitsTooLarge) {
  EXPECT_EQ(error_of("limits:\n"
                     "  max_connections: 99999999999999999999999\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: limits.max_connections: value 99999999999999999999999 is too large (max 4611686018427387904)");
}

TEST(ConfigParse, RejectsKeyIsMap) {
  EXPECT_EQ(error_of("{a: 1}: 2\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:1: config: keys must be plain strings");
}

TEST(ConfigParse, RejectsTab) {
  EXPECT_EQ(error_of("services:\n"
                     "\t- name: app\n"),
            "bad.yaml:2: yaml: illegal block entry");
}

TEST(ConfigParse, RejectsAliasUnknown) {
  EXPECT_EQ(error_of("services: *nope\n"),
            "bad.yaml:1: yaml: the referenced anchor is not defined");
}

TEST(ConfigValidate, RejectsNoServices) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"),
            "bad.yaml:1: services: at least one service is required");
}

TEST(ConfigValidate, RejectsEmptyServices) {
  EXPECT_EQ(error_of("services: []\n"),
            "bad.yaml:1: services: at least one service is required");
}

TEST(ConfigValidate, RejectsEmptyDocument) {
  EXPECT_EQ(error_of(""),
            "bad.yaml:1: services: at least one service is required");
}

TEST(ConfigValidate, RejectsListenDuplicate) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 0.0.0.0:8080\n"
                     "  - address: 0.0.0.0:8080\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:3: listen[1].address: duplicate listen address \"0.0.0.0:8080\" (also listen[0])");
}

TEST(ConfigValidate, RejectsTimeoutZero) {
  EXPECT_EQ(error_of("timeouts:\n"
                     "  upstream_connect: 0s\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: timeouts.upstream_connect: must be greater than 0");
}

TEST(ConfigValidate, RejectsHealthTimeoutNotBelowInterval) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check: { interval: 1s, timeout: 1s }\n"),
            "bad.yaml:4: services[0].health_check.timeout: must be less than interval (1s >= 1s)");
}

TEST(ConfigValidate, RejectsRiseZero) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check:\n"
                     "      rise: 0\n"),
            "bad.yaml:5: services[0].health_check.rise: must be at least 1");
}

TEST(ConfigValidate, RejectsHealthPathRelative) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check: { path: health }\n"),
            "bad.yaml:4: services[0].health_check.path: must start with \"/\", got \"health\"");
}

TEST(ConfigValidate, RejectsWatchdogRateAboveOne) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    watchdog:\n"
                     "      max_error_rate: 1.5\n"),
            "bad.yaml:5: services[0].watchdog.max_error_rate: must be between 0 and 1, got 1.5");
}

TEST(ConfigValidate, RejectsWatchdogRatioBelowOne) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    watchdog: { max_p95_ratio: 0.9 }\n"),
            "bad.yaml:4: services[0].watchdog.max_p95_ratio: must be at least 1, got 0.9");
}

TEST(ConfigValidate, RejectsCanaryNotIncreasing) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    canary:\n"
                     "      steps: [10, 50, 50, 100]\n"),
            "bad.yaml:5: services[0].canary.steps[2]: steps must be strictly increasing (50 after 50)");
}

TEST(ConfigValidate, RejectsCanaryNotEndingAt100) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    canary:\n"
                     "      steps: [10, 50]\n"),
            "bad.yaml:5: services[0].canary.steps: must end at 100, last is 50");
}

TEST(ConfigValidate, RejectsCanaryStepZero) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    canary: { steps: [0, 100] }\n"),
            "bad.yaml:4: services[0].canary.steps[0]: must be greater than 0");
}

TEST(ConfigValidate, RejectsInitialGreenWithoutGreenServers) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    initial: { green: 50 }\n"),
            "bad.yaml:4: services[0].initial.green: is 50 but green has no servers");
}

TEST(ConfigValidate, RejectsDuplicateServiceName) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    match: { path_prefix: /a }\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5007\"] }\n"),
            "bad.yaml:5: services[1].name: duplicate service name \"app\" (also services[0])");
}

TEST(ConfigValidate, RejectsNoBlueServers) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    green: { servers: [\"127.0.0.1:5006\"] }\n"),
            "bad.yaml:2: services[0].blue.servers: at least one blue server is required");
}

TEST(ConfigValidate, RejectsDuplicateServerInColor) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue:\n"
                     "      servers:\n"
                     "        - 127.0.0.1:5005\n"
                     "        - 127.0.0.1:5005\n"),
            "bad.yaml:6: services[0].blue.servers[1]: duplicate server \"127.0.0.1:5005\" (also services[0].blue.servers[0])");
}

TEST(ConfigValidate, RejectsPathPrefixWithoutSlash) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    match:\n"
                     "      path_prefix: api\n"),
            "bad.yaml:5: services[0].match.path_prefix: must start with \"/\", got \"api\"");
}

TEST(ConfigValidate, RejectsHostWithPort) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    match:\n"
                     "      host: example.com:8080\n"),
            "bad.yaml:5: services[0].match.host: invalid host \"example.com:8080\" (expected \"*\" or a hostname without port)");
}

TEST(ConfigValidate, RejectsThreadsTooMany) {
  EXPECT_EQ(error_of("threads: 300\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:1: threads: must be at most 256, got 300");
}

TEST(ConfigValidate, RejectsHeaderBytesTooSmall) {
  EXPECT_EQ(error_of("limits:\n"
                     "  max_header_bytes: 512\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: limits.max_header_bytes: must be at least 1024, got 512");
}

TEST(ConfigValidate, RejectsAdminAddressSameAsListen) {
  EXPECT_EQ(error_of("listen:\n"
                     "  - address: 127.0.0.1:9901\n"
                     "services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"),
            "bad.yaml:2: listen[0].address: \"127.0.0.1:9901\" is also the admin address");
}

TEST(ConfigValidate, RejectsSameMatchTwice) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "  - name: api\n"
                     "    blue: { servers: [\"127.0.0.1:5007\"] }\n"),
            "bad.yaml:4: services[1].match: same host and path_prefix as services[0], so it would never match");
}

TEST(ConfigParse, RejectsLongValueShortenedInMessage) {
  EXPECT_EQ(error_of("threads: " + std::string(100, 'x') + "\n"),
            "bad.yaml:1: threads: expected auto or a positive integer, got \"" + std::string(80, 'x') + "...\"");
}

TEST(ConfigParse, RejectsControlCharactersEscapedInMessage) {
  EXPECT_EQ(error_of("threads: \"a\\tb\\nc\"\n"),
            "bad.yaml:1: threads: expected auto or a positive integer, got \"a\\tb\\nc\"");
}

TEST(ConfigParse, RejectsUnterminatedQuote) {
  // yaml-cpp lets a quoted scalar run to the end of the file; the message shows what it swallowed.
  EXPECT_EQ(error_of("threads: \"4\nservices: []\n"),
            "bad.yaml:1: threads: expected auto or a positive integer, got \"4 services: [] \"");
}

TEST(ConfigValidate, DefaultedFieldNamesItsSectionLine) {
  // timeout keeps its default 500ms, which is not below the 400ms interval.
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check:\n"
                     "      interval: 400ms\n"),
            "bad.yaml:4: services[0].health_check.timeout: must be less than interval (500ms >= 400ms)");
}

TEST(ConfigValidate, GrpcHealthChecksRefusedForAnHttp1Color) {
  // Checks speak the color's protocol, and gRPC needs HTTP/2: green on HTTP/1.1 could never pass.
  EXPECT_EQ(error_of("services:\n"
                     "  - name: api\n"
                     "    blue: { servers: [\"127.0.0.1:50051\"], protocol: h2c }\n"
                     "    green: { servers: [\"127.0.0.1:50052\"] }\n"
                     "    health_check:\n"
                     "      interval: 1s\n"
                     "      protocol: grpc\n"),
            "bad.yaml:7: services[0].health_check.protocol: grpc needs HTTP/2 to the servers, but green speaks "
            "http/1.1 (give green protocol: h2c or h2, or check with protocol: http)");
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check: { protocol: grpc }\n"),
            "bad.yaml:4: services[0].health_check.protocol: grpc needs HTTP/2 to the servers, but blue speaks "
            "http/1.1 (give blue protocol: h2c or h2, or check with protocol: http)");
  // A color without servers is never checked, whatever it speaks; `health_check: off` checks nothing.
  EXPECT_EQ(error_of("services:\n"
                     "  - name: api\n"
                     "    blue: { servers: [\"127.0.0.1:50051\"], protocol: h2c }\n"
                     "    health_check: { protocol: grpc }\n"),
            "<accepted>");
}

TEST(ConfigValidate, HttpHealthChecksAcceptedForAnHttp2Color) {
  // Issue 15: the check speaks the color's HTTP/2 (h2c here), so nothing is refused any more.
  EXPECT_EQ(error_of("services:\n"
                     "  - name: api\n"
                     "    blue: { servers: [\"127.0.0.1:50051\"], protocol: h2c }\n"
                     "    green: { servers: [\"127.0.0.1:50052\"] }\n"),
            "<accepted>");
}

TEST(ConfigParse, RejectsUnknownHealthCheckProtocol) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check: { protocol: h2c }\n"),
            "bad.yaml:4: services[0].health_check.protocol: unknown protocol \"h2c\" (known: http, grpc)");
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    health_check:\n"
                     "      protocol:\n"),
            "bad.yaml:5: services[0].health_check.protocol: missing value");
}

TEST(ConfigParse, RejectsFieldsTheHealthCheckProtocolNeverReads) {
  const std::string h2c = "services:\n"
                          "  - name: api\n"
                          "    blue: { servers: [\"127.0.0.1:50051\"], protocol: h2c }\n"
                          "    health_check:\n";
  EXPECT_EQ(error_of(h2c + "      service: my.Service\n"),
            "bad.yaml:5: services[0].health_check.service: is the gRPC health service name: only with protocol: grpc");
  EXPECT_EQ(error_of(h2c + "      protocol: http\n"
                           "      service: \"\"\n"),
            "bad.yaml:6: services[0].health_check.service: is the gRPC health service name: only with protocol: grpc");
  EXPECT_EQ(error_of(h2c + "      path: /health\n"
                           "      protocol: grpc\n"),
            "bad.yaml:5: services[0].health_check.path: is for protocol: http (a grpc check calls "
            "/grpc.health.v1.Health/Check and needs HTTP 200 and SERVING)");
  EXPECT_EQ(error_of(h2c + "      protocol: grpc\n"
                           "      expect_status: \"200\"\n"),
            "bad.yaml:6: services[0].health_check.expect_status: is for protocol: http (a grpc check calls "
            "/grpc.health.v1.Health/Check and needs HTTP 200 and SERVING)");
}

TEST(ConfigParse, RejectsBadGrpcHealthServiceName) {
  const std::string h2c = "services:\n"
                          "  - name: api\n"
                          "    blue: { servers: [\"127.0.0.1:50051\"], protocol: h2c }\n"
                          "    health_check:\n"
                          "      protocol: grpc\n";
  EXPECT_EQ(error_of(h2c + "      service: \"a\\tb\"\n"),
            "bad.yaml:6: services[0].health_check.service: invalid service name \"a\\tb\" (at most 256 bytes, no "
            "control characters)");
  EXPECT_EQ(error_of(h2c + "      service: " + std::string(257, 's') + "\n"),
            "bad.yaml:6: services[0].health_check.service: invalid service name \"" + std::string(80, 's') +
                "...\" (at most 256 bytes, no control characters)");
  EXPECT_EQ(error_of(h2c + "      service: " + std::string(256, 's') + "\n"), "<accepted>");
  EXPECT_EQ(error_of(h2c + "      service:\n"), "bad.yaml:6: services[0].health_check.service: missing value");
  EXPECT_EQ(error_of(h2c + "      service: [a]\n"),
            "bad.yaml:6: services[0].health_check.service: expected a single value, got a list");
}

// Every value of a full config replaced by every other YAML shape: parse() must answer
// with a result (usually an error), never let an exception escape.
TEST(ConfigParse, WrongShapesNeverThrow) {
  const std::string full =
      "listen:\n"
      "  - address: 0.0.0.0:8080\n"
      "    tls:\n"
      "      certificate: c.pem\n"
      "      private_key: k.pem\n"
      "    protocols: [h2, http/1.1]\n"
      "admin:\n"
      "  address: 127.0.0.1:9901\n"
      "control:\n"
      "  socket: /tmp/c.sock\n"
      "  mode: \"0660\"\n"
      "state_file: /tmp/s.json\n"
      "threads: auto\n"
      "limits:\n"
      "  max_connections: 10\n"
      "timeouts:\n"
      "  client_header: 1s\n"
      "http2:\n"
      "  max_concurrent_streams: 10\n"
      "access_log: stdout\n"
      "services:\n"
      "  - name: app\n"
      "    match:\n"
      "      host: \"*\"\n"
      "    blue:\n"
      "      servers:\n"
      "        - 127.0.0.1:5005\n"
      "    green:\n"
      "      servers: [127.0.0.1:5006]\n"
      "    initial:\n"
      "      green: 0\n"
      "    sticky:\n"
      "      cookie: bg_id\n"
      "    override:\n"
      "      allow_from: [127.0.0.0/8]\n"
      "    expose_color_header: true\n"
      "    health_check:\n"
      "      interval: 1s\n"
      "    watchdog:\n"
      "      max_p95: 2s\n"
      "    canary:\n"
      "      steps: [10, 100]\n";
  ASSERT_EQ(error_of(full), "<accepted>");

  std::vector<std::string> lines;
  std::istringstream in(full);
  for (std::string l; std::getline(in, l);) lines.push_back(l);

  const char* shapes[] = {"", "~", "[]", "{}", "[1, [2]]", "{a: {b: c}}", "\"\"", "-5", "1e999", "&a x", "*a", "!!binary x", "'"};
  int rejected = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto colon = lines[i].find(':');
    for (const char* shape : shapes) {
      std::string doc;
      for (std::size_t j = 0; j < lines.size(); ++j) {
        if (j == i) {
          if (colon == std::string::npos) doc += lines[j].substr(0, lines[j].find('-') + 1) + " " + shape;
          else doc += lines[j].substr(0, colon + 1) + " " + shape;
        } else {
          doc += lines[j];
        }
        doc += "\n";
      }
      std::string message;
      EXPECT_NO_THROW(message = error_of(doc)) << doc;
      if (message != "<accepted>") {
        ++rejected;
        EXPECT_EQ(message.rfind("bad.yaml:", 0), 0u) << message;
      }
    }
  }
  EXPECT_GT(rejected, 300);
}

}  // namespace
}  // namespace bgproxy::config
