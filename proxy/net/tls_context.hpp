#pragma once
/// TLS termination settings of one listener: an OpenSSL context per
/// certificate/key pair, chosen per handshake by SNI (exact name, then
/// `*.suffix` wildcard, else the first pair). TLS 1.2 and 1.3 only, ECDHE with
/// AES-GCM/CHACHA20 for 1.2, server cipher preference, ALPN from the listener's `protocols`
/// (`h2`, `http/1.1`: the first of them the client offers, in the listener's order).
///
/// Session resumption: a server-side session cache per context (TLS 1.2 session
/// ids; every handshake starts on the default context, whose cache serves all SNI
/// names) and session tickets (1.2 and 1.3). Tickets are sealed (AES-256-CBC +
/// HMAC-SHA256, the RFC 5077 layout) with a process-wide key ring of random keys:
/// a new key every hour, the two before it still accepted (tickets renewed), so
/// tickets survive a certificate reload and a stolen key exposes at most ~3 hours.
/// Keys live in memory only: a restart, or several bgproxy processes, do not share them.
///
/// A TlsContexts is immutable once loaded and shared by every worker; a
/// TlsListener holds the current one and a reload replaces it for new
/// handshakes while open connections keep theirs.
/// Thread: any (the loader runs on the control thread).

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/error_code.hpp>

#include "bgproxy/config/config.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "bgproxy/tls/upstream_tls.hpp"

struct ssl_st;
struct ssl_ctx_st;

namespace boost::asio::ssl {
class context;
}

namespace bgproxy::proxy {

/// A certificate or key that cannot be used; what() is "tls: cannot load PATH: REASON".
using tls::TlsLoadError;

class TlsContexts {
 public:
  /// Loads every pair (the first is the default for clients without or with an unknown SNI).
  /// Refuses a missing or unreadable file, a PEM that does not parse, a key that does not
  /// match its certificate, and a certificate that is expired or not yet valid.
  /// @throws TlsLoadError naming the file and the reason
  /// @param protocols what ALPN offers, in order of preference (h2 and http/1.1 count)
  static std::shared_ptr<const TlsContexts> load(const std::vector<config::TlsCertificate>& pairs,
                                                 const std::vector<config::Protocol>& protocols = {
                                                     config::Protocol::http1});

  ~TlsContexts();
  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  /// The context every handshake starts on; the SNI callback may move it to another.
  boost::asio::ssl::context& default_context() const noexcept { return *entries_.front().context; }
  /// "a.test,b.test *.w.test": the names of each pair, for logs.
  std::string describe() const;

 private:
  struct Entry {
    std::unique_ptr<boost::asio::ssl::context> context;
    std::vector<std::string> names;  ///< lower case, from subjectAltName DNS entries, else the CN
  };

  TlsContexts() = default;
  /// @return the context serving `host`, or nullptr for the default
  ssl_ctx_st* select(std::string_view host) const noexcept;
  static int on_servername(ssl_st* ssl, int* alert, void* arg);
  static int on_alpn(ssl_st* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                     unsigned inlen, void* arg);

  std::vector<Entry> entries_;
  std::vector<std::string> alpn_;  ///< protocol ids, most preferred first
};

using TlsContextsPtr = std::shared_ptr<const TlsContexts>;

/// The current contexts of one TLS listener, shared by all its workers' acceptors.
/// Read once per accepted connection, replaced by a reload.
class TlsListener {
 public:
  explicit TlsListener(TlsContextsPtr c) : current_(std::move(c)) {}
  TlsContextsPtr current() const noexcept { return current_.load(std::memory_order_acquire); }
  void replace(TlsContextsPtr c) noexcept { current_.store(std::move(c), std::memory_order_release); }

 private:
  std::atomic<TlsContextsPtr> current_;
};

/// Why a server handshake failed, for bgproxy_tls_handshake_failures_total{reason}.
/// (Timeouts are decided by the session, which knows its deadline fired.)
stats::TlsFailureReason classify_handshake_error(const boost::system::error_code& ec) noexcept;

}  // namespace bgproxy::proxy
