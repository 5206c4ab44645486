// The YAML front end of the configuration: walks the document with yaml-cpp, turns
// each node into the plain structs of config.hpp, and reports the first problem as
// "FILE:LINE: field: problem". Every yaml-cpp exception stops at parse(); nothing
// else in bgproxy sees yaml-cpp.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <stdexcept>

#include "bgproxy/weights/basis_points.hpp"
#include "detail.hpp"

namespace bgproxy::config {
namespace {

using detail::LineMap;

struct Failure {
  std::string message;
};

/// One map entry in document order, with its key node for the key's own line.
struct Entry {
  std::string name;
  YAML::Node key;
  YAML::Node value;
};

class Fields {
public:
  explicit Fields(std::vector<Entry> entries) : entries_(std::move(entries)) {}
  const Entry* find(std::string_view name) const {
    for (const auto& e : entries_)
      if (e.name == name) return &e;
    return nullptr;
  }
  bool empty() const noexcept { return entries_.empty(); }
  const std::vector<Entry>& entries() const noexcept { return entries_; }

private:
  std::vector<Entry> entries_;
};

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string index(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

using detail::quoted;

const char* kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

bool is_off(std::string_view s) { return s == "off" || s == "false" || s == "no" || s == "Off" || s == "OFF"; }

class Parser {
public:
  Parser(std::string_view file, LineMap& lines) : file_(file), lines_(lines) {}

  Config run(const YAML::Node& root);

private:
  // -- error reporting ------------------------------------------------------------
  static int line_of(const YAML::Node& n) {
    const auto m = n.Mark();
    return m.is_null() ? 0 : m.line + 1;
  }
  [[noreturn]] void fail_at(int line, const std::string& path, std::string_view problem) const {
    throw Failure{detail::make_message(file_, line, path, problem)};
  }
  // A map entry's line is its key's line (noted by map()): a block value starts on a
  // later line, and a null value's mark points at whatever token follows it.
  [[noreturn]] void fail(const YAML::Node& n, const std::string& path, std::string_view problem) const {
    const auto it = lines_.find(path);
    fail_at(it != lines_.end() ? it->second : line_of(n), path, problem);
  }
  void note(const YAML::Node& n, const std::string& path) { lines_.emplace(path, line_of(n)); }

  // -- typed readers ---------------------------------------------------------------
  Fields map(const YAML::Node& n, const std::string& path, std::initializer_list<std::string_view> allowed);
  std::vector<YAML::Node> list(const YAML::Node& n, const std::string& path);
  std::string scalar(const YAML::Node& n, const std::string& path);
  std::string text(const YAML::Node& n, const std::string& path);  // non-empty
  bool boolean(const YAML::Node& n, const std::string& path);
  std::uint64_t integer(const YAML::Node& n, const std::string& path, std::uint64_t max);
  double number(const YAML::Node& n, const std::string& path);
  Duration duration(const YAML::Node& n, const std::string& path);
  Endpoint endpoint(const YAML::Node& n, const std::string& path, bool allow_port_zero);
  std::uint32_t percent(const YAML::Node& n, const std::string& path);
  std::string token(const YAML::Node& n, const std::string& path, std::string_view what);

  // -- sections ---------------------------------------------------------------------
  std::vector<Listener> listeners(const YAML::Node& n, const std::string& path);
  TlsCertificate tls_certificate(const YAML::Node& n, const std::string& path);
  void admin(const YAML::Node& n, const std::string& path, Admin& out);
  void control(const YAML::Node& n, const std::string& path, Control& out);
  unsigned threads(const YAML::Node& n, const std::string& path);
  void limits(const YAML::Node& n, const std::string& path, Limits& out);
  std::vector<Protocol> protocols(const YAML::Node& n, const std::string& path, bool tls);
  void http2(const YAML::Node& n, const std::string& path, Http2& out);
  void timeouts(const YAML::Node& n, const std::string& path, Timeouts& out);
  AccessLog access_log(const YAML::Node& n, const std::string& path);
  void cluster(const YAML::Node& n, const std::string& path, Cluster& out);
  void notify(const YAML::Node& n, const std::string& path, Notify& out);
  Webhook webhook(const YAML::Node& n, const std::string& path);
  void etcd(const YAML::Node& n, const std::string& path, Cluster& out);
  EtcdEndpoint etcd_endpoint(const YAML::Node& n, const std::string& path);
  Service service(const YAML::Node& n, const std::string& path);
  void match(const YAML::Node& n, const std::string& path, Match& out);
  void pool(const YAML::Node& n, const std::string& path, Pool& out);
  void upstream_tls(const YAML::Node& n, const std::string& path, UpstreamTls& out);
  Sticky sticky(const YAML::Node& n, const std::string& path);
  void override_color(const YAML::Node& n, const std::string& path, Override& out);
  void health_check(const YAML::Node& n, const std::string& path, HealthCheck& out);
  void watchdog(const YAML::Node& n, const std::string& path, Watchdog& out);
  void canary(const YAML::Node& n, const std::string& path, Canary& out);
  void shadow(const YAML::Node& n, const std::string& path, Shadow& out);
  void shadow_compare(const YAML::Node& n, const std::string& path, ShadowCompare& out);

  std::string file_;
  LineMap& lines_;
};

Fields Parser::map(const YAML::Node& n, const std::string& path, std::initializer_list<std::string_view> allowed) {
  note(n, path);
  std::vector<Entry> entries;
  if (n.IsNull()) return Fields(std::move(entries));  // `key:` with nothing = all defaults
  if (!n.IsMap()) fail(n, path, std::string("expected a map, got ") + kind_name(n));
  for (auto it = n.begin(); it != n.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) fail_at(line_of(key), path, "keys must be plain strings");
    std::string name = key.Scalar();
    const std::string field = join(path, name);
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
      fail_at(line_of(key), field, "unknown key");
    for (const auto& e : entries)
      if (e.name == name) fail_at(line_of(key), field, "duplicate key");
    lines_[field] = line_of(key);
    entries.push_back(Entry{std::move(name), key, it->second});
  }
  return Fields(std::move(entries));
}

std::vector<YAML::Node> Parser::list(const YAML::Node& n, const std::string& path) {
  note(n, path);
  if (n.IsNull()) return {};
  if (!n.IsSequence()) fail(n, path, std::string("expected a list, got ") + kind_name(n));
  std::vector<YAML::Node> out;
  for (auto it = n.begin(); it != n.end(); ++it) out.push_back(*it);
  return out;
}

std::string Parser::scalar(const YAML::Node& n, const std::string& path) {
  note(n, path);
  if (n.IsNull()) fail(n, path, "missing value");
  if (!n.IsScalar()) fail(n, path, std::string("expected a single value, got ") + kind_name(n));
  return n.Scalar();
}

std::string Parser::text(const YAML::Node& n, const std::string& path) {
  std::string s = scalar(n, path);
  if (s.empty()) fail(n, path, "must not be empty");
  return s;
}

bool Parser::boolean(const YAML::Node& n, const std::string& path) {
  const std::string s = scalar(n, path);
  if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "off") return false;
  fail(n, path, "expected true or false, got " + quoted(s));
}

std::uint64_t Parser::integer(const YAML::Node& n, const std::string& path, std::uint64_t max) {
  const std::string s = scalar(n, path);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  const bool digits = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) fail(n, path, "expected a non-negative integer, got " + quoted(s));
  if (ec != std::errc{} || end != s.data() + s.size() || v > max)
    fail(n, path, "value " + s + " is too large (max " + std::to_string(max) + ")");
  return v;
}

double Parser::number(const YAML::Node& n, const std::string& path) {
  const std::string s = scalar(n, path);
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v))
    fail(n, path, "expected a number, got " + quoted(s));
  return v;
}

Duration Parser::duration(const YAML::Node& n, const std::string& path) {
  const std::string s = scalar(n, path);
  if (auto d = parse_duration(s)) return *d;
  if (detail::looks_like_bare_number(s)) fail(n, path, "duration needs a unit (ms, s, m or h): " + quoted(s));
  fail(n, path, "invalid duration " + quoted(s) + " (expected e.g. 500ms, 2s, 1.5s, 5m, 1h)");
}

Endpoint Parser::endpoint(const YAML::Node& n, const std::string& path, bool allow_port_zero) {
  const std::string s = scalar(n, path);
  if (auto e = detail::parse_endpoint(s, allow_port_zero)) return *e;
  // Tell a bad port apart from a bad shape: the same text with port 1 would parse.
  const auto colon = s.rfind(':');
  const std::string port = colon == std::string::npos ? std::string() : s.substr(colon + 1);
  if (!port.empty() && std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      detail::parse_endpoint(s.substr(0, colon) + ":1", false))
    fail(n, path, "invalid address " + quoted(s) + (allow_port_zero ? " (port must be 0-65535)" : " (port must be 1-65535)"));
  fail(n, path, "invalid address " + quoted(s) + " (expected host:port)");
}

std::uint32_t Parser::percent(const YAML::Node& n, const std::string& path) {
  const std::string s = scalar(n, path);
  if (auto bp = weights::parse_percent(s)) return *bp;
  fail(n, path, "invalid percentage " + quoted(s) + " (expected 0-100 with at most two decimals)");
}

std::string Parser::token(const YAML::Node& n, const std::string& path, std::string_view what) {
  std::string s = scalar(n, path);
  if (!detail::is_token(s)) fail(n, path, "invalid " + std::string(what) + " " + quoted(s));
  return s;
}

// ---------------------------------------------------------------------------------

Config Parser::run(const YAML::Node& root) {
  Config cfg;
  cfg.source_path = file_;
  if (!root.IsNull() && !root.IsMap())
    fail_at(std::max(line_of(root), 1), "", std::string("expected a map at the top level, got ") + kind_name(root));
  const Fields f = map(root, "", {"listen", "admin", "control", "state_file", "threads", "limits", "timeouts",
                                  "http2", "access_log", "cluster", "notify", "services"});
  lines_[""] = std::max(line_of(root), 1);
  if (auto e = f.find("listen")) cfg.listen = listeners(e->value, "listen");
  if (auto e = f.find("admin")) admin(e->value, "admin", cfg.admin);
  if (auto e = f.find("control")) control(e->value, "control", cfg.control);
  if (auto e = f.find("state_file")) cfg.state_file = text(e->value, "state_file");
  if (auto e = f.find("threads")) cfg.threads = threads(e->value, "threads");
  if (auto e = f.find("limits")) limits(e->value, "limits", cfg.limits);
  if (auto e = f.find("timeouts")) timeouts(e->value, "timeouts", cfg.timeouts);
  if (auto e = f.find("http2")) http2(e->value, "http2", cfg.http2);
  if (auto e = f.find("access_log")) cfg.access_log = access_log(e->value, "access_log");
  if (auto e = f.find("cluster")) cluster(e->value, "cluster", cfg.cluster);
  if (auto e = f.find("notify")) notify(e->value, "notify", cfg.notify);

  const Entry* svcs = f.find("services");
  if (svcs == nullptr) fail_at(lines_[""], "services", "at least one service is required");
  const auto items = list(svcs->value, "services");
  if (items.empty()) fail(svcs->value, "services", "at least one service is required");
  for (std::size_t i = 0; i < items.size(); ++i) cfg.services.push_back(service(items[i], index("services", i)));
  return cfg;
}

std::vector<Listener> Parser::listeners(const YAML::Node& n, const std::string& path) {
  const auto items = list(n, path);
  if (items.empty()) fail(n, path, "at least one listener is required");
  std::vector<Listener> out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string p = index(path, i);
    const Fields f = map(items[i], p, {"address", "tls", "protocols"});
    Listener l;
    const Entry* addr = f.find("address");
    if (addr == nullptr) fail(items[i], join(p, "address"), "required field is missing");
    l.address = endpoint(addr->value, join(p, "address"), true);
    if (const Entry* tls = f.find("tls")) {
      const std::string tp = join(p, "tls");
      if (tls->value.IsSequence()) {
        const auto certs = list(tls->value, tp);
        if (certs.empty()) fail(tls->value, tp, "at least one certificate is required");
        for (std::size_t c = 0; c < certs.size(); ++c) l.tls.push_back(tls_certificate(certs[c], index(tp, c)));
      } else {
        l.tls.push_back(tls_certificate(tls->value, tp));
      }
    }
    if (const Entry* e = f.find("protocols")) {
      l.protocols = protocols(e->value, join(p, "protocols"), !l.tls.empty());
    } else if (!l.tls.empty()) {
      l.protocols = {Protocol::h2, Protocol::http1};
    }
    out.push_back(std::move(l));
  }
  return out;
}

std::vector<Protocol> Parser::protocols(const YAML::Node& n, const std::string& path, bool tls) {
  const auto items = list(n, path);
  if (items.empty()) fail(n, path, "at least one protocol is required");
  std::vector<Protocol> out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto p = index(path, i);
    const auto name = text(items[i], p);
    Protocol proto;
    if (name == "http/1.1") proto = Protocol::http1;
    else if (name == "h2" && tls) proto = Protocol::h2;
    else if (name == "h2c" && !tls) proto = Protocol::h2c;
    else if (name == "h2") fail(items[i], p, "h2 needs tls on this listener (h2c is HTTP/2 with prior knowledge on a plain one)");
    else if (name == "h2c") fail(items[i], p, "h2c is for plain listeners; a TLS listener offers h2");
    else fail(items[i], p, "unknown protocol " + quoted(name) + " (known: http/1.1, h2, h2c)");
    if (std::find(out.begin(), out.end(), proto) != out.end()) fail(items[i], p, "duplicate protocol " + quoted(name));
    out.push_back(proto);
  }
  return out;
}

void Parser::http2(const YAML::Node& n, const std::string& path, Http2& out) {
  const Fields f = map(n, path, {"max_concurrent_streams", "initial_stream_window", "initial_connection_window",
                                 "max_header_list_bytes"});
  // RFC 9113 §6.5.2 and §6.9.1: windows up to 2^31-1; at least one stream, 1 KiB of headers.
  constexpr std::uint64_t window_max = (std::uint64_t{1} << 31) - 1;
  const auto bounded = [&](const Entry* e, std::uint64_t min, std::uint64_t max) {
    const auto v = integer(e->value, join(path, e->name), max);
    if (v < min) fail(e->value, join(path, e->name), "must be at least " + std::to_string(min));
    return static_cast<std::uint32_t>(v);
  };
  if (auto e = f.find("max_concurrent_streams")) out.max_concurrent_streams = bounded(e, 1, 100000);
  if (auto e = f.find("initial_stream_window")) out.initial_stream_window = bounded(e, 1024, window_max);
  if (auto e = f.find("initial_connection_window")) out.initial_connection_window = bounded(e, 65535, window_max);
  if (auto e = f.find("max_header_list_bytes")) out.max_header_list_bytes = bounded(e, 1024, 1u << 24);
}

TlsCertificate Parser::tls_certificate(const YAML::Node& n, const std::string& path) {
  if (n.IsNull()) fail(n, path, "expected a map with certificate and private_key");
  const Fields f = map(n, path, {"certificate", "private_key"});
  TlsCertificate t;
  const Entry* cert = f.find("certificate");
  if (cert == nullptr) fail(n, join(path, "certificate"), "required field is missing");
  const Entry* key = f.find("private_key");
  if (key == nullptr) fail(n, join(path, "private_key"), "required field is missing");
  t.certificate = text(cert->value, join(path, "certificate"));
  t.private_key = text(key->value, join(path, "private_key"));
  return t;
}

void Parser::admin(const YAML::Node& n, const std::string& path, Admin& out) {
  const Fields f = map(n, path, {"address"});
  if (auto e = f.find("address")) out.address = endpoint(e->value, join(path, "address"), true);
}

void Parser::control(const YAML::Node& n, const std::string& path, Control& out) {
  const Fields f = map(n, path, {"socket", "mode"});
  if (auto e = f.find("socket")) {
    out.socket = text(e->value, join(path, "socket"));
    // sockaddr_un::sun_path holds 108 bytes including the terminating NUL.
    if (out.socket.size() > 107) fail(e->value, join(path, "socket"), "path too long for a unix socket (max 107 bytes)");
  }
  if (auto e = f.find("mode")) {
    const std::string s = scalar(e->value, join(path, "mode"));
    const auto m = detail::parse_mode(s);
    if (!m) fail(e->value, join(path, "mode"), "invalid mode " + quoted(s) + " (expected octal like \"0660\")");
    out.mode = *m;
  }
}

unsigned Parser::threads(const YAML::Node& n, const std::string& path) {
  const std::string s = scalar(n, path);
  if (s == "auto") return 0;
  const bool digits = !s.empty() && s.size() <= 9 &&
                      std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoul(s) == 0) fail(n, path, "expected auto or a positive integer, got " + quoted(s));
  return static_cast<unsigned>(std::stoul(s));
}

void Parser::limits(const YAML::Node& n, const std::string& path, Limits& out) {
  const Fields f = map(n, path, {"max_connections", "max_header_bytes", "max_body_bytes"});
  constexpr auto max = std::uint64_t{1} << 62;
  if (auto e = f.find("max_connections")) out.max_connections = integer(e->value, join(path, e->name), max);
  if (auto e = f.find("max_header_bytes")) out.max_header_bytes = integer(e->value, join(path, e->name), max);
  if (auto e = f.find("max_body_bytes")) out.max_body_bytes = integer(e->value, join(path, e->name), max);
}

void Parser::timeouts(const YAML::Node& n, const std::string& path, Timeouts& out) {
  const Fields f = map(n, path, {"client_header", "client_idle", "upstream_connect", "upstream_response",
                                        "upstream_idle", "shutdown"});
  if (auto e = f.find("client_header")) out.client_header = duration(e->value, join(path, e->name));
  if (auto e = f.find("client_idle")) out.client_idle = duration(e->value, join(path, e->name));
  if (auto e = f.find("upstream_connect")) out.upstream_connect = duration(e->value, join(path, e->name));
  if (auto e = f.find("upstream_response")) out.upstream_response = duration(e->value, join(path, e->name));
  if (auto e = f.find("upstream_idle")) out.upstream_idle = duration(e->value, join(path, e->name));
  if (auto e = f.find("shutdown")) out.shutdown = duration(e->value, join(path, e->name));
}

AccessLog Parser::access_log(const YAML::Node& n, const std::string& path) {
  const std::string s = scalar(n, path);
  AccessLog a;
  if (s == "stdout") return a;
  if (is_off(s)) {
    a.kind = AccessLog::Kind::off;
    return a;
  }
  if (!s.empty() && s.front() == '/') {
    a.kind = AccessLog::Kind::file;
    a.path = s;
    return a;
  }
  fail(n, path, "expected stdout, off or an absolute path, got " + quoted(s));
}

void Parser::cluster(const YAML::Node& n, const std::string& path, Cluster& out) {
  const Fields f = map(n, path, {"etcd", "instance"});
  out.enabled = true;
  if (auto e = f.find("etcd")) etcd(e->value, join(path, e->name), out);
  if (auto e = f.find("instance")) {
    out.instance = text(e->value, join(path, e->name));
    // It names etcd keys (PREFIX/members/INSTANCE) and log lines: no '/', no spaces.
    const bool ok = out.instance.size() <= 128 && std::all_of(out.instance.begin(), out.instance.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
    });
    if (!ok) fail(e->value, join(path, e->name), "letters, digits, '-', '_', '.' and ':' only, got " + quoted(out.instance));
  }
}

void Parser::notify(const YAML::Node& n, const std::string& path, Notify& out) {
  const Fields f = map(n, path, {"webhooks"});
  if (auto e = f.find("webhooks")) {
    const auto items = list(e->value, join(path, e->name));
    for (std::size_t i = 0; i < items.size(); ++i) {
      out.webhooks.push_back(webhook(items[i], index(join(path, e->name), i)));
    }
  }
}

Webhook Parser::webhook(const YAML::Node& n, const std::string& path) {
  const Fields f = map(n, path, {"url", "events", "format", "timeout"});
  Webhook w;
  const Entry* url = f.find("url");
  if (url == nullptr) fail(n, join(path, "url"), "required (http://HOST:PORT/PATH)");
  w.url = text(url->value, join(path, url->name));
  // Plain HTTP only: receivers sit next to the proxy or behind a relay that adds TLS.
  constexpr std::string_view scheme = "http://";
  std::string_view rest = w.url;
  const auto bad_url = [&] {
    fail(url->value, join(path, url->name), "expected http://HOST[:PORT]/PATH, got " + quoted(w.url));
  };
  if (!rest.starts_with(scheme)) bad_url();
  rest.remove_prefix(scheme.size());
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  w.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const bool has_port = authority.rfind(':') != std::string_view::npos && authority.back() != ']';
  const auto parsed = detail::parse_endpoint(has_port ? std::string(authority) : std::string(authority) + ":80", false);
  if (authority.empty() || !parsed || w.target.find_first_of(" \t\r\n#") != std::string::npos) bad_url();
  w.host = parsed->host;
  w.port = parsed->port;
  if (auto e = f.find("events")) {
    static constexpr std::string_view kinds[] = {"switch", "canary_step", "verdict", "rollback",
                                                 "promoted", "health", "release"};
    const auto items = list(e->value, join(path, e->name));
    if (items.empty()) fail(e->value, join(path, e->name), "at least one event is required");
    w.events.clear();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto item_path = index(join(path, e->name), i);
      std::string kind = scalar(items[i], item_path);
      if (std::find(std::begin(kinds), std::end(kinds), kind) == std::end(kinds)) {
        fail(items[i], item_path, "expected one of switch, canary_step, verdict, rollback, promoted, health, "
                                  "release, got " + quoted(kind));
      }
      w.events.push_back(std::move(kind));
    }
  }
  if (auto e = f.find("format")) {
    const std::string format = scalar(e->value, join(path, e->name));
    if (format == "json") w.format = Webhook::Format::json;
    else if (format == "slack") w.format = Webhook::Format::slack;
    else fail(e->value, join(path, e->name), "expected json or slack, got " + quoted(format));
  }
  if (auto e = f.find("timeout")) {
    w.timeout = duration(e->value, join(path, e->name));
    if (w.timeout.count() <= 0) fail(e->value, join(path, e->name), "must be greater than 0");
  }
  return w;
}

void Parser::etcd(const YAML::Node& n, const std::string& path, Cluster& out) {
  const Fields f = map(n, path, {"endpoints", "prefix", "username", "password_file", "tls", "timeout", "lease_ttl"});
  if (auto e = f.find("endpoints")) {
    const auto items = list(e->value, join(path, e->name));
    if (items.empty()) fail(e->value, join(path, e->name), "at least one endpoint is required");
    out.endpoints.clear();
    for (std::size_t i = 0; i < items.size(); ++i) {
      out.endpoints.push_back(etcd_endpoint(items[i], index(join(path, e->name), i)));
    }
  }
  if (auto e = f.find("prefix")) {
    out.prefix = text(e->value, join(path, e->name));
    if (out.prefix.front() != '/' || out.prefix.back() == '/' || out.prefix.find("//") != std::string::npos) {
      fail(e->value, join(path, e->name), "must start with '/' and not end with one, got " + quoted(out.prefix));
    }
  }
  const Entry* user = f.find("username");
  const Entry* password = f.find("password_file");
  if (user != nullptr) out.username = scalar(user->value, join(path, user->name));
  if (password != nullptr) out.password_file = scalar(password->value, join(path, password->name));
  if (!out.username.empty() && out.password_file.empty()) fail(n, join(path, "password_file"), "required with username");
  if (out.username.empty() && !out.password_file.empty()) fail(n, join(path, "username"), "required with password_file");
  if (auto e = f.find("tls")) {
    const auto tls_path = join(path, e->name);
    const Fields t = map(e->value, tls_path, {"ca", "certificate", "private_key"});
    if (auto c = t.find("ca")) out.ca = scalar(c->value, join(tls_path, c->name));
    if (auto c = t.find("certificate")) out.certificate = scalar(c->value, join(tls_path, c->name));
    if (auto c = t.find("private_key")) out.private_key = scalar(c->value, join(tls_path, c->name));
    if (!out.certificate.empty() && out.private_key.empty()) fail(e->value, join(tls_path, "private_key"), "required with certificate");
    if (out.certificate.empty() && !out.private_key.empty()) fail(e->value, join(tls_path, "certificate"), "required with private_key");
  }
  if (auto e = f.find("timeout")) out.timeout = duration(e->value, join(path, e->name));
  if (auto e = f.find("lease_ttl")) out.lease_ttl = duration(e->value, join(path, e->name));
}

EtcdEndpoint Parser::etcd_endpoint(const YAML::Node& n, const std::string& path) {
  EtcdEndpoint ep;
  ep.text = text(n, path);
  std::string_view rest = ep.text;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
    ep.tls = true;
  } else {
    fail(n, path, "expected http://HOST:PORT or https://HOST:PORT, got " + quoted(ep.text));
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  // HOST[:PORT], with an IPv6 HOST in brackets; parse_endpoint wants the port, so supply etcd's.
  const bool has_port = rest.rfind(':') != std::string_view::npos && rest.back() != ']';
  const auto parsed = detail::parse_endpoint(has_port ? std::string(rest) : std::string(rest) + ":2379", false);
  if (!parsed || rest.find('/') != std::string_view::npos) {
    fail(n, path, "expected http://HOST:PORT or https://HOST:PORT, got " + quoted(ep.text));
  }
  ep.host = parsed->host;
  ep.port = parsed->port;
  return ep;
}

Service Parser::service(const YAML::Node& n, const std::string& path) {
  if (n.IsNull()) fail(n, path, "expected a map, got nothing");
  const Fields f = map(n, path, {"name", "match", "blue", "green", "initial", "sticky", "override",
                                 "expose_color_header", "grpc", "health_check", "watchdog", "canary", "shadow"});
  Service s;
  s.override_color.allow_from = {*parse_cidr("127.0.0.0/8"), *parse_cidr("::1/128")};

  const Entry* name = f.find("name");
  if (name == nullptr) fail(n, join(path, "name"), "required field is missing");
  s.name = text(name->value, join(path, "name"));
  const bool name_ok = s.name.size() <= 64 && std::all_of(s.name.begin(), s.name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
  if (!name_ok)
    fail(name->value, join(path, "name"),
         "invalid name " + quoted(s.name) + " (letters, digits, '-', '_', '.'; at most 64)");

  if (auto e = f.find("match")) match(e->value, join(path, "match"), s.match);
  if (auto e = f.find("blue")) pool(e->value, join(path, "blue"), s.blue);
  if (auto e = f.find("green")) pool(e->value, join(path, "green"), s.green);
  if (auto e = f.find("initial")) {
    const std::string p = join(path, "initial");
    const Fields init = map(e->value, p, {"green"});
    if (auto g = init.find("green")) s.initial_green_bp = percent(g->value, join(p, "green"));
  }
  if (auto e = f.find("sticky")) s.sticky = sticky(e->value, join(path, "sticky"));
  if (auto e = f.find("override")) override_color(e->value, join(path, "override"), s.override_color);
  if (auto e = f.find("expose_color_header")) s.expose_color_header = boolean(e->value, join(path, e->name));
  if (auto e = f.find("grpc")) s.grpc = boolean(e->value, join(path, e->name));
  if (auto e = f.find("health_check")) health_check(e->value, join(path, "health_check"), s.health_check);
  if (auto e = f.find("watchdog")) watchdog(e->value, join(path, "watchdog"), s.watchdog);
  if (auto e = f.find("canary")) canary(e->value, join(path, "canary"), s.canary);
  if (auto e = f.find("shadow")) shadow(e->value, join(path, "shadow"), s.shadow);
  return s;
}

void Parser::match(const YAML::Node& n, const std::string& path, Match& out) {
  const Fields f = map(n, path, {"host", "path_prefix"});
  if (auto e = f.find("host")) out.host = text(e->value, join(path, "host"));
  if (auto e = f.find("path_prefix")) out.path_prefix = text(e->value, join(path, "path_prefix"));
}

void Parser::pool(const YAML::Node& n, const std::string& path, Pool& out) {
  const Fields f = map(n, path, {"servers", "tls", "protocol"});
  if (auto e = f.find("servers")) {
    const std::string p = join(path, "servers");
    const auto items = list(e->value, p);
    for (std::size_t i = 0; i < items.size(); ++i) out.servers.push_back(endpoint(items[i], index(p, i), false));
  }
  if (auto e = f.find("tls")) upstream_tls(e->value, join(path, "tls"), out.tls);
  if (auto e = f.find("protocol")) {
    const auto p = join(path, e->name);
    const auto name = text(e->value, p);
    if (name == "http/1.1") out.protocol = Protocol::http1;
    else if (name == "h2c") out.protocol = Protocol::h2c;
    else if (name == "h2") out.protocol = Protocol::h2;
    else fail(e->value, p, "unknown protocol " + quoted(name) + " (known: http/1.1, h2c, h2)");
    if (out.protocol == Protocol::h2 && !out.tls.enabled) fail(e->value, p, "h2 needs tls (h2c is HTTP/2 in clear)");
    if (out.protocol == Protocol::h2c && out.tls.enabled) fail(e->value, p, "h2c is HTTP/2 in clear; with tls use h2");
  }
}

// `tls: off` (or no `tls`) is plain TCP; a map enables TLS unless it says `enabled: false`.
void Parser::upstream_tls(const YAML::Node& n, const std::string& path, UpstreamTls& out) {
  if (n.IsScalar()) {
    note(n, path);
    if (is_off(n.Scalar())) return;
    fail(n, path, "expected off or a map with enabled, verify, ca, sni, client_certificate, client_key, got " +
                      quoted(n.Scalar()));
  }
  const Fields f = map(n, path, {"enabled", "verify", "ca", "sni", "client_certificate", "client_key"});
  out.enabled = true;
  if (auto e = f.find("enabled")) out.enabled = boolean(e->value, join(path, e->name));
  if (auto e = f.find("verify")) out.verify = boolean(e->value, join(path, e->name));
  if (auto e = f.find("ca")) out.ca = text(e->value, join(path, e->name));
  if (auto e = f.find("sni")) {
    out.sni = text(e->value, join(path, e->name));
    const bool name_ok = out.sni.size() <= 253 && std::all_of(out.sni.begin(), out.sni.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
    if (!name_ok) fail(e->value, join(path, e->name), "invalid host name " + quoted(out.sni));
  }
  const Entry* cert = f.find("client_certificate");
  const Entry* key = f.find("client_key");
  if (cert != nullptr) out.client_certificate = text(cert->value, join(path, cert->name));
  if (key != nullptr) out.client_key = text(key->value, join(path, key->name));
  if (cert != nullptr && key == nullptr) fail(n, join(path, "client_key"), "required with client_certificate");
  if (key != nullptr && cert == nullptr) fail(n, join(path, "client_certificate"), "required with client_key");
}

Sticky Parser::sticky(const YAML::Node& n, const std::string& path) {
  Sticky s;
  if (n.IsScalar()) {
    note(n, path);
    if (n.Scalar() == "none" || is_off(n.Scalar())) return Sticky{Sticky::Kind::none, ""};
    fail(n, path, "expected none or a map with one of cookie, header, source_ip, got " + quoted(n.Scalar()));
  }
  const Fields f = map(n, path, {"cookie", "header", "source_ip"});
  if (f.entries().size() != 1) fail(n, path, "expected exactly one of cookie, header, source_ip");
  const Entry& e = f.entries().front();
  const std::string p = join(path, e.name);
  if (e.name == "cookie") return Sticky{Sticky::Kind::cookie, token(e.value, p, "cookie name")};
  if (e.name == "header") return Sticky{Sticky::Kind::header, token(e.value, p, "header name")};
  if (boolean(e.value, p)) return Sticky{Sticky::Kind::source_ip, ""};
  return Sticky{Sticky::Kind::none, ""};
}

void Parser::override_color(const YAML::Node& n, const std::string& path, Override& out) {
  if (n.IsScalar()) {
    note(n, path);
    if (is_off(n.Scalar())) {
      out.enabled = false;
      return;
    }
    fail(n, path, "expected off or a map with header and allow_from, got " + quoted(n.Scalar()));
  }
  const Fields f = map(n, path, {"header", "allow_from"});
  if (auto e = f.find("header")) out.header = token(e->value, join(path, "header"), "header name");
  if (auto e = f.find("allow_from")) {
    const std::string p = join(path, "allow_from");
    out.allow_from.clear();
    const auto items = list(e->value, p);
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string ip = index(p, i);
      const std::string s = scalar(items[i], ip);
      auto c = parse_cidr(s);
      if (!c) fail(items[i], ip, "invalid network " + quoted(s) + " (expected e.g. 10.0.0.0/8 or ::1/128)");
      out.allow_from.push_back(std::move(*c));
    }
  }
}

void Parser::health_check(const YAML::Node& n, const std::string& path, HealthCheck& out) {
  if (n.IsScalar()) {
    note(n, path);
    if (is_off(n.Scalar())) {
      out.enabled = false;
      return;
    }
    fail(n, path, "expected off or a map, got " + quoted(n.Scalar()));
  }
  const Fields f = map(n, path, {"protocol", "service", "path", "interval", "timeout", "rise", "fall", "expect_status",
                                 "passive_failures"});
  constexpr std::uint64_t max = 1'000'000;
  if (auto e = f.find("protocol")) {
    const auto p = join(path, e->name);
    const auto name = text(e->value, p);
    if (name == "http") out.protocol = HealthProtocol::http;
    else if (name == "grpc") out.protocol = HealthProtocol::grpc;
    else fail(e->value, p, "unknown protocol " + quoted(name) + " (known: http, grpc)");
  }
  // A field the chosen protocol never reads is refused rather than silently ignored: whoever wrote
  // it expects it to matter.
  if (out.protocol == HealthProtocol::grpc) {
    for (const char* http_only : {"path", "expect_status"})
      if (auto e = f.find(http_only))
        fail(e->value, join(path, e->name),
             "is for protocol: http (a grpc check calls /grpc.health.v1.Health/Check and needs HTTP 200 and SERVING)");
  }
  if (auto e = f.find("service")) {
    const auto p = join(path, e->name);
    if (out.protocol != HealthProtocol::grpc)
      fail(e->value, p, "is the gRPC health service name: only with protocol: grpc");
    out.service = scalar(e->value, p);
    const bool ok = out.service.size() <= 256 && std::none_of(out.service.begin(), out.service.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
    if (!ok)
      fail(e->value, p, "invalid service name " + quoted(out.service) + " (at most 256 bytes, no control characters)");
  }
  if (auto e = f.find("path")) out.path = text(e->value, join(path, "path"));
  if (auto e = f.find("interval")) out.interval = duration(e->value, join(path, e->name));
  if (auto e = f.find("timeout")) out.timeout = duration(e->value, join(path, e->name));
  if (auto e = f.find("rise")) out.rise = static_cast<unsigned>(integer(e->value, join(path, e->name), max));
  if (auto e = f.find("fall")) out.fall = static_cast<unsigned>(integer(e->value, join(path, e->name), max));
  if (auto e = f.find("passive_failures"))
    out.passive_failures = static_cast<unsigned>(integer(e->value, join(path, e->name), max));
  if (auto e = f.find("expect_status")) {
    const std::string p = join(path, "expect_status");
    const std::string s = scalar(e->value, p);
    auto ranges = detail::parse_status_list(s);
    if (!ranges) fail(e->value, p, "invalid status list " + quoted(s) + " (expected e.g. \"200-399\" or \"200,204\")");
    out.expect_status = std::move(*ranges);
  }
}

void Parser::watchdog(const YAML::Node& n, const std::string& path, Watchdog& out) {
  if (n.IsScalar()) {
    note(n, path);
    if (is_off(n.Scalar())) {
      out.enabled = false;
      return;
    }
    fail(n, path, "expected off or a map, got " + quoted(n.Scalar()));
  }
  const Fields f = map(n, path, {"enabled", "dry_run", "window", "min_requests", "max_error_rate", "max_p95",
                                 "bake_time", "max_error_rate_delta", "max_p95_ratio", "method", "alpha",
                                 "max_shadow_mismatch_rate"});
  if (auto e = f.find("enabled")) out.enabled = boolean(e->value, join(path, e->name));
  if (auto e = f.find("method")) {
    const std::string p = join(path, e->name);
    const std::string m = scalar(e->value, p);
    if (m == "threshold") out.method = WatchdogMethod::threshold;
    else if (m == "sequential") out.method = WatchdogMethod::sequential;
    else fail(e->value, p, "expected threshold or sequential, got " + quoted(m));
  }
  if (auto e = f.find("alpha")) out.alpha = number(e->value, join(path, e->name));
  if (auto e = f.find("dry_run")) out.dry_run = boolean(e->value, join(path, e->name));
  if (auto e = f.find("window")) out.window = duration(e->value, join(path, e->name));
  if (auto e = f.find("min_requests")) out.min_requests = integer(e->value, join(path, e->name), std::uint64_t{1} << 62);
  if (auto e = f.find("max_error_rate")) out.max_error_rate = number(e->value, join(path, e->name));
  if (auto e = f.find("max_p95")) out.max_p95 = duration(e->value, join(path, e->name));
  if (auto e = f.find("bake_time")) out.bake_time = duration(e->value, join(path, e->name));
  if (auto e = f.find("max_error_rate_delta")) out.max_error_rate_delta = number(e->value, join(path, e->name));
  if (auto e = f.find("max_p95_ratio")) out.max_p95_ratio = number(e->value, join(path, e->name));
  if (auto e = f.find("max_shadow_mismatch_rate"))
    out.max_shadow_mismatch_rate = number(e->value, join(path, e->name));
}

void Parser::shadow(const YAML::Node& n, const std::string& path, Shadow& out) {
  const Fields f = map(n, path, {"percent", "methods", "max_body_bytes", "max_in_flight", "compare"});
  if (auto e = f.find("percent")) out.percent_bp = percent(e->value, join(path, e->name));
  if (auto e = f.find("methods")) {
    const std::string p = join(path, e->name);
    out.methods.clear();
    const auto items = list(e->value, p);
    for (std::size_t i = 0; i < items.size(); ++i) {
      std::string m = token(items[i], index(p, i), "method");
      // Methods are case-sensitive (RFC 9110 §9.1): "get" would never match a GET.
      if (std::any_of(m.begin(), m.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
        fail(items[i], index(p, i), "methods are case-sensitive, expected upper case: " + quoted(m));
      out.methods.push_back(std::move(m));
    }
  }
  if (auto e = f.find("max_body_bytes"))
    out.max_body_bytes = integer(e->value, join(path, e->name), std::uint64_t{16} << 20);
  if (auto e = f.find("max_in_flight"))
    out.max_in_flight = static_cast<std::uint32_t>(integer(e->value, join(path, e->name), 65536));
  if (auto e = f.find("compare")) shadow_compare(e->value, join(path, e->name), out.compare);
}

void Parser::shadow_compare(const YAML::Node& n, const std::string& path, ShadowCompare& out) {
  const Fields f = map(n, path, {"status", "headers", "body", "ignore"});
  if (auto e = f.find("status")) out.status = boolean(e->value, join(path, e->name));
  if (auto e = f.find("body")) out.body = boolean(e->value, join(path, e->name));
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return s;
  };
  if (auto e = f.find("headers")) {
    const std::string p = join(path, e->name);
    out.headers.clear();
    const auto items = list(e->value, p);
    for (std::size_t i = 0; i < items.size(); ++i) out.headers.push_back(lower(token(items[i], index(p, i), "header name")));
  }
  if (auto e = f.find("ignore")) {
    const std::string p = join(path, e->name);
    const auto items = list(e->value, p);
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string item_path = index(p, i);
      const std::string s = scalar(items[i], item_path);
      if (!s.empty() && s[0] == '$') {
        // A JSON path as compare() writes them: "$", then ".key" or "[N]" / "[*]" steps.
        if (s.size() > 1 && s[1] != '.' && s[1] != '[')
          fail(items[i], item_path, "invalid JSON path " + quoted(s) + " (expected e.g. $.timestamp, $.items[*].id)");
        out.ignore.push_back(s);
      } else {
        out.ignore.push_back(lower(token(items[i], item_path, "header name or JSON path")));
      }
    }
  }
}

void Parser::canary(const YAML::Node& n, const std::string& path, Canary& out) {
  const Fields f = map(n, path, {"steps", "interval"});
  if (auto e = f.find("steps")) {
    const std::string p = join(path, "steps");
    out.steps_bp.clear();
    const auto items = list(e->value, p);
    for (std::size_t i = 0; i < items.size(); ++i) out.steps_bp.push_back(percent(items[i], index(p, i)));
  }
  if (auto e = f.find("interval")) out.interval = duration(e->value, join(path, e->name));
}

}  // namespace

void throw_exception_from_error(const ConfigError& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

boost::system::result<Config, ConfigError> parse(std::string_view text, std::string_view file_name) {
  LineMap lines;
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    Config cfg = Parser(file_name, lines).run(root);
    if (auto err = detail::validate(cfg, lines, file_name)) return *err;
    return cfg;
  } catch (const Failure& f) {
    return ConfigError{f.message};
  } catch (const YAML::Exception& e) {
    // ParserException (syntax) and anything else yaml-cpp throws (depth guard, bad
    // conversions) end here with the position it reported.
    const int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    return ConfigError{detail::make_message(file_name, line, "yaml", e.msg)};
  } catch (const std::exception& e) {
    return ConfigError{detail::make_message(file_name, 0, "yaml", e.what())};
  }
}

boost::system::result<Config, ConfigError> load_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    return ConfigError{detail::make_message(path, 0, "file", std::string("cannot read (") + std::strerror(err) + ")")};
  }
  std::string data;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed)
    return ConfigError{detail::make_message(path, 0, "file", std::string("cannot read (") + std::strerror(err) + ")")};
  auto cfg = parse(data, path);
  if (cfg) cfg->source_path = path;
  return cfg;
}

}  // namespace bgproxy::config
