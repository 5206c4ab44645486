// `cluster:` (issue 13): what parses, its defaults, and each refusal as "FILE:LINE: field: problem".
#include <chrono>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "bgproxy/config/parse.hpp"

namespace bgproxy::config {
namespace {

using namespace std::chrono_literals;

const std::string kService =
    "services:\n"
    "  - name: app\n"
    "    blue: { servers: [\"127.0.0.1:5005\"] }\n";

std::string error_of(std::string_view yaml) {
  auto r = parse(yaml, "bad.yaml");
  if (r) return "<accepted>";
  return r.error().message;
}

TEST(ConfigCluster, AbsentMeansOneProcess) {
  auto r = parse(kService, "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->cluster.enabled);
}

TEST(ConfigCluster, DefaultsOfAnEmptySection) {
  auto r = parse("cluster: {}\n" + kService, "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const auto& c = r->cluster;
  EXPECT_TRUE(c.enabled);
  ASSERT_EQ(c.endpoints.size(), 1u);
  EXPECT_EQ(c.endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(c.endpoints[0].port, 2379);
  EXPECT_FALSE(c.endpoints[0].tls);
  EXPECT_EQ(c.prefix, "/bgproxy");
  EXPECT_EQ(c.timeout, 2s);
  EXPECT_EQ(c.lease_ttl, 10s);
  EXPECT_EQ(c.instance, "");
}

TEST(ConfigCluster, EveryField) {
  auto r = parse(
      "cluster:\n"
      "  etcd:\n"
      "    endpoints: [\"https://etcd-1.example:2379\", \"https://[fd00::2]:2380/\", \"http://10.0.0.3\"]\n"
      "    prefix: /bgproxy/prod\n"
      "    username: bgproxy\n"
      "    password_file: /etc/bgproxy/etcd.pass\n"
      "    tls: { ca: /etc/ca.pem, certificate: /etc/c.pem, private_key: /etc/c.key }\n"
      "    timeout: 500ms\n"
      "    lease_ttl: 5s\n"
      "  instance: edge-a:9901\n" +
          kService,
      "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const auto& c = r->cluster;
  ASSERT_EQ(c.endpoints.size(), 3u);
  EXPECT_EQ(c.endpoints[0], (EtcdEndpoint{"https://etcd-1.example:2379", true, "etcd-1.example", 2379}));
  EXPECT_EQ(c.endpoints[1], (EtcdEndpoint{"https://[fd00::2]:2380/", true, "fd00::2", 2380}));
  EXPECT_EQ(c.endpoints[2], (EtcdEndpoint{"http://10.0.0.3", false, "10.0.0.3", 2379}));
  EXPECT_EQ(c.prefix, "/bgproxy/prod");
  EXPECT_EQ(c.username, "bgproxy");
  EXPECT_EQ(c.password_file, "/etc/bgproxy/etcd.pass");
  EXPECT_EQ(c.ca, "/etc/ca.pem");
  EXPECT_EQ(c.certificate, "/etc/c.pem");
  EXPECT_EQ(c.private_key, "/etc/c.key");
  EXPECT_EQ(c.timeout, 500ms);
  EXPECT_EQ(c.lease_ttl, 5s);
  EXPECT_EQ(c.instance, "edge-a:9901");
}

TEST(ConfigCluster, RefusesABadEndpoint) {
  EXPECT_EQ(error_of("cluster:\n"
                     "  etcd:\n"
                     "    endpoints: [\"http://127.0.0.1:2379\",\n"
                     "                \"etcd:2379\"]\n" +
                     kService),
            "bad.yaml:4: cluster.etcd.endpoints[1]: expected http://HOST:PORT or https://HOST:PORT, got \"etcd:2379\"");
  EXPECT_EQ(error_of("cluster: { etcd: { endpoints: [\"http://h:2379/v3\"] } }\n" + kService),
            "bad.yaml:1: cluster.etcd.endpoints[0]: expected http://HOST:PORT or https://HOST:PORT, got \"http://h:2379/v3\"");
  EXPECT_EQ(error_of("cluster: { etcd: { endpoints: [] } }\n" + kService),
            "bad.yaml:1: cluster.etcd.endpoints: at least one endpoint is required");
}

TEST(ConfigCluster, RefusesABadPrefixOrInstance) {
  EXPECT_EQ(error_of("cluster:\n  etcd: { prefix: bgproxy }\n" + kService),
            "bad.yaml:2: cluster.etcd.prefix: must start with '/' and not end with one, got \"bgproxy\"");
  EXPECT_EQ(error_of("cluster:\n  etcd: { prefix: /bgproxy/ }\n" + kService),
            "bad.yaml:2: cluster.etcd.prefix: must start with '/' and not end with one, got \"/bgproxy/\"");
  EXPECT_EQ(error_of("cluster:\n  instance: a/b\n" + kService),
            "bad.yaml:2: cluster.instance: letters, digits, '-', '_', '.' and ':' only, got \"a/b\"");
}

TEST(ConfigCluster, CredentialsAndClientCertificatesComeInPairs) {
  EXPECT_EQ(error_of("cluster:\n  etcd:\n    username: bgproxy\n" + kService),
            "bad.yaml:3: cluster.etcd.password_file: required with username");
  EXPECT_EQ(error_of("cluster:\n  etcd:\n    tls: { certificate: /c.pem }\n" + kService),
            "bad.yaml:3: cluster.etcd.tls.private_key: required with certificate");
}

TEST(ConfigCluster, RefusesUnknownKeysAndShortLeases) {
  EXPECT_EQ(error_of("cluster:\n  etcd:\n    endpoint: http://h:2379\n" + kService),
            "bad.yaml:3: cluster.etcd.endpoint: unknown key");
  EXPECT_EQ(error_of("cluster:\n  etcd:\n    lease_ttl: 1s\n" + kService),
            "bad.yaml:3: cluster.etcd.lease_ttl: must be at least 2s, got 1s");
  EXPECT_EQ(error_of("cluster:\n  etcd:\n    timeout: 3s\n    lease_ttl: 5s\n" + kService),
            "bad.yaml:4: cluster.etcd.lease_ttl: must be at least twice cluster.etcd.timeout (3s), got 5s");
}

}  // namespace
}  // namespace bgproxy::config
