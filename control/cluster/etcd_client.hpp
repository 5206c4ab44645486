#pragma once
/// bgproxy::cluster — an etcd v3 client over the JSON gateway: the I/O shell around
/// etcd_codec.hpp, on an io_context the caller runs (the control thread's).
///
/// Requests are HTTP/1.1 POSTs on kept-alive connections (a few per client; more requests queue)
/// to the current endpoint. Every request carries `Grpc-Metadata-Hasleader: true`, so a member
/// without a leader refuses at once ("etcdserver: no leader") instead of hanging for 7 s; that
/// refusal and a failed connect move the request, and the client, to the next endpoint. A request
/// whose answer is lost after it was sent is repeated elsewhere only when repeating it is harmless
/// (range, lease keepalive, revoke, authenticate); a put, a txn or a grant then fails as
/// `unavailable` with "outcome unknown".
///
/// Authentication: with a user name, the first request authenticates (one at a time; the others
/// wait for its token), and a request refused for its token ("invalid auth token", "revision of
/// auth store is old") authenticates again and is repeated once.
///
/// Watch: over WebSocket (one JSON message per frame, pinged with progress requests) or over a
/// plain HTTP stream (POST /v3/watch, one JSON line per message; TCP keepalive, no pings). etcd
/// 3.4's websocket proxy forwards no request header: it cannot hand a token on (it turns
/// `Sec-WebSocket-Protocol: Bearer, T` into `Authorization: Bearer T`, which etcd refuses, "invalid
/// auth token"; etcd issue #19752), nor Hasleader, so a member that lost its leader (partitioned,
/// or without quorum) keeps a websocket watch open and silent while still answering its pings. The
/// HTTP stream carries both: that member ends it ("etcdserver: no leader") and the watch moves to
/// the next endpoint. So `automatic` takes the websocket only with one endpoint and no user name.
///
/// Lifetime: the owner keeps the Client (and each Watch) alive while it wants answers; `close()`
/// or the destructor cancels every request and stops every watch, and no handler runs after it.
/// Handlers run on the io_context's thread, never inside the call that started them.
/// Thread: control (everything here, handlers included, on the one thread running the io_context).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "control/cluster/etcd_codec.hpp"

namespace boost::asio {
class io_context;
}

namespace bgproxy::cluster {

struct ClientOptions {
  std::vector<config::EtcdEndpoint> endpoints;  ///< tried in order; the one that answers stays current
  std::string username;                         ///< empty: no authentication
  std::string password;
  std::string ca_file;           ///< https endpoints: CA bundle; empty: the system's CAs
  std::string certificate_file;  ///< client certificate and key for etcd's --client-cert-auth
  std::string private_key_file;
  /// One request, connect and failover included (`cluster.etcd.timeout`). A connect attempt gets
  /// an equal share of it per endpoint, so every endpoint can be tried within it.
  std::chrono::milliseconds timeout{2000};
  std::size_t max_connections = 4;  ///< requests in flight at once; more wait their turn
  /// A kept-alive connection idle longer than this is closed rather than reused.
  std::chrono::milliseconds idle_timeout{30000};
};

/// The options of `cluster:` (README "Running a fleet"); reads the password from password_file
/// (its first line). @return a config error naming the file when it cannot be read
EtcdResult<ClientOptions> client_options(const config::Cluster& c);

/// How a watch reaches etcd (see the file comment).
enum class WatchTransport { automatic, websocket, http_stream };

struct WatchOptions {
  std::string key;
  std::string range_end;            ///< empty: the key alone; prefix_end(p) for a prefix
  std::int64_t start_revision = 0;  ///< 0: changes from now on
  bool prev_kv = false;
  WatchTransport transport = WatchTransport::automatic;  ///< see the file comment
  /// WebSocket: a progress request when nothing arrived for this long; no message at all for this
  /// long plus the client's timeout is a dead connection. Also the TCP keepalive idle time.
  std::chrono::milliseconds ping_interval{1000};
  std::chrono::milliseconds min_backoff{100};  ///< reconnects wait this, doubling up to max_backoff
  std::chrono::milliseconds max_backoff{2000};
};

/// A watch that stays up: it reconnects (to the next endpoint after a failure) and re-creates
/// itself from the revision after the last event it delivered, so no event is lost or repeated,
/// until etcd has compacted that revision away: then it stops and says so, and the owner reads
/// the keys again and resumes after the read's revision.
class Watch {
 public:
  struct Handlers {
    /// One message's events (revision order); `r.header.revision` is the store's revision then.
    std::function<void(const WatchResponse& r)> on_events;
    /// Events from the start revision up to `compact_revision` are gone and the watch stopped:
    /// range-read what it covers, then resume(read's header.revision + 1).
    std::function<void(std::int64_t compact_revision)> on_compacted;
    /// The watch is (again) created on a member; or an attempt failed or the stream broke (`why`,
    /// once per attempt; it reconnects after a backoff).
    std::function<void(bool connected, const EtcdError* why)> on_connection;
  };

  class Impl;
  explicit Watch(std::shared_ptr<Impl> impl);
  ~Watch();  ///< stop()
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  /// Watches again from `start_revision` (0: from now on), on a fresh connection.
  void resume(std::int64_t start_revision);
  /// Where the next (re)connection starts: the last delivered event's revision + 1, or 0.
  std::int64_t next_revision() const;
  bool connected() const;
  /// No handler runs after it.
  void stop();

 private:
  std::shared_ptr<Impl> impl_;
};

class Client {
 public:
  template <class T>
  using Handler = std::function<void(EtcdResult<T>)>;

  /// @return the client, or why not (a config error when a TLS file cannot be loaded, naming it)
  static EtcdResult<std::unique_ptr<Client>> create(boost::asio::io_context& ioc, ClientOptions options);
  ~Client();  ///< close()
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void range(std::string_view key, const RangeOptions& o, Handler<RangeResult> h);
  /// @param lease 0: none
  void put(std::string_view key, std::string_view value, std::int64_t lease, Handler<PutResult> h);
  void delete_range(std::string_view key, std::string_view range_end, Handler<DeleteResult> h);
  /// Compare-and-swap: writes `value` if `key`'s mod_revision is `expected_mod_revision` (0: the
  /// key must not exist); otherwise answers succeeded == false with the key as it is now.
  void txn_cas(std::string_view key, std::int64_t expected_mod_revision, std::string_view value, std::int64_t lease,
               Handler<CasResult> h);
  void lease_grant(std::chrono::seconds ttl, Handler<LeaseGrantResult> h);
  /// One refresh; a result with ttl == 0 means the lease is gone (grant a new one).
  void lease_keepalive(std::int64_t id, Handler<LeaseKeepAliveResult> h);
  /// Repeated after a lost answer, a revoke may report not_found for a lease it did revoke.
  void lease_revoke(std::int64_t id, Handler<ResponseHeader> h);
  /// Authenticates now (requests do it by themselves when needed); the new token replaces the old.
  void authenticate(Handler<AuthResult> h);

  /// Starts a watch on this client's endpoints and credentials; close() stops it too.
  std::unique_ptr<Watch> watch(WatchOptions o, Watch::Handlers h);

  /// The endpoint requests go to now (as written in the options).
  const std::string& current_endpoint() const;
  /// Cancels every request and closes every connection; no handler runs after it.
  void close();

  class Impl;

 private:
  explicit Client(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace bgproxy::cluster
