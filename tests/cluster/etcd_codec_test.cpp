// The gateway's messages, as etcd 3.4.23 (Debian's etcd-server) sent them: recorded with curl and
// a websocket client against a real etcd on loopback, pasted unchanged (line breaks aside).

#include "control/cluster/etcd_codec.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace bgproxy::cluster {
namespace {

namespace json = boost::json;

// ---------------------------------------------------------------------------------------------
// Base64 and prefixes

TEST(EtcdCodecBase64, EncodesWithPaddingLikeTheGateway) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("/bg/a"), "L2JnL2E=");
  EXPECT_EQ(base64_encode(std::string("\xff", 1)), "/w==");
  EXPECT_EQ(base64_encode(std::string("\x00\xff", 2)), "AP8=");
  EXPECT_EQ(base64_encode(std::string(1, '\0')), "AA==");
}

TEST(EtcdCodecBase64, DecodesPaddedAndUnpadded) {
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zg"), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zm8"), "fo");
  EXPECT_EQ(base64_decode("Zm9v"), "foo");
  EXPECT_EQ(base64_decode("AP8="), std::string("\x00\xff", 2));
  EXPECT_EQ(base64_decode("/w=="), std::string("\xff", 1));
}

TEST(EtcdCodecBase64, RefusesWhatIsNotBase64) {
  EXPECT_FALSE(base64_decode("!!"));
  EXPECT_FALSE(base64_decode("Z"));      // one character cannot encode a byte
  EXPECT_FALSE(base64_decode("Zg="));    // padding must complete the group
  EXPECT_FALSE(base64_decode("Z==="));
  EXPECT_FALSE(base64_decode("Zh=="));   // bits left over that are not zero
  EXPECT_FALSE(base64_decode("Zm9v\n"));
  EXPECT_FALSE(base64_decode("Zm-v"));   // URL alphabet
}

TEST(EtcdCodecBase64, RoundTripsEveryByteAndLength) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 7) {
    const std::string s = all.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(s)), s) << n;
  }
}

TEST(EtcdCodecPrefix, RangeEndCoversThePrefix) {
  EXPECT_EQ(prefix_end("/bgproxy/prod/"), "/bgproxy/prod0");
  EXPECT_EQ(prefix_end("a"), "b");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end(std::string("\xff\xff", 2)), std::string(1, '\0'));  // the whole key space
  EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

// ---------------------------------------------------------------------------------------------
// Requests: the bodies the gateway takes (64-bit numbers as strings, bytes as padded base64).

json::value parsed(const std::string& body) { return json::parse(body); }

TEST(EtcdCodecRequest, RangeOfOneKeyAndOfAPrefix) {
  EXPECT_EQ(parsed(range_request("foo")), parsed(R"({"key":"Zm9v"})"));
  RangeOptions o;
  o.range_end = prefix_end("f");
  o.revision = 42;
  o.limit = 1;
  o.count_only = true;
  o.keys_only = true;
  o.serializable = true;
  EXPECT_EQ(parsed(range_request("f", o)),
            parsed(R"({"key":"Zg==","range_end":"Zw==","revision":"42","limit":"1","count_only":true,)"
                   R"("keys_only":true,"serializable":true})"));
}

TEST(EtcdCodecRequest, PutWithAndWithoutLease) {
  EXPECT_EQ(parsed(put_request("foo", "bar")), parsed(R"({"key":"Zm9v","value":"YmFy"})"));
  EXPECT_EQ(parsed(put_request("a", "3", 2324035782677543267, true)),
            parsed(R"({"key":"YQ==","value":"Mw==","lease":"2324035782677543267","prev_kv":true})"));
  EXPECT_EQ(parsed(put_request("k", "")), parsed(R"({"key":"aw==","value":""})"));
}

TEST(EtcdCodecRequest, DeleteOneKeyOrARange) {
  EXPECT_EQ(parsed(delete_request("new")), parsed(R"({"key":"bmV3"})"));
  EXPECT_EQ(parsed(delete_request("f", prefix_end("f"), true)), parsed(R"({"key":"Zg==","range_end":"Zw==","prev_kv":true})"));
}

TEST(EtcdCodecRequest, CasComparesModRevisionAndReadsTheKeyOnFailure) {
  EXPECT_EQ(parsed(cas_request("foo", 3, "baz")),
            parsed(R"({"compare":[{"key":"Zm9v","target":"MOD","result":"EQUAL","mod_revision":"3"}],)"
                   R"("success":[{"request_put":{"key":"Zm9v","value":"YmF6"}}],)"
                   R"("failure":[{"request_range":{"key":"Zm9v"}}]})"));
  // Revision 0: "the key does not exist" (verified: succeeds on an absent key, fails on one that is there).
  EXPECT_EQ(parsed(cas_request("new", 0, "1", 7)),
            parsed(R"({"compare":[{"key":"bmV3","target":"MOD","result":"EQUAL","mod_revision":"0"}],)"
                   R"("success":[{"request_put":{"key":"bmV3","value":"MQ==","lease":"7"}}],)"
                   R"("failure":[{"request_range":{"key":"bmV3"}}]})"));
}

TEST(EtcdCodecRequest, LeasesAndAuthentication) {
  EXPECT_EQ(parsed(lease_grant_request(5)), parsed(R"({"TTL":"5"})"));
  EXPECT_EQ(parsed(lease_grant_request(5, 1234)), parsed(R"({"TTL":"5","ID":"1234"})"));
  EXPECT_EQ(parsed(lease_keepalive_request(1234)), parsed(R"({"ID":"1234"})"));
  EXPECT_EQ(parsed(lease_revoke_request(1234)), parsed(R"({"ID":"1234"})"));
  EXPECT_EQ(parsed(authenticate_request("bg", "pa\"ss")), parsed(R"({"name":"bg","password":"pa\"ss"})"));
}

TEST(EtcdCodecRequest, WatchCreateProgressCancel) {
  WatchCreate w;
  w.key = "foo";
  EXPECT_EQ(parsed(watch_create_request(w)), parsed(R"({"create_request":{"key":"Zm9v"}})"));
  w.key = "f";
  w.range_end = prefix_end("f");
  w.start_revision = 11;
  w.prev_kv = true;
  w.progress_notify = true;
  w.watch_id = 7;
  EXPECT_EQ(parsed(watch_create_request(w)),
            parsed(R"({"create_request":{"key":"Zg==","range_end":"Zw==","start_revision":"11","prev_kv":true,)"
                   R"("progress_notify":true,"watch_id":"7"}})"));
  EXPECT_EQ(parsed(watch_progress_request()), parsed(R"({"progress_request":{}})"));
  EXPECT_EQ(parsed(watch_cancel_request(7)), parsed(R"({"cancel_request":{"watch_id":"7"}})"));
}

// ---------------------------------------------------------------------------------------------
// Unary answers

constexpr std::string_view header_json =
    R"("header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"2","raft_term":"2"})";

TEST(EtcdCodecResponse, PutAnswerIsAHeader) {
  const auto r = parse_put(std::string("{") + std::string(header_json) + "}");
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_EQ(r->header, (ResponseHeader{324952591200643719u, 3319814642761637952u, 2, 2}));
  EXPECT_FALSE(r->prev_kv);
}

TEST(EtcdCodecResponse, PutWithPrevKv) {
  const auto r = parse_put(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"7","raft_term":"2"},)"
      R"("prev_kv":{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"3","value":"YmF6"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header.revision, 7);
  ASSERT_TRUE(r->prev_kv);
  EXPECT_EQ(*r->prev_kv, (KeyValue{"foo", "baz", 2, 4, 3, 0}));
}

TEST(EtcdCodecResponse, RangeWithOneKey) {
  const auto r = parse_range(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"2","raft_term":"2"},)"
      R"("kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"})");
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_EQ(r->header.revision, 2);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0], (KeyValue{"foo", "bar", 2, 2, 1, 0}));
  EXPECT_EQ(r->count, 1);
  EXPECT_FALSE(r->more);
}

TEST(EtcdCodecResponse, RangeOfAnAbsentKeyHasNoKvsAndNoCount) {
  const auto r = parse_range(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"2","raft_term":"2"}})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->count, 0);
}

TEST(EtcdCodecResponse, RangeOfAnEmptyValueHasNoValueField) {
  const auto r = parse_range(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"8","raft_term":"2"},)"
      R"("kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"8","version":"5"}],"count":"1"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].value, "");
  EXPECT_EQ(r->kvs[0].version, 5);
}

TEST(EtcdCodecResponse, RangeWithLeaseLimitAndBinaryBytes) {
  const auto leased = parse_range(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"9","raft_term":"2"},)"
      R"("kvs":[{"key":"bGs=","create_revision":"9","mod_revision":"9","version":"1","value":"dg==","lease":"1234"}],"count":"1"})");
  ASSERT_TRUE(leased);
  EXPECT_EQ(leased->kvs.at(0), (KeyValue{"lk", "v", 9, 9, 1, 1234}));

  const auto limited = parse_range(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"16","raft_term":"2"},)"
      R"("kvs":[{"key":"L2JnL2E=","create_revision":"13","mod_revision":"14","version":"2","value":"Mg=="}],"more":true,"count":"3"})");
  ASSERT_TRUE(limited);
  EXPECT_TRUE(limited->more);
  EXPECT_EQ(limited->count, 3);
  EXPECT_EQ(limited->kvs.at(0).key, "/bg/a");

  const auto counted = parse_range(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"16","raft_term":"2"},"count":"3"})");
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted->count, 3);
  EXPECT_TRUE(counted->kvs.empty());

  const auto binary = parse_range(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"17","raft_term":"2"},)"
      R"("kvs":[{"key":"/w==","create_revision":"17","mod_revision":"17","version":"1","value":"AP8="}],"count":"1"})");
  ASSERT_TRUE(binary);
  EXPECT_EQ(binary->kvs.at(0).key, std::string("\xff", 1));
  EXPECT_EQ(binary->kvs.at(0).value, std::string("\x00\xff", 2));
}

TEST(EtcdCodecResponse, DeleteWithAndWithoutPrevKvs) {
  const auto r = parse_delete(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"6","raft_term":"2"},)"
      R"("deleted":"1","prev_kvs":[{"key":"bmV3","create_revision":"5","mod_revision":"5","version":"1","value":"MQ=="}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deleted, 1);
  ASSERT_EQ(r->prev_kvs.size(), 1u);
  EXPECT_EQ(r->prev_kvs[0].value, "1");
  // Nothing deleted: no `deleted` at all.
  const auto none = parse_delete(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"6","raft_term":"2"}})");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->deleted, 0);
}

TEST(EtcdCodecResponse, CasSucceeded) {
  const auto r = parse_cas(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"4","raft_term":"2"},)"
      R"("succeeded":true,"responses":[{"response_put":{"header":{"revision":"4"}}}]})");
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ(r->header.revision, 4);  // the key's new mod_revision
  EXPECT_FALSE(r->current);
}

TEST(EtcdCodecResponse, CasFailedHasNoSucceededFieldAndCarriesTheCurrentValue) {
  const auto r = parse_cas(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"4","raft_term":"2"},)"
      R"("responses":[{"response_range":{"header":{"revision":"4"},)"
      R"("kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"3","value":"YmF6"}],"count":"1"}}]})");
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_FALSE(r->succeeded);
  ASSERT_TRUE(r->current);
  EXPECT_EQ(*r->current, (KeyValue{"foo", "baz", 2, 4, 3, 0}));
}

TEST(EtcdCodecResponse, CasFailedOnAnAbsentKey) {
  const auto r = parse_cas(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"14","raft_term":"2"},)"
      R"("responses":[{"response_range":{"header":{"revision":"14"}}}]})");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->succeeded);
  EXPECT_FALSE(r->current);
}

TEST(EtcdCodecResponse, CasFailureWithoutItsRangeIsAProtocolError) {
  const auto r = parse_cas(R"({"header":{"revision":"4"}})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, EtcdError::Kind::protocol);
}

TEST(EtcdCodecResponse, LeaseGrant) {
  const auto r = parse_lease_grant(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"8","raft_term":"2"},)"
      R"("ID":"2324035782677543190","TTL":"5"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, 2324035782677543190);
  EXPECT_EQ(r->ttl, 5);
  // Asked for 0 s (or less): etcd grants its minimum instead.
  const auto raised = parse_lease_grant(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"16","raft_term":"2"},)"
      R"("ID":"2324035782677543263","TTL":"2"})");
  ASSERT_TRUE(raised);
  EXPECT_EQ(raised->ttl, 2);
}

TEST(EtcdCodecResponse, LeaseKeepAliveIsWrappedInResultAndEndsWithANewline) {
  const auto r = parse_lease_keepalive(
      "{\"result\":{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
      "\"revision\":\"8\",\"raft_term\":\"2\"},\"ID\":\"1234\",\"TTL\":\"5\"}}\n");
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_EQ(r->id, 1234);
  EXPECT_EQ(r->ttl, 5);
}

TEST(EtcdCodecResponse, LeaseKeepAliveOfAGoneLeaseHasNoTtlAndNoError) {
  const auto r = parse_lease_keepalive(
      "{\"result\":{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\","
      "\"revision\":\"10\",\"raft_term\":\"2\"},\"ID\":\"1234\"}}\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, 1234);
  EXPECT_EQ(r->ttl, 0);
}

TEST(EtcdCodecResponse, LeaseKeepAliveWithoutResultIsAProtocolError) {
  const auto r = parse_lease_keepalive(R"({"header":{},"ID":"1","TTL":"5"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, EtcdError::Kind::protocol);
}

TEST(EtcdCodecResponse, Authenticate) {
  const auto r = parse_authenticate(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"12","raft_term":"2"},)"
      R"("token":"QYwQlkkJgvYSQxqo.39"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->token, "QYwQlkkJgvYSQxqo.39");
}

TEST(EtcdCodecResponse, HeaderOnly) {
  const auto r = parse_header_only(
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"10","raft_term":"2"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->revision, 10);
}

// ---------------------------------------------------------------------------------------------
// Errors: the unary shape and the stream shape

void expect_server_error(const std::optional<EtcdError>& e, int code, std::string_view message) {
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, EtcdError::Kind::server);
  EXPECT_EQ(e->code, code);
  EXPECT_EQ(e->message, message);
}

TEST(EtcdCodecError, UnaryShape) {
  expect_server_error(parse_error(R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"),
                      grpc_code::not_found, "etcdserver: requested lease not found");
  expect_server_error(parse_error(R"({"error":"etcdserver: lease already exists","message":"etcdserver: lease already exists","code":9})"),
                      grpc_code::failed_precondition, "etcdserver: lease already exists");
  expect_server_error(parse_error(R"({"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11})"),
                      grpc_code::out_of_range, "etcdserver: mvcc: required revision has been compacted");
  expect_server_error(parse_error(R"({"error":"unexpected EOF","message":"unexpected EOF","code":3})"),
                      grpc_code::invalid_argument, "unexpected EOF");
  expect_server_error(parse_error(R"({"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7})"),
                      grpc_code::permission_denied, "etcdserver: permission denied");
}

TEST(EtcdCodecError, StreamShapeFromAKeepaliveOrAWatchWithoutLeader) {
  const auto e = parse_error(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})");
  expect_server_error(e, grpc_code::unavailable, "etcdserver: no leader");
  EXPECT_TRUE(is_member_unavailable(*e));
}

TEST(EtcdCodecError, EveryParserReportsAnErrorBodyAsSuch) {
  const std::string body = R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})";
  for (const auto& e : {parse_range(body).error(), parse_put(body).error(), parse_delete(body).error(), parse_cas(body).error(),
                        parse_lease_grant(body).error(), parse_authenticate(body).error(), parse_header_only(body).error()}) {
    expect_server_error(e, grpc_code::unauthenticated, "etcdserver: invalid auth token");
    EXPECT_TRUE(is_token_expired(e));
  }
  const std::string stream = R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})";
  expect_server_error(parse_lease_keepalive(stream).error(), grpc_code::unavailable, "etcdserver: no leader");
  expect_server_error(parse_watch_response(stream).error(), grpc_code::unavailable, "etcdserver: no leader");
}

TEST(EtcdCodecError, WhichErrorsMoveToAnotherMemberOrRenewTheToken) {
  // Refused before any proposal: safe to send elsewhere.
  EXPECT_TRUE(is_member_unavailable(*parse_error(R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})")));
  // Timed out after the proposal: it may have been applied.
  EXPECT_FALSE(is_member_unavailable(*parse_error(R"({"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14})")));
  EXPECT_FALSE(is_member_unavailable(*parse_error(R"({"error":"context deadline exceeded","message":"context deadline exceeded","code":2})")));
  EXPECT_TRUE(is_token_expired(EtcdError{EtcdError::Kind::server, 3, "etcdserver: revision of auth store is old"}));
  EXPECT_FALSE(is_token_expired(*parse_error(R"({"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3})")));
  EXPECT_FALSE(is_token_expired(EtcdError{EtcdError::Kind::unavailable, 0, "etcdserver: invalid auth token"}));
}

TEST(EtcdCodecError, NotErrors) {
  EXPECT_FALSE(parse_error(R"({"header":{"revision":"2"}})"));
  EXPECT_FALSE(parse_error("Not Found\n"));  // the gateway's 404 page is text
  EXPECT_FALSE(parse_error(""));
  // LeaseGrantResponse has an `error` string of its own, next to a header.
  EXPECT_FALSE(parse_error(R"({"header":{"revision":"2"},"ID":"1","TTL":"5","error":""})"));
}

TEST(EtcdCodecError, MalformedAnswersAreProtocolErrors) {
  for (const std::string_view body :
       {std::string_view("Not Found"), std::string_view("[]"), std::string_view(R"({"header":{"revision":"x"}})"),
        std::string_view(R"({"header":{"revision":2.5}})"), std::string_view(R"({"kvs":[{"key":"!!"}]})"),
        std::string_view(R"({"kvs":{"key":"Zm9v"}})"), std::string_view(R"({"kvs":[{"key":"Zm9v","value":7}]})"),
        std::string_view(R"({"more":"yes"})"), std::string_view("{\"header\":")}) {
    const auto r = parse_range(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().kind, EtcdError::Kind::protocol) << body;
  }
  const auto token = parse_authenticate(R"({"header":{"revision":"12"}})");
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().kind, EtcdError::Kind::protocol);
}

TEST(EtcdCodecError, NumbersAreAcceptedAsStringsOrNumbers) {
  const auto r = parse_range(R"({"header":{"revision":12},"count":1})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header.revision, 12);
  EXPECT_EQ(r->count, 1);
}

TEST(EtcdCodecError, Describe) {
  EXPECT_EQ(describe(EtcdError{EtcdError::Kind::server, 14, "etcdserver: no leader"}), "server error 14: etcdserver: no leader");
  EXPECT_EQ(describe(EtcdError{EtcdError::Kind::unavailable, 0, "connect http://127.0.0.1:1: Connection refused"}),
            "unavailable: connect http://127.0.0.1:1: Connection refused");
  EXPECT_EQ(describe(EtcdError{EtcdError::Kind::config, 0, "cluster: cannot read password_file /x"}),
            "cluster: cannot read password_file /x");
}

// ---------------------------------------------------------------------------------------------
// Watch messages (one websocket frame each, or one line of the HTTP stream)

TEST(EtcdCodecWatch, FirstWatchOfAStreamIsCreatedWithoutWatchId) {
  const auto r = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"10","raft_term":"2"},"created":true}})");
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_TRUE(r->created);
  EXPECT_FALSE(r->canceled);
  EXPECT_EQ(r->watch_id, 0);
  EXPECT_EQ(r->header.revision, 10);
  EXPECT_FALSE(r->is_progress());
}

TEST(EtcdCodecWatch, PutEventsHaveNoTypeField) {
  const auto r = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"10","raft_term":"2"},)"
      R"("events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}},)"
      R"({"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmFy"}},)"
      R"({"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"4","version":"3","value":"YmF6"}},)"
      R"({"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"7","version":"4","value":"YmFy"}},)"
      R"({"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"8","version":"5"}}]}})");
  ASSERT_TRUE(r) << describe(r.error());
  ASSERT_EQ(r->events.size(), 5u);
  for (const auto& e : r->events) EXPECT_EQ(e.type, WatchEvent::Type::put);
  EXPECT_EQ(r->events[2].kv, (KeyValue{"foo", "baz", 2, 4, 3, 0}));
  EXPECT_EQ(r->events[4].kv.value, "");  // put of an empty value
  EXPECT_EQ(r->events[4].kv.mod_revision, 8);
}

TEST(EtcdCodecWatch, PutAndDeleteWithPrevKv) {
  const auto put = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"11","raft_term":"2"},)"
      R"("events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"11","version":"6","value":"cXV4"},)"
      R"("prev_kv":{"key":"Zm9v","create_revision":"2","mod_revision":"8","version":"5"}}]}})");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->events.size(), 1u);
  EXPECT_EQ(put->events[0].kv.value, "qux");
  ASSERT_TRUE(put->events[0].prev_kv);
  EXPECT_EQ(put->events[0].prev_kv->mod_revision, 8);

  const auto del = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"12","raft_term":"2"},)"
      R"("events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"12"},)"
      R"("prev_kv":{"key":"Zm9v","create_revision":"2","mod_revision":"11","version":"6","value":"cXV4"}}]}})");
  ASSERT_TRUE(del);
  ASSERT_EQ(del->events.size(), 1u);
  EXPECT_EQ(del->events[0].type, WatchEvent::Type::del);
  EXPECT_EQ(del->events[0].kv, (KeyValue{"foo", "", 0, 12, 0, 0}));
  EXPECT_EQ(del->events[0].prev_kv->value, "qux");
}

TEST(EtcdCodecWatch, SecondWatchCarriesItsId) {
  const auto created = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"10","raft_term":"2"},"watch_id":"7","created":true}})");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->watch_id, 7);
  const auto canceled = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"12","raft_term":"2"},"watch_id":"7","canceled":true}})");
  ASSERT_TRUE(canceled);
  EXPECT_TRUE(canceled->canceled);
  EXPECT_EQ(canceled->compact_revision, 0);
}

TEST(EtcdCodecWatch, ProgressAnswerHasWatchIdMinusOne) {
  const auto r = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"10","raft_term":"2"},"watch_id":"-1"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->watch_id, -1);
  EXPECT_TRUE(r->is_progress());
  EXPECT_EQ(r->header.revision, 10);
}

TEST(EtcdCodecWatch, CompactedStartIsCanceledWithCompactRevisionAndAHeaderWithoutRevision) {
  // Sent right after that watch's created message.
  const auto r = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","raft_term":"2"},"canceled":true,"compact_revision":"11"}})");
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_TRUE(r->canceled);
  EXPECT_FALSE(r->created);
  EXPECT_EQ(r->compact_revision, 11);
  EXPECT_EQ(r->header.revision, 0);
  EXPECT_EQ(r->watch_id, 0);
}

TEST(EtcdCodecWatch, RefusedCreateIsCreatedAndCanceledAtOnce) {
  const auto token = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"13","raft_term":"2"},)"
      R"("watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"}})");
  ASSERT_TRUE(token);
  EXPECT_TRUE(token->created && token->canceled);
  EXPECT_EQ(token->watch_id, -1);
  EXPECT_EQ(token->cancel_reason, "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token");

  const auto duplicate = parse_watch_response(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"12","raft_term":"2"},)"
      R"("watch_id":"-1","created":true,"canceled":true,"cancel_reason":"mvcc: duplicate watch ID provided on the WatchStream"}})");
  ASSERT_TRUE(duplicate);
  EXPECT_EQ(duplicate->cancel_reason, "mvcc: duplicate watch ID provided on the WatchStream");
}

TEST(EtcdCodecWatch, ErrorFramesOfTheWebsocketAreTheUnaryShape) {
  // A create request the gateway cannot decode: this frame, then the server closes the socket.
  const auto r = parse_watch_response(
      R"({"error":"illegal base64 data at input byte 0","message":"illegal base64 data at input byte 0","code":2})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, EtcdError::Kind::server);
  EXPECT_EQ(r.error().code, grpc_code::unknown);
}

TEST(EtcdCodecWatch, TrailingNewlineOfTheHttpStreamIsIgnored) {
  const auto r = parse_watch_response(
      "{\"result\":{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\",\"revision\":\"13\","
      "\"raft_term\":\"2\"},\"created\":true}}\r\n");
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_TRUE(r->created);
}

TEST(EtcdCodecWatch, MalformedMessages) {
  for (const std::string_view m :
       {std::string_view(R"({"header":{"revision":"1"},"created":true})"),  // not wrapped in result
        std::string_view(R"({"result":{"events":[{"type":"MOVE","kv":{"key":"Zm9v"}}]}})"),
        std::string_view(R"({"result":{"events":[7]}})"), std::string_view(R"({"result":{"events":[{"kv":{"key":"%"}}]}})"),
        std::string_view(R"({"result":{"compact_revision":"eleven"}})"), std::string_view("")}) {
    const auto r = parse_watch_response(m);
    ASSERT_FALSE(r) << m;
    EXPECT_EQ(r.error().kind, EtcdError::Kind::protocol) << m;
  }
}

}  // namespace
}  // namespace bgproxy::cluster
