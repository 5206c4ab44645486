#pragma once
/// bgproxy::cluster — the etcd v3 JSON gateway's messages, pure (no I/O): request bodies built,
/// response bodies parsed into plain structs. The I/O shell is etcd_client.hpp.
///
/// What the gateway of etcd 3.4 really sends (recorded in tests/cluster/etcd_codec_test.cpp):
/// - keys and values are base64 (padded: an unpadded value is refused), 64-bit numbers are JSON
///   strings, and every zero value is left out: an absent key has no `kvs`, an empty value no
///   `value`, a PUT event no `type`, the first watch of a stream no `watch_id`, and a txn whose
///   compare failed no `succeeded`;
/// - unary errors are `{"error":"…","message":"…","code":N}`; errors of a stream
///   (lease keepalive, watch over plain HTTP) are `{"error":{"grpc_code":N,"http_code":…,
///   "message":"…","http_status":"…"}}`; stream messages are wrapped in `{"result":{…}}`;
/// - a watch that cannot be created answers `created` and `canceled` at once, with watch_id -1
///   and a `cancel_reason` (a bad token, a duplicate id); one from a compacted revision is
///   canceled with `compact_revision` (and a header without revision).
/// Thread: any (no state).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace bgproxy::cluster {

/// gRPC status codes etcd answers with (the `code`/`grpc_code` of an error).
namespace grpc_code {
inline constexpr int unknown = 2;              ///< e.g. "context deadline exceeded" (a put without a leader)
inline constexpr int invalid_argument = 3;     ///< bad request; also "user name is empty" (auth on, no token)
inline constexpr int not_found = 5;            ///< "etcdserver: requested lease not found"
inline constexpr int already_exists = 6;
inline constexpr int permission_denied = 7;    ///< "etcdserver: permission denied"
inline constexpr int failed_precondition = 9;  ///< "etcdserver: lease already exists", auth not enabled
inline constexpr int out_of_range = 11;        ///< "etcdserver: mvcc: required revision has been compacted"
inline constexpr int unavailable = 14;         ///< "etcdserver: no leader", "etcdserver: request timed out"
inline constexpr int unauthenticated = 16;     ///< "etcdserver: invalid auth token"
}  // namespace grpc_code

/// Why an etcd request gave no answer to use. `message` is for logs and operators:
/// the server's words ("etcdserver: no leader") or the transport's ("connect 127.0.0.1:2379:
/// Connection refused").
struct EtcdError {
  enum class Kind {
    unavailable,  ///< no endpoint could be reached or the connection broke (outcome unknown for a write)
    timeout,      ///< the request's deadline (`cluster.etcd.timeout`) passed
    server,       ///< etcd answered with an error: see `code`
    auth,         ///< authentication refused (wrong name or password) or needed and not configured
    protocol,     ///< an answer that is not what the gateway sends (not JSON, bad base64, HTTP error page)
    canceled,     ///< the client was closed
    config,       ///< a file the options name cannot be used (password, CA, certificate, key)
  };
  Kind kind = Kind::protocol;
  int code = 0;  ///< gRPC status when kind == server (grpc_code::…), else 0
  std::string message;

  bool operator==(const EtcdError&) const = default;
};

/// Lets boost::system::result<T, EtcdError>::value() throw (std::runtime_error with the message);
/// the client itself never calls it.
[[noreturn]] void throw_exception_from_error(const EtcdError& e, const boost::source_location& loc);

template <class T>
using EtcdResult = boost::system::result<T, EtcdError>;

/// "server error 14: etcdserver: no leader", "unavailable: connect …: Connection refused", …
std::string describe(const EtcdError& e);

/// True for the errors that mean "this member cannot serve now, another may": no leader,
/// not capable. The request was not applied, so it may go to the next endpoint.
bool is_member_unavailable(const EtcdError& e);

/// True when the token is no longer accepted: authenticate again, then repeat the request.
/// ("etcdserver: invalid auth token", "etcdserver: revision of auth store is old")
bool is_token_expired(const EtcdError& e);

// ---------------------------------------------------------------------------------------------
// Base64 (standard alphabet, padded), as the gateway writes and requires for bytes fields.

std::string base64_encode(std::string_view bytes);
/// Accepts padded and unpadded input; refuses any other character or a bad length.
std::optional<std::string> base64_decode(std::string_view text);

/// The `range_end` that makes a range or a watch cover every key starting with `prefix`
/// (the prefix with its last byte below 0xff incremented; "\0" = to the end of the key space).
std::string prefix_end(std::string_view prefix);

// ---------------------------------------------------------------------------------------------
// Responses

struct ResponseHeader {
  std::uint64_t cluster_id = 0;
  std::uint64_t member_id = 0;
  std::int64_t revision = 0;  ///< the store's revision when the request was served
  std::uint64_t raft_term = 0;
  bool operator==(const ResponseHeader&) const = default;
};

struct KeyValue {
  std::string key;    ///< decoded bytes
  std::string value;  ///< decoded bytes ("" when the gateway left it out)
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;  ///< compare-and-swap on this (txn_cas)
  std::int64_t version = 0;       ///< 1 after the key's creation; 0 in a DELETE event
  std::int64_t lease = 0;         ///< 0 = no lease
  bool operator==(const KeyValue&) const = default;
};

struct RangeResult {
  ResponseHeader header;
  std::vector<KeyValue> kvs;
  std::int64_t count = 0;  ///< keys in the range (more than kvs when limited)
  bool more = false;       ///< a limit cut the answer short
};

struct PutResult {
  ResponseHeader header;  ///< header.revision is the new key's mod_revision
  std::optional<KeyValue> prev_kv;
};

struct DeleteResult {
  ResponseHeader header;
  std::int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

/// A compare-and-swap on one key's mod_revision (see cas_request).
struct CasResult {
  ResponseHeader header;
  bool succeeded = false;  ///< false when the gateway left `succeeded` out: the compare failed
  /// On failure, the key as it is now (read in the same transaction); nullopt when it does not
  /// exist. On success, nullopt: the new mod_revision is header.revision.
  std::optional<KeyValue> current;
};

struct LeaseGrantResult {
  ResponseHeader header;
  std::int64_t id = 0;
  std::int64_t ttl = 0;  ///< seconds granted: etcd raises a TTL below its minimum (about 2 s)
};

struct LeaseKeepAliveResult {
  ResponseHeader header;
  std::int64_t id = 0;
  /// Seconds left after the refresh. 0 means the lease is gone (expired or revoked): etcd answers
  /// a keepalive of an unknown lease without error, only without TTL.
  std::int64_t ttl = 0;
};

struct AuthResult {
  ResponseHeader header;
  std::string token;  ///< sent as the `Authorization` header (as is, no "Bearer")
};

struct WatchEvent {
  enum class Type { put, del };
  Type type = Type::put;
  KeyValue kv;  ///< a DELETE carries only key and mod_revision
  std::optional<KeyValue> prev_kv;  ///< with WatchCreate::prev_kv, when the key existed before
  bool operator==(const WatchEvent&) const = default;
};

/// One message of a watch stream.
struct WatchResponse {
  ResponseHeader header;
  std::int64_t watch_id = 0;  ///< -1: not tied to one watch (a progress answer, a failed create)
  bool created = false;
  bool canceled = false;
  /// > 0: the watch started below the compacted revision and was canceled; events before this
  /// revision are gone: read the keys again, then watch from the read's revision + 1.
  std::int64_t compact_revision = 0;
  std::string cancel_reason;  ///< e.g. "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"
  std::vector<WatchEvent> events;

  /// A progress answer: nothing created, canceled or changed.
  bool is_progress() const { return !created && !canceled && events.empty(); }
};

/// Any error in a body, in either of the gateway's shapes; nullopt when the body is not one.
std::optional<EtcdError> parse_error(std::string_view body);

EtcdResult<RangeResult> parse_range(std::string_view body);
EtcdResult<PutResult> parse_put(std::string_view body);
EtcdResult<DeleteResult> parse_delete(std::string_view body);
EtcdResult<CasResult> parse_cas(std::string_view body);
EtcdResult<LeaseGrantResult> parse_lease_grant(std::string_view body);
/// Takes the stream form (`{"result":{…}}` and a newline) the gateway answers a keepalive with.
EtcdResult<LeaseKeepAliveResult> parse_lease_keepalive(std::string_view body);
/// Any body without error: the header (lease revoke, compaction, …).
EtcdResult<ResponseHeader> parse_header_only(std::string_view body);
EtcdResult<AuthResult> parse_authenticate(std::string_view body);
/// One watch message (a websocket frame or one line of the HTTP stream): `{"result":{…}}`, or an
/// error of either shape (server kind; the stream ends after it).
EtcdResult<WatchResponse> parse_watch_response(std::string_view message);

// ---------------------------------------------------------------------------------------------
// Requests: JSON bodies to POST to the paths named.

namespace path {
inline constexpr std::string_view range = "/v3/kv/range";
inline constexpr std::string_view put = "/v3/kv/put";
inline constexpr std::string_view txn = "/v3/kv/txn";
inline constexpr std::string_view delete_range = "/v3/kv/deleterange";
inline constexpr std::string_view lease_grant = "/v3/lease/grant";
inline constexpr std::string_view lease_keepalive = "/v3/lease/keepalive";
inline constexpr std::string_view lease_revoke = "/v3/lease/revoke";
inline constexpr std::string_view authenticate = "/v3/auth/authenticate";
inline constexpr std::string_view watch = "/v3/watch";
}  // namespace path

struct RangeOptions {
  std::string range_end;        ///< empty: the key alone; prefix_end(p) for a prefix
  std::int64_t revision = 0;    ///< 0: the latest
  std::int64_t limit = 0;       ///< 0: no limit
  bool count_only = false;
  bool keys_only = false;
  bool serializable = false;    ///< answer from the member's copy, even without a leader
};

std::string range_request(std::string_view key, const RangeOptions& o = {});
/// @param lease 0: no lease
std::string put_request(std::string_view key, std::string_view value, std::int64_t lease = 0, bool prev_kv = false);
std::string delete_request(std::string_view key, std::string_view range_end = {}, bool prev_kv = false);
/// A transaction: if `key`'s mod_revision equals `expected_mod_revision` (0: the key does not
/// exist), put `value` (with `lease` unless 0); otherwise read `key`, so the loser of a race
/// sees the winner's value in the same round trip.
std::string cas_request(std::string_view key, std::int64_t expected_mod_revision, std::string_view value,
                        std::int64_t lease = 0);
/// @param id 0: etcd chooses
std::string lease_grant_request(std::int64_t ttl_seconds, std::int64_t id = 0);
/// One keepalive per POST: the gateway answers it and ends the stream.
std::string lease_keepalive_request(std::int64_t id);
std::string lease_revoke_request(std::int64_t id);
std::string authenticate_request(std::string_view name, std::string_view password);

struct WatchCreate {
  std::string key;
  std::string range_end;            ///< empty: the key alone; prefix_end(p) for a prefix
  std::int64_t start_revision = 0;  ///< 0: from now on
  bool prev_kv = false;
  bool progress_notify = false;     ///< periodic progress answers (every 10 min by default in 3.4)
  std::int64_t watch_id = 0;        ///< 0: etcd numbers the watches of a stream from 0
};

std::string watch_create_request(const WatchCreate& w);
/// Answered with a progress message (watch_id -1, the member's revision): a liveness ping. In 3.4
/// its revision is the store's, not a promise that every event up to it was sent.
std::string watch_progress_request();
std::string watch_cancel_request(std::int64_t watch_id);

}  // namespace bgproxy::cluster
