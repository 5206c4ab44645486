#pragma once
/// Beast's HTTP/1 parser (strict, and the one every framing and smuggling rule was written
/// against) through its documented extension point: a basic_parser whose fields go into a
/// ParsedHead, as views into the bytes parsed, instead of a basic_fields tree (issue 14). Only
/// heads: bodies are relayed by the session's own framing (body_framing.hpp), so the parser is
/// used with eager(false) and left once is_header_done().
/// Views must point into the bytes the session keeps, so a head is parsed whole: parse() takes
/// all the bytes received so far, from the head's first one, on a fresh parser each time
/// (Beast would otherwise report the lines of a partial head as consumed, and the next read
/// could move them), and nothing is consumed until the head is complete. A folded field value
/// (obs-fold) is refused: Beast joins its lines in storage of its own that does not outlive the
/// call, and RFC 9112 §5.2 lets a proxy refuse it (400, or 502 for a response).
/// Thread: owned by one session.

#include <cstdint>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/optional/optional.hpp>

#include "proxy/http/parsed_head.hpp"

namespace bgproxy::proxy {

template <bool isRequest>
class HeadParser final : public boost::beast::http::basic_parser<isRequest> {
 public:
  /// @param head cleared now, filled as the head is parsed; must outlive the parser
  explicit HeadParser(ParsedHead& head) : head_(head) { head_.clear(); }

  /// put() over `bytes`, the whole of what has arrived of this head. @return bytes of the head
  /// when it is complete (is_header_done()), else 0 with `ec` need_more or the error
  std::size_t parse(boost::asio::const_buffer bytes, boost::beast::error_code& ec) {
    first_ = static_cast<const char*>(bytes.data());
    last_ = first_ + bytes.size();
    const auto n = this->put(bytes, ec);
    return !ec && this->is_header_done() ? n : 0;
  }

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb method, string_view method_text, string_view target, int version,
                       error_code&) override {
    head_.set_request_line(method, method_text, target, static_cast<unsigned>(version));
  }
  void on_response_impl(int status, string_view reason, int version, error_code&) override {
    head_.set_status_line(static_cast<unsigned>(status), reason, static_cast<unsigned>(version));
  }
  void on_field_impl(boost::beast::http::field id, string_view name, string_view value, error_code& ec) override {
    if (!value.empty() && (value.data() < first_ || value.data() + value.size() > last_)) {
      ec = boost::beast::http::error::bad_value;  // a folded value, joined outside the input
      return;
    }
    head_.add(id, name, value);
  }
  void on_header_impl(error_code&) override {}
  // Bodies are the session's to relay (it stops at the end of the head): nothing is kept here.
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code&) override { return body.size(); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override { return body.size(); }
  void on_finish_impl(error_code&) override {}

  // parse() is the way in: it knows the bytes the views must stay in.
  using boost::beast::http::basic_parser<isRequest>::put;

  ParsedHead& head_;
  const char* first_ = nullptr;  ///< the bytes parse() was given
  const char* last_ = nullptr;
};

using RequestHeadParser = HeadParser<true>;
using ResponseHeadParser = HeadParser<false>;

}  // namespace bgproxy::proxy
