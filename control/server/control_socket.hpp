#pragma once
/// The control socket's transport (README "bgctl walkthrough"): a Unix stream socket at
/// control.socket carrying one JSON object per line each way, a line at most 64 KiB.
/// ControlSocket binds it (or serves on the one a binary upgrade inherited) and accepts; each
/// Connection frames lines, hands them to its Handler one at a time, writes the answers and
/// closes idle clients. What a line means is the handler's business (ControlServer).
/// Thread: control.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "control/core/command.hpp"
#include "control/core/controller.hpp"

namespace bgproxy::control {

/// One control-socket client: reads a line, hands it over, writes the answer, reads the next.
/// Owned by its pending operations (shared_from_this).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;

  /// Who hears what connections read.
  class Handler {
   public:
    /// A command line from `peer` (newline and a trailing CR removed); `reply(answer)` writes the
    /// answer, then the connection reads the next line.
    virtual void on_line(std::string line, const Peer& peer, std::function<void(std::string)> reply) = 0;
    /// {"command":"takeover","pid":N}: a new bgproxy asks for the listening sockets. The
    /// connection reads nothing more by itself; the handler writes on it, awaits a line or closes it.
    virtual void on_takeover(std::shared_ptr<Connection> c, std::int32_t pid) = 0;
    /// {"command":"events"}: the client subscribes to the change feed. Answered off the command
    /// queue: a subscriber waits for nobody. The handler calls stream() or writes a refusal.
    virtual void on_events(std::shared_ptr<Connection> c, const Command& command) = 0;

   protected:
    ~Handler() = default;
  };

  /// @param handler must outlive every connection that may still read
  Connection(Socket socket, Handler& handler);

  void start() { do_read(); }
  void close();

  /// Who is on the other end (SO_PEERCRED at accept).
  const Peer& peer() const noexcept { return peer_; }
  int native_handle() { return socket_.native_handle(); }

  /// Writes `reply` and a newline; then reads the next line, or (`then_close`) half-closes,
  /// drains what the client still sends for a moment, and closes.
  void write(std::string reply, bool then_close);

  /// What a streaming connection writes next: lines ending with '\n', and whether they are the last.
  struct Chunk {
    std::string lines;
    bool last = false;
  };
  /// Turns the connection into a one-way stream (the change feed): writes `first`, then whatever
  /// `pull` gives each time wake() says there is more, one write at a time, never waiting on the
  /// client; reads only to notice it leaving. `closed` runs once when the connection ends.
  void stream(std::string first, std::function<Chunk()> pull, std::function<void()> closed);
  /// A streaming connection has more to write (or its last line: see finish_soon()).
  void wake();
  /// The stream ends: whatever cannot be written within a moment (a client that stopped
  /// reading) is given up and the connection closed.
  void finish_soon();

  /// Waits up to `limit` for one more line: `done(true, line)`, or `done(false, "")` on EOF,
  /// error or time-out; the connection is closed once `done` returns.
  void await_line(std::chrono::steady_clock::duration limit, std::function<void(bool, std::string)> done);

 private:
  void arm(std::chrono::steady_clock::duration d);
  void do_read();
  void on_read(boost::system::error_code ec, std::size_t n);
  void linger();
  void linger_more();
  void watch_for_eof();
  void write_chunk(std::string lines, bool last);

  Socket socket_;
  boost::asio::steady_timer timer_;  ///< the deadline of whatever the connection waits for
  Handler& handler_;
  Peer peer_;
  std::string buffer_;  ///< read, not yet handed over (a client may send several lines at once)
  std::string out_;     ///< the answer being written
  std::array<char, 4096> scratch_{};
  // A streaming connection (the change feed).
  std::function<Chunk()> pull_;
  std::function<void()> closed_;
  bool streaming_ = false;
  bool writing_ = false;
};

/// The listening side: binds control.socket, accepts, and keeps track of the connections so that
/// close() can end them.
class ControlSocket {
 public:
  /// @param handler hears every connection's lines; must outlive them
  ControlSocket(boost::asio::io_context& ioc, Connection::Handler& handler);
  ~ControlSocket();

  /// Listens at `path` with permissions `mode`, creating its directory. A socket file left there
  /// by a previous run is replaced, unless something still answers on it.
  /// @return empty on success, else why not
  std::string listen(const std::string& path, unsigned mode);
  /// Serves on the listening socket a binary upgrade inherited, bound at `path`; takes `fd`
  /// on success only.
  /// @return empty on success, else why not
  std::string adopt(int fd, const std::string& path);
  void start_accepting();

  /// Accepts no more; connections carry on (answers being written finish).
  void stop_accepting();
  /// Accepts no more, closes every connection and removes the socket file.
  void close();

  /// The path the socket is bound at (a reload does not move it).
  const std::string& path() const noexcept { return path_; }
  /// The listening socket, to pass to a new process.
  int native_handle() { return acceptor_.native_handle(); }

 private:
  void do_accept();

  boost::asio::io_context& ioc_;
  Connection::Handler& handler_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
  std::vector<std::weak_ptr<Connection>> connections_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bgproxy::control
