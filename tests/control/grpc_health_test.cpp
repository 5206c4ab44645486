// grpc.health.v1 bytes (control/core/grpc_health): the Health/Check request body as protoc would
// encode it, and the verdict on every shape of answer a server can give.
#include <string>

#include <gtest/gtest.h>

#include "control/core/grpc_health.hpp"

namespace bgproxy::control::grpc_health {
namespace {

using namespace std::string_literals;

/// One uncompressed gRPC message around `msg`.
std::string frame(const std::string& msg) {
  std::string out = "\0"s;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((msg.size() >> shift) & 0xff));
  return out + msg;
}

Answer serving_answer(const std::string& msg) { return Answer{200, "0", "", frame(msg)}; }

TEST(GrpcHealthRequest, EmptyServiceIsTheEmptyMessage) { EXPECT_EQ(request_body(""), "\0\0\0\0\0"s); }

TEST(GrpcHealthRequest, ServiceIsFieldOneWithAVarintLength) {
  EXPECT_EQ(request_body("my.pkg.Echo"), "\0\0\0\0\x0d\x0a\x0bmy.pkg.Echo"s);
  // 200 bytes: the length takes two varint bytes (0xc8 0x01), the frame says 203.
  const std::string name(200, 'x');
  EXPECT_EQ(request_body(name), "\0\0\0\0\xcb\x0a\xc8\x01"s + name);
  // 300 bytes: the frame length needs its second byte.
  const std::string longer(300, 'y');
  EXPECT_EQ(request_body(longer), "\0\0\0\x01\x2f\x0a\xac\x02"s + longer);
}

TEST(GrpcHealthJudge, ServingIsHealthy) {
  const auto v = judge(serving_answer("\x08\x01"));
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.reason, "");
}

TEST(GrpcHealthJudge, OtherServingStatusesAreNamed) {
  EXPECT_EQ(judge(serving_answer("\x08\x02")).reason, "serving status NOT_SERVING");
  EXPECT_EQ(judge(serving_answer("\x08\x03")).reason, "serving status SERVICE_UNKNOWN");
  EXPECT_EQ(judge(serving_answer("\x08\x07")).reason, "serving status 7");
  // proto3 leaves a default out: the empty message is status 0 = UNKNOWN.
  EXPECT_EQ(judge(serving_answer("")).reason, "serving status UNKNOWN");
  EXPECT_FALSE(judge(serving_answer("")).ok);
  EXPECT_EQ(judge(serving_answer("\x08\x00"s)).reason, "serving status UNKNOWN");
  // A multi-byte varint that is not 1.
  EXPECT_EQ(judge(serving_answer("\x08\x81\x01")).reason, "serving status 129");
}

TEST(GrpcHealthJudge, UnknownFieldsAreSkippedAndTheLastStatusWins) {
  // field 2 string, field 3 fixed64, field 4 fixed32, field 5 varint, then status SERVING.
  const std::string msg = "\x12\x03" "abc" "\x19" "12345678" "\x25" "1234" "\x28\x96\x01" "\x08\x01"s;
  EXPECT_TRUE(judge(serving_answer(msg)).ok);
  EXPECT_EQ(judge(serving_answer("\x08\x01\x08\x02")).reason, "serving status NOT_SERVING");
  EXPECT_TRUE(judge(serving_answer("\x08\x02\x08\x01")).ok);
}

TEST(GrpcHealthJudge, HttpStatusMustBe200) {
  auto a = serving_answer("\x08\x01");
  a.http_status = 503;
  EXPECT_EQ(judge(a).reason, "status 503");
  a.http_status = 0;
  EXPECT_EQ(judge(a).reason, "status 0");
}

TEST(GrpcHealthJudge, GrpcStatusMustBeThereAndZero) {
  auto a = serving_answer("\x08\x01");
  a.grpc_status.reset();
  EXPECT_EQ(judge(a).reason, "no grpc-status");
  // Trailers-Only UNIMPLEMENTED: a server without the health service. grpc-message is
  // percent-decoded, then shown escaped on one line.
  EXPECT_EQ(judge(Answer{200, "12", "Method not found!", ""}).reason,
            "grpc-status 12 UNIMPLEMENTED: \"Method not found!\"");
  EXPECT_EQ(judge(Answer{200, "5", "unknown%20service%0Ax %zz %4", ""}).reason,
            "grpc-status 5 NOT_FOUND: \"unknown service\\nx %zz %4\"");
  EXPECT_EQ(judge(Answer{200, "14", "", ""}).reason, "grpc-status 14 UNAVAILABLE");
  EXPECT_EQ(judge(Answer{200, "99", "", ""}).reason, "grpc-status 99");
  EXPECT_EQ(judge(Answer{200, "abc", "", ""}).reason, "grpc-status abc");
  EXPECT_EQ(judge(Answer{200, "", "", ""}).reason, "grpc-status ");
  EXPECT_EQ(judge(Answer{200, "0x", "", frame("\x08\x01")}).reason, "grpc-status 0x");
}

TEST(GrpcHealthJudge, MalformedBodiesAreBadResponses) {
  EXPECT_EQ(judge(Answer{200, "0", "", ""}).reason, "bad response: no HealthCheckResponse");
  EXPECT_EQ(judge(Answer{200, "0", "", "\0\0\0"s}).reason, "bad response: a message cut short");
  EXPECT_EQ(judge(Answer{200, "0", "", "\0\0\0\0\x05\x08\x01"s}).reason, "bad response: a message cut short");
  EXPECT_EQ(judge(Answer{200, "0", "", "\x01\0\0\0\x02\x08\x01"s}).reason, "bad response: a compressed message");
  EXPECT_EQ(judge(Answer{200, "0", "", frame("\x08\x01") + frame("\x08\x01")}).reason,
            "bad response: more than one message");
  // A varint that never ends, a length past the end, wire types 3 and 7.
  for (const std::string& msg : {"\x08\x81"s, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s, "\x12\x05" "ab"s,
                                "\x0b"s, "\x0f\x01"s, "\x19" "1234"s, "\x25" "12"s}) {
    EXPECT_EQ(judge(serving_answer(msg)).reason, "bad response: not a HealthCheckResponse")
        << testing::PrintToString(msg);
  }
}

}  // namespace
}  // namespace bgproxy::control::grpc_health
