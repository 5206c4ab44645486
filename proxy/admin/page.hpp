#pragma once
/// The admin web page (README "The web page"): proxy/admin/page.html, embedded at build time,
/// and the Content-Security-Policy it is served with.
/// Thread: any.

#include <string>
#include <string_view>

namespace bgproxy::proxy {

std::string_view page_html() noexcept;

/// Allows the page's own inline <style> and <script> by their SHA-256 (nothing else inline or
/// from anywhere), fetches to its own origin only, no forms, frames or base URL.
const std::string& page_csp();

}  // namespace bgproxy::proxy
