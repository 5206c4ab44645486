// Issue 3 acceptance, data-plane side (SPEC §4, §7): split accuracy, monotonic stickiness, an
// atomic switch under load, in-flight safety, a refused switch toward a color with no usable
// server (and the failover that follows a forced one), and the switching metrics. Everything goes
// through the real bgproxy, demo backends and bgctl on 127.0.0.1.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;
using Labels = std::map<std::string, std::string>;

const char* bgctl_bin() { return BGCTL_BIN; }

/// The color a response says it came from, checked against the backend that produced it (the
/// demo backends are named "blue" and "green"). Empty when the two disagree or one is missing.
std::string served_color(const Response& r) {
  auto color = r.header("X-Bg-Color");
  auto backend = r.header("X-Backend");
  if (!color || !backend || *color != *backend) return {};
  return *color;
}

class SwitchingTest : public IntegrationTest {
protected:
  /// Blue and green demo backends and a proxy in front of them; `extra` goes into the service.
  Proxy& start_pair(const std::string& extra = "", int threads = 2) {
    blue_ = &start_backend("blue");
    green_ = &start_backend("green");
    ProxyConfig cfg;
    cfg.blue = {blue_->address()};
    cfg.green = {green_->address()};
    cfg.threads = threads;
    cfg.service_extra = extra;
    Proxy& p = start_proxy(cfg);
    socket_ = (dir_ / "control-0.sock").string();
    return p;
  }

  /// Runs `bgctl -S SOCKET ARGS...` to completion.
  CommandResult bgctl(std::vector<std::string> args, bool json_out = false) {
    std::vector<std::string> argv{bgctl_bin(), "-S", socket_};
    if (json_out) argv.push_back("--json");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path(), Ms(10000));
  }

  /// `bgctl ARGS...` that must succeed.
  void ctl_ok(std::vector<std::string> args) {
    std::string what;
    for (const auto& a : args) what += a + " ";
    auto r = bgctl(std::move(args));
    ASSERT_EQ(r.exit_code, 0) << "bgctl " << what << "\nstdout: " << r.out << "\nstderr: " << r.err;
  }

  /// The first service of `bgctl --json status`.
  json::object status() {
    auto r = bgctl({"status"}, true);
    if (r.exit_code != 0) throw std::runtime_error("bgctl --json status: exit " + std::to_string(r.exit_code) + ": " + r.err);
    auto v = json::parse(r.out);
    return v.at("services").as_array().at(0).as_object();
  }

  /// The green weight in percent as `bgctl --json status` reports it.
  double green_weight() { return json::value_to<double>(status().at("weights").at("green")); }

  Backend* blue_ = nullptr;
  Backend* green_ = nullptr;
  std::string socket_;
};

/// Sends `per_thread` cookie-less GETs on each of `threads` keep-alive connections and counts the
/// colors. Every response must be a 200 from a backend matching its X-Bg-Color, with a fresh
/// sticky cookie.
struct ColorCount {
  std::uint64_t blue = 0, green = 0, bad = 0;
  std::string first_problem;
};

ColorCount count_colors(std::uint16_t port, int threads, int per_thread) {
  ColorCount total;
  std::mutex m;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      ColorCount mine;
      auto note = [&](const std::string& why) {
        ++mine.bad;
        if (mine.first_problem.empty()) mine.first_problem = why;
      };
      auto c = Client::try_connect(port);
      for (int i = 0; c && i < per_thread; ++i) {
        if (!c->try_send(get_request("/split"))) {
          note("send: " + c->last_error());
          break;
        }
        auto r = c->read_response(Ms(5000));
        if (!r) {
          note("read: " + c->last_error());
          break;
        }
        std::string color = served_color(*r);
        if (r->status != 200 || color.empty()) {
          note("status " + std::to_string(r->status) + ", head: " + r->raw_head);
          continue;
        }
        if (!r->header("Set-Cookie") || r->header("Set-Cookie")->rfind("bg_id=", 0) != 0)
          note("cookie-less request without a bg_id Set-Cookie; head: " + r->raw_head);
        (color == "green" ? mine.green : mine.blue)++;
      }
      if (!c) note("connect failed");
      std::lock_guard lk(m);
      total.blue += mine.blue;
      total.green += mine.green;
      total.bad += mine.bad;
      if (total.first_problem.empty()) total.first_problem = mine.first_problem;
    });
  }
  for (auto& t : ts) t.join();
  return total;
}

// Acceptance: at `split --green 10`, 20,000 cookie-less requests give a green share within
// 10 ± 1 %; at 50, within 50 ± 1.5 %. (With the default cookie stickiness each cookie-less request
// gets a fresh random id, hence a fresh random bucket.)
TEST_F(SwitchingTest, SplitAccuracyOverTwentyThousandCookieLessRequests) {
  Proxy& p = start_pair();
  struct Case {
    const char* weight;
    double want, tolerance;
  };
  for (const Case& k : {Case{"10", 10.0, 1.0}, Case{"50", 50.0, 1.5}}) {
    ctl_ok({"split", "--green", k.weight});
    ColorCount n = count_colors(p.port(), 8, 2500);
    ASSERT_EQ(n.bad, 0u) << n.first_problem;
    ASSERT_EQ(n.blue + n.green, 20000u);
    double share = 100.0 * static_cast<double>(n.green) / 20000.0;
    std::cout << "split --green " << k.weight << ": green share " << share << " %\n";
    EXPECT_NEAR(share, k.want, k.tolerance) << "green " << n.green << " / blue " << n.blue << " at split --green " << k.weight;
  }
}

// Acceptance: 1,000 clients keeping their cookie send 10 requests each at 10 %: each client sees
// one color; after raising to 50 %, no green client becomes blue.
TEST_F(SwitchingTest, StickyClientsOnlyMoveBlueToGreenWhenTheWeightRises) {
  Proxy& p = start_pair();
  ctl_ok({"split", "--green", "10"});
  constexpr int clients = 1000, threads = 8, per_client = 10;
  const std::regex cookie_re(R"(^bg_id=([0-9a-f]{16}); Path=/; HttpOnly; SameSite=Lax$)");
  std::vector<std::string> cookie(clients);
  std::vector<std::string> color_at_10(clients), color_at_50(clients);
  std::vector<std::string> problems(threads);

  // Each thread owns clients t, t+threads, ...; clients share the thread's keep-alive connection
  // (the cookie is what identifies a client, not the connection).
  auto run_round = [&](std::vector<std::string>& colors) {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        auto fail = [&](const std::string& why) {
          if (problems[t].empty()) problems[t] = why;
        };
        auto c = Client::try_connect(p.port());
        if (!c) return fail("connect failed");
        for (int id = t; id < clients; id += threads) {
          for (int i = 0; i < per_client; ++i) {
            std::string extra = cookie[id].empty() ? "" : "Cookie: bg_id=" + cookie[id] + "\r\n";
            if (!c->try_send(get_request("/sticky", extra))) return fail("send: " + c->last_error());
            auto r = c->read_response(Ms(5000));
            if (!r) return fail("read: " + c->last_error());
            std::string color = served_color(*r);
            if (r->status != 200 || color.empty()) return fail("bad response: " + r->raw_head);
            auto sc = r->header("Set-Cookie");
            if (cookie[id].empty()) {
              std::smatch m;
              if (!sc || !std::regex_match(*sc, m, cookie_re))
                return fail("first response of client " + std::to_string(id) + " without a valid bg_id cookie: " + r->raw_head);
              cookie[id] = m[1];
            } else if (sc) {
              return fail("client " + std::to_string(id) + " sent its cookie and still got Set-Cookie: " + *sc);
            }
            if (colors[id].empty()) colors[id] = color;
            else if (colors[id] != color)
              return fail("client " + std::to_string(id) + " (bg_id=" + cookie[id] + ") saw " + colors[id] + " then " +
                          color + " at the same weight (request " + std::to_string(i + 1) + ")");
          }
        }
      });
    }
    for (auto& t : ts) t.join();
    for (const auto& pr : problems) ASSERT_TRUE(pr.empty()) << pr;
  };

  ASSERT_NO_FATAL_FAILURE(run_round(color_at_10));
  ctl_ok({"split", "--green", "50"});
  ASSERT_NO_FATAL_FAILURE(run_round(color_at_50));

  int green10 = 0, green50 = 0, flipped_back = 0;
  std::string example;
  for (int id = 0; id < clients; ++id) {
    green10 += color_at_10[id] == "green";
    green50 += color_at_50[id] == "green";
    if (color_at_10[id] == "green" && color_at_50[id] != "green") {
      ++flipped_back;
      if (example.empty()) example = "bg_id=" + cookie[id];
    }
  }
  std::cout << "sticky clients: green at 10 %: " << green10 << ", at 50 %: " << green50 << " of " << clients << "\n";
  EXPECT_EQ(flipped_back, 0) << "clients green at 10 % became blue at 50 %, e.g. " << example;
  // Loose sanity bounds (the tight distribution test is the one above).
  EXPECT_GT(green10, 50);
  EXPECT_LT(green10, 160);
  EXPECT_GT(green50, 420);
  EXPECT_LT(green50, 580);
}

// Acceptance: 64 keep-alive connections at full speed while 200 alternating `bgctl switch` run:
// zero non-2xx, zero connection errors, and every request sent after a switch was acknowledged
// lands on the new color.
//
// Timing: for switch k we record `start[k]` (just before bgctl is spawned) and `ack[k]` (after its
// exit 0 was seen, so never earlier than the real acknowledgement). A request records `sent`
// (before its first byte is written) and `done` (after its response is complete). Its routing
// decision happened inside [sent, done]; when ack[k] <= sent and done <= start[k+1], only
// switch k's table can have been in force, so its color must be switch k's color. Requests that
// straddle a boundary may see either side and are only checked for 2xx and consistency.
TEST_F(SwitchingTest, AtomicSwitchUnderLoadNewRequestsFollowEveryAcknowledgedSwitch) {
  Proxy& p = start_pair("sticky: none");
  constexpr int connections = 64, switches = 200;
  constexpr int inside_wanted = 64;  // completed requests inside each window before the next switch

  struct Rec {
    std::int64_t sent, done;
    char color;  // 'b', 'g'
  };
  std::vector<std::vector<Rec>> recs(connections);
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> window_start{0};
  std::atomic<int> inside{0}, non2xx{0}, conn_errors{0}, mismatched{0};
  std::mutex problem_m;
  std::string first_problem;
  auto problem = [&](const std::string& why) {
    std::lock_guard lk(problem_m);
    if (first_problem.empty()) first_problem = why;
  };
  auto now_ns = [] { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); };
  window_start = now_ns();

  std::vector<std::thread> ts;
  std::atomic<int> connected{0};
  for (int t = 0; t < connections; ++t) {
    ts.emplace_back([&, t] {
      auto c = Client::try_connect(p.port());
      if (!c) {
        ++conn_errors;
        problem("connect failed");
        return;
      }
      ++connected;
      const std::string req = get_request("/load");
      recs[t].reserve(4096);
      while (!stop.load(std::memory_order_relaxed)) {
        std::int64_t sent = now_ns();
        if (!c->try_send(req)) {
          ++conn_errors;
          problem("send: " + c->last_error());
          return;
        }
        auto r = c->read_response(Ms(5000));
        std::int64_t done = now_ns();
        if (!r) {
          ++conn_errors;
          problem("read: " + c->last_error());
          return;
        }
        if (r->status < 200 || r->status > 299) {
          ++non2xx;
          problem("status " + std::to_string(r->status) + ": " + r->raw_head + r->body.substr(0, 200));
          continue;
        }
        std::string color = served_color(*r);
        if (color.empty()) {
          ++mismatched;
          problem("X-Bg-Color and X-Backend disagree: " + r->raw_head);
          continue;
        }
        recs[t].push_back({sent, done, color[0]});
        if (sent >= window_start.load(std::memory_order_relaxed)) inside.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  std::vector<std::int64_t> start(switches + 1), ack(switches + 1);
  std::vector<char> color_of(switches + 1);
  // Index 0: the configured initial state (all blue), "acknowledged" before any request.
  start[0] = ack[0] = 0;
  color_of[0] = 'b';
  auto wait_inside = [&](const char* what) {
    auto deadline = Clock::now() + Ms(5000);
    while (inside.load() < inside_wanted && conn_errors.load() == 0) {
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "fewer than " << inside_wanted << " requests completed within 5 s " << what;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    return conn_errors.load() == 0;
  };
  bool ok = wait_inside("before the first switch");
  int done_switches = 0;
  for (int k = 1; ok && k <= switches; ++k) {
    const bool green = k % 2 == 1;
    start[k] = now_ns();
    auto r = bgctl({"switch", green ? "green" : "blue"});
    ack[k] = now_ns();
    color_of[k] = green ? 'g' : 'b';
    if (r.exit_code != 0) {
      ADD_FAILURE() << "switch " << k << " (" << (green ? "green" : "blue") << "): exit " << r.exit_code << "\n" << r.err;
      break;
    }
    done_switches = k;
    inside = 0;
    window_start = ack[k];
    ok = wait_inside("after a switch");
  }
  stop = true;
  for (auto& t : ts) t.join();

  EXPECT_EQ(connected.load(), connections);
  EXPECT_EQ(conn_errors.load(), 0) << first_problem;
  EXPECT_EQ(non2xx.load(), 0) << first_problem;
  EXPECT_EQ(mismatched.load(), 0) << first_problem;
  ASSERT_EQ(done_switches, switches);

  std::uint64_t total = 0, checked = 0, wrong = 0;
  std::string wrong_example;
  for (const auto& v : recs) {
    for (const Rec& r : v) {
      ++total;
      // The last switch acknowledged at or before `sent`.
      auto it = std::upper_bound(ack.begin(), ack.begin() + done_switches + 1, r.sent);
      int k = static_cast<int>(it - ack.begin()) - 1;
      if (k < 0) continue;
      bool inside_window = k == done_switches || r.done <= start[k + 1];
      if (!inside_window) continue;
      ++checked;
      if (r.color != color_of[k]) {
        ++wrong;
        if (wrong_example.empty())
          wrong_example = "request sent " + std::to_string((r.sent - ack[k]) / 1000) + " us after switch " +
                          std::to_string(k) + " (" + (color_of[k] == 'g' ? "green" : "blue") +
                          ") was acknowledged, completed before the next switch started, was served by " +
                          (r.color == 'g' ? "green" : "blue");
      }
    }
  }
  std::vector<std::int64_t> took;
  for (int k = 1; k <= done_switches; ++k) took.push_back(ack[k] - start[k]);
  std::sort(took.begin(), took.end());
  std::cout << "atomic switch: " << total << " requests, " << checked << " inside a switch window, "
            << switches << " switches; bgctl switch median " << took[took.size() / 2] / 1000 << " us, max "
            << took.back() / 1000 << " us\n";
  EXPECT_EQ(wrong, 0u) << wrong_example;
  EXPECT_GE(checked, static_cast<std::uint64_t>(switches) * inside_wanted / 2);
}

// Acceptance: a 3 s request to blue started before `switch green` completes 200 from blue; a
// request after the switch goes green.
TEST_F(SwitchingTest, InFlightRequestFinishesOnBlueAfterSwitchGreen) {
  Proxy& p = start_pair();
  Client slow(p.port());
  auto t0 = Clock::now();
  slow.send(get_request("/slow?delay_ms=3000"));
  // The request is in flight once the blue backend has counted it.
  auto deadline = Clock::now() + Ms(3000);
  while (blue_->stats().requests < 1) {
    ASSERT_LT(Clock::now(), deadline) << "the slow request never reached blue";
    std::this_thread::sleep_for(Ms(5));
  }
  ctl_ok({"switch", "green"});
  auto acked = Clock::now();
  EXPECT_LT(acked - t0, Ms(2500)) << "switch waited for the in-flight request";

  std::string why;
  auto fresh = round_trip(p.port(), get_request("/after"), Ms(3000), &why);
  ASSERT_TRUE(fresh) << why;
  EXPECT_EQ(fresh->status, 200);
  EXPECT_EQ(served_color(*fresh), "green") << fresh->raw_head;

  auto r = slow.read_response(Ms(6000));
  ASSERT_TRUE(r) << slow.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Backend").value_or("?"), "blue") << r->raw_head;
  EXPECT_EQ(r->header("X-Bg-Color").value_or("?"), "blue") << r->raw_head;
  EXPECT_GE(Clock::now() - t0, Ms(2900));
  EXPECT_EQ(green_->stats().requests, 1u);
}

// `rollback --drain`: the request in flight to the rolled-back color is answered 503 at once
// (not after the backend's 5 s), its keep-alive connection goes on, on blue; bgctl says what it
// cut and the history records the flag.
TEST_F(SwitchingTest, RollbackDrainAnswers503ToTheRequestInFlightOnTheRolledBackColor) {
  Proxy& p = start_pair();
  ctl_ok({"switch", "green"});
  Client slow(p.port());
  slow.send(get_request("/slow?delay_ms=5000"));
  const auto deadline = Clock::now() + Ms(3000);
  while (green_->stats().requests < 1) {
    ASSERT_LT(Clock::now(), deadline) << "the slow request never reached green";
    std::this_thread::sleep_for(Ms(5));
  }
  const auto t0 = Clock::now();
  const auto rb = bgctl({"rollback", "--drain"});
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_NE(rb.out.find("cut 1 exchanges in flight to green"), std::string::npos) << rb.out;
  auto r = slow.read_response(Ms(3000));
  ASSERT_TRUE(r) << slow.last_error();
  EXPECT_EQ(r->status, 503) << r->raw_head;
  EXPECT_LT(Clock::now() - t0, Ms(2500)) << "the cut request waited for its backend";

  slow.send(get_request("/after"));
  auto next = slow.read_response(Ms(3000));
  ASSERT_TRUE(next) << "the connection did not go on after the 503: " << slow.last_error();
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(served_color(*next), "blue") << next->raw_head;
  EXPECT_EQ(green_->stats().requests, 1u);

  const auto history = bgctl({"history"}, true);
  ASSERT_EQ(history.exit_code, 0) << history.err;
  const auto entries = json::parse(history.out).at("history").as_array();
  ASSERT_FALSE(entries.empty()) << history.out;
  const auto& last = entries.back().as_object();
  EXPECT_EQ(last.at("command"), "rollback") << history.out;
  EXPECT_EQ(last.at("args"), (json::object{{"drain", true}})) << history.out;
  // A cut is not the server's failure.
  const auto text = p.metrics();
  for (const char* reason : {"connect", "timeout", "reset", "protocol"}) {
    EXPECT_EQ(metric_value(text, "bgproxy_upstream_failures_total",
                           {{"service", "app"}, {"color", "green"}, {"server", green_->address()}, {"reason", reason}})
                  .value_or(0),
              0.0)
        << reason << "\n" << text;
  }
  EXPECT_EQ(metric_value(text, "bgproxy_requests_total", {{"service", "app"}, {"color", "green"}, {"code", "5xx"}})
                .value_or(0),
            1.0)
      << text;
}

// A plain rollback lets the request in flight finish where it started (documented default); a
// later `rollback --drain`, with nothing left to undo, still cuts what runs on the color at 0 %.
TEST_F(SwitchingTest, RollbackLetsTheRequestInFlightFinishAndALaterDrainCutsIt) {
  Proxy& p = start_pair();
  ctl_ok({"switch", "green"});
  Client finishing(p.port());
  finishing.send(get_request("/finishing?delay_ms=1500"));
  Client cut(p.port());
  cut.send(get_request("/cut?delay_ms=8000"));
  const auto deadline = Clock::now() + Ms(3000);
  while (green_->stats().requests < 2) {
    ASSERT_LT(Clock::now(), deadline) << "the slow requests never reached green";
    std::this_thread::sleep_for(Ms(5));
  }
  const auto rb = bgctl({"rollback"});
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_EQ(rb.out.find("cut"), std::string::npos) << rb.out;
  auto done = finishing.read_response(Ms(5000));
  ASSERT_TRUE(done) << finishing.last_error();
  EXPECT_EQ(done->status, 200);
  EXPECT_EQ(served_color(*done), "green") << done->raw_head;

  const auto t0 = Clock::now();
  const auto drain = bgctl({"rollback", "--drain"});
  ASSERT_EQ(drain.exit_code, 0) << drain.out << drain.err;
  EXPECT_NE(drain.out.find("cut 1 exchanges in flight to green"), std::string::npos) << drain.out;
  auto r = cut.read_response(Ms(3000));
  ASSERT_TRUE(r) << cut.last_error();
  EXPECT_EQ(r->status, 503) << r->raw_head;
  EXPECT_LT(Clock::now() - t0, Ms(2500));
  const auto twice = bgctl({"rollback", "--drain"});
  ASSERT_EQ(twice.exit_code, 0) << twice.out << twice.err;
  EXPECT_NE(twice.out.find("cut 0 exchanges in flight to green"), std::string::npos) << twice.out;
}

// A WebSocket tunnel to the rolled-back color is closed by --drain; one to blue is not.
TEST_F(SwitchingTest, RollbackDrainClosesTheTunnelToTheRolledBackColorOnly) {
  Proxy& p = start_pair();
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  Client on_blue(p.port());
  on_blue.send(upgrade);
  auto b = on_blue.read_response(Ms(3000));
  ASSERT_TRUE(b && b->status == 101) << on_blue.last_error();
  EXPECT_EQ(b->header("X-Backend"), "blue");
  ctl_ok({"switch", "green"});
  Client on_green(p.port());
  on_green.send(upgrade);
  auto g = on_green.read_response(Ms(3000));
  ASSERT_TRUE(g && g->status == 101) << on_green.last_error();
  EXPECT_EQ(g->header("X-Backend"), "green");

  const auto rb = bgctl({"rollback", "--drain"});
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_NE(rb.out.find("cut 1 exchanges in flight to green"), std::string::npos) << rb.out;
  const auto end = on_green.read_until_close(Ms(3000));
  EXPECT_NE(end, ReadEnd::Timeout) << "the tunnel to green stayed open";
  // Blue's tunnel still echoes: an unmasked-length text frame from the client, masked as required.
  const std::string frame = std::string("\x81\x82\x00\x00\x00\x00", 6) + "hi";
  on_blue.send(frame);
  ASSERT_TRUE(on_blue.read_at_least(4, Ms(3000))) << "blue's tunnel was cut too: " << on_blue.last_error();
  EXPECT_EQ(on_blue.buffered().substr(on_blue.buffered().size() - 2), "hi");
}

// A switch toward a color with no usable server is refused (exit 1, the message names the color)
// and changes nothing; with --force it is accepted, and requests then fail over to blue, counted
// in bgproxy_failovers_total{from="green"}.
TEST_F(SwitchingTest, SwitchTowardDisabledColorRefusedUnlessForcedThenFailsOver) {
  Proxy& p = start_pair();
  ctl_ok({"server", "disable", green_->address()});
  auto st = status();
  EXPECT_EQ(json::serialize(st.at("colors").at("green").at("servers").as_array().at(0).at("state")), "\"disabled\"");

  auto r = bgctl({"switch", "green"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("green"), std::string::npos) << "message does not name the color: " << r.err;
  EXPECT_EQ(green_weight(), 0.0);
  r = bgctl({"split", "--green", "30"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("green"), std::string::npos) << r.err;
  EXPECT_EQ(green_weight(), 0.0);

  ctl_ok({"switch", "green", "--force"});
  EXPECT_EQ(green_weight(), 100.0);

  constexpr int n = 20;
  Client c(p.port());
  for (int i = 0; i < n; ++i) {
    c.send(get_request("/failover"));
    auto resp = c.read_response(Ms(3000));
    ASSERT_TRUE(resp) << c.last_error();
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->header("X-Backend").value_or("?"), "blue") << resp->raw_head;
    EXPECT_EQ(served_color(*resp), "blue") << resp->raw_head;
  }
  EXPECT_EQ(green_->stats().requests, 0u);
  auto v = p.wait_metric("bgproxy_failovers_total", {{"service", "app"}, {"from", "green"}},
                         [](double x) { return x >= n; });
  ASSERT_TRUE(v) << p.metrics();
  EXPECT_EQ(*v, n);
  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_failovers_total", {{"service", "app"}, {"from", "blue"}}).value_or(-1), 0);

  // Enabled again: green serves.
  ctl_ok({"server", "enable", green_->address()});
  std::string why;
  auto after = round_trip(p.port(), get_request("/back"), Ms(3000), &why);
  ASSERT_TRUE(after) << why;
  EXPECT_EQ(served_color(*after), "green") << after->raw_head;
}

// bgproxy_weight and bgproxy_switches_total follow a split and a switch; a manual rollback counts
// in bgproxy_rollbacks_total{reason="manual"} and restores the stable weights.
TEST_F(SwitchingTest, MetricsFollowSplitSwitchAndRollback) {
  Proxy& p = start_pair();
  const Labels blue{{"service", "app"}, {"color", "blue"}}, green{{"service", "app"}, {"color", "green"}};
  std::string m = p.metrics();
  EXPECT_EQ(metric_value(m, "bgproxy_switches_total", {{"service", "app"}}), 0.0) << m;
  EXPECT_EQ(metric_value(m, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "manual"}}), 0.0) << m;

  ctl_ok({"split", "--green", "30"});
  m = p.metrics();
  EXPECT_EQ(metric_value(m, "bgproxy_weight", green), 30.0) << m;
  EXPECT_EQ(metric_value(m, "bgproxy_weight", blue), 70.0) << m;
  EXPECT_EQ(metric_value(m, "bgproxy_switches_total", {{"service", "app"}}), 1.0) << m;

  ctl_ok({"switch", "green"});
  m = p.metrics();
  EXPECT_EQ(metric_value(m, "bgproxy_weight", green), 100.0) << m;
  EXPECT_EQ(metric_value(m, "bgproxy_weight", blue), 0.0) << m;
  EXPECT_EQ(metric_value(m, "bgproxy_switches_total", {{"service", "app"}}), 2.0) << m;

  ctl_ok({"rollback"});
  m = p.metrics();
  EXPECT_EQ(metric_value(m, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "manual"}}), 1.0) << m;
  EXPECT_EQ(metric_value(m, "bgproxy_weight", green), 0.0) << m;  // the stable weights before the rollout
  EXPECT_EQ(metric_value(m, "bgproxy_weight", blue), 100.0) << m;
  EXPECT_EQ(green_weight(), 0.0);
  std::string why;
  auto r = round_trip(p.port(), get_request("/after-rollback"), Ms(3000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(served_color(*r), "blue") << r->raw_head;
}

}  // namespace
}  // namespace bgtest
