#include "proxy/http/parsed_head.hpp"

#include <algorithm>

#include <boost/beast/core/string.hpp>

namespace bgproxy::proxy {

namespace http = boost::beast::http;

void ParsedHead::clear() noexcept {
  fields_.clear();
  method_ = http::verb::unknown;
  method_text_ = target_ = reason_ = {};
  version_ = 11;
  status_ = 0;
}

void ParsedHead::set_request_line(http::verb method, std::string_view method_text, std::string_view target,
                                  unsigned version) noexcept {
  method_ = method;
  method_text_ = method_text;
  target_ = target;
  version_ = version;
}

void ParsedHead::set_status_line(unsigned status, std::string_view reason, unsigned version) noexcept {
  status_ = status;
  reason_ = reason;
  version_ = version;
}

ParsedHead::const_iterator ParsedHead::find(http::field id) const noexcept {
  return std::find_if(fields_.begin(), fields_.end(), [id](const HeadField& f) { return f.id == id; });
}

ParsedHead::const_iterator ParsedHead::find(std::string_view name) const noexcept {
  const auto id = http::string_to_field(name);
  if (id != http::field::unknown) return find(id);
  return std::find_if(fields_.begin(), fields_.end(),
                      [name](const HeadField& f) { return boost::beast::iequals(f.name_text, name); });
}

std::size_t ParsedHead::count(http::field id) const noexcept {
  return static_cast<std::size_t>(
      std::count_if(fields_.begin(), fields_.end(), [id](const HeadField& f) { return f.id == id; }));
}

std::string_view ParsedHead::operator[](http::field id) const noexcept {
  const auto it = find(id);
  return it == fields_.end() ? std::string_view() : it->value_text;
}

std::string_view ParsedHead::operator[](std::string_view name) const noexcept {
  const auto it = find(name);
  return it == fields_.end() ? std::string_view() : it->value_text;
}

std::string_view ParsedHead::reason() const noexcept {
  if (!reason_.empty()) return reason_;
  return http::obsolete_reason(static_cast<http::status>(status_));
}

}  // namespace bgproxy::proxy
