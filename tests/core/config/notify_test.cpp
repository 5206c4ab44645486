// `notify:` (issue 16): webhooks, their defaults, and each refusal as "FILE:LINE: field: problem".
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

TEST(ConfigNotify, AbsentMeansNobody) {
  auto r = parse(kService, "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->notify.webhooks.empty());
}

TEST(ConfigNotify, DefaultsOfAWebhook) {
  auto r = parse("notify: { webhooks: [ { url: \"http://127.0.0.1:9000/hook\" } ] }\n" + kService, "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->notify.webhooks.size(), 1u);
  const auto& w = r->notify.webhooks[0];
  EXPECT_EQ(w.url, "http://127.0.0.1:9000/hook");
  EXPECT_EQ(w.host, "127.0.0.1");
  EXPECT_EQ(w.port, 9000);
  EXPECT_EQ(w.target, "/hook");
  EXPECT_EQ(w.format, Webhook::Format::json);
  EXPECT_EQ(w.timeout, 2s);
  EXPECT_EQ(w.events, (std::vector<std::string>{"switch", "canary_step", "rollback", "promoted", "health", "release"}));
}

TEST(ConfigNotify, EveryField) {
  auto r = parse(
      "notify:\n"
      "  webhooks:\n"
      "    - url: http://hooks.example/services/T0/B1?x=1\n"
      "      events: [rollback, promoted, verdict]\n"
      "      format: slack\n"
      "      timeout: 500ms\n"
      "    - url: http://[::1]:8081\n" +
          kService,
      "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->notify.webhooks.size(), 2u);
  const auto& a = r->notify.webhooks[0];
  EXPECT_EQ(a.host, "hooks.example");
  EXPECT_EQ(a.port, 80);
  EXPECT_EQ(a.target, "/services/T0/B1?x=1");
  EXPECT_EQ(a.events, (std::vector<std::string>{"rollback", "promoted", "verdict"}));
  EXPECT_EQ(a.format, Webhook::Format::slack);
  EXPECT_EQ(a.timeout, 500ms);
  const auto& b = r->notify.webhooks[1];
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(b.port, 8081);
  EXPECT_EQ(b.target, "/");
}

TEST(ConfigNotify, RefusalsSayFileLineAndField) {
  EXPECT_EQ(error_of("notify: { webhooks: [ { url: \"https://h/x\" } ] }\n" + kService),
            "bad.yaml:1: notify.webhooks[0].url: expected http://HOST[:PORT]/PATH, got \"https://h/x\"");
  EXPECT_EQ(error_of("notify: { webhooks: [ { url: \"http://h:99999/x\" } ] }\n" + kService),
            "bad.yaml:1: notify.webhooks[0].url: expected http://HOST[:PORT]/PATH, got \"http://h:99999/x\"");
  EXPECT_EQ(error_of("notify:\n  webhooks:\n    - events: [rollback]\n" + kService),
            "bad.yaml:3: notify.webhooks[0].url: required (http://HOST:PORT/PATH)");
  EXPECT_EQ(error_of("notify:\n  webhooks:\n    - url: http://h/x\n      events: [rollback, deploy]\n" + kService),
            "bad.yaml:4: notify.webhooks[0].events[1]: expected one of switch, canary_step, verdict, rollback, "
            "promoted, health, release, got \"deploy\"");
  EXPECT_EQ(error_of("notify:\n  webhooks:\n    - url: http://h/x\n      format: xml\n" + kService),
            "bad.yaml:4: notify.webhooks[0].format: expected json or slack, got \"xml\"");
  EXPECT_EQ(error_of("notify:\n  webhooks:\n    - url: http://h/x\n      timeout: 0s\n" + kService),
            "bad.yaml:4: notify.webhooks[0].timeout: must be greater than 0");
  EXPECT_EQ(error_of("notify:\n  webhooks:\n    - url: http://h/x\n      retries: 3\n" + kService).find("bad.yaml:4: notify.webhooks[0]"),
            0u);
}

}  // namespace
}  // namespace bgproxy::config
