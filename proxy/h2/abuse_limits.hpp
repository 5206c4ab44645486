#pragma once
/// nghttp2's own defences against abusive clients, set on every downstream connection (SPEC §13):
/// rapid reset (CVE-2023-44487), CONTINUATION floods (CVE-2024-28182), SETTINGS floods and
/// outbound ACK queues (PING/SETTINGS floods). Debian 12's libnghttp2 1.52 carries the first two
/// as security backports, so they are detected by symbol, not by version.

#include <nghttp2/nghttp2.h>

namespace bgproxy::proxy {

void configure_abuse_limits(nghttp2_option* option);

}  // namespace bgproxy::proxy
