#pragma once
/// The HTTP/1.1 proxy session, one per client connection (Beast-example shape:
/// self-owning, do_x/on_x steps). Heads are parsed with Beast's parsers; bodies
/// are relayed as raw bytes, framed by BodyFraming; outgoing heads are written by
/// hand. Deadlines are enforced by the worker's sweep (Timed).
/// Included only by the .cpp files that instantiate it for a stream type:
/// client_session.cpp (Socket) and client_session_tls.cpp (TlsStream).
/// TLS differs only in `if constexpr (tls_stream)` branches: the handshake first,
/// close_notify instead of a TCP half-close, and stream_truncated read as an end.
///
/// Its state is grouped by lifetime: the connection's (members below), one exchange's
/// (`Request`, reset by assignment when a request's first byte arrives) and one upstream
/// attempt's (`Attempt`, reset when a server is chosen). The decisions in between are the pure
/// functions of exchange_policy.hpp. The member functions live by phase in
/// client_session_{request,upstream,relay,close}.hpp, included at the end of this file.

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <spdlog/logger.h>

#include "bgproxy/routing/decide.hpp"
#include "proxy/h2/h2_connection.hpp"
#include "proxy/http/body_framing.hpp"
#include "proxy/http/exchange.hpp"
#include "proxy/http/exchange_policy.hpp"
#include "proxy/http/grpc_status.hpp"
#include "proxy/http/head_writer.hpp"
#include "proxy/http/keep_alive.hpp"
#include "proxy/http/request_target.hpp"
#include "proxy/http/shadow_exchange.hpp"
#include "proxy/http/shadow_policy.hpp"
#include "proxy/net/tls_context.hpp"
#include "proxy/net/worker.hpp"

namespace bgproxy::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

class H2StreamIo;

template <class Stream>
class ClientSession final : public Timed, public std::enable_shared_from_this<ClientSession<Stream>> {
  static constexpr bool plain_stream = std::is_same_v<Stream, Socket>;
  /// One HTTP/2 stream (proxy/h2): its request and answer cross as HTTP/1.1 bytes.
  static constexpr bool h2_stream = std::is_same_v<Stream, H2StreamIo>;
  static constexpr bool tls_stream = !plain_stream && !h2_stream;
  struct NoContexts {};
  /// A TLS session keeps the certificates it was accepted with alive (a reload may replace them).
  using Contexts = std::conditional_t<tls_stream, TlsContextsPtr, NoContexts>;

 public:
  ClientSession(Worker& worker, Stream stream, std::string client_ip, std::array<std::uint8_t, 16> client_addr,
                Contexts contexts = {});
  ~ClientSession();

  void start();
  /// A plain listener that also speaks h2c: a connection opening with the HTTP/2 preface is
  /// handed to an H2Connection; without http/1.1 any other opening closes it.
  void accept_h2c(bool http1_too) noexcept {
    h2c_ = true;
    http1_ = http1_too;
  }

  // Timed
  void on_deadline() override;
  void on_drain() override;
  void on_shed() override;
  bool on_cut(int service, routing::Color color) override;

 private:
  enum class Phase : std::uint8_t { handshake, idle, head, upstream, response, tunnel, closing, closed };
  enum class Direction : std::uint8_t { request, response, to_upstream, to_client };
  /// Whose silence the deadline is waiting out: a slow backend gets a 504, a slow client a close.
  enum class Waiting : std::uint8_t { client, upstream };

  /// One exchange: what a request starts from. Reset by assignment when its first byte arrives.
  struct Request {
    Clock::time_point start{};
    Clock::time_point finished{};  ///< when the exchange was recorded (a pooled connection's idle start)
    RequestTarget target;
    routing::RoutingTableConstSharedPtr table;  ///< pinned at header time with its generation (rt_)
    int service = -1;
    routing::Color color = routing::Color::blue;
    unsigned status = 0;
    bool keep_alive = true;   ///< the client connection stays open after this exchange
    bool http10 = false;      ///< the client speaks HTTP/1.0
    bool head_method = false;
    bool idempotent = false;
    bool upgrade = false;           ///< a websocket upgrade, forwarded as one
    bool expect_continue = false;   ///< a 100 Continue is still owed to the client
    bool panic = false;             ///< no healthy server in either color: pick by admin state
    bool response_started = false;  ///< response bytes reached the client: no error answer any more
    int retries_left = 0;           ///< retries on another server (idempotent or unsent requests)
    std::uint32_t excluded_server = no_server;  ///< the server that failed, skipped by the retry
    bool resent_unsent = false;          ///< already went again after a write that sent nothing
    bool replayed_refused = false;       ///< already went again after an HTTP/2 server refused it
    bool fresh_connection_only = false;  ///< the next attempt opens a connection, not a pooled one
    /// timeouts.upstream_response, or a gRPC call's shorter grpc-timeout
    Clock::duration upstream_response{};
  };

  /// One try of a request against one server. Reset by assignment when a server is chosen.
  struct Attempt {
    std::uint32_t server = no_server;
    bool reused = false;               ///< the connection came from the pool
    bool counted_outstanding = false;  ///< counted in the pool's least-outstanding load
    bool timed_out = false;            ///< the deadline closed the upstream socket: a 504
    bool response_bytes_seen = false;
    bool request_cut = false;          ///< the backend stopped taking the request body; reading its answer
    bool watching_early = false;       ///< a readiness wait on the upstream runs beside the body relay
    bool request_abandoned = false;    ///< the backend answered early: the body relay's handlers stop
    bool upstream_keep_alive = false;  ///< the connection may be pooled after this response
    /// HTTP/2 to the backend with a body to send: the answer is read while the body still goes
    /// (a gRPC bidi stream answers each message as it comes), not only after it.
    bool duplex = false;
    bool request_relayed = false;  ///< duplex: the whole body went
    bool cut = false;              ///< `rollback --drain` closed the upstream socket: a 503, no server failure
    bool connecting = false;       ///< the connection (maybe a shared HTTP/2 one) is being opened
  };

  static constexpr std::size_t read_chunk = BlockPool::block_size;  ///< one buffer of the worker's pool
  /// A keep-alive client silent this long gives back its buffers until it speaks again.
  static constexpr auto shed_after = std::chrono::milliseconds(250);
  static constexpr auto linger_time = std::chrono::seconds(1);
  static constexpr auto drain_idle_grace = std::chrono::milliseconds(500);
  static constexpr auto tls_shutdown_time = std::chrono::seconds(1);

  auto& lowest_layer() { return beast::get_lowest_layer(stream_); }
  const Settings& settings() const noexcept { return rt_->settings; }
  /// Worker-local pools and stats are indexed by slot, stable across reloads (see Runtime).
  std::uint32_t slot_of(std::uint32_t server) const noexcept { return rt_->server_slot[server]; }
  stats::ServiceStats& service_stats() noexcept {
    return worker_.stats().services[rt_->service_slot[static_cast<std::size_t>(req_.service)]];
  }
  /// The stats of the color the current request was routed to.
  stats::ColorStats& color_stats() noexcept { return service_stats().colors[static_cast<std::size_t>(req_.color)]; }
  const routing::ServiceRoute& service_route() const noexcept {
    return req_.table->services[static_cast<std::size_t>(req_.service)];
  }

  void arm(Clock::duration d) noexcept { deadline_ = worker_.coarse_now() + d; }
  void arm_client(Clock::duration d) noexcept {
    waiting_ = Waiting::client;
    arm(d);
  }
  /// Waiting for a client's next request: while the worker drains, only for the drain grace.
  void arm_waiting(Clock::duration d) noexcept {
    arm_client(worker_.draining() ? std::min<Clock::duration>(d, drain_idle_grace) : d);
  }
  void arm_upstream(Clock::duration d) noexcept {
    waiting_ = Waiting::upstream;
    arm(d);
  }

  /// The end of the input stream: EOF, or a TLS peer (client or backend) that closed
  /// without close_notify (benign unless a message is partly read, which the caller decides).
  static bool end_of_input(error_code ec) noexcept {
    return ec == net::error::eof || ec == net::ssl::error::stream_truncated;
  }

  // client_session_request.hpp: the TLS handshake, the request head, routing
  void on_handshake(error_code ec);
  /// The client chose HTTP/2 by ALPN: the connection goes to an H2Connection.
  bool chose_h2();
  /// The connection goes to an H2Connection (which counts it from now on): this session ends.
  void hand_over() noexcept {
    phase_ = Phase::closed;
    deadline_ = Clock::time_point::max();
    handed_over_ = true;
  }
  void count_handshake_failure(stats::TlsFailureReason reason) noexcept;
  void close_after_failed_handshake();
  void linger_raw();
  void do_read_head();
  void parse_head();
  /// First bytes on an h2c listener. @return true when they decided the connection's fate
  bool took_h2c_opening();
  void begin_request();
  void read_head_more();
  /// Idle without buffers: waits for the client's next bytes on the socket alone.
  void wait_idle();
  void on_read_head(error_code ec, std::size_t n);
  void reject_request(error_code ec);
  void on_request_head();
  void reset_request_body();
  std::uint32_t client_bucket(const routing::ServiceRoute& svc);

  // client_session_upstream.hpp: one attempt against a server, its failure and retry
  void choose_server_and_connect(Clock::time_point now);
  void on_connect(error_code ec);
  void abort_upstream();
  void on_upstream_handshake(error_code ec);
  void after_connect();
  /// Writes the head to forward into the exchange's head (once per request, at routing time).
  void write_upstream_head();
  void send_request_head();
  /// A copy for the shadow color, when this request is one to mirror (SPEC §14).
  void plan_shadow();
  /// Hands the client's answer's end to the copy, if any, and lets go of it.
  void settle_shadow(bool answered);
  static bool final_answer_or_close(Socket& s);
  void watch_for_early_answer();
  void stop_watching_early();
  void on_early_answer(error_code ec);
  bool never_sent(error_code ec) const noexcept;
  void resend_unsent();
  /// Puts a refused request's body back before what the client sent after it, to go again.
  void replay_request_body(std::string_view body);
  void count_upstream_failure(stats::FailureReason reason);
  void upstream_failed(stats::FailureReason reason, unsigned status, bool connect_phase);
  void release_upstream(bool reusable);

  // client_session_relay.hpp: bodies both ways, the response head, the end of an exchange
  template <class In, class Out>
  void relay_step(In& in, ReadBuffer& buf, Out& out, BodyFraming& framing, Direction dir);
  template <class In, class Out>
  void relay_read(In& in, ReadBuffer& buf, Out& out, BodyFraming& framing, Direction dir);
  void arm_for_read(Direction dir) noexcept;
  void arm_for_write(Direction dir) noexcept;
  void relay_done(Direction dir);
  void relay_failed(Direction dir, bool writing, error_code ec);
  void body_too_large();
  void do_read_response_head();
  void new_response_parser();
  void parse_response_head();
  void on_response_read(error_code ec, std::size_t n);
  void on_response_head();
  std::string_view color_header() const noexcept;
  std::string_view client_scheme() const noexcept {
    if constexpr (h2_stream) return stream_.scheme();
    return tls_stream ? "https" : "http";
  }
  void finish_exchange();
  void end_of_exchange();
  void finish_with_error(unsigned status);
  void reject(unsigned status, bool keep_alive);
  /// @param accounted the status counted in the stats when it differs from `status` (0: the same)
  void record_exchange(unsigned status, unsigned accounted = 0);
  unsigned grpc_accounted(bool complete);
  void log_access(unsigned status, double seconds);
  void respond_local(unsigned status, bool keep_alive);

  // client_session_close.hpp: the websocket tunnel and closing
  void start_tunnel();
  void tunnel_half_closed(Direction dir);
  void graceful_close();
  void linger();
  void close();

  Worker& worker_;
  /// The generation this connection's current request routes by; taken with the table.
  RuntimeConstSharedPtr rt_;
  [[no_unique_address]] Contexts contexts_;  ///< declared before stream_: outlives the SSL object
  Stream stream_;
  ReadBuffer buffer_;  ///< client bytes; may hold the next pipelined request
  std::string client_ip_;
  std::array<std::uint8_t, 16> client_addr_;

  /// What only an exchange needs, from its first byte until the connection idles long enough to
  /// shed it (on_shed): a keep-alive client that keeps talking keeps it, one that idles holds
  /// its socket and this session's few fields alone (issue 14).
  std::unique_ptr<Exchange> ex_;
  bool head_pending_ = false;  ///< the exchange's head goes out with the next relay write
  UpstreamConnectionPtr upstream_;  ///< the current attempt's connection

  Phase phase_ = Phase::idle;
  std::uint32_t attempt_serial_ = 0;  ///< tells a stale attempt's response read from the current one
  bool shedding_ = false;  ///< on_shed() cancelled the read waiting for the next request
  bool h2c_ = false;       ///< the connection's first bytes may be the HTTP/2 preface
  bool http1_ = true;      ///< the listener speaks HTTP/1.1
  bool handed_over_ = false;  ///< the connection went to an H2Connection, which counts it now
  Waiting waiting_ = Waiting::client;
  int tunnel_open_ = 0;  ///< directions of a tunnel still open
  Request req_;
  Attempt attempt_;
};

}  // namespace bgproxy::proxy

#include "proxy/http/client_session_request.hpp"
#include "proxy/http/client_session_upstream.hpp"
#include "proxy/http/client_session_relay.hpp"
#include "proxy/http/client_session_close.hpp"
