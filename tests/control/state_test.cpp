// The runtime state model (SPEC §8), its JSON form (field names as SPEC §7) and the state file.
#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "control/core/state.hpp"
#include "control/core/state_file.hpp"

namespace bgproxy::control {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using routing::Color;

/// A fresh directory under /tmp, removed (whatever its mode) when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/bg_state_test.XXXXXX";
    const char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    ::chmod(path_.c_str(), 0700);
    fs::remove_all(path_, ec);
  }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }
  const std::string& path() const { return path_; }

  /// Names of the entries in the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

void write_file(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

HistoryEntry entry(std::string service, std::uint32_t before, std::uint32_t after) {
  HistoryEntry h;
  h.time = "2026-11-24T21:30:00.123Z";
  h.service = std::move(service);
  h.command = "split";
  h.args = {{"green", percent_arg(after)}};
  h.uid = 1000;
  h.pid = 4242;
  h.before.green_bp = before;
  h.after.green_bp = after;
  return h;
}

State small_state() {
  State s;
  ServiceState app;
  app.name = "app";
  app.weights.green_bp = 3000;
  app.stable.green_bp = 0;
  app.target = Color::green;
  app.phase = Phase::canary;
  app.step = 1;
  app.servers["127.0.0.1:5006"] = AdminState::disabled;
  s.services.push_back(app);
  HistoryEntry h = entry("app", 0, 5000);
  h.uid = 0;
  s.record(h);
  return s;
}

/// Several services over every phase, target and admin state, awkward weights and strings.
State rich_state() {
  State s;
  const std::vector<Phase> phases = {Phase::idle,     Phase::canary,      Phase::baking,
                                     Phase::promoted, Phase::rolled_back, Phase::paused};
  const std::vector<std::uint32_t> weights = {0, 1, 3333, 5000, 9999, 10000};
  for (std::size_t i = 0; i < phases.size(); ++i) {
    ServiceState svc;
    svc.name = "svc-" + std::to_string(i);
    svc.weights.green_bp = weights[i];
    svc.stable.green_bp = weights[weights.size() - 1 - i];
    svc.target = i % 3 == 0 ? std::nullopt : std::optional(i % 3 == 1 ? Color::blue : Color::green);
    svc.phase = phases[i];
    svc.step = static_cast<std::uint32_t>(i * 7);
    svc.reason = i == 4 ? "watchdog: error_rate 0.213 > 0.05 (n=412, window 30s)" : "";
    if (i % 2 == 0) {
      svc.servers["127.0.0.1:5005"] = AdminState::enabled;
      svc.servers["127.0.0.1:5006"] = AdminState::disabled;
      svc.servers["[::1]:7000"] = AdminState::draining;
    }
    s.services.push_back(svc);
  }
  s.services[0].name = "app \"quoted\" \\ tab\t newline\n ünïcødé ☃";
  s.services.back().step = 4294967295U;

  HistoryEntry a = entry("svc-1", 0, 1000);
  a.reason = "manual";
  HistoryEntry b = entry("svc-4", 1000, 0);
  b.command = "rollback";
  b.args = {};
  b.reason = "watchdog: p95 0.900s > 0.500s";
  b.uid = 0;
  b.pid = 0;
  HistoryEntry c = entry("svc-2", 3333, 10000);
  c.command = "server";
  c.args = {{"action", "disable"}, {"address", "127.0.0.1:5006"}};
  c.reason = "health: 127.0.0.1:5006 down";
  c.uid = 4294967295U;
  c.pid = 2147483647;
  c.time = "2026-11-25T00:00:00.000Z";
  HistoryEntry d = entry("svc-3", 5000, 9999);
  d.command = "canary";
  d.args = {{"action", "start"},
            {"target", "green"},
            {"steps", {0.01, 33.33, 99.99, 100}},
            {"interval_seconds", 1.5},
            {"force", true},
            {"note", "quoted \" ünïcødé"},
            {"nothing", nullptr},
            {"whole_double", 10.0},
            {"negative", -7},
            {"nested", {{"k", {1, 2}}}}};
  d.reason = "canary: step 2 (99.99%)";
  d.pid = -1;
  for (auto& h : {a, b, c, d}) s.record(h);
  return s;
}

// ---------------------------------------------------------------------------------------------

TEST(State, PhaseNamesBothWays) {
  const std::vector<std::pair<Phase, std::string_view>> all = {
      {Phase::idle, "idle"},         {Phase::canary, "canary"},
      {Phase::baking, "baking"},     {Phase::promoted, "promoted"},
      {Phase::rolled_back, "rolled_back"}, {Phase::paused, "paused"}};
  for (const auto& [phase, name] : all) {
    EXPECT_EQ(phase_name(phase), name);
    ASSERT_TRUE(parse_phase(name).has_value()) << name;
    EXPECT_EQ(*parse_phase(name), phase);
  }
  EXPECT_FALSE(parse_phase(""));
  EXPECT_FALSE(parse_phase("Canary"));
  EXPECT_FALSE(parse_phase("rolled-back"));
  EXPECT_FALSE(parse_phase("idle "));
}

TEST(State, RecordKeepsTheNewestMaxHistory) {
  State s;
  for (std::uint32_t i = 0; i < State::max_history + 5; ++i) {
    s.record(entry("app", i, i + 1));
    EXPECT_EQ(s.history.size(), std::min<std::size_t>(i + 1, State::max_history));
  }
  ASSERT_EQ(s.history.size(), State::max_history);
  EXPECT_EQ(s.history.front().before.green_bp, 5U);  // the five oldest were dropped
  EXPECT_EQ(s.history.back().before.green_bp, State::max_history + 4);
}

TEST(State, FindByServiceName) {
  State s = rich_state();
  ServiceState* p = s.find("svc-3");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "svc-3");
  EXPECT_EQ(p->weights.green_bp, 5000U);
  p->weights.green_bp = 42;  // a pointer into the state, not a copy
  EXPECT_EQ(s.services[3].weights.green_bp, 42U);
  EXPECT_EQ(s.find("svc-"), nullptr);
  EXPECT_EQ(s.find(""), nullptr);
  EXPECT_EQ(s.find("nope"), nullptr);
  EXPECT_EQ(State{}.find("app"), nullptr);
}

// ---------------------------------------------------------------------------------------------

TEST(StateJson, RoundTripOfARichState) {
  const State s = rich_state();
  const std::string text = to_json(s);
  auto back = from_json(text);
  ASSERT_TRUE(back) << back.error() << "\n" << text;
  EXPECT_EQ(*back, s);
  EXPECT_EQ(to_json(*back), text);
}

TEST(StateJson, RoundTripOfAnEmptyState) {
  const std::string text = to_json(State{});
  EXPECT_EQ(text, R"({"version":1,"services":[],"history":[]})");
  auto back = from_json(text);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, State{});
}

TEST(StateJson, EveryBasisPointRoundTripsExactly) {
  State s;
  for (std::uint32_t bp = 0; bp <= 10000; ++bp) {
    ServiceState svc;
    svc.name = std::to_string(bp);
    svc.weights.green_bp = bp;
    svc.stable.green_bp = 10000 - bp;
    s.services.push_back(std::move(svc));
  }
  auto back = from_json(to_json(s));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, s);
}

TEST(StateJson, FieldNamesAndValuesOfASmallState) {
  const std::string text = to_json(small_state());
  // Percent with at most two decimals, never an exponent.
  EXPECT_NE(text.find(R"("weights":{"blue":70.0,"green":30.0})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("stable":{"blue":100.0,"green":0.0})"), std::string::npos) << text;

  json::error_code ec;
  const json::value v = json::parse(text, ec);
  ASSERT_FALSE(ec) << text;
  const auto& root = v.as_object();
  EXPECT_EQ(root.size(), 3U);
  EXPECT_EQ(root.at("version").as_int64(), 1);

  const auto& services = root.at("services").as_array();
  ASSERT_EQ(services.size(), 1U);
  const auto& app = services[0].as_object();
  EXPECT_EQ(app.size(), 9U);
  const auto& canary = app.at("canary").as_object();
  EXPECT_EQ(canary.at("steps").as_array().size(), 0U);
  EXPECT_EQ(canary.at("interval_ms").as_int64(), 0);
  EXPECT_EQ(canary.at("step_started_ms").as_int64(), 0);
  EXPECT_EQ(app.at("name").as_string(), "app");
  EXPECT_DOUBLE_EQ(app.at("weights").at("blue").as_double(), 70.0);
  EXPECT_DOUBLE_EQ(app.at("weights").at("green").as_double(), 30.0);
  EXPECT_DOUBLE_EQ(app.at("stable").at("blue").as_double(), 100.0);
  EXPECT_DOUBLE_EQ(app.at("stable").at("green").as_double(), 0.0);
  EXPECT_EQ(app.at("target").as_string(), "green");
  EXPECT_EQ(app.at("phase").as_string(), "canary");
  EXPECT_EQ(app.at("step").as_int64(), 1);
  EXPECT_EQ(app.at("reason").as_string(), "");
  const auto& servers = app.at("servers").as_object();
  ASSERT_EQ(servers.size(), 1U);
  EXPECT_EQ(servers.at("127.0.0.1:5006").as_string(), "disabled");

  const auto& history = root.at("history").as_array();
  ASSERT_EQ(history.size(), 1U);
  const auto& h = history[0].as_object();
  EXPECT_EQ(h.size(), 8U);
  EXPECT_EQ(h.at("time").as_string(), "2026-11-24T21:30:00.123Z");
  EXPECT_EQ(h.at("service").as_string(), "app");
  EXPECT_EQ(h.at("command").as_string(), "split");
  EXPECT_EQ(h.at("args"), (json::object{{"green", 50}}));
  EXPECT_NE(text.find(R"("command":"split","args":{"green":50},)"), std::string::npos) << text;
  EXPECT_EQ(h.at("by").at("uid").as_int64(), 0);
  EXPECT_EQ(h.at("by").at("pid").as_int64(), 4242);
  EXPECT_EQ(h.at("reason").as_string(), "manual");
  EXPECT_DOUBLE_EQ(h.at("before").at("blue").as_double(), 100.0);
  EXPECT_DOUBLE_EQ(h.at("before").at("green").as_double(), 0.0);
  EXPECT_DOUBLE_EQ(h.at("after").at("blue").as_double(), 50.0);
  EXPECT_DOUBLE_EQ(h.at("after").at("green").as_double(), 50.0);
}

TEST(StateJson, WeightFormatting) {
  State s;
  for (std::uint32_t bp : {3333U, 1250U, 1U, 10U, 9999U}) {
    ServiceState svc;
    svc.name = std::to_string(bp);
    svc.weights.green_bp = bp;
    s.services.push_back(svc);
  }
  s.services[2].target = std::nullopt;
  const std::string text = to_json(s);
  EXPECT_NE(text.find(R"({"blue":66.67,"green":33.33})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"blue":87.5,"green":12.5})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"blue":99.99,"green":0.01})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"blue":99.9,"green":0.1})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"({"blue":0.01,"green":99.99})"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("target":null)"), std::string::npos) << text;
}

TEST(StateJson, ReadsPercentToNearestBasisPoint) {
  const auto green_of = [](std::string_view blue, std::string_view green) -> long {
    const std::string doc = R"({"version":1,"services":[{"name":"a","weights":{"blue":)" +
                            std::string(blue) + R"(,"green":)" + std::string(green) +
                            R"(},"stable":{"blue":100,"green":0},"target":null,"phase":"idle",)"
                            R"("step":0,"reason":"","servers":{}}],"history":[]})";
    auto s = from_json(doc);
    if (!s) {
      ADD_FAILURE() << s.error();
      return -1;
    }
    return static_cast<long>(s->services[0].weights.green_bp);
  };
  EXPECT_EQ(green_of("66.67", "33.33"), 3333);
  EXPECT_EQ(green_of("50", "50"), 5000);
  EXPECT_EQ(green_of("99.99", "0.01"), 1);
  EXPECT_EQ(green_of("0.01", "99.99"), 9999);
  EXPECT_EQ(green_of("87.5", "12.5"), 1250);
  EXPECT_EQ(green_of("100", "0"), 0);
  EXPECT_EQ(green_of("0.0", "100.0"), 10000);
  EXPECT_EQ(green_of("0.71", "99.29"), 9929);
  EXPECT_EQ(green_of("1E2", "0E0"), 0);
}

TEST(StateJson, InvalidUtf8IsWrittenAsReplacementSoTheFileStaysLoadable) {
  State s;
  ServiceState svc;
  svc.name = "app";
  svc.reason = std::string("bad \xff\xc0 bytes \xe2\x98\x83 ok");
  s.services.push_back(svc);
  auto back = from_json(to_json(s));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->services[0].reason, "bad \xef\xbf\xbd\xef\xbf\xbd bytes \xe2\x98\x83 ok");
}

TEST(StateJson, UnknownKeysAreIgnored) {
  std::string doc = to_json(small_state());
  doc.insert(1, R"("written_by":"bgproxy 9.9",)");
  auto back = from_json(doc);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, small_state());
}

TEST(StateJson, HistoryLongerThanMaxKeepsTheNewest) {
  State s;
  for (std::uint32_t i = 0; i < State::max_history; ++i) s.record(entry("app", i, i));
  std::string doc = to_json(s);
  // Prepend one older entry by hand: the document now holds max_history + 1.
  const std::string older = R"({"time":"t","service":"app","command":"split","by":{"uid":0,"pid":1},)"
                            R"("reason":"manual","before":{"blue":100,"green":0},)"
                            R"("after":{"blue":100,"green":0}},)";
  doc.insert(doc.find("\"history\":[") + 11, older);
  auto back = from_json(doc);
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, s);
}

/// A valid document to break one field of at a time.
const std::string good_doc =
    R"({"version":1,"services":[{"name":"app","weights":{"blue":70.0,"green":30.0},)"
    R"("stable":{"blue":100.0,"green":0.0},"target":"green","phase":"canary","step":1,)"
    R"("reason":"","canary":{"steps":[10.0,50.0,100.0],"interval_ms":60000,"step_started_ms":1764019800123},)"
    R"("servers":{"127.0.0.1:5006":"disabled"}}],)"
    R"("history":[{"time":"2026-11-24T21:30:00.123Z","service":"app","command":"split",)"
    R"("args":{"green":50},"by":{"uid":0,"pid":4242},"reason":"manual","before":{"blue":100.0,"green":0.0},)"
    R"("after":{"blue":50.0,"green":50.0}}]})";

// Files written before the watchdog (issue 5) have no "canary" object: they load, with none running.
TEST(StateJson, Issue5FileWithoutCanaryLoads) {
  std::string doc = good_doc;
  const std::string canary =
      R"("canary":{"steps":[10.0,50.0,100.0],"interval_ms":60000,"step_started_ms":1764019800123},)";
  doc.erase(doc.find(canary), canary.size());
  const auto s = from_json(doc);
  ASSERT_TRUE(s.has_value()) << s.error();
  EXPECT_TRUE(s->services[0].canary_steps_bp.empty());
  EXPECT_EQ(s->services[0].canary_interval_ms, 0);
  EXPECT_EQ(s->services[0].step_started_ms, 0);
}

TEST(StateJson, Issue5CanaryRoundTrips) {
  const auto s = from_json(good_doc);
  ASSERT_TRUE(s.has_value()) << s.error();
  EXPECT_EQ(s->services[0].canary_steps_bp, (std::vector<std::uint32_t>{1000, 5000, 10000}));
  EXPECT_EQ(s->services[0].canary_interval_ms, 60000);
  EXPECT_EQ(s->services[0].step_started_ms, 1764019800123);
}

// Issue 11: a history entry's command is the bare verb and its arguments are in "args".
TEST(StateJson, ArgsRoundTripWithTheirKinds) {
  const State s = rich_state();
  const std::string text = to_json(s);
  EXPECT_NE(text.find(R"("command":"rollback","args":{},)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("steps":[0.01,33.33,99.99,100],"interval_seconds":1.5,"force":true,)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"("whole_double":10.0,)"), std::string::npos) << text;
  auto back = from_json(text);
  ASSERT_TRUE(back) << back.error();
  const auto& args = back->history.back().args;
  EXPECT_EQ(args, s.history.back().args);
  // An integer stays an integer and a whole double a double, so a rewrite changes nothing.
  EXPECT_TRUE(args.at("steps").as_array().at(3).is_int64());
  EXPECT_TRUE(args.at("whole_double").is_double());
  EXPECT_EQ(args.at("steps").as_array().at(1).as_double(), 33.33);
  EXPECT_EQ(args.at("note").as_string(), "quoted \" ünïcødé");
}

TEST(StateJson, LegacyCommandTextIsSplitIntoVerbAndArgs) {
  struct Case {
    std::string_view text;
    std::string command;
    json::object args;
  };
  // Every form bgproxy wrote before issue 11 (control/core/controller.cpp at 5f2541a).
  const std::vector<Case> cases = {
      {"split green 10", "split", {{"green", 10}}},
      {"split green 12.5", "split", {{"green", 12.5}}},
      {"split green 0.05", "split", {{"green", 0.05}}},
      {"split green 0", "split", {{"green", 0}}},
      {"switch green", "switch", {{"color", "green"}}},
      {"switch blue", "switch", {{"color", "blue"}}},
      {"rollback", "rollback", {}},
      {"canary start green 10,50,100", "canary",
       {{"action", "start"}, {"target", "green"}, {"steps", {10, 50, 100}}}},
      {"canary start blue 5,25.5,100", "canary", {{"action", "start"}, {"target", "blue"}, {"steps", {5, 25.5, 100}}}},
      {"canary pause", "canary", {{"action", "pause"}}},
      {"canary resume", "canary", {{"action", "resume"}}},
      {"canary abort", "canary", {{"action", "abort"}}},
      {"canary advance", "canary", {{"action", "advance"}}},
      {"promote", "canary", {{"action", "promote"}}},
      {"server enable 127.0.0.1:5006", "server", {{"action", "enable"}, {"address", "127.0.0.1:5006"}}},
      {"server disable [::1]:7000", "server", {{"action", "disable"}, {"address", "[::1]:7000"}}},
      {"server drain 10.0.0.5:80", "server", {{"action", "drain"}, {"address", "10.0.0.5:80"}}},
      // Anything else is kept as it was: nothing is invented.
      {"split green lots", "split green lots", {}},
      {"split green 150", "split green 150", {}},
      {"split blue 10", "split blue 10", {}},
      {"switch red", "switch red", {}},
      {"switch green now", "switch green now", {}},
      {"canary start green 10,,100", "canary start green 10,,100", {}},
      {"canary start red 10,50,100", "canary start red 10,50,100", {}},
      {"canary stop", "canary stop", {}},
      {"server disable", "server disable", {}},
      {"server pause 127.0.0.1:5006", "server pause 127.0.0.1:5006", {}},
      {"split  green 10", "split  green 10", {}},
      {"reload", "reload", {}},
      {"", "", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.text));
    const auto got = parse_legacy_command(c.text);
    EXPECT_EQ(got.command, c.command);
    EXPECT_EQ(got.args, c.args);
  }
  // Whole percentages become integers, as in new entries.
  EXPECT_TRUE(parse_legacy_command("split green 10").args.at("green").is_int64());
  EXPECT_TRUE(parse_legacy_command("split green 12.5").args.at("green").is_double());
}

// A state file written before issue 11 loads with its history converted; saved again, it is in
// the new form and loads to the same state.
TEST(StateJson, Issue11FileWithCommandTextLoadsAsVerbAndArgs) {
  std::string doc = R"({"version":1,"services":[],"history":[)";
  const std::vector<std::string> old_commands = {"split green 10",
                                                 "switch green",
                                                 "rollback",
                                                 "canary start green 10,50,100",
                                                 "canary advance",
                                                 "promote",
                                                 "server drain 127.0.0.1:5006"};
  for (std::size_t i = 0; i < old_commands.size(); ++i) {
    if (i != 0) doc += ',';
    doc += R"({"time":"2026-11-24T21:30:00.123Z","service":"app","command":")" + old_commands[i] +
           R"(","by":{"uid":0,"pid":4242},"reason":"manual","before":{"blue":100.0,"green":0.0},)"
           R"("after":{"blue":100.0,"green":0.0}})";
  }
  doc += "]}";
  auto s = from_json(doc);
  ASSERT_TRUE(s) << s.error();
  ASSERT_EQ(s->history.size(), old_commands.size());
  std::vector<std::string> commands;
  for (const auto& h : s->history) commands.push_back(h.command);
  EXPECT_EQ(commands, (std::vector<std::string>{"split", "switch", "rollback", "canary", "canary", "canary", "server"}));
  EXPECT_EQ(s->history[0].args, (json::object{{"green", 10}}));
  EXPECT_EQ(s->history[3].args,
            (json::object{{"action", "start"}, {"target", "green"}, {"steps", {10, 50, 100}}}));
  EXPECT_EQ(s->history[5].args, (json::object{{"action", "promote"}}));
  EXPECT_EQ(s->history[6].args, (json::object{{"action", "drain"}, {"address", "127.0.0.1:5006"}}));
  for (const auto& h : s->history) {
    EXPECT_EQ(h.uid, 0U);
    EXPECT_EQ(h.pid, 4242);
    EXPECT_EQ(h.reason, "manual");
  }

  const std::string rewritten = to_json(*s);
  EXPECT_NE(rewritten.find(R"("command":"split","args":{"green":10},)"), std::string::npos) << rewritten;
  auto again = from_json(rewritten);
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(*again, *s);
}

std::string with(std::string_view from, std::string_view to) {
  std::string doc = good_doc;
  const auto at = doc.find(from);
  EXPECT_NE(at, std::string::npos) << "pattern not in the document: " << from;
  if (at != std::string::npos) doc.replace(at, from.size(), to);
  return doc;
}

TEST(StateJson, TheBaseDocumentIsValid) {
  auto s = from_json(good_doc);
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(to_json(*s), good_doc);
}

// Only entries without "args" are old ones; an entry that has them is taken as written.
TEST(StateJson, AnEntryWithArgsIsNeverReinterpreted) {
  auto s = from_json(with(R"("command":"split","args":{"green":50})", R"("command":"split green 10","args":{})"));
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->history[0].command, "split green 10");
  EXPECT_TRUE(s->history[0].args.empty());
}

TEST(StateJson, MalformedDocumentsNameTheField) {
  struct Case {
    std::string doc;
    std::string error;
  };
  const std::string svc0 = "services[0].";
  const std::vector<Case> cases = {
      {"", "invalid JSON: empty document"},
      {" \n\t ", "invalid JSON: empty document"},
      {R"({"version":1,)", "invalid JSON at byte 13: incomplete JSON"},
      {R"({"version":1,})", "invalid JSON at byte 13: syntax error"},
      {good_doc + " x", "invalid JSON at byte " + std::to_string(good_doc.size() + 1) + ": extra data"},
      {"[]", "state: must be a JSON object"},
      {"null", "state: must be a JSON object"},
      {with(R"("version":1,)", ""), "version: missing"},
      {with(R"("version":1,)", R"("version":"1",)"), "version: must be an integer"},
      {with(R"("version":1,)", R"("version":1.0,)"), "version: must be an integer"},
      {with(R"("version":1,)", R"("version":2,)"), "version: unsupported version 2 (expected 1)"},
      {with(R"("version":1,)", R"("version":-1,)"), "version: unsupported version -1 (expected 1)"},
      {R"({"version":1,"history":[]})", "services: missing"},
      {R"({"version":1,"services":{},"history":[]})", "services: must be an array"},
      {R"({"version":1,"services":[5],"history":[]})", "services[0]: must be an object"},
      {with(R"("name":"app",)", ""), svc0 + "name: missing"},
      {with(R"("name":"app")", R"("name":5)"), svc0 + "name: must be a string"},
      {with(R"("name":"app")", R"("name":"")"), svc0 + "name: must not be empty"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":-50,"green":150)"),
       svc0 + "weights.blue: must be a number in [0, 100]"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":70.0,"green":150)"),
       svc0 + "weights.green: must be a number in [0, 100]"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":70.0,"green":-1)"),
       svc0 + "weights.green: must be a number in [0, 100]"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":70.0,"green":"30")"),
       svc0 + "weights.green: must be a number in [0, 100]"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":70.0,"green":null)"),
       svc0 + "weights.green: must be a number in [0, 100]"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":70.0,"green":1e400)"),
       svc0 + "weights.green: must be a number in [0, 100]"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":70.0,"green":100.001)"),
       svc0 + "weights.green: must be a number in [0, 100]"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":70.0)"), svc0 + "weights.green: missing"},
      {with(R"("blue":70.0,"green":30.0)", R"("blue":70.0,"green":40.0)"),
       svc0 + "weights: blue and green must add up to 100"},
      {with(R"("weights":{"blue":70.0,"green":30.0})", R"("weights":[70,30])"),
       svc0 + "weights: must be an object"},
      {with(R"("stable":{"blue":100.0,"green":0.0},)", ""), svc0 + "stable: missing"},
      {with(R"("stable":{"blue":100.0,"green":0.0})", R"("stable":{"blue":true,"green":0.0})"),
       svc0 + "stable.blue: must be a number in [0, 100]"},
      {with(R"("target":"green",)", ""), svc0 + "target: missing"},
      {with(R"("target":"green")", R"("target":"red")"),
       svc0 + R"(target: must be "blue", "green" or null)"},
      {with(R"("target":"green")", R"("target":"Green")"),
       svc0 + R"(target: must be "blue", "green" or null)"},
      {with(R"("target":"green")", R"("target":1)"),
       svc0 + R"(target: must be "blue", "green" or null)"},
      {with(R"("phase":"canary")", R"("phase":"done")"), svc0 + R"(phase: unknown phase "done")"},
      {with(R"("phase":"canary")", R"("phase":3)"), svc0 + "phase: must be a string"},
      {with(R"("step":1)", R"("step":-1)"), svc0 + "step: must be an integer in [0, 4294967295]"},
      {with(R"("step":1)", R"("step":1.5)"), svc0 + "step: must be an integer in [0, 4294967295]"},
      {with(R"("step":1)", R"("step":4294967296)"),
       svc0 + "step: must be an integer in [0, 4294967295]"},
      {with(R"("reason":"",)", ""), svc0 + "reason: missing"},
      {with(R"("servers":{"127.0.0.1:5006":"disabled"})", R"("servers":[])"),
       svc0 + "servers: must be an object"},
      {with(R"("127.0.0.1:5006":"disabled")", R"("127.0.0.1:5006":"off")"),
       svc0 + R"(servers["127.0.0.1:5006"]: unknown admin state "off" )"
              R"((expected "enabled", "disabled" or "draining"))"},
      {with(R"("127.0.0.1:5006":"disabled")", R"("127.0.0.1:5006":false)"),
       svc0 + R"(servers["127.0.0.1:5006"]: must be "enabled", "disabled" or "draining")"},
      {with(R"("servers":{"127.0.0.1:5006":"disabled"})", R"("servers":{"":"disabled"})"),
       svc0 + R"(servers[""]: address must not be empty)"},
      {with(R"("phase":"canary")", R"("phase":"paused-for-a-very-long-time-with-a-name-that-goes-on")"),
       svc0 + R"(phase: unknown phase "paused-for-a-very-long-time-with-a-name-...")"},
      {with(R"("services":[)", R"("services":[{"name":"app","weights":{"blue":0,"green":100},)"
                               R"("stable":{"blue":0,"green":100},"target":null,"phase":"idle",)"
                               R"("step":0,"reason":"","servers":{}},)"),
       R"(services[1].name: duplicate service "app")"},
      {with(R"(,"history":[{)", R"(})"), "invalid JSON at byte 298: extra data"},
      {with(R"(,"history":[)", R"(,"histories":[)"), "history: missing"},
      {with(R"("history":[)", R"("history":{"x":[)") + "}", "history: must be an array"},
      {with(R"("history":[{)", R"("history":["x",{)"), "history[0]: must be an object"},
      {with(R"("time":"2026-11-24T21:30:00.123Z",)", ""), "history[0].time: missing"},
      {with(R"("command":"split")", R"("command":["split"])"), "history[0].command: must be a string"},
      {with(R"("args":{"green":50})", R"("args":[50])"), "history[0].args: must be an object"},
      {with(R"("args":{"green":50})", R"("args":null)"), "history[0].args: must be an object"},
      {with(R"("by":{"uid":0,"pid":4242},)", ""), "history[0].by: missing"},
      {with(R"("by":{"uid":0,"pid":4242})", R"("by":"root")"), "history[0].by: must be an object"},
      {with(R"("uid":0)", R"("uid":-1)"), "history[0].by.uid: must be an integer in [0, 4294967295]"},
      {with(R"("pid":4242)", R"("pid":2147483648)"),
       "history[0].by.pid: must be an integer in [-2147483648, 2147483647]"},
      {with(R"("reason":"manual")", R"("reason":null)"), "history[0].reason: must be a string"},
      {with(R"("before":{"blue":100.0,"green":0.0})", R"("before":{"blue":100.0,"green":0.5})"),
       "history[0].before: blue and green must add up to 100"},
      {with(R"("after":{"blue":50.0,"green":50.0})", R"("after":{"blue":50.0,"green":"50"})"),
       "history[0].after.green: must be a number in [0, 100]"},
  };
  ASSERT_GE(cases.size(), 15U);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + ": " + cases[i].doc);
    auto r = from_json(cases[i].doc);
    ASSERT_FALSE(r) << "accepted";
    EXPECT_EQ(r.error(), cases[i].error);
  }
}

// ---------------------------------------------------------------------------------------------
// A history entry's "instance" and "local" in a fleet (README "Running a fleet", SPEC §12).

/// A split of "app" at `time`, made by fleet member `instance` ("" outside a fleet), on it alone or not.
HistoryEntry fleet_entry(std::string time, std::string instance, bool local) {
  HistoryEntry h = entry("app", 0, 3000);
  h.time = std::move(time);
  h.instance = std::move(instance);
  h.local = local;
  return h;
}

/// good_doc with `field` set to the JSON `value` on its history entry.
std::string with_entry_field(std::string_view field, std::string_view value) {
  const std::string after = R"("after":{"blue":50.0,"green":50.0})";
  return with(after, after + ",\"" + std::string(field) + "\":" + std::string(value));
}

TEST(FleetStateJson, InstanceAndLocalRoundTrip) {
  State s;
  s.record(fleet_entry("2026-12-03T10:00:00.000Z", "a", false));
  s.record(fleet_entry("2026-12-03T10:00:01.000Z", "b", true));
  s.record(fleet_entry("2026-12-03T10:00:02.000Z", "", true));  // a --local change outside a fleet's view
  s.record(fleet_entry("2026-12-03T10:00:03.000Z", "", false));
  const std::string text = to_json(s);
  const auto back = from_json(text);
  ASSERT_TRUE(back.has_value()) << back.error() << "\n" << text;
  EXPECT_EQ(*back, s);
  ASSERT_EQ(back->history.size(), 4u);
  EXPECT_EQ(back->history[0].instance, "a");
  EXPECT_FALSE(back->history[0].local);
  EXPECT_EQ(back->history[1].instance, "b");
  EXPECT_TRUE(back->history[1].local);
  EXPECT_EQ(back->history[2].instance, "");
  EXPECT_TRUE(back->history[2].local);
}

TEST(FleetStateJson, FieldsAbsentWhenEmptyOrFalse) {
  State s;
  s.record(fleet_entry("2026-12-03T10:00:00.000Z", "", false));
  const std::string text = to_json(s);
  EXPECT_EQ(text.find("\"instance\""), std::string::npos) << text;
  EXPECT_EQ(text.find("\"local\""), std::string::npos) << text;

  State t;
  t.record(fleet_entry("2026-12-03T10:00:00.000Z", "a", true));
  const auto v = json::parse(to_json(t));
  const auto& h = v.at("history").at(0).as_object();
  EXPECT_EQ(h.at("instance"), "a");
  EXPECT_EQ(h.at("local"), true);
}

TEST(FleetStateJson, EntriesWithoutTheFieldsReadAsOutsideAFleet) {
  const auto s = from_json(good_doc);
  ASSERT_TRUE(s.has_value()) << s.error();
  ASSERT_EQ(s->history.size(), 1u);
  EXPECT_EQ(s->history[0].instance, "");
  EXPECT_FALSE(s->history[0].local);
}

TEST(FleetStateJson, LocalMustBeABool) {
  ASSERT_TRUE(from_json(with_entry_field("local", "false")).has_value());
  EXPECT_TRUE(from_json(with_entry_field("local", "true"))->history[0].local);
  for (std::string_view bad : {"\"true\"", "1", "0", "null", "[]"}) {
    const auto s = from_json(with_entry_field("local", bad));
    ASSERT_FALSE(s.has_value()) << bad;
    EXPECT_EQ(s.error(), "history[0].local: must be true or false") << bad;
  }
}

TEST(FleetStateJson, InstanceMustBeAString) {
  EXPECT_EQ(from_json(with_entry_field("instance", "\"b\""))->history[0].instance, "b");
  for (std::string_view bad : {"1", "null", "true", "{}"}) {
    const auto s = from_json(with_entry_field("instance", bad));
    ASSERT_FALSE(s.has_value()) << bad;
    EXPECT_EQ(s.error(), "history[0].instance: must be a string") << bad;
  }
}

// ---------------------------------------------------------------------------------------------

TEST(StateFile, SaveThenLoadEquals) {
  TempDir dir;
  StateFile file(dir.file("state.json"));
  EXPECT_EQ(file.location(), dir.file("state.json"));
  const State s = rich_state();
  auto saved = file.save(s);
  ASSERT_TRUE(saved) << saved.error();
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"state.json"});

  auto loaded = file.load();
  EXPECT_EQ(loaded.problem, "");
  ASSERT_TRUE(loaded.state.has_value());
  EXPECT_EQ(*loaded.state, s);
}

TEST(StateFile, SaveWritesMode0640) {
  TempDir dir;
  const mode_t old_mask = ::umask(022);
  StateFile file(dir.file("state.json"));
  auto saved = file.save(small_state());
  ::umask(old_mask);
  ASSERT_TRUE(saved) << saved.error();
  struct stat st {};
  ASSERT_EQ(::stat(file.location().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640U);
}

TEST(StateFile, SaveReplacesAtomically) {
  TempDir dir;
  StateFile file(dir.file("state.json"));
  const State old_state = rich_state();
  ASSERT_TRUE(file.save(old_state));
  const std::string old_text = read_file(file.location());

  // A reader holding the old file keeps seeing all of it: the new content goes to a new inode
  // that is renamed over the path, never written into the old file in place.
  const int reader = ::open(file.location().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  struct stat before {};
  ASSERT_EQ(::fstat(reader, &before), 0);

  const State new_state = small_state();
  auto saved = file.save(new_state);
  ASSERT_TRUE(saved) << saved.error();

  std::string seen(static_cast<std::size_t>(before.st_size) + 16, '\0');
  const ssize_t n = ::pread(reader, seen.data(), seen.size(), 0);
  ::close(reader);
  ASSERT_GE(n, 0);
  seen.resize(static_cast<std::size_t>(n));
  EXPECT_EQ(seen, old_text);

  struct stat after {};
  ASSERT_EQ(::stat(file.location().c_str(), &after), 0);
  EXPECT_NE(after.st_ino, before.st_ino);
  EXPECT_EQ(read_file(file.location()), to_json(new_state) + "\n");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"state.json"});  // no temp file left

  auto loaded = file.load();
  ASSERT_TRUE(loaded.state.has_value()) << loaded.problem;
  EXPECT_EQ(*loaded.state, new_state);
}

TEST(StateFile, SaveIntoAMissingDirectoryFails) {
  TempDir dir;
  const std::string path = dir.file("missing/state.json");
  auto saved = StateFile(path).save(small_state());
  ASSERT_FALSE(saved);
  EXPECT_EQ(saved.error(), "cannot write state file " + path + ": No such file or directory");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});  // no directory was created
}

TEST(StateFile, SaveIntoAnUnwritableDirectoryFailsAndKeepsTheOldFile) {
  TempDir dir;
  const std::string old_content = to_json(rich_state()) + "\n";
  if (::geteuid() == 0) {
    // root writes through chmod 0500; a regular file in place of the directory still fails.
    const std::string blocker = dir.file("not-a-dir");
    write_file(blocker, old_content);
    const std::string path = blocker + "/state.json";
    auto saved = StateFile(path).save(small_state());
    ASSERT_FALSE(saved);
    EXPECT_EQ(saved.error(), "cannot write state file " + path + ": Not a directory");
    EXPECT_EQ(read_file(blocker), old_content);
    EXPECT_EQ(dir.entries(), std::vector<std::string>{"not-a-dir"});
  } else {
    const std::string path = dir.file("state.json");
    write_file(path, old_content);
    ASSERT_EQ(::chmod(dir.path().c_str(), 0500), 0);
    auto saved = StateFile(path).save(small_state());
    ::chmod(dir.path().c_str(), 0700);
    ASSERT_FALSE(saved);
    EXPECT_EQ(saved.error(), "cannot write state file " + path + ": Permission denied");
    EXPECT_EQ(read_file(path), old_content);
    EXPECT_EQ(dir.entries(), std::vector<std::string>{"state.json"});
  }
}

TEST(StateFile, SaveOverADirectoryFailsAndLeavesNoTempFile) {
  TempDir dir;
  const std::string path = dir.file("state.json");
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  write_file(path + "/keep", "x");
  auto saved = StateFile(path).save(small_state());
  ASSERT_FALSE(saved);
  EXPECT_EQ(saved.error().rfind("cannot write state file " + path + ": ", 0), 0U) << saved.error();
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"state.json"});
  EXPECT_EQ(read_file(path + "/keep"), "x");
}

TEST(StateFile, LoadOfAMissingFileIsNotAProblem) {
  TempDir dir;
  auto loaded = StateFile(dir.file("state.json")).load();
  EXPECT_FALSE(loaded.state.has_value());
  EXPECT_EQ(loaded.problem, "");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});

  auto in_missing_dir = StateFile(dir.file("nope/state.json")).load();
  EXPECT_FALSE(in_missing_dir.state.has_value());
  EXPECT_EQ(in_missing_dir.problem, "");
}

TEST(StateFile, LoadOfAnUnreadablePathReportsAndMovesNothing) {
  TempDir dir;
  const std::string path = dir.file("state.json");
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  auto loaded = StateFile(path).load();
  EXPECT_FALSE(loaded.state.has_value());
  EXPECT_EQ(loaded.problem, "cannot read state file " + path + ": Is a directory");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"state.json"});

  const std::string through_file = dir.file("plain");
  write_file(through_file, "{}");
  auto under_file = StateFile(through_file + "/state.json").load();
  EXPECT_FALSE(under_file.state.has_value());
  EXPECT_EQ(under_file.problem,
            "cannot read state file " + through_file + "/state.json: Not a directory");
  EXPECT_EQ(read_file(through_file), "{}");
}

TEST(StateFile, LoadOfACorruptFileMovesItAside) {
  TempDir dir;
  const std::string path = dir.file("state.json");
  const std::string garbage = "{\"version\":1,\"services\":[";
  write_file(path, garbage);

  const long long t0 = static_cast<long long>(::time(nullptr));
  auto loaded = StateFile(path).load();
  const long long t1 = static_cast<long long>(::time(nullptr));
  EXPECT_FALSE(loaded.state.has_value());
  EXPECT_FALSE(exists(path));

  std::string moved;
  for (long long t = t0; t <= t1; ++t) {
    if (exists(path + ".corrupt-" + std::to_string(t))) moved = path + ".corrupt-" + std::to_string(t);
  }
  ASSERT_NE(moved, "") << loaded.problem;
  EXPECT_EQ(read_file(moved), garbage);
  EXPECT_EQ(loaded.problem, "state file " + path +
                                " is corrupt (invalid JSON at byte 25: incomplete JSON); moved to " +
                                moved);
}

TEST(StateFile, LoadOfAWrongShapeMovesItAside) {
  TempDir dir;
  const std::string path = dir.file("state.json");
  write_file(path, with(R"("phase":"canary")", R"("phase":"done")"));
  auto loaded = StateFile(path).load();
  EXPECT_FALSE(loaded.state.has_value());
  EXPECT_EQ(loaded.problem.rfind("state file " + path +
                                     " is corrupt (services[0].phase: unknown phase \"done\"); "
                                     "moved to " + path + ".corrupt-",
                                 0),
            0U)
      << loaded.problem;
  EXPECT_FALSE(exists(path));
  ASSERT_EQ(dir.entries().size(), 1U);
}

TEST(StateFile, CorruptNamesTakenGetTheNextSuffix) {
  TempDir dir;
  const std::string path = dir.file("state.json");
  write_file(path, "not json");
  // Occupy "<path>.corrupt-<t>" and "...-1" for every second the load may run in.
  const long long t0 = static_cast<long long>(::time(nullptr));
  for (long long t = t0; t <= t0 + 5; ++t) {
    write_file(path + ".corrupt-" + std::to_string(t), "older 0");
    write_file(path + ".corrupt-" + std::to_string(t) + "-1", "older 1");
  }
  auto loaded = StateFile(path).load();
  const long long t1 = static_cast<long long>(::time(nullptr));
  ASSERT_LE(t1, t0 + 5);
  EXPECT_FALSE(loaded.state.has_value());
  EXPECT_FALSE(exists(path));

  std::string moved;
  for (long long t = t0; t <= t1; ++t) {
    const std::string candidate = path + ".corrupt-" + std::to_string(t) + "-2";
    if (exists(candidate)) moved = candidate;
  }
  ASSERT_NE(moved, "") << loaded.problem;
  EXPECT_EQ(read_file(moved), "not json");
  EXPECT_EQ(loaded.problem, "state file " + path +
                                " is corrupt (invalid JSON at byte 0: syntax error); moved to " +
                                moved);
  for (long long t = t0; t <= t0 + 5; ++t) {  // nothing older was overwritten
    EXPECT_EQ(read_file(path + ".corrupt-" + std::to_string(t)), "older 0");
    EXPECT_EQ(read_file(path + ".corrupt-" + std::to_string(t) + "-1"), "older 1");
  }
}

TEST(StateFile, LoadOfAnEmptyFileIsCorrupt) {
  TempDir dir;
  const std::string path = dir.file("state.json");
  write_file(path, "");
  auto loaded = StateFile(path).load();
  EXPECT_FALSE(loaded.state.has_value());
  const std::string prefix = "state file " + path + " is corrupt (empty file); moved to " + path +
                             ".corrupt-";
  EXPECT_EQ(loaded.problem.rfind(prefix, 0), 0U) << loaded.problem;
  const std::string moved = loaded.problem.substr(loaded.problem.find("moved to ") + 9);
  EXPECT_TRUE(exists(moved)) << moved;
  EXPECT_FALSE(exists(path));
}

TEST(StateFile, IsAStateStore) {
  TempDir dir;
  StateFile file(dir.file("state.json"));
  StateStore& store = file;
  EXPECT_EQ(store.location(), dir.file("state.json"));
  EXPECT_FALSE(store.load().state.has_value());
  ASSERT_TRUE(store.save(small_state()));
  auto loaded = store.load();
  ASSERT_TRUE(loaded.state.has_value()) << loaded.problem;
  EXPECT_EQ(*loaded.state, small_state());
}

TEST(StateFile, AfterACorruptLoadASaveStartsAFreshFile) {
  TempDir dir;
  StateFile file(dir.file("state.json"));
  write_file(file.location(), "}{");
  EXPECT_FALSE(file.load().state.has_value());
  ASSERT_TRUE(file.save(small_state()));
  auto loaded = file.load();
  ASSERT_TRUE(loaded.state.has_value()) << loaded.problem;
  EXPECT_EQ(*loaded.state, small_state());
  EXPECT_EQ(dir.entries().size(), 2U);  // the state file and the corrupt one beside it
}

}  // namespace
}  // namespace bgproxy::control
