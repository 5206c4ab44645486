#pragma once
/// One HTTP/2 stream between its connection (H2Connection, which speaks nghttp2) and the proxy
/// session that serves it (ClientSession<H2StreamIo>): the request as HTTP/1.1 bytes for the
/// session to read, and the session's HTTP/1.1 answer taken apart into a head and payload for
/// the connection to send as HEADERS and DATA. The session reads and writes it through
/// H2StreamIo, an Asio stream, so it needs no HTTP/2 code of its own (SPEC §13: every stream is
/// one request, served like one on an HTTP/1.1 connection).
/// Thread: the worker's.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include "proxy/h2/h1_request.hpp"
#include "proxy/h2/payload_queue.hpp"
#include "proxy/h2/pending_io.hpp"
#include "proxy/http/body_framing.hpp"
#include "proxy/http/parsed_head.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

struct H2Stream;

/// The connection's side, as a stream sees it.
class H2Link {
 public:
  /// The session took `data_bytes` of request DATA: the client may send as much more.
  virtual void request_consumed(H2Stream& s, std::size_t data_bytes) = 0;
  /// The answer's head is complete (s.response_head); its payload follows in s.out.
  virtual void response_head(H2Stream& s) = 0;
  /// More payload in s.out, or its end.
  virtual void response_data(H2Stream& s) = 0;
  /// The session let go before its answer was complete: the stream is reset.
  virtual void abandon(H2Stream& s) = 0;

 protected:
  ~H2Link() = default;
};

struct H2Stream : std::enable_shared_from_this<H2Stream> {
  H2Stream(H2Link& l, std::int32_t stream_id, const Executor& ex, BlockPool& blocks)
      : link(&l), id(stream_id), executor(ex), out(blocks) {}

  H2Link* link;  ///< null once the stream is closed (or its connection gone)
  std::int32_t id;
  std::size_t slot = 0;  ///< its place in the connection's list of open streams
  Executor executor;

  // --- the request, as HTTP/1.1 bytes for the session
  H1Request request;
  std::string in;           ///< bytes not yet read by the session
  std::size_t in_pos = 0;
  std::size_t in_data = 0;  ///< DATA payload bytes in `in` not yet credited back to the client
  bool in_done = false;     ///< the client ended the stream: what is in `in` is all
  boost::asio::mutable_buffer read_into;
  PendingIo reader;  ///< a read waiting for bytes

  // --- the session's answer
  std::string head_bytes;  ///< the part of a head that came without its end
  ParsedHead response_head;  ///< views into the session's write: valid during H2Link::response_head
  bool head_done = false;
  bool has_body = false;  ///< the answer has payload (not HEAD, 204, 304 or an empty length)
  BodyFraming body;
  PayloadQueue out;  ///< payload, until the frames that carry it are written
  bool out_done = false;  ///< the answer is complete: END_STREAM after `out`
  PendingIo writer;       ///< a write held back until `out` drains
  std::size_t writer_bytes = 0;

  /// Payload held before the session's next write waits: about one stream window.
  static constexpr std::size_t out_high_water = 256 * 1024;

  std::size_t out_pending() const noexcept { return out.pending(); }

  /// Appends the session's bytes (head, then body framed as HTTP/1.1) as head and payload.
  /// @return false when they are not a well-formed answer (the stream is then reset)
  bool take_response(std::string_view bytes);
  /// The session half-closed (an answer framed by the connection's end) or closed.
  void session_ended();

  /// The stream is gone: a waiting read gets `ec`, a waiting write too.
  void fail(boost::system::error_code ec);
  /// Completes a waiting read with what `in` holds (or its end); posted, never inline.
  void serve_read();
  /// Completes a held write once the payload drained below the high water.
  void release_writer();

 private:
  /// `bytes` start with the answer's head (or an interim one); what follows it is payload.
  bool take_head(std::string_view bytes);
  bool take_payload(std::string_view bytes);
};

using H2StreamPtr = std::shared_ptr<H2Stream>;

}  // namespace bgproxy::proxy
