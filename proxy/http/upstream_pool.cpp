#include "proxy/http/upstream_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace bgproxy::proxy {
namespace {

/// A kept-alive socket the backend has closed reads as EOF (or an error); a plain
/// one that still has bytes pending is out of sync. Either way it must not be reused.
/// An idle TLS connection may hold a record that is no response (a session ticket,
/// a close_notify the next read will report): only EOF or an error close it here.
bool still_open(Socket& s, bool tls) {
  char byte;
  const auto n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return tls;
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

UpstreamPool::UpstreamPool(const Executor& ex, std::size_t server_count)
    : executor_(ex), idle_(server_count), outstanding_(server_count, 0), generation_(server_count, 0) {}

void UpstreamPool::grow(std::size_t server_count) {
  if (idle_.size() < server_count) idle_.resize(server_count);
  if (outstanding_.size() < server_count) outstanding_.resize(server_count, 0);
  if (generation_.size() < server_count) generation_.resize(server_count, 0);
}

void UpstreamPool::renew(std::uint32_t server) {
  idle_[server].clear();
  ++generation_[server];
}

UpstreamConnectionPtr UpstreamPool::take_idle(std::uint32_t server, Clock::time_point now) {
  auto& stack = idle_[server];
  while (!stack.empty()) {
    auto c = std::move(stack.back());
    stack.pop_back();
    const auto idle_for = now - c->idle_since;
    if (idle_for > idle_timeout) continue;
    // A connection handed back within the same sweep tick (the busy case) is
    // reused blind; any older one costs one peek, which catches most backends'
    // keep-alive closes before a request is lost on them.
    if (idle_for > Clock::duration::zero() && !still_open(c->socket, c->tls.has_value())) continue;
    return c;
  }
  return nullptr;
}

void UpstreamPool::put_idle(UpstreamConnectionPtr c, Clock::time_point now) {
  auto& stack = idle_[c->server_id];
  if (stack.size() >= max_idle_per_server || c->generation != generation_[c->server_id]) return;
  c->idle_since = now;
  stack.push_back(std::move(c));
}

UpstreamConnectionPtr UpstreamPool::create(std::uint32_t server) const {
  return std::make_unique<UpstreamConnection>(executor_, server, generation_[server]);
}

void UpstreamPool::close_idle() {
  for (auto& stack : idle_) stack.clear();
}

}  // namespace bgproxy::proxy
