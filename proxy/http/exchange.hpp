#pragma once
/// What one HTTP/1.1 exchange needs and an idle connection does not: the heads as parsed (flat
/// arrays of views into the client's and the upstream connection's read buffers, reused from
/// message to message: a request head is kept until it was written out, a response head until
/// its answer was; no buffer is read into meanwhile), their parsers, the outgoing head and the
/// body framings. A session takes one from its worker's FreeList when a request's first byte
/// arrives and gives it back when it goes idle (issue 14).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "proxy/http/body_framing.hpp"
#include "proxy/http/head_parser.hpp"
#include "proxy/http/parsed_head.hpp"

namespace bgproxy::proxy {

class ShadowExchange;

struct Exchange {
  Exchange() { head.reserve(1024); }
  ParsedHead request_head;
  ParsedHead response_head;
  std::optional<RequestHeadParser> parser;            ///< emplaced per request head
  std::optional<ResponseHeadParser> response_parser;  ///< per response head
  std::string request_line;   ///< "GET /x" for the access log (only when it is on), reused
  std::string head;           ///< the outgoing head, reused
  std::string set_cookie;     ///< "Set-Cookie: ...\r\n" for a client that had no sticky cookie
  std::string extra_headers;  ///< lines the proxy adds to a response head
  std::vector<boost::asio::const_buffer> gather;
  BodyFraming request_body;
  BodyFraming response_body;
  BodyFraming upgrade_body;  ///< the backend's side of a tunnel
  /// The copy of this request for the shadow color (SPEC §14), when it is mirrored; it hears
  /// of the client's answer until the exchange ends.
  std::shared_ptr<ShadowExchange> shadow;
};

}  // namespace bgproxy::proxy
