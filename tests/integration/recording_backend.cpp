#include "recording_backend.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace bgtest {

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// The result of framing the bytes at hand.
struct Framed {
  enum class State { need_more, done, error } state = State::need_more;
  std::size_t consumed = 0;
  RecordedRequest request;
};

/// One CRLF-terminated line starting at `pos`: nullopt when it is not complete yet. A bare LF
/// (or a CR not followed by LF) is an error: a lenient peer may end lines there and a strict one
/// not, which is how heads get read two ways.
struct Line {
  std::string_view text;
  std::size_t next = 0;
  bool bad = false;
};

std::optional<Line> line_at(std::string_view in, std::size_t pos) {
  for (std::size_t i = pos; i < in.size(); ++i) {
    if (in[i] == '\n') return Line{{}, 0, true};
    if (in[i] != '\r') continue;
    if (i + 1 == in.size()) return std::nullopt;
    if (in[i + 1] != '\n') return Line{{}, 0, true};
    return Line{in.substr(pos, i - pos), i + 2, false};
  }
  return std::nullopt;
}

Framed fail(Framed f, std::string why) {
  f.state = Framed::State::error;
  f.request.error = std::move(why);
  return f;
}

/// Reads strictly chunked data from `pos`: size lines of hex digits (an extension after ';'
/// allowed), CRLF after every chunk, a last chunk and trailer fields that never frame anything.
Framed frame_chunked(Framed f, std::string_view in, std::size_t pos) {
  for (;;) {
    auto size_line = line_at(in, pos);
    if (!size_line) return f;
    if (size_line->bad) return fail(std::move(f), "bare LF or CR in a chunk-size line");
    const auto text = size_line->text;
    const auto digits = std::find_if_not(text.begin(), text.end(), [](char c) {
                          return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                        }) - text.begin();
    const auto ext = trim_ows(text.substr(static_cast<std::size_t>(digits)));
    if (digits == 0 || digits > 15 || (!ext.empty() && ext.front() != ';'))
      return fail(std::move(f), "bad chunk-size line: " + printable(text));
    const auto size = std::stoull(std::string(text.substr(0, static_cast<std::size_t>(digits))), nullptr, 16);
    pos = size_line->next;
    if (size == 0) break;
    if (in.size() < pos + size + 2) return f;
    if (in.substr(pos + size, 2) != "\r\n") return fail(std::move(f), "chunk data not followed by CRLF");
    f.request.body.append(in.substr(pos, size));
    pos += size + 2;
  }
  for (;;) {
    auto trailer = line_at(in, pos);
    if (!trailer) return f;
    if (trailer->bad) return fail(std::move(f), "bare LF or CR in the trailer section");
    pos = trailer->next;
    if (trailer->text.empty()) break;
    if (trailer->text.front() == ' ' || trailer->text.front() == '\t')
      return fail(std::move(f), "obs-fold in the trailer section");
  }
  f.request.raw = std::string(in.substr(0, pos));
  f.consumed = pos;
  f.state = Framed::State::done;
  return f;
}

/// Frames one request at the start of `in` (RFC 9112 §2–§7, with every leniency refused).
Framed frame_request(std::string_view in) {
  Framed f;
  auto& req = f.request;
  auto request_line = line_at(in, 0);
  if (!request_line) return f;
  if (request_line->bad) return fail(std::move(f), "bare LF or CR in the request line");
  const auto sp1 = request_line->text.find(' ');
  const auto sp2 = request_line->text.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2)
    return fail(std::move(f), "bad request line: " + printable(request_line->text));
  req.method = request_line->text.substr(0, sp1);
  req.target = request_line->text.substr(sp1 + 1, sp2 - sp1 - 1);
  req.version = request_line->text.substr(sp2 + 1);
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0")
    return fail(std::move(f), "bad request line: " + printable(request_line->text));

  std::size_t pos = request_line->next;
  for (;;) {
    auto field = line_at(in, pos);
    if (!field) return f;
    if (field->bad) return fail(std::move(f), "bare LF or CR in the head");
    pos = field->next;
    const auto text = field->text;
    if (text.empty()) break;
    if (text.front() == ' ' || text.front() == '\t') return fail(std::move(f), "obs-fold: " + printable(text));
    const auto colon = text.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        !std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(colon), is_tchar))
      return fail(std::move(f), "bad field line: " + printable(text));
    req.headers.push_back({std::string(text.substr(0, colon)), std::string(trim_ows(text.substr(colon + 1)))});
  }
  const std::size_t head_end = pos;

  const auto lengths = req.values("Content-Length");
  const auto codings = req.values("Transfer-Encoding");
  if (!lengths.empty() && !codings.empty()) return fail(std::move(f), "both Content-Length and Transfer-Encoding");
  if (lengths.size() > 1) return fail(std::move(f), "Content-Length sent " + std::to_string(lengths.size()) + " times");
  if (codings.size() > 1) return fail(std::move(f), "Transfer-Encoding sent " + std::to_string(codings.size()) + " times");
  if (!codings.empty()) {
    const std::string_view te = codings.front();
    const auto comma = te.rfind(',');
    if (!iequal(trim_ows(comma == std::string_view::npos ? te : te.substr(comma + 1)), "chunked"))
      return fail(std::move(f), "Transfer-Encoding not ending in chunked: " + codings.front());
    return frame_chunked(std::move(f), in, head_end);
  }
  std::uint64_t length = 0;
  if (!lengths.empty()) {
    const std::string& v = lengths.front();
    if (v.empty() || v.size() > 15 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fail(std::move(f), "bad Content-Length: " + printable(v));
    length = std::stoull(v);
  }
  if (in.size() < head_end + length) return f;
  req.body = std::string(in.substr(head_end, static_cast<std::size_t>(length)));
  f.consumed = head_end + static_cast<std::size_t>(length);
  req.raw = std::string(in.substr(0, f.consumed));
  f.state = Framed::State::done;
  return f;
}

std::string default_answer(const RecordedRequest& r) {
  const auto body = RecordingBackend::answer_body(r.method, r.target);
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the proxy went away; what it received is what the test looks at
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

std::string printable(std::string_view s, std::size_t max) {
  std::string r;
  for (char c : s.substr(0, max)) {
    if (c == '\r') r += "\\r";
    else if (c == '\n') r += "\\n";
    else r += c;
  }
  if (s.size() > max) r += "...(" + std::to_string(s.size()) + " bytes)";
  return r;
}

std::vector<std::string> RecordedRequest::values(std::string_view name) const {
  std::vector<std::string> r;
  for (const auto& h : headers)
    if (iequal(h.name, name)) r.push_back(h.value);
  return r;
}

std::optional<std::string> RecordedRequest::value(std::string_view name) const {
  for (const auto& h : headers)
    if (iequal(h.name, name)) return h.value;
  return std::nullopt;
}

RecordingBackend::RecordingBackend() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0)
    throw std::runtime_error("recording backend: cannot listen");
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

RecordingBackend::~RecordingBackend() {
  stop_ = true;
  acceptor_.join();  // no connection is added after this
  for (auto& t : threads_) t.join();
  for (auto& c : connections_) ::close(c->fd);
  ::close(listen_fd_);
}

void RecordingBackend::set_script(Script script) {
  std::lock_guard lock(mu_);
  script_ = std::move(script);
}

std::string RecordingBackend::answer_body(std::string_view method, std::string_view target) {
  return "answer to " + std::string(method) + " " + std::string(target);
}

std::vector<RecordedRequest> RecordingBackend::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

bool RecordingBackend::wait_requests(std::size_t n, Ms timeout) const {
  return wait([&] { return requests_.size() >= n; }, timeout);
}

std::size_t RecordingBackend::connections() const {
  std::lock_guard lock(mu_);
  return connections_.size();
}

std::string RecordingBackend::after_switch(std::size_t connection) const {
  std::lock_guard lock(mu_);
  return connections_.at(connection)->after_switch;
}

bool RecordingBackend::wait_after_switch(std::size_t connection, std::size_t n, Ms timeout) const {
  return wait([&] { return connections_.at(connection)->after_switch.size() >= n; }, timeout);
}

bool RecordingBackend::wait_closed_by_peer(std::size_t connection, Ms timeout) const {
  return wait([&] { return connections_.at(connection)->closed_by_peer; }, timeout);
}

std::string RecordingBackend::transcript() const {
  std::lock_guard lock(mu_);
  std::string t;
  for (std::size_t i = 0; i < connections_.size(); ++i) {
    const auto& c = *connections_[i];
    t += "\n  backend connection " + std::to_string(i) + (c.closed_by_peer ? " (closed by the proxy)" : "") +
         ": " + printable(c.received, 1500);
  }
  return t.empty() ? "\n  (the backend was never connected)" : t;
}

bool RecordingBackend::wait(const std::function<bool()>& done, Ms timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, done);
}

void RecordingBackend::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    connections_.push_back(std::make_unique<Connection>());
    connections_.back()->fd = fd;
    threads_.emplace_back([this, index = connections_.size() - 1] { serve(index); });
  }
}

void RecordingBackend::serve(std::size_t index) {
  int fd;
  {
    std::lock_guard lock(mu_);
    fd = connections_[index]->fd;
  }
  std::string pending;  // bytes not yet framed as a request
  bool reading_requests = true;
  char buf[16384];
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      // Hang up as well, as a server does: a proxy relaying a tunnel waits for both directions.
      ::shutdown(fd, SHUT_WR);
      std::lock_guard lock(mu_);
      connections_[index]->closed_by_peer = true;
      cv_.notify_all();
      return;
    }
    const std::string_view got(buf, static_cast<std::size_t>(n));
    {
      std::lock_guard lock(mu_);
      auto& c = *connections_[index];
      c.received.append(got);
      if (c.switched) c.after_switch.append(got);
      cv_.notify_all();
    }
    if (!reading_requests) continue;
    pending.append(got);
    reading_requests = answer_pending(index, pending);
  }
}

bool RecordingBackend::answer_pending(std::size_t index, std::string& pending) {
  for (;;) {
    Framed f = frame_request(pending);
    if (f.state == Framed::State::need_more) return true;
    f.request.connection = index;
    if (f.state == Framed::State::error) {
      f.request.raw = pending;
      int fd;
      {
        std::lock_guard lock(mu_);
        fd = connections_[index]->fd;
        requests_.push_back(std::move(f.request));
        cv_.notify_all();
      }
      // A backend that cannot frame a request cannot answer it: it hangs up, as servers do.
      ::shutdown(fd, SHUT_WR);
      return false;
    }
    pending.erase(0, f.consumed);
    Script script;
    int fd;
    {
      std::lock_guard lock(mu_);
      script = script_;
      fd = connections_[index]->fd;
    }
    const auto scripted = script ? script(f.request) : std::nullopt;
    const Reply reply = scripted ? *scripted : Reply{default_answer(f.request)};
    {
      // Recorded before the answer leaves: whoever reads the answer finds the request here.
      std::lock_guard lock(mu_);
      requests_.push_back(std::move(f.request));
      if (reply.then == Reply::Then::switch_protocols) {
        auto& c = *connections_[index];
        c.switched = true;
        c.after_switch = pending;
      }
      cv_.notify_all();
    }
    send_all(fd, reply.bytes);
    switch (reply.then) {
      case Reply::Then::keep_alive:
        continue;
      case Reply::Then::close:
        ::shutdown(fd, SHUT_WR);
        return false;
      case Reply::Then::switch_protocols:
        return false;
    }
  }
}

}  // namespace bgtest
