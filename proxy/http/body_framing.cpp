#include "proxy/http/body_framing.hpp"

#include <algorithm>

namespace bgproxy::proxy {

void BodyFraming::reset(BodyKind kind, std::uint64_t length, bool dechunk, bool keep_trailers) noexcept {
  keep_trailers_ = keep_trailers && kind == BodyKind::chunked;
  kind_ = kind;
  left_ = length;
  seen_ = 0;
  dechunk_ = dechunk && kind == BodyKind::chunked;
  done_ = kind == BodyKind::none || (kind == BodyKind::length && length == 0);
  chunks_.reset();
  payload_.trailers.clear();
  messages_.reset();
}

BodyFraming::Step BodyFraming::next(std::string_view input, bool count_grpc) {
  Step s;
  if (done_) {
    s.done = true;
    return s;
  }
  switch (kind_) {
    case BodyKind::none:
      break;
    case BodyKind::length:
      s.take = static_cast<std::size_t>(std::min<std::uint64_t>(left_, input.size()));
      left_ -= s.take;
      seen_ += s.take;
      done_ = left_ == 0;
      break;
    case BodyKind::chunked: {
      payload_.spans.clear();
      payload_.base = input.data();
      payload_.messages = count_grpc ? &messages_ : nullptr;
      const auto r = chunks_.scan(input, dechunk_ || keep_trailers_ || count_grpc ? &payload_ : nullptr);
      s.take = r.consumed;
      s.error = r.error;
      done_ = r.done;
      break;
    }
    case BodyKind::until_eof:
      s.take = input.size();
      seen_ += s.take;
      break;
  }
  // A chunked body's payload was counted as the scanner found it; the others' is what they take.
  if (count_grpc && kind_ != BodyKind::chunked) messages_.feed(input.substr(0, s.take));
  s.done = done_;
  return s;
}

std::uint64_t BodyFraming::body_bytes() const noexcept {
  return kind_ == BodyKind::chunked ? chunks_.payload_bytes() : seen_;
}

}  // namespace bgproxy::proxy
