#pragma once
/// Integration-test harness: starts the real `bgproxy` and `bgproxy-demo-backend` binaries on
/// 127.0.0.1 with ephemeral ports and talks to them over raw TCP, so every assertion is about
/// bytes that crossed the wire.
///
/// Everything here is bounded by a timeout: a hung proxy fails the test, it never hangs it.
/// Harness-level failures (a process that never becomes ready, a connect error) throw
/// std::runtime_error, which GoogleTest reports as a failure of the test body.
/// Thread: the test's thread (nothing here is shared between threads unless stated).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace bgtest {

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

/// Absolute paths of the binaries under test (compile definitions set by tests/CMakeLists.txt;
/// the environment variable BGTEST_PROXY_BIN overrides the proxy).
const char* proxy_bin();
const char* backend_bin();

/// True when the test binary was built with AddressSanitizer (then so was the proxy).
constexpr bool sanitized_build() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

// ---------------------------------------------------------------------------------------------
// Temp dir

/// A fresh directory under $TMPDIR, removed on destruction unless the test failed (then its path
/// is printed so the logs can be read).
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& p, std::string_view content);
std::string read_file(const std::filesystem::path& p);

// ---------------------------------------------------------------------------------------------
// Processes

enum class Stream { Stdout, Stderr };

/// A child process started with fork/exec; stdout and stderr go to files in `dir`.
/// On destruction: SIGTERM, then SIGKILL if it is still alive after `term_grace`.
class Process {
public:
  Process(std::vector<std::string> argv, const std::filesystem::path& dir, const std::string& tag);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& tag() const { return tag_; }
  std::string output(Stream s) const;
  std::string stdout_text() const { return output(Stream::Stdout); }
  std::string stderr_text() const { return output(Stream::Stderr); }

  /// Polls the log file until a line matches `re` (std::regex_search). Returns the sub-matches
  /// (index 0 = whole match), or nullopt on timeout or when the process exited without it.
  std::optional<std::vector<std::string>> wait_for_line(const std::regex& re, Ms timeout,
                                                        Stream s = Stream::Stderr);

  bool running();
  /// Waits for exit. @return the exit code, 128+signal when killed, nullopt on timeout.
  std::optional<int> wait_exit(Ms timeout);
  void signal(int sig);
  /// SIGTERM, wait `grace`, SIGKILL; reaps the child. Idempotent.
  void stop(Ms grace = Ms(2000));

private:
  std::string tag_;
  std::filesystem::path out_path_, err_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_;
};

struct CommandResult {
  int exit_code = -1;  ///< 128+signal when killed; -1 on timeout (then the child is killed)
  std::string out, err;
};

/// Runs a short-lived command to completion (bounded by `timeout`).
CommandResult run_command(std::vector<std::string> argv, const std::filesystem::path& dir,
                          Ms timeout = Ms(10000));

/// Reads a "VmRSS"/"VmHWM"-style field of /proc/PID/status, in KiB; nullopt if unreadable.
std::optional<long> proc_status_kb(pid_t pid, const std::string& field);

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 responses

struct Header {
  std::string name, value;
};

struct Response {
  std::string version;  ///< "HTTP/1.1"
  int status = 0;
  std::string reason;
  std::vector<Header> headers;
  std::string body;       ///< decoded (de-chunked)
  std::string raw_head;   ///< status line + headers, as received
  bool chunked = false;
  bool close_delimited = false;
  std::size_t chunks = 0;  ///< data chunks seen when chunked

  /// First value of a header (case-insensitive name).
  std::optional<std::string> header(std::string_view name) const;
  std::vector<std::string> headers_named(std::string_view name) const;
  bool has_header(std::string_view name) const { return header(name).has_value(); }
};

/// Incremental response parser: Content-Length, chunked (with extensions and trailers),
/// close-delimited; no body for HEAD, 1xx, 204, 304.
class ResponseParser {
public:
  explicit ResponseParser(bool head_request = false) : head_request_(head_request) {}
  /// Consumes bytes of at most one message. @return bytes consumed.
  std::size_t feed(std::string_view data);
  /// The peer closed: completes a close-delimited body, fails an incomplete message.
  void feed_eof();
  bool done() const { return state_ == State::Done; }
  bool failed() const { return state_ == State::Error; }
  bool started() const { return !head_.empty() || state_ != State::Head; }
  const std::string& error() const { return error_; }
  Response& response() { return resp_; }

private:
  enum class State { Head, Body, ChunkSize, ChunkData, ChunkDataEnd, Trailer, UntilClose, Done, Error };
  void parse_head();
  void fail(std::string why);

  bool head_request_;
  State state_ = State::Head;
  std::string head_;
  std::string line_;
  std::uint64_t remaining_ = 0;
  Response resp_;
  std::string error_;
};

/// FNV-1a 64-bit, the demo backend's `body_fnv1a`.
class Fnv1a {
public:
  void update(std::string_view data);
  std::uint64_t value() const { return h_; }
  std::string hex() const;  ///< 16 lower-case hex digits

private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

/// The demo backend's body pattern: byte i = 'a' + i % 26.
std::string pattern_bytes(std::uint64_t offset, std::size_t n);
std::string fnv1a_hex(std::string_view data);

// ---------------------------------------------------------------------------------------------
// Raw TCP client

enum class ReadEnd { Eof, Reset, Timeout };

const char* to_string(ReadEnd e);

/// A blocking-with-deadline TCP client on 127.0.0.1 (non-blocking socket + poll).
class Client {
public:
  /// Connects; throws std::runtime_error on failure.
  explicit Client(std::uint16_t port, Ms timeout = Ms(2000));
  /// Connects; nullopt with `*err` = errno on failure.
  static std::optional<Client> try_connect(std::uint16_t port, Ms timeout = Ms(2000),
                                           int* err = nullptr);
  Client(Client&& o) noexcept;
  Client& operator=(Client&& o) noexcept;
  ~Client();

  /// Sends everything; throws on error or timeout.
  void send(std::string_view data, Ms timeout = Ms(5000));
  /// Sends everything; false on error or timeout (reason in last_error()).
  bool try_send(std::string_view data, Ms timeout = Ms(5000));
  void shutdown_write();

  /// Reads one complete response (bytes after it stay buffered for the next call).
  /// nullopt on timeout, EOF or error before it is complete; see last_error().
  std::optional<Response> read_response(Ms timeout = Ms(5000), bool head_request = false);

  /// Reads until the peer closes or `timeout`; everything read is appended to buffered().
  ReadEnd read_until_close(Ms timeout);
  /// Waits for at least `n` buffered bytes. @return false on EOF/error/timeout.
  bool read_at_least(std::size_t n, Ms timeout);

  std::string& buffered() { return buf_; }
  const std::string& last_error() const { return last_error_; }
  int fd() const { return fd_; }
  std::uint16_t local_port() const;

private:
  Client() = default;
  /// @return >0 bytes read, 0 EOF, -1 error (errno_ set), -2 timeout.
  long recv_some(Clock::time_point deadline);
  void close_fd();

  int fd_ = -1;
  int errno_ = 0;
  std::string buf_;
  std::string last_error_;
};

/// "GET target HTTP/1.1" with Host and optional extra header lines (each ending in \r\n).
std::string get_request(std::string_view target, std::string_view extra_headers = "",
                        std::string_view host = "app.test");
/// A request with a Content-Length body.
std::string request_with_body(std::string_view method, std::string_view target,
                              std::string_view body, std::string_view extra_headers = "",
                              std::string_view host = "app.test");

/// One request on a fresh connection; nullopt (with the reason added as a test failure message
/// via `*why` when given) if no complete response arrived.
std::optional<Response> round_trip(std::uint16_t port, std::string_view raw_request,
                                   Ms timeout = Ms(5000), std::string* why = nullptr,
                                   bool head_request = false);

// ---------------------------------------------------------------------------------------------
// The demo backend's JSON echo

struct Echo {
  boost::json::object obj;
  std::string name, method, target, version, body_fnv1a;
  std::vector<std::pair<std::string, std::string>> headers;
  std::uint64_t body_bytes = 0, connection_id = 0, request_on_connection = 0;

  /// All values of a request header as the backend received it (case-insensitive name).
  std::vector<std::string> values(std::string_view name) const;
  std::optional<std::string> value(std::string_view name) const;
  bool has(std::string_view name) const { return value(name).has_value(); }
};

/// Parses an echo body; throws std::runtime_error when it is not one.
Echo parse_echo(const std::string& body);

// ---------------------------------------------------------------------------------------------
// Fixtures

struct BackendStats {
  std::uint64_t requests = 0, connections = 0, open_connections = 0;
};

/// A running `bgproxy-demo-backend --port 0 --name NAME`.
class Backend {
public:
  Backend(const std::string& name, const std::filesystem::path& dir);
  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& name() const { return name_; }
  Process& process() { return *proc_; }
  /// GET /_stats directly (not through the proxy).
  BackendStats stats();
  /// GET /_knobs?QUERY directly; throws unless 200.
  void knobs(const std::string& query);

private:
  std::string name_;
  std::unique_ptr<Process> proc_;
  std::uint16_t port_ = 0;
};

/// What the test wants in the proxy's YAML; everything else keeps test-friendly defaults
/// (threads 2, access_log off, health_check off, shutdown 5s, ports 0, files in the temp dir).
struct ProxyConfig {
  std::vector<std::string> blue;   ///< server addresses
  std::vector<std::string> green;  ///< default: a refused address (green weight is 0 anyway)
  std::string service_name = "app";
  std::string match_host = "*";
  std::string path_prefix = "/";
  int listeners = 1;
  int threads = 2;
  std::optional<long> max_connections, max_header_bytes, max_body_bytes;
  std::string client_header, client_idle, upstream_connect, upstream_response;  ///< empty = default
  std::string upstream_idle;  ///< `timeouts.upstream_idle`; empty = default
  std::string shutdown = "5s";
  std::string access_log = "off";
  bool health_check = false;
  std::string service_extra;  ///< raw YAML lines added to the service, indented by 4 spaces
  std::string tls;  ///< raw YAML value of `tls:` on every listener (e.g. a flow list); empty = plain
  std::string protocols;  ///< raw YAML value of `protocols:` on every listener (e.g. "[http/1.1, h2c]"); empty = default
  std::string blue_tls;  ///< raw YAML value of `blue.tls:` (upstream TLS); empty = plain
  std::string cluster;  ///< raw YAML lines of the top-level `cluster:` section, indented by 2 spaces; empty = none
  std::string top_extra;  ///< raw top-level YAML lines (e.g. a `notify:` section), added as they are
};

/// Renders the YAML for `cfg`, with the control socket and state file in `dir`.
std::string render_config(const ProxyConfig& cfg, const std::filesystem::path& dir, int index = 0);

/// A running `bgproxy -c FILE`, ready (its "bgproxy ready:" line seen).
class Proxy {
public:
  Proxy(const ProxyConfig& cfg, const std::filesystem::path& dir, int index = 0);
  std::uint16_t port(std::size_t listener = 0) const { return ports_.at(listener); }
  const std::vector<std::uint16_t>& ports() const { return ports_; }
  std::uint16_t admin_port() const { return admin_port_; }
  Process& process() { return *proc_; }
  pid_t pid() const { return proc_->pid(); }
  const std::filesystem::path& config_path() const { return config_path_; }

  /// GET /metrics on the admin listener; throws unless 200.
  std::string metrics();
  /// Polls /metrics until metric(name, labels) satisfies `pred`; returns the last value seen.
  std::optional<double> wait_metric(const std::string& name,
                                    const std::map<std::string, std::string>& labels,
                                    const std::function<bool(double)>& pred, Ms timeout = Ms(3000));

private:
  std::unique_ptr<Process> proc_;
  std::filesystem::path config_path_;
  std::vector<std::uint16_t> ports_;
  std::uint16_t admin_port_ = 0;
};

/// Value of the sample `name{labels...}` in Prometheus text: every given label must match (other
/// labels on the line are allowed). Returns the sum when several lines match; nullopt if none.
std::optional<double> metric_value(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels = {});

/// Base fixture: a temp dir, helpers to start backends and proxies, and their logs printed when
/// the test fails. Proxies are stopped before backends.
class IntegrationTest : public ::testing::Test {
protected:
  void TearDown() override;

  Backend& start_backend(const std::string& name = "blue");
  /// Starts a proxy; when cfg.blue is empty, `start_backend("blue")` is used for it.
  Proxy& start_proxy(ProxyConfig cfg);
  /// A port on 127.0.0.1 where connect is refused (bound, never listening) for the test's life.
  std::uint16_t refused_port();

  TempDir dir_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<Proxy>> proxies_;
  std::vector<int> reserved_fds_;
};

// ---------------------------------------------------------------------------------------------
// Background traffic for tests that change routing while requests flow.

/// One request of a RequestLoop.
struct Outcome {
  Clock::time_point started, finished;
  int status = 0;       ///< 0 = no complete response
  std::string backend;  ///< X-Backend
  std::string color;    ///< X-Bg-Color
  std::string error;
};

/// "status=200 backend=blue-1 color=blue took=3ms [error=...]", for failure messages.
std::string describe(const Outcome& o);

/// Number of outcomes that are not a clean 200; `*first` gets the first few of them described.
std::size_t count_failures(const std::vector<Outcome>& v, std::string* first);

/// `threads` clients each sending GET in a loop on a keep-alive connection (a fresh one after a
/// failure), `pace` apart, recording every outcome until stop().
class RequestLoop {
public:
  RequestLoop(std::uint16_t port, int threads, Ms pace = Ms(2));
  ~RequestLoop();
  RequestLoop(const RequestLoop&) = delete;
  RequestLoop& operator=(const RequestLoop&) = delete;

  void stop();
  std::vector<Outcome> outcomes();
  std::size_t count();
  /// Outcomes of the requests that started at or after `t`.
  std::vector<Outcome> since(Clock::time_point t);

private:
  void run(std::uint16_t port, Ms pace, int index);

  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Outcome> outcomes_;
  std::vector<std::thread> threads_;
};

}  // namespace bgtest
