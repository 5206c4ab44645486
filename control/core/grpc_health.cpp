#include "control/core/grpc_health.hpp"

#include <array>
#include <cstdint>

#include "bgproxy/text/quote.hpp"

namespace bgproxy::control::grpc_health {
namespace {

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

/// @return false when the bytes end inside the varint or it runs past 10 bytes (64 bits)
bool get_varint(std::string_view& in, std::uint64_t& v) {
  v = 0;
  for (unsigned shift = 0; shift < 70 && !in.empty(); shift += 7) {
    const auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

/// HealthCheckResponse.status (field 1, varint) of one message; unknown fields are skipped as
/// protobuf says, and an absent status is its default, 0 = UNKNOWN.
/// @return nullopt when the message is not well-formed protobuf
std::optional<std::uint64_t> serving_status(std::string_view msg) {
  std::uint64_t status = 0;
  while (!msg.empty()) {
    std::uint64_t tag = 0, v = 0;
    if (!get_varint(msg, tag)) return std::nullopt;
    switch (tag & 7) {
      case 0:  // varint
        if (!get_varint(msg, v)) return std::nullopt;
        if (tag >> 3 == 1) status = v;  // the last one wins, as protobuf merges scalars
        break;
      case 1:  // 64-bit
      case 5:  // 32-bit
      {
        const std::size_t n = (tag & 7) == 1 ? 8 : 4;
        if (msg.size() < n) return std::nullopt;
        msg.remove_prefix(n);
        break;
      }
      case 2:  // length-delimited
        if (!get_varint(msg, v) || v > msg.size()) return std::nullopt;
        msg.remove_prefix(static_cast<std::size_t>(v));
        break;
      default:
        return std::nullopt;
    }
  }
  return status;
}

constexpr std::array<const char*, 17> code_names{
    "OK",           "CANCELLED",          "UNKNOWN",   "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED",      "INTERNAL",  "UNAVAILABLE",      "DATA_LOSS",         "UNAUTHENTICATED"};

/// grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"); a malformed escape stays as is.
std::string percent_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string grpc_status_reason(const std::string& status, const std::string& message) {
  std::string r = "grpc-status " + status;
  if (!status.empty() && status.size() <= 2 && status.find_first_not_of("0123456789") == std::string::npos) {
    const auto code = static_cast<std::size_t>(std::stoul(status));
    if (code < code_names.size()) {
      r += ' ';
      r += code_names[code];
    }
  }
  if (!message.empty()) {
    r += ": ";
    // Whatever the server wrote ends up in a log line and bgctl's table: one escaped line.
    r += text::quote(percent_decode(message), {.mark = '"', .max_bytes = 120});
  }
  return r;
}

std::string serving_reason(std::uint64_t status) {
  switch (status) {
    case 0: return "serving status UNKNOWN";
    case 2: return "serving status NOT_SERVING";
    case 3: return "serving status SERVICE_UNKNOWN";
    default: return "serving status " + std::to_string(status);
  }
}

}  // namespace

std::string request_body(std::string_view service) {
  std::string msg;
  if (!service.empty()) {
    msg.push_back('\x0a');  // field 1, length-delimited
    put_varint(msg, service.size());
    msg.append(service);
  }
  std::string out;
  out.reserve(5 + msg.size());
  out.push_back('\0');  // not compressed
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((msg.size() >> shift) & 0xff));
  out += msg;
  return out;
}

Verdict judge(const Answer& a) {
  if (a.http_status != 200) return {false, "status " + std::to_string(a.http_status)};
  if (!a.grpc_status) return {false, "no grpc-status"};
  if (*a.grpc_status != "0") return {false, grpc_status_reason(*a.grpc_status, a.grpc_message)};

  std::string_view body = a.body;
  if (body.empty()) return {false, "bad response: no HealthCheckResponse"};
  if (body.size() < 5) return {false, "bad response: a message cut short"};
  // The request offered no grpc-accept-encoding, so a compressed answer is the server's mistake.
  if (body[0] != '\0') return {false, "bad response: a compressed message"};
  std::size_t len = 0;
  for (int i = 1; i <= 4; ++i) len = len << 8 | static_cast<unsigned char>(body[static_cast<std::size_t>(i)]);
  body.remove_prefix(5);
  if (body.size() < len) return {false, "bad response: a message cut short"};
  if (body.size() > len) return {false, "bad response: more than one message"};
  const auto status = serving_status(body);
  if (!status) return {false, "bad response: not a HealthCheckResponse"};
  if (*status != 1) return {false, serving_reason(*status)};
  return {true, {}};
}

}  // namespace bgproxy::control::grpc_health
