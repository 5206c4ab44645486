// Upstream TLS per color pool (issue 6): `blue.tls` / `green.tls`, their defaults
// and the shapes that are refused with "FILE:LINE: field: problem".
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "bgproxy/config/parse.hpp"

namespace bgproxy::config {
namespace {

Config parsed(std::string_view yaml) {
  auto r = parse(yaml, "tls.yaml");
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? *r : Config{};
}

std::string error_of(std::string_view yaml) {
  auto r = parse(yaml, "bad.yaml");
  if (r) return "<accepted>";
  return r.error().message;
}

TEST(ConfigUpstreamTls, AbsentIsPlain) {
  const auto cfg = parsed("services:\n"
                          "  - name: app\n"
                          "    blue: { servers: [\"127.0.0.1:5005\"] }\n");
  EXPECT_FALSE(cfg.services[0].blue.tls.enabled);
  EXPECT_FALSE(cfg.services[0].green.tls.enabled);
}

TEST(ConfigUpstreamTls, EveryField) {
  const auto cfg = parsed("services:\n"
                          "  - name: app\n"
                          "    blue:\n"
                          "      servers: [\"backend.test:443\"]\n"
                          "      tls: { enabled: true, verify: false, ca: /etc/ca.pem, sni: api.test,\n"
                          "             client_certificate: /etc/c.pem, client_key: /etc/k.pem }\n"
                          "    green: { servers: [\"127.0.0.1:5006\"] }\n");
  const auto& t = cfg.services[0].blue.tls;
  EXPECT_TRUE(t.enabled);
  EXPECT_FALSE(t.verify);
  EXPECT_EQ(t.ca, "/etc/ca.pem");
  EXPECT_EQ(t.sni, "api.test");
  EXPECT_EQ(t.client_certificate, "/etc/c.pem");
  EXPECT_EQ(t.client_key, "/etc/k.pem");
  EXPECT_FALSE(cfg.services[0].green.tls.enabled);
}

TEST(ConfigUpstreamTls, DefaultsWhenEnabled) {
  const auto cfg = parsed("services:\n"
                          "  - name: app\n"
                          "    blue: { servers: [\"127.0.0.1:5005\"], tls: { enabled: true } }\n"
                          "    green: { servers: [\"127.0.0.1:5006\"], tls: {} }\n");
  for (const auto* t : {&cfg.services[0].blue.tls, &cfg.services[0].green.tls}) {
    EXPECT_TRUE(t->enabled);
    EXPECT_TRUE(t->verify);
    EXPECT_TRUE(t->ca.empty());
    EXPECT_TRUE(t->sni.empty());
    EXPECT_TRUE(t->client_certificate.empty());
    EXPECT_TRUE(t->client_key.empty());
  }
}

TEST(ConfigUpstreamTls, OffForms) {
  const auto cfg = parsed("services:\n"
                          "  - name: app\n"
                          "    blue: { servers: [\"127.0.0.1:5005\"], tls: off }\n"
                          "    green: { servers: [\"127.0.0.1:5006\"], tls: { enabled: false, verify: false } }\n");
  EXPECT_FALSE(cfg.services[0].blue.tls.enabled);
  EXPECT_FALSE(cfg.services[0].green.tls.enabled);
}

TEST(ConfigUpstreamTls, RejectsUnknownKey) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue:\n"
                     "      servers: [\"127.0.0.1:5005\"]\n"
                     "      tls:\n"
                     "        verfy: true\n"),
            "bad.yaml:6: services[0].blue.tls.verfy: unknown key");
}

TEST(ConfigUpstreamTls, RejectsNonBooleanVerify) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue:\n"
                     "      servers: [\"127.0.0.1:5005\"]\n"
                     "      tls:\n"
                     "        verify: maybe\n"),
            "bad.yaml:6: services[0].blue.tls.verify: expected true or false, got \"maybe\"");
}

TEST(ConfigUpstreamTls, RejectsCertificateWithoutKey) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                     "    green:\n"
                     "      servers: [\"127.0.0.1:5006\"]\n"
                     "      tls:\n"
                     "        client_certificate: /etc/c.pem\n"),
            "bad.yaml:7: services[0].green.tls.client_key: required with client_certificate");
}

TEST(ConfigUpstreamTls, RejectsKeyWithoutCertificate) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue:\n"
                     "      servers: [\"127.0.0.1:5005\"]\n"
                     "      tls:\n"
                     "        client_key: /etc/k.pem\n"),
            "bad.yaml:6: services[0].blue.tls.client_certificate: required with client_key");
}

TEST(ConfigUpstreamTls, RejectsAList) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue:\n"
                     "      servers: [\"127.0.0.1:5005\"]\n"
                     "      tls: [on]\n"),
            "bad.yaml:5: services[0].blue.tls: expected a map, got a list");
}

TEST(ConfigUpstreamTls, RejectsAScalar) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"], tls: yes-please }\n"),
            "bad.yaml:3: services[0].blue.tls: expected off or a map with enabled, verify, ca, sni, "
            "client_certificate, client_key, got \"yes-please\"");
}

TEST(ConfigUpstreamTls, RejectsEmptyCaAndBadSni) {
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"], tls: { ca: \"\" } }\n"),
            "bad.yaml:3: services[0].blue.tls.ca: must not be empty");
  EXPECT_EQ(error_of("services:\n"
                     "  - name: app\n"
                     "    blue: { servers: [\"127.0.0.1:5005\"], tls: { sni: \"a b\" } }\n"),
            "bad.yaml:3: services[0].blue.tls.sni: invalid host name \"a b\"");
}

}  // namespace
}  // namespace bgproxy::config
