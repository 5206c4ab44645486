#include "proxy/net/tls_socket.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

namespace bgproxy::proxy {
namespace {
/// Calls of OpenSSL in one turn that wanted more input although the socket still had some: each
/// took bytes (a control record, a part of one); a peer cannot keep a worker here for ever.
constexpr int max_short_reads = 64;
}  // namespace

/// OpenSSL's view of the socket: reads are one recvmsg (with TCP_INQ's report of what is left),
/// writes one send, or a copy into `unsent_` when the kernel takes less.
struct TlsSocketBio {
  static int read(BIO* bio, char* out, int size) {
    return static_cast<TlsSocket*>(BIO_get_data(bio))->bio_read(out, size);
  }
  static int write(BIO* bio, const char* in, int size) {
    return static_cast<TlsSocket*>(BIO_get_data(bio))->bio_write(in, size);
  }
  static long ctrl(BIO*, int cmd, long, void*) {
    // OpenSSL flushes after each flight of the handshake; every byte is sent or kept already.
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
  }
  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }

  static const BIO_METHOD* method() {
    static BIO_METHOD* const m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bgproxy socket");
      BIO_meth_set_read(made, &read);
      BIO_meth_set_write(made, &write);
      BIO_meth_set_ctrl(made, &ctrl);
      BIO_meth_set_create(made, &create);
      return made;
    }();
    return m;
  }
};

namespace detail {
TlsOpBase::TlsOpBase(TlsSocket& socket, Kind kind, func_type complete)
    : reactor_op(boost::system::error_code(), &TlsOpBase::do_perform, complete), socket_(&socket), kind_(kind) {}

TlsOpBase::status TlsOpBase::do_perform(reactor_op* base) {
  auto* o = static_cast<TlsOpBase*>(base);
  return o->socket_->perform(*o);
}

void TlsOpBase::take_next_turn() { socket_->resume(*this); }
}  // namespace detail

TlsSocket::TlsSocket(Socket socket, boost::asio::ssl::context& context)
    : socket_(std::move(socket)), ssl_(SSL_new(context.native_handle())) {
  if (ssl_ == nullptr) throw boost::system::system_error(boost::asio::error::no_memory, "SSL_new");
  // A write OpenSSL could not finish never happens here (unsent_ takes the rest), but a record
  // may end mid-way through the caller's buffers; idle connections hand their buffers back.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  // Read what the kernel has (up to a record's buffer) in one call, not a header then a body.
  SSL_set_read_ahead(ssl_, 1);
  BIO* bio = BIO_new(TlsSocketBio::method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  socket_.reports_queue();
}

TlsSocket::TlsSocket(TlsSocket&& other) noexcept
    : socket_(std::move(other.socket_)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      unsent_(std::move(other.unsent_)),
      drained_(other.drained_),
      eof_(other.eof_),
      io_errno_(other.io_errno_) {
  if (ssl_ != nullptr) BIO_set_data(SSL_get_rbio(ssl_), this);
}

TlsSocket& TlsSocket::operator=(TlsSocket&& other) noexcept {
  if (this == &other) return *this;
  if (ssl_ != nullptr) SSL_free(ssl_);
  socket_ = std::move(other.socket_);
  ssl_ = std::exchange(other.ssl_, nullptr);
  unsent_ = std::move(other.unsent_);
  drained_ = other.drained_;
  eof_ = other.eof_;
  io_errno_ = other.io_errno_;
  if (ssl_ != nullptr) BIO_set_data(SSL_get_rbio(ssl_), this);
  return *this;
}

TlsSocket::~TlsSocket() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void TlsSocket::set_role(handshake_type type) noexcept {
  if (type == server) SSL_set_accept_state(ssl_);
  else SSL_set_connect_state(ssl_);
}

void TlsSocket::send_close_notify() noexcept {
  // Whatever this says (sent, or an error the operation meets again) the operation finds out.
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

int TlsSocket::bio_read(char* out, int size) {
  BIO* bio = SSL_get_rbio(ssl_);
  BIO_clear_retry_flags(bio);
  iovec iov{out, static_cast<std::size_t>(size)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  for (;;) {
    const ssize_t n = ::recvmsg(socket_.native_handle(), &msg, 0);
    if (n > 0) {
      drained_ = detail::left_in_queue(msg) == 0;
      return static_cast<int>(n);
    }
    if (n == 0) {
      eof_ = true;
      drained_ = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      drained_ = true;
      BIO_set_retry_read(bio);
      return -1;
    }
    io_errno_ = errno;
    return -1;
  }
}

int TlsSocket::bio_write(const char* in, int size) {
  const auto len = static_cast<std::size_t>(size);
  // Behind bytes that wait, a record waits too: the stream's order is the records' order.
  if (!unsent_.empty()) {
    unsent_.append(in, len);
    return size;
  }
  for (;;) {
    const ssize_t n = ::send(socket_.native_handle(), in, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      if (static_cast<std::size_t>(n) < len) unsent_.append(in + n, len - static_cast<std::size_t>(n));
      return size;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      unsent_.append(in, len);
      return size;
    }
    io_errno_ = errno;
    return -1;
  }
}

bool TlsSocket::send_unsent(boost::system::error_code& ec) {
  while (!unsent_.empty()) {
    const ssize_t n = ::send(socket_.native_handle(), unsent_.data(), unsent_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      unsent_.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    ec = boost::system::error_code(errno, boost::asio::error::get_system_category());
    unsent_.clear();
    return true;
  }
  // A burst that filled the send buffer should not pin its copy for the connection's life.
  if (unsent_.capacity() > 4096) std::string().swap(unsent_);
  return true;
}

boost::system::error_code TlsSocket::error_of(int result) const {
  const int ssl_error = SSL_get_error(ssl_, result);
  const unsigned long err = ERR_get_error();
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return boost::asio::error::eof;
  // The peer's FIN without its close_notify.
  if (eof_ && (ssl_error == SSL_ERROR_SYSCALL ||
               (ssl_error == SSL_ERROR_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING)))
    return boost::asio::ssl::error::stream_truncated;
  if (ssl_error == SSL_ERROR_SYSCALL) {
    if (io_errno_ != 0) return {io_errno_, boost::asio::error::get_system_category()};
    if (err == 0) return boost::asio::ssl::error::unspecified_system_error;
  }
  return {static_cast<int>(err), boost::asio::error::get_ssl_category()};
}

detail::TlsOpBase::status TlsSocket::perform(detail::TlsOpBase& op) {
  using Op = detail::TlsOpBase;
  if (op.flushing_) {
    boost::system::error_code ec;
    if (!send_unsent(ec)) return Op::not_done;
    op.flushing_ = false;
    if (ec) {
      // A read keeps the bytes it got; the next read meets the error.
      if (!(op.kind_ == Op::Kind::read && op.bytes_transferred_ != 0)) op.ec_ = ec;
      return Op::done;
    }
    if (op.again_after_flush_) op.next_ = Op::Next::again;
    return Op::done;
  }
  // A write goes behind the records that wait (of an earlier write, or of a read's answer to a
  // key update): it waits for the socket with them.
  if (op.kind_ == Op::Kind::write && !unsent_.empty()) {
    boost::system::error_code ec;
    if (!send_unsent(ec)) return Op::not_done;
    if (ec) {
      op.ec_ = ec;
      return Op::done;
    }
  }
  const auto status = step(op);
  if (status == Op::not_done && unsent_.empty()) return Op::not_done;
  if (!unsent_.empty()) {
    // What the step wrote goes out before it completes or waits for the peer again.
    op.next_ = Op::Next::flush;
    op.again_after_flush_ = status == Op::not_done;
    return Op::done;
  }
  return status;
}

detail::TlsOpBase::status TlsSocket::step(detail::TlsOpBase& op) {
  using Op = detail::TlsOpBase;
  op.ec_ = {};
  bool sent_close_notify = false;
  int short_reads = 0;
  for (;;) {
    drained_ = false;
    io_errno_ = 0;
    ERR_clear_error();
    int result = 0;
    switch (op.kind_) {
      case Op::Kind::handshake:
        result = SSL_do_handshake(ssl_);
        if (result == 1) return Op::done;
        break;
      case Op::Kind::read: {
        if (op.read_into_.size() == 0) return Op::done;
        const int size = static_cast<int>(std::min<std::size_t>(op.read_into_.size(), 1U << 30));
        result = SSL_read(ssl_, op.read_into_.data(), size);
        if (result > 0) {
          op.bytes_transferred_ = static_cast<std::size_t>(result);
          // Nothing left in the kernel or in OpenSSL: the next read waits for epoll.
          return drained_ && SSL_has_pending(ssl_) == 0 ? Op::done_and_exhausted : Op::done;
        }
        break;
      }
      case Op::Kind::write: {
        // One record per SSL_write: small buffers are gathered into it, a large one written
        // from where it lies. The operation writes all it was given, or as far as the kernel
        // takes it (the rest of a record waits in unsent_).
        thread_local std::array<char, 16384> gathered;
        std::size_t at = op.bytes_transferred_;
        std::size_t i = 0;
        while (i < op.write_count_ && at >= op.write_from_[i].size()) at -= op.write_from_[i++].size();
        if (i == op.write_count_) return Op::done;
        const auto& piece = op.write_from_[i];
        const char* data = static_cast<const char*>(piece.data()) + at;
        std::size_t len = piece.size() - at;
        if (len < gathered.size() && i + 1 < op.write_count_) {
          std::memcpy(gathered.data(), data, len);
          for (std::size_t j = i + 1; j < op.write_count_ && len < gathered.size(); ++j) {
            const auto take = std::min(op.write_from_[j].size(), gathered.size() - len);
            std::memcpy(gathered.data() + len, op.write_from_[j].data(), take);
            len += take;
          }
          data = gathered.data();
        }
        result = SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(len, 1U << 30)));
        if (result > 0) {
          op.bytes_transferred_ += static_cast<std::size_t>(result);
          if (!unsent_.empty()) return Op::done;  // the kernel is full: this much, once it is sent
          continue;
        }
        if (op.bytes_transferred_ != 0) return Op::done;  // the error shows at the next write
        break;
      }
      case Op::Kind::shutdown:
        result = SSL_shutdown(ssl_);
        if (result == 1) return Op::done;
        if (result == 0 && !sent_close_notify) {
          sent_close_notify = true;  // now wait for the peer's
          continue;
        }
        break;
    }
    const int ssl_error = SSL_get_error(ssl_, result);
    if (ssl_error == SSL_ERROR_WANT_READ) {
      // Only a read that found the kernel's queue empty may wait for epoll (edge-triggered: no
      // event comes for bytes already there); otherwise OpenSSL made progress: go on.
      if (drained_) return Op::not_done;
      if (++short_reads < max_short_reads) continue;
      op.ec_ = boost::asio::ssl::error::unexpected_result;
      return Op::done;
    }
    op.ec_ = error_of(result);
    return Op::done;
  }
}

void TlsSocket::resume(detail::TlsOpBase& op) {
  using Op = detail::TlsOpBase;
  namespace adetail = boost::asio::detail;
  const bool flush = op.next_ == Op::Next::flush;
  op.next_ = Op::Next::deliver;
  op.flushing_ = flush;
  if (!flush) op.again_after_flush_ = false;
  const bool write_side = flush || op.kind_ == Op::Kind::write;
  socket_.start_reactor_op(write_side ? adetail::reactor::write_op : adetail::reactor::read_op, &op, true);
}

}  // namespace bgproxy::proxy
