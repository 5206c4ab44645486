#pragma once
/// One exchange's stream on an HTTP/2 backend connection (a color with `protocol: h2c` or `h2`,
/// SPEC §13), behind the UpstreamConnection handle the session holds: the HTTP/1.1 request the
/// session writes becomes the stream's HEADERS and DATA, and the answer's HEADERS, DATA and
/// trailers come back as HTTP/1.1 bytes — chunked, with the trailers in the chunked trailer
/// section (gRPC's grpc-status lives there) — so the session relays it like any HTTP/1.1 answer
/// and a client on HTTP/2 gets the trailers back as HEADERS.
///
/// The connection is shared (H2BackendConnection): ending the exchange early resets only this
/// stream. Flow control is manual: the server gets credit for DATA once the session has taken
/// it, so a slow client slows that stream of the backend, not the others. Thread: the worker's.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>

#include "proxy/h2/payload_queue.hpp"
#include "proxy/h2/pending_io.hpp"
#include "proxy/http/body_framing.hpp"
#include "proxy/http/parsed_head.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

class H2BackendConnection;
struct UpstreamConnection;

class H2Upstream : public std::enable_shared_from_this<H2Upstream> {
 public:
  explicit H2Upstream(std::shared_ptr<H2BackendConnection> connection);
  ~H2Upstream();
  H2Upstream(const H2Upstream&) = delete;
  H2Upstream& operator=(const H2Upstream&) = delete;

  /// The session let go of the exchange: the stream is reset if it has not ended, pending
  /// operations fail, and nothing touches the connection any more.
  void detach();
  /// Ends the exchange now (a deadline, `rollback --drain`): the stream is reset and the
  /// session's pending operations fail with `ec`.
  void abort(boost::system::error_code ec);

  /// The shared connection's own UpstreamConnection.
  UpstreamConnection& transport() noexcept;
  /// The shared connection is up.
  bool connected() const noexcept;
  /// Connects the shared connection (for the exchange that opened it: UpstreamPool::share_h2).
  void open(const tcp::endpoint& to, std::function<void(boost::system::error_code)> done);

  /// The session's side (UpstreamConnection dispatches here).
  void read(boost::asio::mutable_buffer into, IoHandler handler);
  /// @return false when the bytes are not a request this can send (the write then fails)
  bool write(std::string_view bytes);
  void finish_write(bool ok, std::size_t n, IoHandler handler);

  // ---- for H2BackendConnection, from inside its nghttp2 callbacks: these only record
  void on_field(std::string_view name, std::string_view value);
  void on_headers_end(bool end_stream);
  /// The answer's head is through and its end not yet: DATA belongs to it.
  bool takes_data() const noexcept;
  void on_data(std::string_view bytes);
  void on_data_end();
  void on_closed(std::uint32_t error_code);
  /// Sizes the next DATA frame of the request body (nghttp2's data source read callback); its
  /// payload is taken in place by take_payload (NGHTTP2_DATA_FLAG_NO_COPY).
  ssize_t size_body(std::size_t length, std::uint32_t* data_flags);
  /// The payload of the DATA frame being sent, left where it is until the write that carries it
  /// is done (then payload().release(upto)).
  struct Payload {
    std::string_view bytes;
    std::uint64_t upto;
  };
  Payload take_payload(std::size_t length);
  PayloadQueue& payload() noexcept { return out_; }
  bool touched = false;  ///< on the connection's list of streams to serve after this read
  std::int32_t stream_id() const noexcept { return stream_id_; }

  // ---- for H2BackendConnection, outside its callbacks
  /// Hands the session what arrived; credits the server for what it took.
  void serve();
  /// The connection came up: a request write held while it connected completes.
  void transport_up();
  void connection_failed(boost::system::error_code ec);

  /// The server refused the stream (REFUSED_STREAM, or above a GOAWAY's last id), so it did
  /// nothing with the request: its whole body as the session wrote it, when it was kept (no
  /// more than replay_limit), for the session to send again; nothing otherwise.
  std::optional<std::string_view> refused_body() const noexcept;

 private:
  /// `bytes` start with the request head; what follows it is body.
  bool take_head(std::string_view bytes);
  bool submit_request();
  bool take_body(std::string_view bytes);
  /// Keeps body bytes until the answer starts, in case the stream is refused.
  void keep_for_replay(std::string_view bytes);
  void response_head_done(bool end_stream);
  void release_writer();
  /// Resets the open stream (RST_STREAM CANCEL) and gives its unread DATA back to the window.
  void cancel_stream();
  void fail(boost::system::error_code ec);

  std::shared_ptr<H2BackendConnection> connection_;  ///< null once detached
  Executor executor_;
  bool stream_open_ = false;
  std::int32_t stream_id_ = -1;

  // --- the request the session writes
  std::string head_bytes_;
  ParsedHead request_head_;
  bool head_done_ = false;
  BodyFraming request_body_;
  PayloadQueue out_;  ///< request payload, until the frames that carry it are written
  bool out_done_ = false;
  PendingIo writer_;
  std::size_t writer_bytes_ = 0;
  std::string replay_;       ///< the body bytes taken, while replayable_
  bool replayable_ = true;   ///< no answer yet and the body within replay_limit
  bool refused_ = false;

  // --- the answer, as HTTP/1.1 bytes for the session
  std::string in_;
  std::size_t in_pos_ = 0;
  std::size_t in_data_ = 0;  ///< DATA payload in in_ not yet credited back to the backend
  bool final_status_ = false;  ///< the final (non-1xx) :status arrived
  bool head_sent_ = false;     ///< the HTTP/1.1 head is complete in in_
  bool content_length_ = false;
  bool chunked_ = false;
  bool in_done_ = false;
  bool failed_ = false;
  boost::system::error_code fail_code_;
  std::string trailers_;  ///< the answer's trailer fields, until its end
  boost::asio::mutable_buffer read_into_;
  PendingIo reader_;

  static constexpr std::size_t out_high_water = 256 * 1024;
  /// A gRPC unary call or a form fits; an upload larger than this is not sent twice.
  static constexpr std::size_t replay_limit = 64 * 1024;
};

}  // namespace bgproxy::proxy
