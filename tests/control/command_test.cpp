// Control-socket request parsing (SPEC §7): every command in every valid shape,
// every refused shape with its exact message, weights to basis points, the table.
// The percentage rule itself is tested with bgproxy/weights in tests/core/weights/.
#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "bgproxy/weights/basis_points.hpp"
#include "control/core/command.hpp"

namespace bgproxy::control {
namespace {

using routing::Color;
using namespace std::chrono_literals;

Command ok(std::string_view line) {
  const auto r = parse_command(line);
  EXPECT_TRUE(r.has_value()) << line << " -> " << (r.has_value() ? "" : r.error().message);
  return r.has_value() ? *r : Command{};
}

std::string error_of(std::string_view line) {
  const auto r = parse_command(line);
  EXPECT_FALSE(r.has_value()) << line;
  return r.has_value() ? std::string("<accepted>") : r.error().message;
}

const std::string all_names = "status, split, switch, rollback, canary, health, history, server, reload, upgrade, release, events, shadow";

// ----------------------------------------------------------------------- valid shapes

TEST(ParseCommand, Status) {
  Command c = ok(R"({"command":"status"})");
  EXPECT_EQ(c.kind, CommandKind::status);
  EXPECT_EQ(c.service, "");
  c = ok(R"({"command":"status","service":"app"})");
  EXPECT_EQ(c.kind, CommandKind::status);
  EXPECT_EQ(c.service, "app");
}

TEST(ParseCommand, SplitGreen) {
  Command c = ok(R"({"command":"split","service":"app","green":50})");
  EXPECT_EQ(c.kind, CommandKind::split);
  EXPECT_EQ(c.service, "app");
  EXPECT_EQ(c.green_bp, 5000u);
  EXPECT_FALSE(c.force);
}

TEST(ParseCommand, SplitBlueMeansGreenIsTheRest) {
  Command c = ok(R"({"command":"split","blue":30})");
  EXPECT_EQ(c.kind, CommandKind::split);
  EXPECT_EQ(c.green_bp, 7000u);
  EXPECT_EQ(ok(R"({"command":"split","blue":0.25})").green_bp, 9975u);
  EXPECT_EQ(ok(R"({"command":"split","blue":100})").green_bp, 0u);
  EXPECT_EQ(ok(R"({"command":"split","blue":0})").green_bp, 10000u);
}

TEST(ParseCommand, SplitWithForce) {
  Command c = ok(R"({"command":"split","green":100,"force":true,"service":"api"})");
  EXPECT_EQ(c.green_bp, 10000u);
  EXPECT_TRUE(c.force);
  EXPECT_EQ(c.service, "api");
  EXPECT_FALSE(ok(R"({"command":"split","green":1,"force":false})").force);
}

TEST(ParseCommand, SplitWeightsInEveryNumericShape) {
  const std::vector<std::pair<std::string, std::uint32_t>> cases = {
      {"0", 0},          {"10", 1000},        {"10.5", 1050},      {"10.25", 1025},    {"\"10.25\"", 1025},
      {"\"50\"", 5000},  {"0.29", 29},        {"0.01", 1},         {"99.99", 9999},    {"100", 10000},
      {"100.0", 10000},  {"100.00", 10000},   {"33.33", 3333},     {"0.1", 10},        {"1.1", 110},
      {"4.35", 435},     {"57.01", 5701},     {"1e1", 1000},       {"1.5E1", 1500},    {"-0", 0},
      {"-0.0", 0},       {"\"10.250\"", 1025}, {"\"007\"", 700},   {"0.0", 0},         {"12.30", 1230},
  };
  for (const auto& [text, bp] : cases) {
    const std::string line = R"({"command":"split","green":)" + text + "}";
    EXPECT_EQ(ok(line).green_bp, bp) << line;
  }
}

TEST(ParseCommand, SplitEveryTwoDecimalWeightIsExact) {
  // Binary floating point must never leak in: k/100 for every k in [0, 10000].
  for (std::uint32_t k = 0; k <= 10000; ++k) {
    const std::string text = std::to_string(k / 100) + "." + (k % 100 < 10 ? "0" : "") + std::to_string(k % 100);
    const auto r = parse_command(R"({"command":"split","green":)" + text + "}");
    ASSERT_TRUE(r.has_value()) << text;
    ASSERT_EQ(r->green_bp, k) << text;
    ASSERT_EQ(weights::parse_percent(text), k) << text;
  }
}

TEST(ParseCommand, Switch) {
  Command c = ok(R"({"command":"switch","color":"green"})");
  EXPECT_EQ(c.kind, CommandKind::switch_color);
  EXPECT_EQ(c.color, Color::green);
  EXPECT_FALSE(c.force);
  c = ok(R"({"command":"switch","color":"blue","service":"app","force":true})");
  EXPECT_EQ(c.color, Color::blue);
  EXPECT_EQ(c.service, "app");
  EXPECT_TRUE(c.force);
}

TEST(ParseCommand, Rollback) {
  EXPECT_EQ(ok(R"({"command":"rollback"})").kind, CommandKind::rollback);
  Command c = ok(R"({"command":"rollback","service":"app"})");
  EXPECT_EQ(c.kind, CommandKind::rollback);
  EXPECT_EQ(c.service, "app");
  EXPECT_FALSE(c.drain);
  EXPECT_TRUE(ok(R"({"command":"rollback","drain":true})").drain);
  EXPECT_FALSE(ok(R"({"command":"rollback","drain":false})").drain);
  EXPECT_EQ(error_of(R"({"command":"rollback","drain":"yes"})"), "\"drain\" must be true or false");
  EXPECT_EQ(error_of(R"({"command":"switch","color":"blue","drain":true})"), "unknown field \"drain\" for switch");
}

TEST(ParseCommand, CanaryStartDefaults) {
  Command c = ok(R"({"command":"canary","action":"start"})");
  EXPECT_EQ(c.kind, CommandKind::canary);
  EXPECT_EQ(c.canary, CanaryAction::start);
  EXPECT_TRUE(c.steps_bp.empty());
  EXPECT_FALSE(c.interval.has_value());
  EXPECT_FALSE(c.force);
}

TEST(ParseCommand, CanaryStartWithEverything) {
  Command c = ok(
      R"({"command":"canary","action":"start","steps":[10,50,100],"interval":"60s","service":"app","force":true})");
  EXPECT_EQ(c.canary, CanaryAction::start);
  EXPECT_EQ(c.steps_bp, (std::vector<std::uint32_t>{1000, 5000, 10000}));
  ASSERT_TRUE(c.interval.has_value());
  EXPECT_EQ(*c.interval, 60s);
  EXPECT_EQ(c.service, "app");
  EXPECT_TRUE(c.force);

  c = ok(R"({"command":"canary","action":"start","steps":[0.5,"12.25",100],"interval":"1.5s"})");
  EXPECT_EQ(c.steps_bp, (std::vector<std::uint32_t>{50, 1225, 10000}));
  EXPECT_EQ(*c.interval, 1500ms);
  EXPECT_EQ(ok(R"({"command":"canary","action":"start","steps":[100]})").steps_bp, (std::vector<std::uint32_t>{10000}));
  EXPECT_EQ(*ok(R"({"command":"canary","action":"start","interval":"5m"})").interval, 5min);
}

TEST(ParseCommand, CanaryOtherActions) {
  EXPECT_EQ(ok(R"({"command":"canary","action":"pause"})").canary, CanaryAction::pause);
  EXPECT_EQ(ok(R"({"command":"canary","action":"resume"})").canary, CanaryAction::resume);
  Command c = ok(R"({"command":"canary","action":"abort","service":"app"})");
  EXPECT_EQ(c.kind, CommandKind::canary);
  EXPECT_EQ(c.canary, CanaryAction::abort);
  EXPECT_EQ(c.service, "app");
}

TEST(ParseCommand, Health) {
  EXPECT_EQ(ok(R"({"command":"health"})").kind, CommandKind::health);
  EXPECT_EQ(ok(R"({"command":"health","service":"app"})").service, "app");
}

TEST(ParseCommand, History) {
  Command c = ok(R"({"command":"history"})");
  EXPECT_EQ(c.kind, CommandKind::history);
  EXPECT_EQ(c.limit, 20u);
  c = ok(R"({"command":"history","limit":50,"service":"app"})");
  EXPECT_EQ(c.limit, 50u);
  EXPECT_EQ(c.service, "app");
  EXPECT_EQ(ok(R"({"command":"history","limit":1})").limit, 1u);
  EXPECT_EQ(ok(R"({"command":"history","limit":18446744073709551615})").limit, 18446744073709551615u);
}

TEST(ParseCommand, Server) {
  Command c = ok(R"({"command":"server","action":"disable","address":"127.0.0.1:5006"})");
  EXPECT_EQ(c.kind, CommandKind::server);
  EXPECT_EQ(c.server, ServerAction::disable);
  EXPECT_EQ(c.address, "127.0.0.1:5006");
  c = ok(R"({"command":"server","action":"enable","address":"[::1]:80","service":"app"})");
  EXPECT_EQ(c.server, ServerAction::enable);
  EXPECT_EQ(c.address, "[::1]:80");
  EXPECT_EQ(c.service, "app");
  EXPECT_EQ(ok(R"({"command":"server","action":"drain","address":"backend:8080"})").server, ServerAction::drain);
}

TEST(ParseCommand, Reload) { EXPECT_EQ(ok(R"({"command":"reload"})").kind, CommandKind::reload); }

TEST(ParseCommand, Upgrade) {
  EXPECT_EQ(ok(R"({"command":"upgrade"})").kind, CommandKind::upgrade);
  EXPECT_EQ(error_of(R"({"command":"upgrade","service":"app"})"), "unknown field \"service\" for upgrade");
}

TEST(ParseCommand, Events) {
  EXPECT_EQ(ok(R"({"command":"events"})").kind, CommandKind::events);
  const Command c = ok(R"({"command":"events","service":"app"})");
  EXPECT_EQ(c.kind, CommandKind::events);
  EXPECT_EQ(c.service, "app");
  EXPECT_EQ(error_of(R"({"command":"events","limit":3})"), "unknown field \"limit\" for events");
  EXPECT_EQ(error_of(R"({"command":"events","service":7})"), "\"service\" must be a string");
}

TEST(ParseCommand, Shadow) {
  EXPECT_EQ(ok(R"({"command":"shadow"})").kind, CommandKind::shadow);
  const Command c = ok(R"({"command":"shadow","service":"app"})");
  EXPECT_EQ(c.kind, CommandKind::shadow);
  EXPECT_EQ(c.service, "app");
  EXPECT_EQ(error_of(R"({"command":"shadow","force":true})"), "unknown field \"force\" for shadow");
}

TEST(ParseCommand, Release) {
  const Command plain = ok(R"({"command":"release"})");
  EXPECT_EQ(plain.kind, CommandKind::release);
  EXPECT_FALSE(plain.release_to.has_value());
  EXPECT_TRUE(plain.smoke.empty());
  const Command c = ok(R"({"command":"release","service":"app","to":"blue","smoke":["/health","/v?x=1"],)"
                       R"("steps":[10,100],"interval":"30s"})");
  EXPECT_EQ(c.service, "app");
  EXPECT_EQ(c.release_to, routing::Color::blue);
  EXPECT_EQ(c.smoke, (std::vector<std::string>{"/health", "/v?x=1"}));
  EXPECT_EQ(c.steps_bp, (std::vector<std::uint32_t>{1000, 10000}));
  EXPECT_EQ(c.interval, std::chrono::seconds(30));
  EXPECT_EQ(error_of(R"({"command":"release","to":"red"})"), "\"to\" must be \"blue\" or \"green\"");
  EXPECT_EQ(error_of(R"({"command":"release","smoke":"/health"})"),
            "\"smoke\" must be an array of paths such as \"/health\"");
  EXPECT_EQ(error_of(R"({"command":"release","smoke":["health"]})"),
            "invalid smoke path \"health\" (a path such as /health)");
  // A path is sent as a request target as it is: nothing that could end or split the line.
  EXPECT_EQ(error_of("{\"command\":\"release\",\"smoke\":[\"/a\\r\\nX: y\"]}"),
            "invalid smoke path \"/a\\r\\nX: y\" (a path such as /health)");
  EXPECT_EQ(error_of(R"({"command":"release","smoke":["/a b"]})"), "invalid smoke path \"/a b\" (a path such as /health)");
  std::string many = R"({"command":"release","smoke":[)";
  for (int i = 0; i < 17; ++i) many += std::string(i ? "," : "") + "\"/p\"";
  EXPECT_EQ(error_of(many + "]}"), "at most 16 smoke paths");
  // --force starts it above watchdog.max_shadow_mismatch_rate (SPEC §14).
  EXPECT_FALSE(plain.force);
  EXPECT_TRUE(ok(R"({"command":"release","force":true})").force);
  EXPECT_EQ(error_of(R"({"command":"release","force":"yes"})"), "\"force\" must be true or false");
}

TEST(ParseTakeover, GivesThePidOfTheNewProcess) {
  EXPECT_EQ(parse_takeover(R"({"command":"takeover","pid":4242})"), 4242);
  EXPECT_EQ(parse_takeover(R"({"pid":7,"command":"takeover"})"), 7);
}

TEST(ParseTakeover, AnythingElseIsNotATakeover) {
  for (const char* line : {R"({"command":"takeover"})", R"({"command":"takeover","pid":0})",
                           R"({"command":"takeover","pid":-3})", R"({"command":"takeover","pid":"42"})",
                           R"({"command":"takeover","pid":4294967296})", R"({"command":"takeover","pid":1,"x":1})",
                           R"({"command":"status","pid":1})", R"({"command":"takeover","pid":1.5})", "takeover", "",
                           "[1]"}) {
    EXPECT_FALSE(parse_takeover(line).has_value()) << line;
  }
}

TEST(ParseCommand, WhitespaceKeyOrderAndCarriageReturnAreFine) {
  Command c = ok(" \t{ \"green\" : 25 , \"command\" : \"split\" }\r");
  EXPECT_EQ(c.kind, CommandKind::split);
  EXPECT_EQ(c.green_bp, 2500u);
}

TEST(ParseCommand, LineJustUnderTheLimitParses) {
  // The server refuses longer lines (max_line_bytes); parse_command itself takes what it gets.
  const std::string head = R"({"command":"status","service":")";
  const std::string tail = R"("})";
  const std::string line = head + std::string(max_line_bytes - 1 - head.size() - tail.size(), 'a') + tail;
  ASSERT_EQ(line.size(), max_line_bytes - 1);
  Command c = ok(line);
  EXPECT_EQ(c.kind, CommandKind::status);
  EXPECT_EQ(c.service.size(), max_line_bytes - 1 - head.size() - tail.size());
}

TEST(ParseCommand, ErrorConvertsToException) {
  const auto r = parse_command("{}");
  ASSERT_FALSE(r.has_value());
  EXPECT_THROW((void)r.value(), std::runtime_error);
  try {
    (void)r.value();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "missing \"command\"");
  }
}

// ----------------------------------------------------------------------- refused lines

TEST(ParseCommand, RefusedLinesGetExactMessages) {
  const std::string unknown_foo = "unknown command \"foo\" (try: " + all_names + ")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      // the document itself
      {"", "empty request"},
      {"   \t\r", "empty request"},
      {"{", "malformed JSON: incomplete JSON"},
      {"{\"command\":\"status\"", "malformed JSON: incomplete JSON"},
      {"not json", "malformed JSON: syntax error"},
      {"{command:\"status\"}", "malformed JSON: syntax error"},
      {"{\"command\":\"status\",}", "malformed JSON: syntax error"},
      {"{\"command\":\"status\"} {}", "malformed JSON: extra data"},
      {"{\"command\":\"status\",\"service\":\"\xff\"}", "malformed JSON: syntax error"},
      {"[]", "request must be a JSON object"},
      {"[{\"command\":\"status\"}]", "request must be a JSON object"},
      {"\"status\"", "request must be a JSON object"},
      {"42", "request must be a JSON object"},
      {"null", "request must be a JSON object"},
      // "command"
      {"{}", "missing \"command\""},
      {"{\"service\":\"app\"}", "missing \"command\""},
      {"{\"command\":1}", "\"command\" must be a string"},
      {"{\"command\":null}", "\"command\" must be a string"},
      {"{\"command\":[\"status\"]}", "\"command\" must be a string"},
      {"{\"command\":\"foo\"}", unknown_foo},
      {"{\"command\":\"\"}", "unknown command \"\" (try: " + all_names + ")"},
      {"{\"command\":\"STATUS\"}", "unknown command \"STATUS\" (try: " + all_names + ")"},
      {"{\"command\":\"sta\\\"tus\"}", "unknown command \"sta\\\"tus\" (try: " + all_names + ")"},
      // fields
      {"{\"command\":\"split\",\"green\":50,\"x\":1}", "unknown field \"x\" for split"},
      {"{\"command\":\"status\",\"green\":50}", "unknown field \"green\" for status"},
      {"{\"command\":\"reload\",\"service\":\"app\"}", "unknown field \"service\" for reload"},
      {"{\"command\":\"rollback\",\"force\":true}", "unknown field \"force\" for rollback"},
      {"{\"command\":\"history\",\"limit\":5,\"color\":\"blue\"}", "unknown field \"color\" for history"},
      {"{\"command\":\"status\",\"service\":1}", "\"service\" must be a string"},
      {"{\"command\":\"status\",\"service\":null}", "\"service\" must be a string"},
      // split weights
      {"{\"command\":\"split\",\"green\":150}", "green weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"green\":-1}", "green weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"green\":100.01}", "green weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"green\":1e400}", "green weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"green\":-1e400}", "green weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"green\":18446744073709551615}", "green weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"green\":\"150\"}", "green weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"green\":\"-0.5\"}", "green weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"blue\":101}", "blue weight must be between 0 and 100"},
      {"{\"command\":\"split\",\"green\":10.555}", "green weight has more than two decimals"},
      {"{\"command\":\"split\",\"green\":\"10.555\"}", "green weight has more than two decimals"},
      {"{\"command\":\"split\",\"green\":0.001}", "green weight has more than two decimals"},
      {"{\"command\":\"split\",\"green\":10.2500000000001}", "green weight has more than two decimals"},
      {"{\"command\":\"split\",\"blue\":33.333}", "blue weight has more than two decimals"},
      {"{\"command\":\"split\",\"green\":\"abc\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":true}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":null}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":[50]}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":{}}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"NaN\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"nan\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"inf\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"Infinity\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"1e2\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\" 50\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"50%\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"+5\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\".5\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"green\":\"5.\"}", "\"green\" must be a number"},
      {"{\"command\":\"split\",\"blue\":\"x\"}", "\"blue\" must be a number"},
      {"{\"command\":\"split\",\"green\":50,\"blue\":50}", "split needs exactly one of \"green\" or \"blue\""},
      {"{\"command\":\"split\"}", "split needs exactly one of \"green\" or \"blue\""},
      {"{\"command\":\"split\",\"service\":\"app\"}", "split needs exactly one of \"green\" or \"blue\""},
      {"{\"command\":\"split\",\"green\":50,\"force\":\"yes\"}", "\"force\" must be true or false"},
      {"{\"command\":\"split\",\"green\":50,\"force\":1}", "\"force\" must be true or false"},
      // switch
      {"{\"command\":\"switch\"}", "switch needs \"color\" (blue or green)"},
      {"{\"command\":\"switch\",\"color\":\"red\"}", "color must be \"blue\" or \"green\""},
      {"{\"command\":\"switch\",\"color\":\"Green\"}", "color must be \"blue\" or \"green\""},
      {"{\"command\":\"switch\",\"color\":1}", "color must be \"blue\" or \"green\""},
      {"{\"command\":\"switch\",\"color\":\"\"}", "color must be \"blue\" or \"green\""},
      {"{\"command\":\"switch\",\"color\":\"blue\",\"green\":5}", "unknown field \"green\" for switch"},
      // canary
      {"{\"command\":\"canary\"}", "canary needs \"action\" (start, pause, resume, abort)"},
      {"{\"command\":\"canary\",\"action\":\"x\"}", "unknown canary action \"x\""},
      {"{\"command\":\"canary\",\"action\":\"stop\"}", "unknown canary action \"stop\""},
      {"{\"command\":\"canary\",\"action\":3}", "\"action\" must be a string"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[50,10,100]}",
       "canary steps must be increasing percentages ending at 100"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[10,50]}",
       "canary steps must be increasing percentages ending at 100"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[10,10,100]}",
       "canary steps must be increasing percentages ending at 100"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[0,50,100]}",
       "canary steps must be increasing percentages ending at 100"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[10,150]}",
       "canary steps must be increasing percentages ending at 100"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[-10,100]}",
       "canary steps must be increasing percentages ending at 100"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[]}",
       "canary steps must be increasing percentages ending at 100"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[10.555,100]}", "canary step has more than two decimals"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[10,\"x\",100]}", "\"steps\" must be an array of numbers"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":[10,null,100]}", "\"steps\" must be an array of numbers"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":\"10,50,100\"}", "\"steps\" must be an array of numbers"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"steps\":100}", "\"steps\" must be an array of numbers"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"interval\":\"abc\"}", "interval: invalid duration \"abc\""},
      {"{\"command\":\"canary\",\"action\":\"start\",\"interval\":\"60\"}", "interval: invalid duration \"60\""},
      {"{\"command\":\"canary\",\"action\":\"start\",\"interval\":\"-5s\"}", "interval: invalid duration \"-5s\""},
      {"{\"command\":\"canary\",\"action\":\"start\",\"interval\":\"0s\"}", "interval must be greater than 0"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"interval\":60}", "\"interval\" must be a string such as \"60s\""},
      {"{\"command\":\"canary\",\"action\":\"pause\",\"steps\":[100]}", "unknown field \"steps\" for canary pause"},
      {"{\"command\":\"canary\",\"action\":\"abort\",\"interval\":\"5s\"}", "unknown field \"interval\" for canary abort"},
      {"{\"command\":\"canary\",\"action\":\"resume\",\"force\":true}", "unknown field \"force\" for canary resume"},
      {"{\"command\":\"canary\",\"action\":\"start\",\"limit\":3}", "unknown field \"limit\" for canary"},
      // history
      {"{\"command\":\"history\",\"limit\":0}", "limit must be a positive integer"},
      {"{\"command\":\"history\",\"limit\":-5}", "limit must be a positive integer"},
      {"{\"command\":\"history\",\"limit\":2.5}", "limit must be a positive integer"},
      {"{\"command\":\"history\",\"limit\":\"10\"}", "limit must be a positive integer"},
      {"{\"command\":\"history\",\"limit\":true}", "limit must be a positive integer"},
      {"{\"command\":\"history\",\"limit\":null}", "limit must be a positive integer"},
      // server
      {"{\"command\":\"server\",\"action\":\"disable\"}",
       "server needs \"action\" (enable, disable, drain) and \"address\""},
      {"{\"command\":\"server\",\"address\":\"127.0.0.1:5006\"}",
       "server needs \"action\" (enable, disable, drain) and \"address\""},
      {"{\"command\":\"server\"}", "server needs \"action\" (enable, disable, drain) and \"address\""},
      {"{\"command\":\"server\",\"action\":\"drain\",\"address\":\"\"}",
       "server needs \"action\" (enable, disable, drain) and \"address\""},
      {"{\"command\":\"server\",\"action\":\"kill\",\"address\":\"127.0.0.1:5006\"}", "unknown server action \"kill\""},
      {"{\"command\":\"server\",\"action\":true,\"address\":\"127.0.0.1:5006\"}", "\"action\" must be a string"},
      {"{\"command\":\"server\",\"action\":\"enable\",\"address\":5006}", "\"address\" must be a string"},
      {"{\"command\":\"server\",\"action\":\"enable\",\"address\":\"a:1\",\"color\":\"blue\"}",
       "unknown field \"color\" for server"},
  };
  ASSERT_GE(cases.size(), 30u);
  for (const auto& [line, message] : cases) EXPECT_EQ(error_of(line), message) << "line: " << line;
}

TEST(ParseCommand, QuotedUserTextIsEscapedAndCut) {
  // Control characters are shown escaped; a huge name is cut, not echoed whole.
  EXPECT_EQ(error_of(R"({"command":"canary","action":"a\nb"})"), "unknown canary action \"a\\nb\"");
  EXPECT_EQ(error_of(R"({"command":"canary","action":"a\u0001b"})"), "unknown canary action \"a\\x01b\"");
  const std::string long_name(1000, 'z');
  const std::string msg = error_of(R"({"command":")" + long_name + R"("})");
  EXPECT_EQ(msg, "unknown command \"" + std::string(40, 'z') + "...\" (try: " + all_names + ")");
  // Cutting never splits a UTF-8 sequence: 39 ASCII bytes then a 2-byte "é".
  const std::string utf8 = std::string(39, 'a') + "\xc3\xa9" + "tail";
  EXPECT_EQ(error_of(R"({"command":")" + utf8 + R"("})"),
            "unknown command \"" + std::string(39, 'a') + "...\" (try: " + all_names + ")");
  EXPECT_EQ(error_of(R"({"command":"split","gr\"een":5})"), "unknown field \"gr\\\"een\" for split");
}

TEST(ParseCommand, DeepNestingIsMalformedNotACrash) {
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_EQ(error_of(deep), "malformed JSON: too deep");
}

TEST(ParseCommand, OnlyTheFirstUnknownFieldIsReported) {
  const std::string m = error_of(R"({"command":"status","a":1,"b":2})");
  EXPECT_EQ(m, "unknown field \"a\" for status");
}

// ----------------------------------------------------------------------- "local" (a fleet, SPEC §12)

// A change made on this instance alone while the cluster store is out of reach (bgctl --local).

TEST(FleetCommandLocal, AcceptedOnEveryChange) {
  const std::vector<std::pair<std::string, CommandKind>> lines = {
      {R"({"command":"split","green":30,"local":true})", CommandKind::split},
      {R"({"command":"split","service":"app","blue":30,"force":true,"local":true})", CommandKind::split},
      {R"({"command":"switch","color":"green","local":true})", CommandKind::switch_color},
      {R"({"command":"rollback","local":true})", CommandKind::rollback},
      {R"({"command":"rollback","service":"app","local":true})", CommandKind::rollback},
      {R"({"command":"canary","action":"start","steps":[10,100],"local":true})", CommandKind::canary},
      {R"({"command":"canary","action":"pause","local":true})", CommandKind::canary},
      {R"({"command":"canary","action":"resume","local":true})", CommandKind::canary},
      {R"({"command":"canary","action":"abort","local":true})", CommandKind::canary},
      {R"({"command":"server","action":"drain","address":"127.0.0.1:5006","local":true})", CommandKind::server},
      {R"({"local":true,"command":"switch","color":"blue"})", CommandKind::switch_color},
  };
  for (const auto& [line, kind] : lines) {
    const Command c = ok(line);
    EXPECT_EQ(c.kind, kind) << line;
    EXPECT_TRUE(c.local) << line;
  }
}

TEST(FleetCommandLocal, OtherFieldsAreReadAsWithoutIt) {
  const Command c = ok(R"({"command":"split","service":"app","green":12.5,"force":true,"local":true})");
  EXPECT_EQ(c.service, "app");
  EXPECT_EQ(c.green_bp, 1250u);
  EXPECT_TRUE(c.force);
  const Command s = ok(R"({"command":"server","action":"drain","address":"127.0.0.1:5006","local":true})");
  EXPECT_EQ(s.server, ServerAction::drain);
  EXPECT_EQ(s.address, "127.0.0.1:5006");
}

TEST(FleetCommandLocal, FalseOrAbsentIsNotLocal) {
  EXPECT_FALSE(ok(R"({"command":"split","green":30})").local);
  EXPECT_FALSE(ok(R"({"command":"split","green":30,"local":false})").local);
  EXPECT_FALSE(ok(R"({"command":"rollback","local":false})").local);
}

TEST(FleetCommandLocal, RefusedOnCommandsThatChangeNothing) {
  EXPECT_EQ(error_of(R"({"command":"status","local":true})"), "unknown field \"local\" for status");
  EXPECT_EQ(error_of(R"({"command":"history","local":true})"), "unknown field \"local\" for history");
  EXPECT_EQ(error_of(R"({"command":"history","limit":3,"local":false})"), "unknown field \"local\" for history");
  EXPECT_EQ(error_of(R"({"command":"health","local":true})"), "unknown field \"local\" for health");
  EXPECT_EQ(error_of(R"({"command":"reload","local":true})"), "unknown field \"local\" for reload");
  EXPECT_EQ(error_of(R"({"command":"upgrade","local":true})"), "unknown field \"local\" for upgrade");
}

TEST(FleetCommandLocal, MustBeABool) {
  const std::string msg = "\"local\" must be true or false";
  EXPECT_EQ(error_of(R"({"command":"split","green":30,"local":"true"})"), msg);
  EXPECT_EQ(error_of(R"({"command":"switch","color":"green","local":1})"), msg);
  EXPECT_EQ(error_of(R"({"command":"rollback","local":null})"), msg);
  EXPECT_EQ(error_of(R"({"command":"canary","action":"pause","local":[true]})"), msg);
  EXPECT_EQ(error_of(R"({"command":"server","action":"drain","address":"127.0.0.1:5006","local":{}})"), msg);
}

// ----------------------------------------------------------------------- the table

TEST(CommandTable, ListsEverySpecCommandInOrder) {
  const auto table = command_table();
  std::vector<std::string_view> names;
  for (const CommandInfo& info : table) names.push_back(info.name);
  EXPECT_EQ(names, (std::vector<std::string_view>{"status", "split", "switch", "rollback", "canary", "health",
                                                  "history", "server", "reload", "upgrade", "release",
                                                  "events", "shadow"}));
}

TEST(CommandTable, EveryRowHasUsageStartingWithItsNameAndASummary) {
  for (const CommandInfo& info : command_table()) {
    EXPECT_EQ(info.usage.substr(0, info.name.size()), info.name);
    EXPECT_FALSE(info.summary.empty()) << info.name;
    EXPECT_EQ(info.summary.find('\n'), std::string_view::npos) << info.name;
  }
}

TEST(CommandTable, UsageMatchesSpec) {
  const auto table = command_table();
  ASSERT_EQ(table.size(), 13u);
  EXPECT_EQ(table[1].usage, "split --green N | --blue N [-s SERVICE] [--force]");
  EXPECT_EQ(table[2].usage, "switch blue|green [-s SERVICE] [--force]");
  EXPECT_EQ(table[7].usage, "server enable|disable|drain ADDRESS [-s SERVICE]");
  EXPECT_EQ(table[8].usage, "reload");
  EXPECT_EQ(table[9].usage, "upgrade");
  EXPECT_EQ(table[12].usage, "shadow [-s SERVICE]");
}

TEST(CommandTable, EveryRowIsDispatchedByParseCommand) {
  // Each name in the table parses as a command of its own kind; unique names.
  std::set<CommandKind> kinds;
  std::set<std::string_view> names;
  for (const CommandInfo& info : command_table()) {
    names.insert(info.name);
    const auto r = parse_command(R"({"command":")" + std::string(info.name) + R"("})");
    if (r.has_value()) {
      kinds.insert(r->kind);
    } else {
      // Commands with required fields still reach their own parser, not "unknown command".
      EXPECT_EQ(r.error().message.find("unknown command"), std::string::npos) << info.name;
    }
  }
  EXPECT_EQ(names.size(), command_table().size());
  EXPECT_EQ(kinds, (std::set<CommandKind>{CommandKind::status, CommandKind::rollback, CommandKind::health,
                                          CommandKind::history, CommandKind::reload, CommandKind::upgrade,
                                          CommandKind::release, CommandKind::events,
                                          CommandKind::shadow}));
}

TEST(CommandTable, UnknownCommandMessageListsTheTable) {
  std::string names;
  for (const CommandInfo& info : command_table()) names += (names.empty() ? "" : ", ") + std::string(info.name);
  EXPECT_EQ(error_of(R"({"command":"foo"})"), "unknown command \"foo\" (try: " + names + ")");
}

}  // namespace
}  // namespace bgproxy::control
