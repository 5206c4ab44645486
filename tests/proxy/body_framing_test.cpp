#include "proxy/http/body_framing.hpp"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

using namespace std::string_literals;

std::string join(const std::vector<boost::asio::const_buffer>& spans) {
  std::string s;
  for (const auto& b : spans) s.append(static_cast<const char*>(b.data()), b.size());
  return s;
}

TEST(BodyFraming, DefaultIsNoneAndDone) {
  BodyFraming f;
  EXPECT_EQ(f.kind(), BodyKind::none);
  EXPECT_TRUE(f.done());
  EXPECT_FALSE(f.dechunk());
  EXPECT_EQ(f.body_bytes(), 0u);
  const auto s = f.next("GET / HTTP/1.1\r\n");
  EXPECT_EQ(s.take, 0u);
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.error);
}

TEST(BodyFraming, NoneTakesNothing) {
  BodyFraming f;
  f.reset(BodyKind::none, 123);
  EXPECT_TRUE(f.done());
  const auto s = f.next("abc");
  EXPECT_EQ(s.take, 0u);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(f.body_bytes(), 0u);
}

TEST(BodyFraming, LengthZeroIsDoneAtOnce) {
  BodyFraming f;
  f.reset(BodyKind::length, 0);
  EXPECT_EQ(f.kind(), BodyKind::length);
  EXPECT_TRUE(f.done());
  const auto s = f.next("GET /next HTTP/1.1\r\n");
  EXPECT_EQ(s.take, 0u);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(f.body_bytes(), 0u);
}

TEST(BodyFraming, LengthLeavesPipelinedBytes) {
  BodyFraming f;
  f.reset(BodyKind::length, 5);
  EXPECT_FALSE(f.done());
  const std::string_view in = "helloGET /next HTTP/1.1\r\n";
  const auto s = f.next(in);
  EXPECT_EQ(s.take, 5u);
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.error);
  EXPECT_TRUE(f.done());
  EXPECT_EQ(in.substr(s.take), "GET /next HTTP/1.1\r\n");
  EXPECT_EQ(f.body_bytes(), 5u);

  const auto after = f.next(in.substr(s.take));
  EXPECT_EQ(after.take, 0u);
  EXPECT_TRUE(after.done);
  EXPECT_EQ(f.body_bytes(), 5u);
}

TEST(BodyFraming, LengthAcrossSeveralReads) {
  BodyFraming f;
  f.reset(BodyKind::length, 10);
  auto s = f.next("");
  EXPECT_EQ(s.take, 0u);
  EXPECT_FALSE(s.done);
  s = f.next("abc");
  EXPECT_EQ(s.take, 3u);
  EXPECT_FALSE(s.done);
  EXPECT_EQ(f.body_bytes(), 3u);
  s = f.next("defg");
  EXPECT_EQ(s.take, 4u);
  EXPECT_FALSE(s.done);
  EXPECT_EQ(f.body_bytes(), 7u);
  s = f.next("hijXYZ");
  EXPECT_EQ(s.take, 3u);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(f.body_bytes(), 10u);
}

TEST(BodyFraming, LengthLargerThanSizeT32) {
  BodyFraming f;
  f.reset(BodyKind::length, 0x1'0000'0005ull);
  const auto s = f.next("abc");
  EXPECT_EQ(s.take, 3u);
  EXPECT_FALSE(s.done);
  EXPECT_EQ(f.body_bytes(), 3u);
}

TEST(BodyFraming, UntilEofTakesAllAndIsDoneOnlyByMarkDone) {
  BodyFraming f;
  f.reset(BodyKind::until_eof);
  EXPECT_FALSE(f.done());
  auto s = f.next("HTTP/1.1 200 OK\r\n\r\nnot a new message");
  EXPECT_EQ(s.take, 36u);
  EXPECT_FALSE(s.done);
  s = f.next("");
  EXPECT_EQ(s.take, 0u);
  EXPECT_FALSE(s.done);
  s = f.next("more");
  EXPECT_EQ(s.take, 4u);
  EXPECT_EQ(f.body_bytes(), 40u);
  f.mark_done();
  EXPECT_TRUE(f.done());
  s = f.next("late");
  EXPECT_EQ(s.take, 0u);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(f.body_bytes(), 40u);
}

TEST(BodyFraming, ChunkedWithoutDechunkHasNoPayloadSpans) {
  BodyFraming f;
  f.reset(BodyKind::chunked);
  EXPECT_FALSE(f.done());
  EXPECT_FALSE(f.dechunk());
  const std::string_view body = "3\r\nabc\r\n0\r\n\r\n";
  const std::string in = std::string(body) + "GET / HTTP/1.1\r\n";
  const auto s = f.next(in);
  EXPECT_EQ(s.take, body.size());
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.error);
  EXPECT_TRUE(f.payload().empty());
  EXPECT_EQ(f.body_bytes(), 3u);
}

TEST(BodyFraming, ChunkedDechunkProducesPayloadSpansIntoTheInput) {
  BodyFraming f;
  f.reset(BodyKind::chunked, 0, true);
  EXPECT_TRUE(f.dechunk());
  const std::string in = "4\r\nWiki\r\n5;x\r\npedia\r\n0\r\nT: v\r\n\r\nNEXT";
  const auto s = f.next(in);
  EXPECT_EQ(s.take, in.size() - 4);
  EXPECT_TRUE(s.done);
  ASSERT_EQ(f.payload().size(), 2u);
  EXPECT_EQ(f.payload()[0].data(), in.data() + 3);
  EXPECT_EQ(f.payload()[0].size(), 4u);
  EXPECT_EQ(f.payload()[1].data(), in.data() + 14);
  EXPECT_EQ(f.payload()[1].size(), 5u);
  EXPECT_EQ(join(f.payload()), "Wikipedia");
  EXPECT_EQ(f.body_bytes(), 9u);
}

TEST(BodyFraming, ChunkedDechunkSpansAreReplacedOnEachStep) {
  BodyFraming f;
  f.reset(BodyKind::chunked, 0, true);
  const std::string a = "6\r\nab";
  const std::string b = "cdef\r\n1\r\n";
  const std::string c = "g\r\n0\r\n\r\n";
  auto s = f.next(a);
  EXPECT_EQ(s.take, a.size());
  EXPECT_EQ(join(f.payload()), "ab");
  EXPECT_EQ(f.payload()[0].data(), a.data() + 3);
  s = f.next(b);
  EXPECT_EQ(s.take, b.size());
  EXPECT_EQ(join(f.payload()), "cdef");
  EXPECT_EQ(f.payload()[0].data(), b.data());
  s = f.next(c);
  EXPECT_EQ(s.take, c.size());
  EXPECT_TRUE(s.done);
  EXPECT_EQ(join(f.payload()), "g");
  EXPECT_EQ(f.body_bytes(), 7u);
}

TEST(BodyFraming, ChunkedHeaderOnlyStepHasNoPayload) {
  BodyFraming f;
  f.reset(BodyKind::chunked, 0, true);
  const auto s = f.next("100;ext=1\r\n");
  EXPECT_EQ(s.take, 11u);
  EXPECT_FALSE(s.done);
  EXPECT_TRUE(f.payload().empty());
  EXPECT_EQ(f.body_bytes(), 256u);  // announced, not yet received
}

TEST(BodyFraming, ChunkedError) {
  BodyFraming f;
  f.reset(BodyKind::chunked, 0, true);
  const auto s = f.next("2\r\nab\r\n0x1\r\n");
  EXPECT_TRUE(s.error);
  EXPECT_FALSE(s.done);
  EXPECT_EQ(s.take, 8u);
  EXPECT_EQ(join(f.payload()), "ab");
}

TEST(BodyFraming, DechunkOnlyAppliesToChunked) {
  BodyFraming f;
  f.reset(BodyKind::length, 3, true);
  EXPECT_FALSE(f.dechunk());
  f.reset(BodyKind::until_eof, 0, true);
  EXPECT_FALSE(f.dechunk());
  f.reset(BodyKind::chunked, 0, true);
  EXPECT_TRUE(f.dechunk());
  f.reset(BodyKind::chunked, 0, false);
  EXPECT_FALSE(f.dechunk());
}

TEST(BodyFraming, ResetForgetsThePreviousBody) {
  BodyFraming f;
  f.reset(BodyKind::chunked);
  EXPECT_EQ(f.next("5\r\nab").take, 5u);
  EXPECT_EQ(f.body_bytes(), 5u);
  f.reset(BodyKind::chunked);
  EXPECT_EQ(f.body_bytes(), 0u);
  const auto s = f.next("0\r\n\r\n");
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.error);
  EXPECT_EQ(s.take, 5u);

  f.reset(BodyKind::length, 4);
  EXPECT_EQ(f.body_bytes(), 0u);
  EXPECT_EQ(f.next("abcdef").take, 4u);
  f.reset(BodyKind::length, 2);
  EXPECT_FALSE(f.done());
  EXPECT_EQ(f.next("xyz").take, 2u);
  EXPECT_EQ(f.body_bytes(), 2u);
}

TEST(BodyFraming, CountsGrpcMessagesInChunkPayloadOnly) {
  // Two messages ("\0\0\0\0\1x" and an empty one), the first prefix split across chunks.
  const auto body = "3\r\n\0\0\0\r\n8\r\n\0\1x\0\0\0\0\0\r\n0\r\n\r\n"s;
  for (std::size_t piece = 1; piece <= body.size(); ++piece) {
    BodyFraming f;
    f.reset(BodyKind::chunked);
    for (std::size_t i = 0; i < body.size(); i += piece) {
      const auto in = std::string_view(body).substr(i, piece);
      EXPECT_EQ(f.next(in, true).take, in.size()) << piece;
    }
    EXPECT_TRUE(f.done());
    EXPECT_EQ(f.grpc_messages(), 2u) << piece;
  }
}

TEST(BodyFraming, CountsGrpcMessagesOfALengthBodyWithinItsLength) {
  BodyFraming f;
  f.reset(BodyKind::length, 6);
  // The bytes after the body (a next request) are not its messages.
  EXPECT_EQ(f.next("\0\0\0\0\1xGET"s, true).take, 6u);
  EXPECT_EQ(f.grpc_messages(), 1u);
}

TEST(BodyFraming, CountsNothingUnlessAskedAndResetStartsOver) {
  BodyFraming f;
  f.reset(BodyKind::length, 10);
  f.next("\0\0\0\0\0\0\0\0\0\0"s);
  EXPECT_EQ(f.grpc_messages(), 0u);
  f.reset(BodyKind::length, 10);
  f.next("\0\0\0\0\0\0\0\0\0\0"s, true);
  EXPECT_EQ(f.grpc_messages(), 2u);
  f.reset(BodyKind::none);
  EXPECT_EQ(f.grpc_messages(), 0u);
}

}  // namespace
}  // namespace bgproxy::proxy
