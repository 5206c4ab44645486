#include "proxy/h2/payload_queue.hpp"

#include <string>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

constexpr std::size_t block = BlockPool::block_size;

std::string pattern(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i % 23));
  return s;
}

TEST(PayloadQueue, FramesNeverSpanTwoBlocksAndCarryTheBytesInOrder) {
  BlockPool pool{16};
  PayloadQueue q{pool};
  const auto first = pattern(block - 100, 'a');
  const auto second = pattern(300, 'A');
  q.append(first);
  q.append(second);
  EXPECT_EQ(q.pending(), first.size() + second.size());

  std::string framed;
  std::vector<std::size_t> sizes;
  while (q.pending() != 0) {
    const auto span = q.next(16384);
    ASSERT_FALSE(span.empty());
    framed.append(span);
    sizes.push_back(span.size());
    q.frame(span.size());
  }
  EXPECT_EQ(framed, first + second);
  // The second frame stops at the first block's end; the 200 bytes in the next block come alone.
  ASSERT_EQ(sizes.size(), 3u);
  EXPECT_EQ(sizes[0], 16384u);
  EXPECT_EQ(sizes[1], block - 16384u);
  EXPECT_EQ(sizes[2], 200u);
  EXPECT_TRUE(q.next(16384).empty());
}

TEST(PayloadQueue, ABlockGoesBackOnlyOnceEveryFrameIntoItIsWritten) {
  BlockPool pool{16};
  {
    PayloadQueue q{pool};
    q.append(pattern(block + 1000, 'x'));
    const auto span = q.next(block);
    ASSERT_EQ(span.size(), block);
    const std::string held(span);
    const auto past_first = q.frame(span.size());
    const auto tail_span = q.next(block);
    ASSERT_EQ(tail_span.size(), 1000u);
    const auto past_all = q.frame(tail_span.size());

    q.append(pattern(500, 'q'));  // the session writes on while the frames are out
    EXPECT_EQ(std::string_view(span), held) << "bytes a frame points at stay put";
    EXPECT_EQ(pool.kept(), 0u);

    q.release(past_first);  // the write with the first frame is done
    EXPECT_EQ(pool.kept(), 1u);
    q.release(past_all);  // the second block still holds the 500 unframed bytes
    EXPECT_EQ(pool.kept(), 1u);
    const auto last = q.next(block);
    EXPECT_EQ(std::string(last), pattern(500, 'q'));
    q.release(q.frame(last.size()));
    EXPECT_EQ(pool.kept(), 2u) << "an answer written whole holds no block";
    EXPECT_EQ(q.pending(), 0u);

    q.append("more");  // a long stream goes on in a fresh block
    EXPECT_EQ(pool.kept(), 1u);
    EXPECT_EQ(q.next(10), "more");
  }
  EXPECT_EQ(pool.kept(), 2u) << "the queue gives back what it held when it goes";
}

}  // namespace
}  // namespace bgproxy::proxy
