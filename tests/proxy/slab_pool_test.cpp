#include "proxy/net/slab_pool.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

constexpr std::size_t object_bytes = 1000;

TEST(SlabPool, ObjectsAreDistinctAlignedAndWritable) {
  SlabPool pool;
  std::set<void*> seen;
  std::vector<void*> objects;
  for (int i = 0; i < 200; ++i) {
    void* p = pool.allocate(object_bytes);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t), 0u);
    std::memset(p, i & 0xff, object_bytes);
    EXPECT_TRUE(seen.insert(p).second);
    objects.push_back(p);
  }
  for (int i = 0; i < 200; ++i) EXPECT_EQ(static_cast<unsigned char*>(objects[i])[object_bytes - 1], i & 0xff);
  for (void* p : objects) pool.deallocate(p);
}

TEST(SlabPool, EmptiedSlabsAreUnmappedButOne) {
  SlabPool pool;
  std::vector<void*> objects;
  for (int i = 0; i < 1000; ++i) objects.push_back(pool.allocate(object_bytes));
  const std::size_t per_slab = 1000 / pool.slabs() + 1;
  EXPECT_GE(pool.slabs(), 1000 / (SlabPool::slab_size / object_bytes));
  EXPECT_LE(pool.slabs(), 1000 / per_slab + 2);
  for (void* p : objects) pool.deallocate(p);
  EXPECT_EQ(pool.slabs(), 1u);  // the spare
  // The spare serves the next allocation; no new slab.
  void* again = pool.allocate(object_bytes);
  EXPECT_EQ(pool.slabs(), 1u);
  pool.deallocate(again);
}

TEST(SlabPool, AFreedSlotIsReusedBeforeANewSlabIsMapped) {
  SlabPool pool;
  std::vector<void*> objects;
  while (pool.slabs() < 2) objects.push_back(pool.allocate(object_bytes));
  const std::size_t first_slab_objects = objects.size() - 1;
  void* from_first = objects[first_slab_objects / 2];
  pool.deallocate(from_first);
  EXPECT_EQ(pool.allocate(object_bytes), from_first);
  for (void* p : objects) pool.deallocate(p);
}

TEST(SlabPool, RefusesAnotherSizeOrAnObjectLargerThanASlabCanHoldEight) {
  SlabPool pool;
  void* p = pool.allocate(object_bytes);
  EXPECT_THROW(pool.allocate(2 * object_bytes), std::logic_error);
  pool.deallocate(p);
  SlabPool big;
  EXPECT_THROW(big.allocate(SlabPool::slab_size / 4), std::logic_error);
}

struct Session : std::enable_shared_from_this<Session> {
  explicit Session(std::string n) : name(std::move(n)) {}
  std::string name;
};

TEST(SlabPool, HoldsASharedObjectAndItsControlBlockInOneSlot) {
  SlabPool pool;
  const Session* first = nullptr;
  {
    auto s = std::allocate_shared<Session>(SlabAllocator<Session>(pool), "client");
    EXPECT_EQ(s->shared_from_this()->name, "client");
    EXPECT_EQ(pool.slabs(), 1u);
    first = s.get();
  }
  // Freed at the last owner: the same slot serves the next session.
  auto next = std::allocate_shared<Session>(SlabAllocator<Session>(pool), "next");
  EXPECT_EQ(next.get(), first);
  EXPECT_EQ(pool.slabs(), 1u);
}

}  // namespace
}  // namespace bgproxy::proxy
