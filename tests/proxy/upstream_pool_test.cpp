#include "proxy/http/upstream_pool.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

using namespace std::chrono_literals;

const Clock::time_point t0 = Clock::time_point{} + 1h;
const Clock::duration limit = 30s;  ///< timeouts.upstream_idle in these tests

class UpstreamPoolTest : public ::testing::Test {
 protected:
  boost::asio::io_context ioc;  // outlives the pool and its sockets
  BlockPool blocks{4};          // and their buffers
  UpstreamPool pool{ioc.get_executor(), 3, blocks};
};

TEST_F(UpstreamPoolTest, CreateGivesAFreshClosedConnection) {
  const auto c = pool.create(2);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->server_id, 2u);
  EXPECT_FALSE(c->socket.is_open());
  EXPECT_EQ(c->buffer.size(), 0u);
  EXPECT_EQ(c->requests, 0u);
  EXPECT_EQ(c->idle_since, Clock::time_point{});
}

TEST_F(UpstreamPoolTest, EmptyPoolHasNoIdleConnection) {
  EXPECT_EQ(pool.take_idle(0, t0, limit), nullptr);
  EXPECT_EQ(pool.take_idle(2, t0, limit), nullptr);
}

TEST_F(UpstreamPoolTest, TakeIdleIsLifo) {
  auto a = pool.create(1);
  auto b = pool.create(1);
  auto c = pool.create(1);
  const auto *pa = a.get(), *pb = b.get(), *pc = c.get();
  // Taken within the sweep tick they were returned in: no probe of the unopened sockets.
  pool.put_idle(std::move(a), t0);
  pool.put_idle(std::move(b), t0);
  pool.put_idle(std::move(c), t0);
  const auto now = t0;
  auto x = pool.take_idle(1, now, limit);
  auto y = pool.take_idle(1, now, limit);
  auto z = pool.take_idle(1, now, limit);
  EXPECT_EQ(x.get(), pc);
  EXPECT_EQ(y.get(), pb);
  EXPECT_EQ(z.get(), pa);
  EXPECT_EQ(pool.take_idle(1, now, limit), nullptr);
}

TEST_F(UpstreamPoolTest, StacksArePerServer) {
  auto a = pool.create(0);
  auto b = pool.create(2);
  const auto *pa = a.get(), *pb = b.get();
  pool.put_idle(std::move(a), t0);
  pool.put_idle(std::move(b), t0);
  EXPECT_EQ(pool.take_idle(1, t0, limit), nullptr);
  EXPECT_EQ(pool.take_idle(2, t0, limit).get(), pb);
  EXPECT_EQ(pool.take_idle(2, t0, limit), nullptr);
  EXPECT_EQ(pool.take_idle(0, t0, limit).get(), pa);
}

TEST_F(UpstreamPoolTest, PutIdleStampsTimeAndKeepsState) {
  auto a = pool.create(0);
  a->requests = 7;
  pool.put_idle(std::move(a), t0 + 250ms);
  const auto back = pool.take_idle(0, t0 + 250ms, limit);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->idle_since, t0 + 250ms);
  EXPECT_EQ(back->requests, 7u);
  EXPECT_EQ(back->server_id, 0u);
}

TEST_F(UpstreamPoolTest, IdleTimeoutDropsStaleConnections) {
  pool.put_idle(pool.create(0), t0);
  pool.put_idle(pool.create(0), t0 + 1s);
  EXPECT_EQ(pool.take_idle(0, t0 + 31s, limit), nullptr);
  // They are gone from the stack, not skipped: nothing is left for an earlier `now`.
  EXPECT_EQ(pool.take_idle(0, t0 + 1s, limit), nullptr);
}

TEST_F(UpstreamPoolTest, StaleConnectionsUnderAFreshOneAreDroppedWhenReached) {
  auto a = pool.create(0);
  auto b = pool.create(0);
  const auto* pb = b.get();
  pool.put_idle(std::move(a), t0);
  pool.put_idle(std::move(b), t0 + 40s);
  EXPECT_EQ(pool.take_idle(0, t0 + 40s, limit).get(), pb);
  EXPECT_EQ(pool.take_idle(0, t0 + 40s, limit), nullptr);  // a: idle 40 s >= 30 s
}

// take_idle probes a connection watched since a sweep tick (watch_idle) with a
// non-blocking recv(MSG_PEEK). A socket that was never opened (or was closed) has
// native_handle() == -1, recv fails with EBADF, and the probe reports it as not
// open: such a connection is dropped once watched, but handed out as it is within
// the tick it was returned in.
TEST_F(UpstreamPoolTest, ClosedSocketIsHandedOutWithinItsTickThenDropped) {
  auto a = pool.create(0);
  const auto* pa = a.get();
  pool.put_idle(std::move(a), t0);
  auto back = pool.take_idle(0, t0, limit);
  EXPECT_EQ(back.get(), pa);
  EXPECT_FALSE(back->socket.is_open());

  pool.put_idle(std::move(back), t0);
  pool.watch_idle(t0, limit);
  EXPECT_EQ(pool.take_idle(0, t0 + 1ns, limit), nullptr);
  EXPECT_EQ(pool.take_idle(0, t0, limit), nullptr);  // dropped, not kept
}

TEST_F(UpstreamPoolTest, MaxIdlePerServerDiscardsTheSurplusConnection) {
  std::vector<const UpstreamConnection*> kept;
  for (int i = 0; i < 512; ++i) {
    auto c = pool.create(1);
    kept.push_back(c.get());
    pool.put_idle(std::move(c), t0);
  }
  auto surplus = pool.create(1);
  const auto* ps = surplus.get();
  pool.put_idle(std::move(surplus), t0);  // the 513th is destroyed, not stacked

  for (int i = 511; i >= 0; --i) {
    const auto c = pool.take_idle(1, t0, limit);
    ASSERT_NE(c, nullptr) << i;
    EXPECT_NE(c.get(), ps);
    EXPECT_EQ(c.get(), kept[static_cast<std::size_t>(i)]) << i;
    EXPECT_EQ(c->idle_since, t0);
  }
  EXPECT_EQ(pool.take_idle(1, t0, limit), nullptr);

  // Another server's stack is not limited by server 1's.
  pool.put_idle(pool.create(2), t0);
  EXPECT_NE(pool.take_idle(2, t0, limit), nullptr);
}

TEST_F(UpstreamPoolTest, CloseIdleEmptiesEveryStack) {
  pool.put_idle(pool.create(0), t0);
  pool.put_idle(pool.create(1), t0);
  pool.put_idle(pool.create(1), t0);
  pool.close_idle();
  EXPECT_EQ(pool.take_idle(0, t0, limit), nullptr);
  EXPECT_EQ(pool.take_idle(1, t0, limit), nullptr);
  pool.put_idle(pool.create(1), t0);  // still usable afterwards
  EXPECT_NE(pool.take_idle(1, t0, limit), nullptr);
}

TEST_F(UpstreamPoolTest, RenewClosesIdleAndRefusesConnectionsOpenedBefore) {
  auto idle = pool.create(1);
  auto busy = pool.create(1);  // in use by a request across the reload
  auto other = pool.create(2);
  const auto* po = other.get();
  pool.put_idle(std::move(idle), t0);
  pool.put_idle(std::move(other), t0);
  pool.renew(1);
  EXPECT_EQ(pool.take_idle(1, t0, limit), nullptr) << "an idle connection survived renew()";
  pool.put_idle(std::move(busy), t0);
  EXPECT_EQ(pool.take_idle(1, t0, limit), nullptr) << "a connection of the previous generation was pooled again";
  auto fresh = pool.create(1);
  const auto* pf = fresh.get();
  pool.put_idle(std::move(fresh), t0);
  EXPECT_EQ(pool.take_idle(1, t0, limit).get(), pf);
  EXPECT_EQ(pool.take_idle(2, t0, limit).get(), po) << "renewing one server closed another's connections";
}

TEST_F(UpstreamPoolTest, GrowAddsSlotsAndKeepsTheOldOnes) {
  ++pool.outstanding(2);
  auto c = pool.create(2);
  const auto* pc = c.get();
  pool.put_idle(std::move(c), t0);
  pool.grow(5);
  pool.grow(4);  // never shrinks
  EXPECT_EQ(pool.outstanding(2), 1u);
  EXPECT_EQ(pool.outstanding(4), 0u);
  EXPECT_EQ(pool.take_idle(2, t0, limit).get(), pc);
  auto d = pool.create(4);
  pool.put_idle(std::move(d), t0);
  EXPECT_NE(pool.take_idle(4, t0, limit), nullptr);
}

TEST_F(UpstreamPoolTest, OutstandingCountersArePerServer) {
  EXPECT_EQ(pool.outstanding(0), 0u);
  EXPECT_EQ(pool.outstanding(1), 0u);
  EXPECT_EQ(pool.outstanding(2), 0u);
  ++pool.outstanding(1);
  ++pool.outstanding(1);
  ++pool.outstanding(2);
  EXPECT_EQ(pool.outstanding(0), 0u);
  EXPECT_EQ(pool.outstanding(1), 2u);
  EXPECT_EQ(pool.outstanding(2), 1u);
  unsigned& ref = pool.outstanding(1);
  --ref;
  EXPECT_EQ(pool.outstanding(1), 1u);
  EXPECT_EQ(&pool.outstanding(1), &ref);  // a stable reference into the pool
}

// The probe itself, on a local socketpair (no network, no waiting): a live idle
// peer passes, a closed one or one with unexpected pending bytes is dropped.
class UpstreamPoolProbeTest : public UpstreamPoolTest {
 protected:
  UpstreamConnectionPtr live_connection(std::uint32_t server) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    peer_ = fds[1];
    auto c = pool.create(server);
    boost::system::error_code ec;
    c->socket.assign(tcp::v4(), fds[0], ec);
    EXPECT_FALSE(ec) << ec.message();
    return c;
  }
  void close_peer() {
    if (peer_ >= 0) ::close(peer_);
    peer_ = -1;
  }
  ~UpstreamPoolProbeTest() override { close_peer(); }
  int peer_ = -1;
};

TEST_F(UpstreamPoolProbeTest, LiveConnectionKeptUpToTheIdleTimeout) {
  auto c = live_connection(0);
  const auto* pc = c.get();
  pool.put_idle(std::move(c), t0);
  pool.watch_idle(t0, limit);
  auto back = pool.take_idle(0, t0 + 30s - 1ns, limit);  // just below the limit: kept, probed, alive
  ASSERT_EQ(back.get(), pc);
  EXPECT_FALSE(back->watched);
  EXPECT_EQ(back->idle_age, 30s - 1ns);
  pool.put_idle(std::move(back), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 30s, limit), nullptr);
  EXPECT_EQ(pool.learned_idle(0), Clock::duration::zero()) << "retired by our own limit: nothing learned";
}

TEST_F(UpstreamPoolProbeTest, PeerClosedIsDroppedOnceIdle) {
  auto c = live_connection(0);
  const auto* pc = c.get();
  close_peer();
  pool.put_idle(std::move(c), t0);
  auto back = pool.take_idle(0, t0, limit);  // same tick: not probed
  ASSERT_EQ(back.get(), pc);
  pool.put_idle(std::move(back), t0);
  pool.watch_idle(t0, limit);
  EXPECT_EQ(pool.take_idle(0, t0 + 100ms, limit), nullptr);
  EXPECT_EQ(pool.learned_idle(0), 80ms) << "found closed after 100 ms idle";
}

TEST_F(UpstreamPoolProbeTest, PendingBytesAreDroppedOnceIdle) {
  auto c = live_connection(0);
  ASSERT_EQ(::write(peer_, "X", 1), 1);
  pool.put_idle(std::move(c), t0);
  pool.watch_idle(t0, limit);
  EXPECT_EQ(pool.take_idle(0, t0 + 100ms, limit), nullptr);
}

// Issue 19: the watch hears the backend close an idle connection the moment it happens, drops
// the connection and learns the age (80 % of it) without any request being lost.
TEST_F(UpstreamPoolProbeTest, Issue19WatchedConnectionClosedByThePeerIsDroppedAndTeachesItsAge) {
  auto c = live_connection(1);
  const auto put_at = Clock::now();
  pool.put_idle(std::move(c), put_at);
  pool.watch_idle(t0, limit);
  ioc.poll();
  EXPECT_EQ(pool.learned_idle(1), Clock::duration::zero()) << "an open connection taught something";
  close_peer();
  ioc.run_one_for(2s);
  const auto seen_by = Clock::now() - put_at;
  EXPECT_GT(pool.learned_idle(1), Clock::duration::zero());
  EXPECT_LE(pool.learned_idle(1), seen_by * 4 / 5);
  EXPECT_EQ(pool.take_idle(1, Clock::now(), limit), nullptr) << "the closed connection stayed pooled";
}

TEST_F(UpstreamPoolProbeTest, Issue19ATakenConnectionIsNoLongerWatched) {
  auto c = live_connection(0);
  const auto* pc = c.get();
  pool.put_idle(std::move(c), t0);
  pool.watch_idle(t0, limit);
  auto back = pool.take_idle(0, t0 + 1s, limit);
  ASSERT_EQ(back.get(), pc);
  ASSERT_EQ(::write(peer_, "HTTP/1.1 200 OK\r\n", 17), 17);  // the answer to its next request
  ioc.poll();
  EXPECT_EQ(pool.learned_idle(0), Clock::duration::zero());
  EXPECT_TRUE(back->socket.is_open());
  EXPECT_EQ(pool.take_idle(0, t0 + 1s, limit), nullptr);
}

TEST_F(UpstreamPoolProbeTest, Issue19AWatchThatFiresAfterTheConnectionCameBackIsIgnored) {
  auto c = live_connection(0);
  pool.put_idle(std::move(c), t0);
  pool.watch_idle(t0, limit);
  auto back = pool.take_idle(0, t0 + 1s, limit);
  pool.put_idle(std::move(back), t0 + 2s);  // idle again, not yet watched anew
  ASSERT_EQ(::write(peer_, "X", 1), 1);
  ioc.poll();  // only the cancelled wait runs
  EXPECT_NE(pool.take_idle(0, t0 + 2s, limit), nullptr) << "a stale watch dropped a live connection";
}

TEST_F(UpstreamPoolTest, Issue19LearnedAgeRetiresEarlierAndOnlyShrinks) {
  pool.learn(0, 1s);
  EXPECT_EQ(pool.learned_idle(0), 800ms);
  pool.learn(0, 2s);
  EXPECT_EQ(pool.learned_idle(0), 800ms) << "a longer age must not loosen the limit";
  pool.learn(0, 500ms);
  EXPECT_EQ(pool.learned_idle(0), 400ms);
  EXPECT_EQ(pool.learned_idle(1), Clock::duration::zero()) << "learned per server";
  pool.put_idle(pool.create(0), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 400ms, limit), nullptr);
  pool.put_idle(pool.create(0), t0);
  EXPECT_NE(pool.take_idle(0, t0 + 399ms, limit), nullptr);
}

TEST_F(UpstreamPoolTest, Issue19ABackendThatClosesAtOnceIsNeverReused) {
  pool.learn(0, Clock::duration::zero());
  EXPECT_GT(pool.learned_idle(0), Clock::duration::zero());
  pool.put_idle(pool.create(0), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 1ms, limit), nullptr);
}

TEST_F(UpstreamPoolTest, Issue19RenewForgetsWhatWasLearned) {
  pool.learn(1, 1s);
  pool.learn(2, 1s);
  pool.renew(1);
  EXPECT_EQ(pool.learned_idle(1), Clock::duration::zero());
  EXPECT_EQ(pool.learned_idle(2), 800ms);
}

TEST_F(UpstreamPoolTest, Issue19BackendKeepAliveTimeoutRetiresEarlier) {
  auto c = pool.create(0);
  c->retire_idle = 750ms;
  pool.put_idle(std::move(c), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 750ms, limit), nullptr);
  auto d = pool.create(0);
  d->retire_idle = 750ms;
  pool.put_idle(std::move(d), t0);
  EXPECT_NE(pool.take_idle(0, t0 + 749ms, limit), nullptr);
}

TEST_F(UpstreamPoolTest, Issue19BackendKeepAliveMaxEndsTheConnection) {
  auto c = pool.create(0);
  c->max_requests = 3;
  c->requests = 2;
  pool.put_idle(std::move(c), t0);
  auto back = pool.take_idle(0, t0, limit);
  ASSERT_NE(back, nullptr);
  back->requests = 3;
  pool.put_idle(std::move(back), t0);
  EXPECT_EQ(pool.take_idle(0, t0, limit), nullptr) << "a connection past the backend's max was pooled";
}

TEST_F(UpstreamPoolTest, Issue19ConfiguredIdleLimitApplies) {
  pool.put_idle(pool.create(0), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 4s, 4s), nullptr);
  pool.put_idle(pool.create(0), t0);
  EXPECT_NE(pool.take_idle(0, t0 + 3999ms, 4s), nullptr);
}

}  // namespace
}  // namespace bgproxy::proxy
