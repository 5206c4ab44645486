#include "control/server/control_socket.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "control/core/command.hpp"
#include "control/core/replies.hpp"

namespace bgproxy::control {

namespace net = boost::asio;
using local = net::local::stream_protocol;
using error_code = boost::system::error_code;

namespace {

constexpr auto idle_timeout = std::chrono::seconds(60);
constexpr auto linger_time = std::chrono::seconds(1);
/// How long a dropped change-feed subscriber gets to take its final error line.
constexpr auto drop_grace = std::chrono::seconds(1);

Peer peer_of(local::socket& s) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return {};
  return Peer{cred.uid, cred.pid};
}

}  // namespace

Connection::Connection(Socket socket, Handler& handler)
    : socket_(std::move(socket)), timer_(socket_.get_executor()), handler_(handler), peer_(peer_of(socket_)) {}

void Connection::close() {
  error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
  if (auto closed = std::exchange(closed_, nullptr)) closed();
}

void Connection::stream(std::string first, std::function<Chunk()> pull, std::function<void()> closed) {
  pull_ = std::move(pull);
  closed_ = std::move(closed);
  streaming_ = true;
  timer_.cancel();  // a subscriber may stay quiet for hours
  watch_for_eof();
  write_chunk(std::move(first) + '\n', false);
}

void Connection::wake() {
  if (!streaming_ || writing_ || !socket_.is_open()) return;
  Chunk c = pull_();
  if (!c.lines.empty()) write_chunk(std::move(c.lines), c.last);
}

void Connection::finish_soon() {
  if (!streaming_) return;
  arm(drop_grace);
  wake();
}

void Connection::write_chunk(std::string lines, bool last) {
  out_ = std::move(lines);
  writing_ = true;
  // Asio writes what the socket takes now and waits for the rest in epoll: the control thread
  // never blocks on a client, however slowly it reads.
  net::async_write(socket_, net::buffer(out_), [self = shared_from_this(), last](error_code ec, std::size_t) {
    self->writing_ = false;
    if (ec || last) return self->close();
    self->wake();
  });
}

void Connection::watch_for_eof() {
  socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](error_code ec, std::size_t) {
    if (ec) return self->close();
    self->watch_for_eof();  // a subscriber has nothing to say; what it sends is ignored
  });
}

void Connection::write(std::string reply, bool then_close) {
  out_ = std::move(reply);
  out_.push_back('\n');
  arm(idle_timeout);
  net::async_write(socket_, net::buffer(out_), [self = shared_from_this(), then_close](error_code ec, std::size_t) {
    if (ec) return self->close();
    if (then_close) return self->linger();
    self->do_read();
  });
}

void Connection::await_line(std::chrono::steady_clock::duration limit, std::function<void(bool, std::string)> done) {
  arm(limit);
  net::async_read_until(socket_, net::dynamic_buffer(buffer_, max_line_bytes + 1), '\n',
                        [self = shared_from_this(), done = std::move(done)](error_code ec, std::size_t n) {
                          self->timer_.cancel();
                          std::string line = ec ? std::string() : self->buffer_.substr(0, n - 1);
                          done(!ec, std::move(line));  // may still write on the socket
                          self->close();
                        });
}

void Connection::arm(std::chrono::steady_clock::duration d) {
  timer_.expires_after(d);
  timer_.async_wait([weak = weak_from_this()](error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->close();
  });
}

void Connection::do_read() {
  arm(idle_timeout);
  net::async_read_until(socket_, net::dynamic_buffer(buffer_, max_line_bytes + 1), '\n',
                        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void Connection::on_read(error_code ec, std::size_t n) {
  if (ec == net::error::not_found) {
    // Over 64 KiB without a newline: answer, then close (README "bgctl walkthrough").
    buffer_.clear();
    return write(error_reply("line too long"), true);
  }
  if (ec) return close();
  std::string line = buffer_.substr(0, n - 1);
  buffer_.erase(0, n);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  timer_.cancel();
  if (const auto pid = parse_takeover(line)) return handler_.on_takeover(shared_from_this(), *pid);
  if (line.find("\"events\"") != std::string::npos) {
    if (auto c = parse_command(line); c && c->kind == CommandKind::events) return handler_.on_events(shared_from_this(), *c);
  }
  handler_.on_line(std::move(line), peer_, [self = shared_from_this()](std::string reply) {
    self->write(std::move(reply), false);
  });
}

/// Half-close and drain what the client still sends, so our answer is not
/// destroyed by a reset when we close with unread input.
void Connection::linger() {
  error_code ignored;
  socket_.shutdown(local::socket::shutdown_send, ignored);
  arm(linger_time);
  linger_more();
}

void Connection::linger_more() {
  socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](error_code ec, std::size_t) {
    if (ec) return self->close();
    self->linger_more();
  });
}

ControlSocket::ControlSocket(net::io_context& ioc, Connection::Handler& handler)
    : ioc_(ioc), handler_(handler), acceptor_(ioc) {}

ControlSocket::~ControlSocket() { *alive_ = false; }

std::string ControlSocket::listen(const std::string& path_text, unsigned mode) {
  path_ = path_text;
  const std::filesystem::path path(path_);
  error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (std::filesystem::is_socket(path, ec)) {
    // A socket file left by a previous run is stale unless something answers on it.
    local::socket probe(ioc_);
    probe.connect(local::endpoint(path.string()), ec);
    if (!ec) return "control socket " + path.string() + " is in use by another process";
    std::filesystem::remove(path, ec);
  }
  acceptor_.open(local(), ec);
  if (!ec) acceptor_.bind(local::endpoint(path.string()), ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on control socket " + path.string() + ": " + ec.message();
  if (::chmod(path.c_str(), mode) != 0) {
    return "cannot chmod control socket " + path.string() + ": " + std::strerror(errno);
  }
  return {};
}

std::string ControlSocket::adopt(int fd, const std::string& path) {
  path_ = path;
  error_code ec;
  acceptor_.assign(local(), fd, ec);
  if (ec) return "cannot serve on the inherited control socket: " + ec.message();
  return {};
}

void ControlSocket::start_accepting() { do_accept(); }

void ControlSocket::stop_accepting() {
  error_code ignored;
  acceptor_.close(ignored);
}

void ControlSocket::close() {
  stop_accepting();
  for (auto& weak : connections_) {
    if (auto c = weak.lock()) c->close();
  }
  connections_.clear();
  error_code ignored;
  std::filesystem::remove(path_, ignored);
}

void ControlSocket::do_accept() {
  acceptor_.async_accept([this, alive = alive_](error_code ec, local::socket socket) {
    if (!*alive || ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      auto c = std::make_shared<Connection>(std::move(socket), handler_);
      std::erase_if(connections_, [](const auto& w) { return w.expired(); });
      connections_.push_back(c);
      c->start();
    }
    do_accept();
  });
}

}  // namespace bgproxy::control
