#include "proxy/http/grpc_status.hpp"

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

TEST(GrpcStatus, TheHeadsValueWinsTrailersOnly) {
  EXPECT_EQ(grpc_status_of("14", ""), 14u);
  EXPECT_EQ(grpc_status_of(" 0 ", "grpc-status: 13\r\n"), 0u);
}

TEST(GrpcStatus, FoundInTheTrailersAnyCase) {
  EXPECT_EQ(grpc_status_of("", "grpc-message: boom\r\nGrpc-Status: 4\r\n"), 4u);
  EXPECT_EQ(grpc_status_of("", "grpc-status:0\r\n"), 0u);
}

TEST(GrpcStatus, MissingOrMalformedIsMissing) {
  EXPECT_EQ(grpc_status_of("", ""), grpc_status_missing);
  EXPECT_EQ(grpc_status_of("", "x-other: 1\r\n"), grpc_status_missing);
  EXPECT_EQ(grpc_status_of("17", ""), grpc_status_missing);
  EXPECT_EQ(grpc_status_of("1a", ""), grpc_status_missing);
  EXPECT_EQ(grpc_status_of("", "grpc-status: \r\n"), grpc_status_missing);
}

TEST(GrpcStatus, ServerFaultsAreErrors) {
  for (std::size_t s : {2u, 4u, 13u, 14u, 15u}) EXPECT_TRUE(grpc_error(s)) << s;
  EXPECT_TRUE(grpc_error(grpc_status_missing));
  for (std::size_t s : {0u, 1u, 3u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 16u}) EXPECT_FALSE(grpc_error(s)) << s;
}

}  // namespace
}  // namespace bgproxy::proxy

namespace bgproxy::proxy {
namespace {

TEST(GrpcTimeout, EveryUnit) {
  using namespace std::chrono;
  EXPECT_EQ(parse_grpc_timeout("1H"), hours(1));
  EXPECT_EQ(parse_grpc_timeout("2M"), minutes(2));
  EXPECT_EQ(parse_grpc_timeout("3S"), seconds(3));
  EXPECT_EQ(parse_grpc_timeout("250m"), milliseconds(250));
  EXPECT_EQ(parse_grpc_timeout("99999999u"), microseconds(99999999));
  EXPECT_EQ(parse_grpc_timeout("7n"), nanoseconds(7));
}

TEST(GrpcTimeout, MalformedIsNothing) {
  for (const char* bad : {"", "m", "5", "5x", "-5m", "123456789m", "1.5S", " 5S", "5 S"}) {
    EXPECT_FALSE(parse_grpc_timeout(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace bgproxy::proxy
