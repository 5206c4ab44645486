#include "proxy/h2/h2_stream_io.hpp"

#include <boost/asio/post.hpp>

namespace bgproxy::proxy {
namespace net = boost::asio;
using error_code = boost::system::error_code;

void H2StreamIo::start_read(net::mutable_buffer into, IoHandler handler) {
  auto& s = *stream_;
  s.read_into = into;
  s.reader.set(std::move(handler));
  s.serve_read();
}

void H2StreamIo::finish_write(bool ok, std::size_t n, IoHandler handler) {
  auto& s = *stream_;
  if (!ok) {
    // A malformed answer, or a stream already gone: the session closes on the error.
    if (s.link) s.link->abandon(s);
    net::post(s.executor, [h = std::move(handler)]() mutable { std::move(h)(net::error::broken_pipe, 0); });
    return;
  }
  s.writer.set(std::move(handler));
  s.writer_bytes = n;
  s.release_writer();
}

void H2StreamIo::cancel(error_code&) {
  auto& s = *stream_;
  if (!s.reader) return;
  net::post(s.executor, [h = s.reader.take()]() mutable { std::move(h)(net::error::operation_aborted, 0); });
}

}  // namespace bgproxy::proxy
