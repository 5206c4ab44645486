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

class UpstreamPoolTest : public ::testing::Test {
 protected:
  boost::asio::io_context ioc;  // outlives the pool and its sockets
  UpstreamPool pool{ioc.get_executor(), 3};
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
  EXPECT_EQ(pool.take_idle(0, t0), nullptr);
  EXPECT_EQ(pool.take_idle(2, t0), nullptr);
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
  auto x = pool.take_idle(1, now);
  auto y = pool.take_idle(1, now);
  auto z = pool.take_idle(1, now);
  EXPECT_EQ(x.get(), pc);
  EXPECT_EQ(y.get(), pb);
  EXPECT_EQ(z.get(), pa);
  EXPECT_EQ(pool.take_idle(1, now), nullptr);
}

TEST_F(UpstreamPoolTest, StacksArePerServer) {
  auto a = pool.create(0);
  auto b = pool.create(2);
  const auto *pa = a.get(), *pb = b.get();
  pool.put_idle(std::move(a), t0);
  pool.put_idle(std::move(b), t0);
  EXPECT_EQ(pool.take_idle(1, t0), nullptr);
  EXPECT_EQ(pool.take_idle(2, t0).get(), pb);
  EXPECT_EQ(pool.take_idle(2, t0), nullptr);
  EXPECT_EQ(pool.take_idle(0, t0).get(), pa);
}

TEST_F(UpstreamPoolTest, PutIdleStampsTimeAndKeepsState) {
  auto a = pool.create(0);
  a->requests = 7;
  pool.put_idle(std::move(a), t0 + 250ms);
  const auto back = pool.take_idle(0, t0 + 250ms);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->idle_since, t0 + 250ms);
  EXPECT_EQ(back->requests, 7u);
  EXPECT_EQ(back->server_id, 0u);
}

TEST_F(UpstreamPoolTest, IdleTimeoutDropsStaleConnections) {
  pool.put_idle(pool.create(0), t0);
  pool.put_idle(pool.create(0), t0 + 1s);
  EXPECT_EQ(pool.take_idle(0, t0 + 31s + 1ns), nullptr);
  // They are gone from the stack, not skipped: nothing is left for an earlier `now`.
  EXPECT_EQ(pool.take_idle(0, t0 + 1s), nullptr);
}

TEST_F(UpstreamPoolTest, StaleConnectionsUnderAFreshOneAreDroppedWhenReached) {
  auto a = pool.create(0);
  auto b = pool.create(0);
  const auto* pb = b.get();
  pool.put_idle(std::move(a), t0);
  pool.put_idle(std::move(b), t0 + 40s);
  EXPECT_EQ(pool.take_idle(0, t0 + 40s).get(), pb);
  EXPECT_EQ(pool.take_idle(0, t0 + 40s), nullptr);  // a: idle 40 s > 30 s
}

// take_idle probes a connection idle since an earlier sweep tick (any idle time
// above zero on the coarse clock) with a non-blocking recv(MSG_PEEK). A socket
// that was never opened (or was closed) has native_handle() == -1, recv fails
// with EBADF, and the probe reports it as not open: such a connection is dropped
// once idle, but handed out as it is within the tick it was returned in.
TEST_F(UpstreamPoolTest, ClosedSocketIsHandedOutWithinItsTickThenDropped) {
  auto a = pool.create(0);
  const auto* pa = a.get();
  pool.put_idle(std::move(a), t0);
  auto back = pool.take_idle(0, t0);
  EXPECT_EQ(back.get(), pa);
  EXPECT_FALSE(back->socket.is_open());

  pool.put_idle(std::move(back), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 1ns), nullptr);
  EXPECT_EQ(pool.take_idle(0, t0), nullptr);  // dropped, not kept
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
    const auto c = pool.take_idle(1, t0);
    ASSERT_NE(c, nullptr) << i;
    EXPECT_NE(c.get(), ps);
    EXPECT_EQ(c.get(), kept[static_cast<std::size_t>(i)]) << i;
    EXPECT_EQ(c->idle_since, t0);
  }
  EXPECT_EQ(pool.take_idle(1, t0), nullptr);

  // Another server's stack is not limited by server 1's.
  pool.put_idle(pool.create(2), t0);
  EXPECT_NE(pool.take_idle(2, t0), nullptr);
}

TEST_F(UpstreamPoolTest, CloseIdleEmptiesEveryStack) {
  pool.put_idle(pool.create(0), t0);
  pool.put_idle(pool.create(1), t0);
  pool.put_idle(pool.create(1), t0);
  pool.close_idle();
  EXPECT_EQ(pool.take_idle(0, t0), nullptr);
  EXPECT_EQ(pool.take_idle(1, t0), nullptr);
  pool.put_idle(pool.create(1), t0);  // still usable afterwards
  EXPECT_NE(pool.take_idle(1, t0), nullptr);
}

TEST_F(UpstreamPoolTest, RenewClosesIdleAndRefusesConnectionsOpenedBefore) {
  auto idle = pool.create(1);
  auto busy = pool.create(1);  // in use by a request across the reload
  auto other = pool.create(2);
  const auto* po = other.get();
  pool.put_idle(std::move(idle), t0);
  pool.put_idle(std::move(other), t0);
  pool.renew(1);
  EXPECT_EQ(pool.take_idle(1, t0), nullptr) << "an idle connection survived renew()";
  pool.put_idle(std::move(busy), t0);
  EXPECT_EQ(pool.take_idle(1, t0), nullptr) << "a connection of the previous generation was pooled again";
  auto fresh = pool.create(1);
  const auto* pf = fresh.get();
  pool.put_idle(std::move(fresh), t0);
  EXPECT_EQ(pool.take_idle(1, t0).get(), pf);
  EXPECT_EQ(pool.take_idle(2, t0).get(), po) << "renewing one server closed another's connections";
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
  EXPECT_EQ(pool.take_idle(2, t0).get(), pc);
  auto d = pool.create(4);
  pool.put_idle(std::move(d), t0);
  EXPECT_NE(pool.take_idle(4, t0), nullptr);
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
  auto back = pool.take_idle(0, t0 + 30s);  // exactly the timeout: kept, probed, alive
  ASSERT_EQ(back.get(), pc);
  pool.put_idle(std::move(back), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 30s + 1ns), nullptr);
}

TEST_F(UpstreamPoolProbeTest, PeerClosedIsDroppedOnceIdle) {
  auto c = live_connection(0);
  const auto* pc = c.get();
  close_peer();
  pool.put_idle(std::move(c), t0);
  auto back = pool.take_idle(0, t0);  // same tick: not probed
  ASSERT_EQ(back.get(), pc);
  pool.put_idle(std::move(back), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 100ms), nullptr);
}

TEST_F(UpstreamPoolProbeTest, PendingBytesAreDroppedOnceIdle) {
  auto c = live_connection(0);
  ASSERT_EQ(::write(peer_, "X", 1), 1);
  pool.put_idle(std::move(c), t0);
  EXPECT_EQ(pool.take_idle(0, t0 + 100ms), nullptr);
}

}  // namespace
}  // namespace bgproxy::proxy
