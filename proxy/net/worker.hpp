#pragma once
/// One event loop on one thread (Asio's io_context-per-core model): its own
/// acceptors (SO_REUSEPORT), upstream pool, stats shard and routing snapshot.
/// Only this worker's thread touches them; the control thread talks to it by
/// posting (publish, collect, drain).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "proxy/http/upstream_pool.hpp"
#include "proxy/net/block_pool.hpp"
#include "proxy/net/free_list.hpp"
#include "proxy/net/runtime.hpp"
#include "proxy/net/slab_pool.hpp"
#include "proxy/net/timed.hpp"
#include "proxy/net/tls_context.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

struct Exchange;

/// Which listener a connection came in on.
struct ListenerInfo {
  /// Null on a plain listener; else the listener's current certificates, read once per
  /// accepted connection (a reload replaces them for new handshakes only).
  std::shared_ptr<TlsListener> tls;
  /// A plain listener that speaks HTTP/2 to clients that open with its preface (`h2c`), and
  /// whether it speaks HTTP/1.1 at all (SPEC §13).
  bool h2c = false;
  bool http1 = true;
};

/// A listening socket handed to a worker: already bound and listening; the worker owns `fd`.
struct ListeningSocket {
  std::string key;  ///< the listener's address as the config writes it
  int fd = -1;
  bool v6 = false;
  ListenerInfo info;
};

/// What a reload changes on one worker, applied in one step on its thread.
struct WorkerUpdate {
  RuntimeConstSharedPtr runtime;
  routing::RoutingTableConstSharedPtr table;
  std::vector<ListeningSocket> added;
  std::vector<std::string> removed;  ///< listener keys that stop accepting (their sockets close)
  std::vector<std::pair<std::string, ListenerInfo>> changed;  ///< a listener that turned TLS on or off
};

class Worker {
 public:
  /// Called on a worker thread when a server slot reached its passive threshold there; must only post.
  using EjectionReport = std::function<void(std::uint32_t server_slot)>;

  /// Thread: control. The worker does nothing until start().
  Worker(unsigned index, RuntimeConstSharedPtr runtime, routing::RoutingTableConstSharedPtr table,
         ConnectionLimit& connections, EjectionReport report_ejection);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // --- control thread ---
  /// Takes a socket that is already bound and listening. Before start() only.
  void add_listener(ListeningSocket socket);
  void start();
  void join();
  /// Hands `t` to the worker; `done` runs on the worker thread once it routes by it.
  void publish(routing::RoutingTableConstSharedPtr t, std::function<void()> done);
  /// A reload: the new generation, its first table and listener changes, taken in one step;
  /// `done` runs on the worker thread once new requests use them.
  void update(WorkerUpdate u, std::function<void()> done);
  /// Runs `reply` on the worker thread: proof that its loop is turning.
  void ping(std::function<void()> reply);
  /// Runs `reply` on the worker thread with a copy of its stats shard.
  void collect(std::function<void(stats::RequestStats)> reply);
  /// Runs `reply` on the worker thread with how many exchanges in flight to `color` of `service`
  /// it cut (Timed::on_cut).
  void cut(int service, routing::Color color, std::function<void(std::uint64_t)> reply);
  /// Stops accepting, closes idle connections, lets in-flight exchanges finish;
  /// the thread exits when the last connection has closed.
  void drain();
  /// Ends the loop now, whatever is in flight (shutdown grace expired).
  void stop();

  // --- worker thread ---
  unsigned index() const noexcept { return index_; }
  /// The current generation; a request pins it (with the table) when its head is read.
  const RuntimeConstSharedPtr& runtime() const noexcept { return runtime_; }
  const routing::RoutingTableConstSharedPtr& table() const noexcept { return table_; }
  UpstreamPool& pool() noexcept { return pool_; }
  /// Read buffers and exchanges, held by connections only while they read or run an exchange.
  BlockPool& blocks() noexcept { return blocks_; }
  FreeList<Exchange>& exchanges() noexcept { return exchanges_; }
  /// Plain HTTP client sessions (with their shared_ptr control blocks), and the waits of those
  /// idle long enough to have shed their buffers.
  SlabPool& sessions() noexcept { return sessions_; }
  SlabPool& idle_waits() noexcept { return idle_waits_; }
  /// HTTP/2 streams and their sessions: a hundred of them start and end per connection and
  /// second, reusing slots still warm in the cache rather than going through malloc.
  SlabPool& h2_streams() noexcept { return h2_streams_; }
  SlabPool& h2_sessions() noexcept { return h2_sessions_; }
  stats::RequestStats& stats() noexcept { return stats_; }
  /// Mirrored requests of this worker (SPEC §14): how many are out (max_in_flight), and how
  /// many were planned (every shadow_noise_every-th is sent to the client's own color).
  struct ShadowCounters {
    std::uint32_t in_flight = 0;
    std::uint64_t planned = 0;
  };
  ShadowCounters& shadows() noexcept { return shadows_; }
  const Executor& executor() const noexcept { return executor_; }
  /// Coarse time, refreshed by every sweep (100 ms): good for deadlines, not for latency.
  Clock::time_point coarse_now() const noexcept { return now_; }
  bool draining() const noexcept { return draining_; }
  std::uint64_t random() noexcept;

  void track(Timed& t) noexcept { timed_.push_back(t); }
  /// Passive health (README "Health checks"): a failed or 5xx exchange with a server (by slot), or a good one.
  void server_failed(std::uint32_t server_slot);
  void server_succeeded(std::uint32_t server_slot) noexcept { consecutive_failures_[server_slot] = 0; }
  void connection_closed() noexcept;

 private:
  struct Listener {
    std::string key;
    Acceptor acceptor;
    ListenerInfo info;
  };
  using ListenerPtr = std::shared_ptr<Listener>;

  ListenerPtr make_listener(ListeningSocket s);
  /// Grows the slot-indexed shards to the generation's slot counts.
  void fit_to(const Runtime& rt);
  void do_accept(const ListenerPtr& l);
  void on_accept(const ListenerPtr& l, boost::system::error_code ec, Socket socket);
  void do_sweep();
  /// After many connections closed or went idle (their buffers shed), hands the spare buffers and
  /// exchanges and the heap's free pages back to the system: glibc keeps them otherwise, and a
  /// burst of clients would leave its RSS behind for good.
  void give_back_memory();
  void maybe_finish_drain();

  unsigned index_;
  RuntimeConstSharedPtr runtime_;
  ConnectionLimit& connection_limit_;
  EjectionReport report_ejection_;
  using Timer = net::basic_waitable_timer<Clock, net::wait_traits<Clock>, Executor>;

  // Kept for the connections: they give theirs back as they die with the loop below.
  BlockPool blocks_;
  FreeList<Exchange> exchanges_;
  SlabPool sessions_;
  SlabPool idle_waits_;
  SlabPool h2_streams_;
  SlabPool h2_sessions_;
  // The loop dies first in ~Worker(): handlers it still holds own sessions,
  // whose destructors report back to the members below.
  // UNSAFE_IO: only this thread touches its sockets, so the reactor needs no
  // per-descriptor locking; the scheduler stays thread-safe for posts from control.
  std::unique_ptr<net::io_context> ioc_ = std::make_unique<net::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  Executor executor_;
  std::optional<net::executor_work_guard<Executor>> work_;
  std::vector<ListenerPtr> listeners_;
  std::optional<Timer> sweep_timer_;
  boost::intrusive::list<Timed, boost::intrusive::constant_time_size<false>> timed_;
  std::vector<Timed*> expired_;
  std::vector<Timed*> shed_;
  std::uint64_t peak_connections_ = 0;  ///< the most open at once since memory was last given back
  std::uint64_t shed_since_trim_ = 0;   ///< connections that shed their buffers since then
  Clock::time_point last_trim_{};
  routing::RoutingTableConstSharedPtr table_;
  UpstreamPool pool_;
  stats::RequestStats stats_;
  ShadowCounters shadows_;
  std::vector<std::uint32_t> consecutive_failures_;  ///< by server slot
  Clock::time_point now_;
  std::uint64_t rng_state_;
  std::uint64_t connections_ = 0;
  bool draining_ = false;
  bool sweeping_ = false;  ///< the sweep timer is armed (it stops once a drain has finished)
  std::thread thread_;
};

}  // namespace bgproxy::proxy
