#include "proxy/h2/abuse_limits.hpp"

namespace bgproxy::proxy {

void configure_abuse_limits(nghttp2_option* option) {
#ifdef BGPROXY_NGHTTP2_HAS_RESET_RATE_LIMIT
  // nghttp2 1.57's defaults: a burst of 1000 client resets, then 33 per second.
  nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33);
#endif
#ifdef BGPROXY_NGHTTP2_HAS_MAX_CONTINUATIONS
  nghttp2_option_set_max_continuations(option, 8);
#endif
  nghttp2_option_set_max_outbound_ack(option, 1000);
  nghttp2_option_set_max_settings(option, 32);
}

}  // namespace bgproxy::proxy
