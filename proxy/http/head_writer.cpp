#include "proxy/http/head_writer.hpp"

#include <charconv>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

#include "proxy/http/hop_by_hop.hpp"

namespace bgproxy::proxy {

namespace http = boost::beast::http;

namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_number(std::string& out, unsigned long long v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/// Writes the one framing field of a message, where its first Content-Length stood or at the end.
class FramingWriter {
 public:
  explicit FramingWriter(BodyHeader body) : body_(body) {}

  /// At a Content-Length field of the original message: our own length replaces the first one,
  /// later ones (identical duplicates; differing ones were refused by the parser) go.
  void at_content_length(std::string& out) {
    if (written_ || body_.chunked || !body_.content_length) return;
    write(out);
  }
  /// At the end of the head: chunked framing, or a length whose field we have not met.
  void at_end(std::string& out) {
    if (!written_ && (body_.chunked || body_.content_length)) write(out);
  }

 private:
  void write(std::string& out) {
    written_ = true;
    if (body_.chunked) {
      out.append("Transfer-Encoding: chunked\r\n");
      return;
    }
    out.append("Content-Length: ");
    append_number(out, *body_.content_length);
    out.append("\r\n");
  }

  BodyHeader body_;
  bool written_ = false;
};

/// Appends forwarded fields, copying runs of them straight from the bytes they were parsed from:
/// a field received as exactly "Name: value\r\n" right after the previous one extends the run, so
/// a head of unchanged fields costs a few copies rather than four appends per field. Anything
/// else is written as "Name: value\r\n" from the views: the same bytes, one field at a time.
class FieldCopier {
 public:
  explicit FieldCopier(std::string& out) : out_(out) {}
  FieldCopier(const FieldCopier&) = delete;
  FieldCopier& operator=(const FieldCopier&) = delete;

  void copy(const HeadField& f) {
    const auto name = f.name_string();
    const auto value = f.value();
    const char* line = name.data();
    const char* name_end = line + name.size();
    // The views point into one parsed head, which ends in a blank line, so the two bytes after
    // a value are there to look at; a value at the very end of other storage fails the check
    // at its terminator or before.
    const bool verbatim = name_end[0] == ':' && name_end[1] == ' ' && value.data() == name_end + 2 &&
                          value.data()[value.size()] == '\r' && value.data()[value.size() + 1] == '\n';
    if (!verbatim) {
      flush();
      append_field(out_, name, value);
      return;
    }
    if (line != run_end_) {
      flush();
      run_begin_ = line;
    }
    run_end_ = value.data() + value.size() + 2;
  }
  /// Where the proxy writes what it adds itself, after the run so far. The caller flushes the
  /// last run before writing anything more.
  std::string& out() {
    flush();
    return out_;
  }
  void flush() {
    if (run_begin_ != nullptr) out_.append(run_begin_, static_cast<std::size_t>(run_end_ - run_begin_));
    run_begin_ = run_end_ = nullptr;
  }

 private:
  std::string& out_;
  const char* run_begin_ = nullptr;
  const char* run_end_ = nullptr;
};

/// Fields the proxy writes itself or that must not cross it: hop-by-hop ones (Upgrade too,
/// unless `keep_upgrade`) and those the Connection field lines nominate.
bool skip_field(const HeadField& f, const NominatedFields& nominated, bool keep_upgrade) {
  const auto name = f.name();
  if (keep_upgrade && name == http::field::upgrade) return false;
  if (is_hop_by_hop(name)) return true;
  return nominated.contains(f.name_string());
}

}  // namespace

void write_request_head(std::string& out, const RequestHead& req, std::string_view target,
                        const ForwardedFor& fwd, const RequestForwarding& how) {
  out.append(req.method_string());
  out.push_back(' ');
  out.append(target);
  out.append(" HTTP/1.1\r\n");

  const NominatedFields nominated(req, how.sticky);
  FramingWriter framing(how.body);
  std::string_view xff, via;
  bool multiple_xff = false, multiple_via = false;
  FieldCopier fields(out);
  for (const auto& f : req) {
    if (f.name() == http::field::content_length) {
      framing.at_content_length(fields.out());
      continue;
    }
    if (skip_field(f, nominated, false)) continue;
    const auto name = f.name_string();
    if (boost::beast::iequals(name, "X-Forwarded-For")) {
      multiple_xff = multiple_xff || !xff.empty();
      if (!multiple_xff) xff = f.value();
      continue;
    }
    switch (f.name()) {
      case http::field::host:
        if (!fwd.authority.empty()) continue;  // replaced by the absolute-form target's authority
        break;
      case http::field::via:
        multiple_via = multiple_via || !via.empty();
        if (!multiple_via) via = f.value();
        continue;
      case http::field::expect:
        continue;
      default:
        break;
    }
    if (boost::beast::iequals(name, "X-Forwarded-Proto") || boost::beast::iequals(name, "X-Forwarded-Host")) continue;
    if (!how.strip.empty() && boost::beast::iequals(name, how.strip)) continue;
    fields.copy(f);
  }
  fields.flush();

  if (!fwd.authority.empty()) append_field(out, "Host", fwd.authority);
  // Several X-Forwarded-For (or Via) fields are one comma-separated list (RFC 9110 §5.3).
  out.append("X-Forwarded-For: ");
  if (multiple_xff) {
    for (const auto& f : req) {
      if (!boost::beast::iequals(f.name_string(), "X-Forwarded-For")) continue;
      out.append(f.value());
      out.append(", ");
    }
  } else if (!xff.empty()) {
    out.append(xff);
    out.append(", ");
  }
  out.append(fwd.client_ip);
  out.append("\r\n");
  append_field(out, "X-Forwarded-Proto", fwd.proto);
  if (!fwd.host.empty()) append_field(out, "X-Forwarded-Host", fwd.host);

  out.append("Via: ");
  if (multiple_via) {
    for (const auto& f : req) {
      if (f.name() != http::field::via) continue;
      out.append(f.value());
      out.append(", ");
    }
  } else if (!via.empty()) {
    out.append(via);
    out.append(", ");
  }
  out.append(req.version() == 10 ? "1.0 bgproxy\r\n" : "1.1 bgproxy\r\n");

  framing.at_end(out);
  // Only a websocket upgrade crosses (the caller checked the token): the client's Upgrade list
  // is not copied, so an `h2c` beside it cannot reach the backend.
  if (how.upgrade) out.append("Upgrade: websocket\r\nConnection: upgrade\r\n");
  out.append("\r\n");
}

std::string_view write_response_head(std::string& out, const ResponseHead& res, const ResponseFraming& framing,
                                     std::string_view extra) {
  out.append("HTTP/1.1 ");
  append_number(out, res.result_int());
  out.push_back(' ');
  // Beast reports a missing reason as its own placeholder for unknown codes;
  // an empty reason-phrase is valid (RFC 9112 §4), a made-up one is not.
  const auto reason = res.reason();
  if (reason != "<unknown-status>") out.append(reason);
  out.append("\r\n");

  const NominatedFields nominated(res, {});
  FramingWriter body(framing.body);
  std::string_view keep_alive;
  FieldCopier fields(out);
  for (const auto& f : res) {
    if (f.name() == http::field::content_length) {
      body.at_content_length(fields.out());
      continue;
    }
    if (f.name() == http::field::keep_alive) keep_alive = f.value();
    if (skip_field(f, nominated, framing.upgrade)) continue;
    fields.copy(f);
  }
  fields.flush();
  body.at_end(out);
  if (framing.upgrade) {
    out.append("Connection: upgrade\r\n");
  } else if (!framing.keep_alive) {
    out.append("Connection: close\r\n");
  } else if (framing.client_http10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append(extra);
  out.append("\r\n");
  return keep_alive;
}

unsigned write_grpc_error(std::string& out, unsigned status, bool keep_alive) {
  const unsigned code = status == 504 ? 4 : 14;
  out.append("HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\ngrpc-status: ");
  append_number(out, code);
  out.append("\r\ngrpc-message: bgproxy: ");
  out.append(status == 504 ? "upstream timeout" : status == 503 ? "no server available" : "upstream connection failed");
  out.append(keep_alive ? "\r\nContent-Length: 0\r\n\r\n" : "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  return code;
}

void write_local_response(std::string& out, unsigned status, bool keep_alive, std::string_view extra) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  out.append("HTTP/1.1 ");
  append_number(out, status);
  out.push_back(' ');
  out.append(reason);
  out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  append_number(out, reason.size() + 1);
  out.append(keep_alive ? "\r\n" : "\r\nConnection: close\r\n");
  out.append(extra);
  out.append("\r\n");
  out.append(reason);
  out.push_back('\n');
}

}  // namespace bgproxy::proxy
