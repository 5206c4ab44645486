#pragma once
/// What a backend says about how long it keeps an idle connection: the `Keep-Alive`
/// response field (`timeout=5, max=100`, RFC 2068 §19.7.1.1, still sent by Apache and
/// others), and the age at which bgproxy retires a pooled connection because of it.
/// I/O-free. Thread: any.

#include <chrono>
#include <cstdint>
#include <string_view>

namespace bgproxy::proxy {

struct KeepAliveHint {
  std::chrono::seconds timeout{0};  ///< 0 = not said
  std::uint32_t max = 0;            ///< requests the connection takes; 0 = not said
};

/// Parses a Keep-Alive value; unknown or malformed parameters are ignored (it is only a hint).
KeepAliveHint parse_keep_alive(std::string_view value) noexcept;

/// The idle age at which a connection whose backend said `timeout` is retired: early enough
/// that the backend's own close cannot cross our next request on the wire (N − min(1 s, N/4)).
std::chrono::milliseconds retire_before(std::chrono::seconds timeout) noexcept;

}  // namespace bgproxy::proxy
