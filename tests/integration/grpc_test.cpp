// Issue 15, SPEC §13: gRPC through bgproxy, with real grpcio on both sides.
//
// Blue and green are grpc_echo_server.py (grpcio, generic handlers on raw bytes, no protoc) behind
// colors with `protocol: h2c`; the client is grpc_client.py, which drives ONE grpcio channel to the
// proxy's h2c listener through a JSON plan and prints what came back: status codes and details,
// initial and trailing metadata (every answer names its server in the trailing `x-server`), whether
// the bytes that came back are the expected ones and whether the server got the bytes that were sent
// (its trailing `x-req-sha256`). Both scripts run under /usr/bin/python3 (a pyenv python3 earlier on
// PATH has no grpc); they sit next to h2_client.py, whose path tests/CMakeLists.txt passes in.
//
//   1. unary calls, metadata both ways, status errors with details (INVALID_ARGUMENT, and a
//      Trailers-Only UNAVAILABLE), bidi streaming (and full-duplex ping-pong);
//   2. per-stream switching on one channel: after `bgctl switch green` is acknowledged every new
//      call on the same channel (same TCP connection, checked in /proc/net/tcp) goes to green, while
//      a stream opened before the switch finishes on blue;
//   3. `bgctl split --green 50` spreads the calls of one channel over both colors;
//   4. `grpc: true`: a green that fails 30 % of its calls behind HTTP 200 — UNAVAILABLE
//      (Trailers-Only, grpcio), no trailers at all, or RST_STREAM before the trailers (both from a
//      Python h2 server: grpcio cannot misbehave so) — is rolled back by the watchdog, and
//      bgproxy_grpc_responses_total / bgproxy_requests_total count exactly what the client saw;
//   5. 1 MiB messages both ways;
//   6. streaming calls (more than one message either way, or open longer than upstream_response)
//      count as requests but stay out of p95 and the duration histogram, and are counted apart.
// Also: full-duplex ping-pong streaming, Trailers-Only answers without an added content-length,
// and the proxy's own failures told as grpc-status 14/4 (each found here first, then fixed).
//
// Every wait is bounded and synchronised on an event: a READY line, a client's event line, a
// server's STREAM-* line, bgctl's acknowledgement, a status answer, a metric.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
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
// Debian's interpreter: a pyenv python3 earlier on PATH has no grpc.
constexpr const char* kPython = "/usr/bin/python3";

/// grpc_echo_server.py and grpc_client.py live next to h2_client.py (tests/integration/).
std::string script(const char* name) { return (fs::path(BG_H2_CLIENT_PY).parent_path() / name).string(); }

std::string str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : std::string(); }

// ---------------------------------------------------------------------------------------------
// What grpc_client.py printed

struct Call {
  std::string label;
  std::int64_t i = 0;
  std::string code, details, server, initial_server;
  std::map<std::string, std::string> trailers;
  std::optional<std::int64_t> resp_len;
  bool resp_ok = false, req_ok = false;

  std::string trailer(const std::string& n) const {
    auto it = trailers.find(n);
    return it == trailers.end() ? std::string("<none>") : it->second;
  }
  std::string describe() const {
    std::ostringstream s;
    s << label << "#" << i << ": code=" << code << " details=\"" << details << "\" server=" << server
      << " initial_server=" << initial_server << " resp_len=" << (resp_len ? std::to_string(*resp_len) : "none")
      << " resp_ok=" << resp_ok << " req_ok=" << req_ok << " trailers={";
    for (const auto& [k, v] : trailers) s << k << ": " << v.substr(0, 80) << "; ";
    return s.str() + "}";
  }
};

struct StreamOutcome {
  std::string code, details, initial_server;
  std::map<std::string, std::string> trailers;
  std::int64_t sent = 0;
  std::vector<std::string> answers;
};

struct LoopSummary {
  std::int64_t total = 0;
  std::map<std::string, std::int64_t> by;  ///< "SERVER CODE" → calls
  std::int64_t count(const std::string& server, const std::string& code) const {
    auto it = by.find(server + " " + code);
    return it == by.end() ? 0 : it->second;
  }
  std::string describe() const {
    std::string r = "total " + std::to_string(total) + ":";
    for (const auto& [k, v] : by) r += " [" + k + "]=" + std::to_string(v);
    return r;
  }
};

struct ClientRun {
  std::vector<Call> calls;
  std::map<std::string, StreamOutcome> streams;
  std::map<std::string, LoopSummary> loops;
  std::vector<std::string> states;
  std::int64_t ready_count = 0;
  std::string error;
  std::string raw;  ///< the client's stdout and stderr, for failure messages

  std::vector<Call> labelled(const std::string& label) const {
    std::vector<Call> r;
    for (const auto& c : calls)
      if (c.label == label) r.push_back(c);
    return r;
  }
  const StreamOutcome& stream(const std::string& name) const {
    auto it = streams.find(name);
    if (it == streams.end()) throw std::runtime_error("no stream " + name + " in the client's answer:\n" + raw);
    return it->second;
  }
};

std::map<std::string, std::string> string_map(const json::value& v) {
  std::map<std::string, std::string> r;
  for (const auto& [k, val] : v.as_object()) r[std::string(k)] = str(val);
  return r;
}

ClientRun parse_client_run(const std::string& out, const std::string& err) {
  ClientRun run;
  run.raw = "stdout:\n" + printable(out, 3000) + "\nstderr:\n" + printable(err, 3000);
  std::istringstream is(out);
  std::string line, last;
  while (std::getline(is, line))
    if (line.rfind("{\"calls\"", 0) == 0) last = line;
  if (last.empty()) throw std::runtime_error("grpc_client.py printed no result\n" + run.raw);
  const auto v = json::parse(last).as_object();
  for (const auto& cv : v.at("calls").as_array()) {
    const auto& o = cv.as_object();
    Call c;
    c.label = str(o.at("label"));
    c.i = o.at("i").as_int64();
    c.code = str(o.at("code"));
    c.details = str(o.at("details"));
    c.server = str(o.at("server"));
    c.initial_server = str(o.at("initial_server"));
    c.trailers = string_map(o.at("trailers"));
    if (o.at("resp_len").is_int64()) c.resp_len = o.at("resp_len").as_int64();
    c.resp_ok = o.at("resp_ok").as_bool();
    c.req_ok = o.at("req_ok").as_bool();
    run.calls.push_back(std::move(c));
  }
  for (const auto& [name, sv] : v.at("streams").as_object()) {
    const auto& o = sv.as_object();
    StreamOutcome s;
    s.code = str(o.at("code"));
    s.details = str(o.at("details"));
    s.initial_server = str(o.at("initial_server"));
    s.trailers = string_map(o.at("trailers"));
    s.sent = o.at("sent").as_int64();
    for (const auto& a : o.at("answers").as_array()) s.answers.push_back(str(a));
    run.streams[std::string(name)] = std::move(s);
  }
  for (const auto& [label, lv] : v.at("loops").as_object()) {
    LoopSummary l;
    l.total = lv.at("total").as_int64();
    for (const auto& [k, n] : lv.at("by").as_object()) l.by[std::string(k)] = n.as_int64();
    run.loops[std::string(label)] = std::move(l);
  }
  for (const auto& s : v.at("states").as_array()) run.states.push_back(str(s));
  run.ready_count = v.at("ready_count").as_int64();
  run.error = str(v.at("error"));
  return run;
}

/// Calls of `v` answered OK by `server` with the expected bytes, both ways.
std::size_t clean_from(const std::vector<Call>& v, const std::string& server, std::string* first_bad) {
  std::size_t n = 0;
  for (const auto& c : v) {
    if (c.code == "OK" && c.server == server && c.initial_server == server && c.resp_ok && c.req_ok) {
      ++n;
    } else if (first_bad && first_bad->empty()) {
      *first_bad = c.describe();
    }
  }
  return n;
}

json::object unary_step(const std::string& label, int n, json::object extra = {}) {
  json::object s{{"op", "unary"}, {"label", label}, {"n", n}};
  for (auto& [k, v] : extra) s[k] = v;
  return s;
}

/// Request metadata for a step: [[name, value], ...] (built element by element: a braced
/// json::array{json::array{...}} would copy the inner array instead of nesting it).
json::array metadata(std::initializer_list<std::pair<const char*, std::string>> v) {
  json::array a;
  for (const auto& [n, val] : v) {
    json::array pair;
    pair.emplace_back(n);
    pair.emplace_back(val);
    a.push_back(std::move(pair));
  }
  return a;
}

double num_weight(const json::object& svc, const char* color) {
  return svc.at("weights").at(color).to_number<double>();
}

json::array messages(std::initializer_list<const char*> v) {
  json::array a;
  for (const char* m : v) a.emplace_back(m);
  return a;
}

/// The established IPv4 TCP connections of this network namespace (/proc/net/tcp) with one end
/// on `port`, by the port at their other end. Which end is matched: `local` (a listener's
/// accepted connections) or `remote` (connections opened to it).
enum class End { local, remote };
std::set<std::uint16_t> established(std::uint16_t port, End matched) {
  std::ifstream f("/proc/net/tcp");
  std::string line;
  std::set<std::uint16_t> r;
  std::getline(f, line);  // header
  auto port_of = [](const std::string& address) {
    return static_cast<std::uint16_t>(std::stoul(address.substr(address.find(':') + 1), nullptr, 16));
  };
  while (std::getline(f, line)) {
    std::istringstream is(line);
    std::string sl, local, remote, st;
    if (!(is >> sl >> local >> remote >> st)) continue;
    if (st != "01") continue;  // TCP_ESTABLISHED
    const bool local_matched = matched == End::local;
    if (port_of(local_matched ? local : remote) != port) continue;
    r.insert(port_of(local_matched ? remote : local));
  }
  return r;
}

/// The client sides of the connections a listener on `port` accepted.
std::set<std::uint16_t> established_peers(std::uint16_t port) { return established(port, End::local); }

/// The local ports of the connections opened to `port`: the proxy's to a server listening there
/// (grpcio accepts them on a dual-stack socket, which /proc/net/tcp does not list).
std::set<std::uint16_t> connections_to(std::uint16_t port) { return established(port, End::remote); }

std::string ports_text(const std::set<std::uint16_t>& s) {
  std::string r = "{";
  for (auto p : s) {
    if (r.size() > 1) r += ',';
    r += std::to_string(p);
  }
  r += '}';
  return r;
}

// ---------------------------------------------------------------------------------------------
// Fixture

/// A running grpc_echo_server.py.
struct GrpcServer {
  std::string name;
  std::unique_ptr<Process> proc;
  std::uint16_t port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

class GrpcTest : public IntegrationTest {
protected:
  void TearDown() override {
    if (HasFailure()) {
      for (auto& c : clients_)
        std::cerr << "----- " << c->tag() << " stdout/stderr -----\n"
                  << printable(c->stdout_text(), 3000) << "\n" << printable(c->stderr_text(), 3000) << "\n";
      if (proxy_)
        std::cerr << "----- bgproxy-grpc stderr -----\n" << printable(proxy_->stderr_text(), 6000) << "\n";
      for (auto& s : servers_)
        std::cerr << "----- grpc server " << s->name << " stderr -----\n"
                  << printable(s->proc->stderr_text(), 3000) << "\n";
    }
    clients_.clear();
    proxy_.reset();
    servers_.clear();
    IntegrationTest::TearDown();
  }

  /// Starts grpc_echo_server.py for each spec, all at once, and waits for their READY lines.
  struct ServerSpec {
    ServerSpec(std::string n, int fail = 0, std::string raw = "", int streams = 0)
        : name(std::move(n)), fail_percent(fail), raw_fault(std::move(raw)), max_streams(streams) {}
    std::string name;
    int fail_percent = 0;
    std::string raw_fault;  ///< grpc_echo_server.py --raw-fault (Python h2 instead of grpcio)
    int max_streams = 0;    ///< grpc_echo_server.py --max-streams (0: grpcio's default)
  };

  void start_servers(const std::vector<ServerSpec>& specs) {
    const std::size_t first = servers_.size();
    for (const auto& spec : specs) {
      auto s = std::make_unique<GrpcServer>();
      s->name = spec.name;
      std::vector<std::string> argv{kPython, script("grpc_echo_server.py"), "--port", "0", "--name", spec.name,
                                    "--fail-percent", std::to_string(spec.fail_percent)};
      if (!spec.raw_fault.empty()) argv.insert(argv.end(), {"--raw-fault", spec.raw_fault});
      if (spec.max_streams != 0) argv.insert(argv.end(), {"--max-streams", std::to_string(spec.max_streams)});
      s->proc = std::make_unique<Process>(argv, dir_.path(), "grpc-" + spec.name);
      servers_.push_back(std::move(s));
    }
    for (std::size_t i = first; i < servers_.size(); ++i) {
      auto& s = *servers_[i];
      auto m = s.proc->wait_for_line(std::regex(R"(READY port=(\d+))"), Ms(20000), Stream::Stdout);
      if (!m)
        throw std::runtime_error("grpc_echo_server.py " + s.name + " did not become ready; stderr:\n" +
                                 s.proc->stderr_text());
      s.port = static_cast<std::uint16_t>(std::stoi((*m)[1]));
    }
  }

  GrpcServer& server(const std::string& name) {
    for (auto& s : servers_)
      if (s->name == name) return *s;
    throw std::runtime_error("no grpc server " + name);
  }

  /// Writes the proxy's YAML: the harness's config with `protocol: h2c` on both colors, an h2c
  /// listener, blue and green = the servers of those names (a refused port when there is none), `service_extra` added to the service. Then `bgproxy --check`: its stderr when it
  /// refuses the file, nullopt when it accepts it (and then the proxy runs, ready).
  /// `cfg` may set timeouts, or blue/green addresses of its own.
  std::optional<std::string> try_start_proxy(const std::string& service_extra, ProxyConfig cfg = {}) {
    auto address_of = [this](const std::string& name) {
      for (auto& s : servers_)
        if (s->name == name) return s->address();
      return "127.0.0.1:" + std::to_string(refused_port());
    };
    if (cfg.blue.empty()) cfg.blue = {address_of("blue")};
    if (cfg.green.empty()) cfg.green = {address_of("green")};
    cfg.protocols = "[http/1.1, h2c]";
    cfg.service_extra = service_extra;
    std::string yaml = render_config(cfg, dir_.path(), 0);
    const std::string before = yaml;
    yaml = std::regex_replace(yaml, std::regex(R"((\n    (?:blue|green): \{ servers: \[[^\]\n]*\]))"),
                              "$1, protocol: h2c");
    if (yaml.size() != before.size() + 2 * std::string(", protocol: h2c").size())
      throw std::runtime_error("could not add protocol: h2c to both colors of:\n" + before);
    const auto path = dir_ / "bgproxy-grpc.yaml";
    write_file(path, yaml);
    auto check = run_command({proxy_bin(), "-c", path.string(), "--check"}, dir_.path(), Ms(10000));
    if (check.exit_code != 0) return "bgproxy --check exit " + std::to_string(check.exit_code) + ": " + check.err;

    proxy_ = std::make_unique<Process>(std::vector<std::string>{proxy_bin(), "-c", path.string()}, dir_.path(),
                                       "bgproxy-grpc");
    auto m = proxy_->wait_for_line(std::regex(R"(bgproxy ready: listen=127\.0\.0\.1:(\d+) admin=[0-9.]+:(\d+))"),
                                   Ms(10000));
    if (!m) throw std::runtime_error("bgproxy did not become ready; stderr:\n" + proxy_->stderr_text() + "\nconfig:\n" + yaml);
    port_ = static_cast<std::uint16_t>(std::stoi((*m)[1]));
    admin_port_ = static_cast<std::uint16_t>(std::stoi((*m)[2]));
    socket_ = (dir_ / "control-0.sock").string();
    return std::nullopt;
  }

  /// The default watchdog is on: under CPU load it may roll a switch back on p95 alone (green's
  /// calls measured while the machine is busier than during blue's), so tests that do not test it
  /// turn it off.
  void start_proxy_or_throw(const std::string& service_extra = "watchdog: off\n", ProxyConfig cfg = {}) {
    if (auto refused = try_start_proxy(service_extra, std::move(cfg))) throw std::runtime_error(*refused);
  }

  std::string metrics() {
    std::string why;
    auto r = round_trip(admin_port_, get_request("/metrics", "Connection: close\r\n", "127.0.0.1"), Ms(3000), &why);
    if (!r || r->status != 200) throw std::runtime_error("GET /metrics failed: " + why);
    return r->body;
  }

  /// Polls /metrics until the sample equals `want` (counters are current to within a second).
  double wait_metric_eq(const std::string& name, const Labels& labels, double want, std::string* text) {
    const auto deadline = Clock::now() + Ms(3000);
    for (;;) {
      *text = metrics();
      const double v = metric_value(*text, name, labels).value_or(-1);
      if (v == want || Clock::now() >= deadline) return v;
      std::this_thread::sleep_for(Ms(100));
    }
  }

  /// `bgctl ARGS`: returns once the proxy acknowledged (or refused) the command.
  CommandResult bgctl(std::vector<std::string> args) {
    std::vector<std::string> argv{bgctl_bin(), "-S", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_.path(), Ms(10000));
  }

  void bgctl_ok(std::vector<std::string> args) {
    auto r = bgctl(args);
    std::string shown;
    for (const auto& a : args) shown += " " + a;
    if (r.exit_code != 0)
      throw std::runtime_error("bgctl" + shown + ": exit " + std::to_string(r.exit_code) + ": " + r.err + r.out);
  }

  json::object status() {
    auto r = bgctl({"--json", "status"});
    if (r.exit_code != 0) throw std::runtime_error("bgctl --json status: exit " + std::to_string(r.exit_code) + r.err);
    return json::parse(r.out).as_object().at("services").as_array().at(0).as_object();
  }

  fs::path write_plan(const json::object& plan) {
    auto p = dir_ / ("grpc-plan-" + std::to_string(++plans_) + ".json");
    write_file(p, json::serialize(plan));
    return p;
  }

  std::vector<std::string> client_argv(const json::object& plan) {
    return {kPython, script("grpc_client.py"), "--port", std::to_string(port_), "--plan", write_plan(plan).string()};
  }

  /// Runs a plan to its end.
  ClientRun run_client(const json::object& plan, Ms timeout = Ms(30000)) {
    auto r = run_command(client_argv(plan), dir_.path(), timeout);
    if (r.exit_code != 0)
      throw std::runtime_error("grpc_client.py exited " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out +
                               "\nstderr:\n" + r.err);
    return parse_client_run(r.out, r.err);
  }

  /// Starts a plan that synchronises with the test (events, files); see finish_client().
  Process& spawn_client(const json::object& plan, const std::string& tag) {
    clients_.push_back(std::make_unique<Process>(client_argv(plan), dir_.path(), tag));
    return *clients_.back();
  }

  /// Waits for the client's {"event": NAME} line; throws (with its output) when it does not come.
  void wait_event(Process& c, const std::string& name, Ms timeout = Ms(20000)) {
    if (!c.wait_for_line(std::regex("\\{\"event\": \"" + name + "\"\\}"), timeout, Stream::Stdout))
      throw std::runtime_error("grpc_client.py never printed event " + name + "; stdout:\n" + c.stdout_text() +
                               "\nstderr:\n" + c.stderr_text());
  }

  ClientRun finish_client(Process& c, Ms timeout = Ms(30000)) {
    auto code = c.wait_exit(timeout);
    if (code != 0)
      throw std::runtime_error("grpc_client.py: exit " + (code ? std::to_string(*code) : "timeout") + "\nstdout:\n" +
                               c.stdout_text() + "\nstderr:\n" + c.stderr_text());
    return parse_client_run(c.stdout_text(), c.stderr_text());
  }

  fs::path touch(const std::string& name) {
    auto p = dir_ / name;
    write_file(p, "go\n");
    return p;
  }

  std::vector<std::unique_ptr<GrpcServer>> servers_;
  std::unique_ptr<Process> proxy_;
  std::vector<std::unique_ptr<Process>> clients_;
  std::uint16_t port_ = 0, admin_port_ = 0;
  std::string socket_;
  int plans_ = 0;
};

class GrpcCalls : public GrpcTest {};
class GrpcSwitching : public GrpcTest {};
class GrpcCanaryTest : public GrpcTest {
protected:
  void run_canary(const ServerSpec& green, const std::string& fail_code, const std::string& grpc_status);
};
class GrpcCanary : public GrpcCanaryTest {};
class GrpcLargeMessages : public GrpcTest {};
class GrpcProxyErrors : public GrpcTest {};
class GrpcStreaming : public GrpcTest {};
class GrpcShadow : public GrpcTest {};
class GrpcBackendConnections : public GrpcTest {};

// ---------------------------------------------------------------------------------------------
// 1. Unary, metadata, status errors, streaming.

TEST_F(GrpcCalls, UnaryCallsEchoWithMetadataAndTrailers) {
  start_servers({{"blue", 0}});
  start_proxy_or_throw();
  auto run = run_client(json::object{
      {"timeout", 10},
      {"steps", json::array{
                    unary_step("seq", 20, {{"metadata", metadata({{"x-echo", "from-the-client"}})}}),
                    unary_step("conc", 60, {{"concurrency", 12}, {"payload", "multiplexed"}}),
                    unary_step("bin", 1, {{"metadata", metadata({{"x-echo", "a b=c;d"}})},
                                          {"payload_bytes", 70000}}),
                }}});
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 81u) << run.raw;
  std::string bad;
  EXPECT_EQ(clean_from(run.calls, "blue", &bad), 81u) << "first bad call: " << bad;
  for (const auto& c : run.calls) {
    EXPECT_EQ(c.trailer("x-count"), "1") << c.describe();
    if (c.label == "seq") {
      EXPECT_EQ(c.trailer("x-echo"), "from-the-client") << c.describe();
    }
    if (c.label == "bin") {
      EXPECT_EQ(c.trailer("x-echo"), "a b=c;d") << c.describe();
      EXPECT_EQ(c.resp_len, 70000) << c.describe();
    }
    // gRPC status lives in the trailers: never a field the client sees as metadata.
    EXPECT_EQ(c.trailers.count("grpc-status"), 0u) << c.describe();
  }
  // 81 calls, server-side call numbers 0..80 each exactly once: nothing was retried or duplicated.
  std::set<std::string> numbers;
  for (const auto& c : run.calls) numbers.insert(c.trailer("x-call"));
  EXPECT_EQ(numbers.size(), 81u);
  EXPECT_EQ(run.ready_count, 1) << "the channel connected more than once: " << run.raw;
}

TEST_F(GrpcCalls, StatusErrorsArriveWithDetailsAndTrailers) {
  start_servers({{"blue", 0}, {"green", 100}});
  start_proxy_or_throw();
  auto step = [](const std::string& label) {
    return unary_step(label, 3, {{"metadata", metadata({{"x-fail", "invalid"}, {"x-echo", label}})}});
  };
  auto run = run_client(json::object{{"timeout", 10}, {"steps", json::array{step("invalid")}}});
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 3u) << run.raw;
  for (const auto& c : run.calls) {
    EXPECT_EQ(c.code, "INVALID_ARGUMENT") << c.describe();
    EXPECT_EQ(c.details, "invalid payload from blue") << c.describe();
    EXPECT_EQ(c.server, "blue") << c.describe();
    EXPECT_EQ(c.trailer("x-echo"), "invalid") << c.describe();
    EXPECT_TRUE(c.req_ok) << c.describe();
    EXPECT_FALSE(c.resp_len) << "a message came with the error: " << c.describe();
  }

  // Green answers every call UNAVAILABLE (Trailers-Only: one HEADERS frame with END_STREAM).
  bgctl_ok({"switch", "green"});
  run = run_client(json::object{{"timeout", 10}, {"steps", json::array{unary_step("unavailable", 3)}}});
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 3u) << run.raw;
  for (const auto& c : run.calls) {
    EXPECT_EQ(c.code, "UNAVAILABLE") << c.describe();
    EXPECT_EQ(c.details, "green unavailable") << c.describe();
    EXPECT_EQ(c.server, "green") << c.describe();
    EXPECT_TRUE(c.req_ok) << c.describe();
  }
}

TEST_F(GrpcCalls, TrailersOnlyAnswerGetsNoContentLengthAdded) {
  start_servers({{"blue", 0}});
  start_proxy_or_throw();
  auto run = run_client(json::object{
      {"timeout", 10},
      {"steps", json::array{unary_step("invalid", 1, {{"metadata", metadata({{"x-fail", "invalid"}})}})}}});
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 1u) << run.raw;
  const auto& c = run.calls[0];
  EXPECT_EQ(c.code, "INVALID_ARGUMENT") << c.describe();
  EXPECT_EQ(c.trailers.count("content-length"), 0u) << c.describe();
}

TEST_F(GrpcCalls, BidiStreamEchoesEveryMessageInOrderWithTrailers) {
  start_servers({{"blue", 0}});
  start_proxy_or_throw();
  // All messages, then the half-close; the answers are read as they come.
  json::array many;
  for (int i = 0; i < 50; ++i) many.emplace_back("message-" + std::to_string(i));
  auto run = run_client(json::object{
      {"timeout", 10},
      {"steps", json::array{
                    json::object{{"op", "stream_open"}, {"name", "s"}, {"messages", many}, {"wait", false},
                                 {"metadata", metadata({{"x-echo", "streamed"}})}},
                    json::object{{"op", "stream_close"}, {"name", "s"}},
                    // A second stream on the same channel, after the first.
                    json::object{{"op", "stream_open"}, {"name", "t"}, {"messages", messages({"x", "y"})},
                                 {"wait", false}},
                    json::object{{"op", "stream_close"}, {"name", "t"}},
                }}});
  ASSERT_EQ(run.error, "") << run.raw;
  const auto& s = run.stream("s");
  EXPECT_EQ(s.code, "OK") << s.details;
  EXPECT_EQ(s.initial_server, "blue");
  ASSERT_EQ(s.answers.size(), 50u) << run.raw;
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(s.answers[i], "blue:" + std::to_string(i) + ":message-" + std::to_string(i));
  EXPECT_EQ(s.trailers.count("x-server") ? s.trailers.at("x-server") : "", "blue");
  EXPECT_EQ(s.trailers.count("x-count") ? s.trailers.at("x-count") : "", "50");
  EXPECT_EQ(s.trailers.count("x-echo") ? s.trailers.at("x-echo") : "", "streamed");
  const auto& t = run.stream("t");
  EXPECT_EQ(t.code, "OK") << t.details;
  EXPECT_EQ(t.answers, (std::vector<std::string>{"blue:0:x", "blue:1:y"}));
  EXPECT_EQ(run.ready_count, 1) << run.raw;
}

TEST_F(GrpcCalls, BidiPingPongGetsEachAnswerBeforeTheClientHalfCloses) {
  start_servers({{"blue", 0}});
  start_proxy_or_throw();
  // Each message waits for its answer (3 s) before the next is sent.
  auto run = run_client(json::object{
      {"timeout", 3},
      {"steps", json::array{
                    json::object{{"op", "stream_open"}, {"name", "p"}, {"messages", messages({"ping-0"})}},
                    json::object{{"op", "stream_send"}, {"name", "p"}, {"messages", messages({"ping-1"})}},
                    json::object{{"op", "stream_send"}, {"name", "p"}, {"messages", messages({"ping-2"})}},
                    json::object{{"op", "stream_close"}, {"name", "p"}},
                }}});
  ASSERT_EQ(run.error, "") << "an answer did not arrive before the next message was due: " << run.raw;
  const auto& p = run.stream("p");
  EXPECT_EQ(p.code, "OK") << p.details;
  EXPECT_EQ(p.answers, (std::vector<std::string>{"blue:0:ping-0", "blue:1:ping-1", "blue:2:ping-2"}));
}

// ---------------------------------------------------------------------------------------------
// 2-3. Per-stream routing on one long-lived channel.

TEST_F(GrpcSwitching, SwitchMovesLaterCallsOfOneChannelToGreenWhileAnOpenStreamStaysOnBlue) {
  start_servers({{"blue", 0}, {"green", 0}});
  start_proxy_or_throw();
  const auto go = dir_ / "go", end = dir_ / "end";
  Process& client = spawn_client(
      json::object{
          {"timeout", 15},
          {"steps", json::array{
                        unary_step("before", 20),
                        json::object{{"op", "stream_open"}, {"name", "open"}, {"messages", messages({"m0"})},
                                     {"wait", false}},
                        json::object{{"op", "event"}, {"name", "phase0"}},
                        json::object{{"op", "wait_file"}, {"path", go.string()}},
                        unary_step("after", 30),
                        unary_step("after-concurrent", 60, {{"concurrency", 12}}),
                        json::object{{"op", "stream_open"}, {"name", "new"}, {"messages", messages({"n0"})},
                                     {"wait", false}},
                        json::object{{"op", "stream_send"}, {"name", "open"}, {"messages", messages({"m1", "m2"})},
                                     {"wait", false}},
                        json::object{{"op", "stream_close"}, {"name", "open"}},
                        json::object{{"op", "stream_close"}, {"name", "new"}},
                        json::object{{"op", "event"}, {"name", "phase1"}},
                        json::object{{"op", "wait_file"}, {"path", end.string()}},
                    }}},
      "grpc-client");
  wait_event(client, "phase0");
  // The open stream has reached blue (its first message arrived there) before the switch.
  ASSERT_TRUE(server("blue").proc->wait_for_line(std::regex("STREAM-MSG 0 "), Ms(10000), Stream::Stdout))
      << "the stream opened before the switch never reached blue";
  const auto peers_before = established_peers(port_);
  ASSERT_EQ(peers_before.size(), 1u) << "client connections to the proxy: " << ports_text(peers_before);

  const auto t0 = Clock::now();
  bgctl_ok({"switch", "green"});  // returns with the acknowledgement
  const auto ack = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  touch("go");
  wait_event(client, "phase1");
  const auto peers_after = established_peers(port_);
  touch("end");
  ClientRun run = finish_client(client);
  ASSERT_EQ(run.error, "") << run.raw;

  const auto before = run.labelled("before");
  auto after = run.labelled("after");
  const auto conc = run.labelled("after-concurrent");
  after.insert(after.end(), conc.begin(), conc.end());
  std::string bad;
  std::cout << "[ grpc ] switch acknowledged in " << ack << " ms; one connection, client port "
            << ports_text(peers_before) << " -> " << ports_text(peers_after) << "; calls before " << before.size()
            << " after " << after.size() << "\n";
  EXPECT_EQ(clean_from(before, "blue", &bad), 20u) << "first bad call before the switch: " << bad;
  bad.clear();
  EXPECT_EQ(clean_from(after, "green", &bad), 90u) << "a call started after the acknowledged switch: " << bad;
  // The same TCP connection carried everything: grpcio connected once, and the one established
  // connection to the proxy is the one seen before the switch.
  EXPECT_EQ(peers_after, peers_before) << "the channel's connection changed across the switch";
  EXPECT_EQ(run.ready_count, 1) << "the channel reconnected: " << run.raw;

  // The stream opened before the switch finished on blue, whole; the one opened after went green.
  const auto& open = run.stream("open");
  EXPECT_EQ(open.code, "OK") << open.details;
  EXPECT_EQ(open.initial_server, "blue");
  EXPECT_EQ(open.answers, (std::vector<std::string>{"blue:0:m0", "blue:1:m1", "blue:2:m2"}));
  EXPECT_EQ(open.trailers.count("x-server") ? open.trailers.at("x-server") : "", "blue");
  EXPECT_EQ(open.trailers.count("x-count") ? open.trailers.at("x-count") : "", "3");
  const auto& fresh = run.stream("new");
  EXPECT_EQ(fresh.code, "OK") << fresh.details;
  EXPECT_EQ(fresh.answers, (std::vector<std::string>{"green:0:n0"}));
  EXPECT_EQ(fresh.trailers.count("x-server") ? fresh.trailers.at("x-server") : "", "green");
}

// `rollback --drain`: a bidi stream open on green (its first answer already through) is cut, the
// channel's later calls go to blue on the same connection. Without --drain it would finish on
// green, as the stream across the switch above finishes on blue.
TEST_F(GrpcSwitching, RollbackDrainCutsTheStreamOpenOnGreenAndLaterCallsGoToBlue) {
  start_servers({{"blue", 0}, {"green", 0}});
  start_proxy_or_throw();
  bgctl_ok({"switch", "green"});
  const auto go = dir_ / "go";
  Process& client = spawn_client(
      json::object{
          {"timeout", 15},
          {"steps", json::array{
                        json::object{{"op", "stream_open"}, {"name", "open"}, {"messages", messages({"m0"})}},
                        json::object{{"op", "event"}, {"name", "phase0"}},
                        json::object{{"op", "wait_file"}, {"path", go.string()}},
                        json::object{{"op", "stream_close"}, {"name", "open"}},
                        unary_step("after", 20),
                    }}},
      "grpc-client");
  wait_event(client, "phase0");
  const auto t0 = Clock::now();
  const auto rb = bgctl({"rollback", "--drain"});
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_NE(rb.out.find("cut 1 exchanges in flight to green"), std::string::npos) << rb.out;
  touch("go");
  ClientRun run = finish_client(client);
  ASSERT_EQ(run.error, "") << run.raw;
  EXPECT_LT(Clock::now() - t0, Ms(10000));
  const auto& open = run.stream("open");
  std::cout << "[ grpc ] the stream cut by rollback --drain ended with " << open.code << " (" << open.details << ")\n";
  EXPECT_NE(open.code, "OK") << "the stream on green was not cut: " << run.raw;
  EXPECT_EQ(open.initial_server, "green");
  EXPECT_EQ(open.answers, (std::vector<std::string>{"green:0:m0"}));
  std::string bad;
  EXPECT_EQ(clean_from(run.labelled("after"), "blue", &bad), 20u) << "first bad call after the drain: " << bad;
  EXPECT_EQ(run.ready_count, 1) << "the channel reconnected: " << run.raw;
}

TEST_F(GrpcSwitching, SplitSpreadsTheCallsOfOneChannelOverBothColors) {
  start_servers({{"blue", 0}, {"green", 0}});
  start_proxy_or_throw();
  bgctl_ok({"split", "--green", "50"});
  auto run = run_client(json::object{{"timeout", 15}, {"steps", json::array{unary_step("split", 200, {{"concurrency", 8}})}}});
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 200u);
  std::string bad_blue, bad_green;
  const auto blue = clean_from(run.calls, "blue", &bad_blue);
  const auto green = clean_from(run.calls, "green", &bad_green);
  std::cout << "[ grpc ] split 50 % on one channel: " << blue << " blue, " << green << " green of 200\n";
  EXPECT_EQ(blue + green, 200u) << "a call was not answered cleanly by either color";
  // Binomial(200, 0.5): sd 7.1; 60..140 is beyond 5.6 sd.
  EXPECT_GE(blue, 60u);
  EXPECT_GE(green, 60u);
  EXPECT_EQ(run.ready_count, 1) << run.raw;
}

// ---------------------------------------------------------------------------------------------
// 4. Canary with gRPC accounting: green fails 30 % of calls with UNAVAILABLE behind HTTP 200.

/// Blue answers everything; green misbehaves on 30 % of its calls (`green`). A loop of calls on
/// one channel runs while `bgctl split --green 50` is applied: the watchdog must roll green back
/// within window + 3 s, and the proxy's figures must equal what the client saw, call for call.
/// @param fail_code what the client sees for green's bad calls (grpcio's name of the status)
/// @param grpc_status the bgproxy_grpc_responses_total label those calls must be counted under
void GrpcCanaryTest::run_canary(const ServerSpec& green, const std::string& fail_code,
                                const std::string& grpc_status) {
  start_servers({{"blue"}, green});
  const std::string extra =
      "grpc: true\n"
      "sticky: none\n"
      // Only the error rate decides: p95 limits no busy machine reaches.
      "watchdog: { window: 3s, min_requests: 20, max_error_rate: 0.05, max_p95: 30s, bake_time: 3s, "
      "max_error_rate_delta: 0.02, max_p95_ratio: 1000 }\n";
  if (auto refused = try_start_proxy(extra)) {
    if (refused->find("grpc") != std::string::npos)
      GTEST_SKIP() << "`grpc: true` is not accepted by this bgproxy yet (SPEC §13 gRPC accounting): " << *refused;
    FAIL() << *refused;
  }
  const auto stop = dir_ / "stop";
  Process& loop = spawn_client(
      json::object{{"timeout", 10},
                   {"steps", json::array{json::object{{"op", "event"}, {"name", "looping"}},
                                         json::object{{"op", "loop"}, {"label", "canary"}, {"concurrency", 4},
                                                      {"until_file", stop.string()}, {"max_seconds", 25}}}}},
      "grpc-loop");
  wait_event(loop, "looping");

  const auto t0 = Clock::now();
  bgctl_ok({"split", "--green", "50"});
  json::object st;
  std::optional<double> delay;
  while (Clock::now() < t0 + Ms(15000)) {
    st = status();
    if (str(st.at("phase")) == "rolled_back") {
      delay = std::chrono::duration<double>(Clock::now() - t0).count();
      break;
    }
    std::this_thread::sleep_for(Ms(100));
  }
  touch("stop");
  ClientRun run = finish_client(loop);
  ASSERT_TRUE(delay) << "no rollback within 15 s of the split; last status: " << json::serialize(st)
                     << "\nclient: " << (run.loops.count("canary") ? run.loops.at("canary").describe() : run.raw);
  ASSERT_EQ(run.error, "") << run.raw;
  const auto& l = run.loops.at("canary");
  // A bad answer (even a reset stream) costs only its own call: the channel never reconnected.
  EXPECT_EQ(run.ready_count, 1) << "the channel reconnected: " << run.raw;
  const std::string reason = str(st.at("reason"));
  std::cout << "[ grpc ] green " << (green.raw_fault.empty() ? "UNAVAILABLE" : green.raw_fault) << " on "
            << green.fail_percent << " %: rollback " << *delay << " s after split 50: " << reason << "; client "
            << l.describe() << "\n";
  std::smatch m;
  ASSERT_TRUE(std::regex_match(reason, m, std::regex(R"(^watchdog: error_rate (\d\.\d{3}) > 0\.05 \(n=(\d+), window 3s\)$)")))
      << reason;
  EXPECT_GE(std::stod(m[1]), 0.2);
  EXPECT_LE(std::stod(m[1]), 0.4);
  EXPECT_LE(*delay, 3.0 + 3.0);
  EXPECT_EQ(num_weight(st, "green"), 0.0);

  // The client saw only clean answers from blue, and OK or the fault from green.
  const auto blue_ok = l.count("blue", "OK"), green_ok = l.count("green", "OK"), green_bad = l.count("green", fail_code);
  EXPECT_EQ(blue_ok + green_ok + green_bad, l.total) << l.describe();
  EXPECT_GT(green_bad, 0);
  // bgproxy's accounting matches the client's figures exactly.
  const Labels green_labels{{"service", "app"}, {"color", "green"}};
  auto with = [](Labels l, const char* k, const std::string& v) {
    l[k] = v;
    return l;
  };
  std::string text;
  EXPECT_EQ(wait_metric_eq("bgproxy_grpc_responses_total", with(green_labels, "grpc_status", grpc_status),
                           static_cast<double>(green_bad), &text),
            static_cast<double>(green_bad))
      << text;
  EXPECT_EQ(metric_value(text, "bgproxy_grpc_responses_total", with(green_labels, "grpc_status", "0")).value_or(-1),
            static_cast<double>(green_ok));
  EXPECT_EQ(metric_value(text, "bgproxy_grpc_responses_total", {{"service", "app"}, {"color", "blue"}, {"grpc_status", "0"}})
                .value_or(-1),
            static_cast<double>(blue_ok));
  EXPECT_EQ(metric_value(text, "bgproxy_requests_total", with(green_labels, "code", "5xx")).value_or(-1),
            static_cast<double>(green_bad))
      << "a failed call behind HTTP 200 must count as 5xx";
  EXPECT_EQ(metric_value(text, "bgproxy_requests_total", with(green_labels, "code", "2xx")).value_or(-1),
            static_cast<double>(green_ok));
  EXPECT_EQ(metric_value(text, "bgproxy_requests_total", {{"service", "app"}, {"color", "blue"}, {"code", "5xx"}})
                .value_or(0),
            0.0);
  EXPECT_EQ(metric_value(text, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "watchdog"}}), 1.0);

  // After the rollback every call goes to blue.
  auto after = run_client(json::object{{"timeout", 10}, {"steps", json::array{unary_step("after", 30, {{"concurrency", 4}})}}});
  ASSERT_EQ(after.error, "") << after.raw;
  std::string bad;
  EXPECT_EQ(clean_from(after.calls, "blue", &bad), 30u) << "after the rollback: " << bad;
}

TEST_F(GrpcCanary, GreenUnavailableOn30PercentIsRolledBackAndCountedAs5xx) {
  // grpcio's ctx.abort: a Trailers-Only answer, grpc-status 14 in the response's only HEADERS.
  run_canary({"green", 30}, "UNAVAILABLE", "14");
}

TEST_F(GrpcCanary, GreenThatDropsTheTrailersIsCountedAsErrorsAndRolledBack) {
  // HEADERS, the message, END_STREAM on the DATA: no grpc-status anywhere (grpcio: UNKNOWN).
  run_canary({"green", 30, "no-trailers"}, "UNKNOWN", "missing");
}

TEST_F(GrpcCanary, GreenThatResetsBeforeTheTrailersIsCountedAsErrorsAndRolledBack) {
  // HEADERS, the message, then RST_STREAM INTERNAL_ERROR instead of the trailers.
  run_canary({"green", 30, "reset"}, "INTERNAL", "missing");
}

// ---------------------------------------------------------------------------------------------
// SPEC §13: errors of the proxy itself toward a gRPC client are HTTP 200 with grpc-status 14 (no
// server, connect failure) or 4 (timeout) and a grpc-message. grpcio turns a bare HTTP 502/504
// into UNAVAILABLE with the details "Received http2 header with status: 50x", so the details tell
// the two apart.

// Shadow copies to a color whose servers speak h2c go on the pool's HTTP/2 connections: GETs are
// mirrored to green and compared with blue's answers (grpcio answers both alike). gRPC calls are
// not mirrored: their bodies come without a content-length, and a copy is made only of a body
// whose length is known and all here when the request leaves (README "Shadow traffic"); each
// counts as skipped. The client only ever hears blue.
TEST_F(GrpcShadow, GetsAreMirroredToAnH2cColorAndGrpcCallsAreSkipped) {
  start_servers({{"blue", 0}, {"green", 0}});
  start_proxy_or_throw("watchdog: off\nshadow: { percent: 100, methods: [GET, POST] }\n");
  constexpr int calls = 10, gets = 30;
  ClientRun run = run_client(json::object{{"timeout", 15}, {"steps", json::array{unary_step("u", calls)}}});
  ASSERT_EQ(run.error, "") << run.raw;
  std::string bad;
  EXPECT_EQ(clean_from(run.labelled("u"), "blue", &bad), static_cast<std::size_t>(calls)) << bad;
  std::optional<int> first_status;
  for (int i = 0; i < gets; ++i) {
    std::string why;
    const auto r = round_trip(port_, get_request("/get/" + std::to_string(i), "Connection: close\r\n"), Ms(3000), &why);
    ASSERT_TRUE(r) << why;
    if (!first_status) first_status = r->status;
    EXPECT_EQ(r->status, *first_status);
  }

  json::object svc;
  const auto count = [&](const char* color, const char* result) {
    return svc.at("requests").at(color).at(result).to_number<double>();
  };
  const auto deadline = Clock::now() + Ms(10000);
  for (;;) {
    const auto r = bgctl({"--json", "shadow"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    svc = json::parse(r.out).at("services").as_array().at(0).as_object();
    if (count("blue", "compared") + count("green", "compared") >= gets || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(Ms(100));
  }
  const std::string all = json::serialize(svc);
  std::cout << "[ grpc ] shadow over h2c: GET answered " << first_status.value_or(0) << "; " << all << "\n";
  EXPECT_EQ(count("blue", "compared") + count("green", "compared"), static_cast<double>(gets)) << all;
  EXPECT_GE(count("green", "compared"), gets * 0.8) << "most copies go to green (every 10th is blue's noise pair): "
                                                    << all;
  EXPECT_EQ(count("green", "failed") + count("green", "dropped"), 0.0) << all;
  EXPECT_EQ(count("green", "skipped"), static_cast<double>(calls)) << "the gRPC calls: " << all;
  EXPECT_EQ(svc.at("mismatch_rate").to_number<double>(), 0.0) << all;
}

TEST_F(GrpcProxyErrors, ConnectFailureIsUnavailableWithAMessage) {
  ProxyConfig cfg;
  cfg.blue = {"127.0.0.1:" + std::to_string(refused_port())};
  start_proxy_or_throw("grpc: true\nwatchdog: off\n", cfg);
  auto run = run_client(json::object{{"timeout", 10}, {"steps", json::array{unary_step("refused", 2)}}});
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 2u) << run.raw;
  for (const auto& c : run.calls) {
    EXPECT_EQ(c.code, "UNAVAILABLE") << c.describe();
    EXPECT_FALSE(c.details.empty()) << c.describe();
    EXPECT_EQ(c.details.find("Received http2 header with status"), std::string::npos)
        << "an HTTP error status instead of a gRPC one: " << c.describe();
  }
}

TEST_F(GrpcProxyErrors, UpstreamTimeoutIsDeadlineExceededWithAMessage) {
  start_servers({{"blue", 0}});
  ProxyConfig cfg;
  cfg.upstream_response = "300ms";
  start_proxy_or_throw("grpc: true\nwatchdog: off\n", cfg);
  const auto t0 = Clock::now();
  auto run = run_client(json::object{
      {"timeout", 10},
      {"steps", json::array{unary_step("slow", 1, {{"metadata", metadata({{"x-delay-ms", "2000"}})}})}}});
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 1u) << run.raw;
  const auto& c = run.calls[0];
  std::cout << "[ grpc ] upstream timeout 300ms: " << c.code << " \"" << c.details << "\" after " << took << " s\n";
  EXPECT_EQ(c.code, "DEADLINE_EXCEEDED") << c.describe();
  EXPECT_FALSE(c.details.empty()) << c.describe();
  EXPECT_EQ(c.details.find("Received http2 header with status"), std::string::npos)
      << "an HTTP error status instead of a gRPC one: " << c.describe();
  EXPECT_LT(took, 1.9) << "the answer waited for the slow backend";
}

// ---------------------------------------------------------------------------------------------
// 5. Large messages: 1 MiB both ways, under both sides' flow control.

TEST_F(GrpcLargeMessages, OneMebibyteRequestAndResponsePassIntact) {
  start_servers({{"blue", 0}});
  start_proxy_or_throw();
  constexpr int kMiB = 1 << 20;
  auto run = run_client(json::object{
      {"timeout", 20},
      {"steps", json::array{
                    unary_step("echo", 2, {{"payload_bytes", kMiB}}),                       // 1 MiB each way
                    unary_step("download", 2, {{"payload", "small"}, {"resp_size", kMiB}}),  // 1 MiB answer
                    unary_step("upload", 2, {{"payload_bytes", kMiB}, {"resp_size", 16}}),  // 1 MiB request
                    unary_step("parallel", 4, {{"payload_bytes", kMiB}, {"concurrency", 4}}),
                }}},
      Ms(60000));
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 10u) << run.raw;
  std::string bad;
  EXPECT_EQ(clean_from(run.calls, "blue", &bad), 10u) << "first bad call: " << bad;
  for (const auto& c : run.calls)
    EXPECT_EQ(c.resp_len, c.label == "upload" ? 16 : kMiB) << c.describe();
}

// ---------------------------------------------------------------------------------------------
// 6. SPEC §13: p95 measures unary calls; streaming calls are counted apart.

/// One unary /test.Echo/Unary call over HTTP/1.1 whose single request message trickles in, one
/// byte per chunk every 100 ms (the prefix split over five chunks): one message each way, open
/// about 1.5 s. While the client sends, the session waits on the client (client_idle), so
/// upstream_response (1 s) does not cut it, and the call outlasts it.
void trickled_unary_call(std::uint16_t port) {
  const std::string payload = "0123456789";
  std::string message{'\0', '\0', '\0', '\0', static_cast<char>(payload.size())};
  message += payload;
  Client c(port);
  c.send("POST /test.Echo/Unary HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/grpc\r\n"
         "TE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (char b : message) {
    std::this_thread::sleep_for(Ms(100));  // the pace of the scenario, not a wait for an event
    c.send("1\r\n" + std::string(1, b) + "\r\n");
  }
  c.send("0\r\n\r\n");
  const auto r = c.read_response(Ms(5000));
  ASSERT_TRUE(r) << "no answer to the trickled call: " << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, message) << "the echo of the one message";
}

TEST_F(GrpcStreaming, StreamingCallsAreCountedApartAndStayOutOfP95) {
  start_servers({{"blue", 0}});
  ProxyConfig cfg;
  // upstream_response is the backend's silence allowed between reads (re-armed at every read of
  // the answer), not a limit on a call's length: a stream answering every 100 ms lives on.
  cfg.upstream_response = "1s";
  cfg.client_idle = "5s";
  start_proxy_or_throw("grpc: true\nwatchdog: off\n", cfg);
  json::array ticks;
  for (int i = 1; i <= 15; ++i) ticks.emplace_back("tick-" + std::to_string(i));
  auto run = run_client(json::object{
      {"timeout", 10},
      {"steps", json::array{
                    unary_step("unary", 20),
                    // Streaming by its messages: three each way, at once.
                    json::object{{"op", "stream_open"}, {"name", "quick"}, {"messages", messages({"a", "b", "c"})}},
                    json::object{{"op", "stream_close"}, {"name", "quick"}},
                    // Streaming, and slow: a message each way every 100 ms for 1.5 s.
                    json::object{{"op", "stream_open"}, {"name", "slow"}, {"messages", messages({"tick-0"})}},
                    json::object{{"op", "stream_send"}, {"name", "slow"}, {"messages", ticks}, {"interval_ms", 100}},
                    json::object{{"op", "stream_close"}, {"name", "slow"}},
                }}});
  ASSERT_EQ(run.error, "") << run.raw;
  std::string bad;
  EXPECT_EQ(clean_from(run.labelled("unary"), "blue", &bad), 20u) << "first bad call: " << bad;
  EXPECT_EQ(run.stream("quick").code, "OK") << run.stream("quick").details;
  EXPECT_EQ(run.stream("quick").answers.size(), 3u) << run.raw;
  EXPECT_EQ(run.stream("slow").code, "OK") << run.stream("slow").details;
  EXPECT_EQ(run.stream("slow").answers.size(), 16u) << run.raw;
  // Streaming by its length alone: one message each way, longer than upstream_response.
  trickled_unary_call(port_);

  const Labels blue{{"service", "app"}, {"color", "blue"}};
  auto with = [](Labels l, const char* k, const std::string& v) {
    l[k] = v;
    return l;
  };
  std::string text;
  EXPECT_EQ(wait_metric_eq("bgproxy_grpc_streaming_calls_total", blue, 3, &text), 3.0) << text;
  EXPECT_EQ(metric_value(text, "bgproxy_requests_total", with(blue, "code", "2xx")).value_or(-1), 23.0) << text;
  EXPECT_EQ(metric_value(text, "bgproxy_grpc_responses_total", with(blue, "grpc_status", "0")).value_or(-1), 23.0)
      << text;
  // The duration histogram holds the 20 unary calls, none of the three that lasted.
  EXPECT_EQ(metric_value(text, "bgproxy_request_duration_seconds_count", blue).value_or(-1), 20.0) << text;
  EXPECT_LT(metric_value(text, "bgproxy_request_duration_seconds_sum", blue).value_or(99), 1.0) << text;

  // The watchdog's figures (collected once a second): all 23 calls, the p95 of the unary ones.
  // Had the three calls of 1.3 s and more counted (3 of 23 > 5 %), p95 would be above 1 s.
  const auto deadline = Clock::now() + Ms(3000);
  json::object figures;
  for (;;) {
    figures = status().at("colors").at("blue").as_object();
    if (figures.at("requests").to_number<std::uint64_t>() == 23 || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(Ms(100));
  }
  EXPECT_EQ(figures.at("requests").to_number<std::uint64_t>(), 23u) << json::serialize(figures);
  EXPECT_EQ(figures.at("streaming_calls").to_number<std::uint64_t>(), 3u) << json::serialize(figures);
  const double p95 = figures.at("p95_seconds").to_number<double>();
  EXPECT_GT(p95, 0.0) << "the unary calls are in p95: " << json::serialize(figures);
  EXPECT_LT(p95, 0.5) << "a streaming call's duration reached p95: " << json::serialize(figures);
  const auto text_status = bgctl({"status"});
  EXPECT_NE(text_status.out.find("blue streaming calls: 3 (not in p95)"), std::string::npos) << text_status.out;
}

// ---------------------------------------------------------------------------------------------
// 7. Backend connections (SPEC §13, issue 15 Deliver 2): the calls of a worker share multiplexed
// HTTP/2 connections to a server, within the server's SETTINGS_MAX_CONCURRENT_STREAMS. Counted
// on the proxy's side: its established connections to the server's port.

/// Every call OK and answered by `server`.
void expect_all_ok_from(const ClientRun& run, const std::string& server, std::size_t calls) {
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), calls) << run.raw;
  for (const auto& c : run.calls) {
    EXPECT_EQ(c.code, "OK") << c.describe();
    EXPECT_EQ(c.server, server) << c.describe();
    EXPECT_TRUE(c.req_ok && c.resp_ok) << c.describe();
  }
}

TEST_F(GrpcBackendConnections, TwentyFourConcurrentCallsShareOneConnectionToTheServer) {
  start_servers({{"blue", 0}});
  start_proxy_or_throw();
  // No call before the burst: the calls that come while the first connection connects queue
  // their streams on it.
  auto run = run_client(json::object{
      {"timeout", 20},
      {"steps", json::array{unary_step("burst", 24, {{"concurrency", 24}, {"metadata", metadata({{"x-delay-ms", "300"}})}})}}});
  expect_all_ok_from(run, "blue", 24);
  const auto peers = connections_to(server("blue").port);
  std::cout << "[ grpc ] 24 concurrent calls: " << peers.size() << " connection(s) to blue " << ports_text(peers) << "\n";
  EXPECT_EQ(peers.size(), 1u) << "connections from the proxy to blue: " << ports_text(peers);
}

TEST_F(GrpcBackendConnections, ServerLimitOfFourStreamsGetsAnotherConnectionPerFourCalls) {
  start_servers({ServerSpec("blue", 0, "", 4)});
  start_proxy_or_throw();
  // One call first, on the same channel (one client connection: one worker, one pool): its
  // connection learns the server's limit, which later connections assume until their own
  // SETTINGS arrive.
  auto run = run_client(json::object{
      {"timeout", 20},
      {"steps", json::array{unary_step("first", 1),
                            unary_step("burst", 16, {{"concurrency", 16}, {"metadata", metadata({{"x-delay-ms", "500"}})}})}}});
  expect_all_ok_from(run, "blue", 17);
  const auto peers = connections_to(server("blue").port);
  std::cout << "[ grpc ] 16 concurrent calls, 4 streams per connection: " << peers.size()
            << " connections to blue " << ports_text(peers) << "\n";
  // 16 calls at once need 4 connections of 4 streams; one per call would be 16.
  EXPECT_GE(peers.size(), 4u) << "the server's MAX_CONCURRENT_STREAMS was not respected: " << ports_text(peers);
  EXPECT_LE(peers.size(), 6u) << "calls did not share connections: " << ports_text(peers);
}

std::size_t refusals(const GrpcServer& s) {
  const auto out = s.proc->stdout_text();
  std::size_t n = 0;
  for (auto at = out.find("REFUSED conn="); at != std::string::npos; at = out.find("REFUSED conn=", at + 1)) ++n;
  return n;
}

// A server going away refuses the streams it did not take (above its GOAWAY's last stream id,
// or RST_STREAM REFUSED_STREAM): it did nothing with them, so such a call goes again on a fresh
// connection, message and all, whatever its method (RFC 9113 §8.7) — once.
TEST_F(GrpcBackendConnections, CallsRefusedByAGoawayGoAgainOnAFreshConnectionWithTheirMessage) {
  start_servers({ServerSpec("blue", 50, "goaway")});  // every other attempt refused
  start_proxy_or_throw("grpc: true\nwatchdog: off\n");
  auto run = run_client(json::object{
      {"timeout", 20}, {"steps", json::array{unary_step("u", 6, {{"payload", "a message that goes twice"}})}}});
  expect_all_ok_from(run, "blue", 6);  // req_ok: the server got each message intact
  // Attempts 1, 3, 5, 7 and 9 (from 0) were refused; each call after the first had one.
  EXPECT_EQ(refusals(server("blue")), 5u) << server("blue").proc->stdout_text();
}

TEST_F(GrpcBackendConnections, ACallRefusedTwiceIsUnavailableAndWasSentOnlyTwice) {
  start_servers({ServerSpec("blue", 100, "goaway")});
  start_proxy_or_throw("grpc: true\nwatchdog: off\n");
  auto run = run_client(json::object{{"timeout", 10}, {"steps", json::array{unary_step("u", 1)}}});
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 1u) << run.raw;
  EXPECT_EQ(run.calls[0].code, "UNAVAILABLE") << run.calls[0].describe();
  EXPECT_EQ(refusals(server("blue")), 2u) << server("blue").proc->stdout_text();
}

TEST_F(GrpcBackendConnections, ACallThatTimesOutResetsOnlyItsStreamAndTheOthersGoOnOnTheSameConnection) {
  start_servers({{"blue", 0}});
  ProxyConfig cfg;
  cfg.upstream_response = "400ms";
  start_proxy_or_throw("grpc: true\nwatchdog: off\n", cfg);
  // One channel (one client connection: one worker, one pool): a first call opens the backend
  // connection; then call 0 outlives upstream_response while 40 others, four at a time, run
  // beside it on that connection.
  const auto go = dir_ / "go";
  auto& client = spawn_client(
      json::object{{"timeout", 20},
                   {"steps", json::array{unary_step("first", 1), json::object{{"op", "event"}, {"name", "warm"}},
                                         json::object{{"op", "wait_file"}, {"path", go.string()}},
                                         unary_step("calls", 41, {{"concurrency", 4},
                                                                  {"metadata", metadata({{"x-delay-ms", "100"}})},
                                                                  {"first_metadata", metadata({{"x-delay-ms", "1500"}})}})}}},
      "calls");
  wait_event(client, "warm");
  const auto before = connections_to(server("blue").port);
  ASSERT_EQ(before.size(), 1u) << ports_text(before);
  touch("go");
  const auto run = finish_client(client);
  ASSERT_EQ(run.error, "") << run.raw;
  ASSERT_EQ(run.calls.size(), 42u) << run.raw;
  for (const auto& c : run.calls) {
    if (c.label == "calls" && c.i == 0) {
      EXPECT_EQ(c.code, "DEADLINE_EXCEEDED") << c.describe();
      continue;
    }
    EXPECT_EQ(c.code, "OK") << c.describe();
    EXPECT_EQ(c.server, "blue") << c.describe();
  }
  const auto after = connections_to(server("blue").port);
  std::cout << "[ grpc ] a timed-out call beside 40 others: connections to blue before " << ports_text(before)
            << ", after " << ports_text(after) << "\n";
  EXPECT_EQ(after, before) << "the timeout closed the shared connection";
}

}  // namespace
}  // namespace bgtest
