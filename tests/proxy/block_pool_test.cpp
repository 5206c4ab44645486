#include "proxy/net/block_pool.hpp"

#include <cstring>
#include <memory>

#include <gtest/gtest.h>

#include "proxy/net/free_list.hpp"

namespace bgproxy::proxy {
namespace {

TEST(BlockPool, AGivenBlockIsTheNextOneTakenAndIsWritable) {
  BlockPool pool{2};
  auto* a = static_cast<char*>(pool.take());
  std::memset(a, 'x', BlockPool::block_size);
  pool.give(a);
  EXPECT_EQ(pool.kept(), 1u);
  EXPECT_EQ(pool.take(), a);
  EXPECT_EQ(pool.kept(), 0u);
  pool.give(a);
}

TEST(BlockPool, KeepsNoMoreThanItsLimitAndReleasesThemAll) {
  BlockPool pool{2};
  void* blocks[3] = {pool.take(), pool.take(), pool.take()};
  EXPECT_NE(blocks[0], blocks[1]);
  for (auto* b : blocks) pool.give(b);
  EXPECT_EQ(pool.kept(), 2u);  // the third was unmapped at once
  pool.release();
  EXPECT_EQ(pool.kept(), 0u);
  auto* fresh = pool.take();  // mapped anew after a release
  ASSERT_NE(fresh, nullptr);
  pool.give(fresh);
}

TEST(BlockPool, ReadBufferTakesItsBlockFromThePoolAndGivesItBackWhenShrunk) {
  BlockPool pool{4};
  ReadBuffer buffer{PooledAllocator<char>(pool)};
  auto space = buffer.prepare(BlockPool::block_size);
  std::memset(space.data(), 'a', space.size());
  buffer.commit(space.size());
  buffer.consume(buffer.size());
  EXPECT_EQ(pool.kept(), 0u);
  buffer.shrink_to_fit();
  EXPECT_EQ(pool.kept(), 1u);
}

TEST(BlockPool, ABufferGrownPastOneBlockUsesTheHeap) {
  BlockPool pool{4};
  {
    ReadBuffer buffer{PooledAllocator<char>(pool)};
    buffer.commit(buffer.prepare(100).size());
    EXPECT_EQ(pool.kept(), 0u);
    buffer.prepare(BlockPool::block_size);  // 100 kept + one block: more than a block
    EXPECT_GT(buffer.capacity(), BlockPool::block_size);
  }
  EXPECT_EQ(pool.kept(), 0u);  // neither size was a block
}

TEST(FreeList, ReusesWhatWasGivenBackUpToItsLimit) {
  FreeList<std::string> list{1};
  auto a = list.take();
  a->assign(200, 'z');
  const auto* object = a.get();
  const auto capacity = a->capacity();
  list.give(std::move(a));
  list.give(std::make_unique<std::string>("dropped"));  // over the limit: destroyed
  EXPECT_EQ(list.kept(), 1u);
  auto b = list.take();
  EXPECT_EQ(b.get(), object);
  EXPECT_EQ(b->capacity(), capacity);  // what it grew to is kept with it
  EXPECT_EQ(list.kept(), 0u);
  list.give(std::move(b));
  list.release();
  EXPECT_EQ(list.kept(), 0u);
}

}  // namespace
}  // namespace bgproxy::proxy
