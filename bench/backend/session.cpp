#include "session.hpp"

// What the demo backend answers (every response carries `X-Backend: NAME`):
//   /health         status = knob health_status, body "ok"
//   /_stats         {"requests","connections","open_connections"}; ?reset=1 zeroes "requests"
//   /_knobs?k=v&... sets status, error_rate, latency_ms, health_status, idle_close_ms,
//                   keep_alive_timeout, keep_alive_max, app_version (N: the echo carries
//                   "app_version":N), reset=1; answers all knobs as JSON (400 and
//                   no change on an unknown knob or bad value)
//   Upgrade: websocket  echo every message with its opcode until close
//   anything else   JSON echo of the request (counted in "requests"), shaped by the query:
//                   status, delay_ms, body_bytes, chunked, chunk_bytes, write_bytes, close_mid,
//                   close, no_length, set_cookie. Status precedence: an error_rate draw (500), then
//                   ?status=, then the status knob, then 200. latency_ms adds to delay_ms.
// Request bodies are hashed (FNV-1a 64) as they stream through a 64 KiB buffer, never stored.
//
// Keep-alive knobs, for the upstream keep-alive race (issue 19); each close is a plain close(),
// a FIN as from a real server, never a reset unless request bytes arrived in the same instant:
//   idle_close_ms=T       a connection idle T ms between requests is closed, without a word
//   keep_alive_timeout=N  every keep-alive response says `Keep-Alive: timeout=N`, and a connection
//                         idle N s is closed (the shorter of T and N s when both are set)
//   keep_alive_max=M      every keep-alive response says `Keep-Alive: max=M` (with timeout=N:
//                         `timeout=N, max=M`), and the connection is closed right after its M-th
//                         response, which carries no `Connection: close`

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "util.hpp"

namespace bgproxy::demo {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Timer = net::basic_waitable_timer<std::chrono::steady_clock,
                                        net::wait_traits<std::chrono::steady_clock>, Executor>;

namespace {

constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::size_t kBodyChunk = 64 * 1024;           // request body read buffer
constexpr std::size_t kMaxWrite = 256 * 1024;           // bytes per async_write
constexpr std::size_t kMaxBuffers = 64;                 // Asio gathers at most 64 per send
constexpr std::int64_t kMaxDelayMs = 3'600'000;
constexpr auto kLinger = std::chrono::seconds(1);
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

bool bodiless_status(unsigned s) { return s < 200 || s == 204 || s == 304; }

// ------------------------------------------------------------------------------------------------
// Websocket echo: every message goes back with the same opcode until the peer closes.

class WsSession : public std::enable_shared_from_this<WsSession> {
public:
  WsSession(Socket&& socket, Shared& shared) : ws_(std::move(socket)), shared_(shared) {}
  ~WsSession() { shared_.stats.open_connections.fetch_sub(1, std::memory_order_relaxed); }

  void run(http::request<http::buffer_body> req) {
    req_ = std::move(req);
    ws_.set_option(websocket::stream_base::decorator(
        [name = shared_.name](websocket::response_type& res) { res.set("X-Backend", name); }));
    ws_.async_accept(req_, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->do_read();
    });
  }

private:
  void do_read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }
  void on_read(beast::error_code ec) {
    if (ec) return;  // closed (websocket::error::closed) or failed: either way we are done
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      self->buffer_.consume(self->buffer_.size());
      self->do_read();
    });
  }

  websocket::stream<Socket> ws_;
  Shared& shared_;
  http::request<http::buffer_body> req_;
  beast::flat_buffer buffer_;
};

// ------------------------------------------------------------------------------------------------
// HTTP: read a head, stream-hash the body, plan the response, write it (maybe slowly, in pieces).

class HttpSession : public std::enable_shared_from_this<HttpSession> {
public:
  HttpSession(Socket&& socket, Shared& shared)
      : socket_(std::move(socket)), shared_(shared), timer_(socket_.get_executor()) {
    id_ = shared_.stats.connections.fetch_add(1, std::memory_order_relaxed) + 1;
    shared_.stats.open_connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~HttpSession() {
    if (!handed_off_) shared_.stats.open_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  void start() {
    beast::error_code ec;
    socket_.set_option(net::ip::tcp::no_delay(true), ec);
    do_read_header();
  }

private:
  // What the response looks like; decided once the request is complete.
  struct Plan {
    unsigned status = 200;
    bool head_only = false;      // HEAD: the head GET would get, no body
    bool keep_alive = true;
    bool last_on_connection = false;  // keep_alive_max reached: close once written, unannounced
    bool chunked = false;
    bool no_length = false;      // body delimited by closing the connection
    bool close_mid = false;      // Content-Length of the whole body, half of it, then close
    bool pattern = false;        // body is pattern bytes, not body_
    std::uint64_t body_len = 0;
    std::size_t chunk_bytes = 4096;
    std::size_t write_bytes = 0;  // 0 = as few writes as possible
    std::int64_t delay_ms = 0;
    std::string_view content_type = "application/json";
    std::string set_cookie;
  };
  enum class Stage { Head, Body, ChunkHead, ChunkData, ChunkTail, LastChunk, Done };

  // ---- reading -------------------------------------------------------------------------------

  void do_read_header() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(boost::none);
    if (int idle = shared_.knobs.load().idle_limit_ms(); idle > 0 && buffer_.size() == 0) {
      arm_idle_close(idle);
    }
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_read_header(ec);
                            });
  }

  void arm_idle_close(int ms) {
    timer_.expires_after(std::chrono::milliseconds(ms));
    timer_.async_wait([self = shared_from_this(), gen = ++idle_gen_](beast::error_code ec) {
      if (ec || gen != self->idle_gen_) return;
      self->close_now();
    });
    idle_armed_ = true;
  }

  void disarm_idle_close() {
    if (!idle_armed_) return;
    idle_armed_ = false;
    ++idle_gen_;
    timer_.cancel();
  }

  void on_read_header(beast::error_code ec) {
    disarm_idle_close();
    if (ec) return on_read_error(ec);
    auto& req = parser_->get();
    if (websocket::is_upgrade(req)) {
      shared_.stats.requests.fetch_add(1, std::memory_order_relaxed);
      handed_off_ = true;
      std::make_shared<WsSession>(std::move(socket_), shared_)->run(parser_->release());
      return;
    }
    ++request_on_connection_;
    hash_ = Fnv1a64{};
    body_bytes_ = 0;
    if (parser_->is_done()) return on_request();
    if (req.version() >= 11 && beast::iequals(req[http::field::expect], "100-continue")) {
      net::async_write(socket_, net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec) return;
                         self->do_read_body();
                       });
      return;
    }
    do_read_body();
  }

  void do_read_body() {
    if (!body_buf_) body_buf_ = std::make_unique<char[]>(kBodyChunk);
    auto& body = parser_->get().body();
    body.data = body_buf_.get();
    body.size = kBodyChunk;
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read_body(ec);
                     });
  }

  void on_read_body(beast::error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return on_read_error(ec);
    std::size_t n = kBodyChunk - parser_->get().body().size;
    hash_.update(body_buf_.get(), n);
    body_bytes_ += n;
    if (parser_->is_done()) return on_request();
    do_read_body();
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::header_limit) return send_error(431, "request header too large");
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return send_error(400, ec.message());
    }
    // EOF, reset, aborted by the idle close or the signal: nothing to answer.
  }

  // ---- deciding --------------------------------------------------------------------------------

  void on_request() {
    auto& req = parser_->get();
    std::string_view target = req.target();
    auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    std::string_view query =
        q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

    plan_ = Plan{};
    plan_.head_only = req.method() == http::verb::head;
    plan_.keep_alive = req.keep_alive();
    body_.clear();

    if (path == "/health") {
      plan_.status = static_cast<unsigned>(shared_.knobs.load().health_status);
      plan_.content_type = "text/plain";
      body_ = "ok";
    } else if (path == "/_stats") {
      bool reset = false;
      for_each_query_param(query, [&](std::string_view k, std::string_view v) {
        if (k == "reset") reset = v.empty() || v == "1" || v == "true";
      });
      shared_.stats.append_json(body_);
      if (reset) shared_.stats.requests.store(0, std::memory_order_relaxed);
    } else if (path == "/_knobs") {
      if (std::string err = shared_.knobs.apply(query); !err.empty()) {
        plan_.status = 400;
        body_ = "{\"error\":";
        append_json_string(body_, err);
        body_ += '}';
      } else {
        shared_.knobs.append_json(body_);
      }
    } else {
      shared_.stats.requests.fetch_add(1, std::memory_order_relaxed);
      plan_normal(query);
    }
    start_response();
  }

  // Applies the per-request query parameters and knobs; a bad parameter makes the plan a 400.
  void plan_normal(std::string_view query) {
    KnobValues knobs = shared_.knobs.load();
    std::optional<std::int64_t> status;
    std::optional<std::int64_t> body_bytes;
    std::string bad;
    auto flag = [](std::string_view v) { return v.empty() || v == "1" || v == "true"; };
    for_each_query_param(query, [&](std::string_view k, std::string_view v) {
      if (!bad.empty()) return;
      auto num = [&](std::int64_t lo, std::int64_t hi) {
        auto r = parse_int(v, lo, hi);
        if (!r) bad = std::string(k) + "=" + std::string(v);
        return r.value_or(lo);
      };
      if (k == "status") {
        status = num(100, 999);
      } else if (k == "delay_ms") {
        plan_.delay_ms = num(0, kMaxDelayMs);
      } else if (k == "body_bytes") {
        body_bytes = num(0, INT64_MAX);
      } else if (k == "chunked") {
        plan_.chunked = flag(v);
      } else if (k == "chunk_bytes") {
        plan_.chunk_bytes = static_cast<std::size_t>(num(1, 1 << 30));
      } else if (k == "write_bytes") {
        plan_.write_bytes = static_cast<std::size_t>(num(1, 1 << 30));
      } else if (k == "close_mid") {
        plan_.close_mid = flag(v);
      } else if (k == "close") {
        if (flag(v)) plan_.keep_alive = false;
      } else if (k == "no_length") {
        plan_.no_length = flag(v);
      } else if (k == "set_cookie") {
        // No CR/LF may reach the head: a test backend must not become a header-injection tool.
        plan_.set_cookie.clear();
        for (char c : v) {
          if (c != '\r' && c != '\n') plan_.set_cookie.push_back(c);
        }
      }
      // Anything else is the caller's own business and is only echoed back.
    });
    if (!bad.empty()) {
      bool head_only = plan_.head_only;
      plan_ = Plan{};
      plan_.keep_alive = false;
      plan_.status = 400;
      plan_.head_only = head_only;
      body_ = "{\"error\":";
      append_json_string(body_, "bad query parameter: " + bad);
      body_ += '}';
      return;
    }

    plan_.delay_ms += knobs.latency_ms;
    if (shared_.knobs.draw_error(knobs.error_rate)) {
      plan_.status = 500;
    } else if (status) {
      plan_.status = static_cast<unsigned>(*status);
    } else if (knobs.status != 0) {
      plan_.status = static_cast<unsigned>(knobs.status);
    }
    if (body_bytes) {
      plan_.pattern = true;
      plan_.body_len = static_cast<std::uint64_t>(*body_bytes);
      plan_.content_type = "application/octet-stream";
    } else {
      append_echo_json();
    }
    // An HTTP/1.0 client cannot read chunked: end its body by closing instead.
    if (plan_.chunked && parser_->get().version() < 11) {
      plan_.chunked = false;
      plan_.no_length = true;
    }
    if (plan_.no_length || plan_.close_mid) plan_.keep_alive = false;
  }

  void append_echo_json() {
    auto& req = parser_->get();
    body_ += "{\"name\":";
    append_json_string(body_, shared_.name);
    body_ += ",\"method\":";
    append_json_string(body_, req.method_string());
    body_ += ",\"target\":";
    append_json_string(body_, req.target());
    body_ += req.version() == 10 ? ",\"version\":\"1.0\"" : ",\"version\":\"1.1\"";
    body_ += ",\"headers\":[";
    bool first = true;
    for (const auto& f : req) {
      if (!first) body_ += ',';
      first = false;
      body_ += '[';
      append_json_string(body_, f.name_string());
      body_ += ',';
      append_json_string(body_, f.value());
      body_ += ']';
    }
    body_ += "],\"body_bytes\":";
    append_number(body_, body_bytes_);
    body_ += ",\"body_fnv1a\":\"";
    append_hex16(body_, hash_.h);
    body_ += "\",\"connection_id\":";
    append_number(body_, id_);
    body_ += ",\"request_on_connection\":";
    append_number(body_, request_on_connection_);
    if (const int v = shared_.knobs.load().app_version; v != 0) {
      body_ += ",\"app_version\":";
      append_number(body_, v);
    }
    body_ += '}';
  }

  void send_error(unsigned status, std::string_view message) {
    plan_ = Plan{};
    plan_.keep_alive = false;
    plan_.status = status;
    body_ = "{\"error\":";
    append_json_string(body_, message);
    body_ += '}';
    start_response();
  }

  // ---- writing ---------------------------------------------------------------------------------

  void start_response() {
    Plan& p = plan_;
    if (!p.pattern) p.body_len = body_.size();
    bool bodiless = bodiless_status(p.status);
    if (bodiless) {
      p.body_len = 0;
      p.chunked = p.no_length = p.close_mid = false;
    }

    head_.clear();
    head_ += "HTTP/1.1 ";
    append_number(head_, p.status);
    head_ += ' ';
    head_ += reason_phrase(p.status);
    head_ += "\r\nX-Backend: ";
    head_ += shared_.name;
    if (!bodiless) {
      head_ += "\r\nContent-Type: ";
      head_ += p.content_type;
    }
    if (p.chunked) {
      head_ += "\r\nTransfer-Encoding: chunked";
    } else if (!p.no_length && !(bodiless && p.status != 304)) {
      head_ += "\r\nContent-Length: ";
      append_number(head_, p.body_len);
    }
    if (!p.keep_alive) {
      head_ += "\r\nConnection: close";
    } else {
      if (parser_ && parser_->get().version() < 11) head_ += "\r\nConnection: keep-alive";
      append_keep_alive(shared_.knobs.load());
    }
    if (!p.set_cookie.empty()) {
      head_ += "\r\nSet-Cookie: ";
      head_ += p.set_cookie;
    }
    head_ += "\r\n\r\n";

    stage_ = Stage::Head;
    piece_off_ = 0;
    body_pos_ = 0;
    body_end_ = p.head_only ? 0 : (p.close_mid ? p.body_len / 2 : p.body_len);

    if (p.delay_ms > 0) {
      timer_.expires_after(std::chrono::milliseconds(p.delay_ms));
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (ec) return;
        self->do_write();
      });
      return;
    }
    do_write();
  }

  // `Keep-Alive: timeout=N, max=M` as the knobs say, and whether this response is the last one.
  void append_keep_alive(const KnobValues& k) {
    if (k.keep_alive_timeout <= 0 && k.keep_alive_max <= 0) return;
    head_ += "\r\nKeep-Alive: ";
    if (k.keep_alive_timeout > 0) {
      head_ += "timeout=";
      append_number(head_, k.keep_alive_timeout);
    }
    if (k.keep_alive_max > 0) {
      if (k.keep_alive_timeout > 0) head_ += ", ";
      head_ += "max=";
      append_number(head_, k.keep_alive_max);
      plan_.last_on_connection =
          request_on_connection_ >= static_cast<std::uint64_t>(k.keep_alive_max);
    }
  }

  // The bytes left in the current piece of the output; may render a chunk head into `slot`.
  net::const_buffer current_piece(std::size_t slot) {
    switch (stage_) {
      case Stage::Head:
        return net::buffer(head_) + piece_off_;
      case Stage::Body:
        return body_bytes_at(body_pos_, body_end_ - body_pos_);
      case Stage::ChunkHead: {
        auto& s = chunk_heads_[slot];
        auto [end, ec] = std::to_chars(s.data(), s.data() + s.size() - 2, chunk_size_, 16);
        (void)ec;
        *end++ = '\r';
        *end++ = '\n';
        return net::buffer(s.data(), static_cast<std::size_t>(end - s.data())) + piece_off_;
      }
      case Stage::ChunkData:
        return body_bytes_at(body_pos_, chunk_left_);
      case Stage::ChunkTail:
        return net::buffer(kCrlf) + piece_off_;
      case Stage::LastChunk:
        return net::buffer(kLastChunk) + piece_off_;
      case Stage::Done:
        break;
    }
    return {};
  }

  net::const_buffer body_bytes_at(std::uint64_t pos, std::uint64_t max) {
    if (plan_.pattern) {
      return net::buffer(pattern_slice(pos), static_cast<std::size_t>(
                                                 std::min<std::uint64_t>(max, kPatternMaxSlice)));
    }
    return net::buffer(body_.data() + pos, static_cast<std::size_t>(max));
  }

  // Moves past `n` bytes of the current piece, to the next piece when it is used up.
  void advance(std::size_t n, std::size_t piece_size) {
    bool whole = n == piece_size;
    switch (stage_) {
      case Stage::Head:
        piece_off_ += n;
        if (!whole) return;
        if (body_end_ == 0 && !(plan_.chunked && !plan_.head_only)) {
          stage_ = Stage::Done;
        } else if (plan_.chunked) {
          next_chunk();
        } else {
          stage_ = Stage::Body;
        }
        break;
      case Stage::Body:
        body_pos_ += n;
        if (body_pos_ == body_end_) stage_ = Stage::Done;
        return;
      case Stage::ChunkHead:
        piece_off_ += n;
        if (whole) {
          stage_ = Stage::ChunkData;
          chunk_left_ = chunk_size_;
        }
        return;
      case Stage::ChunkData:
        body_pos_ += n;
        chunk_left_ -= n;
        if (chunk_left_ == 0) stage_ = Stage::ChunkTail;
        break;
      case Stage::ChunkTail:
        piece_off_ += n;
        if (whole) next_chunk();
        return;
      case Stage::LastChunk:
        piece_off_ += n;
        if (whole) stage_ = Stage::Done;
        return;
      case Stage::Done:
        return;
    }
    piece_off_ = 0;
  }

  void next_chunk() {
    piece_off_ = 0;
    if (body_pos_ == body_end_) {
      stage_ = Stage::LastChunk;
      return;
    }
    stage_ = Stage::ChunkHead;
    chunk_size_ = std::min<std::uint64_t>(plan_.chunk_bytes, body_end_ - body_pos_);
  }

  void do_write() {
    std::size_t limit = plan_.write_bytes ? plan_.write_bytes : kMaxWrite;
    std::size_t total = 0;
    bufs_.clear();
    while (stage_ != Stage::Done && total < limit && bufs_.size() < kMaxBuffers) {
      net::const_buffer piece = current_piece(bufs_.size());
      std::size_t n = std::min(piece.size(), limit - total);
      if (n > 0) bufs_.push_back(net::buffer(piece.data(), n));
      total += n;
      advance(n, piece.size());
    }
    if (bufs_.empty()) return on_response_written();
    net::async_write(socket_, bufs_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       if (self->stage_ == Stage::Done) return self->on_response_written();
                       self->do_write();
                     });
  }

  void on_response_written() {
    // close_mid: the peer sees EOF in the middle of a Content-Length body.
    if ((plan_.close_mid && !plan_.head_only) || plan_.last_on_connection) return close_now();
    if (!plan_.keep_alive) return linger_close();
    do_read_header();
  }

  // Closes without lingering: a FIN when nothing is unread, as a server that drops a connection
  // it considers done; pending operations end with operation_aborted.
  void close_now() {
    beast::error_code ignored;
    socket_.shutdown(net::socket_base::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // Half-close, then read and discard until the peer closes too (at most kLinger): closing at once
  // with unread request bytes would reset the connection and could destroy the response in flight.
  void linger_close() {
    beast::error_code ignored;
    socket_.shutdown(net::socket_base::shutdown_send, ignored);
    timer_.expires_after(kLinger);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      beast::error_code ignored;
      if (!ec) self->socket_.close(ignored);
    });
    do_drain();
  }

  void do_drain() {
    if (!body_buf_) body_buf_ = std::make_unique<char[]>(kBodyChunk);
    socket_.async_read_some(net::buffer(body_buf_.get(), kBodyChunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (!ec) return self->do_drain();
                              self->timer_.cancel();  // EOF: the last references go
                            });
  }

  Socket socket_;
  Shared& shared_;
  Timer timer_;                 // the response delay, or the idle close while reading a head
  std::uint64_t id_ = 0;
  std::uint64_t request_on_connection_ = 0;
  std::uint64_t idle_gen_ = 0;  // bumped on disarm, so a late idle expiry is ignored
  bool idle_armed_ = false;
  bool handed_off_ = false;

  beast::flat_buffer buffer_;   // persists across requests: may hold the next pipelined one
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::unique_ptr<char[]> body_buf_;  // allocated on the first request with a body
  Fnv1a64 hash_;
  std::uint64_t body_bytes_ = 0;

  Plan plan_;
  std::string head_;
  std::string body_;
  Stage stage_ = Stage::Done;
  std::size_t piece_off_ = 0;
  std::uint64_t body_pos_ = 0;
  std::uint64_t body_end_ = 0;
  std::uint64_t chunk_size_ = 0;
  std::uint64_t chunk_left_ = 0;
  std::array<std::array<char, 24>, kMaxBuffers> chunk_heads_{};
  std::vector<net::const_buffer> bufs_;
};

}  // namespace

void start_session(Socket socket, Shared& shared) {
  std::make_shared<HttpSession>(std::move(socket), shared)->start();
}

}  // namespace bgproxy::demo
