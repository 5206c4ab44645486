#include "bgproxy/shadow/compare.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include <boost/json.hpp>

namespace bgproxy::shadow {
namespace {

namespace json = boost::json;

/// What a Difference shows of a value: enough to recognise it in `bgctl shadow`, little enough
/// that eight samples per service stay small.
constexpr std::size_t shown_bytes = 60;
/// How much of the common text before the first differing byte stays in view.
constexpr std::size_t shown_context = 20;

/// Cuts `s` to shown_bytes, on a UTF-8 sequence boundary, with "..." where bytes were left out.
std::string cut(std::string_view s) {
  if (s.size() <= shown_bytes) return std::string(s);
  std::size_t n = shown_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  std::string out(s.substr(0, n));
  out.append("...");
  return out;
}

/// Both bodies as shown: from a little before their first differing byte, so that two long
/// bodies differing late do not show the same 60 bytes twice.
std::pair<std::string, std::string> cut_pair(std::string_view a, std::string_view b) {
  const auto first = static_cast<std::size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
  if (first <= shown_context + shown_bytes / 2) return {cut(a), cut(b)};
  std::size_t from = first - shown_context;
  while (from < a.size() && (static_cast<unsigned char>(a[from]) & 0xC0) == 0x80) ++from;
  return {"..." + cut(a.substr(from)), "..." + cut(b.substr(std::min(from, b.size())))};
}

constexpr std::string_view absent = "(absent)";

/// "$.items[*].id" matches "$.items[3].id"; a pattern also covers everything below the node it
/// names ("$.meta" leaves out "$.meta.took_ms").
bool path_matches(std::string_view pattern, std::string_view path) {
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < pattern.size()) {
    if (pattern.compare(i, 3, "[*]") == 0) {
      if (j >= path.size() || path[j] != '[') return false;
      const auto close = path.find(']', j);
      if (close == std::string_view::npos) return false;
      i += 3;
      j = close + 1;
      continue;
    }
    if (j >= path.size() || pattern[i] != path[j]) return false;
    ++i;
    ++j;
  }
  return j == path.size() || path[j] == '.' || path[j] == '[';
}

bool ignored(const std::string& field, const std::vector<std::string>& ignore) {
  return std::any_of(ignore.begin(), ignore.end(), [&](const std::string& p) {
    return !p.empty() && p[0] == '$' && path_matches(p, field);
  });
}

/// Every leaf of a document by its path. Empty objects and arrays are leaves too, so that
/// `{"a":{}}` and `{"a":[]}` differ.
void flatten(const json::value& v, const std::string& path, std::map<std::string, const json::value*>& out) {
  if (const auto* o = v.if_object(); o != nullptr && !o->empty()) {
    for (const auto& kv : *o) flatten(kv.value(), path + "." + std::string(kv.key()), out);
  } else if (const auto* a = v.if_array(); a != nullptr && !a->empty()) {
    for (std::size_t i = 0; i < a->size(); ++i) flatten((*a)[i], path + "[" + std::to_string(i) + "]", out);
  } else {
    out.emplace(path, &v);
  }
}

/// 1 and 1.0 are the same number to a JSON reader; boost::json keeps them apart by kind.
bool same_leaf(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number() && a.kind() != b.kind()) {
    json::error_code ec_a;
    json::error_code ec_b;
    const double x = a.to_number<double>(ec_a);
    const double y = b.to_number<double>(ec_b);
    return !ec_a && !ec_b && x == y;
  }
  return a == b;
}

/// A leaf as JSON text; doubles in their shortest form ("9.5", where boost::json writes "9.5E0").
std::string shown(const json::value& v) {
  if (!v.is_double()) return json::serialize(v);
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, v.get_double()).ptr;
  return std::string(buf, end);
}

/// A body cut short is known only up to its length, so two bodies differ when what is known of
/// both differs: their common prefix, or a whole one next to one known to be longer. Each side
/// may be cut at a different length (a chunked answer is kept as relayed, with its framing).
bool bodies_differ(const Answer& a, const Answer& b) {
  if (!a.body_cut && !b.body_cut) return a.body != b.body;
  const auto n = std::min(a.body.size(), b.body.size());
  if (std::string_view(a.body).substr(0, n) != std::string_view(b.body).substr(0, n)) return true;
  if (!a.body_cut) return b.body.size() >= a.body.size();
  if (!b.body_cut) return a.body.size() >= b.body.size();
  return false;
}

std::optional<json::value> parse_json(const Answer& a) {
  if (a.body_cut || a.body.empty()) return std::nullopt;
  json::error_code ec;
  auto v = json::parse(a.body, ec);
  if (ec) return std::nullopt;
  return v;
}

void compare_json(const json::value& p, const json::value& s, const std::vector<std::string>& ignore,
                  PairResult& out) {
  std::map<std::string, const json::value*> left;
  std::map<std::string, const json::value*> right;
  flatten(p, "$", left);
  flatten(s, "$", right);
  auto show = [](const json::value* v) { return v == nullptr ? std::string(absent) : cut(shown(*v)); };
  auto visit = [&](const std::string& path, const json::value* a, const json::value* b) {
    if (ignored(path, ignore)) return;
    out.compared.push_back(path);
    if (a == nullptr || b == nullptr || !same_leaf(*a, *b)) out.differences.push_back({path, show(a), show(b)});
  };
  // Both maps are sorted by path: one merge pass visits every path of either side once.
  auto l = left.begin();
  auto r = right.begin();
  while (l != left.end() || r != right.end()) {
    if (r == right.end() || (l != left.end() && l->first < r->first)) {
      visit(l->first, l->second, nullptr);
      ++l;
    } else if (l == left.end() || r->first < l->first) {
      visit(r->first, nullptr, r->second);
      ++r;
    } else {
      visit(l->first, l->second, r->second);
      ++l;
      ++r;
    }
  }
}

/// A header's value as one string: repeated fields joined as a list would be.
std::optional<std::string> header_value(const Answer& a, const std::string& name) {
  std::optional<std::string> v;
  for (const auto& [n, value] : a.headers) {
    if (n != name) continue;
    if (v) {
      v->append(", ");
      v->append(value);
    } else {
      v = value;
    }
  }
  return v;
}

}  // namespace

PairResult compare(const Answer& primary, const Answer& shadow, const config::ShadowCompare& cfg) {
  PairResult out;
  if (cfg.status) {
    out.compared.emplace_back("status");
    if (primary.status != shadow.status) {
      out.differences.push_back({"status", std::to_string(primary.status), std::to_string(shadow.status)});
    }
  }
  for (const auto& name : cfg.headers) {
    if (std::find(cfg.ignore.begin(), cfg.ignore.end(), name) != cfg.ignore.end()) continue;
    std::string field = "header:" + name;
    const auto a = header_value(primary, name);
    const auto b = header_value(shadow, name);
    out.compared.push_back(field);
    if (a != b) {
      out.differences.push_back({std::move(field), a ? cut(*a) : std::string(absent), b ? cut(*b) : std::string(absent)});
    }
  }
  if (!cfg.body) return out;
  // Only two whole bodies that both parse compare as JSON: one JSON and one not is a byte
  // difference, and so is anything cut short.
  const auto p = parse_json(primary);
  const auto s = p ? parse_json(shadow) : std::nullopt;
  if (p && s) {
    compare_json(*p, *s, cfg.ignore, out);
    return out;
  }
  out.compared.emplace_back("body");
  if (bodies_differ(primary, shadow)) {
    auto [a, b] = cut_pair(primary.body, shadow.body);
    out.differences.push_back({"body", std::move(a), std::move(b)});
  }
  return out;
}

}  // namespace bgproxy::shadow
