#include "proxy/h2/h2_stream.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/error.hpp>

#include "proxy/h2/own_head.hpp"

namespace bgproxy::proxy {
namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {
/// Answers are ours (the session wrote them), so this only bounds a runaway backend head.
constexpr std::uint64_t response_head_limit = 64 * 1024;

void post_completion(const Executor& ex, PendingIo& pending, error_code ec, std::size_t n) {
  net::post(ex, [h = pending.take(), ec, n]() mutable { std::move(h)(ec, n); });
}
}  // namespace

bool H2Stream::take_response(std::string_view bytes) {
  if (head_done) return take_payload(bytes);
  // A head usually comes whole in one write: it is read where it lies, not copied first.
  if (head_bytes.empty()) return take_head(bytes);
  head_bytes.append(bytes);
  const std::string held = std::exchange(head_bytes, {});  // response_head's views point into it
  return take_head(held);
}

bool H2Stream::take_head(std::string_view bytes) {
  for (;;) {
    const auto split = split_own_response_head(bytes, response_head);
    if (split.malformed) return false;
    if (split.size == 0) {
      if (bytes.size() > response_head_limit) return false;
      head_bytes.assign(bytes);  // the rest comes with the next write
      return true;
    }
    bytes.remove_prefix(split.size);  // response_head's views stay valid: the bytes do not move
    const auto status = response_head.result_int();
    if (status < 200) {
      // 100 Continue (the request had no Expect) or 103: nothing the client needs from us.
      if (bytes.empty()) return true;
      continue;
    }
    head_done = true;
    if (request.head_method() || status == 204 || status == 304) {
      body.reset(BodyKind::none);
    } else if (split.chunked) {
      body.reset(BodyKind::chunked, 0, true);  // HTTP/2 frames the payload itself
    } else if (split.content_length) {
      body.reset(*split.content_length == 0 ? BodyKind::none : BodyKind::length, *split.content_length);
    } else {
      body.reset(BodyKind::until_eof);
    }
    has_body = body.kind() != BodyKind::none;
    out_done = !has_body;
    if (link) link->response_head(*this);
    return bytes.empty() || take_payload(bytes);
  }
}

bool H2Stream::take_payload(std::string_view bytes) {
  while (!bytes.empty() && !body.done()) {
    const auto step = body.next(bytes);
    if (step.error) return false;
    if (body.dechunk()) {
      for (const auto& span : body.payload()) out.append({static_cast<const char*>(span.data()), span.size()});
    } else {
      out.append(bytes.substr(0, step.take));
    }
    bytes.remove_prefix(step.take);
    if (step.take == 0) break;
  }
  if (body.done()) out_done = true;
  if (link) link->response_data(*this);
  return true;
}

void H2Stream::session_ended() {
  if (!link || out_done) return;
  if (head_done && body.kind() == BodyKind::until_eof) {
    out_done = true;
    return link->response_data(*this);
  }
  link->abandon(*this);
}

void H2Stream::fail(error_code ec) {
  link = nullptr;
  if (reader) post_completion(executor, reader, ec, 0);
  if (writer) post_completion(executor, writer, ec, 0);
}

void H2Stream::serve_read() {
  if (!reader) return;
  const auto available = in.size() - in_pos;
  if (available == 0) {
    if (in_done) return post_completion(executor, reader, net::error::eof, 0);
    if (!link) return post_completion(executor, reader, net::error::connection_reset, 0);
    return;  // waits for DATA
  }
  const auto n = std::min(available, read_into.size());
  std::memcpy(read_into.data(), in.data() + in_pos, n);
  in_pos += n;
  if (in_pos == in.size()) {
    in.clear();
    in_pos = 0;
  }
  // Credited once the session has the bytes: a session that stops reading stops the client.
  const auto credit = std::min(in_data, n);
  in_data -= credit;
  net::post(executor, [h = reader.take(), n, credit, self = this]() mutable {
    if (credit != 0 && self->link) self->link->request_consumed(*self, credit);
    std::move(h)(error_code{}, n);
  });
}

void H2Stream::release_writer() {
  if (writer && out_pending() < out_high_water) post_completion(executor, writer, error_code{}, writer_bytes);
}

}  // namespace bgproxy::proxy
