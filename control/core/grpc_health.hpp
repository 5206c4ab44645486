#pragma once
/// grpc.health.v1 as the active checks of `health_check: { protocol: grpc }` need it (SPEC §13): the
/// body of a unary Health/Check call and the verdict on what came back. The two protobuf messages
/// have one field each, so they are written and read by hand: bgproxy links no protobuf.
/// Pure. Thread: any.

#include <optional>
#include <string>
#include <string_view>

namespace bgproxy::control::grpc_health {

/// The method every check calls.
inline constexpr std::string_view check_path = "/grpc.health.v1.Health/Check";

/// One uncompressed gRPC message (flag byte 0, 4-byte big-endian length) holding
/// HealthCheckRequest{service}: field 1 as tag 0x0A, a varint length and the bytes; an empty
/// `service` (the server as a whole) is the empty message.
std::string request_body(std::string_view service);

/// What came back on the call's stream, as far as the verdict needs it.
struct Answer {
  unsigned http_status = 0;               ///< the final :status; 0 when no response head came
  std::optional<std::string> grpc_status;  ///< from the trailers, or from a Trailers-Only head
  std::string grpc_message;               ///< as sent (percent-encoded)
  std::string body;                       ///< the DATA bytes: gRPC messages
};

struct Verdict {
  bool ok = false;
  std::string reason;  ///< why not ok, for health::CheckResult::error; empty when ok
};

/// Healthy only for HTTP 200, grpc-status 0 and exactly one HealthCheckResponse whose status
/// (field 1, a varint enum) is 1 = SERVING. Reasons read "status 503", "no grpc-status",
/// "grpc-status 12 UNIMPLEMENTED: \"...\"", "serving status NOT_SERVING", "bad response: ...".
Verdict judge(const Answer& answer);

}  // namespace bgproxy::control::grpc_health
