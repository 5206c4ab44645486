#include "proxy/net/tls_context.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>

namespace bgproxy::proxy {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2: forward secrecy and AEAD only, strongest first (Mozilla "intermediate").
// TLS 1.3 keeps OpenSSL's suites: AES-256-GCM, CHACHA20-POLY1305, AES-128-GCM.
constexpr const char* cipher_list_12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr unsigned char session_id_context[] = "bgproxy";
constexpr long session_cache_size = 20480;

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
  ERR_clear_error();
  throw TlsLoadError("tls: cannot load " + path + ": " + reason);
}

/// The last OpenSSL error as text ("no start line", "key values mismatch").
std::string openssl_reason(const char* fallback) {
  const unsigned long e = ERR_peek_last_error();
  const char* r = e != 0 ? ERR_reason_error_string(e) : nullptr;
  return r != nullptr ? std::string(r) : std::string(fallback);
}

/// A clear "No such file or directory" rather than OpenSSL's "system lib".
void require_readable(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail(path, std::strerror(errno));
  std::fclose(f);
}

std::string asn1_time_text(const ASN1_TIME* t) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "?";
  std::string out = "?";
  if (ASN1_TIME_print(bio, t) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.assign(data, static_cast<std::size_t>(n));
  }
  BIO_free(bio);
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

/// The DNS names of subjectAltName; the subject CN when there are none.
std::vector<std::string> certificate_names(X509* x) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName));
      const auto len = ASN1_STRING_length(g->d.dNSName);
      if (len > 0) names.push_back(lower(std::string_view(data, static_cast<std::size_t>(len))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (!names.empty()) return names;
  X509_NAME* subject = X509_get_subject_name(x);
  const int idx = subject != nullptr ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
  if (idx >= 0) {
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
    if (len > 0) names.push_back(lower(std::string_view(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len))));
    OPENSSL_free(utf8);
  }
  return names;
}

/// Session-ticket keys shared by every context of the process, so a certificate reload does
/// not invalidate tickets, rotated lazily: a new key seals tickets every `rotation`, and
/// tickets sealed by the `kept - 1` previous keys are still accepted; every ticket opened is
/// replaced by a new one.
class TicketKeyRing {
 public:
  static TicketKeyRing& instance() {
    static TicketKeyRing ring;
    return ring;
  }

  /// SSL_CTX_set_tlsext_ticket_key_evp_cb: 1 = ok, 2 = ok and issue a new ticket, 0 = unknown key
  /// (full handshake), -1 = error.
  static int callback(SSL*, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
                      int encrypt) {
    return instance().seal_or_open(name, iv, cipher, mac, encrypt != 0);
  }

 private:
  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes{};
    std::array<unsigned char, 32> hmac{};
    std::chrono::steady_clock::time_point created{};
    bool valid = false;
  };
  static constexpr std::chrono::hours rotation{1};
  static constexpr std::size_t kept = 3;

  int seal_or_open(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, bool encrypt) {
    Key key;
    {
      std::lock_guard lock(mutex_);  // once per ticket issued or presented, never per request
      const auto now = std::chrono::steady_clock::now();
      if (!keys_[0].valid || now - keys_[0].created >= rotation) {
        for (std::size_t i = kept - 1; i > 0; --i) keys_[i] = keys_[i - 1];
        Key fresh;
        if (RAND_bytes(fresh.name.data(), 16) != 1 || RAND_bytes(fresh.aes.data(), 32) != 1 ||
            RAND_bytes(fresh.hmac.data(), 32) != 1) {
          return -1;
        }
        fresh.created = now;
        fresh.valid = true;
        keys_[0] = fresh;
      }
      if (encrypt) {
        key = keys_[0];
      } else {
        std::size_t i = 0;
        while (i < kept && !(keys_[i].valid && std::memcmp(keys_[i].name.data(), name, 16) == 0)) ++i;
        if (i == kept) return 0;
        key = keys_[i];
      }
    }
    if (encrypt) {
      std::memcpy(name, key.name.data(), 16);
      if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
      if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
    } else if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) {
      return -1;
    }
    char digest[] = "sha256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
                           OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
    // Opening: always ask for a renewal. A TLS 1.3 client uses a ticket once (RFC 8446 C.4,
    // as OpenSSL clients do), and OpenSSL sends a new one after a resumed handshake only when
    // renewal is asked for: without it every other connection of a client is a full handshake.
    return encrypt ? 1 : 2;
  }

  std::mutex mutex_;
  std::array<Key, kept> keys_{};
};

std::unique_ptr<ssl::context> make_context(const config::TlsCertificate& pair, std::vector<std::string>& names) {
  ERR_clear_error();
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(h, cipher_list_12) != 1) fail(pair.certificate, "cipher list refused");
  SSL_CTX_set_session_id_context(h, session_id_context, sizeof session_id_context - 1);
  SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(h, session_cache_size);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(h, &TicketKeyRing::callback);

  require_readable(pair.certificate);
  if (SSL_CTX_use_certificate_chain_file(h, pair.certificate.c_str()) != 1) {
    fail(pair.certificate, openssl_reason("not a PEM certificate"));
  }
  X509* leaf = SSL_CTX_get0_certificate(h);
  if (leaf == nullptr) fail(pair.certificate, "no certificate");
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
    fail(pair.certificate, "certificate expired (notAfter " + asn1_time_text(X509_get0_notAfter(leaf)) + ")");
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
    fail(pair.certificate,
         "certificate not yet valid (notBefore " + asn1_time_text(X509_get0_notBefore(leaf)) + ")");
  }
  require_readable(pair.private_key);
  if (SSL_CTX_use_PrivateKey_file(h, pair.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    fail(pair.private_key, openssl_reason("not a PEM private key"));
  }
  if (SSL_CTX_check_private_key(h) != 1) {
    fail(pair.private_key, "private key does not match certificate " + pair.certificate);
  }
  names = certificate_names(leaf);
  ERR_clear_error();
  return ctx;
}

}  // namespace

std::shared_ptr<const TlsContexts> TlsContexts::load(const std::vector<config::TlsCertificate>& pairs,
                                                     const std::vector<config::Protocol>& protocols) {
  if (pairs.empty()) throw TlsLoadError("tls: no certificate configured");
  std::shared_ptr<TlsContexts> out(new TlsContexts());
  for (const auto p : protocols) {
    if (p == config::Protocol::h2) out->alpn_.emplace_back("h2");
    if (p == config::Protocol::http1) out->alpn_.emplace_back("http/1.1");
  }
  out->entries_.reserve(pairs.size());
  for (const auto& pair : pairs) {
    Entry e;
    e.context = make_context(pair, e.names);
    out->entries_.push_back(std::move(e));
  }
  // Every handshake starts on the default context, whose callback picks by SNI.
  for (auto& e : out->entries_) {
    SSL_CTX_set_tlsext_servername_callback(e.context->native_handle(), &TlsContexts::on_servername);
    SSL_CTX_set_tlsext_servername_arg(e.context->native_handle(), out.get());
    SSL_CTX_set_alpn_select_cb(e.context->native_handle(), &TlsContexts::on_alpn, out.get());
  }
  return out;
}

TlsContexts::~TlsContexts() = default;

std::string TlsContexts::describe() const {
  std::string out;
  for (const auto& e : entries_) {
    if (!out.empty()) out += ' ';
    std::string names;
    for (const auto& n : e.names) names += (names.empty() ? "" : ",") + n;
    out += names.empty() ? "-" : names;
  }
  return out;
}

/// ALPN by the listener's preference: its first protocol the client offers. A client offering
/// none of them gets no ALPN (and will speak HTTP/1.1 or fail); one offering none is fine.
int TlsContexts::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                         unsigned inlen, void* arg) {
  const auto& self = *static_cast<const TlsContexts*>(arg);
  for (const auto& wanted : self.alpn_) {
    for (unsigned i = 0; i < inlen;) {
      const unsigned len = in[i];
      if (i + 1 + len > inlen) break;
      if (len == wanted.size() && std::memcmp(in + i + 1, wanted.data(), len) == 0) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

SSL_CTX* TlsContexts::select(std::string_view host) const noexcept {
  if (host.size() > 253) return nullptr;
  char buf[254];
  std::size_t n = 0;
  for (const char c : host) buf[n++] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (n != 0 && buf[n - 1] == '.') --n;
  const std::string_view name(buf, n);
  for (const auto& e : entries_) {
    for (const auto& candidate : e.names) {
      if (candidate == name) return e.context->native_handle();
    }
  }
  // A wildcard covers exactly one leftmost label: *.w.test serves x.w.test, not w.test or a.x.w.test.
  const auto dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return nullptr;
  const auto suffix = name.substr(dot);
  for (const auto& e : entries_) {
    for (const auto& candidate : e.names) {
      if (candidate.size() > 2 && candidate[0] == '*' && candidate[1] == '.' &&
          std::string_view(candidate).substr(1) == suffix) {
        return e.context->native_handle();
      }
    }
  }
  return nullptr;
}

int TlsContexts::on_servername(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  const auto* self = static_cast<const TlsContexts*>(arg);
  SSL_CTX* chosen = self->select(name);
  if (chosen != nullptr && chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;  // unknown names get the default certificate
}

stats::TlsFailureReason classify_handshake_error(const boost::system::error_code& ec) noexcept {
  using R = stats::TlsFailureReason;
  namespace asio_error = boost::asio::error;
  if (ec == asio_error::eof || ec == ssl::error::stream_truncated || ec == asio_error::connection_reset ||
      ec == asio_error::broken_pipe || ec == asio_error::connection_aborted) {
    return R::eof;
  }
  if (ec.category() == asio_error::get_ssl_category()) {
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_NO_SHARED_CIPHER:
        return R::no_shared_cipher;
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_VERSION_TOO_LOW:
      case SSL_R_HTTP_REQUEST:
      case SSL_R_HTTPS_PROXY_REQUEST:
      case SSL_R_UNKNOWN_PROTOCOL:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_RECORD_LENGTH_MISMATCH:
        return R::protocol;
      default:
        break;
    }
  }
  return R::handshake;
}

}  // namespace bgproxy::proxy
