#include "proxy/http/upstream_pool.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <openssl/ssl.h>

#include "proxy/h2/h2_backend_connection.hpp"
#include "proxy/h2/h2_upstream.hpp"

namespace bgproxy::proxy {
namespace {

using error_code = boost::system::error_code;

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

/// The idle age at which `c` is retired: the tightest of the configured, the backend's and the
/// learned limits.
Clock::duration retire_age(const UpstreamConnection& c, Clock::duration idle_limit, Clock::duration learned) {
  auto limit = idle_limit;
  if (learned > Clock::duration::zero()) limit = std::min(limit, learned);
  if (c.retire_idle > Clock::duration::zero()) limit = std::min(limit, c.retire_idle);
  return limit;
}

}  // namespace

UpstreamPool::UpstreamPool(const Executor& ex, std::size_t server_count, BlockPool& blocks)
    : executor_(ex),
      blocks_(blocks),
      idle_(server_count),
      shared_(server_count),
      server_streams_(server_count, 0),
      outstanding_(server_count, 0),
      generation_(server_count, 0),
      learned_(server_count, Clock::duration::zero()) {}

void UpstreamPool::grow(std::size_t server_count) {
  if (idle_.size() < server_count) idle_.resize(server_count);
  if (shared_.size() < server_count) shared_.resize(server_count);
  if (server_streams_.size() < server_count) server_streams_.resize(server_count, 0);
  if (outstanding_.size() < server_count) outstanding_.resize(server_count, 0);
  if (generation_.size() < server_count) generation_.resize(server_count, 0);
  if (learned_.size() < server_count) learned_.resize(server_count, Clock::duration::zero());
}

void UpstreamPool::renew(std::uint32_t server) {
  idle_[server].clear();
  for (auto& c : shared_[server]) c->retire();
  shared_[server].clear();
  ++generation_[server];
  learned_[server] = Clock::duration::zero();  // a new address may be another server altogether
}

UpstreamConnectionPtr UpstreamPool::take_idle(std::uint32_t server, Clock::time_point now, Clock::duration idle_limit) {
  if (auto& shared = shared_[server]; !shared.empty()) {
    prune_shared(server, now, idle_limit);
    // The newest connection with room: streams gather on few connections, and a surplus one
    // empties and retires.
    const auto assumed = server_streams_[server] != 0 ? server_streams_[server] : H2BackendConnection::max_streams;
    for (auto it = shared.rbegin(); it != shared.rend(); ++it) {
      if (!(*it)->takes_streams(assumed)) continue;
      auto handle = stream_handle(*it, server);
      if ((*it)->open_streams() == 0) handle->idle_age = now - (*it)->idle_since();
      return handle;
    }
  }
  auto& stack = idle_[server];
  while (!stack.empty()) {
    auto c = std::move(stack.back());
    stack.pop_back();
    const auto idle_for = now - c->idle_since;
    if (c->watched) {
      c->watched = false;
      error_code ignored;
      c->socket.cancel(ignored);  // the close watch; its handler sees operation_aborted
      // Idle past a sweep tick: one peek catches a close the watch has not reported yet.
      // HTTP/2 (like TLS) may have left frames of its own (PING, SETTINGS): not a close.
      if (!still_open(c->socket, c->tls.has_value())) {
        learn(server, idle_for);
        continue;
      }
    }
    if (idle_for >= retire_age(*c, idle_limit, learned_[server])) continue;
    c->idle_age = idle_for;
    return c;
  }
  return nullptr;
}

void UpstreamPool::put_idle(UpstreamConnectionPtr c, Clock::time_point now) {
  if (c->h2) return;  // a stream handle: the exchange is over, its connection stays shared
  auto& stack = idle_[c->server_id];
  if (stack.size() >= max_idle_per_server || c->generation != generation_[c->server_id]) return;
  if (c->max_requests != 0 && c->requests >= c->max_requests) return;
  c->idle_since = now;
  ++c->idle_epoch;
  c->buffer.shrink_to_fit();  // empty here: its block goes back to the worker until the next response
  stack.push_back(std::move(c));
}

UpstreamConnectionPtr UpstreamPool::share_h2(UpstreamConnectionPtr unconnected) {
  const auto server = unconnected->server_id;
  auto shared = std::make_shared<H2BackendConnection>(std::move(unconnected));
  shared_[server].push_back(shared);
  return stream_handle(shared, server);
}

UpstreamConnectionPtr UpstreamPool::stream_handle(const std::shared_ptr<H2BackendConnection>& connection,
                                                  std::uint32_t server) {
  auto handle = create(server);
  handle->h2 = std::make_shared<H2Upstream>(connection);
  return handle;
}

void UpstreamPool::prune_shared(std::uint32_t server, Clock::time_point now, Clock::duration idle_limit) {
  auto& shared = shared_[server];
  std::erase_if(shared, [&](const std::shared_ptr<H2BackendConnection>& c) {
    if (const auto said = c->server_max_streams(); said != 0) server_streams_[server] = said;
    if (!c->closed() && c->open_streams() == 0 && now - c->idle_since() >= idle_limit) c->retire();
    return c->closed();
  });
}

void UpstreamPool::watch_idle(Clock::time_point now, Clock::duration idle_limit) {
  for (std::uint32_t server = 0; server < shared_.size(); ++server) {
    if (!shared_[server].empty()) prune_shared(server, now, idle_limit);
  }
  for (std::uint32_t server = 0; server < idle_.size(); ++server) {
    for (auto& c : idle_[server]) {
      if (!c->watched) watch(server, *c);
    }
  }
}

void UpstreamPool::watch(std::uint32_t server, UpstreamConnection& c) {
  c.watched = true;
  c.socket.async_wait(Socket::wait_read, [this, server, conn = &c, epoch = c.idle_epoch](error_code ec) {
    if (ec) return;  // taken (cancelled) or closed with the pool
    on_watch(server, conn, epoch);
  });
}

void UpstreamPool::on_watch(std::uint32_t server, const UpstreamConnection* conn, std::uint64_t epoch) {
  // The connection may have been taken (and even handed back) after the wait completed: only
  // one still idle since this watch began is looked at.
  auto& stack = idle_[server];
  const auto it = std::find_if(stack.begin(), stack.end(), [conn](const UpstreamConnectionPtr& p) { return p.get() == conn; });
  if (it == stack.end() || (*it)->idle_epoch != epoch) return;
  auto& c = **it;
  if (still_open(c.socket, c.tls.has_value())) return;  // a TLS record: left to the peek at reuse
  learn(server, Clock::now() - c.idle_since);
  stack.erase(it);
}

void UpstreamPool::learn(std::uint32_t server, Clock::duration idle_age) {
  // Never zero (that means "nothing learned"): a backend that closes at once is never reused.
  const auto limit = std::max<Clock::duration>(idle_age * 4 / 5, std::chrono::microseconds(1));
  auto& learned = learned_[server];
  if (learned == Clock::duration::zero() || limit < learned) learned = limit;
}

UpstreamConnection::~UpstreamConnection() {
  if (h2) h2->detach();
}

void UpstreamConnection::use_h2() {
  speaks_h2 = true;
  if (tls) {
    static constexpr unsigned char alpn[] = {2, 'h', '2'};
    SSL_set_alpn_protos(tls->native_handle(), alpn, sizeof alpn);
  }
}

void UpstreamConnection::abort() {
  if (h2) return h2->abort(boost::asio::error::operation_aborted);
  error_code ignored;
  socket.close(ignored);
}

UpstreamConnection& UpstreamConnection::transport() noexcept { return h2 ? h2->transport() : *this; }

void UpstreamConnection::open_shared(const tcp::endpoint& to, std::function<void(error_code)> done) {
  h2->open(to, std::move(done));
}

bool UpstreamConnection::shared_connected() const noexcept { return h2 && h2->connected(); }

std::optional<std::string_view> UpstreamConnection::refused_request_body() const noexcept {
  if (!h2) return std::nullopt;
  return h2->refused_body();
}

void UpstreamConnection::h2_read(boost::asio::mutable_buffer into, IoHandler handler) {
  h2->read(into, std::move(handler));
}

bool UpstreamConnection::h2_write(boost::asio::const_buffer bytes) {
  return h2->write(std::string_view(static_cast<const char*>(bytes.data()), bytes.size()));
}

void UpstreamConnection::h2_finish_write(bool ok, std::size_t n, IoHandler handler) {
  h2->finish_write(ok, n, std::move(handler));
}

UpstreamConnectionPtr UpstreamPool::create(std::uint32_t server) const {
  return std::make_unique<UpstreamConnection>(executor_, blocks_, server, generation_[server]);
}

void UpstreamPool::close_idle() {
  for (auto& stack : idle_) stack.clear();
  for (auto& shared : shared_) {
    for (auto& c : shared) c->retire();
    shared.clear();
  }
}

}  // namespace bgproxy::proxy
