#include "proxy/http/grpc_messages.hpp"

#include <string>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

/// One uncompressed message: the 5-byte prefix, then `payload`.
std::string message(const std::string& payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  std::string m{'\0', static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                static_cast<char>(n)};
  return m + payload;
}

/// Feeds `body` in pieces of `piece` bytes.
unsigned count_in_pieces(const std::string& body, std::size_t piece) {
  GrpcMessages m;
  for (std::size_t i = 0; i < body.size(); i += piece) m.feed(std::string_view(body).substr(i, piece));
  return m.count();
}

TEST(GrpcMessages, NothingFedIsNone) {
  GrpcMessages m;
  EXPECT_EQ(m.count(), 0u);
  m.feed("");
  EXPECT_EQ(m.count(), 0u);
}

TEST(GrpcMessages, OneMessageWhateverThePieces) {
  const auto body = message(std::string(300, 'x'));
  for (std::size_t piece = 1; piece <= body.size(); ++piece) EXPECT_EQ(count_in_pieces(body, piece), 1u) << piece;
}

TEST(GrpcMessages, TwoMessagesWithPrefixesSplitAnywhere) {
  // Payload bytes that look like prefixes must not count: only the length says where one ends.
  const auto body = message(std::string(7, '\0')) + message("ab");
  for (std::size_t piece = 1; piece <= body.size(); ++piece) EXPECT_EQ(count_in_pieces(body, piece), 2u) << piece;
}

TEST(GrpcMessages, EmptyMessagesCount) {
  EXPECT_EQ(count_in_pieces(message(""), 1), 1u);
  EXPECT_EQ(count_in_pieces(message("") + message(""), 2), 2u);
}

TEST(GrpcMessages, ASecondMessageCountsFromItsFirstByte) {
  GrpcMessages m;
  m.feed(message("hello"));
  EXPECT_EQ(m.count(), 1u);
  m.feed(std::string(1, '\1'));  // a compressed flag: the next message has begun
  EXPECT_EQ(m.count(), 2u);
}

TEST(GrpcMessages, ManyStaysMoreThanOne) {
  std::string body;
  for (int i = 0; i < 50; ++i) body += message(std::string(static_cast<std::size_t>(i), 'y'));
  EXPECT_EQ(count_in_pieces(body, 3), 2u);
}

TEST(GrpcMessages, TheLargestLengthIsSkippedToItsEnd) {
  GrpcMessages m;
  m.feed(std::string{'\0', '\xff', '\xff', '\xff', '\xff'});
  m.feed(std::string(100000, 'z'));
  EXPECT_EQ(m.count(), 1u);
}

TEST(GrpcMessages, ResetStartsOver) {
  GrpcMessages m;
  m.feed(message("a") + message("b"));
  ASSERT_EQ(m.count(), 2u);
  m.reset();
  EXPECT_EQ(m.count(), 0u);
  m.feed(message("c"));
  EXPECT_EQ(m.count(), 1u);
}

}  // namespace
}  // namespace bgproxy::proxy
