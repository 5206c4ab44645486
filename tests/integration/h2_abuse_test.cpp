// Issue 15 item 5, SPEC §13: HTTP/2 abuse is cut. Each case drives one abusive h2c connection
// with h2_abuse.py (hand-built frames: hyperframe, and its own HPACK encoder; run with
// /usr/bin/python3) and asserts three things:
//   - on the wire: what the abusive connection got (GOAWAY and its code, resets, the close);
//   - that another connection opened afterwards (h2_client.py) is served normally;
//   - where a reason applies, that bgproxy_http2_protocol_errors_total{reason} grew;
// and, where memory is at stake, that the proxy's VmRSS/VmHWM stayed bounded.
//
// Cases: rapid reset; PING and SETTINGS floods whose ACKs are never read; a CONTINUATION flood; a
// header list over http2.max_header_list_bytes; an HPACK bomb; a client with a zero window; a
// client that never reads its socket; a stream that never sends its body; empty DATA frames.
//
// Each defence the SPEC asks for is asserted: the connection cut (with GOAWAY where one can
// still be sent), other connections served, memory bounded, the reason counted in
// bgproxy_http2_protocol_errors_total.
//
// Every wait is bounded and synchronised on an event: a client's exit or event line, a backend's
// request count, a metric.

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "recording_backend.hpp"  // printable()

namespace bgtest {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

// Debian's interpreter: a pyenv python3 earlier on PATH has no h2/hyperframe/hpack.
constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kErrors = "bgproxy_http2_protocol_errors_total";
constexpr const char* kReasons[] = {"flood", "bad_preface", "headers_too_large", "malformed_stream", "protocol"};
constexpr long kMiB = 1024;  // in KiB, /proc's unit

/// h2_abuse.py lives next to h2_client.py (tests/integration/), whose path tests/CMakeLists.txt passes in.
std::string script(const char* name) { return (fs::path(BG_H2_CLIENT_PY).parent_path() / name).string(); }


/// Memory bounds are for a plain build; ASan's redzones and quarantine take more.
constexpr long mem_bound(long kib) { return sanitized_build() ? 4 * kib : kib; }

/// RFC 9113 §7 error codes, for messages.
std::string h2_error_name(std::int64_t code) {
  static const char* names[] = {"NO_ERROR",
                                "PROTOCOL_ERROR",
                                "INTERNAL_ERROR",
                                "FLOW_CONTROL_ERROR",
                                "SETTINGS_TIMEOUT",
                                "STREAM_CLOSED",
                                "FRAME_SIZE_ERROR",
                                "REFUSED_STREAM",
                                "CANCEL",
                                "COMPRESSION_ERROR",
                                "CONNECT_ERROR",
                                "ENHANCE_YOUR_CALM",
                                "INADEQUATE_SECURITY",
                                "HTTP_1_1_REQUIRED"};
  if (code >= 0 && code < static_cast<std::int64_t>(std::size(names))) return names[code];
  return "0x" + std::to_string(code);
}
constexpr std::int64_t kInternalError = 2, kEnhanceYourCalm = 11;

/// CPU time (user + system) of a process so far, in ms.
std::optional<long> cpu_ms(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stol(f);
    if (i == 15) stime = std::stol(f);
  }
  return (utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
}

// ---------------------------------------------------------------------------------------------
// What h2_abuse.py printed

struct AbuseStream {
  std::string name;
  std::int64_t id = 0;
  std::optional<int> status;
  std::optional<std::int64_t> reset;
  bool ended = false;
  std::uint64_t body_len = 0;
  std::optional<double> done_at;

  bool refused() const { return (reset && !status) || (status && *status >= 400 && *status < 500); }
  bool served() const { return status == 200 && ended && !reset; }
  std::string describe() const {
    std::ostringstream s;
    s << name << " (id " << id << "): status=" << (status ? std::to_string(*status) : "none")
      << " reset=" << (reset ? h2_error_name(*reset) : "none") << " ended=" << ended << " body_len=" << body_len
      << " done_at=" << (done_at ? std::to_string(*done_at) + "s" : "-");
    return s.str();
  }
};

struct AbuseRun {
  json::object raw;
  std::optional<std::int64_t> goaway;  ///< its error code
  std::int64_t goaway_last_stream = 0;
  double goaway_at = 0;
  bool eof = false, reset_by_peer = false;
  std::optional<double> eof_at;
  std::string send_error, error;
  std::map<std::string, std::uint64_t> received;  ///< frames by type
  std::vector<AbuseStream> streams;
  double elapsed = 0;
  std::string text;  ///< the client's output, for messages

  /// The proxy ended the connection: EOF, a reset, or a write refused.
  bool closed() const { return eof || reset_by_peer || !send_error.empty(); }
  std::uint64_t frames(const std::string& type) const {
    auto it = received.find(type);
    return it == received.end() ? 0 : it->second;
  }
  std::int64_t number(const char* key) const {
    const auto* v = raw.if_contains(key);
    return v && v->is_int64() ? v->as_int64() : -1;
  }
  const AbuseStream& at(const std::string& name) const {
    for (const auto& s : streams)
      if (s.name == name) return s;
    throw std::runtime_error("no stream named " + name + " in h2_abuse.py's answer:\n" + text);
  }
  std::string summary() const {
    std::ostringstream s;
    s << "goaway="
      << (goaway ? h2_error_name(*goaway) + " last_stream_id=" + std::to_string(goaway_last_stream) : "none")
      << " eof=" << eof << " reset_by_peer=" << reset_by_peer
      << " send_error=" << (send_error.empty() ? "-" : send_error)
      << " closed_at=" << (eof_at ? std::to_string(*eof_at) + "s" : "-") << " frames received:";
    for (const auto& [k, n] : received) s << " " << k << "=" << n;
    return s.str();
  }
};

std::optional<double> opt_double(const json::value& v) {
  if (v.is_null()) return std::nullopt;
  return v.to_number<double>();
}

AbuseRun parse_abuse_run(const std::string& out, const std::string& err) {
  AbuseRun run;
  run.text = "stdout:\n" + printable(out, 4000) + "\nstderr:\n" + printable(err, 4000);
  std::istringstream is(out);
  std::string line, last;
  while (std::getline(is, line))
    if (line.rfind("{\"mode\"", 0) == 0) last = line;
  if (last.empty()) throw std::runtime_error("h2_abuse.py printed no result\n" + run.text);
  run.raw = json::parse(last).as_object();
  const auto& v = run.raw;
  if (v.at("goaway").is_object()) {
    const auto& g = v.at("goaway").as_object();
    run.goaway = g.at("error_code").as_int64();
    run.goaway_last_stream = g.at("last_stream_id").as_int64();
    run.goaway_at = g.at("at").to_number<double>();
  }
  run.eof = v.at("eof").as_bool();
  run.eof_at = opt_double(v.at("eof_at"));
  run.reset_by_peer = v.at("reset_by_peer").as_bool();
  if (v.at("send_error").is_string()) run.send_error = std::string(v.at("send_error").as_string());
  if (v.at("error").is_string()) run.error = std::string(v.at("error").as_string());
  for (const auto& [k, n] : v.at("frames_received").as_object())
    run.received[std::string(k)] = n.to_number<std::uint64_t>();
  for (const auto& sv : v.at("streams").as_array()) {
    const auto& o = sv.as_object();
    AbuseStream s;
    s.name = std::string(o.at("name").as_string());
    s.id = o.at("id").as_int64();
    if (o.at("status").is_int64()) s.status = static_cast<int>(o.at("status").as_int64());
    if (o.at("reset").is_int64()) s.reset = o.at("reset").as_int64();
    s.ended = o.at("ended").as_bool();
    s.body_len = o.at("body_len").to_number<std::uint64_t>();
    s.done_at = opt_double(o.at("done_at"));
    run.streams.push_back(std::move(s));
  }
  run.elapsed = v.at("elapsed").to_number<double>();
  return run;
}

json::object req(const std::string& name, const std::string& path) {
  return json::object{{"name", name}, {"path", path}};
}

// ---------------------------------------------------------------------------------------------
// Fixture: a bgproxy with an h2c listener and an optional `http2:` section.

class AbuseProxy {
public:
  AbuseProxy(const ProxyConfig& cfg, const std::string& http2, const fs::path& dir) {
    std::string yaml = render_config(cfg, dir, 0);
    if (!http2.empty()) yaml += "http2: " + http2 + "\n";
    const auto path = dir / "bgproxy-h2-abuse.yaml";
    write_file(path, yaml);
    proc_ =
        std::make_unique<Process>(std::vector<std::string>{proxy_bin(), "-c", path.string()}, dir, "bgproxy-h2-abuse");
    auto m =
        proc_->wait_for_line(std::regex(R"(bgproxy ready: listen=127\.0\.0\.1:(\d+) admin=[0-9.]+:(\d+))"), Ms(10000));
    if (!m)
      throw std::runtime_error("bgproxy did not become ready; stderr:\n" + proc_->stderr_text() + "\nconfig:\n" + yaml);
    port_ = static_cast<std::uint16_t>(std::stoi((*m)[1]));
    admin_port_ = static_cast<std::uint16_t>(std::stoi((*m)[2]));
  }

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return proc_->pid(); }
  Process& process() { return *proc_; }

  std::string metrics() {
    std::string why;
    auto r = round_trip(admin_port_, get_request("/metrics", "Connection: close\r\n", "127.0.0.1"), Ms(3000), &why);
    if (!r || r->status != 200) throw std::runtime_error("GET /metrics failed: " + why);
    return r->body;
  }
  double errors(const std::string& reason) {
    return metric_value(metrics(), kErrors, {{"reason", reason}}).value_or(0);
  }
  std::map<std::string, double> all_errors() {
    const auto text = metrics();
    std::map<std::string, double> r;
    for (const char* reason : kReasons) r[reason] = metric_value(text, kErrors, {{"reason", reason}}).value_or(0);
    return r;
  }
  double client_connections() { return metric_value(metrics(), "bgproxy_client_connections").value_or(-1); }
  /// Polls bgproxy_client_connections until it is `n` (bounded); returns the last value.
  double wait_client_connections(double n, Ms timeout) {
    const auto deadline = Clock::now() + timeout;
    double v = client_connections();
    while (v != n && Clock::now() < deadline) {
      std::this_thread::sleep_for(Ms(50));
      v = client_connections();
    }
    return v;
  }

  long rss_kb() { return proc_status_kb(pid(), "VmRSS").value_or(-1); }
  long hwm_kb() { return proc_status_kb(pid(), "VmHWM").value_or(-1); }

private:
  std::unique_ptr<Process> proc_;
  std::uint16_t port_ = 0, admin_port_ = 0;
};

class H2Abuse : public IntegrationTest {
protected:
  void TearDown() override {
    if (HasFailure() && proxy_)
      std::cerr << "----- bgproxy stderr -----\n" << printable(proxy_->process().stderr_text(), 6000) << "\n";
    proxy_.reset();
    IntegrationTest::TearDown();
  }

  /// @param http2 the flow map of the `http2:` section, or empty for the defaults
  AbuseProxy& start(const std::string& http2 = "", const std::string& client_idle = "",
                    const std::string& client_header = "") {
    Backend& blue = start_backend("blue");
    ProxyConfig cfg;
    cfg.blue = {blue.address()};
    cfg.green = {"127.0.0.1:" + std::to_string(refused_port())};
    cfg.protocols = "[http/1.1, h2c]";
    cfg.client_idle = client_idle;
    cfg.client_header = client_header;
    proxy_ = std::make_unique<AbuseProxy>(cfg, http2, dir_.path());
    return *proxy_;
  }
  Backend& backend() { return *backends_.at(0); }

  fs::path write_spec(const json::object& spec) {
    static int counter = 0;
    auto p = dir_ / ("h2-abuse-" + std::to_string(++counter) + ".json");
    write_file(p, json::serialize(spec));
    return p;
  }
  std::vector<std::string> abuse_argv(const json::object& spec) {
    return {kPython,  script("h2_abuse.py"),    "--port", std::to_string(proxy_->port()),
            "--spec", write_spec(spec).string()};
  }

  /// One h2_abuse.py connection, to its end.
  AbuseRun run_abuse(const json::object& spec, Ms timeout = Ms(30000)) {
    auto r = run_command(abuse_argv(spec), dir_.path(), timeout);
    if (r.exit_code != 0)
      throw std::runtime_error("h2_abuse.py exited " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out +
                               "\nstderr:\n" + r.err);
    return parse_abuse_run(r.out, r.err);
  }

  /// A GET on a fresh connection (h2_client.py, the h2 library): a 200 with the backend's echo.
  void expect_fresh_connection_served(const std::string& tag) {
    const std::string target = "/fresh/" + tag;
    json::object spec{{"streams", json::array{json::object{{"name", "fresh"}, {"path", target}}}}, {"timeout", 10}};
    const auto r = run_command(
        {kPython, BG_H2_CLIENT_PY, "--port", std::to_string(proxy_->port()), "--spec", write_spec(spec).string()},
        dir_.path(), Ms(15000));
    ASSERT_EQ(r.exit_code, 0) << "h2_client.py: " << r.out << r.err;
    std::string last, line;
    std::istringstream is(r.out);
    while (std::getline(is, line))
      if (line.rfind("{\"streams\"", 0) == 0) last = line;
    ASSERT_FALSE(last.empty()) << "h2_client.py printed no result: " << r.out << r.err;
    const auto v = json::parse(last).as_object();
    const auto& s = v.at("streams").as_array().at(0).as_object();
    ASSERT_TRUE(s.at("status").is_int64()) << "a fresh connection after " << tag << " got no answer: " << last;
    EXPECT_EQ(s.at("status").as_int64(), 200) << last;
    EXPECT_TRUE(s.at("ended").as_bool()) << last;
    EXPECT_TRUE(v.at("error").is_null()) << last;
    ASSERT_TRUE(s.contains("body")) << last;
    EXPECT_EQ(parse_echo(std::string(s.at("body").as_string())).target, target) << last;
  }

  /// bgproxy_http2_protocol_errors_total{reason} above `before` (polled briefly: the count is
  /// made before the connection closes, which the client has seen by now).
  bool counted(const std::string& reason, double before, double* now = nullptr) {
    const auto deadline = Clock::now() + Ms(300);
    double v = before;
    for (;;) {
      v = proxy_->errors(reason);
      if (v > before || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(Ms(20));
    }
    if (now) *now = v;
    return v > before;
  }
  /// @param why a cause of its own when the count is missing (besides the one of the whole family)
  void expect_counted(const std::string& reason, double before, const std::string& what, const std::string& why = "") {
    double now = 0;
    if (counted(reason, before, &now)) return;
    ADD_FAILURE() << kErrors << "{reason=\"" << reason << "\"} did not count " << what << " (" << before
                  << " before, " << now << " after)" << (why.empty() ? "" : "; ") << why;
  }

  /// A defence the SPEC asks for that did not hold.
  void expect_defended(const std::string& what) { ADD_FAILURE() << what; }

  std::unique_ptr<AbuseProxy> proxy_;
};

// ---------------------------------------------------------------------------------------------
// 1. Rapid reset (CVE-2023-44487): HEADERS then RST_STREAM(CANCEL), thousands of times.

TEST_F(H2Abuse, RapidResetGetsGoawayAndOnlyThatConnectionIsClosed) {
  AbuseProxy& p = start();
  const double before = p.errors("flood");
  constexpr int kStreams = 5000;
  const auto run = run_abuse({{"mode", "rapid_reset"}, {"streams", kStreams}, {"batch", 100}, {"timeout", 15}});
  const auto sent = run.number("streams_sent");
  std::cout << "[ rapid reset ] streams opened and reset: " << sent << "; " << run.summary()
            << "; requests that reached the backend: " << backend().stats().requests << "\n";
  EXPECT_TRUE(run.error.empty()) << run.error << "\n" << run.text;
  ASSERT_TRUE(run.goaway) << "no GOAWAY after " << sent << " resets\n" << run.text;
  // nghttp2's limiter (1000 at once, then 33/s) answers INTERNAL_ERROR; ENHANCE_YOUR_CALM would do too.
  EXPECT_TRUE(*run.goaway == kInternalError || *run.goaway == kEnhanceYourCalm) << h2_error_name(*run.goaway);
  EXPECT_TRUE(run.closed()) << "the connection stayed open after its GOAWAY: " << run.summary();
  EXPECT_LT(sent, kStreams) << "every stream went through: the connection was cut only at the end";
  EXPECT_GE(run.goaway_last_stream, 2 * 1000 - 1) << "cut before the burst of 1000 resets was spent";
  EXPECT_LE(run.goaway_last_stream, 2 * sent - 1);
  expect_fresh_connection_served("after-rapid-reset");
  expect_counted("flood", before, "a rapid reset",
                 "a rapid reset is not counted even once Server::by_id copies the field (checked with such a "
                 "build): nghttp2's limiter submits its own GOAWAY and nghttp2_session_mem_recv succeeds, so "
                 "H2Connection::on_read has no error to count");
}

// ---------------------------------------------------------------------------------------------
// 2. PING and SETTINGS floods whose ACKs are never read: nghttp2 caps queued ACKs (1000).

class H2AbuseAckFlood : public H2Abuse, public ::testing::WithParamInterface<const char*> {};

TEST_P(H2AbuseAckFlood, FloodWithoutReadingTheAcksIsClosed) {
  const std::string kind = GetParam();
  AbuseProxy& p = start();
  const double before = p.errors("flood");
  const long rss_before = p.rss_kb(), hwm_before = p.hwm_kb();
  // 200 000 frames (3.4 MB) into a 4 KiB receive buffer that is never read.
  constexpr int kFrames = 200000;
  const auto run =
      run_abuse({{"mode", "ack_flood"}, {"kind", kind}, {"frames", kFrames}, {"rcvbuf", 4096}, {"timeout", 15}});
  const auto acks = run.frames(kind);
  std::cout << "[ " << kind << " flood ] frames written: " << run.number("flood_frames_sent") << " of " << kFrames
            << "; ACKs the proxy had sent: " << acks << "; " << run.summary() << "; VmRSS " << rss_before << " -> "
            << p.rss_kb() << " KiB, VmHWM " << hwm_before << " -> " << p.hwm_kb() << " KiB\n";
  EXPECT_TRUE(run.error.empty()) << run.error << "\n" << run.text;
  EXPECT_TRUE(run.closed()) << "the flooding connection was not closed: " << run.summary();
  EXPECT_LT(acks, static_cast<std::uint64_t>(kFrames)) << "every frame was acknowledged";
  EXPECT_LT(p.hwm_kb() - hwm_before, mem_bound(8 * kMiB)) << "the ACKs piled up in the proxy";
  expect_fresh_connection_served(std::string("after-") + kind + "-flood");
  expect_counted("flood", before, std::string("a ") + kind + " flood");

  // A burst of 1100 in one write, all read by the proxy at once (no unread bytes to turn its close
  // into a reset), and everything read back: the connection ends with a GOAWAY, says SPEC §13.
  const double before_burst = p.errors("flood");
  const auto burst = run_abuse({{"mode", "ack_flood"}, {"kind", kind}, {"frames", 1100}, {"timeout", 5}});
  std::cout << "[ " << kind << " burst ] 1100 frames: ACKs " << burst.frames(kind) << "; " << burst.summary() << "\n";
  EXPECT_TRUE(burst.closed()) << burst.summary();
  if (!burst.goaway) {
    expect_defended("a " + kind +
              " flood (1100 frames in one write, more ACKs than nghttp2's cap of 1000) closes the "
              "connection without a GOAWAY: NGHTTP2_ERR_FLOODED is fatal and nghttp2 queues nothing for it, "
              "so H2Connection::on_read flushes what was queued (" +
              std::to_string(burst.frames(kind)) +
              " ACKs) and closes; SPEC §13 wants GOAWAY with the right error code (ENHANCE_YOUR_CALM)");
  } else {
    EXPECT_EQ(*burst.goaway, kEnhanceYourCalm) << h2_error_name(*burst.goaway);
  }
  expect_counted("flood", before_burst, std::string("a burst ") + kind + " flood");
}

INSTANTIATE_TEST_SUITE_P(Kinds, H2AbuseAckFlood, ::testing::Values("ping", "settings"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

// ---------------------------------------------------------------------------------------------
// 3. CONTINUATION flood (CVE-2024-28182): HEADERS without END_HEADERS, then CONTINUATION after
// CONTINUATION (never END_HEADERS). nghttp2 allows 8.

TEST_F(H2Abuse, ContinuationFloodIsClosed) {
  AbuseProxy& p = start();
  const auto before = p.all_errors();
  constexpr int kContinuations = 10000;
  const auto run = run_abuse({{"mode", "continuation"}, {"continuations", kContinuations}, {"timeout", 15}});
  std::cout << "[ continuation flood ] CONTINUATIONs written: " << run.number("continuations_sent") << "; "
            << run.summary() << "; requests that reached the backend: " << backend().stats().requests << "\n";
  EXPECT_TRUE(run.error.empty()) << run.error << "\n" << run.text;
  EXPECT_TRUE(run.closed()) << "the connection survived " << kContinuations << " CONTINUATIONs: " << run.summary();
  EXPECT_EQ(backend().stats().requests, 0u) << "the endless head reached the backend";
  expect_fresh_connection_served("after-continuation-flood");

  // 20 CONTINUATIONs in one write, all read at once: the close should come with a GOAWAY.
  const auto small = run_abuse({{"mode", "continuation"}, {"continuations", 20}, {"timeout", 10}});
  std::cout << "[ continuation burst ] 20 CONTINUATIONs: " << small.summary() << "\n";
  EXPECT_TRUE(small.closed()) << small.summary();
  if (!small.goaway) {
    expect_defended(
        "a CONTINUATION flood (HEADERS + 20 CONTINUATIONs, nghttp2's cap is 8) closes the connection "
        "without a GOAWAY: NGHTTP2_ERR_TOO_MANY_CONTINUATIONS is fatal and nghttp2 queues nothing for it; "
        "SPEC §13 wants GOAWAY with the right error code");
  }
  const auto after = p.all_errors();
  double grown = 0;
  std::string which;
  for (const auto& [reason, n] : after) {
    grown += n - before.at(reason);
    if (n > before.at(reason)) which += " " + reason + "+" + std::to_string(static_cast<long>(n - before.at(reason)));
  }
  std::cout << "[ continuation flood ] counted:" << (which.empty() ? " nothing" : which) << "\n";
  EXPECT_GE(grown, 2) << kErrors << " did not count the two CONTINUATION floods";
}

// ---------------------------------------------------------------------------------------------
// 4. A header list over http2.max_header_list_bytes: that stream is refused, the others go on.

TEST_F(H2Abuse, HeaderListOverTheLimitRefusesOnlyItsStream) {
  AbuseProxy& p = start("{ max_header_list_bytes: 2048 }");
  const double before = p.errors("headers_too_large");
  json::array small, big;
  for (int i = 0; i < 8; ++i) small.push_back(json::array{"x-small-" + std::to_string(i), std::string(60, 's')});
  for (int i = 0; i < 40; ++i) big.push_back(json::array{"x-big-" + std::to_string(i), std::string(100, 'b')});
  auto under = req("under", "/under-the-limit");  // about 1 KiB decoded
  under["headers"] = small;
  auto over = req("over", "/over-the-limit");  // about 5.5 KiB decoded
  over["headers"] = big;
  auto next = req("after", "/after-the-big-head");
  next["after"] = "over";
  json::object spec{{"mode", "streams"},
                    {"streams", json::array{under, over, req("beside", "/beside-the-big-head"), next}},
                    {"timeout", 10}};
  const auto run = run_abuse(spec);
  const auto& bad = run.at("over");
  std::cout << "[ header list ] " << bad.describe() << "; " << run.summary() << "\n";
  EXPECT_TRUE(run.error.empty()) << run.error << "\n" << run.text;
  EXPECT_FALSE(run.goaway) << "the connection was closed for one stream: " << run.summary();
  EXPECT_FALSE(run.closed()) << run.summary();
  EXPECT_TRUE(bad.refused()) << "not refused: " << bad.describe();
  for (const char* name : {"under", "beside", "after"}) {
    EXPECT_TRUE(run.at(name).served()) << run.at(name).describe();
  }
  EXPECT_EQ(backend().stats().requests, 3u) << "the big head reached the backend (or a good one did not)";
  expect_fresh_connection_served("after-big-head");
  expect_counted("headers_too_large", before, "a header list over max_header_list_bytes");
}

// ---------------------------------------------------------------------------------------------
// 5. HPACK bomb: one 4000-byte value put in the dynamic table, then referenced 120 000 times
// (1 byte each): a 120 KB header block that decodes to 480 MB. Default limits (16 KiB).

TEST_F(H2Abuse, HpackBombIsCutAndMemoryStaysBounded) {
  AbuseProxy& p = start();
  expect_fresh_connection_served("warm-up");  // the first connection's allocations are not the bomb's
  const double before = p.errors("headers_too_large");
  const long rss_before = p.rss_kb(), hwm_before = p.hwm_kb();
  auto bomb = req("bomb", "/bomb");
  bomb["bomb"] = json::object{{"value_bytes", 4000}, {"repeat", 120000}};
  auto next = req("after", "/after-the-bomb");
  next["after"] = "bomb";
  const auto run = run_abuse({{"mode", "streams"}, {"streams", json::array{bomb, next}}, {"timeout", 10}});
  const long rss_after = p.rss_kb(), hwm_after = p.hwm_kb();
  const auto& b = run.at("bomb");
  std::cout << "[ hpack bomb ] " << b.describe() << "; " << run.summary() << "; VmRSS " << rss_before << " -> "
            << rss_after << " KiB, VmHWM " << hwm_before << " -> " << hwm_after << " KiB\n";
  EXPECT_TRUE(run.error.empty() || run.closed()) << run.error << "\n" << run.text;
  EXPECT_TRUE(b.refused() || run.closed()) << "the bomb was served: " << b.describe();
  if (!run.closed()) {
    EXPECT_TRUE(run.at("after").served()) << "the connection stopped serving: " << run.at("after").describe();
  }
  EXPECT_LT(hwm_after - hwm_before, mem_bound(4 * kMiB)) << "peak memory grew with the decoded list";
  EXPECT_LT(rss_after - rss_before, mem_bound(4 * kMiB));
  EXPECT_EQ(backend().stats().requests, run.closed() ? 1u : 2u) << "the bomb reached the backend";
  expect_fresh_connection_served("after-bomb");
  expect_counted("headers_too_large", before, "an HPACK bomb");
}

// ---------------------------------------------------------------------------------------------
// 6. A client that never reads: zero window (frames are read, no WINDOW_UPDATE ever), and one
// that never reads its socket at all (windows wide open). 20 streams of 16 MiB each.

constexpr int kStuckStreams = 20;
constexpr long kStuckBody = 16L << 20;

json::array stuck_streams() {
  json::array a;
  for (int i = 0; i < kStuckStreams; ++i)
    a.push_back(
        req("big-" + std::to_string(i), "/big/" + std::to_string(i) + "?body_bytes=" + std::to_string(kStuckBody)));
  return a;
}

TEST_F(H2Abuse, ZeroWindowClientKeepsMemoryBoundedAndIsTimedOut) {
  AbuseProxy& p = start("", "1s");
  expect_fresh_connection_served("warm-up");
  const long rss_before = p.rss_kb(), hwm_before = p.hwm_kb();
  // linger: after its streams end, the client reads on for 2.5 s: client_idle (1 s) and the
  // goodbye (up to 1 s) would close an idle connection by then.
  json::object spec{{"mode", "streams"},
                    {"streams", stuck_streams()},
                    {"settings", json::object{{"initial_window", 0}}},
                    {"no_window_update", true},
                    {"linger", 2.5},
                    {"timeout", 15}};
  Process client(abuse_argv(spec), dir_.path(), "h2-abuse-zero-window");
  ASSERT_TRUE(client.wait_for_line(std::regex("\"heads\""), Ms(10000), Stream::Stdout))
      << "the answers' heads did not come: " << client.stdout_text() << client.stderr_text();
  // Stuck: every stream has its head and no byte of body. Others are served meanwhile.
  expect_fresh_connection_served("beside-zero-window");
  ASSERT_TRUE(client.wait_exit(Ms(15000))) << "h2_abuse.py did not finish";
  const auto run = parse_abuse_run(client.stdout_text(), client.stderr_text());
  const long rss_after = p.rss_kb(), hwm_after = p.hwm_kb();
  std::cout << "[ zero window ] " << run.at("big-0").describe() << "; " << run.summary() << "; VmRSS " << rss_before
            << " -> " << rss_after << " KiB, VmHWM " << hwm_before << " -> " << hwm_after << " KiB (requested "
            << kStuckStreams * (kStuckBody >> 20) << " MiB)\n";
  EXPECT_TRUE(run.error.empty()) << run.error << "\n" << run.text;
  for (const auto& s : run.streams) {
    EXPECT_EQ(s.status, 200) << s.describe();
    EXPECT_EQ(s.body_len, 0u) << "DATA beyond a zero window: " << s.describe();
    EXPECT_TRUE(s.reset) << "not cut by client_idle: " << s.describe();
    if (s.done_at) {
      EXPECT_GE(*s.done_at, 0.5) << "cut before client_idle: " << s.describe();
    }
  }
  // About one stream window (256 KiB) per stream may wait in the proxy, not the 320 MiB asked for.
  EXPECT_LT(hwm_after - hwm_before, mem_bound(32 * kMiB)) << "memory grew with what the client did not read";
  EXPECT_LT(rss_after - rss_before, mem_bound(8 * kMiB)) << "memory was not given back";
  expect_fresh_connection_served("after-zero-window");
  if (!run.closed()) {
    expect_defended("the zero-window connection stays open once its " + std::to_string(kStuckStreams) +
              " streams were reset by client_idle (1 s): no GOAWAY, no close within 2.5 s after (" + run.summary() +
              "). H2Connection arms its idle deadline only in on_read; streams that end without a later client "
              "frame leave it unarmed (Clock::time_point::max()) forever");
  }
}

TEST_F(H2Abuse, ClientThatNeverReadsItsSocketKeepsMemoryBoundedAndIsTimedOut) {
  AbuseProxy& p = start("", "1s");
  expect_fresh_connection_served("warm-up");
  const long rss_before = p.rss_kb(), hwm_before = p.hwm_kb();
  const double open_before = p.wait_client_connections(0, Ms(3000));  // the warm-up's is gone
  const auto go = dir_ / "go-read";
  json::object spec{{"mode", "streams"},
                    {"streams", stuck_streams()},
                    {"settings", json::object{{"initial_window", 2147483647}}},
                    {"connection_window", 2147418112},
                    {"read_go_file", go.string()},
                    {"timeout", 20}};
  const auto requests_before = backend().stats().requests;
  Process client(abuse_argv(spec), dir_.path(), "h2-abuse-no-read");
  // Every request has reached the backend (which then writes until the proxy stops reading it).
  const auto want = requests_before + kStuckStreams;
  const auto deadline = Clock::now() + Ms(10000);
  while (backend().stats().requests < want && Clock::now() < deadline) std::this_thread::sleep_for(Ms(20));
  ASSERT_EQ(backend().stats().requests, want) << client.stdout_text();
  expect_fresh_connection_served("beside-no-read");
  // The sessions' writes wait on the client from here: client_idle (1 s) cuts them. Does the
  // connection go too? Up to 3.5 s (3 x client_idle, and the goodbye).
  const double open = p.wait_client_connections(open_before, Ms(3500));
  const long rss_stuck = p.rss_kb(), hwm_stuck = p.hwm_kb();
  write_file(go, "go");
  ASSERT_TRUE(client.wait_exit(Ms(20000))) << "h2_abuse.py did not finish";
  const auto run = parse_abuse_run(client.stdout_text(), client.stderr_text());
  std::uint64_t got = 0;
  for (const auto& s : run.streams) got += s.body_len;
  std::cout << "[ never reads ] open client connections after 3.5 s: " << open << " (" << open_before
            << " before); VmRSS " << rss_before << " -> " << rss_stuck << " KiB while stuck, VmHWM " << hwm_before
            << " -> " << hwm_stuck << " KiB; then read " << got << " bytes: " << run.at("big-0").describe() << "; "
            << run.summary() << "\n";
  EXPECT_TRUE(run.error.empty() || run.closed()) << run.error << "\n" << run.text;
  EXPECT_LT(got, static_cast<std::uint64_t>(kStuckStreams) * kStuckBody) << "every body went through";
  EXPECT_LT(hwm_stuck - hwm_before, mem_bound(48 * kMiB)) << "memory grew with what the client did not read";
  for (const auto& s : run.streams) EXPECT_FALSE(s.served()) << "a stuck stream completed: " << s.describe();
  expect_fresh_connection_served("after-no-read");
  if (open > open_before) {
    expect_defended("a client that never reads its socket keeps its connection (and about " +
              std::to_string((rss_stuck - rss_before) / 1024) +
              " MiB of the proxy's memory, plus the kernel's "
              "send buffer) for as long as it likes: still open 3.5 s after its streams' writes stalled, with "
              "client_idle 1 s. The streams are reset by client_idle, but the RST_STREAMs wait behind the "
              "stalled write and H2Connection has no write/no-progress deadline (SPEC §13, issue 15 item 5)");
  }
}

// ---------------------------------------------------------------------------------------------
// 7. A stream that never sends its body: cut by the client timeouts; the connection goes on.

TEST_F(H2Abuse, StreamThatNeverSendsItsBodyIsCutAndTheConnectionGoesOn) {
  AbuseProxy& p = start("", "1s", "1s");
  auto silent = req("silent", "/silent");
  silent["method"] = "POST";
  silent["headers"] = json::array{json::array{"content-length", "10"}};
  silent["silent"] = true;
  auto next = req("after", "/after-the-silent-one");
  next["after"] = "silent";
  const auto run = run_abuse({{"mode", "streams"},
                              {"streams", json::array{silent, req("beside", "/beside-the-silent-one"), next}},
                              {"timeout", 10}});
  const auto& s = run.at("silent");
  const auto& beside = run.at("beside");
  std::cout << "[ silent body ] " << s.describe() << "; " << beside.describe() << "; " << run.at("after").describe()
            << "; " << run.summary() << "\n";
  EXPECT_TRUE(run.error.empty()) << run.error << "\n" << run.text;
  EXPECT_FALSE(run.goaway) << run.summary();
  EXPECT_TRUE(s.refused() || (s.status && *s.status >= 400)) << "not cut: " << s.describe();
  ASSERT_TRUE(s.done_at);
  EXPECT_GE(*s.done_at, 0.5) << "cut before the timeouts (1 s)";
  EXPECT_LE(*s.done_at, 5.0) << "cut long after the timeouts (1 s)";
  EXPECT_TRUE(beside.served()) << beside.describe();
  ASSERT_TRUE(beside.done_at);
  EXPECT_LT(*beside.done_at, *s.done_at) << "the other stream waited for the silent one";
  EXPECT_TRUE(run.at("after").served()) << "the connection stopped serving: " << run.at("after").describe();
  expect_fresh_connection_served("after-silent-body");
  (void)p;
}

// ---------------------------------------------------------------------------------------------
// 8. Empty DATA frames (CVE-2019-9518): 200 000 of them on one stream, then END_STREAM.

TEST_F(H2Abuse, EmptyDataFrameFlood) {
  AbuseProxy& p = start();
  expect_fresh_connection_served("warm-up");
  const double before = p.errors("flood");
  const long hwm_before = p.hwm_kb();
  const auto cpu_before = cpu_ms(p.pid());
  constexpr int kFrames = 200000;
  auto empty = req("empty", "/empty-data");
  empty["method"] = "POST";
  empty["empty_data"] = kFrames;
  auto next = req("after", "/after-empty-data");
  next["after"] = "empty";
  const auto run = run_abuse({{"mode", "streams"}, {"streams", json::array{empty, next}}, {"timeout", 15}});
  const auto cpu_after = cpu_ms(p.pid());
  const auto& e = run.at("empty");
  std::cout << "[ empty DATA ] " << kFrames << " empty frames: " << e.describe() << "; " << run.summary()
            << "; proxy CPU " << (cpu_after && cpu_before ? *cpu_after - *cpu_before : -1) << " ms; VmHWM "
            << hwm_before << " -> " << p.hwm_kb() << " KiB\n";
  EXPECT_TRUE(run.error.empty() || run.closed()) << run.error << "\n" << run.text;
  EXPECT_LT(p.hwm_kb() - hwm_before, mem_bound(4 * kMiB));
  expect_fresh_connection_served("after-empty-data");
  if (!run.goaway || !run.closed()) {
    expect_defended(std::to_string(kFrames) + " empty DATA frames on one stream are all accepted: " + e.describe() + "; " +
              run.summary() +
              ". SPEC §13 wants an empty-frame flood closed with a GOAWAY and counted "
              "(nghttp2 has no limit of its own for them)");
  } else {
    expect_counted("flood", before, "an empty DATA flood");
  }
}

}  // namespace
}  // namespace bgtest
