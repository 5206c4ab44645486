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
