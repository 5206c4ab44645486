// Shadow traffic (SPEC §14, issue 17) through the real bgproxy, bgctl and demo backends: the
// mirrored share follows `percent` (sampled by a hash of method and target), only the listed
// methods and bodies within `max_body_bytes` are copied, the copy is the request plus
// `X-Bg-Shadow: 1`, a shadow color that hangs, refuses, closes or answers 500 changes nothing
// for clients, a field that differs between the colors is reported while one that differs
// between two answers of one color (the noise floor) is not, the gate refuses `canary start`
// and `release` above `watchdog.max_shadow_mismatch_rate` unless forced, memory stays bounded
// with `max_in_flight` saturated, and a reload changes the share without a restart.
//
// What crossed the wire is what is asserted: the demo backends' request counts (/_stats), the
// echo JSON the clients got, the admin listener's metrics and `bgctl --json shadow`. Shadows
// go to green (weight 0) while blue has all the traffic; every 10th planned shadow of a worker
// goes to blue itself (a noise-floor pair), so the copies are counted at both backends: green's
// requests plus blue's beyond the clients' own. Every wait is a poll with a deadline.

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "recording_backend.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

/// What a batch of client requests saw.
struct Traffic {
  std::size_t sent = 0;
  std::size_t ok = 0;  ///< 200 with the blue backend's echo
  std::vector<std::string> failures;  ///< the first few, described
  std::vector<double> ms;  ///< latency of every request that completed, in milliseconds

  std::string first_failures() const {
    std::string s;
    for (const auto& f : failures) s += "  " + f + "\n";
    return s;
  }
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  return v[i];
}

/// Sends request(i) for i in [0, n) from `threads` client threads, each on its own keep-alive
/// connection (a new one after a failure). A request is ok when it is answered 200 by the backend
/// named `expect_backend` (X-Backend, and the echo's name when the answer is one).
Traffic send_requests(std::uint16_t port, int n, int threads, const std::function<std::string(int)>& request,
                      const std::string& expect_backend = "blue") {
  Traffic total;
  std::mutex mu;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Traffic mine;
      std::optional<Client> c;
      for (int i = t; i < n; i += threads) {
        const std::string raw = request(i);
        const bool head = raw.rfind("HEAD ", 0) == 0;
        ++mine.sent;
        std::string why;
        const auto t0 = Clock::now();
        if (!c) c = Client::try_connect(port, Ms(2000));
        std::optional<Response> r;
        if (!c) {
          why = "connect failed";
        } else if (!c->try_send(raw, Ms(3000))) {
          why = "send: " + c->last_error();
        } else {
          r = c->read_response(Ms(5000), head);
          if (!r) why = "read: " + c->last_error();
        }
        if (r) {
          mine.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          if (r->status != 200) {
            why = "status " + std::to_string(r->status) + " " + r->body.substr(0, 120);
          } else if (r->header("x-backend") != expect_backend) {
            why = "answered by " + r->header("x-backend").value_or("?");
          } else if (!head && r->header("content-type") == "application/json") {
            try {
              const Echo e = parse_echo(r->body);
              if (e.name != expect_backend) why = "echo of " + e.name;
              if (e.has("x-bg-shadow")) why = "the client's own request carried X-Bg-Shadow";
            } catch (const std::exception& ex) {
              why = std::string("not an echo: ") + ex.what() + ": " + r->body.substr(0, 120);
            }
          }
        }
        if (why.empty()) {
          ++mine.ok;
        } else {
          if (mine.failures.size() < 5) mine.failures.push_back("request " + std::to_string(i) + ": " + why);
          c.reset();
        }
      }
      std::lock_guard lock(mu);
      total.sent += mine.sent;
      total.ok += mine.ok;
      for (auto& f : mine.failures) {
        if (total.failures.size() < 5) total.failures.push_back(std::move(f));
      }
      total.ms.insert(total.ms.end(), mine.ms.begin(), mine.ms.end());
    });
  }
  for (auto& w : workers) w.join();
  return total;
}

std::string get_r(int i) { return get_request("/r/" + std::to_string(i + 1)); }

/// `shadow_requests_total`-style counts out of a service of `bgctl --json shadow`.
double requests_of(const json::object& svc, const char* color, const char* result) {
  return svc.at("requests").at(color).at(result).to_number<double>();
}

double sum_requests(const json::object& svc, const char* result) {
  return requests_of(svc, "blue", result) + requests_of(svc, "green", result);
}

/// The entry of `field` in a service's "fields", if any.
std::optional<json::object> field_of(const json::object& svc, std::string_view field) {
  const json::array& fields = svc.at("fields").as_array();
  for (const auto& f : fields) {
    if (f.at("field").as_string() == field) return f.as_object();
  }
  return std::nullopt;
}

std::vector<std::string> strings_of(const json::value& v) {
  std::vector<std::string> out;
  for (const auto& s : v.as_array()) out.emplace_back(s.as_string());
  return out;
}

class Shadow : public IntegrationTest {
 protected:
  /// Blue and green demo backends (unless `green_address` is given), the proxy with
  /// `service_extra` (a `shadow:` line and whatever else the test needs).
  Proxy& start(const std::string& service_extra, std::optional<std::string> green_address = std::nullopt,
               const std::function<void(ProxyConfig&)>& adjust = nullptr) {
    blue_ = &start_backend("blue");
    cfg_ = ProxyConfig{};
    cfg_.blue = {blue_->address()};
    if (green_address) {
      cfg_.green = {*green_address};
    } else {
      green_ = &start_backend("green");
      cfg_.green = {green_->address()};
    }
    cfg_.service_extra = service_extra;
    if (adjust) adjust(cfg_);
    proxy_ = &start_proxy(cfg_);
    socket_ = (dir_ / "control-0.sock").string();
    return *proxy_;
  }

  CommandResult bgctl(std::vector<std::string> args, Ms timeout = Ms(10000)) {
    args.insert(args.begin(), {BGCTL_BIN, "-S", socket_});
    return run_command(std::move(args), dir_.path(), timeout);
  }

  /// The one service of `bgctl --json shadow`; nullopt with `*why` when it is not there.
  std::optional<json::object> report(std::string* why) {
    const auto r = bgctl({"--json", "shadow"});
    if (r.exit_code != 0) {
      *why = "bgctl --json shadow: exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
      return std::nullopt;
    }
    try {
      const json::value v = json::parse(r.out);
      if (!v.at("ok").as_bool()) throw std::runtime_error("\"ok\" is not true");
      const json::array& services = v.at("services").as_array();
      if (services.size() != 1) throw std::runtime_error("expected one service");
      json::object svc = services.at(0).as_object();
      // Touch what every caller reads, so that a missing member fails here with the text.
      (void)sum_requests(svc, "compared");
      return svc;
    } catch (const std::exception& e) {
      *why = std::string("bgctl --json shadow: ") + e.what() + ": " + r.out;
      return std::nullopt;
    }
  }

  /// Polls `bgctl --json shadow` until `pred` holds. Fails the test (and returns the last answer
  /// or nullopt) when it does not within `timeout`.
  std::optional<json::object> wait_report(const std::function<bool(const json::object&)>& pred,
                                          const std::string& what, Ms timeout = Ms(5000)) {
    const auto deadline = Clock::now() + timeout;
    std::string why;
    std::optional<json::object> last;
    for (;;) {
      last = report(&why);
      if (last && pred(*last)) return last;
      if (Clock::now() >= deadline) break;
      std::this_thread::sleep_for(Ms(50));
    }
    ADD_FAILURE() << "bgctl --json shadow never showed " << what << "; last: "
                  << (last ? json::serialize(*last) : why);
    return last;
  }

  /// The one service of `bgctl --json status`.
  json::object status() {
    const auto r = bgctl({"--json", "status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const json::value v = json::parse(r.out);
    return v.at("services").at(0).as_object();
  }

  /// Copies seen at the backends: green's requests plus blue's beyond the clients' own.
  struct Mirrored {
    std::uint64_t green = 0;
    std::uint64_t blue = 0;  ///< noise-floor pairs
    std::uint64_t total() const { return green + blue; }
  };

  Mirrored mirrored(std::uint64_t client_requests) {
    Mirrored m;
    const auto b = blue_->stats().requests;
    m.blue = b >= client_requests ? b - client_requests : 0;
    if (green_ != nullptr) m.green = green_->stats().requests;
    return m;
  }

  /// Polls the backends until the copies stop arriving (two reads 150 ms apart agree) or
  /// `expected` is reached and stays; bounded by `timeout`.
  Mirrored settle(std::uint64_t client_requests, std::optional<std::uint64_t> expected = std::nullopt,
                  Ms timeout = Ms(5000)) {
    const auto deadline = Clock::now() + timeout;
    Mirrored last = mirrored(client_requests);
    for (;;) {
      std::this_thread::sleep_for(Ms(150));
      const Mirrored now = mirrored(client_requests);
      const bool stable = now.total() == last.total() && now.green == last.green;
      if (stable && (!expected || now.total() >= *expected)) return now;
      last = now;
      if (Clock::now() >= deadline) return now;
    }
  }

  Backend* blue_ = nullptr;
  Backend* green_ = nullptr;
  Proxy* proxy_ = nullptr;
  ProxyConfig cfg_;
  std::string socket_;
};

const std::string kIgnoreNoise =
    R"(ignore: ["$.name", "$.headers", "$.connection_id", "$.request_on_connection"])";

// ---------------------------------------------------------------------------------------------
// 1. The mirrored share follows `percent` within ±1.5 points over 4,000 GET requests, and the
//    control plane's counts are the copies the backends saw.

TEST_F(Shadow, MirroredShareFollowsPercentOver4000Requests) {
  Proxy& p = start("shadow: { percent: 25, compare: { " + kIgnoreNoise + " } }\n");
  constexpr int n = 4000;
  const auto t = send_requests(p.port(), n, 4, get_r);
  ASSERT_EQ(t.ok, static_cast<std::size_t>(n)) << t.first_failures();
  const Mirrored m = settle(n);
  const double share = 100.0 * static_cast<double>(m.total()) / n;
  EXPECT_NEAR(share, 25.0, 1.5) << m.total() << " copies of " << n << " requests (green " << m.green << ", blue "
                                << m.blue << ")";
  // Every 10th planned copy of a worker goes to the client's own color.
  ASSERT_GT(m.total(), 0u);
  const double green_share = static_cast<double>(m.green) / static_cast<double>(m.total());
  EXPECT_GT(green_share, 0.85) << "green " << m.green << ", blue " << m.blue;
  EXPECT_LT(green_share, 0.95) << "green " << m.green << ", blue " << m.blue << " (no noise-floor pairs?)";

  // The counts of bgctl and of the metrics are the copies that reached each backend, all compared.
  const auto svc = wait_report(
      [&](const json::object& s) { return sum_requests(s, "compared") >= static_cast<double>(m.total()); },
      "compared = " + std::to_string(m.total()));
  if (svc) {
    EXPECT_EQ(requests_of(*svc, "green", "compared"), static_cast<double>(m.green)) << json::serialize(*svc);
    EXPECT_EQ(requests_of(*svc, "blue", "compared"), static_cast<double>(m.blue)) << json::serialize(*svc);
    EXPECT_EQ(sum_requests(*svc, "dropped") + sum_requests(*svc, "failed") + sum_requests(*svc, "skipped"), 0.0)
        << json::serialize(*svc);
    EXPECT_EQ(svc->at("percent").to_number<double>(), 25.0);
    EXPECT_EQ(svc->at("color"), "green");
    EXPECT_EQ(svc->at("pairs").to_number<double>(), static_cast<double>(m.green)) << json::serialize(*svc);
  }
  const std::string text = p.metrics();
  EXPECT_EQ(metric_value(text, "bgproxy_shadow_requests_total",
                         {{"service", "app"}, {"color", "green"}, {"result", "compared"}}),
            static_cast<double>(m.green))
      << text;
  EXPECT_EQ(metric_value(text, "bgproxy_shadow_requests_total",
                         {{"service", "app"}, {"color", "blue"}, {"result", "compared"}}),
            static_cast<double>(m.blue))
      << text;
}

// Sampling is by a hash of method and target: the same requests are mirrored every time.
TEST_F(Shadow, TheSameRequestsAreMirroredEveryTime) {
  Proxy& p = start("shadow: { percent: 25 }\n");
  constexpr int n = 400;
  std::uint64_t sent = 0;
  std::vector<std::uint64_t> rounds;
  for (int round = 0; round < 3; ++round) {
    const auto before = mirrored(sent);
    const auto t = send_requests(p.port(), n, 2, get_r);
    ASSERT_EQ(t.ok, t.sent) << t.first_failures();
    sent += n;
    const auto after = settle(sent);
    rounds.push_back(after.total() - before.total());
  }
  EXPECT_GT(rounds[0], 0u);
  EXPECT_EQ(rounds[1], rounds[0]) << "the same " << n << " targets, another share mirrored";
  EXPECT_EQ(rounds[2], rounds[0]) << "the same " << n << " targets, another share mirrored";
  // One target repeated: all of its requests or none.
  for (const char* target : {"/one", "/two", "/three", "/four"}) {
    const auto before = mirrored(sent);
    const auto t = send_requests(p.port(), 40, 1, [&](int) { return get_request(target); });
    ASSERT_EQ(t.ok, t.sent) << t.first_failures();
    sent += 40;
    const auto got = settle(sent).total() - before.total();
    EXPECT_TRUE(got == 0 || got == 40) << target << ": " << got << " of 40 mirrored";
  }
}

// Shadows are not client requests: not in the access log, not in the request figures the
// watchdog reads (bgproxy_requests_total, the duration histogram), green stays at 0 there.
TEST_F(Shadow, ShadowsStayOutOfTheAccessLogAndTheRequestFigures) {
  const std::string log = (dir_ / "access.log").string();
  Proxy& p = start("shadow: { percent: 100 }\n", std::nullopt, [&](ProxyConfig& c) { c.access_log = log; });
  constexpr int n = 50;
  const auto t = send_requests(p.port(), n, 1, [](int i) { return get_request("/logged/" + std::to_string(i)); });
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const Mirrored m = settle(n, n);
  ASSERT_EQ(m.total(), static_cast<std::uint64_t>(n));
  auto lines_of = [&] {
    std::vector<std::string> lines;
    const std::string text = read_file(log);
    std::size_t at = 0;
    while (at < text.size()) {
      const auto nl = text.find('\n', at);
      if (nl == std::string::npos) break;
      lines.push_back(text.substr(at, nl - at));
      at = nl + 1;
    }
    return lines;
  };
  const auto deadline = Clock::now() + Ms(3000);
  auto lines = lines_of();
  while (lines.size() < static_cast<std::size_t>(n) && Clock::now() < deadline) {
    std::this_thread::sleep_for(Ms(50));
    lines = lines_of();
  }
  std::size_t logged = 0;
  for (const auto& line : lines) {
    if (!contains(line, "/logged/")) continue;
    ++logged;
    EXPECT_TRUE(contains(line, " app blue ")) << line;
    EXPECT_FALSE(contains(line, " green ")) << line;
  }
  EXPECT_EQ(logged, static_cast<std::size_t>(n)) << read_file(log);
  const std::string text = p.metrics();
  EXPECT_EQ(metric_value(text, "bgproxy_requests_total", {{"service", "app"}, {"color", "blue"}}), n) << text;
  EXPECT_EQ(metric_value(text, "bgproxy_requests_total", {{"service", "app"}, {"color", "green"}}).value_or(0), 0)
      << text;
  EXPECT_EQ(metric_value(text, "bgproxy_request_duration_seconds_count", {{"service", "app"}, {"color", "green"}})
                .value_or(0),
            0)
      << text;
}

// ---------------------------------------------------------------------------------------------
// The copy is the client's request (method, target, body) with X-Bg-Shadow: 1; the client's own
// request does not carry it.

TEST_F(Shadow, TheCopyIsTheRequestWithTheShadowMarker) {
  RecordingBackend green;
  Proxy& p = start("shadow: { percent: 100, methods: [POST] }\n", green.address());
  std::string why;
  const auto r = round_trip(p.port(), request_with_body("POST", "/orders/7?x=1", "payload-7", "X-Test: yes\r\n"),
                            Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->status, 200);
  const Echo e = parse_echo(r->body);
  EXPECT_EQ(e.name, "blue");
  EXPECT_FALSE(e.has("x-bg-shadow")) << r->body;
  ASSERT_TRUE(green.wait_requests(1, Ms(3000))) << "no copy reached green: " << green.transcript();
  const auto got = green.requests();
  ASSERT_EQ(got.size(), 1u) << green.transcript();
  const RecordedRequest& copy = got[0];
  EXPECT_EQ(copy.error, "");
  EXPECT_EQ(copy.method, "POST");
  EXPECT_EQ(copy.target, "/orders/7?x=1");
  EXPECT_EQ(copy.body, "payload-7");
  EXPECT_EQ(copy.values("x-bg-shadow"), std::vector<std::string>{"1"}) << printable(copy.raw);
  EXPECT_EQ(copy.value("x-test").value_or(""), "yes") << printable(copy.raw);
  EXPECT_EQ(copy.value("host").value_or(""), e.value("host").value_or("?")) << printable(copy.raw);
}

// An interim 103 before the copy's answer is skipped as the client's side skips it: the answer
// compared is the 200 after it, and the connection goes back to the pool with nothing unread
// (else the next copy on it would read the previous copy's 200 as its own).
TEST_F(Shadow, AnInterimAnswerOfTheCopyIsSkipped) {
  RecordingBackend green;
  green.set_script([](const RecordedRequest& r) -> std::optional<Reply> {
    const std::string body = "copy of " + r.target;
    return Reply{"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body};
  });
  Proxy& p = start("shadow: { percent: 100, compare: { body: false } }\n", green.address());
  constexpr int n = 20;
  const auto t = send_requests(p.port(), n, 1, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  ASSERT_TRUE(green.wait_requests(n * 9 / 10, Ms(3000))) << green.transcript();
  const auto svc = wait_report(
      [&](const json::object& s) { return requests_of(s, "green", "compared") >= static_cast<double>(green.requests().size()); },
      "every copy at green compared");
  ASSERT_TRUE(svc);
  EXPECT_EQ(requests_of(*svc, "green", "failed"), 0.0) << json::serialize(*svc);
  const auto status = field_of(*svc, "status");
  ASSERT_TRUE(status) << json::serialize(*svc);
  EXPECT_EQ(status->at("differing").to_number<double>(), 0.0) << json::serialize(*svc);
  // Copies shared pooled connections, each read to its end.
  EXPECT_LT(green.connections(), green.requests().size()) << green.transcript();
  for (const auto& r : green.requests()) EXPECT_EQ(r.error, "") << printable(r.raw);
}

// ---------------------------------------------------------------------------------------------
// 2. With the default methods (GET, HEAD) nothing else is mirrored, even at 100 %.

TEST_F(Shadow, PostAndOtherMethodsAreNeverMirroredByDefault) {
  Proxy& p = start("shadow: { percent: 100 }\n");
  constexpr int rounds = 40;
  const char* methods[] = {"POST", "PUT", "DELETE", "PATCH", "GET", "HEAD"};
  constexpr int per_round = 6;
  const auto t = send_requests(p.port(), rounds * per_round, 1, [&](int i) {
    const std::string method = methods[i % per_round];
    const std::string target = "/m/" + std::to_string(i);
    if (method == "GET" || method == "HEAD") return method + " " + target + " HTTP/1.1\r\nHost: app.test\r\n\r\n";
    return request_with_body(method, target, "body-" + std::to_string(i));
  });
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  // Every GET and HEAD is mirrored (100 %), nothing else.
  const std::uint64_t expected = 2 * rounds;
  const Mirrored m = settle(t.sent, expected);
  EXPECT_EQ(m.total(), expected) << "green " << m.green << ", blue " << m.blue << " beyond the clients' "
                                 << t.sent;
  const auto svc = wait_report([&](const json::object& s) { return sum_requests(s, "compared") >= expected; },
                               "compared = " + std::to_string(expected));
  if (svc) {
    EXPECT_EQ(sum_requests(*svc, "compared"), static_cast<double>(expected)) << json::serialize(*svc);
    EXPECT_EQ(sum_requests(*svc, "skipped"), 0.0) << "a method not listed is not even eligible: "
                                                  << json::serialize(*svc);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. A body over max_body_bytes (or chunked) is not mirrored; one within it is, body and all.

TEST_F(Shadow, BodiesOverTheCapAreNotMirrored) {
  Proxy& p = start("shadow: { percent: 100, methods: [GET, POST], max_body_bytes: 1024, compare: { " + kIgnoreNoise +
                   " } }\n");
  constexpr int rounds = 30;
  // Per round: 2,000 bytes (over), 1,000 bytes (under), exactly 1,024 (at the cap), chunked.
  const auto t = send_requests(p.port(), rounds * 4, 1, [](int i) {
    const std::string target = "/b/" + std::to_string(i);
    switch (i % 4) {
      case 0: return request_with_body("POST", target, pattern_bytes(0, 2000));
      case 1: return request_with_body("POST", target, pattern_bytes(0, 1000));
      case 2: return request_with_body("POST", target, pattern_bytes(0, 1024));
      default:
        return "POST " + target + " HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    }
  });
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const std::uint64_t expected = 2 * rounds;  // the 1,000- and 1,024-byte ones
  const Mirrored m = settle(t.sent, expected);
  EXPECT_EQ(m.total(), expected) << "green " << m.green << ", blue " << m.blue;

  const auto svc = wait_report(
      [&](const json::object& s) {
        return sum_requests(s, "compared") >= expected && sum_requests(s, "skipped") >= 2 * rounds;
      },
      "compared " + std::to_string(expected) + " and skipped " + std::to_string(2 * rounds));
  if (svc) {
    EXPECT_EQ(sum_requests(*svc, "compared"), static_cast<double>(expected)) << json::serialize(*svc);
    // Over the cap and chunked: eligible by method and share, skipped.
    EXPECT_EQ(requests_of(*svc, "green", "skipped"), 2.0 * rounds) << json::serialize(*svc);
    // The copies carried the same bodies: no field differs (the echo's body_fnv1a, body_bytes).
    EXPECT_EQ(strings_of(svc->at("reported_fields")), std::vector<std::string>{}) << json::serialize(*svc);
    if (const auto f = field_of(*svc, "$.body_fnv1a")) {
      EXPECT_EQ(f->at("differing").to_number<double>(), 0.0) << json::serialize(*f);
    } else {
      ADD_FAILURE() << "no $.body_fnv1a field compared: " << json::serialize(*svc);
    }
  }
  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_shadow_requests_total",
                         {{"service", "app"}, {"color", "green"}, {"result", "skipped"}}),
            2.0 * rounds);
}

// ---------------------------------------------------------------------------------------------
// 4. A shadow color that hangs, refuses, closes without an answer or answers 500 changes nothing
//    for clients: every request is answered 200 by blue, and the latency of primaries stays that
//    of a proxy without shadows (measured in the same test, interleaved, against the same blue).

class ShadowFailing : public Shadow {
 protected:
  /// Starts the shadowing proxy (index 0) toward `green_address` (empty: the demo green) and a
  /// baseline proxy without shadows (index 1), sends `pairs` GETs through each, interleaved on
  /// two keep-alive connections, and checks the clients saw nothing of the shadows.
  void run(const std::optional<std::string>& green_address, int max_in_flight, int pairs = 200,
           const std::function<void()>& before = nullptr) {
    start("shadow: { percent: 100, max_in_flight: " + std::to_string(max_in_flight) + ", compare: { " +
              kIgnoreNoise + " } }\n",
          green_address);
    if (before) before();
    ProxyConfig base = cfg_;
    base.service_extra = "";
    Proxy& baseline = start_proxy(base);
    std::optional<Client> a(std::in_place, proxy_->port());
    std::optional<Client> b(std::in_place, baseline.port());
    std::vector<double> shadowed_ms;
    std::vector<double> baseline_ms;
    std::size_t failures = 0;
    std::string first;
    auto one = [&](std::optional<Client>& c, std::uint16_t port, int i, std::vector<double>& into) {
      const auto t0 = Clock::now();
      std::string why;
      if (!c) c = Client::try_connect(port, Ms(2000));
      if (!c) {
        why = "connect failed";
      } else if (!c->try_send(get_r(i), Ms(3000))) {
        why = "send: " + c->last_error();
      } else if (auto r = c->read_response(Ms(5000)); !r) {
        why = "read: " + c->last_error();
      } else if (r->status != 200) {
        why = "status " + std::to_string(r->status);
      } else {
        try {
          if (const Echo e = parse_echo(r->body); e.name != "blue") why = "answered by " + e.name;
        } catch (const std::exception& ex) {
          why = std::string("not an echo: ") + ex.what();
        }
      }
      into.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!why.empty()) {
        if (failures++ == 0) first = "request " + std::to_string(i) + " on port " + std::to_string(port) + ": " + why;
        c.reset();
      }
    };
    for (int i = 0; i < pairs; ++i) {
      one(b, baseline.port(), i, baseline_ms);
      one(a, proxy_->port(), i, shadowed_ms);
    }
    client_requests_ = 2 * static_cast<std::uint64_t>(pairs);  // both proxies' requests reach blue
    EXPECT_EQ(failures, 0u) << first;
    const double p50 = percentile(shadowed_ms, 0.5);
    const double p50_base = percentile(baseline_ms, 0.5);
    const double p99 = percentile(shadowed_ms, 0.99);
    const double p99_base = percentile(baseline_ms, 0.99);
    const double worst = percentile(shadowed_ms, 1.0);
    std::cout << "[ shadow ] p50 " << p50 << " ms (baseline " << p50_base << "), p99 " << p99 << " ms (baseline "
              << p99_base << "), max " << worst << " ms\n";
    EXPECT_LE(p50, 2 * p50_base + 2.0) << "primaries slower with a failing shadow color";
    EXPECT_LE(p99, 3 * p99_base + 20.0) << "primaries slower with a failing shadow color";
    EXPECT_LT(worst, 1000.0) << "a primary waited for its shadow";
  }

  std::uint64_t client_requests_ = 0;
};

TEST_F(ShadowFailing, AHangingShadowColorChangesNothingForClientsAndDropsBeyondMaxInFlight) {
  run(std::nullopt, 4, 200, [this] { green_->knobs("latency_ms=20000"); });
  // Green holds at most max_in_flight copies per worker (2 workers); the rest are dropped.
  const auto seen = green_->stats().requests;
  EXPECT_GE(seen, 1u);
  EXPECT_LE(seen, 8u) << "more copies reached a hanging green than max_in_flight allows";
  const auto svc = wait_report([](const json::object& s) { return sum_requests(s, "dropped") >= 150; },
                               "dropped >= 150");
  if (svc) {
    EXPECT_EQ(sum_requests(*svc, "failed"), 0.0) << "nothing timed out yet: " << json::serialize(*svc);
    EXPECT_EQ(requests_of(*svc, "green", "compared"), 0.0) << json::serialize(*svc);
  }
  const auto dropped = proxy_->wait_metric("bgproxy_shadow_requests_total",
                                           {{"service", "app"}, {"color", "green"}, {"result", "dropped"}},
                                           [](double v) { return v >= 100; });
  EXPECT_TRUE(dropped && *dropped >= 100) << proxy_->metrics();
}

TEST_F(ShadowFailing, ARefusingShadowColorChangesNothingForClientsAndCountsFailures) {
  run("127.0.0.1:" + std::to_string(refused_port()), 64);
  // 9 of 10 copies went to green and failed; the noise-floor pairs (blue) were compared.
  const auto svc = wait_report([](const json::object& s) { return requests_of(s, "green", "failed") >= 150; },
                               "green failed >= 150");
  if (svc) {
    EXPECT_EQ(requests_of(*svc, "green", "compared"), 0.0) << json::serialize(*svc);
    EXPECT_GE(requests_of(*svc, "blue", "compared"), 10.0) << json::serialize(*svc);
    EXPECT_EQ(requests_of(*svc, "green", "failed") + requests_of(*svc, "blue", "compared") +
                  sum_requests(*svc, "dropped") + requests_of(*svc, "green", "skipped"),
              200.0)
        << json::serialize(*svc);
  }
  const auto failed = proxy_->wait_metric("bgproxy_shadow_requests_total",
                                          {{"service", "app"}, {"color", "green"}, {"result", "failed"}},
                                          [](double v) { return v >= 150; });
  EXPECT_TRUE(failed && *failed >= 150) << proxy_->metrics();
}

TEST_F(ShadowFailing, AShadowColorClosingWithoutAnAnswerChangesNothingForClientsAndCountsFailures) {
  RecordingBackend green;
  green.set_script([](const RecordedRequest&) { return Reply{"", Reply::Then::close}; });
  run(green.address(), 64);
  const auto svc = wait_report([](const json::object& s) { return requests_of(s, "green", "failed") >= 150; },
                               "green failed >= 150");
  if (svc) {
    EXPECT_EQ(requests_of(*svc, "green", "compared"), 0.0) << json::serialize(*svc);
  }
  EXPECT_GE(green.requests().size(), 150u) << "the copies reached the closing green";
}

TEST_F(ShadowFailing, AShadowColorAnswering500ChangesNothingForClientsAndIsReportedAsAStatusDifference) {
  run(std::nullopt, 64, 200, [this] { green_->knobs("status=500"); });
  const Mirrored m = settle(client_requests_, 200);
  EXPECT_EQ(m.total(), 200u) << "green " << m.green << ", blue " << m.blue;
  const auto svc = wait_report(
      [&](const json::object& s) { return requests_of(s, "green", "compared") >= static_cast<double>(m.green); },
      "green compared = " + std::to_string(m.green));
  if (svc) {
    EXPECT_EQ(strings_of(svc->at("reported_fields")), std::vector<std::string>{"status"}) << json::serialize(*svc);
    EXPECT_DOUBLE_EQ(svc->at("mismatch_rate").to_number<double>(), 1.0) << json::serialize(*svc);
    bool sample = false;
    for (const auto& s : svc->at("samples").as_array()) {
      if (s.at("field") == "status" && s.at("primary") == "200" && s.at("shadow") == "500") sample = true;
    }
    EXPECT_TRUE(sample) << "no status sample 200 vs 500: " << json::serialize(*svc);
  }
  const auto v = proxy_->wait_metric("bgproxy_shadow_mismatches_total", {{"service", "app"}, {"field", "status"}},
                                     [&](double x) { return x >= static_cast<double>(m.green); });
  EXPECT_EQ(v, static_cast<double>(m.green)) << proxy_->metrics();
}

// A graceful shutdown waits for clients, not for copies whose answers would be thrown away.
TEST_F(ShadowFailing, ShutdownDoesNotWaitForHangingShadows) {
  start("shadow: { percent: 100 }\n", std::nullopt, [](ProxyConfig& c) { c.shutdown = "10s"; });
  green_->knobs("latency_ms=20000");
  const auto t = send_requests(proxy_->port(), 20, 1, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const auto deadline = Clock::now() + Ms(3000);
  while (green_->stats().requests == 0 && Clock::now() < deadline) std::this_thread::sleep_for(Ms(20));
  ASSERT_GT(green_->stats().requests, 0u) << "no copy is hanging at green";
  const auto t0 = Clock::now();
  proxy_->process().signal(SIGTERM);
  const auto code = proxy_->process().wait_exit(Ms(8000));
  const auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  ASSERT_TRUE(code) << "bgproxy still running 8 s after SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(took, 2000) << "shutdown waited " << took << " ms for shadows nobody waits for";
}

// ---------------------------------------------------------------------------------------------
// 5. A field that differs between the colors is reported; fields that differ between two answers
//    of one color as well (connection_id, request_on_connection) are not.

TEST_F(Shadow, OnlyTheFieldThatDiffersBetweenColorsIsReported) {
  // name differs blue/green by design and the headers by X-Bg-Shadow. connection_id is left in: it
  // differs in same-color pairs too, and the noise floor must keep it out.
  // request_on_connection is ignored: green sees only copies and blue every request, so those
  // counts really do drift apart more between colors than within blue, by as much as the run's
  // interleaving makes them (a real, if uninteresting, difference the report may name).
  Proxy& p = start(
      "shadow: { percent: 100, compare: { ignore: [\"$.name\", \"$.headers\", \"$.request_on_connection\"] } }\n");
  blue_->knobs("app_version=1");
  green_->knobs("app_version=2");
  constexpr int n = 400;
  const auto t = send_requests(p.port(), n, 2, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const Mirrored m = settle(n, n);
  ASSERT_EQ(m.total(), static_cast<std::uint64_t>(n)) << "green " << m.green << ", blue " << m.blue;
  const auto svc = wait_report(
      [&](const json::object& s) { return sum_requests(s, "compared") >= static_cast<double>(m.total()); },
      "compared = " + std::to_string(m.total()));
  ASSERT_TRUE(svc);
  const std::string all = json::serialize(*svc);
  EXPECT_EQ(strings_of(svc->at("reported_fields")), std::vector<std::string>{"$.app_version"}) << all;
  EXPECT_DOUBLE_EQ(svc->at("mismatch_rate").to_number<double>(), 1.0) << all;
  EXPECT_EQ(svc->at("pairs").to_number<double>(), static_cast<double>(m.green)) << all;

  const auto version = field_of(*svc, "$.app_version");
  ASSERT_TRUE(version) << all;
  EXPECT_EQ(version->at("compared").to_number<double>(), static_cast<double>(m.green)) << all;
  EXPECT_EQ(version->at("differing").to_number<double>(), static_cast<double>(m.green)) << all;
  EXPECT_EQ(version->at("noise_compared").to_number<double>(), static_cast<double>(m.blue)) << all;
  EXPECT_EQ(version->at("noise_differing").to_number<double>(), 0.0) << all;
  EXPECT_TRUE(version->at("reported").as_bool()) << all;
  const auto connection = field_of(*svc, "$.connection_id");
  ASSERT_TRUE(connection) << "$.connection_id not compared: " << all;
  EXPECT_FALSE(connection->at("reported").as_bool()) << json::serialize(*connection);
  EXPECT_GT(connection->at("differing").to_number<double>(), 0.0) << json::serialize(*connection);
  EXPECT_GT(connection->at("noise_compared").to_number<double>(), 0.0) << json::serialize(*connection);
  EXPECT_GT(connection->at("noise_differing").to_number<double>(), 0.0) << json::serialize(*connection);
  for (const char* same : {"$.method", "$.target", "$.body_fnv1a", "status", "header:content-type"}) {
    const auto f = field_of(*svc, same);
    ASSERT_TRUE(f) << same << " not compared: " << all;
    EXPECT_EQ(f->at("differing").to_number<double>(), 0.0) << same << ": " << json::serialize(*f);
  }
  EXPECT_FALSE(field_of(*svc, "$.name")) << "an ignored path was compared: " << all;
  EXPECT_FALSE(field_of(*svc, "$.request_on_connection")) << "an ignored path was compared: " << all;
  bool sample = false;
  for (const auto& s : svc->at("samples").as_array()) {
    EXPECT_TRUE(contains(std::string(s.at("path").as_string()), "/r/")) << json::serialize(s);
    if (s.at("field") == "$.app_version" && s.at("primary") == "1" && s.at("shadow") == "2") sample = true;
  }
  EXPECT_TRUE(sample) << "no sample $.app_version 1 vs 2: " << all;
  const json::value latency = svc->at("latency");
  EXPECT_EQ(latency.at("pairs").to_number<double>(), static_cast<double>(m.green)) << all;
  EXPECT_FALSE(latency.at("verdict").as_string().empty()) << all;

  // -s selects the service; the human table names the field.
  const auto by_name = bgctl({"--json", "shadow", "-s", "app"});
  EXPECT_EQ(by_name.exit_code, 0) << by_name.err;
  const auto unknown = bgctl({"--json", "shadow", "-s", "nope"});
  EXPECT_NE(unknown.exit_code, 0) << unknown.out;
  const auto table = bgctl({"shadow"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(contains(table.out, "app")) << table.out;
  EXPECT_TRUE(contains(table.out, "$.app_version")) << table.out;

  // status carries the summary.
  const json::object st = status();
  ASSERT_TRUE(st.contains("shadow")) << json::serialize(st);
  const json::value sh = st.at("shadow");
  EXPECT_EQ(sh.at("percent").to_number<double>(), 100.0) << json::serialize(sh);
  EXPECT_EQ(sh.at("color"), "green") << json::serialize(sh);
  EXPECT_EQ(sh.at("pairs").to_number<double>(), static_cast<double>(m.green)) << json::serialize(sh);
  EXPECT_DOUBLE_EQ(sh.at("mismatch_rate").to_number<double>(), 1.0) << json::serialize(sh);
  EXPECT_EQ(strings_of(sh.at("reported_fields")), std::vector<std::string>{"$.app_version"}) << json::serialize(sh);
  EXPECT_TRUE(sh.at("latency").is_string()) << json::serialize(sh);

  // The metric counts the cross-color differences of the field, and none of the noisy ones'.
  const std::string text = p.metrics();
  EXPECT_EQ(metric_value(text, "bgproxy_shadow_mismatches_total", {{"service", "app"}, {"field", "$.app_version"}}),
            static_cast<double>(m.green))
      << text;
}

// Identical answers compare equal however they are framed: a chunked JSON echo (the client's
// copy is relayed with its chunk framing), a chunked 100 KB body, and a 300 KB body longer than
// what is kept for comparison (both sides cut at the same length).
TEST_F(Shadow, IdenticalAnswersCompareEqualWhateverTheirFramingAndLength) {
  Proxy& p = start("shadow: { percent: 100, compare: { " + kIgnoreNoise + " } }\n");
  constexpr int n = 60;
  const auto t = send_requests(p.port(), n, 2, [](int i) {
    const std::string k = std::to_string(i);
    switch (i % 3) {
      case 0: return get_request("/chunked/" + k + "?chunked=1&chunk_bytes=7");
      case 1: return get_request("/pattern/" + k + "?body_bytes=100000&chunked=1");
      default: return get_request("/large/" + k + "?body_bytes=300000");
    }
  });
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const Mirrored m = settle(n, n);
  ASSERT_EQ(m.total(), static_cast<std::uint64_t>(n));
  const auto svc = wait_report([&](const json::object& s) { return sum_requests(s, "compared") >= n; },
                               "compared = " + std::to_string(n));
  ASSERT_TRUE(svc);
  const std::string all = json::serialize(*svc);
  EXPECT_EQ(sum_requests(*svc, "compared"), static_cast<double>(n)) << all;
  EXPECT_EQ(strings_of(svc->at("reported_fields")), std::vector<std::string>{}) << all;
  for (const auto& f : svc->at("fields").as_array()) {
    EXPECT_EQ(f.at("differing").to_number<double>(), 0.0) << json::serialize(f);
    EXPECT_EQ(f.at("noise_differing").to_number<double>(), 0.0) << json::serialize(f);
  }
  EXPECT_EQ(svc->at("samples").as_array().size(), 0u) << all;
  const std::string text = p.metrics();
  EXPECT_EQ(metric_value(text, "bgproxy_shadow_mismatches_total", {{"service", "app"}}).value_or(0), 0) << text;
}

// HTTP/2 clients' streams go through the same exchange as HTTP/1.1 requests: mirrored alike.
TEST_F(Shadow, RequestsOfHttp2ClientsAreMirroredAlike) {
  Proxy& p = start("shadow: { percent: 100, compare: { " + kIgnoreNoise + " } }\n", std::nullopt,
                   [](ProxyConfig& c) { c.protocols = "[http/1.1, h2c]"; });
  constexpr int n = 40;
  std::vector<std::string> argv{"/usr/bin/nghttp", "-v", "-t", "10"};
  for (int i = 0; i < n; ++i) argv.push_back("http://127.0.0.1:" + std::to_string(p.port()) + "/h2/" + std::to_string(i));
  const auto r = run_command(argv, dir_.path(), Ms(20000));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::size_t answered = 0;
  for (std::size_t at = r.out.find(":status: 200"); at != std::string::npos; at = r.out.find(":status: 200", at + 1))
    ++answered;
  EXPECT_EQ(answered, static_cast<std::size_t>(n)) << r.out;
  const Mirrored m = settle(n, n);
  EXPECT_EQ(m.total(), static_cast<std::uint64_t>(n));
  const auto svc = wait_report([&](const json::object& s) { return sum_requests(s, "compared") >= n; },
                               "compared = " + std::to_string(n));
  ASSERT_TRUE(svc);
  EXPECT_EQ(sum_requests(*svc, "compared"), static_cast<double>(n)) << json::serialize(*svc);
  EXPECT_EQ(svc->at("mismatch_rate").to_number<double>(), 0.0) << json::serialize(*svc);
}

// ---------------------------------------------------------------------------------------------
// 6. The gate: above watchdog.max_shadow_mismatch_rate, `canary start` and `release` toward the
//    shadow color are refused with the figures; `--force` starts the canary. Within it, they go.

TEST_F(Shadow, GateRefusesCanaryStartAboveTheMismatchRateUnlessForced) {
  Proxy& p = start("shadow: { percent: 100, compare: { " + kIgnoreNoise +
                   " } }\n"
                   "watchdog: { max_shadow_mismatch_rate: 0.05 }\n");
  green_->knobs("app_version=2");
  const auto t = send_requests(p.port(), 100, 2, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const auto svc = wait_report(
      [](const json::object& s) { return s.at("mismatch_rate").to_number<double>() > 0.05; }, "mismatch_rate > 0.05");
  ASSERT_TRUE(svc);

  auto r = bgctl({"canary", "start"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out + r.err, "shadow mismatch rate")) << r.out << r.err;
  EXPECT_EQ(status().at("weights").at("green").to_number<double>(), 0.0);
  EXPECT_EQ(status().at("phase"), "idle");

  r = bgctl({"release", "--steps", "10,100", "--interval", "1h"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out + r.err, "shadow mismatch rate")) << r.out << r.err;
  EXPECT_EQ(status().at("weights").at("green").to_number<double>(), 0.0);

  r = bgctl({"canary", "start", "--force", "--steps", "10,100", "--interval", "1h"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const json::object st = status();
  EXPECT_EQ(st.at("phase"), "canary") << json::serialize(st);
  EXPECT_EQ(st.at("weights").at("green").to_number<double>(), 10.0) << json::serialize(st);
}

TEST_F(Shadow, GateLetsCanaryStartWithinTheMismatchRate) {
  Proxy& p = start("shadow: { percent: 100, compare: { " + kIgnoreNoise +
                   " } }\n"
                   "watchdog: { max_shadow_mismatch_rate: 0.05 }\n");
  const auto t = send_requests(p.port(), 100, 2, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const auto svc = wait_report([](const json::object& s) { return s.at("pairs").to_number<double>() >= 80; },
                               "pairs >= 80");
  ASSERT_TRUE(svc);
  EXPECT_EQ(svc->at("mismatch_rate").to_number<double>(), 0.0) << json::serialize(*svc);
  const auto r = bgctl({"canary", "start", "--steps", "10,100", "--interval", "1h"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(status().at("phase"), "canary");
}

// ---------------------------------------------------------------------------------------------
// 7. Memory stays bounded with max_in_flight saturated: green hangs, 3,000 more requests from 4
//    clients, every copy beyond max_in_flight dropped, the proxy's RSS within 16 MiB.

TEST_F(Shadow, MemoryStaysBoundedWithMaxInFlightSaturated) {
  Proxy& p = start("shadow: { percent: 100, max_in_flight: 4 }\n");
  green_->knobs("latency_ms=60000");
  constexpr int warmup = 300;
  constexpr int n = 3000;
  auto t = send_requests(p.port(), warmup, 4, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const auto before = proc_status_kb(p.pid(), "VmRSS");
  ASSERT_TRUE(before);
  t = send_requests(p.port(), n, 4, [](int i) { return get_r(warmup + i); });
  EXPECT_EQ(t.ok, t.sent) << t.first_failures();
  const auto after = proc_status_kb(p.pid(), "VmRSS");
  ASSERT_TRUE(after);
  const long bound_kb = sanitized_build() ? 64 * 1024 : 16 * 1024;
  std::cout << "[ shadow ] VmRSS " << *before << " KiB -> " << *after << " KiB after " << n << " requests\n";
  EXPECT_LT(*after - *before, bound_kb) << "VmRSS " << *before << " KiB -> " << *after << " KiB";
  // At most max_in_flight copies per worker (2 workers) ever reached the hanging green.
  EXPECT_LE(green_->stats().requests, 8u);
  const auto svc = wait_report([](const json::object& s) { return sum_requests(s, "dropped") >= warmup + n - 8; },
                               "dropped >= " + std::to_string(warmup + n - 8));
  if (svc) {
    EXPECT_EQ(sum_requests(*svc, "failed") + sum_requests(*svc, "compared"), 0.0) << json::serialize(*svc);
  }
}

// ---------------------------------------------------------------------------------------------
// Reload: shadow.percent changed in the file and `bgctl reload` changes the share, no restart.

TEST_F(Shadow, ReloadChangesTheShareWithoutARestart) {
  Proxy& p = start("shadow: { percent: 50, compare: { " + kIgnoreNoise + " } }\n");
  const pid_t pid = p.pid();
  constexpr int n = 1000;
  auto t = send_requests(p.port(), n, 4, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const Mirrored m1 = settle(n);
  EXPECT_NEAR(100.0 * static_cast<double>(m1.total()) / n, 50.0, 5.0) << m1.total() << " of " << n;

  auto reload = [&](const std::string& percent) {
    cfg_.service_extra = "shadow: { percent: " + percent + ", compare: { " + kIgnoreNoise + " } }\n";
    write_file(p.config_path(), render_config(cfg_, dir_.path(), 0));
    const auto r = bgctl({"reload"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_TRUE(contains(r.out, "configuration reloaded")) << r.out;
  };
  reload("10");
  const std::uint64_t blue_before = blue_->stats().requests;
  const std::uint64_t green_before = green_->stats().requests;
  t = send_requests(p.port(), n, 4, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const Mirrored m2all = settle(blue_before + n);
  const std::uint64_t m2 = m2all.green - green_before + m2all.blue;
  EXPECT_NEAR(100.0 * static_cast<double>(m2) / n, 10.0, 3.0) << m2 << " of " << n << " after the reload to 10";
  // The counts start again with the new shadow config.
  const auto svc = wait_report(
      [&](const json::object& s) {
        return s.at("percent").to_number<double>() == 10.0 && sum_requests(s, "compared") >= static_cast<double>(m2);
      },
      "percent 10 and the copies since the reload compared");
  if (svc) {
    EXPECT_EQ(sum_requests(*svc, "compared"), static_cast<double>(m2)) << json::serialize(*svc);
  }

  reload("0");
  const std::uint64_t blue_before3 = blue_->stats().requests;
  const std::uint64_t green_before3 = green_->stats().requests;
  t = send_requests(p.port(), 300, 4, get_r);
  ASSERT_EQ(t.ok, t.sent) << t.first_failures();
  const Mirrored m3 = settle(blue_before3 + 300);
  EXPECT_EQ(m3.green - green_before3 + m3.blue, 0u) << "copies after shadow.percent 0";
  EXPECT_EQ(p.pid(), pid);
  EXPECT_TRUE(p.process().running());
}

}  // namespace
}  // namespace bgtest
