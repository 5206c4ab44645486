#pragma once
/// gRPC rules the proxy applies (SPEC §13, grpc PROTOCOL-HTTP2.md): a gRPC answer is HTTP 200
/// whatever happened; what happened is its grpc-status, in the response head (Trailers-Only) or
/// in the trailers. A call's own deadline travels in grpc-timeout. Pure. Thread: any.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace bgproxy::proxy {

/// grpc_statuses index of an answer that ended without a grpc-status.
inline constexpr std::size_t grpc_status_missing = 17;

/// @param head_value the response head's grpc-status value, empty when it has none
/// @param trailers trailer field lines ("Name: value\r\n" each) as received
/// @return the status 0..16, or grpc_status_missing
std::size_t grpc_status_of(std::string_view head_value, std::string_view trailers) noexcept;

/// A grpc-timeout value: 1 to 8 digits and a unit (H, M, S, m, u, n). Nothing when malformed.
std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view value) noexcept;

/// UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS, or no status at all: the
/// server's fault, counted as a 5xx for the watchdog and bgproxy_requests_total.
constexpr bool grpc_error(std::size_t status) noexcept {
  return status == 2 || status == 4 || status == 13 || status == 14 || status == 15 || status == grpc_status_missing;
}

}  // namespace bgproxy::proxy
