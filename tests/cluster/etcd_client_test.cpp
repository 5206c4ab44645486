// The etcd client against a real etcd (Debian's etcd-server 3.4) on 127.0.0.1, started by each
// test with ephemeral ports and a temp data dir. The io_context runs on the test's thread; tests
// wait for answers and events, bounded, never for a fixed time, except where time passing is the
// point (a lease outliving its TTL).

#include "control/cluster/etcd_client.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "etcd_server.hpp"

namespace bgproxy::cluster {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using bgtest::etcd::Member;
using bgtest::etcd::TempDir;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

/// What a watch reported, in order.
struct WatchLog {
  std::vector<WatchEvent> events;
  std::vector<std::int64_t> compactions;
  int connects = 0;
  std::vector<std::string> failures;

  Watch::Handlers handlers() {
    return Watch::Handlers{
        [this](const WatchResponse& r) { events.insert(events.end(), r.events.begin(), r.events.end()); },
        [this](std::int64_t rev) { compactions.push_back(rev); },
        [this](bool up, const EtcdError* why) {
          if (up) {
            ++connects;
          } else {
            failures.push_back(describe(*why));
          }
        }};
  }
  bool has_put(const std::string& key, const std::string& value) const {
    return std::any_of(events.begin(), events.end(), [&](const WatchEvent& e) {
      return e.type == WatchEvent::Type::put && e.kv.key == key && e.kv.value == value;
    });
  }
};

class EtcdClient : public ::testing::Test {
 protected:
  std::unique_ptr<Client> make_client(std::vector<config::EtcdEndpoint> endpoints,
                                      const std::function<void(ClientOptions&)>& adjust = {}) {
    ClientOptions o;
    o.endpoints = std::move(endpoints);
    if (adjust) adjust(o);
    auto c = Client::create(ioc_, std::move(o));
    if (!c) throw std::runtime_error(describe(c.error()));
    return std::move(*c);
  }

  /// Runs the loop until `done()` or `timeout`. @return done()
  bool run_until(const std::function<bool()>& done, Ms timeout = Ms(10000)) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
      const auto now = Clock::now();
      if (now >= deadline) return false;
      ioc_.run_one_for(std::min<Clock::duration>(deadline - now, Ms(50)));
    }
    return true;
  }

  /// Starts one request and waits for its answer.
  template <class T>
  EtcdResult<T> call(const std::function<void(Client::Handler<T>)>& start, Ms timeout = Ms(10000)) {
    std::optional<EtcdResult<T>> out;
    start([&out](EtcdResult<T> r) { out.emplace(std::move(r)); });
    if (!run_until([&] { return out.has_value(); }, timeout)) {
      return EtcdError{EtcdError::Kind::timeout, 0, "test: no answer within " + std::to_string(timeout.count()) + "ms"};
    }
    return std::move(*out);
  }

  EtcdResult<PutResult> put(Client& c, const std::string& k, const std::string& v, std::int64_t lease = 0) {
    return call<PutResult>([&](auto h) { c.put(k, v, lease, std::move(h)); });
  }
  EtcdResult<RangeResult> get(Client& c, const std::string& k, const RangeOptions& o = {}) {
    return call<RangeResult>([&](auto h) { c.range(k, o, std::move(h)); });
  }
  EtcdResult<CasResult> cas(Client& c, const std::string& k, std::int64_t rev, const std::string& v) {
    return call<CasResult>([&](auto h) { c.txn_cas(k, rev, v, 0, std::move(h)); });
  }

  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> guard_ = net::make_work_guard(ioc_);
  TempDir dir_;
};

#define ASSERT_OK(r) ASSERT_TRUE(r) << describe((r).error())

// ---------------------------------------------------------------------------------------------
// Requests

TEST_F(EtcdClient, PutRangeDeleteRoundTrip) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});

  const auto p = put(*c, "/t/a", "1");
  ASSERT_OK(p);
  EXPECT_GT(p->header.revision, 1);
  const std::string binary("\x00\xff/\n", 4);
  ASSERT_OK(put(*c, "/t/" + binary, binary));
  ASSERT_OK(put(*c, "/t/empty", ""));

  const auto one = get(*c, "/t/a");
  ASSERT_OK(one);
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].value, "1");
  EXPECT_EQ(one->kvs[0].mod_revision, p->header.revision);
  EXPECT_EQ(one->kvs[0].create_revision, p->header.revision);
  EXPECT_EQ(one->kvs[0].version, 1);

  RangeOptions prefix;
  prefix.range_end = prefix_end("/t/");
  const auto all = get(*c, "/t/", prefix);
  ASSERT_OK(all);
  ASSERT_EQ(all->kvs.size(), 3u);
  EXPECT_EQ(all->kvs[0].key, "/t/" + binary);  // keys come sorted by bytes
  EXPECT_EQ(all->kvs[0].value, binary);
  EXPECT_EQ(all->kvs[1].key, "/t/a");
  EXPECT_EQ(all->kvs[2].value, "");
  EXPECT_EQ(etcd.etcdctl_ok({"get", "/t/a", "--print-value-only"}), "1\n");

  const auto d = call<DeleteResult>([&](auto h) { c->delete_range("/t/", prefix_end("/t/"), std::move(h)); });
  ASSERT_OK(d);
  EXPECT_EQ(d->deleted, 3);
  const auto none = get(*c, "/t/a");
  ASSERT_OK(none);
  EXPECT_TRUE(none->kvs.empty());
  EXPECT_EQ(none->count, 0);
}

TEST_F(EtcdClient, CasCreatesThenExactlyOneOfTwoWinsAndTheLoserSeesTheWinner) {
  Member etcd(dir_.path());
  auto a = make_client({etcd.endpoint()});
  auto b = make_client({etcd.endpoint()});

  const auto created = cas(*a, "/svc/app", 0, "v1");
  ASSERT_OK(created);
  EXPECT_TRUE(created->succeeded);
  const std::int64_t rev = created->header.revision;

  // The key exists now: "create if absent" loses and reads it in the same round trip.
  const auto again = cas(*b, "/svc/app", 0, "other");
  ASSERT_OK(again);
  EXPECT_FALSE(again->succeeded);
  ASSERT_TRUE(again->current);
  EXPECT_EQ(again->current->value, "v1");
  EXPECT_EQ(again->current->mod_revision, rev);

  // Both compare against the same revision, at once: one commits, the other sees its value.
  std::optional<EtcdResult<CasResult>> ra, rb;
  a->txn_cas("/svc/app", rev, "from-a", 0, [&](EtcdResult<CasResult> r) { ra.emplace(std::move(r)); });
  b->txn_cas("/svc/app", rev, "from-b", 0, [&](EtcdResult<CasResult> r) { rb.emplace(std::move(r)); });
  ASSERT_TRUE(run_until([&] { return ra && rb; }));
  ASSERT_OK(*ra);
  ASSERT_OK(*rb);
  ASSERT_NE((*ra)->succeeded, (*rb)->succeeded);
  const CasResult& won = (*ra)->succeeded ? **ra : **rb;
  const CasResult& lost = (*ra)->succeeded ? **rb : **ra;
  const std::string winner = (*ra)->succeeded ? "from-a" : "from-b";
  ASSERT_TRUE(lost.current);
  EXPECT_EQ(lost.current->value, winner);
  EXPECT_EQ(lost.current->mod_revision, won.header.revision);

  // The loser retries against what it saw, and wins.
  const auto retry = cas(*a, "/svc/app", lost.current->mod_revision, "retried");
  ASSERT_OK(retry);
  EXPECT_TRUE(retry->succeeded);
  EXPECT_EQ(get(*a, "/svc/app")->kvs.at(0).value, "retried");
}

TEST_F(EtcdClient, LeaseKeptAliveOutlivesItsTtlThenExpiresAndTakesItsKey) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  WatchLog log;
  WatchOptions wo;
  wo.key = "/members/a";
  auto watch = c->watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return log.connects == 1; }));

  const auto lease = call<LeaseGrantResult>([&](auto h) { c->lease_grant(std::chrono::seconds(1), std::move(h)); });
  ASSERT_OK(lease);
  EXPECT_EQ(lease->ttl, 1);
  ASSERT_OK(put(*c, "/members/a", "up", lease->id));
  EXPECT_EQ(get(*c, "/members/a")->kvs.at(0).lease, lease->id);

  // Refreshed every 300 ms for 2.5 s, 2.5 times its TTL: still there.
  const auto until = Clock::now() + Ms(2500);
  while (Clock::now() < until) {
    const auto k = call<LeaseKeepAliveResult>([&](auto h) { c->lease_keepalive(lease->id, std::move(h)); });
    ASSERT_OK(k);
    EXPECT_EQ(k->id, lease->id);
    EXPECT_EQ(k->ttl, 1);
    net::steady_timer pause(ioc_, Ms(300));
    bool waited = false;
    pause.async_wait([&](boost::system::error_code) { waited = true; });
    run_until([&] { return waited; });
  }
  ASSERT_EQ(get(*c, "/members/a")->kvs.size(), 1u);

  // No more refreshes: etcd deletes the key when the lease expires, and the watch sees it.
  const auto stopped = Clock::now();
  ASSERT_TRUE(run_until([&] { return !log.events.empty() && log.events.back().type == WatchEvent::Type::del; }));
  EXPECT_LT(Clock::now() - stopped, Ms(4000));
  const auto gone = call<LeaseKeepAliveResult>([&](auto h) { c->lease_keepalive(lease->id, std::move(h)); });
  ASSERT_OK(gone);
  EXPECT_EQ(gone->ttl, 0);  // no error: only no TTL
  const auto orphan = put(*c, "/members/a", "again", lease->id);
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().kind, EtcdError::Kind::server);
  EXPECT_EQ(orphan.error().code, grpc_code::not_found);
  EXPECT_EQ(orphan.error().message, "etcdserver: requested lease not found");
}

TEST_F(EtcdClient, LeaseRevoked) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  const auto lease = call<LeaseGrantResult>([&](auto h) { c->lease_grant(std::chrono::seconds(30), std::move(h)); });
  ASSERT_OK(lease);
  ASSERT_OK(put(*c, "/stats/app/a", "{}", lease->id));
  ASSERT_OK(call<ResponseHeader>([&](auto h) { c->lease_revoke(lease->id, std::move(h)); }));
  EXPECT_TRUE(get(*c, "/stats/app/a")->kvs.empty());
}

// ---------------------------------------------------------------------------------------------
// Watch

void watch_sees_put_and_delete(Member& etcd, Client& c, WatchTransport transport, WatchLog& log,
                               const std::function<bool(const std::function<bool()>&)>& run_until) {
  WatchOptions wo;
  wo.key = "/w/";
  wo.range_end = prefix_end("/w/");
  wo.prev_kv = true;
  wo.transport = transport;
  auto watch = c.watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return log.connects == 1; })) << ::testing::PrintToString(log.failures);
  EXPECT_TRUE(watch->connected());

  etcd.etcdctl_ok({"put", "/w/x", "hello"});
  ASSERT_TRUE(run_until([&] { return log.events.size() == 1; }));
  EXPECT_EQ(log.events[0].type, WatchEvent::Type::put);
  EXPECT_EQ(log.events[0].kv.key, "/w/x");
  EXPECT_EQ(log.events[0].kv.value, "hello");
  EXPECT_FALSE(log.events[0].prev_kv);

  etcd.etcdctl_ok({"put", "/outside", "ignored"});
  etcd.etcdctl_ok({"del", "/w/x"});
  ASSERT_TRUE(run_until([&] { return log.events.size() == 2; }));
  EXPECT_EQ(log.events[1].type, WatchEvent::Type::del);
  EXPECT_EQ(log.events[1].kv.key, "/w/x");
  ASSERT_TRUE(log.events[1].prev_kv);
  EXPECT_EQ(log.events[1].prev_kv->value, "hello");
  EXPECT_EQ(watch->next_revision(), log.events[1].kv.mod_revision + 1);
  EXPECT_TRUE(log.failures.empty()) << ::testing::PrintToString(log.failures);
}

TEST_F(EtcdClient, WebsocketWatchSeesPutAndDeleteFromEtcdctl) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  WatchLog log;
  watch_sees_put_and_delete(etcd, *c, WatchTransport::websocket, log, [&](auto f) { return run_until(f); });
}

TEST_F(EtcdClient, HttpStreamWatchSeesPutAndDeleteFromEtcdctl) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  WatchLog log;
  watch_sees_put_and_delete(etcd, *c, WatchTransport::http_stream, log, [&](auto f) { return run_until(f); });
}

TEST_F(EtcdClient, WebsocketWatchIsPingedWhileQuiet) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  WatchLog log;
  WatchOptions wo;
  wo.key = "/quiet";
  wo.ping_interval = Ms(100);
  auto watch = c->watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return log.connects == 1; }));
  // Ten ping intervals of silence from the key: progress answers keep the stream alive.
  net::steady_timer quiet(ioc_, Ms(1000));
  bool done = false;
  quiet.async_wait([&](boost::system::error_code) { done = true; });
  run_until([&] { return done; });
  EXPECT_TRUE(watch->connected());
  EXPECT_TRUE(log.failures.empty()) << ::testing::PrintToString(log.failures);
  EXPECT_EQ(log.connects, 1);
}

void watch_from_compacted_revision(Member& etcd, Client& c, WatchTransport transport,
                                   const std::function<bool(const std::function<bool()>&)>& run_until,
                                   const std::function<EtcdResult<PutResult>(const std::string&, const std::string&)>& put,
                                   const std::function<EtcdResult<RangeResult>(const std::string&)>& get) {
  const auto first = put("/c/k", "1");
  ASSERT_OK(first);
  ASSERT_OK(put("/c/k", "2"));
  const auto third = put("/c/k", "3");
  ASSERT_OK(third);
  etcd.etcdctl_ok({"compact", std::to_string(third->header.revision)});

  WatchLog log;
  WatchOptions wo;
  wo.key = "/c/k";
  wo.start_revision = first->header.revision;
  wo.transport = transport;
  auto watch = c.watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return !log.compactions.empty(); })) << ::testing::PrintToString(log.failures);
  EXPECT_EQ(log.compactions, std::vector<std::int64_t>{third->header.revision});
  EXPECT_TRUE(log.events.empty());
  EXPECT_FALSE(watch->connected());

  // Resync: read what the watch covers, then watch from after the read.
  const auto read = get("/c/k");
  ASSERT_OK(read);
  EXPECT_EQ(read->kvs.at(0).value, "3");
  watch->resume(read->header.revision + 1);
  ASSERT_TRUE(run_until([&] { return log.connects == 2; })) << ::testing::PrintToString(log.failures);
  ASSERT_OK(put("/c/k", "4"));
  ASSERT_TRUE(run_until([&] { return log.events.size() == 1; }));
  EXPECT_EQ(log.events[0].kv.value, "4");
  EXPECT_EQ(log.compactions.size(), 1u);
}

TEST_F(EtcdClient, WebsocketWatchFromACompactedRevisionReportsItAndResumesAfterARead) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  watch_from_compacted_revision(
      etcd, *c, WatchTransport::websocket, [&](auto f) { return run_until(f); },
      [&](const std::string& k, const std::string& v) { return put(*c, k, v); }, [&](const std::string& k) { return get(*c, k); });
}

TEST_F(EtcdClient, HttpStreamWatchFromACompactedRevisionReportsItAndResumesAfterARead) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  watch_from_compacted_revision(
      etcd, *c, WatchTransport::http_stream, [&](auto f) { return run_until(f); },
      [&](const std::string& k, const std::string& v) { return put(*c, k, v); }, [&](const std::string& k) { return get(*c, k); });
}

TEST_F(EtcdClient, WatchReconnectsAfterARestartAndLosesNoEvent) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()}, [](ClientOptions& o) { o.timeout = Ms(1000); });
  WatchLog ws_log, http_log;
  WatchOptions wo;
  wo.key = "/r/";
  wo.range_end = prefix_end("/r/");
  wo.max_backoff = Ms(200);
  wo.transport = WatchTransport::websocket;
  auto ws = c->watch(wo, ws_log.handlers());
  wo.transport = WatchTransport::http_stream;
  auto hs = c->watch(wo, http_log.handlers());
  ASSERT_TRUE(run_until([&] { return ws_log.connects == 1 && http_log.connects == 1; }));
  etcd.etcdctl_ok({"put", "/r/1", "before"});
  ASSERT_TRUE(run_until([&] { return ws_log.events.size() == 1 && http_log.events.size() == 1; }));

  etcd.stop();
  ASSERT_TRUE(run_until([&] { return !ws_log.failures.empty() && !http_log.failures.empty(); }));
  etcd.start();
  // Written before the watches are back: they resume from the revision after "before".
  etcd.etcdctl_ok({"put", "/r/2", "while-away"});
  etcd.etcdctl_ok({"put", "/r/3", "after"});
  for (WatchLog* log : {&ws_log, &http_log}) {
    ASSERT_TRUE(run_until([&] { return log->events.size() >= 3; })) << ::testing::PrintToString(log->failures);
    ASSERT_EQ(log->events.size(), 3u);
    EXPECT_EQ(log->events[1].kv.value, "while-away");
    EXPECT_EQ(log->events[2].kv.value, "after");
    EXPECT_GE(log->connects, 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Endpoints: failover, timeouts, stale connections

TEST_F(EtcdClient, FailsOverFromARefusedEndpoint) {
  Member etcd(dir_.path());
  const std::uint16_t nobody = bgtest::etcd::free_port();
  const config::EtcdEndpoint refused{"http://127.0.0.1:" + std::to_string(nobody), false, "127.0.0.1", nobody};
  auto c = make_client({refused, etcd.endpoint()});
  EXPECT_EQ(c->current_endpoint(), refused.text);
  ASSERT_OK(put(*c, "/f/a", "1"));  // not idempotent, but never sent to the refused one
  EXPECT_EQ(c->current_endpoint(), etcd.url());
  WatchLog log;
  WatchOptions wo;
  wo.key = "/f/a";
  auto watch = c->watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return log.connects == 1; }));
  ASSERT_OK(put(*c, "/f/a", "2"));
  ASSERT_TRUE(run_until([&] { return log.has_put("/f/a", "2"); }));

  // Every endpoint refused: the answer says so, within the timeout.
  auto dead = make_client({refused});
  const auto r = put(*dead, "/f/a", "3");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, EtcdError::Kind::unavailable);
  EXPECT_NE(r.error().message.find("Connection refused"), std::string::npos) << r.error().message;
}

TEST_F(EtcdClient, SilentEndpointTimesOutAndTheNextRequestGoesElsewhere) {
  Member etcd(dir_.path());
  // A listener that never accepts: the kernel completes connects, nobody ever answers.
  const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(silent, 16), 0);
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::uint16_t port = ntohs(a.sin_port);
  const config::EtcdEndpoint hung{"http://127.0.0.1:" + std::to_string(port), false, "127.0.0.1", port};

  auto c = make_client({hung, etcd.endpoint()}, [](ClientOptions& o) { o.timeout = Ms(500); });
  const auto start = Clock::now();
  const auto r = put(*c, "/s/a", "1");
  const auto took = Clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, EtcdError::Kind::timeout) << describe(r.error());
  EXPECT_GE(took, Ms(450));
  EXPECT_LT(took, Ms(1500));
  EXPECT_EQ(c->current_endpoint(), etcd.url());
  ASSERT_OK(put(*c, "/s/a", "2"));
  ::close(silent);
}

TEST_F(EtcdClient, KeptAliveConnectionClosedByARestartIsNotReused) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  ASSERT_OK(put(*c, "/k/a", "1"));
  etcd.stop();
  etcd.start();
  // A put is not repeated when its answer is lost: it only succeeds if it goes on a fresh connection.
  const auto r = put(*c, "/k/a", "2");
  ASSERT_OK(r);
  EXPECT_EQ(get(*c, "/k/a")->kvs.at(0).value, "2");
}

TEST_F(EtcdClient, ManyRequestsAtOnceShareAFewConnections) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()}, [](ClientOptions& o) { o.max_connections = 2; });
  constexpr int n = 50;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    c->put("/many/" + std::to_string(i), std::to_string(i), 0, [&](EtcdResult<PutResult> r) {
      EXPECT_TRUE(r) << describe(r.error());
      ok += r ? 1 : 0;
    });
  }
  ASSERT_TRUE(run_until([&] { return ok == n; }));
  RangeOptions o;
  o.range_end = prefix_end("/many/");
  o.count_only = true;
  EXPECT_EQ(get(*c, "/many/", o)->count, n);
}

TEST_F(EtcdClient, MemberWithoutLeaderRefusesAtOnceAndServesWhenQuorumIsBack) {
  bgtest::etcd::Cluster cluster(dir_.path());
  auto all = make_client(cluster.endpoints());
  ASSERT_OK(put(*all, "/q/a", "1"));
  auto only0 = make_client({cluster.member(0).endpoint()}, [](ClientOptions& o) { o.timeout = Ms(1000); });
  WatchLog log;
  WatchOptions wo;
  wo.key = "/q/a";
  wo.transport = WatchTransport::http_stream;  // carries Hasleader (a websocket watch cannot)
  wo.max_backoff = Ms(200);
  auto watch = only0->watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return log.connects == 1; }));
  cluster.member(1).stop();
  cluster.member(2).stop();
  // Until m0 notices (an election timeout), a put waits for a quorum and times out; once it knows
  // it has no leader, it says so at once (Hasleader), within the client's 1 s, instead of hanging
  // for 7 s (etcd's own request timeout).
  std::optional<EtcdError> no_leader;
  const auto deadline = Clock::now() + Ms(10000);
  while (!no_leader && Clock::now() < deadline) {
    const auto r = put(*only0, "/q/a", "2");
    ASSERT_FALSE(r);
    if (r.error().kind == EtcdError::Kind::server) no_leader = r.error();
  }
  ASSERT_TRUE(no_leader);
  EXPECT_EQ(no_leader->code, grpc_code::unavailable);
  EXPECT_EQ(no_leader->message, "etcdserver: no leader");
  EXPECT_TRUE(is_member_unavailable(*no_leader));
  // The watch on m0 is ended by etcd's leader monitor (after a few election timeouts).
  const auto no_leader_failure = [&] {
    return std::any_of(log.failures.begin(), log.failures.end(),
                       [](const std::string& f) { return f == "server error 14: etcdserver: no leader"; });
  };
  ASSERT_TRUE(run_until(no_leader_failure)) << ::testing::PrintToString(log.failures);

  cluster.member(1).start();
  std::optional<EtcdResult<PutResult>> r;
  ASSERT_TRUE(run_until([&] {
    r.emplace(put(*all, "/q/a", "3"));
    return r->has_value();
  }, Ms(15000)));
  EXPECT_EQ(get(*all, "/q/a")->kvs.at(0).value, "3");
  ASSERT_TRUE(run_until([&] { return log.has_put("/q/a", "3"); })) << ::testing::PrintToString(log.failures);
  EXPECT_GE(log.connects, 2);
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// POST with a given token, outside the client: what etcd says to that token.
std::string raw_post(std::uint16_t port, const std::string& target, const std::string& body, const std::string& token) {
  net::io_context ioc;
  beast::tcp_stream s(ioc);
  s.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req(http::verb::post, target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, token);
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return res.body();
}

void enable_auth(Member& etcd) {
  etcd.etcdctl_ok({"user", "add", "root:rootpw"});
  etcd.etcdctl_ok({"role", "add", "root"});
  etcd.etcdctl_ok({"user", "grant-role", "root", "root"});
  etcd.etcdctl_ok({"user", "add", "bg:bgpw"});
  etcd.etcdctl_ok({"role", "add", "bgproxy"});
  etcd.etcdctl_ok({"role", "grant-permission", "bgproxy", "--prefix=true", "readwrite", "/bg/"});
  etcd.etcdctl_ok({"user", "grant-role", "bg", "bgproxy"});
  etcd.etcdctl_ok({"auth", "enable"});
}

TEST_F(EtcdClient, AuthenticatesAndRenewsAnInvalidatedToken) {
  Member etcd(dir_.path());
  enable_auth(etcd);
  auto c = make_client({etcd.endpoint()}, [](ClientOptions& o) {
    o.username = "bg";
    o.password = "bgpw";
  });
  ASSERT_OK(put(*c, "/bg/a", "1"));
  const auto auth = call<AuthResult>([&](auto h) { c->authenticate(std::move(h)); });
  ASSERT_OK(auth);
  const std::string old_token = auth->token;
  ASSERT_FALSE(old_token.empty());

  // Setting the password (even to the same one) drops the user's tokens.
  etcd.etcdctl_ok({"--user", "root:rootpw", "user", "passwd", "bg", "--interactive=false"}, "bgpw\n");
  const std::string refused = raw_post(etcd.client_port(), "/v3/kv/range", range_request("/bg/a"), old_token);
  ASSERT_NE(refused.find("etcdserver: invalid auth token"), std::string::npos) << refused;

  const auto r = get(*c, "/bg/a");  // refused once, authenticated again, repeated
  ASSERT_OK(r);
  EXPECT_EQ(r->kvs.at(0).value, "1");
  ASSERT_OK(put(*c, "/bg/a", "2"));

  const auto denied = put(*c, "/elsewhere", "x");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, grpc_code::permission_denied);
  EXPECT_EQ(denied.error().message, "etcdserver: permission denied");
}

TEST_F(EtcdClient, WrongPasswordAndMissingCredentialsAreAuthErrors) {
  Member etcd(dir_.path());
  enable_auth(etcd);
  auto wrong = make_client({etcd.endpoint()}, [](ClientOptions& o) {
    o.username = "bg";
    o.password = "nope";
  });
  const auto w = put(*wrong, "/bg/a", "1");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().kind, EtcdError::Kind::auth);
  EXPECT_EQ(w.error().message, "etcdserver: authentication failed, invalid user ID or password");

  auto anonymous = make_client({etcd.endpoint()});
  const auto n = get(*anonymous, "/bg/a");
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().kind, EtcdError::Kind::auth);
  EXPECT_NE(n.error().message.find("etcdserver: user name is empty"), std::string::npos) << n.error().message;
}

TEST_F(EtcdClient, CredentialsForAClusterWithoutAuthAreNotNeeded) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()}, [](ClientOptions& o) {
    o.username = "bg";
    o.password = "bgpw";
  });
  ASSERT_OK(put(*c, "/bg/a", "1"));  // "authentication is not enabled": no token, no error
  // Auth enabled later: the next request authenticates.
  enable_auth(etcd);
  ASSERT_OK(put(*c, "/bg/a", "2"));
  EXPECT_EQ(get(*c, "/bg/a")->kvs.at(0).value, "2");
}

TEST_F(EtcdClient, WatchWithAuthUsesTheHttpStreamAndAuthenticatesAgainAfterARestart) {
  Member etcd(dir_.path());
  enable_auth(etcd);
  auto c = make_client({etcd.endpoint()}, [](ClientOptions& o) {
    o.username = "bg";
    o.password = "bgpw";
    o.timeout = Ms(1000);
  });
  WatchLog log;
  WatchOptions wo;
  wo.key = "/bg/";
  wo.range_end = prefix_end("/bg/");
  wo.max_backoff = Ms(200);
  auto watch = c->watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return log.connects == 1; })) << ::testing::PrintToString(log.failures);
  etcd.etcdctl_ok({"--user", "root:rootpw", "put", "/bg/w", "1"});
  ASSERT_TRUE(run_until([&] { return log.has_put("/bg/w", "1"); }));

  // Simple tokens live in the member's memory: after a restart every token is unknown.
  etcd.stop();
  etcd.start();
  etcd.etcdctl_ok({"--user", "root:rootpw", "put", "/bg/w", "2"});
  ASSERT_TRUE(run_until([&] { return log.has_put("/bg/w", "2"); })) << ::testing::PrintToString(log.failures);
  EXPECT_GE(log.connects, 2);
  const bool token_refused = std::any_of(log.failures.begin(), log.failures.end(), [](const std::string& f) {
    return f.find("invalid auth token") != std::string::npos;
  });
  EXPECT_TRUE(token_refused) << ::testing::PrintToString(log.failures);
}

TEST_F(EtcdClient, WebsocketWatchCannotCarryAToken) {
  // etcd 3.4's websocket proxy forwards no Authorization header and makes "Bearer T" of the
  // subprotocol, which etcd refuses: hence the HTTP stream whenever there is a user name.
  Member etcd(dir_.path());
  enable_auth(etcd);
  auto c = make_client({etcd.endpoint()}, [](ClientOptions& o) {
    o.username = "bg";
    o.password = "bgpw";
  });
  WatchLog log;
  WatchOptions wo;
  wo.key = "/bg/w";
  wo.transport = WatchTransport::websocket;
  auto watch = c->watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return !log.failures.empty(); }));
  EXPECT_EQ(log.connects, 0);
  EXPECT_NE(log.failures[0].find("watch refused: rpc error: code = InvalidArgument desc = etcdserver: user name is empty"),
            std::string::npos)
      << log.failures[0];
}

// ---------------------------------------------------------------------------------------------
// TLS

TEST_F(EtcdClient, TlsWithAClientCertificate) {
  bgtest::etcd::make_certificates(dir_.path());
  Member etcd(dir_.path(), bgtest::etcd::MemberOptions{true, {}});
  const auto files = [&](ClientOptions& o) {
    o.ca_file = (dir_.path() / "ca.pem").string();
    o.certificate_file = (dir_.path() / "client.pem").string();
    o.private_key_file = (dir_.path() / "client.key").string();
  };
  auto c = make_client({etcd.endpoint()}, files);
  ASSERT_OK(put(*c, "/tls/a", "1"));
  EXPECT_EQ(get(*c, "/tls/a")->kvs.at(0).value, "1");
  WatchLog log;
  WatchOptions wo;
  wo.key = "/tls/a";
  auto watch = c->watch(wo, log.handlers());
  ASSERT_TRUE(run_until([&] { return log.connects == 1; })) << ::testing::PrintToString(log.failures);
  etcd.etcdctl_ok({"put", "/tls/a", "2"});
  ASSERT_TRUE(run_until([&] { return log.has_put("/tls/a", "2"); }));
  watch.reset();

  // Without a client certificate etcd ends the connection.
  auto anonymous = make_client({etcd.endpoint()}, [&](ClientOptions& o) { o.ca_file = (dir_.path() / "ca.pem").string(); });
  const auto refused = put(*anonymous, "/tls/a", "3");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, EtcdError::Kind::unavailable) << describe(refused.error());

  // A server certificate from another CA is refused by the client.
  TempDir other;
  bgtest::etcd::make_certificates(other.path());
  auto mistrusting = make_client({etcd.endpoint()}, [&](ClientOptions& o) {
    files(o);
    o.ca_file = (other.path() / "ca.pem").string();
  });
  const auto untrusted = put(*mistrusting, "/tls/a", "4");
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().kind, EtcdError::Kind::unavailable);
  EXPECT_NE(untrusted.error().message.find("TLS handshake"), std::string::npos) << untrusted.error().message;

  // A file that cannot be loaded is refused when the client is made.
  ClientOptions bad;
  bad.endpoints = {etcd.endpoint()};
  bad.ca_file = (dir_.path() / "missing.pem").string();
  const auto made = Client::create(ioc_, bad);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().kind, EtcdError::Kind::config);
  EXPECT_NE(made.error().message.find("missing.pem"), std::string::npos) << made.error().message;
}

TEST_F(EtcdClient, OptionsFromTheClusterConfig) {
  const auto pw = dir_.path() / "password";
  {
    std::ofstream(pw) << "s3cret\n";
  }
  config::Cluster cfg;
  cfg.enabled = true;
  cfg.username = "bg";
  cfg.password_file = pw.string();
  cfg.timeout = std::chrono::milliseconds(1500);
  const auto o = client_options(cfg);
  ASSERT_OK(o);
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->timeout, Ms(1500));
  EXPECT_EQ(o->endpoints.at(0).text, "http://127.0.0.1:2379");
  cfg.password_file = (dir_.path() / "none").string();
  const auto missing = client_options(cfg);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, EtcdError::Kind::config);
}

TEST_F(EtcdClient, CloseCancelsEverythingAndRunsNoHandler) {
  Member etcd(dir_.path());
  auto c = make_client({etcd.endpoint()});
  int handled = 0;
  for (int i = 0; i < 5; ++i) c->put("/close/" + std::to_string(i), "x", 0, [&](EtcdResult<PutResult>) { ++handled; });
  WatchLog log;
  WatchOptions wo;
  wo.key = "/close/";
  auto watch = c->watch(wo, log.handlers());
  c->close();  // stops the watch too
  net::steady_timer settle(ioc_, Ms(300));
  bool settled = false;
  settle.async_wait([&](boost::system::error_code) { settled = true; });
  run_until([&] { return settled; });
  EXPECT_EQ(handled, 0);
  EXPECT_EQ(log.connects, 0);
  EXPECT_TRUE(log.failures.empty());
}

}  // namespace
}  // namespace bgproxy::cluster
