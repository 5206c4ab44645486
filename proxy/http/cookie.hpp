#pragma once
/// Cookie lookup for sticky routing. I/O-free. Thread: any.

#include <string_view>

namespace bgproxy::proxy {

/// @param header a Cookie field value, e.g. "a=1; bg_id=7f3a; c=2"
/// @return the value of cookie `name`, or an empty view when absent
std::string_view find_cookie(std::string_view header, std::string_view name) noexcept;

}  // namespace bgproxy::proxy
