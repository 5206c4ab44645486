// Issue 7 acceptance, hot reload (SPEC §2, §3, §8, §9): SIGHUP and `bgctl reload` re-read the
// config file and apply it as one step (pools, timeouts, access log, listeners) while runtime state
// (weights, rollout phase, admin states, health of servers still configured) survives; an invalid
// file changes nothing and is counted as a failure; 50 reloads under load fail no request.
//
// Every wait is bounded and synchronised on an event (a log line, a metric, a bgctl answer, a port
// that answers or refuses); sleeps only pace polling loops.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Labels = std::map<std::string, std::string>;

const char* bgctl_bin() { return BGCTL_BIN; }

/// The string with std::regex metacharacters escaped.
std::string re_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (std::strchr(".()[]*+?\\|^${}", c) != nullptr) r += '\\';
    r += c;
  }
  return r;
}

/// Sub-matches of every complete line of `text` matching `re`, in order.
std::vector<std::vector<std::string>> all_matches(const std::string& text, const std::regex& re) {
  std::vector<std::vector<std::string>> r;
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;  // a partial line may still grow
    std::string line = text.substr(start, nl - start);
    std::smatch m;
    if (std::regex_search(line, m, re)) {
      std::vector<std::string> groups;
      for (const auto& g : m) groups.push_back(g.str());
      r.push_back(std::move(groups));
    }
    start = nl + 1;
  }
  return r;
}

/// Waits until at least `n` complete stderr lines of `p` match `re`.
bool wait_for_count(Process& p, const std::regex& re, std::size_t n, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (all_matches(p.stderr_text(), re).size() >= n) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Ms(10));
  }
}

class ReloadTest : public IntegrationTest {
protected:
  /// Starts the proxy for `cfg` (index 0: control-0.sock, state-0.json, bgproxy-0.yaml).
  Proxy& start(const ProxyConfig& cfg) {
    Proxy& p = start_proxy(cfg);
    socket_ = (dir_ / "control-0.sock").string();
    return p;
  }

  /// Replaces the running proxy's config file with the rendering of `cfg` (same control socket
  /// and state file).
  void write_config(Proxy& p, const ProxyConfig& cfg) {
    write_file(p.config_path(), render_config(cfg, dir_.path(), 0));
  }

  CommandResult bgctl(std::vector<std::string> args, bool json_out = false, Ms timeout = Ms(15000)) {
    std::vector<std::string> argv{bgctl_bin(), "-S", socket_};
    if (json_out) argv.push_back("--json");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path(), timeout);
  }

  /// `bgctl reload` that must succeed with its "configuration reloaded" message.
  ::testing::AssertionResult reload_ok() {
    auto r = bgctl({"reload"});
    if (r.exit_code != 0 || r.out.find("configuration reloaded") == std::string::npos)
      return ::testing::AssertionFailure() << "bgctl reload: exit " << r.exit_code << "\nstdout: " << r.out
                                           << "\nstderr: " << r.err;
    return ::testing::AssertionSuccess();
  }

  /// The first service of `bgctl --json status`.
  json::object status() {
    auto r = bgctl({"status"}, true);
    if (r.exit_code != 0)
      throw std::runtime_error("bgctl --json status: exit " + std::to_string(r.exit_code) + ": " + r.err);
    auto v = json::parse(r.out);
    return v.at("services").as_array().at(0).as_object();
  }

  /// color -> address -> state, from a service of `bgctl --json status`.
  static std::map<std::string, std::map<std::string, std::string>> server_states(const json::object& svc) {
    std::map<std::string, std::map<std::string, std::string>> r;
    for (const char* color : {"blue", "green"}) {
      r[color];
      for (const auto& s : svc.at("colors").at(color).at("servers").as_array())
        r[color][std::string(s.at("address").as_string())] = std::string(s.at("state").as_string());
    }
    return r;
  }

  static double reloads(Proxy& p, const std::string& result) {
    return metric_value(p.metrics(), "bgproxy_config_reloads_total", {{"result", result}}).value_or(-1.0);
  }

  /// Waits for the health checker's n-th "server COLOR/ADDRESS up:" line.
  static bool wait_up(Proxy& p, const std::string& color, const std::string& address, std::size_t n = 1,
                      Ms timeout = Ms(5000)) {
    return wait_for_count(p.process(), std::regex("server " + color + "/" + re_escape(address) + " up: "), n,
                          timeout);
  }

  std::string socket_;
};

// ---------------------------------------------------------------------------------------------
// 1. Fifty reloads under load, alternating `bgctl reload` and SIGHUP, each with a changed config
//    (upstream timeout, blue pool of one or two servers, access log off or a file, one or two
//    listeners): not one request fails, and every change was applied.

TEST_F(ReloadTest, FiftyReloadsUnderLoadFailNothing) {
  Backend& b1 = start_backend("blue1");
  Backend& b2 = start_backend("blue2");
  const std::string green = "127.0.0.1:" + std::to_string(refused_port());
  const std::string access_log = (dir_ / "access.log").string();

  // Variant k (k = 0 is the config the proxy starts with; reload k writes variant k). Consecutive
  // variants always differ (the timeout flips every time); the others cycle with periods 4, 6, 10.
  auto variant = [&](int k) {
    ProxyConfig cfg;
    cfg.upstream_response = k % 2 == 0 ? "30s" : "20s";
    cfg.blue = (k / 2) % 2 == 0 ? std::vector<std::string>{b1.address(), b2.address()}
                                : std::vector<std::string>{b1.address()};
    cfg.green = {green};
    cfg.access_log = (k / 3) % 2 == 0 ? access_log : "off";
    cfg.listeners = (k / 5) % 2 == 0 ? 2 : 1;
    // Active checks: a server whose health were not carried over would start down after a reload.
    cfg.health_check = true;
    cfg.service_extra = "health_check: { path: /health, interval: 200ms, timeout: 150ms, rise: 2, fall: 3 }\n";
    return cfg;
  };
  constexpr int kReloads = 50;
  int want_added = 0, want_removed = 0;
  for (int k = 1; k <= kReloads; ++k) {
    if (variant(k).listeners > variant(k - 1).listeners) ++want_added;
    if (variant(k).listeners < variant(k - 1).listeners) ++want_removed;
  }
  ASSERT_EQ(variant(kReloads).blue.size(), 1u);
  ASSERT_EQ(variant(kReloads).listeners, 2);
  ASSERT_EQ(variant(kReloads).access_log, access_log);

  Proxy& p = start(variant(0));
  ASSERT_TRUE(wait_up(p, "blue", b1.address())) << "blue1 never passed its health checks";
  ASSERT_TRUE(wait_up(p, "blue", b2.address())) << "blue2 never passed its health checks";

  RequestLoop loop(p.port(0), 4);
  auto t0 = Clock::now();
  int via_bgctl = 0, via_sighup = 0;
  for (int k = 1; k <= kReloads; ++k) {
    write_config(p, variant(k));
    if (k % 2 == 1) {
      ASSERT_TRUE(reload_ok()) << "reload " << k << " (bgctl)";
      ++via_bgctl;
    } else {
      p.process().signal(SIGHUP);
      auto v = p.wait_metric("bgproxy_config_reloads_total", {{"result", "success"}},
                             [k](double x) { return x >= k; }, Ms(5000));
      ASSERT_TRUE(v && *v == k) << "reload " << k << " (SIGHUP): success counter "
                                << (v ? std::to_string(*v) : "missing") << ", want " << k;
      ++via_sighup;
    }
    ASSERT_TRUE(p.process().running()) << "bgproxy died during reload " << k;
  }
  const double reload_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  // Some traffic after the last reload too.
  const std::size_t at_end = loop.count();
  for (auto deadline = Clock::now() + Ms(3000); loop.count() < at_end + 100 && Clock::now() < deadline;)
    std::this_thread::sleep_for(Ms(10));
  loop.stop();

  auto all = loop.outcomes();
  std::string first;
  std::size_t failed = count_failures(all, &first);
  std::cout << "50 reloads (" << via_bgctl << " bgctl, " << via_sighup << " SIGHUP) in " << reload_seconds
            << " s under load: " << all.size() << " requests, " << failed << " failed\n";
  EXPECT_GT(all.size(), 0u);
  EXPECT_EQ(failed, 0u) << "first failures:\n" << first;

  EXPECT_EQ(reloads(p, "success"), 50.0);
  EXPECT_EQ(reloads(p, "failure"), 0.0);

  // SIGHUP reloads are logged as applied, with increasing generations.
  const std::string err = p.process().stderr_text();
  auto applied = all_matches(err, std::regex(R"(reload: applied .* \(generation ([0-9]+)\))"));
  EXPECT_GE(applied.size(), static_cast<std::size_t>(via_sighup)) << "stderr:\n" << err;
  for (std::size_t i = 1; i < applied.size(); ++i)
    EXPECT_GT(std::stoull(applied[i][1]), std::stoull(applied[i - 1][1])) << "generations not increasing";
  EXPECT_EQ(err.find("reload refused"), std::string::npos);

  // The listener changes were applied: one "added" per 1 -> 2, one "removed" per 2 -> 1.
  auto added = all_matches(err, std::regex(R"(listener added: 127\.0\.0\.1:0 on 127\.0\.0\.1:(\d+))"));
  auto removed = all_matches(err, std::regex(R"(listener removed: 127\.0\.0\.1:0)"));
  EXPECT_EQ(added.size(), static_cast<std::size_t>(want_added));
  EXPECT_EQ(removed.size(), static_cast<std::size_t>(want_removed));

  // The last config is in force: its second listener answers, blue2 is out of the pool, the
  // access log goes to the file.
  ASSERT_FALSE(added.empty());
  const auto port2 = static_cast<std::uint16_t>(std::stoi(added.back()[1]));
  std::string why;
  auto r = round_trip(port2, get_request("/on-listener-2"), Ms(3000), &why);
  ASSERT_TRUE(r) << "listener added by the last reload (port " << port2 << "): " << why;
  EXPECT_EQ(r->status, 200);

  const auto b1_before = b1.stats().requests, b2_before = b2.stats().requests;
  EXPECT_GT(b2_before, 0u) << "blue2 never served: the two-server pool was not used";
  Client c(p.port(0));
  for (int i = 0; i < 40; ++i) {
    c.send(get_request("/after-reloads/" + std::to_string(i)));
    auto resp = c.read_response(Ms(3000));
    ASSERT_TRUE(resp) << c.last_error();
    ASSERT_EQ(resp->status, 200);
    EXPECT_EQ(resp->header("X-Backend").value_or(""), "blue1") << "blue2 was removed by the last reload";
  }
  EXPECT_EQ(b2.stats().requests, b2_before) << "blue2 got requests after the reload that removed it";
  EXPECT_GE(b1.stats().requests, b1_before + 40);

  std::string log;
  for (auto deadline = Clock::now() + Ms(3000); Clock::now() < deadline; std::this_thread::sleep_for(Ms(50))) {
    log = read_file(access_log);
    if (log.find("/after-reloads/39") != std::string::npos) break;
  }
  EXPECT_NE(log.find("/after-reloads/39"), std::string::npos)
      << "the last reload set access_log to " << access_log << "; it holds:\n"
      << log.substr(log.size() > 2000 ? log.size() - 2000 : 0);
}

// ---------------------------------------------------------------------------------------------
// 2. A reload that replaces the green pool keeps the split, the rollout phase, an admin-disabled
//    server and the health of servers still configured; green traffic goes to the new server.

TEST_F(ReloadTest, WeightsAndAdminStateSurviveAndNewPoolIsUsed) {
  Backend& b1 = start_backend("blue1");
  Backend& b2 = start_backend("blue2");
  Backend& g1 = start_backend("green1");
  Backend& g2 = start_backend("green2");
  ProxyConfig cfg;
  cfg.blue = {b1.address(), b2.address()};
  cfg.green = {g1.address()};
  cfg.health_check = true;
  // rise 3 x 500 ms: a server whose health were not carried over stays down for over a second.
  cfg.service_extra = "health_check: { path: /health, interval: 500ms, timeout: 300ms, rise: 3, fall: 3 }\n";
  Proxy& p = start(cfg);
  ASSERT_TRUE(wait_up(p, "blue", b1.address()));
  ASSERT_TRUE(wait_up(p, "blue", b2.address()));
  ASSERT_TRUE(wait_up(p, "green", g1.address()));

  auto r = bgctl({"split", "--green", "30"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = bgctl({"server", "disable", b2.address()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json::object before = status();
  ASSERT_EQ(json::value_to<double>(before.at("weights").at("green")), 30.0) << before;
  ASSERT_EQ(server_states(before)["blue"][b2.address()], "disabled") << before;
  ASSERT_EQ(server_states(before)["blue"][b1.address()], "up") << before;

  cfg.green = {g2.address()};
  write_config(p, cfg);
  ASSERT_TRUE(reload_ok());

  // Right after the acknowledgement: same split, target and phase; blue1 still up (carried over,
  // not re-learnt), blue2 still disabled; the green pool is the new one.
  const json::object after = status();
  EXPECT_EQ(json::value_to<double>(after.at("weights").at("green")), 30.0) << after;
  EXPECT_EQ(json::value_to<double>(after.at("weights").at("blue")), 70.0) << after;
  EXPECT_EQ(json::serialize(after.at("phase")), json::serialize(before.at("phase"))) << after;
  EXPECT_EQ(json::serialize(after.at("target")), json::serialize(before.at("target"))) << after;
  auto states = server_states(after);
  EXPECT_EQ(states["blue"][b1.address()], "up") << "health of a server still configured was not carried over: "
                                                << after;
  EXPECT_EQ(states["blue"][b2.address()], "disabled") << "admin state lost by the reload: " << after;
  EXPECT_EQ(states["green"].count(g1.address()), 0u) << "old green server still listed: " << after;
  EXPECT_EQ(states["green"].count(g2.address()), 1u) << "new green server not listed: " << after;
  EXPECT_EQ(p.wait_metric("bgproxy_weight", {{"service", "app"}, {"color", "green"}},
                          [](double v) { return v == 30.0; }),
            30.0);

  // The new green server starts down until it passes its checks; then green requests reach it.
  ASSERT_TRUE(wait_up(p, "green", g2.address())) << "green2 never passed its health checks";
  const auto g1_before = g1.stats().requests, b2_before = b2.stats().requests;
  std::map<std::string, int> by_backend;
  int green_n = 0, total = 0;
  std::optional<Client> c;
  for (int i = 0; i < 300; ++i) {
    if (!c) c.emplace(p.port());
    c->send(get_request("/after/" + std::to_string(i)));
    auto resp = c->read_response(Ms(3000));
    ASSERT_TRUE(resp) << c->last_error();
    ASSERT_EQ(resp->status, 200) << resp->raw_head;
    const std::string backend = resp->header("X-Backend").value_or("");
    const std::string color = resp->header("X-Bg-Color").value_or("");
    ++by_backend[backend];
    ++total;
    if (color == "green") {
      ++green_n;
      EXPECT_EQ(backend, "green2") << "green request not served by the new green pool";
    } else {
      EXPECT_EQ(color, "blue") << resp->raw_head;
      EXPECT_EQ(backend, "blue1") << "blue request not served by blue1 (blue2 is disabled)";
    }
    if (resp->header("Connection").value_or("") == "close") c.reset();
  }
  std::ostringstream seen;
  for (const auto& [b, n] : by_backend) seen << b << "=" << n << " ";
  const double share = 100.0 * green_n / total;
  std::cout << "after reload: green share " << share << " % of " << total << " (" << seen.str() << ")\n";
  EXPECT_GE(share, 18.0) << seen.str();
  EXPECT_LE(share, 42.0) << seen.str();
  EXPECT_EQ(g1.stats().requests, g1_before) << "the removed green server still got requests";
  EXPECT_EQ(b2.stats().requests, b2_before) << "the disabled blue server got requests";
}

// ---------------------------------------------------------------------------------------------
// 3. An invalid config is refused by `bgctl reload` (exit 1, FILE:LINE on stderr) and by SIGHUP,
//    counted as failures, and changes nothing; the fixed file then applies.

TEST_F(ReloadTest, InvalidReloadChangesNothing) {
  Backend& b1 = start_backend("blue1");
  Backend& b2 = start_backend("blue2");
  ProxyConfig cfg;
  cfg.blue = {b1.address()};
  cfg.green = {"127.0.0.1:" + std::to_string(refused_port())};
  Proxy& p = start(cfg);
  const json::object status_before = status();

  // The broken file would also move blue to blue2: nothing of it may be applied.
  ProxyConfig next = cfg;
  next.blue = {b2.address()};
  std::string text = render_config(next, dir_.path(), 0);
  const std::string anchor = "timeouts:\n";
  const auto at = text.find(anchor);
  ASSERT_NE(at, std::string::npos) << text;
  text.insert(at + anchor.size(), "  bogus_timeout: 1s\n");
  const auto bad_line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at + anchor.size()), '\n');
  write_file(p.config_path(), text);
  const std::string where = p.config_path().string() + ":" + std::to_string(bad_line) + ":";

  auto r = bgctl({"reload"});
  EXPECT_EQ(r.exit_code, 1) << "stdout: " << r.out << "\nstderr: " << r.err;
  EXPECT_NE(r.err.find(where), std::string::npos) << "want \"" << where << "\" in stderr: " << r.err;
  EXPECT_NE(r.err.find("bogus_timeout"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("configuration reloaded"), std::string::npos) << r.out;
  EXPECT_EQ(reloads(p, "failure"), 1.0);
  EXPECT_EQ(reloads(p, "success"), 0.0);

  auto served_by_only = [&](const std::string& want, const std::string& what) {
    for (int i = 0; i < 20; ++i) {
      std::string why;
      auto resp = round_trip(p.port(), get_request("/" + what + "/" + std::to_string(i)), Ms(3000), &why);
      ASSERT_TRUE(resp) << what << ": " << why;
      ASSERT_EQ(resp->status, 200) << what;
      ASSERT_EQ(resp->header("X-Backend").value_or(""), want) << what;
    }
  };
  served_by_only("blue1", "after-refused-bgctl");
  EXPECT_EQ(b2.stats().requests, 0u);

  // The same file through SIGHUP: logged as refused with the place, counted, nothing changes.
  p.process().signal(SIGHUP);
  auto line = p.process().wait_for_line(std::regex("reload refused, keeping the running config: .*" +
                                                   re_escape(where) + ".*bogus_timeout"),
                                        Ms(5000));
  EXPECT_TRUE(line) << "stderr:\n" << p.process().stderr_text();
  EXPECT_EQ(p.wait_metric("bgproxy_config_reloads_total", {{"result", "failure"}},
                          [](double v) { return v >= 2; }),
            2.0);
  served_by_only("blue1", "after-refused-sighup");
  EXPECT_EQ(b2.stats().requests, 0u);
  EXPECT_EQ(json::serialize(status().at("weights")), json::serialize(status_before.at("weights")));
  EXPECT_TRUE(p.process().running());

  // Fixed: the same change now applies.
  write_config(p, next);
  ASSERT_TRUE(reload_ok());
  EXPECT_EQ(reloads(p, "success"), 1.0);
  EXPECT_EQ(reloads(p, "failure"), 2.0);
  served_by_only("blue2", "after-fixed-reload");
}

// ---------------------------------------------------------------------------------------------
// 4. A reload adds a listener (bound port parsed from the log) and a later one removes it; the
//    first listener keeps its socket: a keep-alive connection opened before both reloads keeps
//    working on the same connection, and new connections to its port are served throughout.

TEST_F(ReloadTest, ListenerAddedAndRemovedKeepsExistingSocket) {
  Backend& b = start_backend("blue");
  ProxyConfig cfg;
  cfg.blue = {b.address()};
  cfg.green = {"127.0.0.1:" + std::to_string(refused_port())};
  cfg.listeners = 1;
  Proxy& p = start(cfg);
  const std::uint16_t port1 = p.port(0);

  Client keep(port1);
  auto ask = [&](Client& c, const std::string& target) -> ::testing::AssertionResult {
    if (!c.try_send(get_request(target), Ms(3000)))
      return ::testing::AssertionFailure() << target << ": send: " << c.last_error();
    auto resp = c.read_response(Ms(3000));
    if (!resp) return ::testing::AssertionFailure() << target << ": " << c.last_error();
    if (resp->status != 200) return ::testing::AssertionFailure() << target << ": status " << resp->status;
    if (resp->header("Connection").value_or("") == "close")
      return ::testing::AssertionFailure() << target << ": the proxy closes this connection";
    return ::testing::AssertionSuccess();
  };
  auto fresh = [&](std::uint16_t port, const std::string& target) -> ::testing::AssertionResult {
    std::string why;
    auto resp = round_trip(port, get_request(target), Ms(3000), &why);
    if (!resp) return ::testing::AssertionFailure() << target << " on port " << port << ": " << why;
    if (resp->status != 200) return ::testing::AssertionFailure() << target << ": status " << resp->status;
    return ::testing::AssertionSuccess();
  };
  ASSERT_TRUE(ask(keep, "/keep/1"));

  cfg.listeners = 2;
  write_config(p, cfg);
  ASSERT_TRUE(reload_ok());
  auto added = p.process().wait_for_line(std::regex(R"(listener added: 127\.0\.0\.1:0 on 127\.0\.0\.1:(\d+))"),
                                         Ms(3000));
  ASSERT_TRUE(added) << "no \"listener added\" line; stderr:\n" << p.process().stderr_text();
  const auto port2 = static_cast<std::uint16_t>(std::stoi((*added)[1]));
  EXPECT_NE(port2, port1);
  EXPECT_TRUE(fresh(port2, "/on-2"));
  EXPECT_TRUE(ask(keep, "/keep/2")) << "keep-alive connection opened before the reload";
  EXPECT_TRUE(fresh(port1, "/on-1-after-add"));

  cfg.listeners = 1;
  write_config(p, cfg);
  ASSERT_TRUE(reload_ok());
  EXPECT_TRUE(p.process().wait_for_line(std::regex(R"(listener removed: 127\.0\.0\.1:0)"), Ms(3000)))
      << "stderr:\n" << p.process().stderr_text();
  bool refused = false;
  int last_err = 0;
  for (auto deadline = Clock::now() + Ms(3000); Clock::now() < deadline && !refused;) {
    auto c = Client::try_connect(port2, Ms(300), &last_err);
    if (!c && last_err == ECONNREFUSED) refused = true;
    else std::this_thread::sleep_for(Ms(20));
  }
  EXPECT_TRUE(refused) << "port " << port2 << " of the removed listener still accepts connections (last: "
                       << (last_err ? std::strerror(last_err) : "connected") << ")";
  EXPECT_TRUE(ask(keep, "/keep/3")) << "keep-alive connection opened before both reloads";
  EXPECT_TRUE(fresh(port1, "/on-1-after-remove"));
}

// ---------------------------------------------------------------------------------------------
// 5. timeouts.upstream_response follows a reload: 200 with 5 s, 504 with 200 ms, 200 again.

TEST_F(ReloadTest, ThreadsChangeIsReportedAndLeftForTheNextRestart) {
  Backend& b = start_backend("blue");
  ProxyConfig cfg;
  cfg.blue = {b.address()};
  Proxy& p = start(cfg);
  cfg.threads = 3;
  write_config(p, cfg);
  auto r = bgctl({"reload"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("configuration reloaded; threads: the change applies at the next restart"), std::string::npos)
      << r.out;
  EXPECT_TRUE(p.process().wait_for_line(std::regex("reload: threads: the change applies at the next restart"),
                                        Ms(3000)));
  std::string why;
  auto resp = round_trip(p.port(), get_request("/"), Ms(3000), &why);
  ASSERT_TRUE(resp) << why;
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_config_reloads_total", {{"result", "success"}}), 1);
}

TEST_F(ReloadTest, PooledUpstreamConnectionsSurviveAReloadThatKeepsTheirServer) {
  Backend& b = start_backend("blue");
  ProxyConfig cfg;
  cfg.blue = {b.address()};
  cfg.threads = 1;  // one worker, one upstream pool
  cfg.upstream_response = "5s";
  Proxy& p = start(cfg);
  Client c(p.port());
  std::string why;
  for (int i = 0; i < 3; ++i) {
    c.send(get_request("/before"));
    auto r = c.read_response(Ms(3000));
    ASSERT_TRUE(r) << c.last_error();
    ASSERT_EQ(r->status, 200);
  }
  const auto before = b.stats().connections;
  cfg.upstream_response = "4s";
  write_config(p, cfg);
  ASSERT_TRUE(reload_ok());
  for (int i = 0; i < 3; ++i) {
    c.send(get_request("/after"));
    auto r = c.read_response(Ms(3000));
    ASSERT_TRUE(r) << c.last_error();
    ASSERT_EQ(r->status, 200);
  }
  // + 1: the /_stats request's own connection.
  EXPECT_EQ(b.stats().connections, before + 1) << "the reload closed the pooled connection to an unchanged server";
}

TEST_F(ReloadTest, TimeoutChangeApplies) {
  Backend& b = start_backend("blue");
  ProxyConfig cfg;
  cfg.blue = {b.address()};
  cfg.green = {"127.0.0.1:" + std::to_string(refused_port())};
  cfg.upstream_response = "5s";
  Proxy& p = start(cfg);
  const std::string slow = "/?delay_ms=700";

  std::string why;
  auto r = round_trip(p.port(), get_request(slow), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200) << "a 700 ms answer within upstream_response 5s";

  cfg.upstream_response = "200ms";
  write_config(p, cfg);
  ASSERT_TRUE(reload_ok());
  auto t0 = Clock::now();
  r = round_trip(p.port(), get_request(slow), Ms(5000), &why);
  auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 504) << "upstream_response 200ms after the reload; took " << took << " ms";
  EXPECT_LT(took, 650) << "the 504 came after the backend's delay, not after 200 ms";

  cfg.upstream_response = "5s";
  write_config(p, cfg);
  p.process().signal(SIGHUP);
  ASSERT_TRUE(p.wait_metric("bgproxy_config_reloads_total", {{"result", "success"}},
                            [](double v) { return v >= 2; }))
      << "second reload never counted";
  ASSERT_TRUE(p.process().wait_for_line(std::regex(R"(reload: applied .* \(generation [0-9]+\))"), Ms(3000)))
      << "stderr:\n" << p.process().stderr_text();
  r = round_trip(p.port(), get_request(slow), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200) << "upstream_response back to 5s";
}

}  // namespace
}  // namespace bgtest
