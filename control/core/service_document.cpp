#include "control/core/service_document.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>

#include <boost/json.hpp>

#include "control/core/state_names.hpp"

namespace bgproxy::control {

namespace json = boost::json;

std::string to_document(const State& s, std::size_t service, std::string_view by, std::string_view change) {
  State one;
  const auto& ss = s.services.at(service);
  one.services.push_back(ss);
  std::vector<const HistoryEntry*> newest;
  for (auto it = s.history.rbegin(); it != s.history.rend() && newest.size() < document_history; ++it) {
    if (it->service == ss.name) newest.push_back(&*it);
  }
  for (auto it = newest.rbegin(); it != newest.rend(); ++it) one.history.push_back(**it);
  std::string out = to_json(one);
  // The state file's document, one object: the two fleet fields go before its closing brace.
  out.pop_back();
  out += ",\"by\":";
  out += json::serialize(json::value(json::string_view(by.data(), by.size())));
  out += ",\"change\":";
  out += json::serialize(json::value(json::string_view(change.data(), change.size())));
  out += '}';
  return out;
}

boost::system::result<ServiceDocument, std::string> parse_document(std::string_view text) {
  const auto root = parse_state_text(text);
  if (!root) return root.error();
  auto state = from_json(*root);
  if (!state) return state.error();
  if (state->services.size() != 1) return std::string("services: must hold exactly one service");
  ServiceDocument doc;
  doc.service = std::move(state->services.front());
  for (auto& e : state->history) {
    if (e.service != doc.service.name) return "history: an entry of service " + e.service + " in " + doc.service.name;
    doc.history.push_back(std::move(e));
  }
  // from_json checked that this is one JSON object.
  const auto& o = root->get_object();
  for (auto [key, field] : {std::pair{"by", &doc.by}, std::pair{"change", &doc.change}}) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) continue;
    if (!v->is_string()) return std::string(key) + ": must be a string";
    field->assign(v->get_string().data(), v->get_string().size());
  }
  return doc;
}

State adopt(const State& s, std::size_t service, const ServiceDocument& doc) {
  State next;
  next.services = s.services;
  auto& ss = next.services.at(service);
  const std::string name = ss.name;
  ss = doc.service;
  ss.name = name;
  // The document speaks for its service's history from its oldest entry on.
  const std::string* from = doc.history.empty() ? nullptr : &doc.history.front().time;
  std::vector<HistoryEntry> merged;
  merged.reserve(s.history.size() + doc.history.size());
  for (const auto& e : s.history) {
    if (e.service != name || from == nullptr || e.time < *from) merged.push_back(e);
  }
  merged.insert(merged.end(), doc.history.begin(), doc.history.end());
  // Times are RFC 3339 UTC with milliseconds, all of one width: text order is time order.
  std::stable_sort(merged.begin(), merged.end(),
                   [](const HistoryEntry& a, const HistoryEntry& b) { return a.time < b.time; });
  const std::size_t drop = merged.size() > State::max_history ? merged.size() - State::max_history : 0;
  next.history.assign(std::make_move_iterator(merged.begin() + static_cast<std::ptrdiff_t>(drop)),
                      std::make_move_iterator(merged.end()));
  return next;
}

namespace {

/// A value as an operator writes it: 12.5 rather than JSON's 1.25E1, lists as [10,50,100].
std::string plain(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_double()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v.get_double());
    return buf;
  }
  if (v.is_array()) {
    std::string out = "[";
    for (const auto& item : v.get_array()) {
      if (out.size() > 1) out += ',';
      out += plain(item);
    }
    return out + "]";
  }
  return json::serialize(v);
}

}  // namespace

std::string change_summary(const HistoryEntry& e) {
  std::string out = e.command;
  for (const auto& [key, value] : e.args) {
    // Names that only label their value ("action":"drain") are left out; the rest read as pairs.
    const bool label = key == "action" || key == "color" || key == "address" || key == "target";
    if (!label) out.append(" ").append(key.data(), key.size());
    out += ' ';
    out += plain(value);
  }
  return out;
}

}  // namespace bgproxy::control
