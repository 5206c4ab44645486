#pragma once
/// The receive operation behind Socket::async_read_some (see socket.hpp for why): Asio 1.81's
/// reactive receive op, except that a read which left the kernel's receive queue empty (no
/// byte, no FIN: TCP_INQ) reports the socket exhausted. Written against
/// boost/asio/detail/reactive_socket_recv_op.hpp and reactive_socket_service_base.hpp of 1.81;
/// included only for that release.

#include <cerrno>
#include <cstddef>
#include <cstring>

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactive_socket_service_base.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/io_context.hpp>

namespace bgproxy::proxy::detail {

namespace adetail = boost::asio::detail;
using Executor = boost::asio::io_context::executor_type;

/// TCP_CM_INQ of a recvmsg: bytes still queued after that read; not 0 while a FIN is unread (the
/// kernel says so on purpose). -1 when the socket does not report it (TCP_INQ off).
inline int left_in_queue(msghdr& msg) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ) {
      int inq = 0;
      std::memcpy(&inq, CMSG_DATA(c), sizeof inq);
      return inq;
    }
  return -1;
}

class DrainingRecvOpBase : public adetail::reactor_op {
 protected:
  DrainingRecvOpBase(adetail::socket_type socket, boost::asio::mutable_buffer buffer, func_type complete)
      : reactor_op(boost::system::error_code(), &DrainingRecvOpBase::do_perform, complete),
        socket_(socket),
        buffer_(buffer) {}

 private:
  /// One recvmsg; with TCP_INQ on, the kernel adds how many bytes (or a pending FIN) are left.
  static status do_perform(reactor_op* base) {
    auto* o = static_cast<DrainingRecvOpBase*>(base);
    for (;;) {
      iovec iov{o->buffer_.data(), o->buffer_.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(o->socket_, &msg, 0);
      if (n > 0) {
        o->ec_ = boost::system::error_code();
        o->bytes_transferred_ = static_cast<std::size_t>(n);
        return left_in_queue(msg) == 0 ? done_and_exhausted : done;
      }
      o->bytes_transferred_ = 0;
      if (n == 0) {
        o->ec_ = boost::asio::error::eof;
        return done_and_exhausted;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
      o->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
      return done;
    }
  }

  adetail::socket_type socket_;
  boost::asio::mutable_buffer buffer_;
};

template <class Handler>
class DrainingRecvOp : public DrainingRecvOpBase {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(DrainingRecvOp);

  DrainingRecvOp(adetail::socket_type socket, boost::asio::mutable_buffer buffer, Handler& handler,
                 const Executor& io_ex)
      : DrainingRecvOpBase(socket, buffer, &DrainingRecvOp::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static void do_complete(void* owner, adetail::operation* base, const boost::system::error_code&, std::size_t) {
    auto* o = static_cast<DrainingRecvOp*>(base);
    ptr p = {adetail::addressof(o->handler_), o, o};
    adetail::handler_work<Handler, Executor> w(std::move(o->work_));
    // The handler is moved out before the op's memory is freed: a part of it may own that memory.
    adetail::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                              o->bytes_transferred_);
    p.h = adetail::addressof(handler.handler_);
    p.reset();
    if (owner) {
      adetail::fenced_block b(adetail::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  Handler handler_;
  adetail::handler_work<Handler, Executor> work_;
};

/// Starts a read of at most `buffer.size()` bytes into `buffer` (not empty) on `impl`, as
/// reactive_socket_service_base::async_receive does.
template <class Handler>
void start_draining_recv(adetail::reactor& reactor, adetail::reactive_socket_service_base::base_implementation_type& impl,
                         const Executor& io_ex, boost::asio::mutable_buffer buffer, Handler handler) {
  const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
  using Op = DrainingRecvOp<Handler>;
  typename Op::ptr p = {adetail::addressof(handler), Op::ptr::allocate(handler), nullptr};
  p.p = new (p.v) Op(impl.socket_, buffer, handler, io_ex);
  if ((impl.state_ & adetail::socket_ops::non_blocking) ||
      adetail::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, p.p->ec_))
    reactor.start_op(adetail::reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation, true);
  else
    reactor.post_immediate_completion(p.p, is_continuation);
  p.v = p.p = nullptr;
}

}  // namespace bgproxy::proxy::detail
