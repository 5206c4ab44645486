// One service's shared state as a fleet keeps it in etcd (control/core/service_document, README
// "Running a fleet", SPEC §12): the value written under PREFIX/services/NAME, read back, taken
// into an instance's own state (adopt), and the one-line summary of a change for logs.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "control/core/service_document.hpp"
#include "control/core/state.hpp"

namespace bgproxy::control {
namespace {

namespace json = boost::json;
using routing::Color;

/// An RFC 3339 UTC time `n` seconds after 2026-12-03T00:00:00.000Z, all of one width.
std::string time_at(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "2026-12-03T%02d:%02d:%02d.000Z", n / 3600, (n / 60) % 60, n % 60);
  return buf;
}

HistoryEntry entry(const std::string& service, int at, std::uint32_t green_after, std::string instance = {}) {
  HistoryEntry h;
  h.time = time_at(at);
  h.service = service;
  h.command = "split";
  h.args = {{"green", percent_arg(green_after)}};
  h.uid = 1000;
  h.pid = 4242;
  h.before.green_bp = 0;
  h.after.green_bp = green_after;
  h.instance = std::move(instance);
  return h;
}

ServiceState service(const std::string& name, std::uint32_t green_bp) {
  ServiceState s;
  s.name = name;
  s.weights.green_bp = green_bp;
  return s;
}

/// "app" in a canary with everything set, "api" idle; history interleaved between them.
State two_services() {
  State s;
  ServiceState app = service("app", 3000);
  app.stable.green_bp = 0;
  app.target = Color::green;
  app.phase = Phase::canary;
  app.step = 1;
  app.reason = "canary: step 2 of 3";
  app.servers["127.0.0.1:5006"] = AdminState::draining;
  app.canary_steps_bp = {1000, 3000, 10000};
  app.canary_interval_ms = 60000;
  app.step_started_ms = 1764720000000;
  s.services.push_back(app);
  s.services.push_back(service("api", 10000));
  s.record(entry("app", 1, 1000, "a"));
  s.record(entry("api", 2, 10000, "b"));
  s.record(entry("app", 3, 3000, "a"));
  return s;
}

std::vector<std::string> times_of(const std::deque<HistoryEntry>& h) {
  std::vector<std::string> out;
  for (const auto& e : h) out.push_back(e.time);
  return out;
}

ServiceDocument parsed(const std::string& text) {
  auto r = parse_document(text);
  EXPECT_TRUE(r.has_value()) << (r.has_value() ? "" : r.error()) << "\n" << text;
  return r.has_value() ? *r : ServiceDocument{};
}

std::string error_of(const std::string& text) {
  auto r = parse_document(text);
  EXPECT_FALSE(r.has_value()) << text;
  return r.has_value() ? std::string("<accepted>") : r.error();
}

// ----------------------------------------------------------------------- to_document / parse_document

TEST(ServiceDocument, RoundTripOfOneServiceWithItsHistoryAndWriter) {
  const State s = two_services();
  const std::string text = to_document(s, 0, "a", "split green 30");
  const ServiceDocument doc = parsed(text);
  EXPECT_EQ(doc.service, s.services[0]);
  ASSERT_EQ(doc.history.size(), 2u);
  EXPECT_EQ(doc.history[0], s.history[0]);
  EXPECT_EQ(doc.history[1], s.history[2]);
  EXPECT_EQ(doc.by, "a");
  EXPECT_EQ(doc.change, "split green 30");

  // The other service, from the same state.
  const ServiceDocument api = parsed(to_document(s, 1, "b", "switch green"));
  EXPECT_EQ(api.service, s.services[1]);
  ASSERT_EQ(api.history.size(), 1u);
  EXPECT_EQ(api.history[0], s.history[1]);
  EXPECT_EQ(api.by, "b");
  EXPECT_EQ(api.change, "switch green");
}

TEST(ServiceDocument, IsOneJsonObjectWithTheFleetFields) {
  const std::string text = to_document(two_services(), 0, "a", "split green 30");
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  json::error_code ec;
  const auto v = json::parse(text, ec);
  ASSERT_FALSE(ec) << ec.message() << ": " << text;
  ASSERT_TRUE(v.is_object()) << text;
  const auto& o = v.get_object();
  EXPECT_EQ(o.at("version"), 1);
  ASSERT_EQ(o.at("services").as_array().size(), 1u);
  EXPECT_EQ(o.at("services").at(0).at("name"), "app");
  EXPECT_EQ(o.at("history").as_array().size(), 2u);
  EXPECT_EQ(o.at("by"), "a");
  EXPECT_EQ(o.at("change"), "split green 30");
  // The history entries keep their fleet fields.
  EXPECT_EQ(o.at("history").at(1).at("instance"), "a");
}

TEST(ServiceDocument, ReadableByTheStateReader) {
  const State s = two_services();
  const auto state = from_json(to_document(s, 0, "a", "split green 30"));
  ASSERT_TRUE(state.has_value()) << state.error();
  ASSERT_EQ(state->services.size(), 1u);
  EXPECT_EQ(state->services[0], s.services[0]);
  ASSERT_EQ(state->history.size(), 2u);
  EXPECT_EQ(state->history[0], s.history[0]);
  EXPECT_EQ(state->history[1], s.history[2]);
}

TEST(ServiceDocument, OddTextInByAndChangeIsEscaped) {
  const std::string by = "host \"a\"\\:9901\n\t\xc3\xa9";
  const std::string change = "split green 30 {\"x\":1}";
  const ServiceDocument doc = parsed(to_document(two_services(), 0, by, change));
  EXPECT_EQ(doc.by, by);
  EXPECT_EQ(doc.change, change);
  const ServiceDocument empty = parsed(to_document(two_services(), 0, "", ""));
  EXPECT_EQ(empty.by, "");
  EXPECT_EQ(empty.change, "");
}

TEST(ServiceDocument, CarriesOnlyItsServicesNewestEntries) {
  State s;
  s.services.push_back(service("app", 0));
  s.services.push_back(service("api", 0));
  // 150 entries of each, interleaved: app at even seconds, api at odd ones.
  for (int i = 0; i < 300; ++i) s.record(entry(i % 2 == 0 ? "app" : "api", i, static_cast<std::uint32_t>(i)));
  const ServiceDocument doc = parsed(to_document(s, 0, "a", "split green 1"));
  ASSERT_EQ(doc.history.size(), document_history);
  for (const auto& e : doc.history) EXPECT_EQ(e.service, "app");
  // The newest 100 of app's 150, oldest first: seconds 100, 102, ..., 298.
  EXPECT_EQ(doc.history.front().time, time_at(100));
  EXPECT_EQ(doc.history.back().time, time_at(298));
  EXPECT_TRUE(std::is_sorted(doc.history.begin(), doc.history.end(),
                             [](const HistoryEntry& a, const HistoryEntry& b) { return a.time < b.time; }));
}

TEST(ServiceDocument, ServiceWithoutHistoryHasAnEmptyOne) {
  State s;
  s.services.push_back(service("app", 0));
  s.services.push_back(service("api", 0));
  s.record(entry("api", 1, 5000));
  const std::string text = to_document(s, 0, "a", "initial state");
  EXPECT_NE(text.find("\"history\":[]"), std::string::npos) << text;
  const ServiceDocument doc = parsed(text);
  EXPECT_TRUE(doc.history.empty());
  EXPECT_EQ(doc.service.name, "app");
}

TEST(ServiceDocument, ByAndChangeMayBeAbsent) {
  // A state file's document of one service: no fleet fields at all.
  State one;
  one.services.push_back(service("app", 2500));
  const ServiceDocument doc = parsed(to_json(one));
  EXPECT_EQ(doc.service, one.services[0]);
  EXPECT_EQ(doc.by, "");
  EXPECT_EQ(doc.change, "");
}

// ----------------------------------------------------------------------- parse errors

/// A document of `s` (as to_document writes it) with its JSON changed by `edit`.
std::string edited(const State& s, std::size_t service, void (*edit)(json::object&)) {
  auto v = json::parse(to_document(s, service, "a", "split green 30"));
  edit(v.as_object());
  return json::serialize(v);
}

TEST(ServiceDocumentParse, TwoServicesAreRefused) {
  State s = two_services();
  s.history.clear();
  EXPECT_EQ(error_of(to_json(s)), "services: must hold exactly one service");
}

TEST(ServiceDocumentParse, NoServiceIsRefused) {
  EXPECT_EQ(error_of(R"({"version":1,"services":[],"history":[]})"), "services: must hold exactly one service");
}

TEST(ServiceDocumentParse, HistoryOfAnotherServiceIsRefused) {
  const State s = two_services();
  const std::string text = edited(s, 0, [](json::object& o) {
    auto other = o.at("history").at(0);
    other.as_object()["service"] = "api";
    o.at("history").as_array().push_back(other);
  });
  EXPECT_EQ(error_of(text), "history: an entry of service api in app");
}

TEST(ServiceDocumentParse, ByAndChangeMustBeStrings) {
  const State s = two_services();
  EXPECT_EQ(error_of(edited(s, 0, [](json::object& o) { o["by"] = 7; })), "by: must be a string");
  EXPECT_EQ(error_of(edited(s, 0, [](json::object& o) { o["by"] = nullptr; })), "by: must be a string");
  EXPECT_EQ(error_of(edited(s, 0, [](json::object& o) { o["change"] = json::array{"split"}; })),
            "change: must be a string");
}

TEST(ServiceDocumentParse, StateReaderErrorsComeThrough) {
  EXPECT_NE(error_of("").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"version\":1,").find("invalid JSON"), std::string::npos);
  EXPECT_EQ(error_of("[1]"), "state: must be a JSON object");
  EXPECT_EQ(error_of(R"({"version":1,"history":[]})"), "services: missing");
  const State s = two_services();
  EXPECT_EQ(error_of(edited(s, 0, [](json::object& o) { o.at("history").at(0).as_object()["local"] = "yes"; })),
            "history[0].local: must be true or false");
}

// ----------------------------------------------------------------------- adopt

/// A document for "app" saying weights `green_bp`, with `history`.
ServiceDocument doc_of(std::uint32_t green_bp, std::vector<HistoryEntry> history, std::string by = "b") {
  ServiceDocument d;
  d.service = service("app", green_bp);
  d.service.target = Color::green;
  d.service.phase = Phase::promoted;
  d.history = std::move(history);
  d.by = std::move(by);
  d.change = "split green 70";
  return d;
}

TEST(ServiceDocumentAdopt, ReplacesTheServiceAndKeepsTheOthers) {
  const State s = two_services();
  const ServiceDocument d = doc_of(7000, {});
  const State next = adopt(s, 0, d);
  ASSERT_EQ(next.services.size(), 2u);
  EXPECT_EQ(next.services[0], d.service);
  EXPECT_EQ(next.services[1], s.services[1]);
  // Nothing of the old "app" stays: no servers, no canary steps, no reason.
  EXPECT_TRUE(next.services[0].servers.empty());
  EXPECT_TRUE(next.services[0].canary_steps_bp.empty());
  // `s` itself is left as it was.
  EXPECT_EQ(s, two_services());
}

TEST(ServiceDocumentAdopt, TheServiceKeepsItsLocalName) {
  ServiceDocument d = doc_of(7000, {});
  d.service.name = "elsewhere";
  const State next = adopt(two_services(), 0, d);
  EXPECT_EQ(next.services[0].name, "app");
  EXPECT_EQ(next.services[0].weights.green_bp, 7000u);
}

TEST(ServiceDocumentAdopt, KeepsOtherServicesHistory) {
  State s = two_services();
  s.record(entry("api", 10, 0, "b"));
  s.record(entry("api", 20, 5000, "b"));
  const State next = adopt(s, 0, doc_of(7000, {entry("app", 1, 1000, "a"), entry("app", 15, 7000, "b")}));
  std::vector<std::string> api_times;
  for (const auto& e : next.history)
    if (e.service == "api") api_times.push_back(e.time);
  EXPECT_EQ(api_times, (std::vector<std::string>{time_at(2), time_at(10), time_at(20)}));
}

TEST(ServiceDocumentAdopt, KeepsOlderLocalEntriesAndReplacesTheOnesInItsRange) {
  State s;
  s.services.push_back(service("app", 0));
  s.record(entry("app", 1, 1000));   // older than the document's oldest: stays
  s.record(entry("app", 2, 2000));   // older: stays
  s.record(entry("app", 5, 5000));   // the document's oldest time: the document's entry wins
  s.record(entry("app", 7, 6000));   // inside the document's range, not in it: gone
  s.record(entry("app", 12, 9000));  // newer than the document's newest: gone too (the document speaks from 5 on)
  const State next = adopt(s, 0, doc_of(7000, {entry("app", 5, 5000, "b"), entry("app", 10, 7000, "b")}));
  EXPECT_EQ(times_of(next.history), (std::vector<std::string>{time_at(1), time_at(2), time_at(5), time_at(10)}));
  EXPECT_EQ(next.history[0], s.history[0]);
  EXPECT_EQ(next.history[1], s.history[1]);
  EXPECT_EQ(next.history[2].instance, "b");  // the document's entry, not the local one
  EXPECT_EQ(next.history[3].instance, "b");
}

TEST(ServiceDocumentAdopt, AllEntriesInTimeOrder) {
  State s;
  s.services.push_back(service("app", 0));
  s.services.push_back(service("api", 0));
  s.record(entry("app", 1, 1000));
  s.record(entry("api", 3, 1000));
  s.record(entry("api", 6, 2000));
  s.record(entry("api", 9, 3000));
  const State next = adopt(s, 0, doc_of(7000, {entry("app", 2, 2000, "b"), entry("app", 5, 5000, "b"),
                                               entry("app", 8, 7000, "b")}));
  EXPECT_EQ(times_of(next.history), (std::vector<std::string>{time_at(1), time_at(2), time_at(3), time_at(5),
                                                              time_at(6), time_at(8), time_at(9)}));
  const std::vector<std::string> services = {"app", "app", "api", "app", "api", "app", "api"};
  for (std::size_t i = 0; i < services.size(); ++i) EXPECT_EQ(next.history[i].service, services[i]) << i;
}

TEST(ServiceDocumentAdopt, AtMostMaxHistoryNewestKept) {
  State s;
  s.services.push_back(service("app", 0));
  s.services.push_back(service("api", 0));
  for (int i = 0; i < static_cast<int>(State::max_history); ++i) s.record(entry("api", i, 0));
  ASSERT_EQ(s.history.size(), State::max_history);
  std::vector<HistoryEntry> docs;
  for (int i = 0; i < 10; ++i) docs.push_back(entry("app", 5000 + i, 7000, "b"));
  const State next = adopt(s, 0, doc_of(7000, docs));
  ASSERT_EQ(next.history.size(), State::max_history);
  // The 10 oldest api entries made room; the document's are all there, newest last.
  EXPECT_EQ(next.history.front().time, time_at(10));
  EXPECT_EQ(next.history.back().time, time_at(5009));
  EXPECT_EQ(next.history.back().service, "app");
}

TEST(ServiceDocumentAdopt, AdoptingTheSameDocumentTwiceIsAdoptingItOnce) {
  State s = two_services();
  s.record(entry("api", 4, 0, "b"));
  s.record(entry("app", 6, 9000, "a"));  // in the document's range
  const ServiceDocument d = doc_of(7000, {entry("app", 3, 3000, "a"), entry("app", 5, 7000, "b")});
  const State once = adopt(s, 0, d);
  const State twice = adopt(once, 0, d);
  EXPECT_EQ(twice, once);
  EXPECT_EQ(times_of(once.history), (std::vector<std::string>{time_at(1), time_at(2), time_at(3), time_at(4),
                                                              time_at(5)}));
}

TEST(ServiceDocumentAdopt, TwiceIsOnceAlsoAtTheCap) {
  State s;
  s.services.push_back(service("app", 0));
  for (int i = 0; i < static_cast<int>(State::max_history); ++i) s.record(entry("app", i, 0));
  std::vector<HistoryEntry> docs;
  for (int i = 0; i < static_cast<int>(document_history); ++i) docs.push_back(entry("app", 990 + i, 7000, "b"));
  const ServiceDocument d = doc_of(7000, docs);
  const State once = adopt(s, 0, d);
  EXPECT_EQ(once.history.size(), State::max_history);
  EXPECT_EQ(adopt(once, 0, d), once);
}

// A key seeded as "initial state" by a member without history of the service: a member that has
// some keeps it.
TEST(ServiceDocumentAdopt, AnEmptyDocumentHistoryKeepsLocalEntries) {
  State s = two_services();
  const State next = adopt(s, 0, doc_of(7000, {}));
  EXPECT_EQ(times_of(next.history), (std::vector<std::string>{time_at(1), time_at(2), time_at(3)}));
  EXPECT_EQ(next.history, s.history);
  EXPECT_EQ(next.services[0].weights.green_bp, 7000u);
}

TEST(ServiceDocumentAdopt, RoundTripThenAdoptOnAnotherInstance) {
  // What a watcher does: parse what the writer put and adopt it into its own older state.
  State writer = two_services();
  writer.services[0].weights.green_bp = 5000;
  writer.record(entry("app", 30, 5000, "a"));
  State watcher = two_services();
  const State next = adopt(watcher, 0, parsed(to_document(writer, 0, "a", "split green 50")));
  EXPECT_EQ(next.services[0], writer.services[0]);
  EXPECT_EQ(next.services[1], watcher.services[1]);
  EXPECT_EQ(next.history, writer.history);
}

// ----------------------------------------------------------------------- change_summary

HistoryEntry with_args(std::string command, json::object args) {
  HistoryEntry e = entry("app", 0, 0);
  e.command = std::move(command);
  e.args = std::move(args);
  return e;
}

TEST(ChangeSummary, EveryKindOfChange) {
  EXPECT_EQ(change_summary(with_args("split", {{"green", 30}})), "split green 30");
  EXPECT_EQ(change_summary(with_args("switch", {{"color", "green"}})), "switch green");
  EXPECT_EQ(change_summary(with_args("rollback", {})), "rollback");
  EXPECT_EQ(change_summary(with_args("canary", {{"action", "advance"}})), "canary advance");
  EXPECT_EQ(change_summary(with_args("canary", {{"action", "promote"}})), "canary promote");
  EXPECT_EQ(change_summary(with_args("server", {{"action", "drain"}, {"address", "127.0.0.1:5006"}})),
            "server drain 127.0.0.1:5006");
}

// Numbers as an operator writes them (12.5), as history_reply and the state file do, not in
// JSON's exponent form (1.25E1).
TEST(ChangeSummary, FractionalPercentagesReadPlainly) {
  EXPECT_EQ(change_summary(with_args("split", {{"green", percent_arg(1250)}})), "split green 12.5");
  EXPECT_EQ(change_summary(with_args("split", {{"green", percent_arg(3333)}})), "split green 33.33");
  EXPECT_EQ(change_summary(with_args("canary", {{"action", "start"},
                                                {"target", "green"},
                                                {"steps", json::array{percent_arg(500), percent_arg(1250), 100}},
                                                {"interval_seconds", 1.5}})),
            "canary start green steps [5,12.5,100] interval_seconds 1.5");
}

TEST(ChangeSummary, OtherArgsReadAsPairs) {
  EXPECT_EQ(change_summary(with_args("switch", {{"color", "blue"}, {"force", true}})), "switch blue force true");
  EXPECT_EQ(change_summary(with_args("canary", {{"action", "start"},
                                                {"target", "green"},
                                                {"steps", json::array{10, 50, 100}},
                                                {"interval_seconds", 60}})),
            "canary start green steps [10,50,100] interval_seconds 60");
}

TEST(ChangeSummary, LegacyCommandTextsGiveTheirOldForm) {
  for (const std::string text : {"split green 10", "switch blue", "canary advance", "server drain 127.0.0.1:5006"}) {
    const auto legacy = parse_legacy_command(text);
    EXPECT_EQ(change_summary(with_args(legacy.command, legacy.args)), text);
  }
}

}  // namespace
}  // namespace bgproxy::control
