#pragma once
/// The data plane's TCP socket: Asio's stream socket whose reads tell the reactor when they
/// emptied the kernel's receive queue.
///
/// Why: Asio 1.81's epoll reactor tries every read at once ("speculative" read) unless the
/// previous read on that socket reported the socket exhausted, and its own receive op does so
/// only at end of stream. So each keep-alive request paid a `recvfrom` that found nothing: one
/// when the session waits for the client's next request, one when it waits for the backend's
/// answer (bench/empty-reads: 2.0 per request). With TCP_INQ on, each read learns from the
/// kernel whether it left the receive queue empty (no byte and no FIN: a short read is not
/// enough, the peer's FIN may wait behind the bytes); saying so makes the reactor queue the
/// next read until epoll reports new bytes. Edge-triggered epoll reports every arrival after
/// that read, and the reactor re-enables the speculative read on each report (under its
/// descriptor lock), so no byte waits on a missed event. Asio does the same for short writes.
///
/// The op uses Asio's reactor interface (boost/asio/detail), which is not a public API: it is
/// compiled only for the Boost release it was written against (Debian 12's 1.81) with the epoll
/// reactor; any other build reads through Asio's own op, unchanged. Reads whose handler has a
/// cancellation slot or that scatter into several buffers, and sockets where TCP_INQ cannot be
/// set, also take Asio's own op.

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/net/asio_release.hpp"

#ifdef BGPROXY_ASIO_181_EPOLL
#define BGPROXY_DRAINING_READS 1
#include "proxy/net/draining_recv_op.hpp"
#endif

namespace bgproxy::proxy {

class Socket : public boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type> {
  using Base = boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

 public:
  /// Sends what the kernel takes now, without waiting and without a completion handler: the
  /// caller goes on in its own stack when everything left (an async write that completes at
  /// once still costs a trip through the io_context's queue, and with it an epoll_wait).
  /// Only for a socket with no write in progress. At most four buffers are sent.
  /// @return the bytes sent; 0 with `ec` clear when the socket's send buffer is full
  template <class ConstBuffers>
  std::size_t send_now(const ConstBuffers& buffers, boost::system::error_code& ec) {
    std::array<iovec, 4> iov{};
    std::size_t count = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && count < iov.size(); ++it) {
      const boost::asio::const_buffer b(*it);
      if (b.size() != 0) iov[count++] = iovec{const_cast<void*>(b.data()), b.size()};
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = count;
    for (;;) {
      // One buffer (a head without body bytes, most requests) goes by send(): the kernel then
      // copies in no msghdr and iovec array, a few percent of a small request's system time.
      const ssize_t n = count == 1 ? ::send(native_handle(), iov[0].iov_base, iov[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL)
                                   : ::sendmsg(native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) {
        ec = {};
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      ec = errno == EAGAIN || errno == EWOULDBLOCK
               ? boost::system::error_code()
               : boost::system::error_code(errno, boost::asio::error::get_system_category());
      return 0;
    }
  }

  explicit Socket(const boost::asio::io_context::executor_type& ex) : Base(ex) { find_reactor(); }
  explicit Socket(boost::asio::io_context& ioc) : Base(ioc) { find_reactor(); }
  /// From an accepted socket (the acceptor hands out the plain Asio type).
  Socket(Base&& accepted) noexcept : Base(std::move(accepted)) { find_reactor(); }  // NOLINT(google-explicit-constructor)
  Socket(Socket&&) noexcept = default;
  Socket& operator=(Socket&&) noexcept = default;

#ifdef BGPROXY_DRAINING_READS
  /// For operations written against Asio's reactor (tls_socket.hpp): starts `op` on this socket
  /// as reactive_socket_service_base does, in the reactor's queue of `type` (read_op, write_op),
  /// tried at once.
  void start_reactor_op(int type, boost::asio::detail::reactor_op* op, bool is_continuation) {
    auto& impl = impl_.get_implementation();
    if ((impl.state_ & boost::asio::detail::socket_ops::non_blocking) ||
        boost::asio::detail::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, op->ec_))
      reactor_->start_op(type, impl.socket_, impl.reactor_data_, op, is_continuation, true);
    else
      reactor_->post_immediate_completion(op, is_continuation);
  }
  /// The executor an operation's handler_work tracks (what Asio's own ops are given).
  const executor_type& io_executor() noexcept { return impl_.get_executor(); }

  /// TCP_INQ, switched on at the first read (one setsockopt per connection).
  bool reports_queue() {
    if (inq_ == Inq::unknown) {
      const int on = 1;
      inq_ = ::setsockopt(native_handle(), SOL_TCP, TCP_INQ, &on, sizeof on) == 0 ? Inq::on : Inq::off;
    }
    return inq_ == Inq::on;
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) { start_read(std::move(handler), b); }, token, buffers);
  }

 private:
  template <class Handler, class MutableBuffers>
  void start_read(Handler handler, const MutableBuffers& buffers) {
    using Adapter = boost::asio::detail::buffer_sequence_adapter<boost::asio::mutable_buffer, MutableBuffers>;
    if constexpr (Adapter::is_single_buffer) {
      const boost::asio::mutable_buffer buffer = Adapter::first(buffers);
      if (buffer.size() != 0 && reports_queue() &&
          !boost::asio::get_associated_cancellation_slot(handler).is_connected()) {
        detail::start_draining_recv(*reactor_, impl_.get_implementation(), impl_.get_executor(), buffer,
                                    std::move(handler));
        return;
      }
    }
    Base::async_read_some(buffers, std::move(handler));
  }

  /// Looked up once per socket: use_service takes a lock and walks the service list.
  void find_reactor() { reactor_ = &boost::asio::use_service<boost::asio::detail::reactor>(get_executor().context()); }

  boost::asio::detail::reactor* reactor_ = nullptr;
  enum class Inq : std::uint8_t { unknown, on, off } inq_ = Inq::unknown;
#else
 private:
  void find_reactor() {}
#endif
};

}  // namespace bgproxy::proxy
