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
#include <memory>
#include <vector>

#include <optional>
#include <utility>

#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "proxy/h2/pending_io.hpp"
#include "proxy/net/block_pool.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

class H2Upstream;

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

  /// From now on requests go as HTTP/2 streams (a pool with `protocol: h2c` or `h2`), before
  /// the connection is opened: over TLS, ALPN offers h2.
  void use_h2(BlockPool& blocks);

  /// The session's reads and writes: HTTP/1.1 bytes, carried as they are or, with use_h2(),
  /// translated by the H2Upstream.
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

  /// The connection's own bytes (an H2Upstream's frames).
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
  /// Engaged by use_h2(): the HTTP/2 session on this connection.
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

  /// @return the most recently idled live connection to `server`, or null.
  /// Connections idle for `idle_limit` (timeouts.upstream_idle), for what their backend's
  /// Keep-Alive allows, or for the age learned for `server` are closed; ones watched since a
  /// sweep tick are probed for a close by the peer first (one non-blocking peek).
  /// @param now a precise time (the request's start), not the coarse clock: ages decide reuse
  UpstreamConnectionPtr take_idle(std::uint32_t server, Clock::time_point now, Clock::duration idle_limit);

  /// Returns a connection whose last exchange completed cleanly (or closes it: see renew(),
  /// and a backend's Keep-Alive max that this exchange used up).
  /// @param now a precise time (the exchange's end)
  void put_idle(UpstreamConnectionPtr c, Clock::time_point now);

  /// Sweep tick: connections idle since the last tick start waiting for their backend's close.
  /// The busy case (a connection handed back and taken again within a tick) costs nothing.
  void watch_idle();

  /// A pooled connection to `server` was found closed by its backend after `idle_age` of
  /// idleness: from now on its connections are retired at 80 % of the shortest such age.
  void learn(std::uint32_t server, Clock::duration idle_age);
  /// @return the learned idle limit of `server`, zero when nothing was learned
  Clock::duration learned_idle(std::uint32_t server) const noexcept { return learned_[server]; }

  UpstreamConnectionPtr create(std::uint32_t server) const;

  /// Requests in flight to `server` from this worker (least-outstanding balancing).
  unsigned& outstanding(std::uint32_t server) noexcept { return outstanding_[server]; }

  /// Closes every idle connection (drain, shutdown).
  void close_idle();

 private:
  static constexpr std::size_t max_idle_per_server = 512;

  Executor executor_;
  BlockPool& blocks_;
  std::vector<std::vector<UpstreamConnectionPtr>> idle_;
  std::vector<unsigned> outstanding_;
  std::vector<std::uint64_t> generation_;  ///< by server slot, bumped by renew()
  std::vector<Clock::duration> learned_;   ///< by server slot; zero = nothing learned

  void watch(std::uint32_t server, UpstreamConnection& c);
  void on_watch(std::uint32_t server, const UpstreamConnection* c, std::uint64_t epoch);
};

}  // namespace bgproxy::proxy
