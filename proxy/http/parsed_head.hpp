#pragma once
/// One HTTP/1 message head as bgproxy's parser (head_parser.hpp) read it: the start line and the
/// fields in arrival order, each a (known-field id, name, value) of views into the bytes it was
/// parsed from, in one flat array a session keeps and reuses. No per-field allocation, no tree:
/// a head has a dozen or two fields, and a scan over them is cheaper than building an index
/// nobody reads twice (issue 14). The lookups mirror the part of Beast's message interface the
/// proxy uses, so policies and writers read either.
/// Lifetime: the views live as long as the bytes parsed (the session keeps them until the head
/// was written out). Thread: owned by one session.

#include <cstddef>
#include <string_view>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

namespace bgproxy::proxy {

struct HeadField {
  boost::beast::http::field id = boost::beast::http::field::unknown;
  std::string_view name_text;
  std::string_view value_text;

  boost::beast::http::field name() const noexcept { return id; }
  std::string_view name_string() const noexcept { return name_text; }
  std::string_view value() const noexcept { return value_text; }
};

class ParsedHead {
 public:
  using value_type = HeadField;
  using const_iterator = std::vector<HeadField>::const_iterator;

  /// Forgets the message; keeps the array's capacity for the next one.
  void clear() noexcept;
  /// Room for `n` fields: one allocation for a head read into a fresh ParsedHead.
  void reserve(std::size_t n) { fields_.reserve(n); }
  void add(boost::beast::http::field id, std::string_view name, std::string_view value) {
    fields_.push_back(HeadField{id, name, value});
  }
  void set_request_line(boost::beast::http::verb method, std::string_view method_text, std::string_view target,
                        unsigned version) noexcept;
  void set_status_line(unsigned status, std::string_view reason, unsigned version) noexcept;

  const_iterator begin() const noexcept { return fields_.begin(); }
  const_iterator end() const noexcept { return fields_.end(); }
  std::size_t size() const noexcept { return fields_.size(); }

  /// The first field with this id (or this name, any case), or end().
  const_iterator find(boost::beast::http::field id) const noexcept;
  const_iterator find(std::string_view name) const noexcept;
  std::size_t count(boost::beast::http::field id) const noexcept;
  /// The first such field's value; empty when there is none.
  std::string_view operator[](boost::beast::http::field id) const noexcept;
  std::string_view operator[](std::string_view name) const noexcept;

  boost::beast::http::verb method() const noexcept { return method_; }
  std::string_view method_string() const noexcept { return method_text_; }
  std::string_view target() const noexcept { return target_; }
  unsigned version() const noexcept { return version_; }
  unsigned result_int() const noexcept { return status_; }
  /// As Beast's message: the reason-phrase received, else the obsolete one for the code
  /// ("<unknown-status>" for a code Beast does not know).
  std::string_view reason() const noexcept;

 private:
  std::vector<HeadField> fields_;
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  std::string_view method_text_;
  std::string_view target_;
  unsigned version_ = 11;
  unsigned status_ = 0;
  std::string_view reason_;
};

}  // namespace bgproxy::proxy
