#pragma once
/// An HTTP/2 stream as the Asio stream a ClientSession serves (h2_stream.hpp): reads give the
/// request as HTTP/1.1 bytes, writes take the HTTP/1.1 answer. Also its own lowest layer: the
/// socket operations a session makes on a connection (shutdown, close, cancel) end or reset
/// the stream only, never the client's connection.
/// Thread: the worker's.

#include <cstddef>
#include <string_view>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>

#include "proxy/h2/h2_stream.hpp"

namespace bgproxy::proxy {

class H2StreamIo {
 public:
  using executor_type = Executor;

  H2StreamIo(H2StreamPtr stream, bool https) : stream_(std::move(stream)), https_(https) {}

  executor_type get_executor() const noexcept { return stream_->executor; }
  /// The scheme the client used (X-Forwarded-Proto).
  std::string_view scheme() const noexcept { return https_ ? "https" : "http"; }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return boost::asio::async_initiate<Handler, void(boost::system::error_code, std::size_t)>(
        [this](auto h, const MutableBuffers& b) {
          start_read(boost::asio::mutable_buffer(*boost::asio::buffer_sequence_begin(b)), IoHandler(std::move(h)));
        },
        handler, buffers);
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return boost::asio::async_initiate<Handler, void(boost::system::error_code, std::size_t)>(
        [this](auto h, const ConstBuffers& b) {
          bool ok = stream_->link != nullptr;
          std::size_t n = 0;
          for (auto it = boost::asio::buffer_sequence_begin(b); ok && it != boost::asio::buffer_sequence_end(b); ++it) {
            const boost::asio::const_buffer piece(*it);
            n += piece.size();
            ok = stream_->take_response(std::string_view(static_cast<const char*>(piece.data()), piece.size()));
          }
          finish_write(ok, n, IoHandler(std::move(h)));
        },
        handler, buffers);
  }

  /// Readiness waits belong to sockets; a stream has none (the session waits on sockets only
  /// when idle on a plain connection, which a stream never is).
  template <class Handler>
  void async_wait(boost::asio::socket_base::wait_type, Handler&& handler) {
    boost::asio::post(get_executor(), [h = std::forward<Handler>(handler)]() mutable {
      std::move(h)(boost::asio::error::operation_not_supported);
    });
  }

  template <class Option>
  void set_option(const Option&, boost::system::error_code&) noexcept {}
  /// The session's half-close: the answer is complete (or cut).
  void shutdown(boost::asio::socket_base::shutdown_type, boost::system::error_code&) { stream_->session_ended(); }
  void close(boost::system::error_code&) { stream_->session_ended(); }
  /// A waiting read ends with operation_aborted.
  void cancel(boost::system::error_code&);

 private:
  void start_read(boost::asio::mutable_buffer into, IoHandler handler);
  void finish_write(bool ok, std::size_t n, IoHandler handler);

  H2StreamPtr stream_;
  bool https_;
};

}  // namespace bgproxy::proxy
