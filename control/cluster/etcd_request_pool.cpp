// Client::Impl's requests: the connection pool and queue, endpoint failover, retries, answers.
#include <poll.h>

#include <algorithm>

#include <boost/asio/post.hpp>

#include "control/cluster/etcd_client_impl.hpp"

namespace bgproxy::cluster {

using detail::excerpt;
using detail::host_header;
using detail::HttpConn;
using detail::make_error;
using detail::millis;

namespace {

/// An idle kept-alive connection that has become readable was closed by the server (or holds
/// bytes nobody asked for): it must not carry a request whose outcome we could then not know.
bool unusable_when_idle(tcp::socket& s) {
  pollfd p{s.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

}  // namespace

void Client::Impl::submit(std::string_view target, std::string body, bool idempotent,
                          std::function<void(EtcdResult<std::string>)> done, bool with_token) {
  auto c = std::make_shared<Call>();
  c->target = target;
  c->body = std::move(body);
  c->idempotent = idempotent;
  c->with_token = with_token;
  c->done = std::move(done);
  c->deadline = Clock::now() + options_.timeout;
  // Never inside the caller's call: its handler may touch what the caller is still building.
  net::post(ioc_, [self = shared_from_this(), c] { self->execute(c); });
}

void Client::Impl::endpoint_failed(std::size_t ep) {
  if (ep != current_ || options_.endpoints.size() < 2) return;
  current_ = (current_ + 1) % options_.endpoints.size();
  for (auto& c : idle_) c->close();
  idle_.clear();
}

void Client::Impl::add_watch(const std::shared_ptr<Watch::Impl>& w) {
  std::erase_if(watches_, [](const auto& weak) { return weak.expired(); });
  watches_.push_back(w);
}

void Client::Impl::close() {
  if (closed_) return;
  closed_ = true;
  for (const auto& weak : std::exchange(watches_, {})) {
    if (auto w = weak.lock()) w->stop();
  }
  for (auto& c : idle_) c->close();
  for (auto& c : busy_) c->close();
  idle_.clear();
  busy_.clear();
  queue_.clear();
  token_waiters_.clear();
}

void Client::Impl::execute(const CallPtr& c) {
  if (closed_) return;
  if (Clock::now() >= c->deadline) {
    return finish(c, make_error(EtcdError::Kind::timeout, "no answer from etcd within " + millis(options_.timeout)));
  }
  if (c->with_token && needs_token() && token_.empty()) {
    return with_token([self = shared_from_this(), c](std::optional<EtcdError> e) {
      if (e) return self->finish(c, std::move(*e));
      self->execute(c);
    });
  }
  if (busy_.size() >= options_.max_connections) {
    queue_.push_back(c);
    return;
  }
  if (auto conn = idle_connection()) return send(c, conn, true);
  const std::size_t ep = current_;
  auto conn = std::make_shared<HttpConn>(ioc_, ep, tls_.get());
  busy_.push_back(conn);
  // A share of the time per endpoint, so that a silent one leaves time to try the others.
  const Ms share = options_.timeout / static_cast<Ms::rep>(std::max<std::size_t>(1, options_.endpoints.size()));
  conn->connect(options_.endpoints[ep], std::min(c->deadline, Clock::now() + share),
                [self = shared_from_this(), c, conn, ep](std::optional<EtcdError> e) {
                  if (self->closed_) return;
                  if (!e) return self->send(c, conn, false);
                  self->release(conn, false);
                  self->endpoint_failed(ep);
                  if (++c->endpoints_tried < self->options_.endpoints.size()) return self->execute(c);
                  self->finish(c, std::move(*e));
                });
}

void Client::Impl::send(const CallPtr& c, const std::shared_ptr<HttpConn>& conn, bool reused) {
  const config::EtcdEndpoint& ep = options_.endpoints[conn->endpoint()];
  auto& req = conn->request();
  req = {};
  req.method(http::verb::post);
  req.target(std::string(c->target));
  req.version(11);
  req.set(http::field::host, host_header(ep));
  req.set(http::field::content_type, "application/json");
  // A member without a leader refuses at once instead of hanging until its own timeout.
  req.set("Grpc-Metadata-Hasleader", "true");
  c->token = c->with_token ? token_ : std::string();
  if (!c->token.empty()) req.set(http::field::authorization, c->token);
  req.body() = c->body;
  req.prepare_payload();
  conn->exchange(c->deadline, [self = shared_from_this(), c, conn, reused](error_code ec, bool answered) {
    if (self->closed_) return;
    if (ec) return self->exchange_failed(c, conn, reused, ec, answered);
    self->answered(c, conn);
  });
}

void Client::Impl::exchange_failed(const CallPtr& c, const std::shared_ptr<HttpConn>& conn, bool reused, error_code ec,
                                   bool answered) {
  const std::size_t ep = conn->endpoint();
  release(conn, false);
  const std::string& name = options_.endpoints[ep].text;
  if (ec == beast::error::timeout) {
    endpoint_failed(ep);
    return finish(c, make_error(EtcdError::Kind::timeout, "no answer from " + name + " within " + millis(options_.timeout)));
  }
  // A kept-alive connection closed under us before any answer: once more on a fresh one.
  if (reused && !answered && c->idempotent && !c->fresh_retried) {
    c->fresh_retried = true;
    return execute(c);
  }
  endpoint_failed(ep);
  if (c->idempotent && ++c->endpoints_tried < options_.endpoints.size()) return execute(c);
  finish(c, make_error(EtcdError::Kind::unavailable, "connection to " + name + " lost: " + ec.message() +
                                                         (c->idempotent ? "" : " (outcome unknown)")));
}

void Client::Impl::answered(const CallPtr& c, const std::shared_ptr<HttpConn>& conn) {
  const std::size_t ep = conn->endpoint();
  auto& res = conn->response();
  const unsigned status = res.result_int();
  std::string body = std::move(res.body());
  release(conn, res.keep_alive());
  if (std::optional<EtcdError> e = parse_error(body)) {
    if (is_member_unavailable(*e) && ++c->endpoints_tried < options_.endpoints.size()) {
      endpoint_failed(ep);
      return execute(c);
    }
    if (c->with_token && !options_.username.empty() && !c->token_retried) {
      if (is_token_expired(*e)) {
        c->token_retried = true;
        token_rejected(c->token);
        return execute(c);
      }
      if (e->message == "etcdserver: user name is empty" && auth_disabled_) {
        // Auth was enabled since we were told it is not: authenticate now.
        c->token_retried = true;
        auth_disabled_ = false;
        return execute(c);
      }
    }
    if (e->message == "etcdserver: user name is empty") {
      e->kind = EtcdError::Kind::auth;
      e->message = "etcd requires authentication (cluster.etcd.username): " + e->message;
    }
    return finish(c, std::move(*e));
  }
  if (status != 200) {
    return finish(c, make_error(EtcdError::Kind::protocol, "HTTP " + std::to_string(status) + " from " +
                                                               options_.endpoints[ep].text + ": " + excerpt(body)));
  }
  finish(c, std::move(body));
}

std::shared_ptr<HttpConn> Client::Impl::idle_connection() {
  const auto now = Clock::now();
  while (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    if (conn->endpoint() != current_ || now - conn->idle_since > options_.idle_timeout ||
        unusable_when_idle(conn->socket())) {
      conn->close();
      continue;
    }
    busy_.push_back(conn);
    return conn;
  }
  return nullptr;
}

void Client::Impl::release(const std::shared_ptr<HttpConn>& conn, bool keep) {
  busy_.erase(std::remove(busy_.begin(), busy_.end(), conn), busy_.end());
  if (keep && conn->endpoint() == current_) {
    conn->idle_since = Clock::now();
    idle_.push_back(conn);
  } else {
    conn->close();
  }
  if (!queue_.empty()) {
    CallPtr next = std::move(queue_.front());
    queue_.pop_front();
    net::post(ioc_, [self = shared_from_this(), next] { self->execute(next); });
  }
}

void Client::Impl::finish(const CallPtr& c, EtcdResult<std::string> r) {
  if (closed_ || !c->done) return;
  auto done = std::move(c->done);
  done(std::move(r));
}

}  // namespace bgproxy::cluster
