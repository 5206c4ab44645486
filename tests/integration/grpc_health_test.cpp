// Issue 15, SPEC §13 and §5: active health checks that speak the color's protocol.
//
// The servers are grpc_echo_server.py under /usr/bin/python3 (Debian's python3-grpcio; a pyenv
// python3 earlier on PATH has no grpc) with `--health FILE`: real grpcio serving
// grpc.health.v1.Health/Check from raw bytes, its answer read from FILE at every check, so a test
// flips a server between SERVING and NOT_SERVING by rewriting the file. With `--raw-fault none`
// the same script is a Python h2 server answering `GET /health` (200 when SERVING, else 503).
//
//   1. `protocol: grpc` over h2c: SERVING ↔ NOT_SERVING drives `bgctl health`, bgproxy_server_up,
//      the routing (a NOT_SERVING green gets no call, its calls fail over to blue) and the
//      refusal of `bgctl switch green`;
//   2. why a grpc check fails, as `bgctl health` tells it: UNIMPLEMENTED (no health service),
//      NOT_FOUND (unknown service name), UNKNOWN, SERVICE_UNKNOWN, a timeout, a refused connect;
//      and the request carries the configured service name and a grpc-timeout;
//   3. `protocol: http` over h2c: GET path with :authority = the service's host, one connection
//      kept between checks, a 503 taking the server down;
//   4. over TLS (`protocol: h2`): the color's TLS settings and ALPN h2, and a TLS server that does
//      not choose h2 is down for saying so.
//
// Every wait is bounded and synchronised on an event: a READY line, a `bgctl --json health`
// answer, a metric, a server's HEALTH-* line.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "recording_backend.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Labels = std::map<std::string, std::string>;

const char* bgctl_bin() { return BGCTL_BIN; }
constexpr const char* kPython = "/usr/bin/python3";

/// grpc_echo_server.py and grpc_client.py live next to h2_client.py (tests/integration/).
std::string script(const char* name) { return (fs::path(BG_H2_CLIENT_PY).parent_path() / name).string(); }

/// run_command() execs without a PATH search.
std::string which(const std::string& name) {
  const char* env = std::getenv("PATH");
  const std::string dirs = env ? env : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    auto colon = dirs.find(':', start);
    if (colon == std::string::npos) colon = dirs.size();
    const fs::path candidate = fs::path(dirs.substr(start, colon - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = colon + 1;
  }
  return name;
}

/// A grpc_echo_server.py (or, for `raw`, its Python h2 twin) and the health file it answers from.
struct HealthServer {
  std::string name;
  fs::path health_file;
  std::unique_ptr<Process> proc;
  std::uint16_t port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

class GrpcHealthTest : public IntegrationTest {
 protected:
  /// Fast checks: a result every 200 ms, a server down after 2 failures, up after 2 successes.
  static constexpr const char* kTiming = "interval: 200ms, timeout: 100ms, rise: 2, fall: 2";

  void TearDown() override {
    if (HasFailure()) {
      if (proxy_) std::cerr << "----- bgproxy stderr -----\n" << printable(proxy_->stderr_text(), 6000) << "\n";
      for (auto& s : servers_)
        std::cerr << "----- server " << s->name << " stdout/stderr -----\n"
                  << printable(s->proc->stdout_text(), 3000) << "\n"
                  << printable(s->proc->stderr_text(), 3000) << "\n";
    }
    proxy_.reset();
    servers_.clear();
    extra_.clear();
    IntegrationTest::TearDown();
  }

  /// The health file's content: `statuses` as JSON members ("\"\": \"SERVING\""), a delay in ms.
  static std::string health_json(const std::string& statuses, int delay_ms = 0) {
    return "{\"status\": {" + statuses + "}, \"delay_ms\": " + std::to_string(delay_ms) + "}";
  }

  /// Rewritten by rename, so a check never reads half a file.
  void set_health(HealthServer& s, const std::string& content) {
    const fs::path tmp = s.health_file.string() + ".tmp";
    write_file(tmp, content);
    fs::rename(tmp, s.health_file);
  }

  /// Starts grpc_echo_server.py and waits for its READY line. `extra` goes on its command line
  /// (`--raw-fault none`, `--tls CERT KEY`); `health` empty: no health service at all.
  HealthServer& start_server(const std::string& name, const std::string& health,
                             std::vector<std::string> extra = {}) {
    auto s = std::make_unique<HealthServer>();
    s->name = name;
    std::vector<std::string> argv{kPython, script("grpc_echo_server.py"), "--port", "0", "--name", name};
    if (!health.empty()) {
      s->health_file = dir_ / ("health-" + name + ".json");
      set_health(*s, health);
      argv.insert(argv.end(), {"--health", s->health_file.string()});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    s->proc = std::make_unique<Process>(argv, dir_.path(), "grpc-" + name);
    auto m = s->proc->wait_for_line(std::regex(R"(READY port=(\d+))"), Ms(20000), Stream::Stdout);
    if (!m)
      throw std::runtime_error("grpc_echo_server.py " + name + " did not start; stderr:\n" + s->proc->stderr_text());
    s->port = static_cast<std::uint16_t>(std::stoi((*m)[1]));
    servers_.push_back(std::move(s));
    return *servers_.back();
  }

  /// Runs bgproxy with one service `api`: `blue` and `green` are the pools' YAML flow maps,
  /// `health_check` that of the checks. Waits for its ready line.
  void start_proxy(const std::string& blue, const std::string& green, const std::string& health_check,
                   const std::string& host = "*") {
    const std::string yaml = "listen:\n"
                             "  - address: 127.0.0.1:0\n"
                             "    protocols: [http/1.1, h2c]\n"
                             "admin: { address: 127.0.0.1:0 }\n"
                             "control: { socket: " + (dir_ / "control.sock").string() + " }\n"
                             "state_file: " + (dir_ / "state.json").string() + "\n"
                             "threads: 2\n"
                             "timeouts: { shutdown: 5s }\n"
                             "access_log: off\n"
                             "services:\n"
                             "  - name: api\n"
                             "    match: { host: \"" + host + "\" }\n"
                             "    blue: " + blue + "\n"
                             "    green: " + green + "\n"
                             "    watchdog: off\n"
                             "    health_check: " + health_check + "\n";
    const auto path = dir_ / "bgproxy.yaml";
    write_file(path, yaml);
    proxy_ = std::make_unique<Process>(std::vector<std::string>{proxy_bin(), "-c", path.string()}, dir_.path(),
                                       "bgproxy");
    auto m = proxy_->wait_for_line(std::regex(R"(bgproxy ready: listen=127\.0\.0\.1:(\d+) admin=[0-9.]+:(\d+))"),
                                   Ms(10000));
    if (!m) throw std::runtime_error("bgproxy did not become ready; stderr:\n" + proxy_->stderr_text() + "\n" + yaml);
    port_ = static_cast<std::uint16_t>(std::stoi((*m)[1]));
    admin_port_ = static_cast<std::uint16_t>(std::stoi((*m)[2]));
  }

  static std::string h2c_pool(const HealthServer& s) { return "{ servers: [\"" + s.address() + "\"], protocol: h2c }"; }

  CommandResult bgctl(std::vector<std::string> args) {
    std::vector<std::string> argv{bgctl_bin(), "-S", (dir_ / "control.sock").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path(), Ms(10000));
  }

  /// The server of `bgctl --json health` with this address.
  json::object health_of(const std::string& address) {
    auto r = bgctl({"--json", "health"});
    if (r.exit_code != 0) throw std::runtime_error("bgctl --json health: exit " + std::to_string(r.exit_code) + r.err);
    const auto v = json::parse(r.out);
    for (const auto& s : v.at("services").at(0).at("servers").as_array())
      if (s.at("address").as_string() == address) return s.as_object();
    throw std::runtime_error("no server " + address + " in bgctl health: " + r.out);
  }

  static std::string last_error(const json::object& h) {
    const auto* last = h.if_contains("last_check");
    if (last == nullptr || !last->is_object()) return "<no check yet>";
    const auto* e = last->as_object().if_contains("error");
    return e != nullptr && e->is_string() ? std::string(e->as_string()) : std::string();
  }

  /// Polls `bgctl --json health` until the server is in `state` and its last check's error
  /// contains `error` ("" matches any); returns the last answer seen.
  json::object wait_health(const std::string& address, const std::string& state, const std::string& error = "",
                           Ms timeout = Ms(5000)) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      auto h = health_of(address);
      if (h.at("state").as_string() == state && last_error(h).find(error) != std::string::npos) return h;
      if (Clock::now() >= deadline) {
        ADD_FAILURE() << address << " never became " << state << " with an error containing \"" << error
                      << "\"; last: " << json::serialize(h);
        return h;
      }
      std::this_thread::sleep_for(Ms(50));
    }
  }

  std::string metrics() {
    std::string why;
    auto r = round_trip(admin_port_, get_request("/metrics", "Connection: close\r\n", "127.0.0.1"), Ms(3000), &why);
    if (!r || r->status != 200) throw std::runtime_error("GET /metrics failed: " + why);
    return r->body;
  }

  /// Polls /metrics (current to within a second) until the sample is `want`; returns the last value.
  double wait_metric(const std::string& name, const Labels& labels, double want) {
    const auto deadline = Clock::now() + Ms(3000);
    for (;;) {
      const double v = metric_value(metrics(), name, labels).value_or(-1);
      if (v == want || Clock::now() >= deadline) return v;
      std::this_thread::sleep_for(Ms(100));
    }
  }

  /// `n` unary calls on one grpcio channel through the proxy: the server that answered each
  /// (trailing x-server), or "CODE" for a call that failed.
  std::vector<std::string> call_servers(int n) {
    const auto plan = dir_ / ("plan-" + std::to_string(++plans_) + ".json");
    write_file(plan, "{\"timeout\": 10, \"steps\": [{\"op\": \"unary\", \"label\": \"c\", \"n\": " + std::to_string(n) +
                         "}]}");
    auto r = run_command({kPython, script("grpc_client.py"), "--port", std::to_string(port_), "--plan", plan.string()},
                         dir_.path(), Ms(30000));
    if (r.exit_code != 0)
      throw std::runtime_error("grpc_client.py exited " + std::to_string(r.exit_code) + ":\n" + r.out + r.err);
    const auto nl = r.out.rfind("{\"calls\"");
    if (nl == std::string::npos) throw std::runtime_error("grpc_client.py printed no result:\n" + r.out + r.err);
    const auto result = json::parse(r.out.substr(nl));
    std::vector<std::string> out;
    for (const auto& c : result.at("calls").as_array()) {
      const auto code = std::string(c.at("code").as_string());
      out.push_back(code == "OK" ? std::string(c.at("server").as_string()) : code);
    }
    return out;
  }

  static std::string joined(const std::vector<std::string>& v) {
    std::string r;
    for (const auto& s : v) r += (r.empty() ? "" : " ") + s;
    return r;
  }

  std::vector<std::unique_ptr<HealthServer>> servers_;
  std::vector<std::unique_ptr<Process>> extra_;  ///< other processes (openssl s_server)
  std::unique_ptr<Process> proxy_;
  std::uint16_t port_ = 0, admin_port_ = 0;
  int plans_ = 0;
};

const std::string kServing = "\"\": \"SERVING\"";
const std::string kNotServing = "\"\": \"NOT_SERVING\"";

// ---------------------------------------------------------------------------------------------
// 1. SERVING and NOT_SERVING drive health, metrics, routing and the switch refusal

TEST_F(GrpcHealthTest, ServingStatusDrivesHealthRoutingAndSwitching) {
  HealthServer& blue = start_server("blue", health_json(kServing));
  HealthServer& green = start_server("green", health_json(kServing));
  start_proxy(h2c_pool(blue), h2c_pool(green), std::string("{ protocol: grpc, ") + kTiming + " }");
  wait_health(blue.address(), "up");
  auto h = wait_health(green.address(), "up");
  EXPECT_TRUE(h.at("last_check").at("ok").as_bool()) << json::serialize(h);
  EXPECT_EQ(h.at("last_check").at("status").to_number<double>(), 200.0);

  auto r = bgctl({"switch", "green"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(joined(call_servers(4)), "green green green green");

  // NOT_SERVING: down, said why, counted, and green's calls fail over to blue.
  set_health(green, health_json(kNotServing));
  h = wait_health(green.address(), "down", "serving status NOT_SERVING");
  EXPECT_FALSE(h.at("last_check").at("ok").as_bool());
  EXPECT_EQ(h.at("last_check").at("status").to_number<double>(), 200.0) << "the call itself was answered";
  const Labels green_l{{"service", "api"}, {"color", "green"}, {"server", green.address()}};
  EXPECT_EQ(wait_metric("bgproxy_server_up", green_l, 0.0), 0.0);
  auto failures = green_l;
  failures["result"] = "failure";
  EXPECT_GE(metric_value(metrics(), "bgproxy_health_checks_total", failures).value_or(0), 2.0);
  const std::string escaped = std::regex_replace(green.address(), std::regex(R"(\.)"), R"(\.)");
  EXPECT_TRUE(proxy_->wait_for_line(
      std::regex("server green/" + escaped + R"( down: 2 consecutive failures \(serving status NOT_SERVING\))"),
      Ms(1000)))
      << "the log says why";
  EXPECT_EQ(joined(call_servers(4)), "blue blue blue blue");
  const auto text = bgctl({"health"});
  EXPECT_NE(text.out.find("failed 200"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("serving status NOT_SERVING"), std::string::npos) << text.out;

  // A switch toward a color whose only server is NOT_SERVING is refused (SPEC §5).
  ASSERT_EQ(bgctl({"switch", "blue"}).exit_code, 0);
  r = bgctl({"switch", "green"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("no healthy server"), std::string::npos) << r.err;

  // SERVING again: up, and green takes the calls once switched to.
  set_health(green, health_json(kServing));
  wait_health(green.address(), "up");
  EXPECT_EQ(wait_metric("bgproxy_server_up", green_l, 1.0), 1.0);
  r = bgctl({"switch", "green"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(joined(call_servers(4)), "green green green green");
}

// ---------------------------------------------------------------------------------------------
// 2. Every way a grpc check fails, told by bgctl; what the check sends

TEST_F(GrpcHealthTest, FailureReasonsAndTheRequestSent) {
  HealthServer& blue = start_server("blue", "");  // grpcio without any health service
  HealthServer& green = start_server("green", health_json("\"test.Echo\": \"SERVING\""));
  start_proxy(h2c_pool(blue), h2c_pool(green),
              std::string("{ protocol: grpc, service: test.Echo, ") + kTiming + " }");
  auto h = wait_health(green.address(), "up");
  // The request named the service and carried the check's timeout as its deadline.
  auto line = green.proc->wait_for_line(std::regex(R"(HEALTH-CHECK service=(\S*) status=SERVING remaining_ms=(-?\d+))"),
                                        Ms(1000), Stream::Stdout);
  ASSERT_TRUE(line) << green.proc->stdout_text();
  EXPECT_EQ((*line)[1], "test.Echo");
  EXPECT_GT(std::stoi((*line)[2]), 0);
  EXPECT_LE(std::stoi((*line)[2]), 100);

  h = wait_health(blue.address(), "down", "grpc-status 12 UNIMPLEMENTED");
  EXPECT_EQ(h.at("last_check").at("status").to_number<double>(), 200.0);

  set_health(green, health_json(kServing));  // test.Echo no longer known: NOT_FOUND, as grpc's servicer says
  wait_health(green.address(), "down", "grpc-status 5 NOT_FOUND: \"unknown service: 'test.Echo'\"");
  set_health(green, health_json("\"test.Echo\": \"UNKNOWN\""));  // the empty message: status left out
  wait_health(green.address(), "down", "serving status UNKNOWN");
  set_health(green, health_json("\"test.Echo\": \"SERVICE_UNKNOWN\""));
  wait_health(green.address(), "down", "serving status SERVICE_UNKNOWN");
  set_health(green, health_json("\"test.Echo\": \"SERVING\"", 400));
  h = wait_health(green.address(), "down", "timeout after 100ms");
  EXPECT_EQ(h.at("last_check").at("status").to_number<double>(), 0.0);

  // Healthy again over the same kind of connection, then gone altogether.
  set_health(green, health_json("\"test.Echo\": \"SERVING\""));
  wait_health(green.address(), "up");
  green.proc->stop();
  wait_health(green.address(), "down", "connect: Connection refused");
}

// ---------------------------------------------------------------------------------------------
// 3. protocol: http over h2c

TEST_F(GrpcHealthTest, HttpCheckOverH2cGetsThePathAndKeepsItsConnection) {
  HealthServer& blue = start_server("blue", health_json(kServing), {"--raw-fault", "none"});
  start_proxy(h2c_pool(blue), "{ servers: [] }", std::string("{ path: /ready, ") + kTiming + " }", "api.test");
  auto h = wait_health(blue.address(), "up");
  EXPECT_EQ(h.at("last_check").at("status").to_number<double>(), 200.0);

  // Five checks as HTTP/2 GETs with the service's host as :authority, all on one connection.
  const std::regex get(R"(HEALTH-GET path=(\S+) authority=(\S+) conn=(\d+))");
  const auto deadline = Clock::now() + Ms(5000);
  std::vector<std::smatch> gets;
  std::string out;
  for (;;) {
    out = blue.proc->stdout_text();
    gets.assign(std::sregex_iterator(out.begin(), out.end(), get), std::sregex_iterator());
    if (gets.size() >= 5 || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(Ms(50));
  }
  ASSERT_GE(gets.size(), 5u) << out;
  std::set<std::string> connections;
  for (const auto& m : gets) {
    EXPECT_EQ(m[1], "/ready");
    EXPECT_EQ(m[2], "api.test");
    connections.insert(m[3]);
  }
  EXPECT_EQ(connections, std::set<std::string>{"1"}) << out;

  set_health(blue, health_json(kNotServing));
  h = wait_health(blue.address(), "down", "status 503");
  EXPECT_EQ(h.at("last_check").at("status").to_number<double>(), 503.0);
  set_health(blue, health_json(kServing));
  wait_health(blue.address(), "up");
}

// ---------------------------------------------------------------------------------------------
// 4. protocol: h2 (TLS, ALPN h2)

TEST_F(GrpcHealthTest, GrpcCheckOverTlsUsesTheColorsTlsAndAlpnH2) {
  auto openssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), which("openssl"));
    auto r = run_command(args, dir_.path(), Ms(20000));
    ASSERT_EQ(r.exit_code, 0) << "openssl " << args[1] << " failed:\n" << r.err;
  };
  const auto p = [&](const std::string& name) { return (dir_ / name).string(); };
  openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("ca.key"),
           "-out", p("ca.pem"), "-days", "30", "-subj", "/CN=bgproxy test ca"});
  openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p("a.key"), "-out",
           p("a.csr"), "-subj", "/CN=a.test"});
  write_file(dir_ / "a.ext", "subjectAltName=DNS:a.test\n");
  openssl({"x509", "-req", "-in", p("a.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out",
           p("a.pem"), "-days", "30", "-extfile", p("a.ext")});
  ASSERT_FALSE(HasFatalFailure());

  HealthServer& blue = start_server("blue", health_json(kServing), {"--tls", p("a.pem"), p("a.key")});
  // Green: a TLS server with the same certificate that speaks no HTTP/2 (s_server chooses no ALPN).
  extra_.push_back(std::make_unique<Process>(
      std::vector<std::string>{which("openssl"), "s_server", "-www", "-accept", "127.0.0.1:0", "-cert", p("a.pem"),
                               "-key", p("a.key")},
      dir_.path(), "s_server"));
  auto accept = extra_.back()->wait_for_line(std::regex(R"(ACCEPT 127\.0\.0\.1:(\d+))"), Ms(5000), Stream::Stdout);
  ASSERT_TRUE(accept) << extra_.back()->stdout_text() << extra_.back()->stderr_text();
  const std::string green = "127.0.0.1:" + (*accept)[1];

  const std::string tls = "tls: { ca: " + p("ca.pem") + ", sni: a.test }, protocol: h2";
  start_proxy("{ servers: [\"" + blue.address() + "\"], " + tls + " }", "{ servers: [\"" + green + "\"], " + tls + " }",
              std::string("{ protocol: grpc, ") + kTiming + " }");
  auto h = wait_health(blue.address(), "up");
  EXPECT_EQ(h.at("last_check").at("status").to_number<double>(), 200.0);
  EXPECT_TRUE(blue.proc->wait_for_line(std::regex("HEALTH-CHECK service= status=SERVING"), Ms(1000), Stream::Stdout));
  wait_health(green, "down", "tls: the server did not choose h2 by ALPN");

  // The calls themselves go over the same TLS: messages of 300 KB each way (many DATA frames,
  // copied once into each write, which TLS sends as one record) and small ones arrive intact.
  const auto plan = dir_ / "plan-tls-calls.json";
  write_file(plan, R"({"timeout": 20, "steps": [)"
                   R"({"op": "unary", "label": "big", "n": 3, "payload_bytes": 300000, "resp_size": 300000},)"
                   R"({"op": "unary", "label": "small", "n": 5}]})");
  auto calls = run_command({kPython, script("grpc_client.py"), "--port", std::to_string(port_), "--plan", plan.string()},
                           dir_.path(), Ms(30000));
  ASSERT_EQ(calls.exit_code, 0) << calls.out << calls.err;
  const auto result = json::parse(calls.out.substr(calls.out.rfind("{\"calls\"")));
  const auto& list = result.at("calls").as_array();
  ASSERT_EQ(list.size(), 8u) << calls.out;
  for (const auto& c : list) {
    EXPECT_EQ(c.at("code").as_string(), "OK") << json::serialize(c);
    EXPECT_TRUE(c.at("req_ok").as_bool() && c.at("resp_ok").as_bool()) << json::serialize(c);
  }

  set_health(blue, health_json(kNotServing));
  wait_health(blue.address(), "down", "serving status NOT_SERVING");
}

}  // namespace
}  // namespace bgtest
