#pragma once
/// Per-worker keep-alive connections to backend servers (Envoy's per-thread
/// pools): a LIFO stack of idle connections per server, so the warmest socket is
/// reused first and surplus ones age out. Only the owning worker touches it.
/// Thread: worker.

#include <cstdint>
#include <memory>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>

#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

struct UpstreamConnection {
  UpstreamConnection(const Executor& ex, std::uint32_t server) : socket(ex), server_id(server) {}
  Socket socket;
  boost::beast::flat_buffer buffer;  ///< response bytes read but not yet relayed
  std::uint32_t server_id;
  Clock::time_point idle_since{};
  std::uint64_t requests = 0;  ///< exchanges completed on this connection
};
using UpstreamConnectionPtr = std::unique_ptr<UpstreamConnection>;

class UpstreamPool {
 public:
  /// @param server_count number of server ids (see routing::enumerate_servers)
  UpstreamPool(const Executor& ex, std::size_t server_count);

  /// @return the most recently idled live connection to `server`, or null.
  /// Connections idle longer than the pool's idle timeout are closed; ones idle
  /// since an earlier sweep tick (`now` is the coarse clock) are probed for a close
  /// by the peer first (one non-blocking peek).
  UpstreamConnectionPtr take_idle(std::uint32_t server, Clock::time_point now);

  /// Returns a connection whose last exchange completed cleanly.
  void put_idle(UpstreamConnectionPtr c, Clock::time_point now);

  UpstreamConnectionPtr create(std::uint32_t server) const;

  /// Requests in flight to `server` from this worker (least-outstanding balancing).
  unsigned& outstanding(std::uint32_t server) noexcept { return outstanding_[server]; }

  /// Closes every idle connection (drain, shutdown).
  void close_idle();

 private:
  static constexpr auto idle_timeout = std::chrono::seconds(30);
  static constexpr std::size_t max_idle_per_server = 512;

  Executor executor_;
  std::vector<std::vector<UpstreamConnectionPtr>> idle_;
  std::vector<unsigned> outstanding_;
};

}  // namespace bgproxy::proxy
