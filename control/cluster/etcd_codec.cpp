#include "control/cluster/etcd_codec.hpp"

#include <array>
#include <charconv>
#include <stdexcept>

#include <boost/json.hpp>

namespace bgproxy::cluster {

namespace json = boost::json;

void throw_exception_from_error(const EtcdError& e, const boost::source_location&) {
  throw std::runtime_error(describe(e));
}

std::string describe(const EtcdError& e) {
  switch (e.kind) {
    case EtcdError::Kind::unavailable: return "unavailable: " + e.message;
    case EtcdError::Kind::timeout: return "timed out: " + e.message;
    case EtcdError::Kind::server: return "server error " + std::to_string(e.code) + ": " + e.message;
    case EtcdError::Kind::auth: return "authentication failed: " + e.message;
    case EtcdError::Kind::protocol: return "unexpected answer: " + e.message;
    case EtcdError::Kind::canceled: return "canceled: " + e.message;
    case EtcdError::Kind::config: return e.message;
  }
  return e.message;
}

bool is_member_unavailable(const EtcdError& e) {
  // Only the refusals that come before a proposal: "request timed out" (also code 14) may have
  // been applied, so it is not here.
  return e.kind == EtcdError::Kind::server && e.code == grpc_code::unavailable &&
         (e.message == "etcdserver: no leader" || e.message == "etcdserver: not capable");
}

bool is_token_expired(const EtcdError& e) {
  return e.kind == EtcdError::Kind::server &&
         (e.message == "etcdserver: invalid auth token" || e.message == "etcdserver: revision of auth store is old");
}

// ---------------------------------------------------------------------------------------------
// Base64

namespace {

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<signed char, 256> b64_values() {
  std::array<signed char, 256> v{};
  for (auto& x : v) x = -1;
  for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(b64_alphabet[i])] = static_cast<signed char>(i);
  return v;
}

constexpr auto b64_value = b64_values();

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += b64_alphabet[n >> 18 & 63];
    out += b64_alphabet[n >> 12 & 63];
    out += b64_alphabet[n >> 6 & 63];
    out += b64_alphabet[n & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    const std::uint32_t n = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out += b64_alphabet[n >> 18 & 63];
    out += b64_alphabet[n >> 12 & 63];
    out += rest == 2 ? b64_alphabet[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::size_t pad = 0;
  if (text.size() % 4 == 0 && !text.empty()) {
    pad = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  }
  text.remove_suffix(pad);
  // Unpadded, the last group has 2 or 3 characters; a lone one cannot encode a byte.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = b64_value[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = acc << 6 | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xff);
    }
  }
  // The bits left over must be zero, or the text is not the encoding of any bytes.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// ---------------------------------------------------------------------------------------------
// Parsing

namespace {

EtcdError protocol_error(std::string what) { return EtcdError{EtcdError::Kind::protocol, 0, std::move(what)}; }

std::string excerpt(std::string_view body) {
  constexpr std::size_t max = 200;
  std::string s(body.substr(0, max));
  if (body.size() > max) s += "…";
  return s;
}

/// A 64-bit number: the gateway writes int64/uint64 fields as strings, int32 ones as numbers.
template <class Int>
std::optional<Int> to_int(const json::value& v) {
  if (v.is_string()) {
    const json::string& s = v.get_string();
    Int n{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return n;
  }
  if (v.is_int64()) return static_cast<Int>(v.get_int64());
  if (v.is_uint64()) return static_cast<Int>(v.get_uint64());
  return std::nullopt;
}

/// Reads fields of one JSON object; the first problem sticks, with the field's name.
class Fields {
 public:
  explicit Fields(const json::object& o) : o_(o) {}

  template <class Int>
  Int integer(std::string_view name) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return 0;  // zero values are left out
    const auto n = to_int<Int>(*v);
    if (!n) fail(name, "not an integer");
    return n.value_or(0);
  }

  bool boolean(std::string_view name) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return false;
    if (!v->is_bool()) fail(name, "not a boolean");
    return v->is_bool() && v->get_bool();
  }

  std::string text(std::string_view name) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return {};
    if (!v->is_string()) {
      fail(name, "not a string");
      return {};
    }
    return std::string(v->get_string());
  }

  std::string bytes(std::string_view name) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return {};
    std::optional<std::string> b = v->is_string() ? base64_decode(v->get_string()) : std::nullopt;
    if (!b) fail(name, "not base64");
    return b.value_or(std::string{});
  }

  /// nullptr when absent; a problem when present and not an object.
  const json::object* object(std::string_view name) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) fail(name, "not an object");
    return v->if_object();
  }

  const json::array* array(std::string_view name) {
    const json::value* v = o_.if_contains(name);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) fail(name, "not an array");
    return v->if_array();
  }

  void fail(std::string_view name, std::string_view why) {
    if (!error_) error_ = protocol_error(std::string(name) + ": " + std::string(why));
  }
  void merge(const std::optional<EtcdError>& e) {
    if (!error_ && e) error_ = e;
  }
  const std::optional<EtcdError>& error() const { return error_; }

 private:
  const json::object& o_;
  std::optional<EtcdError> error_;
};

ResponseHeader read_header(Fields& f) {
  ResponseHeader h;
  if (const json::object* o = f.object("header")) {
    Fields hf(*o);
    h.cluster_id = hf.integer<std::uint64_t>("cluster_id");
    h.member_id = hf.integer<std::uint64_t>("member_id");
    h.revision = hf.integer<std::int64_t>("revision");
    h.raft_term = hf.integer<std::uint64_t>("raft_term");
    f.merge(hf.error());
  }
  return h;
}

KeyValue read_kv(const json::value& v, Fields& outer) {
  KeyValue kv;
  if (!v.is_object()) {
    outer.fail("kv", "not an object");
    return kv;
  }
  Fields f(v.get_object());
  kv.key = f.bytes("key");
  kv.value = f.bytes("value");
  kv.create_revision = f.integer<std::int64_t>("create_revision");
  kv.mod_revision = f.integer<std::int64_t>("mod_revision");
  kv.version = f.integer<std::int64_t>("version");
  kv.lease = f.integer<std::int64_t>("lease");
  outer.merge(f.error());
  return kv;
}

std::vector<KeyValue> read_kvs(Fields& f, std::string_view name) {
  std::vector<KeyValue> kvs;
  if (const json::array* a = f.array(name)) {
    kvs.reserve(a->size());
    for (const json::value& v : *a) kvs.push_back(read_kv(v, f));
  }
  return kvs;
}

std::optional<KeyValue> read_optional_kv(Fields& f, std::string_view name) {
  if (const json::object* o = f.object(name)) return read_kv(*o, f);
  return std::nullopt;
}

std::optional<EtcdError> error_of(const json::object& o) {
  const json::value* e = o.if_contains("error");
  if (e == nullptr) return std::nullopt;
  // A stream's error: {"error":{"grpc_code":14,"http_code":503,"message":"…","http_status":"…"}}
  if (e->is_object()) {
    Fields f(e->get_object());
    EtcdError err{EtcdError::Kind::server, f.integer<int>("grpc_code"), f.text("message")};
    if (f.error()) return f.error();
    return err;
  }
  // A unary error: {"error":"…","message":"…","code":3}. A success never has `error` beside
  // no header (LeaseGrantResponse's own `error` string comes with one).
  if (e->is_string() && o.if_contains("header") == nullptr) {
    Fields f(o);
    std::string message = f.text("message");
    if (message.empty()) message = std::string(e->get_string());
    EtcdError err{EtcdError::Kind::server, f.integer<int>("code"), std::move(message)};
    if (f.error()) return f.error();
    return err;
  }
  return std::nullopt;
}

/// The body as a JSON object, or why it is not one of the gateway's answers.
EtcdResult<json::object> object_of(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return protocol_error("not JSON (" + ec.message() + "): " + excerpt(body));
  if (!v.is_object()) return protocol_error("not a JSON object: " + excerpt(body));
  json::object o = std::move(v.get_object());
  if (auto e = error_of(o)) return *e;
  return o;
}

/// A stream's message: the object inside `result` (a keepalive's answer ends with a newline).
EtcdResult<json::object> result_of(std::string_view message) {
  EtcdResult<json::object> o = object_of(message);
  if (!o) return o.error();
  json::value* r = o->if_contains("result");
  if (r == nullptr || !r->is_object()) return protocol_error("no result object: " + excerpt(message));
  return std::move(r->get_object());
}

template <class T>
EtcdResult<T> finish(const Fields& f, T value) {
  if (f.error()) return *f.error();
  return value;
}

}  // namespace

std::optional<EtcdError> parse_error(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return error_of(v.get_object());
}

EtcdResult<RangeResult> parse_range(std::string_view body) {
  auto o = object_of(body);
  if (!o) return o.error();
  Fields f(*o);
  RangeResult r;
  r.header = read_header(f);
  r.kvs = read_kvs(f, "kvs");
  r.count = f.integer<std::int64_t>("count");
  r.more = f.boolean("more");
  return finish(f, std::move(r));
}

EtcdResult<PutResult> parse_put(std::string_view body) {
  auto o = object_of(body);
  if (!o) return o.error();
  Fields f(*o);
  PutResult r;
  r.header = read_header(f);
  r.prev_kv = read_optional_kv(f, "prev_kv");
  return finish(f, std::move(r));
}

EtcdResult<DeleteResult> parse_delete(std::string_view body) {
  auto o = object_of(body);
  if (!o) return o.error();
  Fields f(*o);
  DeleteResult r;
  r.header = read_header(f);
  r.deleted = f.integer<std::int64_t>("deleted");
  r.prev_kvs = read_kvs(f, "prev_kvs");
  return finish(f, std::move(r));
}

EtcdResult<CasResult> parse_cas(std::string_view body) {
  auto o = object_of(body);
  if (!o) return o.error();
  Fields f(*o);
  CasResult r;
  r.header = read_header(f);
  r.succeeded = f.boolean("succeeded");  // absent when the compare failed
  const json::array* responses = f.array("responses");
  if (!r.succeeded) {
    // The failure branch is exactly one range (cas_request): its kvs hold the current key.
    const json::object* range = nullptr;
    if (responses != nullptr && !responses->empty() && responses->front().is_object()) {
      if (const json::value* v = responses->front().get_object().if_contains("response_range")) range = v->if_object();
    }
    if (range == nullptr) {
      f.fail("responses", "no response_range in the failure branch");
    } else {
      Fields rf(*range);
      std::vector<KeyValue> kvs = read_kvs(rf, "kvs");
      f.merge(rf.error());
      if (!kvs.empty()) r.current = std::move(kvs.front());
    }
  }
  return finish(f, std::move(r));
}

EtcdResult<LeaseGrantResult> parse_lease_grant(std::string_view body) {
  auto o = object_of(body);
  if (!o) return o.error();
  Fields f(*o);
  LeaseGrantResult r;
  r.header = read_header(f);
  r.id = f.integer<std::int64_t>("ID");
  r.ttl = f.integer<std::int64_t>("TTL");
  if (std::string e = f.text("error"); !e.empty()) return EtcdError{EtcdError::Kind::server, 0, std::move(e)};
  if (!f.error() && r.id == 0) f.fail("ID", "missing");
  return finish(f, r);
}

EtcdResult<LeaseKeepAliveResult> parse_lease_keepalive(std::string_view body) {
  // One POST carries one keepalive: the answer is one line, which may be followed by a newline.
  const std::size_t nl = body.find('\n');
  auto o = result_of(body.substr(0, nl));
  if (!o) return o.error();
  Fields f(*o);
  LeaseKeepAliveResult r;
  r.header = read_header(f);
  r.id = f.integer<std::int64_t>("ID");
  r.ttl = f.integer<std::int64_t>("TTL");
  return finish(f, r);
}

EtcdResult<ResponseHeader> parse_header_only(std::string_view body) {
  auto o = object_of(body);
  if (!o) return o.error();
  Fields f(*o);
  ResponseHeader h = read_header(f);
  return finish(f, h);
}

EtcdResult<AuthResult> parse_authenticate(std::string_view body) {
  auto o = object_of(body);
  if (!o) return o.error();
  Fields f(*o);
  AuthResult r;
  r.header = read_header(f);
  r.token = f.text("token");
  if (!f.error() && r.token.empty()) f.fail("token", "missing");
  return finish(f, std::move(r));
}

EtcdResult<WatchResponse> parse_watch_response(std::string_view message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.remove_suffix(1);
  auto o = result_of(message);
  if (!o) return o.error();
  Fields f(*o);
  WatchResponse r;
  r.header = read_header(f);
  r.watch_id = f.integer<std::int64_t>("watch_id");
  r.created = f.boolean("created");
  r.canceled = f.boolean("canceled");
  r.compact_revision = f.integer<std::int64_t>("compact_revision");
  r.cancel_reason = f.text("cancel_reason");
  if (const json::array* events = f.array("events")) {
    r.events.reserve(events->size());
    for (const json::value& v : *events) {
      if (!v.is_object()) {
        f.fail("events", "not an object");
        break;
      }
      Fields ef(v.get_object());
      WatchEvent e;
      const std::string type = ef.text("type");  // PUT is the zero value: left out
      if (type == "DELETE") {
        e.type = WatchEvent::Type::del;
      } else if (!type.empty() && type != "PUT") {
        ef.fail("type", "unknown event type");
      }
      if (const json::object* kv = ef.object("kv")) e.kv = read_kv(*kv, ef);
      e.prev_kv = read_optional_kv(ef, "prev_kv");
      f.merge(ef.error());
      r.events.push_back(std::move(e));
    }
  }
  return finish(f, std::move(r));
}

// ---------------------------------------------------------------------------------------------
// Requests

namespace {

json::string number(std::int64_t n) { return json::string(std::to_string(n)); }

json::object kv_object(std::string_view key, std::string_view value, std::int64_t lease) {
  json::object o;
  o["key"] = base64_encode(key);
  o["value"] = base64_encode(value);
  if (lease != 0) o["lease"] = number(lease);
  return o;
}

}  // namespace

std::string range_request(std::string_view key, const RangeOptions& opt) {
  json::object o;
  o["key"] = base64_encode(key);
  if (!opt.range_end.empty()) o["range_end"] = base64_encode(opt.range_end);
  if (opt.revision != 0) o["revision"] = number(opt.revision);
  if (opt.limit != 0) o["limit"] = number(opt.limit);
  if (opt.count_only) o["count_only"] = true;
  if (opt.keys_only) o["keys_only"] = true;
  if (opt.serializable) o["serializable"] = true;
  return json::serialize(o);
}

std::string put_request(std::string_view key, std::string_view value, std::int64_t lease, bool prev_kv) {
  json::object o = kv_object(key, value, lease);
  if (prev_kv) o["prev_kv"] = true;
  return json::serialize(o);
}

std::string delete_request(std::string_view key, std::string_view range_end, bool prev_kv) {
  json::object o;
  o["key"] = base64_encode(key);
  if (!range_end.empty()) o["range_end"] = base64_encode(range_end);
  if (prev_kv) o["prev_kv"] = true;
  return json::serialize(o);
}

std::string cas_request(std::string_view key, std::int64_t expected_mod_revision, std::string_view value,
                        std::int64_t lease) {
  const std::string k = base64_encode(key);
  json::object compare{{"key", k}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", number(expected_mod_revision)}};
  json::object o;
  o["compare"] = json::array{compare};
  o["success"] = json::array{json::object{{"request_put", kv_object(key, value, lease)}}};
  o["failure"] = json::array{json::object{{"request_range", json::object{{"key", k}}}}};
  return json::serialize(o);
}

std::string lease_grant_request(std::int64_t ttl_seconds, std::int64_t id) {
  json::object o{{"TTL", number(ttl_seconds)}};
  if (id != 0) o["ID"] = number(id);
  return json::serialize(o);
}

std::string lease_keepalive_request(std::int64_t id) { return json::serialize(json::object{{"ID", number(id)}}); }

std::string lease_revoke_request(std::int64_t id) { return json::serialize(json::object{{"ID", number(id)}}); }

std::string authenticate_request(std::string_view name, std::string_view password) {
  return json::serialize(json::object{{"name", name}, {"password", password}});
}

std::string watch_create_request(const WatchCreate& w) {
  json::object c;
  c["key"] = base64_encode(w.key);
  if (!w.range_end.empty()) c["range_end"] = base64_encode(w.range_end);
  if (w.start_revision != 0) c["start_revision"] = number(w.start_revision);
  if (w.prev_kv) c["prev_kv"] = true;
  if (w.progress_notify) c["progress_notify"] = true;
  if (w.watch_id != 0) c["watch_id"] = number(w.watch_id);
  return json::serialize(json::object{{"create_request", std::move(c)}});
}

std::string watch_progress_request() { return R"({"progress_request":{}})"; }

std::string watch_cancel_request(std::int64_t watch_id) {
  return json::serialize(json::object{{"cancel_request", json::object{{"watch_id", number(watch_id)}}}});
}

}  // namespace bgproxy::cluster
