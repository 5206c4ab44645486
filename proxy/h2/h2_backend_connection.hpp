#pragma once
/// One HTTP/2 connection to a backend server (a color with `protocol: h2c` or `h2`, SPEC §13),
/// shared by the exchanges of one worker: each exchange is one stream on it (an H2Upstream), and
/// the worker's UpstreamPool hands out a stream on a connection that has room before it opens
/// another one, as Envoy's per-thread HTTP/2 pools do.
///
/// - Room: below the server's SETTINGS_MAX_CONCURRENT_STREAMS and below `max_streams` of ours.
/// - A GOAWAY from the server, a reload that renews the server, a drain or an idle retirement
///   retire the connection: no new streams; it closes when its last stream ends. Streams above
///   a GOAWAY's last id end as refused (nghttp2 closes them with REFUSED_STREAM), which their
///   exchange may retry elsewhere.
/// - A read is always pending, so a close by the server, its PINGs and its SETTINGS are seen
///   while the connection idles in the pool.
/// - It joins the pool as soon as its TCP connect starts: exchanges that come meanwhile queue
///   their streams on it (a burst opens one connection, not one per request). Their request
///   writes complete once it is up; if it never comes up they fail with nothing sent (broken
///   pipe), which the session answers by sending the request again on a fresh connection.
///
/// nghttp2 is driven only from I/O completions and its callbacks only record: a stream that got
/// something is served after nghttp2_session_mem_recv returns. Thread: the worker's.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/h2/frame_batch.hpp"
#include "proxy/http/upstream_pool.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

class H2Upstream;

class H2BackendConnection : public std::enable_shared_from_this<H2BackendConnection> {
 public:
  /// Our own cap on concurrent streams per connection, whatever the server allows.
  static constexpr std::uint32_t max_streams = 128;

  /// @param connection not yet connected, with ALPN h2 if TLS: see open()
  explicit H2BackendConnection(UpstreamConnectionPtr connection);
  ~H2BackendConnection();
  H2BackendConnection(const H2BackendConnection&) = delete;
  H2BackendConnection& operator=(const H2BackendConnection&) = delete;

  /// Connects (and makes the TLS handshake), for the exchange that opened it; the connection
  /// completes this whether or not that exchange is still there, then tells it (`done`) how it
  /// went. Closing transport().socket meanwhile (that exchange's deadline) fails it.
  void open(const tcp::endpoint& to, std::function<void(boost::system::error_code)> done);

  /// Open, not retired, and with room for one more stream.
  /// @param assumed_max the server's stream limit to assume until its SETTINGS arrive
  bool takes_streams(std::uint32_t assumed_max) const noexcept;
  bool is_connected() const noexcept { return connected_; }
  /// The server's SETTINGS_MAX_CONCURRENT_STREAMS once its SETTINGS arrived, else 0.
  std::uint32_t server_max_streams() const noexcept;
  bool closed() const noexcept { return closed_; }
  std::size_t open_streams() const noexcept { return streams_.size(); }
  /// When the last stream ended (meaningful with open_streams() == 0).
  Clock::time_point idle_since() const noexcept { return idle_since_; }
  UpstreamConnection& transport() noexcept { return *connection_; }
  /// The worker's block pool (request payloads wait in its blocks).
  BlockPool& blocks() const noexcept { return *connection_->buffer.get_allocator().pool(); }
  Executor executor() const noexcept { return executor_; }
  bool https() const noexcept { return https_; }

  /// No new streams from now on; closes at once when none is open, else after the last one.
  void retire();
  /// Closes now: open streams fail.
  void close();

  // ---- for H2Upstream (never from inside an nghttp2 callback)
  /// @return the stream id, or < 0 when nghttp2 refused the request
  std::int32_t submit(H2Upstream& stream, const nghttp2_nv* fields, std::size_t count, bool with_body);
  void resume_body(std::int32_t stream_id);
  /// The stream's exchange took `n` DATA bytes: the server may send as many more.
  void consume(std::int32_t stream_id, std::size_t n);
  /// Resets the stream (unless it has ended) and forgets it: nothing reaches `stream` any more.
  /// @param unconsumed DATA bytes it received and never credited: the connection's window gets them back
  void cancel(H2Upstream& stream, std::int32_t stream_id, std::size_t unconsumed);
  void flush();
  /// flush() at the end of this pass of the worker's loop: the requests and window updates of
  /// the streams served meanwhile go in the same write (one per request cost a system call and
  /// a packet each, where HAProxy writes once per wake-up).
  void flush_soon();

 private:
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_data_chunk_recv(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id, const std::uint8_t* data,
                                std::size_t len, void* self);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self);
  static ssize_t read_body(nghttp2_session*, std::int32_t stream_id, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* data_flags, nghttp2_data_source* source, void* self);
  static int send_body(nghttp2_session*, nghttp2_frame* frame, const std::uint8_t* framehd, std::size_t length,
                       nghttp2_data_source* source, void* self);

  H2Upstream* stream_of(std::int32_t stream_id) const noexcept;
  void touched(H2Upstream* stream);
  /// Off the open list: room for another stream.
  void unlist(H2Upstream* stream);
  void forget(H2Upstream* stream);
  void do_read();
  void connected();
  void fail(boost::system::error_code ec);
  void on_read(boost::system::error_code ec, std::size_t n);
  void serve_touched();
  void close_if_done();

  UpstreamConnectionPtr connection_;
  Executor executor_;
  bool https_;
  nghttp2_session* session_ = nullptr;
  FrameBatch batch_;  ///< the frames being gathered, then written
  bool connected_ = false;
  bool settings_known_ = false;  ///< the server's SETTINGS arrived
  bool writing_ = false;
  bool flush_due_ = false;  ///< a flush_soon() is queued
  bool retired_ = false;
  bool closed_ = false;
  Clock::time_point idle_since_;
  std::vector<H2Upstream*> streams_;  ///< open streams, each registered by submit()
  std::vector<H2Upstream*> touched_;  ///< streams that got frames in this mem_recv
};

}  // namespace bgproxy::proxy
