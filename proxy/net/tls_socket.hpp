#pragma once
/// The data plane's TLS stream to clients: OpenSSL reading from and writing to the socket itself,
/// each handshake, read, write and shutdown one operation of Asio's reactor.
///
/// Why not Asio's ssl::stream: it runs OpenSSL against a BIO pair, so every record is copied
/// from the socket into its input buffer, from there into the BIO, and on the way out from the
/// BIO into its output buffer before the send — for a 16 KiB answer over HTTP/2 that was 84,000
/// instructions of memcpy per request against HAProxy's 34,000 (bench/RESULTS-h2.md) — and each
/// operation is a composed op of several socket ops. Here a BIO of our own (tls_socket.cpp) hands
/// OpenSSL the kernel's bytes with one recvmsg and gives the kernel OpenSSL's records with one
/// send, as HAProxy and nginx do. Reads tell the reactor when they left the socket empty
/// (TCP_INQ, as Socket's reads do) and OpenSSL holds no record either, so an idle connection
/// waits for epoll instead of trying a read that finds nothing.
///
/// A record the kernel does not take at once (its send buffer full) waits in `unsent_`: the
/// operation that wrote it then waits for the socket to be writable and sends it before it
/// completes (a write completes only once all of its records are in the kernel: a client that
/// stops reading stops the writer). OpenSSL therefore never sees a write that would block.
///
/// Written against Asio 1.81's reactor (like socket.hpp's reads), so compiled only for that
/// release (tls_stream.hpp picks Asio's ssl::stream elsewhere). A handler given to these
/// operations must keep the stream alive until it runs (every session's handler holds its
/// session): an operation may take a second turn on the socket before it completes. Like an
/// Asio socket it is moved only while no operation is pending (a session hands it to an HTTP/2
/// connection right after the handshake).
/// Thread: the owning worker's only.

#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>

#include "proxy/net/socket.hpp"

namespace bgproxy::proxy {

class TlsSocket;

namespace detail {

namespace adetail = boost::asio::detail;

/// What one operation on a TlsSocket does, and where it is between its turns on the socket.
class TlsOpBase : public adetail::reactor_op {
 public:
  enum class Kind : std::uint8_t { handshake, read, write, shutdown };
  /// After this turn: hand the result to the handler, send what the kernel did not take first,
  /// or (after that) run the step again.
  enum class Next : std::uint8_t { deliver, flush, again };
  /// At most this many buffers of a gather write are taken per operation (a write may be partial).
  static constexpr std::size_t max_buffers = 8;

 protected:
  TlsOpBase(TlsSocket& socket, Kind kind, func_type complete);
  static status do_perform(reactor_op* base);
  /// Back to the reactor, from the completion: to send what waits, or to run the step again.
  void take_next_turn();

  TlsSocket* socket_;
  Kind kind_;
  Next next_ = Next::deliver;
  bool flushing_ = false;  ///< this turn sends what the kernel did not take
  bool again_after_flush_ = false;
  boost::asio::mutable_buffer read_into_;
  std::array<boost::asio::const_buffer, max_buffers> write_from_{};
  std::size_t write_count_ = 0;

  friend class bgproxy::proxy::TlsSocket;
};

template <class Handler>
class TlsOp : public TlsOpBase {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(TlsOp);

  TlsOp(TlsSocket& socket, Kind kind, Handler& handler, const Socket::executor_type& io_ex)
      : TlsOpBase(socket, kind, &TlsOp::do_complete), handler_(std::move(handler)), work_(handler_, io_ex) {}

  static void do_complete(void* owner, adetail::operation* base, const boost::system::error_code&, std::size_t) {
    auto* o = static_cast<TlsOp*>(base);
    // Another turn on the socket: the stream is alive, the handler (not run yet) keeps it so.
    if (owner && o->next_ != Next::deliver) return o->take_next_turn();
    ptr p = {adetail::addressof(o->handler_), o, o};
    adetail::handler_work<Handler, Socket::executor_type> w(std::move(o->work_));
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
  adetail::handler_work<Handler, Socket::executor_type> work_;
};

/// Adapts a handler of (error_code) to the operations' (error_code, std::size_t).
template <class Handler>
struct IgnoreBytes {
  Handler handler;
  void operator()(boost::system::error_code ec, std::size_t) { std::move(handler)(ec); }
};

}  // namespace detail

class TlsSocket : public boost::asio::ssl::stream_base {
 public:
  using executor_type = Socket::executor_type;
  using next_layer_type = Socket;

  /// @param context its SSL_CTX makes the connection's SSL (SNI may switch it during the handshake)
  TlsSocket(Socket socket, boost::asio::ssl::context& context);
  TlsSocket(TlsSocket&& other) noexcept;
  TlsSocket& operator=(TlsSocket&& other) noexcept;
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;
  ~TlsSocket();

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  Socket& next_layer() noexcept { return socket_; }
  SSL* native_handle() const noexcept { return ssl_; }

  template <class Token>
  auto async_handshake(handshake_type type, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this, type](auto handler) {
          set_role(type);
          start(detail::TlsOpBase::Kind::handshake, detail::IgnoreBytes<decltype(handler)>{std::move(handler)});
        },
        token);
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          start(detail::TlsOpBase::Kind::read, std::move(handler), [&b](detail::TlsOpBase& op) {
            op.read_into_ = *boost::asio::buffer_sequence_begin(b);
          });
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          start(detail::TlsOpBase::Kind::write, std::move(handler), [&b](detail::TlsOpBase& op) {
            for (auto it = boost::asio::buffer_sequence_begin(b);
                 it != boost::asio::buffer_sequence_end(b) && op.write_count_ < op.max_buffers; ++it) {
              const boost::asio::const_buffer piece(*it);
              if (piece.size() != 0) op.write_from_[op.write_count_++] = piece;
            }
          });
        },
        token, buffers);
  }

  /// Sends close_notify and waits for the peer's.
  template <class Token>
  auto async_shutdown(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) {
          // close_notify leaves now: the operation itself waits for the peer, and a reactor that
          // knows the socket drained would not try it before the peer sends something.
          send_close_notify();
          start(detail::TlsOpBase::Kind::shutdown, detail::IgnoreBytes<decltype(handler)>{std::move(handler)},
                [this](detail::TlsOpBase& op) {
                  if (unsent_.empty()) return;
                  op.flushing_ = true;
                  op.again_after_flush_ = true;
                });
        },
        token);
  }

 private:
  template <class Handler, class Setup = void (*)(detail::TlsOpBase&)>
  void start(detail::TlsOpBase::Kind kind, Handler handler, Setup setup = [](detail::TlsOpBase&) {}) {
    namespace adetail = boost::asio::detail;
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
    using Op = detail::TlsOp<Handler>;
    typename Op::ptr p = {adetail::addressof(handler), Op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) Op(*this, kind, handler, socket_.io_executor());
    setup(*p.p);
    const bool write_side = kind == detail::TlsOpBase::Kind::write || p.p->flushing_;
    socket_.start_reactor_op(write_side ? adetail::reactor::write_op : adetail::reactor::read_op, p.p, is_continuation);
    p.v = p.p = nullptr;
  }

  void set_role(handshake_type type) noexcept;
  void send_close_notify() noexcept;
  /// One turn of `op` on the socket (its reactor perform).
  detail::TlsOpBase::status perform(detail::TlsOpBase& op);
  detail::TlsOpBase::status step(detail::TlsOpBase& op);
  /// The next turn of `op`, from its completion: sending `unsent_`, or its step again.
  void resume(detail::TlsOpBase& op);
  /// Sends `unsent_`. @return true when it is all in the kernel (or the send failed: `ec`)
  bool send_unsent(boost::system::error_code& ec);
  /// What an OpenSSL call that returned `result` <= 0 means, as Asio's ssl::stream reports it
  /// (classify_handshake_error and the sessions' end-of-input checks read these codes).
  boost::system::error_code error_of(int result) const;

  // the BIO (tls_socket.cpp)
  friend struct TlsSocketBio;
  int bio_read(char* out, int size);
  int bio_write(const char* in, int size);

  friend class detail::TlsOpBase;

  Socket socket_;
  SSL* ssl_ = nullptr;
  /// Records the kernel did not take yet: sent before anything else is written.
  std::string unsent_;
  bool drained_ = false;  ///< the last read left the kernel's receive queue empty
  bool eof_ = false;      ///< the peer's FIN was read
  int io_errno_ = 0;      ///< the last failed recv or send
};

}  // namespace bgproxy::proxy
