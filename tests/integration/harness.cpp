#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace bgtest {

namespace fs = std::filesystem;

// BGTEST_PROXY_BIN runs the suites against another build of bgproxy (e.g. main's, to see a
// regression test fail before its fix).
const char* proxy_bin() {
  const char* other = std::getenv("BGTEST_PROXY_BIN");
  return other && *other ? other : BGPROXY_BIN;
}
const char* backend_bin() { return BGPROXY_BACKEND_BIN; }

namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return std::tolower(c); });
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left) + 1;
}

/// Printable excerpt of raw bytes for failure messages.
std::string excerpt(std::string_view s, std::size_t max = 400) {
  std::string r;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\r') r += "\\r";
    else if (c == '\n') r += "\\n";
    else if (c < 0x20 || c >= 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      r += b;
    } else r += static_cast<char>(c);
  }
  if (s.size() > max) r += "...(" + std::to_string(s.size()) + " bytes)";
  return r;
}

std::string tail_lines(const std::string& text, std::size_t n) {
  if (text.empty()) return text;
  std::size_t pos = text.size();
  std::size_t count = 0;
  while (pos > 0 && count <= n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
    ++count;
  }
  return text.substr(pos + 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Files

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "bgit-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (::testing::Test::HasFailure() || std::getenv("BG_KEEP_TMP") != nullptr) {
    std::cerr << "[harness] kept test directory " << path_ << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const fs::path& p, std::string_view content) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------------------------
// Process

Process::Process(std::vector<std::string> argv, const fs::path& dir, const std::string& tag)
    : tag_(tag), out_path_(dir / (tag + ".stdout")), err_path_(dir / (tag + ".stderr")) {
  int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || err < 0 || in < 0) throw std::runtime_error("cannot open log files in " + dir.string());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(args[0], args.data());
    const char msg[] = "exec failed\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(out);
  ::close(err);
  ::close(in);
}

Process::~Process() { stop(); }

std::string Process::output(Stream s) const {
  return read_file(s == Stream::Stdout ? out_path_ : err_path_);
}

bool Process::running() {
  if (exit_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

std::optional<int> Process::wait_exit(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(Ms(5));
  }
  return exit_;
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

void Process::stop(Ms grace) {
  if (pid_ <= 0 || !running()) return;
  ::kill(pid_, SIGTERM);
  if (!wait_exit(grace)) {
    ::kill(pid_, SIGKILL);
    wait_exit(Ms(5000));
  }
}

std::optional<std::vector<std::string>> Process::wait_for_line(const std::regex& re, Ms timeout,
                                                               Stream s) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    bool alive = running();
    std::string text = output(s);
    std::size_t start = 0;
    for (;;) {
      std::size_t nl = text.find('\n', start);
      // A partial last line counts only once the process has exited (it cannot grow any more).
      if (nl == std::string::npos && alive) break;
      std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      std::smatch m;
      if (std::regex_search(line, m, re)) {
        std::vector<std::string> groups;
        for (const auto& g : m) groups.push_back(g.str());
        return groups;
      }
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    if (!alive || Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(Ms(10));
  }
}

CommandResult run_command(std::vector<std::string> argv, const fs::path& dir, Ms timeout) {
  static std::atomic<int> counter{0};  // commands may run from several threads at once
  std::string tag = "cmd-" + std::to_string(++counter);
  CommandResult r;
  {
    Process p(std::move(argv), dir, tag);
    auto code = p.wait_exit(timeout);
    if (!code) {
      p.stop(Ms(500));
      r.exit_code = -1;
    } else {
      r.exit_code = *code;
    }
    r.out = p.stdout_text();
    r.err = p.stderr_text();
  }
  return r;
}

std::optional<long> proc_status_kb(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream is(line.substr(field.size() + 1));
      long kb = 0;
      if (is >> kb) return kb;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Response

std::optional<std::string> Response::header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return h.value;
  return std::nullopt;
}

std::vector<std::string> Response::headers_named(std::string_view name) const {
  std::vector<std::string> r;
  for (const auto& h : headers)
    if (iequals(h.name, name)) r.push_back(h.value);
  return r;
}

void ResponseParser::fail(std::string why) {
  state_ = State::Error;
  error_ = std::move(why);
}

void ResponseParser::parse_head() {
  resp_.raw_head = head_;
  std::string_view h(head_);
  h.remove_suffix(4);  // final CRLF CRLF
  std::size_t eol = h.find("\r\n");
  std::string_view status_line = h.substr(0, eol);
  h = eol == std::string_view::npos ? std::string_view() : h.substr(eol + 2);
  if (status_line.rfind("HTTP/", 0) != 0 || status_line.size() < 12)
    return fail("bad status line: " + excerpt(status_line));
  resp_.version = std::string(status_line.substr(0, 8));
  std::string_view code = status_line.substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return fail("bad status code: " + excerpt(status_line));
  resp_.status = std::stoi(std::string(code));
  resp_.reason = status_line.size() > 13 ? std::string(status_line.substr(13)) : "";
  while (!h.empty()) {
    eol = h.find("\r\n");
    std::string_view line = h.substr(0, eol);
    h = eol == std::string_view::npos ? std::string_view() : h.substr(eol + 2);
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t') && !resp_.headers.empty()) {
      resp_.headers.back().value += " " + std::string(trim(line));
      continue;
    }
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail("bad header line: " + excerpt(line));
    resp_.headers.push_back({std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1)))});
  }
  int s = resp_.status;
  if (head_request_ || (s >= 100 && s < 200) || s == 204 || s == 304) {
    state_ = State::Done;
    return;
  }
  if (auto te = resp_.header("transfer-encoding")) {
    std::string v = lower(*te);
    std::size_t comma = v.rfind(',');
    std::string last(trim(comma == std::string::npos ? std::string_view(v) : std::string_view(v).substr(comma + 1)));
    if (last == "chunked") {
      resp_.chunked = true;
      state_ = State::ChunkSize;
    } else {
      resp_.close_delimited = true;
      state_ = State::UntilClose;
    }
    return;
  }
  auto cls = resp_.headers_named("content-length");
  if (!cls.empty()) {
    for (const auto& v : cls)
      if (v != cls.front()) return fail("differing Content-Length in response");
    const std::string& v = cls.front();
    if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fail("bad Content-Length in response: " + v);
    remaining_ = std::stoull(v);
    state_ = remaining_ == 0 ? State::Done : State::Body;
    return;
  }
  resp_.close_delimited = true;
  state_ = State::UntilClose;
}

std::size_t ResponseParser::feed(std::string_view data) {
  std::size_t i = 0;
  while (i < data.size() && state_ != State::Done && state_ != State::Error) {
    switch (state_) {
      case State::Head: {
        std::size_t old = head_.size();
        std::size_t take = data.size() - i;
        head_.append(data.substr(i, take));
        std::size_t pos = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
        if (pos == std::string::npos) {
          i += take;
          if (head_.size() > (1u << 20)) fail("response head larger than 1 MiB");
          break;
        }
        std::size_t extra = head_.size() - (pos + 4);
        head_.resize(pos + 4);
        i += take - extra;
        parse_head();
        break;
      }
      case State::Body:
      case State::ChunkData: {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - i));
        resp_.body.append(data.substr(i, n));
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = state_ == State::Body ? State::Done : State::ChunkDataEnd;
        break;
      }
      case State::UntilClose:
        resp_.body.append(data.substr(i));
        i = data.size();
        break;
      case State::ChunkSize:
      case State::ChunkDataEnd:
      case State::Trailer: {
        std::size_t nl = data.find('\n', i);
        if (nl == std::string_view::npos) {
          line_.append(data.substr(i));
          i = data.size();
          if (line_.size() > 65536) fail("chunk line longer than 64 KiB");
          break;
        }
        line_.append(data.substr(i, nl - i + 1));
        i = nl + 1;
        std::string line = std::move(line_);
        line_.clear();
        if (line.size() < 2 || line[line.size() - 2] != '\r') {
          fail("chunk framing line without CRLF: " + excerpt(line));
          break;
        }
        line.resize(line.size() - 2);
        if (state_ == State::ChunkDataEnd) {
          if (!line.empty()) fail("no CRLF after chunk data: " + excerpt(line));
          else state_ = State::ChunkSize;
        } else if (state_ == State::ChunkSize) {
          std::string_view sz(line);
          sz = sz.substr(0, sz.find(';'));
          sz = trim(sz);
          if (sz.empty() || sz.size() > 15 ||
              !std::all_of(sz.begin(), sz.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
            fail("bad chunk size line: " + excerpt(line));
            break;
          }
          remaining_ = std::stoull(std::string(sz), nullptr, 16);
          if (remaining_ == 0) {
            state_ = State::Trailer;
          } else {
            ++resp_.chunks;
            state_ = State::ChunkData;
          }
        } else {  // Trailer
          if (line.empty()) state_ = State::Done;
        }
        break;
      }
      case State::Done:
      case State::Error:
        break;
    }
  }
  return i;
}

void ResponseParser::feed_eof() {
  if (state_ == State::UntilClose) state_ = State::Done;
  else if (state_ != State::Done && state_ != State::Error) {
    static const char* names[] = {"head", "body", "chunk-size", "chunk-data", "chunk-data-end",
                                  "trailer", "until-close", "done", "error"};
    fail(std::string("EOF inside the response (") + names[static_cast<int>(state_)] + ", " +
         std::to_string(resp_.body.size()) + " body bytes received)");
  }
}

// ---------------------------------------------------------------------------------------------
// FNV-1a / pattern

void Fnv1a::update(std::string_view data) {
  for (unsigned char c : data) {
    h_ ^= c;
    h_ *= 0x100000001b3ULL;
  }
}

std::string Fnv1a::hex() const {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h_));
  return b;
}

std::string pattern_bytes(std::uint64_t offset, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (offset + i) % 26);
  return s;
}

std::string fnv1a_hex(std::string_view data) {
  Fnv1a f;
  f.update(data);
  return f.hex();
}

// ---------------------------------------------------------------------------------------------
// Client

const char* to_string(ReadEnd e) {
  switch (e) {
    case ReadEnd::Eof: return "EOF";
    case ReadEnd::Reset: return "reset";
    case ReadEnd::Timeout: return "timeout";
  }
  return "?";
}

Client::Client(std::uint16_t port, Ms timeout) {
  int err = 0;
  auto c = try_connect(port, timeout, &err);
  if (!c)
    throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port) + ": " +
                             (err ? std::strerror(err) : "timeout"));
  *this = std::move(*c);
}

std::optional<Client> Client::try_connect(std::uint16_t port, Ms timeout, int* err) {
  Client c;
  c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd_ < 0) {
    if (err) *err = errno;
    return std::nullopt;
  }
  int one = 1;
  ::setsockopt(c.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS) {
      if (err) *err = errno;
      return std::nullopt;
    }
    pollfd p{c.fd_, POLLOUT, 0};
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r <= 0) {
      if (err) *err = r == 0 ? ETIMEDOUT : errno;
      return std::nullopt;
    }
    int so = 0;
    socklen_t len = sizeof so;
    ::getsockopt(c.fd_, SOL_SOCKET, SO_ERROR, &so, &len);
    if (so != 0) {
      if (err) *err = so;
      return std::nullopt;
    }
  }
  if (err) *err = 0;
  return std::optional<Client>(std::move(c));
}

Client::Client(Client&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), errno_(o.errno_), buf_(std::move(o.buf_)),
      last_error_(std::move(o.last_error_)) {}

Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    close_fd();
    fd_ = std::exchange(o.fd_, -1);
    errno_ = o.errno_;
    buf_ = std::move(o.buf_);
    last_error_ = std::move(o.last_error_);
  }
  return *this;
}

Client::~Client() { close_fd(); }

void Client::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::uint16_t Client::local_port() const {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool Client::try_send(std::string_view data, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int left = remaining_ms(deadline);
      pollfd p{fd_, POLLOUT, 0};
      if (left == 0 || ::poll(&p, 1, left) == 0) {
        last_error_ = "send timed out after " + std::to_string(off) + " of " +
                      std::to_string(data.size()) + " bytes";
        return false;
      }
      continue;
    }
    last_error_ = std::string("send failed: ") + std::strerror(errno) + " after " +
                  std::to_string(off) + " of " + std::to_string(data.size()) + " bytes";
    return false;
  }
  return true;
}

void Client::send(std::string_view data, Ms timeout) {
  if (!try_send(data, timeout)) throw std::runtime_error(last_error_);
}

void Client::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

long Client::recv_some(Clock::time_point deadline) {
  char tmp[65536];
  for (;;) {
    int left = remaining_ms(deadline);
    if (left == 0) return -2;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, left);
    if (r < 0 && errno != EINTR) {
      errno_ = errno;
      return -1;
    }
    if (r <= 0) continue;
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<std::size_t>(n));
      return n;
    }
    if (n == 0) return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
    errno_ = errno;
    return -1;
  }
}

std::optional<Response> Client::read_response(Ms timeout, bool head_request) {
  auto deadline = Clock::now() + timeout;
  ResponseParser p(head_request);
  std::string first;  // the first bytes of this response, for failure messages
  std::size_t total = 0;
  for (;;) {
    if (!buf_.empty()) {
      std::size_t n = p.feed(buf_);
      if (first.size() < 512) first += buf_.substr(0, std::min<std::size_t>(n, 512 - first.size()));
      total += n;
      buf_.erase(0, n);
    }
    if (p.done()) return std::move(p.response());
    if (p.failed()) {
      last_error_ = "malformed response: " + p.error() + "; received: " + excerpt(first);
      return std::nullopt;
    }
    long r = recv_some(deadline);
    if (r == 0) {
      p.feed_eof();
      if (p.done()) return std::move(p.response());
      last_error_ = (total == 0 ? std::string("connection closed (EOF) before any response byte")
                                : "connection closed (EOF) mid-response: " + p.error()) +
                    "; received: " + excerpt(first);
      return std::nullopt;
    }
    if (r == -1) {
      last_error_ = std::string("recv error: ") + std::strerror(errno_) + " after " +
                    std::to_string(total) + " bytes; received: " + excerpt(first);
      return std::nullopt;
    }
    if (r == -2) {
      last_error_ = "timeout after " + std::to_string(timeout.count()) + " ms waiting for a response (" +
                    std::to_string(total) + " bytes received: " + excerpt(first) + ")";
      return std::nullopt;
    }
  }
}

ReadEnd Client::read_until_close(Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    long r = recv_some(deadline);
    if (r == 0) return ReadEnd::Eof;
    if (r == -1) return ReadEnd::Reset;
    if (r == -2) return ReadEnd::Timeout;
  }
}

bool Client::read_at_least(std::size_t n, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  while (buf_.size() < n) {
    if (recv_some(deadline) <= 0) return false;
  }
  return true;
}

std::string get_request(std::string_view target, std::string_view extra_headers,
                        std::string_view host) {
  std::string r = "GET ";
  r += target;
  r += " HTTP/1.1\r\nHost: ";
  r += host;
  r += "\r\n";
  r += extra_headers;
  r += "\r\n";
  return r;
}

std::string request_with_body(std::string_view method, std::string_view target,
                              std::string_view body, std::string_view extra_headers,
                              std::string_view host) {
  std::string r(method);
  r += " ";
  r += target;
  r += " HTTP/1.1\r\nHost: ";
  r += host;
  r += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  r += extra_headers;
  r += "\r\n";
  r += body;
  return r;
}

std::optional<Response> round_trip(std::uint16_t port, std::string_view raw_request, Ms timeout,
                                   std::string* why, bool head_request) {
  int err = 0;
  auto c = Client::try_connect(port, timeout, &err);
  if (!c) {
    if (why) *why = std::string("connect failed: ") + std::strerror(err);
    return std::nullopt;
  }
  if (!c->try_send(raw_request, timeout)) {
    if (why) *why = c->last_error();
    return std::nullopt;
  }
  auto r = c->read_response(timeout, head_request);
  if (!r && why) *why = c->last_error();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Echo

std::vector<std::string> Echo::values(std::string_view name) const {
  std::vector<std::string> r;
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) r.push_back(v);
  return r;
}

std::optional<std::string> Echo::value(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return v;
  return std::nullopt;
}

Echo parse_echo(const std::string& body) {
  Echo e;
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) throw std::runtime_error("not a JSON echo: " + excerpt(body));
  e.obj = v.as_object();
  auto str = [&](const char* k) -> std::string {
    auto* p = e.obj.if_contains(k);
    return p && p->is_string() ? std::string(p->as_string()) : std::string();
  };
  auto num = [&](const char* k) -> std::uint64_t {
    auto* p = e.obj.if_contains(k);
    if (!p || !p->is_number()) return 0;
    boost::system::error_code nec;
    auto n = p->to_number<std::uint64_t>(nec);
    return nec ? 0 : n;
  };
  e.name = str("name");
  e.method = str("method");
  e.target = str("target");
  e.version = str("version");
  e.body_fnv1a = str("body_fnv1a");
  e.body_bytes = num("body_bytes");
  e.connection_id = num("connection_id");
  e.request_on_connection = num("request_on_connection");
  if (auto* hs = e.obj.if_contains("headers"); hs && hs->is_array()) {
    for (const auto& h : hs->as_array()) {
      if (!h.is_array() || h.as_array().size() != 2) continue;
      const auto& pair = h.as_array();
      if (pair[0].is_string() && pair[1].is_string())
        e.headers.emplace_back(std::string(pair[0].as_string()), std::string(pair[1].as_string()));
    }
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// Backend

Backend::Backend(const std::string& name, const fs::path& dir) : name_(name) {
  static int counter = 0;
  proc_ = std::make_unique<Process>(
      std::vector<std::string>{backend_bin(), "--port", "0", "--name", name}, dir,
      "backend-" + name + "-" + std::to_string(++counter));
  auto m = proc_->wait_for_line(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), Ms(10000),
                                Stream::Stdout);
  if (!m)
    throw std::runtime_error("backend " + name + " did not become ready; stdout:\n" +
                             proc_->stdout_text() + "\nstderr:\n" + proc_->stderr_text());
  port_ = static_cast<std::uint16_t>(std::stoi((*m)[1]));
}

BackendStats Backend::stats() {
  std::string why;
  auto r = round_trip(port_, get_request("/_stats", "Connection: close\r\n"), Ms(3000), &why);
  if (!r || r->status != 200) throw std::runtime_error("backend /_stats failed: " + why);
  boost::system::error_code ec;
  auto v = boost::json::parse(r->body, ec);
  if (ec || !v.is_object()) throw std::runtime_error("backend /_stats not JSON: " + r->body);
  BackendStats s;
  auto& o = v.as_object();
  auto get = [&](const char* k) -> std::uint64_t {
    auto* p = o.if_contains(k);
    return p && p->is_number() ? p->to_number<std::uint64_t>() : 0;
  };
  s.requests = get("requests");
  s.connections = get("connections");
  s.open_connections = get("open_connections");
  return s;
}

void Backend::knobs(const std::string& query) {
  std::string why;
  auto r = round_trip(port_, get_request("/_knobs?" + query, "Connection: close\r\n"), Ms(3000), &why);
  if (!r || r->status != 200)
    throw std::runtime_error("backend /_knobs?" + query + " failed: " +
                             (r ? std::to_string(r->status) : why));
}

// ---------------------------------------------------------------------------------------------
// Proxy

namespace {

std::string yaml_list(const std::vector<std::string>& v) {
  std::string r = "[";
  for (std::size_t i = 0; i < v.size(); ++i) r += (i ? ", \"" : "\"") + v[i] + "\"";
  return r + "]";
}

}  // namespace

std::string render_config(const ProxyConfig& cfg, const fs::path& dir, int index) {
  std::ostringstream y;
  std::string sfx = std::to_string(index);
  y << "listen:\n";
  for (int i = 0; i < cfg.listeners; ++i) {
    y << "  - address: 127.0.0.1:0\n";
    if (!cfg.tls.empty()) y << "    tls: " << cfg.tls << "\n";
    if (!cfg.protocols.empty()) y << "    protocols: " << cfg.protocols << "\n";
  }
  y << "admin:\n  address: 127.0.0.1:0\n";
  y << "control:\n  socket: " << (dir / ("control-" + sfx + ".sock")).string() << "\n";
  y << "state_file: " << (dir / ("state-" + sfx + ".json")).string() << "\n";
  y << "threads: " << cfg.threads << "\n";
  std::vector<std::string> limits;
  if (cfg.max_connections) limits.push_back("max_connections: " + std::to_string(*cfg.max_connections));
  if (cfg.max_header_bytes) limits.push_back("max_header_bytes: " + std::to_string(*cfg.max_header_bytes));
  if (cfg.max_body_bytes) limits.push_back("max_body_bytes: " + std::to_string(*cfg.max_body_bytes));
  if (!limits.empty()) {
    y << "limits:\n";
    for (const auto& l : limits) y << "  " << l << "\n";
  }
  y << "timeouts:\n";
  if (!cfg.client_header.empty()) y << "  client_header: " << cfg.client_header << "\n";
  if (!cfg.client_idle.empty()) y << "  client_idle: " << cfg.client_idle << "\n";
  if (!cfg.upstream_connect.empty()) y << "  upstream_connect: " << cfg.upstream_connect << "\n";
  if (!cfg.upstream_response.empty()) y << "  upstream_response: " << cfg.upstream_response << "\n";
  if (!cfg.upstream_idle.empty()) y << "  upstream_idle: " << cfg.upstream_idle << "\n";
  y << "  shutdown: " << cfg.shutdown << "\n";
  y << "access_log: " << cfg.access_log << "\n";
  if (!cfg.cluster.empty()) {
    y << "cluster:\n";
    std::istringstream cl(cfg.cluster);
    std::string line;
    while (std::getline(cl, line)) y << "  " << line << "\n";
  }
  y << cfg.top_extra;
  y << "services:\n";
  y << "  - name: " << cfg.service_name << "\n";
  y << "    match: { host: \"" << cfg.match_host << "\", path_prefix: \"" << cfg.path_prefix << "\" }\n";
  y << "    blue: { servers: " << yaml_list(cfg.blue) << (cfg.blue_tls.empty() ? "" : ", tls: " + cfg.blue_tls)
    << " }\n";
  y << "    green: { servers: " << yaml_list(cfg.green) << " }\n";
  y << "    initial: { green: 0 }\n";
  if (!cfg.health_check) y << "    health_check: off\n";
  if (!cfg.service_extra.empty()) {
    std::istringstream ex(cfg.service_extra);
    std::string line;
    while (std::getline(ex, line)) y << "    " << line << "\n";
  }
  return y.str();
}

Proxy::Proxy(const ProxyConfig& cfg, const fs::path& dir, int index) {
  config_path_ = dir / ("bgproxy-" + std::to_string(index) + ".yaml");
  write_file(config_path_, render_config(cfg, dir, index));
  proc_ = std::make_unique<Process>(
      std::vector<std::string>{proxy_bin(), "-c", config_path_.string()}, dir,
      "bgproxy-" + std::to_string(index));
  auto m = proc_->wait_for_line(
      std::regex(R"(bgproxy ready: listen=([0-9.:,]+) admin=[0-9.]+:(\d+))"), Ms(10000));
  if (!m)
    throw std::runtime_error("bgproxy did not log its ready line within 10 s (running=" +
                             std::string(proc_->running() ? "yes" : "no") + "); stderr:\n" +
                             tail_lines(proc_->stderr_text(), 40) + "\nconfig:\n" +
                             read_file(config_path_));
  std::string listen = (*m)[1];
  std::size_t start = 0;
  while (start < listen.size()) {
    std::size_t comma = listen.find(',', start);
    std::string addr = listen.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    ports_.push_back(static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1))));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  admin_port_ = static_cast<std::uint16_t>(std::stoi((*m)[2]));
  if (ports_.size() != static_cast<std::size_t>(cfg.listeners))
    throw std::runtime_error("ready line lists " + std::to_string(ports_.size()) +
                             " listeners, configured " + std::to_string(cfg.listeners) + ": " + (*m)[0]);
}

std::string Proxy::metrics() {
  std::string why;
  auto r = round_trip(admin_port_, get_request("/metrics", "Connection: close\r\n", "127.0.0.1"),
                      Ms(3000), &why);
  if (!r) throw std::runtime_error("GET /metrics failed: " + why);
  if (r->status != 200) throw std::runtime_error("GET /metrics: status " + std::to_string(r->status));
  return r->body;
}

std::optional<double> Proxy::wait_metric(const std::string& name,
                                         const std::map<std::string, std::string>& labels,
                                         const std::function<bool(double)>& pred, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  std::optional<double> v;
  for (;;) {
    v = metric_value(metrics(), name, labels);
    if ((v && pred(*v)) || Clock::now() >= deadline) return v;
    std::this_thread::sleep_for(Ms(100));
  }
}

std::optional<double> metric_value(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels) {
  std::istringstream is(text);
  std::string line;
  std::optional<double> sum;
  while (std::getline(is, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::size_t name_end = line.find_first_of("{ ");
    if (name_end == std::string::npos || line.compare(0, name_end, name) != 0 ||
        name_end != name.size())
      continue;
    std::map<std::string, std::string> got;
    std::size_t pos = name_end;
    if (line[pos] == '{') {
      ++pos;
      while (pos < line.size() && line[pos] != '}') {
        std::size_t eq = line.find('=', pos);
        if (eq == std::string::npos) break;
        std::string key(trim(std::string_view(line).substr(pos, eq - pos)));
        pos = eq + 1;
        if (pos >= line.size() || line[pos] != '"') break;
        ++pos;
        std::string val;
        while (pos < line.size() && line[pos] != '"') {
          if (line[pos] == '\\' && pos + 1 < line.size()) {
            ++pos;
            val += line[pos] == 'n' ? '\n' : line[pos];
          } else {
            val += line[pos];
          }
          ++pos;
        }
        ++pos;  // closing quote
        got[key] = val;
        if (pos < line.size() && line[pos] == ',') ++pos;
      }
      pos = line.find('}', pos);
      if (pos == std::string::npos) continue;
      ++pos;
    }
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = got.find(k);
      if (it == got.end() || it->second != v) {
        match = false;
        break;
      }
    }
    if (!match) continue;
    std::istringstream vs(line.substr(pos));
    std::string tok;
    vs >> tok;
    double d = 0;
    try {
      d = std::stod(tok);
    } catch (...) {
      continue;
    }
    sum = sum.value_or(0.0) + d;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Fixture

Backend& IntegrationTest::start_backend(const std::string& name) {
  backends_.push_back(std::make_unique<Backend>(name, dir_.path()));
  return *backends_.back();
}

Proxy& IntegrationTest::start_proxy(ProxyConfig cfg) {
  if (cfg.blue.empty()) cfg.blue.push_back(start_backend("blue").address());
  if (cfg.green.empty()) cfg.green.push_back("127.0.0.1:" + std::to_string(refused_port()));
  proxies_.push_back(std::make_unique<Proxy>(cfg, dir_.path(), static_cast<int>(proxies_.size())));
  return *proxies_.back();
}

std::uint16_t IntegrationTest::refused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw std::runtime_error(std::string("reserve port: ") + std::strerror(errno));
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  reserved_fds_.push_back(fd);
  return ntohs(a.sin_port);
}

void IntegrationTest::TearDown() {
  if (HasFailure()) {
    for (auto& p : proxies_)
      std::cerr << "----- " << p->process().tag() << " stderr (tail) -----\n"
                << tail_lines(p->process().stderr_text(), 40) << "\n";
    for (auto& b : backends_)
      std::cerr << "----- " << b->process().tag() << " stderr (tail) -----\n"
                << tail_lines(b->process().stderr_text(), 20) << "\n";
  }
  proxies_.clear();
  backends_.clear();
  for (int fd : reserved_fds_) ::close(fd);
  reserved_fds_.clear();
}

// ---------------------------------------------------------------------------------------------

std::string describe(const Outcome& o) {
  std::ostringstream s;
  s << "status=" << o.status << " backend=" << o.backend << " color=" << o.color << " took="
    << std::chrono::duration_cast<Ms>(o.finished - o.started).count() << "ms";
  if (!o.error.empty()) s << " error=" << o.error;
  return s.str();
}

std::size_t count_failures(const std::vector<Outcome>& v, std::string* first) {
  std::size_t n = 0;
  for (const auto& o : v) {
    if (o.status == 200 && o.error.empty()) continue;
    if (++n <= 10) *first += "  " + describe(o) + "\n";
  }
  return n;
}

RequestLoop::RequestLoop(std::uint16_t port, int threads, Ms pace) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, port, pace, i] { run(port, pace, i); });
}

RequestLoop::~RequestLoop() { stop(); }

void RequestLoop::stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::vector<Outcome> RequestLoop::outcomes() {
  std::lock_guard lock(mu_);
  return outcomes_;
}

std::size_t RequestLoop::count() {
  std::lock_guard lock(mu_);
  return outcomes_.size();
}

std::vector<Outcome> RequestLoop::since(Clock::time_point t) {
  std::lock_guard lock(mu_);
  std::vector<Outcome> r;
  for (const auto& o : outcomes_)
    if (o.started >= t) r.push_back(o);
  return r;
}

void RequestLoop::run(std::uint16_t port, Ms pace, int index) {
  std::optional<Client> c;
  std::uint64_t seq = 0;
  while (!stop_) {
    Outcome o;
    o.started = Clock::now();
    if (!c) {
      int err = 0;
      c = Client::try_connect(port, Ms(2000), &err);
      if (!c) o.error = "connect: " + std::string(std::strerror(err));
    }
    if (c) {
      std::string target = "/loop/" + std::to_string(index) + "/" + std::to_string(++seq);
      if (!c->try_send(get_request(target), Ms(3000))) {
        o.error = "send: " + c->last_error();
      } else if (auto r = c->read_response(Ms(6000))) {
        o.status = r->status;
        o.backend = r->header("X-Backend").value_or("");
        o.color = r->header("X-Bg-Color").value_or("");
        auto conn = r->header("Connection");
        if (conn && *conn == "close") c.reset();
      } else {
        o.error = "read: " + c->last_error();
      }
      if (o.status == 0) c.reset();
    }
    o.finished = Clock::now();
    {
      std::lock_guard lock(mu_);
      outcomes_.push_back(std::move(o));
    }
    std::this_thread::sleep_for(pace);
  }
}

}  // namespace bgtest
