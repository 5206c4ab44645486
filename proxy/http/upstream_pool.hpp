#pragma once
/// Per-worker keep-alive connections to backend servers (Envoy's per-thread
/// pools): a LIFO stack of idle connections per server, so the warmest socket is
/// reused first and surplus ones age out. Only the owning worker touches it.
///
/// A backend closes idle connections on its own schedule, and a request sent on one as it
/// closes is lost (a 502 that cannot be retried for a POST). So a pooled connection is
/// retired before the backend would close it: after `timeouts.upstream_idle`, after what
/// the backend's `Keep-Alive: timeout=N, max=M` says, and after 80 % of the shortest idle
/// age at which this server was seen closing one (learned per server, reset when the
/// server's address changes). Connections idle past a sweep tick are watched for the
/// backend's close, which removes them at once and teaches the exact age.
/// Thread: worker.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <optional>
#include <string_view>
#include <utility>

#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "proxy/h2/pending_io.hpp"
#include "proxy/net/block_pool.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

class H2Upstream;
class H2BackendConnection;

/// A plain or TLS connection to a backend. `socket` is always the TCP socket (close,
/// options, the pool's peek); reads and writes go through the connection itself,
/// which makes it an AsyncReadStream/AsyncWriteStream for the relay templates and
/// dispatches on one per-connection flag (no allocation, no virtual call).
struct UpstreamConnection {
  using executor_type = Executor;
  UpstreamConnection(const Executor& ex, BlockPool& blocks, std::uint32_t server, std::uint64_t pool_generation)
      : socket(ex), buffer(PooledAllocator<char>(blocks)), server_id(server), generation(pool_generation) {}
  ~UpstreamConnection();
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  Executor get_executor() noexcept { return socket.get_executor(); }

  /// This connection will carry HTTP/2 (a pool with `protocol: h2c` or `h2`): over TLS, ALPN
  /// offers h2. Called before it is opened; once connected, UpstreamPool::share_h2 makes it a
  /// shared HTTP/2 connection.
  void use_h2();

  /// Ends the exchange on it now (a deadline, `rollback --drain`): the socket closes, or on a
  /// shared HTTP/2 connection only the exchange's stream is reset. The pending operations fail.
  void abort();

  /// What carries the bytes: this connection, or for a stream handle its shared HTTP/2 connection.
  UpstreamConnection& transport() noexcept;
  /// On the stream handle UpstreamPool::share_h2 gave: connects (and handshakes) the new shared
  /// connection, which finishes that even if this handle is let go meanwhile, then calls `done`.
  void open_shared(const tcp::endpoint& to, std::function<void(boost::system::error_code)> done);
  /// On a stream handle: its shared connection is up.
  bool shared_connected() const noexcept;
  /// On a stream handle whose stream the server refused: the request body to send again (see
  /// H2Upstream::refused_body); nothing otherwise.
  std::optional<std::string_view> refused_request_body() const noexcept;

  /// The session's reads and writes: HTTP/1.1 bytes, carried as they are or, on a stream
  /// handle (`h2` engaged), translated by the H2Upstream.
  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (h2) return h2_read(boost::asio::mutable_buffer(*boost::asio::buffer_sequence_begin(buffers)),
                           IoHandler(std::forward<Handler>(handler)));
    raw_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (h2) {
      bool ok = true;
      std::size_t n = 0;
      for (auto it = boost::asio::buffer_sequence_begin(buffers); ok && it != boost::asio::buffer_sequence_end(buffers); ++it) {
        const boost::asio::const_buffer piece(*it);
        n += piece.size();
        ok = h2_write(piece);
      }
      return h2_finish_write(ok, n, IoHandler(std::forward<Handler>(handler)));
    }
    if (tls) tls->async_write_some(buffers, std::forward<Handler>(handler));
    else socket.async_write_some(buffers, std::forward<Handler>(handler));
  }

  /// Socket::send_now on a plain HTTP/1.1 connection; nothing (nullopt) over TLS or HTTP/2,
  /// whose bytes pass through a layer that has its own writes.
  template <class ConstBuffers>
  std::optional<std::size_t> send_now(const ConstBuffers& buffers, boost::system::error_code& ec) {
    if (tls || h2) return std::nullopt;
    return socket.send_now(buffers, ec);
  }

  /// The connection's own bytes (an H2BackendConnection's frames).
  template <class MutableBuffers, class Handler>
  void raw_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls) tls->async_read_some(buffers, std::forward<Handler>(handler));
    else socket.async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class ConstBuffers, class Handler>
  void raw_write(const ConstBuffers& buffers, Handler&& handler) {
    if (tls) boost::asio::async_write(*tls, buffers, std::forward<Handler>(handler));
    else boost::asio::async_write(socket, buffers, std::forward<Handler>(handler));
  }

  Socket socket;
  /// Engaged for a pool with `tls`: the TLS layer over `socket` (declared after it, destroyed first).
  std::optional<boost::asio::ssl::stream<Socket&>> tls;
  /// Set by use_h2(): the connection, once connected, becomes a shared HTTP/2 connection.
  bool speaks_h2 = false;
  /// Engaged on a stream handle (UpstreamPool::share_h2, take_idle): the exchange's stream on a
  /// shared HTTP/2 connection. The handle's own socket is never opened.
  std::shared_ptr<H2Upstream> h2;
  ReadBuffer buffer;  ///< response bytes read but not yet relayed
  std::uint32_t server_id;  ///< server slot (see Runtime)
  std::uint64_t generation;  ///< its server's pool generation when it was opened
  Clock::time_point idle_since{};
  std::uint64_t requests = 0;  ///< exchanges completed on this connection
  /// From the backend's last Keep-Alive: the idle age to retire at (zero: not said) and the
  /// requests it takes on this connection (0: not said).
  Clock::duration retire_idle{};
  std::uint32_t max_requests = 0;
  Clock::duration idle_age{};  ///< how long it had been idle when last taken from the pool
  std::uint64_t idle_epoch = 0;  ///< bumped by each put_idle: tells a stale watch from a live one
  bool watched = false;  ///< a readiness wait for the backend's close runs while it is idle

 private:
  void h2_read(boost::asio::mutable_buffer into, IoHandler handler);
  bool h2_write(boost::asio::const_buffer bytes);
  void h2_finish_write(bool ok, std::size_t n, IoHandler handler);
};
using UpstreamConnectionPtr = std::unique_ptr<UpstreamConnection>;

class UpstreamPool {
 public:
  /// @param server_count number of server slots (see Runtime)
  /// @param blocks the worker's read buffers (outlives the pool)
  UpstreamPool(const Executor& ex, std::size_t server_count, BlockPool& blocks);

  /// Makes room for `server_count` slots (never shrinks: older requests still use theirs).
  void grow(std::size_t server_count);
  /// A reload changed how `server` is reached (address, TLS): closes its idle connections, and
  /// ones still in use are closed when handed back, so no request travels on a connection
  /// opened under the previous settings.
  void renew(std::uint32_t server);

  /// @return for a server spoken to in HTTP/2, a stream handle on a shared connection with room
  /// (retiring those idle for `idle_limit`); else the most recently idled live connection to
  /// `server`, or null.
  /// Connections idle for `idle_limit` (timeouts.upstream_idle), for what their backend's
  /// Keep-Alive allows, or for the age learned for `server` are closed; ones watched since a
  /// sweep tick are probed for a close by the peer first (one non-blocking peek).
  /// @param now a precise time (the request's start), not the coarse clock: ages decide reuse
  UpstreamConnectionPtr take_idle(std::uint32_t server, Clock::time_point now, Clock::duration idle_limit);

  /// Returns a connection whose last exchange completed cleanly (or closes it: see renew(),
  /// and a backend's Keep-Alive max that this exchange used up). A stream handle is let go (its
  /// shared connection stays with the pool).
  /// @param now a precise time (the exchange's end)
  void put_idle(UpstreamConnectionPtr c, Clock::time_point now);

  /// A new HTTP/2 connection (use_h2(), not yet connected) becomes one the worker's exchanges
  /// share; they may queue streams on it while it connects.
  /// @return a stream handle on it for the exchange that opened it, which calls `h2->open()`
  UpstreamConnectionPtr share_h2(UpstreamConnectionPtr unconnected);

  /// Sweep tick: connections idle since the last tick start waiting for their backend's close;
  /// shared HTTP/2 connections without streams for `idle_limit` close.
  /// The busy case (a connection handed back and taken again within a tick) costs nothing.
  void watch_idle(Clock::time_point now, Clock::duration idle_limit);

  /// A pooled connection to `server` was found closed by its backend after `idle_age` of
  /// idleness: from now on its connections are retired at 80 % of the shortest such age.
  void learn(std::uint32_t server, Clock::duration idle_age);
  /// @return the learned idle limit of `server`, zero when nothing was learned
  Clock::duration learned_idle(std::uint32_t server) const noexcept { return learned_[server]; }

  UpstreamConnectionPtr create(std::uint32_t server) const;

  /// Requests in flight to `server` from this worker (least-outstanding balancing).
  unsigned& outstanding(std::uint32_t server) noexcept { return outstanding_[server]; }

  /// Closes every idle connection (drain, shutdown); shared HTTP/2 connections take no new
  /// streams and close after their last one.
  void close_idle();

 private:
  static constexpr std::size_t max_idle_per_server = 512;

  Executor executor_;
  BlockPool& blocks_;
  std::vector<std::vector<UpstreamConnectionPtr>> idle_;
  std::vector<std::vector<std::shared_ptr<H2BackendConnection>>> shared_;  ///< by server slot
  /// By server slot: its last SETTINGS_MAX_CONCURRENT_STREAMS, assumed for a connection until
  /// its own SETTINGS arrive (zero: not seen yet).
  std::vector<std::uint32_t> server_streams_;
  std::vector<unsigned> outstanding_;
  std::vector<std::uint64_t> generation_;  ///< by server slot, bumped by renew()
  std::vector<Clock::duration> learned_;   ///< by server slot; zero = nothing learned

  void watch(std::uint32_t server, UpstreamConnection& c);
  UpstreamConnectionPtr stream_handle(const std::shared_ptr<H2BackendConnection>& connection, std::uint32_t server);
  /// Drops closed shared connections of `server` and retires those idle for `idle_limit`.
  void prune_shared(std::uint32_t server, Clock::time_point now, Clock::duration idle_limit);
  void on_watch(std::uint32_t server, const UpstreamConnection* c, std::uint64_t epoch);
};

}  // namespace bgproxy::proxy
