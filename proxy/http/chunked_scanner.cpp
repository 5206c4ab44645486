#include "proxy/http/chunked_scanner.hpp"

#include <algorithm>

namespace bgproxy::proxy {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// CTLs other than HTAB (NUL, bare LF, DEL, ...) are never valid in a chunk
/// extension or a trailer field (RFC 9110 §5.5).
bool is_control(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}

}  // namespace

ChunkedScanner::Result ChunkedScanner::scan(std::string_view in, PayloadSink* sink) noexcept {
  Result r;
  std::size_t i = 0;
  auto fail = [&] {
    r.consumed = i;
    r.error = true;
    return r;
  };
  while (i < in.size() && state_ != State::done) {
    const char c = in[i];
    switch (state_) {
      case State::size_first:
      case State::size: {
        const int v = hex_value(c);
        if (v >= 0) {
          if (++digits_ > max_size_digits) return fail();
          chunk_left_ = (chunk_left_ << 4) | static_cast<unsigned>(v);
          state_ = State::size;
        } else if (state_ == State::size_first) {
          return fail();
        } else if (c == ';') {
          state_ = State::ext;
        } else if (c == ' ' || c == '\t') {
          ++line_bytes_;
          state_ = State::size_ws;
        } else if (c == '\r') {
          state_ = State::size_lf;
        } else {
          return fail();
        }
        ++i;
        break;
      }
      case State::size_ws:
        if (c == ';') state_ = State::ext;
        else if (c == '\r') state_ = State::size_lf;
        else if ((c != ' ' && c != '\t') || ++line_bytes_ > max_line_bytes) return fail();
        ++i;
        break;
      case State::ext:
        if (c == '\r') state_ = State::size_lf;
        else if (is_control(c) || ++line_bytes_ > max_line_bytes) return fail();
        ++i;
        break;
      case State::size_lf:
        if (c != '\n') return fail();
        ++i;
        digits_ = 0;
        line_bytes_ = 0;
        state_ = chunk_left_ == 0 ? State::trailer_start : State::data;
        payload_bytes_ += chunk_left_;
        break;
      case State::data: {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, in.size() - i));
        if (sink) sink->on_payload(i, n);
        i += n;
        chunk_left_ -= n;
        if (chunk_left_ == 0) state_ = State::data_cr;
        break;
      }
      case State::data_cr:
        if (c != '\r') return fail();
        ++i;
        state_ = State::data_lf;
        break;
      case State::data_lf:
        if (c != '\n') return fail();
        ++i;
        state_ = State::size_first;
        break;
      case State::trailer_start:
        if (c == '\r') state_ = State::final_lf;
        else if (c == ' ' || c == '\t' || c == '\n') return fail();  // no obs-fold, no bare LF
        else state_ = State::trailer_line;
        if (sink && state_ == State::trailer_line) sink->on_trailer(i, 1);
        ++i;
        break;
      case State::trailer_line:
        if (c == '\r') state_ = State::trailer_lf;
        else if (is_control(c) || ++line_bytes_ > max_line_bytes) return fail();
        if (sink) sink->on_trailer(i, 1);
        ++i;
        break;
      case State::trailer_lf:
        if (c != '\n') return fail();
        if (sink) sink->on_trailer(i, 1);
        ++i;
        line_bytes_ = 0;
        state_ = State::trailer_start;
        break;
      case State::final_lf:
        if (c != '\n') return fail();
        ++i;
        state_ = State::done;
        break;
      case State::done:
        break;
    }
  }
  r.consumed = i;
  r.done = state_ == State::done;
  return r;
}

}  // namespace bgproxy::proxy
