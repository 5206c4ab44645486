#pragma once
/// One mirrored request (SPEC §14, README "Shadow traffic"): a copy of a client's request sent to
/// the shadow color on its own connection from the worker's pools, its answer read and compared
/// with the answer the client got, then thrown away. The client's exchange is never delayed,
/// changed or failed by it: the copy starts once the client's request is out, a full
/// `max_in_flight` drops it, and whatever happens to it is counted in the shadow stats only.
///
/// Its two halves end in either order: the session hands it the client's answer as it relays
/// it (primary_*), the shadow's own read ends on its own; the pair is compared when both are in.
/// Thread: the worker's.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/buffer_body.hpp>

#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/shadow/compare.hpp"
#include "proxy/http/parsed_head.hpp"
#include "proxy/http/upstream_pool.hpp"
#include "proxy/net/runtime.hpp"
#include "proxy/net/timed.hpp"

namespace bgproxy::proxy {

class Worker;

/// Tracked by the worker while its copy is out, so that a drain (shutdown, upgrade) ends it
/// rather than wait for an answer nobody would read.
class ShadowExchange : public std::enable_shared_from_this<ShadowExchange>, public Timed {
 public:
  /// What to mirror, decided by the session (shadow_policy.hpp).
  struct Plan {
    int service = -1;
    routing::Color color = routing::Color::green;  ///< where the copy goes
    bool same_color = false;   ///< a noise-floor pair: the copy goes to the client's own color
    bool head_method = false;  ///< a HEAD: the answers have no body
    std::string request;       ///< the head as forwarded, with X-Bg-Shadow: 1, and the body
    std::string target;        ///< the request target, for samples
  };

  ShadowExchange(Worker& worker, RuntimeConstSharedPtr rt, routing::RoutingTableConstSharedPtr table, Plan plan);
  ~ShadowExchange();
  ShadowExchange(const ShadowExchange&) = delete;
  ShadowExchange& operator=(const ShadowExchange&) = delete;

  /// Sends the copy, unless max_in_flight copies are out already (then it is dropped), the
  /// shadow color has no usable server or the worker is draining (skipped).
  void start();

  void on_deadline() override {}  // its own timer: one deadline for the whole copy
  void on_drain() override { on_timeout(); }
  void on_shed() override {}

  /// The client's answer: its head as the backend sent it, then its body bytes as relayed
  /// (chunked framing included when `chunked`), then its end.
  void primary_head(const ParsedHead& head, bool chunked);
  void primary_body(std::string_view raw);
  /// @param answered the whole answer reached the client (else the pair is not compared). The
  /// primary's time runs from start() to this call, as the copy's runs from start() to its answer.
  void primary_done(bool answered);

 private:
  enum class Side : std::uint8_t { pending, answered, failed };

  void connect();
  void send();
  void read();
  /// Reads the body into shadow_.body, at most shadow::max_compared_body bytes plus one (which
  /// tells a longer body: then it stops, cut).
  void read_body();
  /// The whole answer is in (or the body was cut): keeps status and headers, frees the connection.
  void answered(bool cut);
  void on_timeout();
  void shadow_finished(bool answered);
  void compare_if_both();
  void release_connection(bool reusable);
  std::size_t slot() const noexcept;

  Worker& worker_;
  RuntimeConstSharedPtr rt_;
  routing::RoutingTableConstSharedPtr table_;  ///< pinned: the compare settings live in it
  Plan plan_;
  std::uint32_t server_ = ~0u;
  bool counted_in_flight_ = false;
  UpstreamConnectionPtr conn_;
  boost::asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body>> parser_;
  std::chrono::steady_clock::time_point started_{};

  shadow::Answer primary_;
  shadow::Answer shadow_;
  bool primary_chunked_ = false;
  std::string primary_raw_;  ///< the client's answer body as relayed, at most max_compared_body + framing
  double primary_seconds_ = 0;
  double shadow_seconds_ = 0;
  Side primary_state_ = Side::pending;
  Side shadow_state_ = Side::pending;
};

}  // namespace bgproxy::proxy
