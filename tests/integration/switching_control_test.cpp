// Issue 3 acceptance, control-plane side (SPEC §7, §8): state survives kill -9, bad control input
// changes nothing and breaks nothing, bgctl exit codes, a state file that cannot be written
// refuses the change, and the switch acknowledgement latency under load (measured, printed).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

const char* bgctl_bin() { return BGCTL_BIN; }

std::string served_color(const Response& r) {
  auto color = r.header("X-Bg-Color");
  auto backend = r.header("X-Backend");
  if (!color || !backend || *color != *backend) return {};
  return *color;
}

/// A raw client of the control socket: one JSON line each way, every wait bounded.
class ControlClient {
public:
  explicit ControlClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) throw std::runtime_error("socket path too long: " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      int e = errno;
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error("connect " + path + ": " + std::strerror(e));
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~ControlClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  int fd() const { return fd_; }

  /// Writes everything; false when the peer closed or it did not fit in `timeout`.
  bool send(std::string_view data, Ms timeout = Ms(5000)) {
    auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
      if (!wait(POLLOUT, deadline)) return false;
    }
    return true;
  }

  /// One answer line (without its newline); nullopt on EOF, error or timeout.
  std::optional<std::string> read_line(Ms timeout = Ms(5000)) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }

  /// Sends `line` + "\n" and reads the answer.
  std::optional<std::string> ask(std::string_view line, Ms timeout = Ms(5000)) {
    std::string l(line);
    l += '\n';
    if (!send(l, timeout)) return std::nullopt;
    return read_line(timeout);
  }

  /// True when the peer closes (EOF or reset) within `timeout`, with nothing more than `buf_`.
  bool closed_within(Ms timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      char b[4096];
      ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n == 0) return true;
      if (n < 0 && errno != EAGAIN && errno != EINTR) return true;
      if (n > 0) {
        buf_.append(b, static_cast<std::size_t>(n));
        continue;
      }
      if (!wait(POLLIN, deadline)) return false;
    }
  }

  std::string& buffered() { return buf_; }

  /// Reads what is available now (non-blocking); false on EOF or error.
  bool fill_now() {
    char b[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n > 0) {
        buf_.append(b, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return false;
      return errno == EAGAIN || errno == EINTR;
    }
  }

private:
  bool wait(short events, Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, events, 0};
    return ::poll(&p, 1, static_cast<int>(left) + 1) > 0;
  }
  bool fill(Clock::time_point deadline) {
    for (;;) {
      char b[4096];
      ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n > 0) {
        buf_.append(b, static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0) return false;
      if (errno != EAGAIN && errno != EINTR) return false;
      if (!wait(POLLIN, deadline)) return false;
    }
  }

  int fd_ = -1;
  std::string buf_;
};

/// Parses an answer line into an object; a test failure (and an empty object) when it is not one.
json::object answer_object(const std::string& line) {
  boost::system::error_code ec;
  auto v = json::parse(line, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "answer is not a JSON object: " << line.substr(0, 300);
    return {};
  }
  return v.as_object();
}

class SwitchingControlTest : public IntegrationTest {
protected:
  ProxyConfig pair_config(const std::string& extra = "") {
    if (!blue_) blue_ = &start_backend("blue");
    if (!green_) green_ = &start_backend("green");
    ProxyConfig cfg;
    cfg.blue = {blue_->address()};
    cfg.green = {green_->address()};
    cfg.service_extra = extra;
    return cfg;
  }

  Proxy& start_pair(const std::string& extra = "") {
    Proxy& p = start_proxy(pair_config(extra));
    socket_ = (dir_ / "control-0.sock").string();
    state_ = dir_ / "state-0.json";
    return p;
  }

  CommandResult bgctl(std::vector<std::string> args, bool json_out = false) {
    std::vector<std::string> argv{bgctl_bin(), "-S", socket_};
    if (json_out) argv.push_back("--json");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path(), Ms(10000));
  }

  void ctl_ok(std::vector<std::string> args) {
    std::string what;
    for (const auto& a : args) what += a + " ";
    auto r = bgctl(std::move(args));
    ASSERT_EQ(r.exit_code, 0) << "bgctl " << what << "\nstdout: " << r.out << "\nstderr: " << r.err;
  }

  json::object ctl_json(std::vector<std::string> args) {
    auto r = bgctl(std::move(args), true);
    if (r.exit_code != 0) throw std::runtime_error("bgctl --json: exit " + std::to_string(r.exit_code) + ": " + r.err);
    return json::parse(r.out).as_object();
  }

  json::object service_status() { return ctl_json({"status"}).at("services").as_array().at(0).as_object(); }

  /// The parts of a service's status that are state (not traffic figures): name, weights,
  /// stable, phase, step, reason, target and per-server admin states.
  static json::object state_part(const json::object& svc) {
    json::object out;
    for (const char* k : {"name", "weights", "stable", "phase", "step", "reason", "target"})
      if (auto* v = svc.if_contains(k)) out[k] = *v;
    json::object colors;
    for (const char* c : {"blue", "green"}) colors[c] = svc.at("colors").at(c).at("servers");
    out["servers"] = std::move(colors);
    return out;
  }

  /// One request through the proxy on a fresh connection must answer 200.
  void expect_serving(Proxy& p, const std::string& target = "/alive") {
    std::string why;
    auto r = round_trip(p.port(), get_request(target), Ms(3000), &why);
    ASSERT_TRUE(r) << "data plane does not answer: " << why;
    EXPECT_EQ(r->status, 200) << r->raw_head;
  }

  Backend* blue_ = nullptr;
  Backend* green_ = nullptr;
  std::string socket_;
  fs::path state_;
};

// Acceptance: kill -9 then start → same weights, same admin states, same history, and routing
// follows them.
TEST_F(SwitchingControlTest, KillNineThenRestartKeepsWeightsAdminStatesAndHistory) {
  blue_ = &start_backend("blue");
  Backend& blue2 = start_backend("blue");  // a second blue server, to be disabled
  green_ = &start_backend("green");
  ProxyConfig cfg = pair_config();
  cfg.blue = {blue_->address(), blue2.address()};
  Proxy& p = start_proxy(cfg);
  socket_ = (dir_ / "control-0.sock").string();
  state_ = dir_ / "state-0.json";

  ctl_ok({"split", "--green", "30"});
  ctl_ok({"switch", "green"});
  ctl_ok({"split", "--green", "25.5"});
  ctl_ok({"server", "disable", blue2.address()});
  json::object before = state_part(service_status());
  json::value history_before = ctl_json({"history", "--limit", "100"}).at("history");
  ASSERT_EQ(history_before.as_array().size(), 4u) << history_before;
  EXPECT_EQ(before.at("weights"), (json::value{{"blue", 74.5}, {"green", 25.5}})) << before;
  EXPECT_EQ(before.at("servers").at("blue").as_array().at(1).at("state"), "disabled") << before;

  p.process().signal(SIGKILL);
  ASSERT_EQ(p.process().wait_exit(Ms(5000)), 128 + SIGKILL);

  // Same config file, same state file (index 0), same backends.
  proxies_.push_back(std::make_unique<Proxy>(cfg, dir_.path(), 0));
  Proxy& q = *proxies_.back();
  json::object after = state_part(service_status());
  EXPECT_EQ(json::serialize(after), json::serialize(before));
  json::value history_after = ctl_json({"history", "--limit", "100"}).at("history");
  EXPECT_EQ(json::serialize(history_after), json::serialize(history_before));

  // Routing follows: ~25.5 % green, and nothing reaches the disabled blue server.
  auto blue2_before = blue2.stats().requests;
  int green = 0, blue = 0;
  constexpr int n = 2000;
  Client c(q.port());
  for (int i = 0; i < n; ++i) {
    c.send(get_request("/restarted"));
    auto r = c.read_response(Ms(3000));
    ASSERT_TRUE(r) << c.last_error();
    ASSERT_EQ(r->status, 200);
    std::string color = served_color(*r);
    ASSERT_FALSE(color.empty()) << r->raw_head;
    (color == "green" ? green : blue)++;
  }
  double share = 100.0 * green / n;
  EXPECT_NEAR(share, 25.5, 4.0) << "green " << green << " blue " << blue;
  EXPECT_EQ(blue2.stats().requests, blue2_before) << "the disabled blue server got requests after the restart";
}

// Acceptance: at least 20 malformed or invalid control inputs each get a clear ok:false answer
// or a clean close; the state file and weights are unchanged; the data plane keeps serving;
// bgctl exits 1/2/3 as SPEC §7 says.
TEST_F(SwitchingControlTest, BadControlInputChangesNothingAndBreaksNothing) {
  Proxy& p = start_pair();
  ctl_ok({"split", "--green", "20"});  // a known state, on disk
  const std::string state_bytes = read_file(state_);
  ASSERT_FALSE(state_bytes.empty());
  const json::object status_before = state_part(service_status());

  // A client that connects and never writes, held open across everything below.
  ControlClient silent(socket_);

  ControlClient c(socket_);
  const std::vector<std::string> bad = {
      "not json",
      "{\"command\":\"split\"",
      "{\"command\":\"split\",\"green\":10,}",
      "[\"status\"]",
      "\"status\"",
      "42",
      "null",
      "{}",
      "{\"command\":\"frobnicate\"}",
      "{\"command\":42}",
      "{\"command\":\"split\",\"service\":\"nope\",\"green\":10}",
      "{\"command\":\"status\",\"service\":\"nope\"}",
      "{\"command\":\"switch\",\"service\":\"nope\",\"color\":\"green\"}",
      "{\"command\":\"split\",\"green\":150}",
      "{\"command\":\"split\",\"green\":-1}",
      "{\"command\":\"split\",\"green\":\"abc\"}",
      "{\"command\":\"split\",\"green\":10.555}",
      "{\"command\":\"split\",\"green\":\"10.555\"}",
      "{\"command\":\"split\",\"green\":1e400}",
      "{\"command\":\"split\",\"green\":null}",
      "{\"command\":\"split\",\"green\":true}",
      "{\"command\":\"split\"}",
      "{\"command\":\"split\",\"green\":10,\"bogus\":1}",
      "{\"command\":\"status\",\"verbose\":true}",
      "{\"command\":\"switch\",\"color\":\"purple\"}",
      "{\"command\":\"switch\"}",
      "{\"command\":\"switch\",\"color\":\"green\",\"force\":\"yes\"}",
      "{\"command\":\"server\",\"action\":\"disable\",\"address\":\"10.9.9.9:1\"}",
      "{\"command\":\"server\",\"action\":\"explode\",\"address\":\"" + blue_->address() + "\"}",
      "{\"command\":\"history\",\"limit\":-5}",
      "{\"command\":\"split\",\"service\":[\"app\"],\"green\":10}",
      std::string(5000, '[') + std::string(5000, ']'),
      std::string("{\"command\":\"st\0tus\"}", 20),
      "{\"command\":\"status\xff\xfe\"}",
      "",
      "   ",
  };
  // What a clear message must at least mention, for some of them.
  const std::map<std::string, std::string> must_mention = {
      {"{\"command\":\"frobnicate\"}", "frobnicate"},
      {"{\"command\":\"split\",\"service\":\"nope\",\"green\":10}", "nope"},
      {"{\"command\":\"status\",\"service\":\"nope\"}", "nope"},
      {"{\"command\":\"split\",\"green\":150}", "0 and 100"},
      {"{\"command\":\"split\",\"green\":-1}", "0 and 100"},
      {"{\"command\":\"split\",\"green\":10,\"bogus\":1}", "bogus"},
  };
  int answered = 0;
  for (const auto& line : bad) {
    auto a = c.ask(line);
    ASSERT_TRUE(a) << "no answer (connection lost) to: " << line.substr(0, 120);
    auto o = answer_object(*a);
    EXPECT_EQ(o["ok"], false) << "for " << line.substr(0, 120) << "\nanswer: " << *a;
    auto* err = o.if_contains("error");
    EXPECT_TRUE(err && err->is_string() && !err->as_string().empty())
        << "no clear error message for " << line.substr(0, 120) << "\nanswer: " << *a;
    if (auto it = must_mention.find(line); it != must_mention.end() && err && err->is_string()) {
      EXPECT_NE(std::string(err->as_string()).find(it->second), std::string::npos)
          << "for " << line << "\nanswer: " << *a;
    }
    ++answered;
  }
  EXPECT_GE(answered, 20);

  // A malformed line and a good one in a single write: both answered, connection stays up.
  ASSERT_TRUE(c.send("{oops\n{\"command\":\"status\"}\n"));
  auto a1 = c.read_line(), a2 = c.read_line();
  ASSERT_TRUE(a1 && a2) << "pipelined bad+good line not both answered";
  EXPECT_EQ(answer_object(*a1)["ok"], false) << *a1;
  EXPECT_EQ(answer_object(*a2)["ok"], true) << *a2;
  auto a3 = c.ask("{\"command\":\"status\"}");
  ASSERT_TRUE(a3) << "connection did not stay up after a malformed line";
  EXPECT_EQ(answer_object(*a3)["ok"], true) << *a3;

  // A 10 MiB line: {"ok":false,"error":"line too long"}, then the connection is closed. The
  // answer must be readable before the close, even while we are still writing.
  {
    ControlClient big(socket_);
    std::string payload = "{\"command\":\"split\",\"green\":\"" + std::string(10 * 1024 * 1024, '1') + "\"}\n";
    std::string_view rest(payload);
    auto deadline = Clock::now() + Ms(15000);
    bool write_failed = false;
    while (big.buffered().find('\n') == std::string::npos && Clock::now() < deadline) {
      if (!rest.empty() && !write_failed) {
        ssize_t n = ::send(big.fd(), rest.data(), std::min<std::size_t>(rest.size(), 256 * 1024), MSG_NOSIGNAL);
        if (n > 0) rest.remove_prefix(static_cast<std::size_t>(n));
        else if (n < 0 && errno != EAGAIN && errno != EINTR) write_failed = true;
      }
      if (!big.fill_now()) break;
      pollfd pf{big.fd(), static_cast<short>(POLLIN | (rest.empty() || write_failed ? 0 : POLLOUT)), 0};
      ::poll(&pf, 1, 50);
    }
    auto line = big.read_line(Ms(2000));
    ASSERT_TRUE(line) << "no answer to a 10 MiB line (wrote " << payload.size() - rest.size() << " bytes)";
    auto o = answer_object(*line);
    EXPECT_EQ(o["ok"], false) << *line;
    EXPECT_EQ(o["error"], "line too long") << *line;
    EXPECT_TRUE(big.closed_within(Ms(5000))) << "connection not closed after a line too long";
    EXPECT_EQ(big.buffered(), "") << "more after the line-too-long answer";
  }

  // 500 concurrent control connections, each asking for status: all answered.
  {
    constexpr int n = 500;
    std::vector<std::unique_ptr<ControlClient>> cs;
    for (int i = 0; i < n; ++i) cs.push_back(std::make_unique<ControlClient>(socket_));
    for (auto& x : cs) ASSERT_TRUE(x->send("{\"command\":\"status\"}\n"));
    int ok = 0;
    std::string first_bad;
    for (auto& x : cs) {
      auto a = x->read_line(Ms(10000));
      if (!a) {
        if (first_bad.empty()) first_bad = "no answer";
        continue;
      }
      if (answer_object(*a)["ok"] == true) ++ok;
      else if (first_bad.empty()) first_bad = *a;
    }
    EXPECT_EQ(ok, n) << first_bad;
  }

  // The silent client held nobody up (everything above was answered meanwhile) and was sent nothing.
  silent.fill_now();
  EXPECT_EQ(silent.buffered(), "") << "the client that never wrote got an answer";

  // bgctl exit codes (SPEC §7).
  auto r = bgctl({"status", "-s", "nope"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  r = bgctl({"split", "--green", "20", "-s", "nope"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  for (std::vector<std::string> usage : std::vector<std::vector<std::string>>{
           {"split", "--green", "150"},
           {"split", "--green", "-1"},
           {"split", "--green", "abc"},
           {"split", "--green", "10.555"},
           {"split"},
           {"switch", "purple"},
           {"switch"},
           {"frobnicate"},
           {"server", "explode", "127.0.0.1:1"},
       }) {
    std::string what;
    for (const auto& a : usage) what += a + " ";
    r = bgctl(usage);
    EXPECT_EQ(r.exit_code, 2) << "bgctl " << what << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_FALSE(r.err.empty()) << "bgctl " << what << " printed no message";
  }
  r = run_command({bgctl_bin(), "-S", (dir_ / "no-such.sock").string(), "status"}, dir_.path());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  r = run_command({bgctl_bin(), "-S", (dir_ / "no-such.sock").string(), "switch", "green"}, dir_.path());
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;

  // Nothing changed, and everything still works.
  EXPECT_EQ(read_file(state_), state_bytes) << "the state file changed";
  EXPECT_EQ(json::serialize(state_part(service_status())), json::serialize(status_before));
  EXPECT_EQ(ctl_json({"history"}).at("history").as_array().size(), 1u);
  auto still = c.ask("{\"command\":\"status\"}");
  ASSERT_TRUE(still);
  EXPECT_EQ(answer_object(*still)["ok"], true);
  ASSERT_NO_FATAL_FAILURE(expect_serving(p));
  EXPECT_TRUE(p.process().running());
}

// SPEC §8 / issue 3: a failed state-file write refuses the change with a clear error rather than
// diverging from what is on disk. (Works as root: the state file's path is made a directory, so
// the final rename of the temp file onto it fails.)
TEST_F(SwitchingControlTest, UnwritableStateFileRefusesTheChange) {
  Proxy& p = start_pair();
  ctl_ok({"split", "--green", "20"});
  fs::remove(state_);
  fs::create_directory(state_);

  auto r = bgctl({"split", "--green", "60"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("state file"), std::string::npos) << "message does not mention the state file: " << r.err;
  EXPECT_EQ(json::value_to<double>(service_status().at("weights").at("green")), 20.0);
  r = bgctl({"switch", "green"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(json::value_to<double>(service_status().at("weights").at("green")), 20.0);
  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_weight", {{"service", "app"}, {"color", "green"}}), 20.0);
  EXPECT_EQ(ctl_json({"history"}).at("history").as_array().size(), 1u) << "a refused change is in the history";
  ASSERT_NO_FATAL_FAILURE(expect_serving(p));

  // Writable again: changes are accepted and land on disk.
  fs::remove(state_);
  ctl_ok({"split", "--green", "60"});
  EXPECT_EQ(json::value_to<double>(service_status().at("weights").at("green")), 60.0);
  EXPECT_NE(read_file(state_).find("history"), std::string::npos);
}

// SPEC §8: a corrupt state file is reported and moved aside (never silently lost), and the proxy
// starts from `initial`.
TEST_F(SwitchingControlTest, CorruptStateFileIsReportedAndMovedAside) {
  const std::string garbage = "{\"services\": [ this is not a state file";
  write_file(dir_ / "state-0.json", garbage);
  Proxy& p = start_pair();
  EXPECT_TRUE(p.process().wait_for_line(std::regex("corrupt"), Ms(2000))) << p.process().stderr_text();
  std::vector<fs::path> aside;
  for (const auto& e : fs::directory_iterator(dir_.path()))
    if (e.path().filename().string().rfind("state-0.json.corrupt", 0) == 0) aside.push_back(e.path());
  ASSERT_EQ(aside.size(), 1u) << "corrupt state file not moved aside";
  EXPECT_EQ(read_file(aside[0]), garbage);
  EXPECT_EQ(json::value_to<double>(service_status().at("weights").at("green")), 0.0);
  ctl_ok({"split", "--green", "30"});
  EXPECT_EQ(json::value_to<double>(service_status().at("weights").at("green")), 30.0);
  EXPECT_EQ(read_file(aside[0]), garbage);
  ASSERT_NO_FATAL_FAILURE(expect_serving(p));
}

/// Each history entry as [command, args], oldest first, to compare with an expected JSON text.
json::value commands_and_args(const json::array& history) {
  json::array out;
  for (const auto& e : history) out.push_back(json::array{e.at("command"), e.at("args")});
  return out;
}

// Issue 11 / SPEC §7: a history entry's command is the bare verb, what it was given is in args;
// read over the control socket itself, and as bgctl shows it.
TEST_F(SwitchingControlTest, HistoryEntriesAreTheBareVerbWithArgs) {
  Proxy& p = start_pair();
  const std::string green = green_->address();
  ctl_ok({"split", "--green", "10"});
  ctl_ok({"split", "--blue", "87.5"});
  ctl_ok({"switch", "green"});
  ctl_ok({"rollback"});
  ctl_ok({"server", "drain", green});
  ctl_ok({"server", "enable", green});
  ctl_ok({"canary", "start", "--steps", "10,50,100", "--interval", "90s"});
  ctl_ok({"canary", "pause"});
  ctl_ok({"canary", "abort"});

  ControlClient c(socket_);
  auto line = c.ask(R"({"command":"history","limit":100})");
  ASSERT_TRUE(line);
  const json::object answer = answer_object(*line);
  ASSERT_EQ(answer.at("ok"), true) << *line;
  const json::value want = json::parse(R"([["split",{"green":10}],["split",{"green":12.5}],)"
                                       R"(["switch",{"color":"green"}],["rollback",{}],)"
                                       R"(["server",{"action":"drain","address":")" + green + R"("}],)"
                                       R"(["server",{"action":"enable","address":")" + green + R"("}],)"
                                       R"(["canary",{"action":"start","target":"green","steps":[10,50,100],)"
                                       R"("interval_seconds":90}],)"
                                       R"(["canary",{"action":"pause"}],["canary",{"action":"abort"}]])");
  EXPECT_EQ(commands_and_args(answer.at("history").as_array()), want) << *line;
  // Weights in args are written like the answer's other numbers, never in exponent form.
  EXPECT_NE(line->find(R"("command":"split","args":{"green":12.5},)"), std::string::npos) << *line;

  // The state file holds the same.
  EXPECT_NE(read_file(state_).find(R"("command":"switch","args":{"color":"green"},)"), std::string::npos)
      << read_file(state_);

  auto r = bgctl({"history", "--limit", "100"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> rows = {"split green 10% ", "split green 12.5% ", "switch green ", "rollback ",
                                        "server drain " + green + " ", "canary start green 10%,50%,100% every 90s ",
                                        "canary abort "};
  for (const auto& shown : rows) {
    EXPECT_NE(r.out.find("  " + shown), std::string::npos) << "bgctl history does not show \"" << shown << "\":\n"
                                                           << r.out;
  }
  ASSERT_NO_FATAL_FAILURE(expect_serving(p));
}

// Issue 11: a state file written before the change (command text, no args) still loads; its
// entries come back as verb and args, and the next save writes them in the new form.
TEST_F(SwitchingControlTest, StateFileWithOldHistoryCommandsLoadsAsVerbAndArgs) {
  std::string old_history;
  for (const char* command : {"split green 10", "switch green", "rollback", "canary start green 10,50,100",
                              "canary advance", "promote", "server disable 127.0.0.1:5006"}) {
    if (!old_history.empty()) old_history += ',';
    old_history += std::string(R"({"time":"2026-11-24T21:30:00.123Z","service":"app","command":")") + command +
                   R"(","by":{"uid":0,"pid":4242},"reason":"manual","before":{"blue":100.0,"green":0.0},)"
                   R"("after":{"blue":100.0,"green":0.0}})";
  }
  write_file(dir_ / "state-0.json", R"({"version":1,"services":[],"history":[)" + old_history + "]}");
  Proxy& p = start_pair();
  EXPECT_EQ(p.process().stderr_text().find("corrupt"), std::string::npos) << p.process().stderr_text();

  const json::object history = ctl_json({"history", "--limit", "100"});
  const json::value want = json::parse(R"([["split",{"green":10}],["switch",{"color":"green"}],["rollback",{}],)"
                                       R"(["canary",{"action":"start","target":"green","steps":[10,50,100]}],)"
                                       R"(["canary",{"action":"advance"}],["canary",{"action":"promote"}],)"
                                       R"(["server",{"action":"disable","address":"127.0.0.1:5006"}]])");
  EXPECT_EQ(commands_and_args(history.at("history").as_array()), want) << json::serialize(history);

  ctl_ok({"split", "--green", "30"});
  const std::string saved = read_file(state_);
  EXPECT_NE(saved.find(R"("command":"split","args":{"green":10},)"), std::string::npos) << saved;
  EXPECT_NE(saved.find(R"("command":"canary","args":{"action":"promote"},)"), std::string::npos) << saved;
  EXPECT_NE(saved.find(R"("command":"split","args":{"green":30},)"), std::string::npos) << saved;
  EXPECT_EQ(saved.find("split green"), std::string::npos) << saved;
}

// Measurement (issue 3 asks for < 5 ms median; asserted only loosely so CI stays stable): the
// time for a switch to be acknowledged on the raw control socket while both workers are busy.
TEST_F(SwitchingControlTest, SwitchAckLatencyUnderLoad) {
  Proxy& p = start_pair("sticky: none");
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> served{0}, failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 8; ++t) {
    load.emplace_back([&] {
      auto c = Client::try_connect(p.port());
      if (!c) {
        ++failed;
        return;
      }
      const std::string req = get_request("/busy");
      while (!stop.load(std::memory_order_relaxed)) {
        if (!c->try_send(req)) {
          ++failed;
          return;
        }
        auto r = c->read_response(Ms(5000));
        if (!r || r->status != 200) {
          ++failed;
          return;
        }
        ++served;
      }
    });
  }
  // Load is flowing before we measure.
  auto deadline = Clock::now() + Ms(5000);
  while (served.load() < 500 && failed.load() == 0 && Clock::now() < deadline) std::this_thread::sleep_for(Ms(1));

  ControlClient c(socket_);
  std::vector<double> ms;
  std::string bad;
  const std::uint64_t served_before = served.load();
  for (int i = 0; i < 100; ++i) {
    const char* color = i % 2 == 0 ? "green" : "blue";
    auto t0 = Clock::now();
    auto a = c.ask(std::string("{\"command\":\"switch\",\"color\":\"") + color + "\"}");
    auto t1 = Clock::now();
    if (!a) {
      bad = "no answer";
      break;
    }
    if (answer_object(*a)["ok"] != true) {
      bad = *a;
      break;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  const std::uint64_t served_during = served.load() - served_before;
  stop = true;
  for (auto& t : load) t.join();
  ASSERT_TRUE(bad.empty()) << bad;
  ASSERT_EQ(ms.size(), 100u);
  EXPECT_EQ(failed.load(), 0u);
  std::sort(ms.begin(), ms.end());
  double median = (ms[49] + ms[50]) / 2;
  std::cout << "switch ack median: " << median << " ms (p90 " << ms[89] << " ms, max " << ms[99] << " ms; "
            << served_during << " requests served meanwhile)\n";
  EXPECT_GT(served_during, 0u) << "no load while measuring";
  EXPECT_LT(median, 50.0);
}

// SPEC §15: `bgctl status --watch` on a pipe prints the lines that changed, each after the time:
// the weights line once more after a split, the lines that stayed the same not again.
TEST_F(SwitchingControlTest, StatusWatchOnAPipePrintsALinePerChange) {
  start_pair();
  Process watch({bgctl_bin(), "-S", socket_, "status", "--watch"}, dir_.path(), "bgctl-watch");
  const std::regex stamp("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ ");
  ASSERT_TRUE(watch.wait_for_line(std::regex("Z .*blue 100(\\.0+)?% / green 0(\\.0+)?%"), Ms(5000), Stream::Stdout))
      << watch.stdout_text() << watch.stderr_text();
  ctl_ok({"split", "--green", "50"});
  ASSERT_TRUE(watch.wait_for_line(std::regex("Z .*blue 50(\\.0+)?% / green 50(\\.0+)?%"), Ms(5000), Stream::Stdout))
      << watch.stdout_text();
  const std::string out = watch.stdout_text();
  watch.stop();
  std::istringstream lines(out);
  int header_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_TRUE(std::regex_search(line, stamp)) << "a line without its time: " << line;
    if (line.find(" COLOR ") != std::string::npos) ++header_lines;
  }
  // The table's header did not change with the split (a "reason:" line appeared above it), so
  // it came once.
  EXPECT_EQ(header_lines, 1) << out;
}

}  // namespace
}  // namespace bgtest
