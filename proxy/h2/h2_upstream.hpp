#pragma once
/// HTTP/2 toward one backend connection (a color with `protocol: h2c` or `h2`, SPEC §13), for the
/// session that holds it: the HTTP/1.1 request the session writes becomes one stream's HEADERS and
/// DATA, and the answer's HEADERS, DATA and trailers come back as HTTP/1.1 bytes — chunked, with
/// the trailers in the chunked trailer section (gRPC's grpc-status lives there) — so the session
/// relays it like any HTTP/1.1 answer and a client on HTTP/2 gets the trailers back as HEADERS.
///
/// One stream at a time on a connection: the pool hands an idle connection to one session and
/// opens another when none is idle (multiplexing streams of several sessions onto one connection
/// is not done yet). A GOAWAY or a stream error keeps the connection out of the pool.
/// nghttp2 is driven only from I/O completions; flow control is manual, so a slow client slows
/// the backend. Thread: the worker's.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>

#include "proxy/h2/pending_io.hpp"
#include "proxy/http/body_framing.hpp"
#include "proxy/http/head_parser.hpp"
#include "proxy/http/parsed_head.hpp"
#include "proxy/net/block_pool.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

struct UpstreamConnection;

class H2Upstream : public std::enable_shared_from_this<H2Upstream> {
 public:
  /// @param https the connection is TLS (`:scheme`)
  H2Upstream(UpstreamConnection& connection, BlockPool& blocks, bool https);
  ~H2Upstream();
  H2Upstream(const H2Upstream&) = delete;
  H2Upstream& operator=(const H2Upstream&) = delete;

  /// The connection is going away: pending operations fail, nothing touches it any more.
  void detach();
  /// The connection may carry another request (no GOAWAY, no error, the last stream ended well).
  bool reusable() const noexcept { return reusable_ && !stream_open_; }

  /// The session's side (UpstreamConnection dispatches here).
  void read(boost::asio::mutable_buffer into, IoHandler handler);
  /// @return false when the bytes are not a request this can send (the write then fails)
  bool write(std::string_view bytes);
  void finish_write(bool ok, std::size_t n, IoHandler handler);

 private:
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_data_chunk_recv(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id, const std::uint8_t* data,
                                std::size_t len, void* self);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self);
  static ssize_t read_body(nghttp2_session*, std::int32_t stream_id, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* data_flags, nghttp2_data_source* source, void* self);

  void open_session();
  void next_exchange();
  bool parse_request_head();
  bool submit_request();
  bool take_body(std::string_view bytes);
  void response_head_done(bool end_stream);
  void response_ended();
  void serve_read();
  void release_writer();
  void do_read();
  void flush();
  void fail(boost::system::error_code ec);

  UpstreamConnection* connection_;
  Executor executor_;
  bool https_;
  nghttp2_session* session_ = nullptr;
  ReadBuffer rbuf_;
  std::string wbuf_;
  bool reading_ = false;
  bool writing_ = false;
  bool reusable_ = true;
  bool stream_open_ = false;
  std::int32_t stream_id_ = -1;

  // --- the request the session writes
  std::string head_bytes_;
  ParsedHead request_head_;
  bool head_done_ = false;
  BodyFraming request_body_;
  std::string out_;  ///< request payload not yet taken by nghttp2
  std::size_t out_pos_ = 0;
  bool out_done_ = false;
  PendingIo writer_;
  std::size_t writer_bytes_ = 0;

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
};

}  // namespace bgproxy::proxy
