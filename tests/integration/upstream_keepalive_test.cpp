// Issue 19 acceptance: no spurious 502s from the upstream keep-alive race, even for POST (SPEC §3
// `timeouts.upstream_idle`, §9 metrics). The demo backend closes idle keep-alive connections the
// way real servers do: silently after 0.3 s, 1 s or 2 s (like gunicorn or Node.js), or as it
// announces with `Keep-Alive: timeout=N` or `max=M`. One client sends requests one after the
// other on one keep-alive connection through a one-worker proxy, so the proxy's pool holds one
// connection to the backend and that connection's idle age is the client's pause. The pauses
// sweep across the backend's limit, down to the microseconds in which the request reaches the
// backend just as it closes. The proxy may lose a few requests while it learns a limit nobody
// announced, and none after that; it may never lose one to a limit it was told, and never an
// idempotent GET.
//
// Every POST that got a 200 was checked at the backend (body length and hash), and the backend
// ran exactly as many requests as the client got 200s: no POST runs twice. The proxy must also
// keep reusing connections that are younger than the limit; never pooling would avoid the 502s
// too, but it would only move the problem elsewhere.
//
// The pauses are the scenarios' timing. Every other wait is synchronised on an event (a
// response, a metric, a bgctl answer).

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;
using Labels = std::map<std::string, std::string>;
using Us = std::chrono::microseconds;
/// The client's pause before request k (k >= 1) of a test, counting the requests of every sweep.
using Pauses = std::function<Us(std::size_t k)>;

const char* bgctl_bin() { return BGCTL_BIN; }

/// Bodies up to 64 KiB may be held by the proxy and retried after a failed write (issue 19 item
/// 4). Every fifth POST is larger than that, so only never sending it on a dead connection saves it.
constexpr std::size_t kSmallBody = 300;
constexpr std::size_t kLargeBody = 100 * 1024;

/// Pauses cycling through `ms`.
Pauses cycle_ms(std::vector<int> ms) {
  return [ms = std::move(ms)](std::size_t k) { return Us(Ms(ms[k % ms.size()])); };
}

/// Pauses against a backend that closes connections idle `limit`. Every other pause is short
/// (limit / 3: the connection must be reused); the others are around the limit. The first of those
/// is limit + 50 ms, so that the first close the proxy meets is a plain one. After it, every fifth
/// is 0.85, 0.95, 1.1 or 1.3 × limit, and the rest sweep [limit − 1.5 ms, limit + 0.3 ms) in 20 µs
/// steps, in a scrambled order: somewhere in there the request reaches the backend in the instant
/// it closes, where a proxy that only checks a pooled connection before reusing it loses a POST
/// (about 1 in 50 of these pauses, measured against bgproxy before issue 19).
Pauses around_limit(Ms limit) {
  return [limit](std::size_t k) -> Us {
    if (k % 2 == 0) return limit / 3;
    const std::size_t j = k / 2;  // 0, 1, 2, ... over the pauses around the limit
    if (j == 0) return limit + Ms(50);
    if (j % 5 == 0) {
      static constexpr double kFactors[] = {0.85, 0.95, 1.1, 1.3};
      return std::chrono::duration_cast<Us>(limit * kFactors[(j / 5) % 4]);
    }
    constexpr std::size_t kSteps = 90;  // 37 is prime to it: every step comes up once in 90
    return Us(limit) - Us(1500) + Us(20) * static_cast<long>((j * 37) % kSteps);
  };
}

std::string describe(Us pause) {
  std::ostringstream os;
  os << static_cast<double>(pause.count()) / 1000.0 << " ms";
  return os.str();
}

/// One request of a sweep and how it ended.
struct Exchange {
  std::size_t index = 0;
  Us pause{0};         ///< the client's pause after the previous response
  int status = 0;       ///< 0 = no complete response
  std::string error;    ///< no response, or a 200 whose echo is not of this request
  std::uint64_t request_on_connection = 0;  ///< from the backend's echo; 1 = a fresh connection
};

struct Sweep {
  std::vector<Exchange> exchanges;

  std::size_t with_status(int status) const {
    return static_cast<std::size_t>(std::count_if(exchanges.begin(), exchanges.end(),
                                                  [&](const Exchange& e) { return e.status == status; }));
  }
  /// 200s with the echo of the request sent.
  std::size_t ok() const {
    return static_cast<std::size_t>(std::count_if(exchanges.begin(), exchanges.end(), [](const Exchange& e) {
      return e.status == 200 && e.error.empty();
    }));
  }
  /// Requests that got neither a good 200 nor a 502.
  std::size_t others() const { return exchanges.size() - ok() - with_status(502); }

  /// The requests that did not get a good 200, for failure messages.
  std::string failures() const {
    std::ostringstream os;
    for (const auto& e : exchanges) {
      if (e.status == 200 && e.error.empty()) continue;
      os << "\n  #" << e.index << " after " << describe(e.pause) << ": status " << e.status;
      if (!e.error.empty()) os << " (" << e.error << ")";
    }
    return os.str();
  }
};

class UpstreamKeepAlive : public IntegrationTest {
protected:
  /// A one-worker proxy (one pool) in front of `blue`, and the client connection to it.
  Proxy& start(Backend& blue) {
    ProxyConfig cfg;
    cfg.blue = {blue.address()};
    cfg.threads = 1;
    Proxy& p = start_proxy(cfg);
    socket_ = (dir_ / "control-0.sock").string();
    port_ = p.port();
    return p;
  }

  /// Sends `count` requests one after the other on the client's keep-alive connection, pausing
  /// `pauses(k)` before request k after the previous response. A POST carries a body (every fifth
  /// one above 64 KiB), and the 200s are checked against the backend's echo. `extra_headers` go
  /// on every request (e.g. an X-Bg-Color override).
  Sweep sweep(const std::string& method, const Pauses& pauses, std::size_t count,
              const std::string& extra_headers = "") {
    Sweep s;
    for (std::size_t i = 0; i < count; ++i, ++sent_) {
      Exchange e;
      e.index = sent_;
      if (sent_ > 0) {
        e.pause = pauses(sent_);
        std::this_thread::sleep_for(e.pause);
      }
      const std::string target = "/issue19?i=" + std::to_string(sent_);
      std::string body;
      std::string request;
      if (method == "GET") {
        request = get_request(target, extra_headers);
      } else {
        body = pattern_bytes(sent_, sent_ % 5 == 4 ? kLargeBody : kSmallBody);
        request = request_with_body(method, target, body, extra_headers);
      }
      if (!client_) client_.emplace(port_);
      std::optional<Response> r;
      if (client_->try_send(request)) r = client_->read_response(Ms(10000));
      if (!r) {
        e.error = client_->last_error();
        client_.reset();  // the proxy closed our connection: the next request opens a new one
        s.exchanges.push_back(std::move(e));
        continue;
      }
      e.status = r->status;
      if (r->header("Connection") == "close") client_.reset();
      if (e.status == 200) {
        try {
          Echo echo = parse_echo(r->body);
          e.request_on_connection = echo.request_on_connection;
          if (echo.method != method || echo.target != target) {
            e.error = "echo of another request: " + echo.method + " " + echo.target;
          } else if (echo.body_bytes != body.size() || (!body.empty() && echo.body_fnv1a != fnv1a_hex(body))) {
            e.error = "body arrived as " + std::to_string(echo.body_bytes) + " bytes, hash " + echo.body_fnv1a;
          }
        } catch (const std::exception& ex) {
          e.error = std::string("not an echo: ") + ex.what();
        }
      }
      s.exchanges.push_back(std::move(e));
    }
    return s;
  }

  static Labels server_labels(const std::string& address, const std::string& color = "blue") {
    return {{"service", "app"}, {"color", color}, {"server", address}};
  }

  /// The learned idle limit of a server once it shows (> 0) on /metrics; nullopt if it never does.
  static std::optional<double> wait_learned(Proxy& p, const std::string& address,
                                            const std::string& color = "blue") {
    auto v = p.wait_metric("bgproxy_upstream_learned_idle_seconds", server_labels(address, color),
                           [](double x) { return x > 0; });
    if (v && *v > 0) return v;
    return std::nullopt;
  }

  CommandResult bgctl(std::vector<std::string> args, bool json_out = false) {
    std::vector<std::string> argv{bgctl_bin(), "-S", socket_};
    if (json_out) argv.push_back("--json");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path(), Ms(10000));
  }

  /// The `bgctl --json health` entry of the server with this address.
  json::object health_of(const std::string& address) {
    auto r = bgctl({"health"}, true);
    if (r.exit_code != 0)
      throw std::runtime_error("bgctl --json health: exit " + std::to_string(r.exit_code) + ": " + r.err);
    auto v = json::parse(r.out);
    for (const auto& s : v.at("services").at(0).at("servers").as_array())
      if (s.at("address").as_string() == address) return s.as_object();
    throw std::runtime_error("no server " + address + " in bgctl health: " + r.out);
  }

  /// `learned_idle_seconds` of a server in `bgctl --json health`; nullopt when absent or null.
  std::optional<double> learned_in_health(const std::string& address) {
    auto s = health_of(address);
    const auto* v = s.if_contains("learned_idle_seconds");
    if (!v || v->is_null()) return std::nullopt;
    return v->to_number<double>();
  }

  /// learned_in_health() once it shows: the reply is built from the workers' stats, collected
  /// about once a second (and afresh after a reload). nullopt if it never shows within 3 s.
  std::optional<double> wait_learned_in_health(const std::string& address) {
    const auto deadline = Clock::now() + Ms(3000);
    for (;;) {
      auto v = learned_in_health(address);
      if (v || Clock::now() >= deadline) return v;
      std::this_thread::sleep_for(Ms(100));
    }
  }

  /// Polls /metrics (counters lag by up to a second) until the sample, 0 when absent, satisfies
  /// `pred`; returns the last value seen.
  static double wait_counter(Proxy& p, const std::string& name, const Labels& labels,
                             const std::function<bool(double)>& pred) {
    const auto deadline = Clock::now() + Ms(3000);
    for (;;) {
      const double v = metric_value(p.metrics(), name, labels).value_or(0);
      if (pred(v) || Clock::now() >= deadline) return v;
      std::this_thread::sleep_for(Ms(100));
    }
  }

  /// The server's stale-reuse 502s and reset failures must both have counted `n502`.
  static void expect_stale_reuse_counted(Proxy& p, const std::string& address, std::size_t n502) {
    const auto want = static_cast<double>(n502);
    EXPECT_EQ(wait_counter(p, "bgproxy_upstream_stale_reuse_total", server_labels(address),
                           [&](double v) { return v == want; }),
              want)
        << "bgproxy_upstream_stale_reuse_total, " << n502 << " 502s seen";
    auto with_reason = server_labels(address);
    with_reason["reason"] = "reset";
    EXPECT_GE(wait_counter(p, "bgproxy_upstream_failures_total", with_reason, [&](double v) { return v >= want; }),
              want)
        << "bgproxy_upstream_failures_total{reason=\"reset\"}, " << n502 << " 502s seen";
  }

  /// Responses after a pause of at most `max_pause` came over a reused backend connection: the
  /// proxy still pools connections younger than the limit it applies. (After a failed request
  /// there is no connection to reuse.)
  static void expect_reused_after_short_pauses(const Sweep& s, Us max_pause) {
    std::size_t checked = 0;
    for (std::size_t i = 1; i < s.exchanges.size(); ++i) {
      const auto& e = s.exchanges[i];
      if (e.status != 200 || s.exchanges[i - 1].status != 200 || e.pause > max_pause) continue;
      ++checked;
      EXPECT_GE(e.request_on_connection, 2u)
          << "request #" << e.index << " after a " << describe(e.pause) << " pause went over a new connection";
    }
    EXPECT_GT(checked, 0u) << "no short pause to check reuse with";
  }

  /// A backend that closes connections idle `idle` without a word: POSTs paused around_limit()
  /// lose at most 3 requests in the first `learning` (while the proxy learns the limit) and none
  /// in the next `steady`. The learned limit is below the backend's, on /metrics and in `bgctl
  /// health`, and the 502s seen are counted as stale reuses.
  void silent_idle_close_scenario(Ms idle, std::size_t learning, std::size_t steady) {
    Backend& b = start_backend("blue");
    b.knobs("idle_close_ms=" + std::to_string(idle.count()));
    Proxy& p = start(b);
    const auto before = b.stats().requests;

    Sweep first = sweep("POST", around_limit(idle), learning);
    Sweep rest = sweep("POST", around_limit(idle), steady);
    EXPECT_LE(first.with_status(502), 3u) << "502s while learning:" << first.failures();
    EXPECT_EQ(first.others(), 0u) << first.failures();
    EXPECT_EQ(rest.with_status(502), 0u) << "502s after learning, over " << steady << " POSTs:" << rest.failures();
    EXPECT_EQ(rest.others(), 0u) << rest.failures();
    expect_reused_after_short_pauses(rest, idle / 2);

    EXPECT_EQ(b.stats().requests - before, first.with_status(200) + rest.with_status(200))
        << "the backend ran a different number of POSTs than got a 200";

    const double idle_s = std::chrono::duration<double>(idle).count();
    auto learned = wait_learned(p, b.address());
    ASSERT_TRUE(learned) << "nothing learned from a backend closing idle connections after "
                         << idle.count() << " ms:\n" << p.metrics();
    EXPECT_GT(*learned, 0.0);
    EXPECT_LT(*learned, idle_s) << "learned idle limit at or above the backend's " << idle_s << " s";
    auto shown = wait_learned_in_health(b.address());
    EXPECT_TRUE(shown) << "no learned_idle_seconds in bgctl health: " << json::serialize(health_of(b.address()));
    if (shown) {
      EXPECT_NEAR(*shown, *learned, 0.001);
    }

    expect_stale_reuse_counted(p, b.address(), first.with_status(502) + rest.with_status(502));
    // For the issue's before/after note.
    std::cout << "[issue19] backend idle " << idle.count() << " ms: " << first.with_status(502) << " x 502 in "
              << learning << " POSTs while learning, " << rest.with_status(502) << " x 502 in the next " << steady
              << "; learned " << *learned << " s\n";
  }

  std::string socket_;
  std::uint16_t port_ = 0;
  std::optional<Client> client_;
  std::size_t sent_ = 0;  ///< requests of every sweep so far (picks the pause and the body)
};

// ---------------------------------------------------------------------------------------------
// 1-3. Backends that close idle connections without saying so: 0.3 s, 1 s, 2 s.

// 20 POSTs to learn, then 220 more, 88 of them within 2 ms of the limit (about 50 s in all).
TEST_F(UpstreamKeepAlive, Issue19SilentIdleClose300msNoPost502AfterLearning) {
  silent_idle_close_scenario(Ms(300), 20, 220);
}

// 10 POSTs to learn, then 36 more (about 31 s).
TEST_F(UpstreamKeepAlive, Issue19SilentIdleClose1sNoPost502AfterLearning) {
  silent_idle_close_scenario(Ms(1000), 10, 36);
}

// 6 POSTs to learn, then 16 more (about 30 s).
TEST_F(UpstreamKeepAlive, Issue19SilentIdleClose2sNoPost502AfterLearning) {
  silent_idle_close_scenario(Ms(2000), 6, 16);
}

// ---------------------------------------------------------------------------------------------
// 4. Idempotent GETs never see a 502, learning or not. The backend shortens its idle limit in
//    steps (400, 300, 200, 150 ms), so what the proxy learned is too long each time and it meets
//    the close again, in the same microseconds as the POST scenarios.

TEST_F(UpstreamKeepAlive, Issue19IdempotentGetsNever502) {
  Backend& b = start_backend("blue");
  Proxy& p = start(b);
  const auto before = b.stats().requests;
  for (int limit : {400, 300, 200, 150}) {
    b.knobs("idle_close_ms=" + std::to_string(limit));
    // The pauses around the limit (odd k of around_limit()) but its first, clearly late, one.
    const Pauses near = [near_limit = around_limit(Ms(limit))](std::size_t k) { return near_limit(2 * k + 3); };
    Sweep s = sweep("GET", near, 16);
    EXPECT_EQ(s.ok(), s.exchanges.size()) << "backend idle limit " << limit << " ms:" << s.failures();
  }
  EXPECT_EQ(b.stats().requests - before, 64u);
  EXPECT_TRUE(wait_learned(p, b.address())) << "the GETs met no close: the test no longer tests";
}

// ---------------------------------------------------------------------------------------------
// 5-6. Limits the backend announces are kept from the first request: nothing to learn, no 502.

// `Keep-Alive: timeout=1`: retired before 1 − min(1, 1/4) = 0.75 s of idleness.
TEST_F(UpstreamKeepAlive, Issue19AdvertisedKeepAliveTimeoutIsHonouredFromTheStart) {
  Backend& b = start_backend("blue");
  b.knobs("keep_alive_timeout=1");
  Proxy& p = start(b);
  Sweep s = sweep("POST", cycle_ms({100, 500, 700, 800, 900, 1000}), 30);
  EXPECT_EQ(s.ok(), s.exchanges.size()) << s.failures();
  expect_reused_after_short_pauses(s, Ms(500));
  for (const auto& e : s.exchanges) {
    if (e.status == 200 && e.pause >= Ms(800)) {
      EXPECT_EQ(e.request_on_connection, 1u)
          << "request #" << e.index << " reused a connection idle " << describe(e.pause)
          << ", past the 0.75 s the proxy should retire it at";
    }
  }
  expect_stale_reuse_counted(p, b.address(), 0);
}

// `Keep-Alive: max=3`, then a silent close: no connection carries a 4th request, and each carries 3.
TEST_F(UpstreamKeepAlive, Issue19AdvertisedKeepAliveMaxIsHonouredFromTheStart) {
  Backend& b = start_backend("blue");
  b.knobs("keep_alive_max=3");
  Proxy& p = start(b);
  const auto before = b.stats().requests;
  Sweep s = sweep("POST", cycle_ms({0, 1, 5, 20}), 150);
  EXPECT_EQ(s.ok(), s.exchanges.size()) << s.failures();
  std::size_t thirds = 0;
  for (const auto& e : s.exchanges) {
    EXPECT_LE(e.request_on_connection, 3u) << "request #" << e.index;
    if (e.request_on_connection == 3) ++thirds;
  }
  // 50 if every connection carried its 3 requests; a few fewer is fine, none is not reuse.
  EXPECT_GE(thirds, 45u) << "connections retired before their 3rd request";
  EXPECT_EQ(b.stats().requests - before, s.with_status(200));
  expect_stale_reuse_counted(p, b.address(), 0);
}

// ---------------------------------------------------------------------------------------------
// 7. timeouts.upstream_idle: 4 s by default; a connection idle longer is not reused; reloadable.
//    The backend never closes, so only the proxy's limit decides (and nothing is learned).

TEST_F(UpstreamKeepAlive, Issue19UpstreamIdleLimitDefaultsTo4sAndIsReloadable) {
  Backend& b = start_backend("blue");
  Proxy& p = start(b);

  // Default 4 s: reused after 3.5 s, not after 4.3 s.
  Sweep d = sweep("GET", cycle_ms({0, 3500, 4300}), 3);
  ASSERT_EQ(d.ok(), 3u) << d.failures();
  EXPECT_EQ(d.exchanges[1].request_on_connection, 2u) << "not reused after 3.5 s idle (default limit 4 s)";
  EXPECT_EQ(d.exchanges[2].request_on_connection, 1u) << "reused after 4.3 s idle (default limit 4 s)";

  auto reload = [&](const std::string& upstream_idle) {
    ProxyConfig cfg;
    cfg.blue = {b.address()};
    cfg.threads = 1;
    cfg.upstream_idle = upstream_idle;
    write_file(p.config_path(), render_config(cfg, dir_.path(), 0));
    auto r = bgctl({"reload"});
    return r.exit_code == 0 && r.out.find("configuration reloaded") != std::string::npos
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << "bgctl reload: exit " << r.exit_code << "\n" << r.out << r.err;
  };

  // 300 ms: a pause of 500 ms always finds a new connection, one of 100 ms the same one.
  ASSERT_TRUE(reload("300ms"));
  Sweep low = sweep("GET", cycle_ms({100, 500}), 8);
  ASSERT_EQ(low.ok(), 8u) << low.failures();
  for (const auto& e : low.exchanges) {
    if (e.pause == Ms(500)) {
      EXPECT_EQ(e.request_on_connection, 1u) << "#" << e.index << " reused after 500 ms";
    } else {
      EXPECT_GE(e.request_on_connection, 2u) << "#" << e.index << " not reused after 100 ms";
    }
  }

  // 2 s: the same pauses all reuse one connection.
  ASSERT_TRUE(reload("2s"));
  Sweep high = sweep("GET", cycle_ms({100, 500}), 8);
  ASSERT_EQ(high.ok(), 8u) << high.failures();
  for (std::size_t i = 1; i < high.exchanges.size(); ++i) {
    EXPECT_GE(high.exchanges[i].request_on_connection, 2u)
        << "#" << high.exchanges[i].index << " not reused after " << describe(high.exchanges[i].pause);
  }

  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_upstream_learned_idle_seconds", server_labels(b.address()))
                .value_or(0),
            0.0)
      << "learned a limit from a backend that never closes";
  EXPECT_FALSE(learned_in_health(b.address()));
}

// ---------------------------------------------------------------------------------------------
// 8. The learned limit belongs to a server address: a reload that puts another address in a
//    color's pool starts from nothing there, and a server the reload leaves alone keeps its value.

TEST_F(UpstreamKeepAlive, Issue19LearnedIdleResetsWhenTheServerAddressChangesOnReload) {
  Backend& a = start_backend("blue-a");
  Backend& g = start_backend("green");
  Backend& fresh = start_backend("blue-b");  // never closes an idle connection
  a.knobs("idle_close_ms=300");
  g.knobs("idle_close_ms=300");
  ProxyConfig cfg;
  cfg.blue = {a.address()};
  cfg.green = {g.address()};
  cfg.threads = 1;
  Proxy& p = start_proxy(cfg);
  socket_ = (dir_ / "control-0.sock").string();
  port_ = p.port();

  // Pauses of 350 ms: a reuse finds the connection closed after 300 ms, a learning event (and
  // 80 % of 350 ms is still below 300 ms).
  const std::string to_green = "X-Bg-Color: green\r\n";
  Sweep la = sweep("GET", cycle_ms({350}), 3);
  ASSERT_EQ(la.ok(), 3u) << la.failures();
  Sweep lg = sweep("GET", cycle_ms({350}), 3, to_green);
  ASSERT_EQ(lg.ok(), 3u) << lg.failures();
  auto learned_a = wait_learned(p, a.address(), "blue");
  auto learned_g = wait_learned(p, g.address(), "green");
  ASSERT_TRUE(learned_a && learned_g) << p.metrics();
  EXPECT_LT(*learned_a, 0.3);
  EXPECT_LT(*learned_g, 0.3);
  EXPECT_TRUE(wait_learned_in_health(a.address())) << json::serialize(health_of(a.address()));

  // Blue's only server moves to another address; green is unchanged.
  cfg.blue = {fresh.address()};
  write_file(p.config_path(), render_config(cfg, dir_.path(), 0));
  auto r = bgctl({"reload"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // The reply may lack it until the workers' stats are collected again after the reload; it
  // must then come back with the same value, since nothing reaches green meanwhile.
  auto g_after = wait_learned_in_health(g.address());
  EXPECT_TRUE(g_after) << "green's learned limit lost by a reload that did not change it: "
                       << json::serialize(health_of(g.address()));
  // Kept, not reset. Within 10 ms: green's pool may see one more of its idle connections closed
  // (and learn from it) while the test runs, more so on a loaded machine.
  constexpr double same = 0.01;
  if (g_after) {
    EXPECT_NEAR(*g_after, *learned_g, same);
  }
  EXPECT_FALSE(learned_in_health(fresh.address()))
      << "the new address starts with a learned limit: " << json::serialize(health_of(fresh.address()));

  // Pauses of 400 ms, above what blue's old address taught: the new server's connection is still
  // reused each time, so none of that carried over.
  Sweep nb = sweep("GET", cycle_ms({400}), 5);
  ASSERT_EQ(nb.ok(), 5u) << nb.failures();
  for (std::size_t i = 1; i < nb.exchanges.size(); ++i) {
    EXPECT_GE(nb.exchanges[i].request_on_connection, 2u)
        << "the new blue server's connection was retired after 400 ms idle";
  }

  // More than the metrics' one-second lag later, the gauges agree.
  auto m = p.metrics();
  EXPECT_EQ(metric_value(m, "bgproxy_upstream_learned_idle_seconds", server_labels(fresh.address())).value_or(0),
            0.0)
      << m;
  auto g_metric = metric_value(m, "bgproxy_upstream_learned_idle_seconds", server_labels(g.address(), "green"));
  ASSERT_TRUE(g_metric) << m;
  EXPECT_NEAR(*g_metric, *learned_g, same);
  EXPECT_FALSE(learned_in_health(fresh.address()));
}

}  // namespace
}  // namespace bgtest
