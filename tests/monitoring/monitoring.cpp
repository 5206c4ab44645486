#include "monitoring.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

namespace bgtest::monitoring {

namespace fs = std::filesystem;
namespace json = boost::json;

fs::path dashboard_path() { return fs::path(BGPROXY_SOURCE_DIR) / "conf/grafana/bgproxy-dashboard.json"; }
fs::path rules_path() { return fs::path(BGPROXY_SOURCE_DIR) / "conf/prometheus/bgproxy-alerts.yml"; }
fs::path rules_test_path() { return fs::path(BGPROXY_SOURCE_DIR) / "tests/monitoring/bgproxy-alerts.test.yml"; }

fs::path find_tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return fs::absolute(p);
  }
  throw std::runtime_error(name + " is not on PATH: install the Debian package prometheus (scripts/install-deps does)");
}

namespace {

std::string str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

void collect_panels(const json::array& panels, std::vector<const json::object*>& out) {
  for (const auto& p : panels) {
    const auto& o = p.as_object();
    if (str(o, "type") == "row") {
      if (const auto* nested = o.if_contains("panels")) collect_panels(nested->as_array(), out);
    } else {
      out.push_back(&o);
    }
  }
}

}  // namespace

std::vector<const json::object*> dashboard_panels(const json::object& dashboard) {
  std::vector<const json::object*> out;
  collect_panels(dashboard.at("panels").as_array(), out);
  return out;
}

std::vector<Query> dashboard_queries(const json::object& dashboard) {
  std::vector<Query> out;
  for (const auto* panel : dashboard_panels(dashboard)) {
    const auto* targets = panel->if_contains("targets");
    if (targets == nullptr) continue;
    for (const auto& t : targets->as_array()) {
      const auto& to = t.as_object();
      out.push_back({"panel \"" + str(*panel, "title") + "\" target " + str(to, "refId"), str(to, "expr")});
    }
  }
  if (const auto* annotations = dashboard.if_contains("annotations")) {
    for (const auto& a : annotations->as_object().at("list").as_array()) {
      const auto& ao = a.as_object();
      if (ao.contains("expr")) out.push_back({"annotation \"" + str(ao, "name") + "\"", str(ao, "expr")});
    }
  }
  return out;
}

std::vector<LabelValuesQuery> dashboard_variable_queries(const json::object& dashboard) {
  static const std::regex label_values(R"(^\s*label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$)");
  std::vector<LabelValuesQuery> out;
  for (const auto& v : dashboard.at("templating").as_object().at("list").as_array()) {
    const auto& vo = v.as_object();
    if (str(vo, "type") != "query") continue;
    const std::string where = "variable $" + str(vo, "name");
    const std::string q = str(vo, "query");
    std::smatch m;
    if (!std::regex_match(q, m, label_values)) throw std::runtime_error(where + ": not label_values(SELECTOR, LABEL): " + q);
    out.push_back({where, m[1], m[2]});
  }
  return out;
}

std::size_t count_expr_keys(const json::value& v) {
  std::size_t n = 0;
  if (v.is_object()) {
    for (const auto& [key, child] : v.as_object()) n += (key == "expr" ? 1 : 0) + count_expr_keys(child);
  } else if (v.is_array()) {
    for (const auto& child : v.as_array()) n += count_expr_keys(child);
  }
  return n;
}

std::vector<Query> rule_queries(const fs::path& rules_file) {
  const YAML::Node doc = YAML::LoadFile(rules_file.string());
  std::vector<Query> out;
  for (const auto& group : doc["groups"]) {
    for (const auto& rule : group["rules"]) {
      const std::string name = rule["alert"] ? rule["alert"].as<std::string>() : rule["record"].as<std::string>();
      out.push_back({"rule " + name, rule["expr"].as<std::string>()});
    }
  }
  return out;
}

std::string substitute_variables(std::string_view promql, const std::string& rate_interval, const std::string& range) {
  static const std::regex variable(R"(\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+))");
  std::string out;
  const std::string in(promql);
  auto last = in.cbegin();
  for (std::sregex_iterator it(in.begin(), in.end(), variable), end; it != end; ++it) {
    const auto& m = *it;
    out.append(last, m[0].first);
    const std::string name = m[1].matched ? m[1].str() : m[2].str();
    if (name == "__rate_interval" || name == "__interval") out += rate_interval;
    else if (name == "__range") out += range;
    else out += ".*";
    last = m[0].second;
  }
  out.append(last, in.cend());
  return out;
}

namespace {

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool ident_char(char c) { return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)); }

/// A cursor over a PromQL expression.
class Scanner {
public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool done() {
    skip_space();
    return i_ >= s_.size();
  }
  char peek() {
    skip_space();
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  char take() { return s_[i_++]; }
  std::string identifier() {
    skip_space();
    const auto start = i_;
    while (i_ < s_.size() && ident_char(s_[i_])) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  /// A quoted string (", ' or `), its escapes resolved.
  std::string string_literal() {
    skip_space();
    const char quote = s_[i_++];
    std::string v;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\' && quote != '`' && i_ + 1 < s_.size()) ++i_;
      v += s_[i_++];
    }
    if (i_ >= s_.size()) throw std::runtime_error("unterminated string in: " + std::string(s_));
    ++i_;
    return v;
  }
  void skip_past(char close) {
    const auto end = s_.find(close, i_);
    if (end == std::string_view::npos) throw std::runtime_error(std::string("no '") + close + "' in: " + std::string(s_));
    i_ = end + 1;
  }
  /// Numbers and durations (0.95, 40, 1m).
  void skip_word() {
    while (i_ < s_.size() && (ident_char(s_[i_]) || s_[i_] == '.')) ++i_;
  }

private:
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

const std::set<std::string> grouping_keywords{"by", "without", "on", "ignoring", "group_left", "group_right"};
const std::set<std::string> operator_keywords{"and", "or", "unless", "bool", "offset", "atan2"};
// Aggregations may be followed by `by (...)` instead of their parenthesis: never metric names.
const std::set<std::string> aggregations{"sum",    "min",   "max",          "avg",  "group",    "stddev",
                                         "stdvar", "count", "count_values", "topk", "bottomk", "quantile"};

std::vector<Matcher> matchers(Scanner& sc) {
  std::vector<Matcher> out;
  sc.take();  // '{'
  while (sc.peek() != '}') {
    if (sc.done()) throw std::runtime_error("unterminated selector");
    Matcher m;
    m.label = sc.identifier();
    if (m.label.empty()) throw std::runtime_error("no label name in a selector");
    while (sc.peek() == '=' || sc.peek() == '!' || sc.peek() == '~') m.op += sc.take();
    if (m.op != "=" && m.op != "!=" && m.op != "=~" && m.op != "!~") throw std::runtime_error("bad matcher op " + m.op);
    m.value = sc.string_literal();
    out.push_back(std::move(m));
    if (sc.peek() == ',') sc.take();
  }
  sc.take();  // '}'
  return out;
}

}  // namespace

PromqlRefs scan_promql(std::string_view promql) {
  PromqlRefs refs;
  Scanner sc(promql);
  while (!sc.done()) {
    const char c = sc.peek();
    if (c == '"' || c == '\'' || c == '`') {
      sc.string_literal();
    } else if (c == '[') {
      sc.skip_past(']');
    } else if (c == '$') {
      sc.take();
      if (sc.peek() == '{') sc.skip_past('}');
      else sc.identifier();
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      sc.skip_word();
    } else if (ident_start(c)) {
      std::string word = sc.identifier();
      if (grouping_keywords.count(word) != 0) {
        if (sc.peek() != '(') continue;  // group_left without labels
        sc.take();
        while (sc.peek() != ')') {
          if (sc.done()) throw std::runtime_error("unterminated label list in: " + std::string(promql));
          if (sc.peek() == ',') {
            sc.take();
            continue;
          }
          const auto label = sc.identifier();
          if (label.empty()) throw std::runtime_error("bad label list in: " + std::string(promql));
          refs.grouping_labels.insert(label);
        }
        sc.take();
      } else if (operator_keywords.count(word) != 0 || aggregations.count(word) != 0 || sc.peek() == '(') {
        continue;  // an operator, or a function / aggregation name
      } else {
        Selector s{std::move(word), {}};
        if (sc.peek() == '{') s.matchers = matchers(sc);
        refs.selectors.push_back(std::move(s));
      }
    } else if (c == '{') {
      throw std::runtime_error("a selector without a metric name in: " + std::string(promql));
    } else {
      sc.take();  // operators, parentheses, commas
    }
  }
  return refs;
}

Exposition parse_exposition(std::string_view text) {
  Exposition e;
  std::istringstream is{std::string(text)};
  std::string line;
  while (std::getline(is, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      e.types[name] = type;
      continue;
    }
    if (line[0] == '#') continue;
    Scanner sc(line);
    const std::string name = sc.identifier();
    Labels labels;
    if (sc.peek() == '{') {
      for (auto& m : matchers(sc)) labels[m.label] = std::move(m.value);
    }
    e.samples[name].push_back(std::move(labels));
  }
  return e;
}

namespace {

/// The target labels Prometheus adds to every scraped series.
bool target_label(const std::string& l) { return l == "job" || l == "instance"; }

std::set<std::string> label_names(const Exposition& e, const std::string& sample) {
  std::set<std::string> out;
  if (const auto it = e.samples.find(sample); it != e.samples.end()) {
    for (const auto& labels : it->second)
      for (const auto& [k, v] : labels) out.insert(k);
  }
  return out;
}

/// Problems of one selector; the name problem alone when the name is wrong.
std::vector<std::string> check_selector(const std::string& where, const Selector& s, const Exposition& e) {
  std::vector<std::string> problems;
  const auto fail = [&](const std::string& what) { problems.push_back(where + ": " + what); };
  if (s.metric == "up") {
    const bool has_job = std::any_of(s.matchers.begin(), s.matchers.end(), [](const Matcher& m) { return m.label == "job"; });
    if (!has_job) fail("up (Prometheus's own series) without a job matcher would alert on every target");
    return problems;
  }
  const auto samples = e.samples.find(s.metric);
  if (samples == e.samples.end()) {
    const auto type = e.types.find(s.metric);
    if (type != e.types.end() && type->second == "histogram")
      fail(s.metric + " is a histogram: Prometheus stores its " + s.metric + "_bucket, _sum and _count series, not " + s.metric);
    else
      fail(s.metric + " is not exported by bgproxy");
    return problems;
  }
  const auto labels = label_names(e, s.metric);
  for (const auto& m : s.matchers) {
    if (target_label(m.label)) continue;
    if (labels.count(m.label) == 0) {
      fail(s.metric + " has no label " + m.label);
      continue;
    }
    if (m.op != "=" || m.value.find('$') != std::string::npos) continue;
    const bool seen = std::any_of(samples->second.begin(), samples->second.end(), [&](const Labels& l) {
      const auto it = l.find(m.label);
      return it != l.end() && it->second == m.value;
    });
    if (!seen) fail(s.metric + "{" + m.label + "=\"" + m.value + "\"} matches no exported sample");
  }
  return problems;
}

}  // namespace

std::vector<std::string> check_against(const Query& q, const Exposition& e) {
  std::vector<std::string> problems;
  PromqlRefs refs;
  try {
    refs = scan_promql(q.promql);
  } catch (const std::exception& ex) {
    return {q.where + ": " + ex.what()};
  }
  if (refs.selectors.empty()) problems.push_back(q.where + ": queries no metric: " + q.promql);
  std::set<std::string> labels{"job", "instance"};
  for (const auto& s : refs.selectors) {
    auto p = check_selector(q.where, s, e);
    problems.insert(problems.end(), p.begin(), p.end());
    const auto own = label_names(e, s.metric);
    labels.insert(own.begin(), own.end());
  }
  for (const auto& l : refs.grouping_labels) {
    if (labels.count(l) == 0) problems.push_back(q.where + ": groups or matches by " + l + ", a label none of its metrics has");
  }
  return problems;
}

std::vector<std::string> check_against(const LabelValuesQuery& q, const Exposition& e) {
  PromqlRefs refs;
  try {
    refs = scan_promql(q.selector);
  } catch (const std::exception& ex) {
    return {q.where + ": " + ex.what()};
  }
  if (refs.selectors.size() != 1) return {q.where + ": label_values() needs exactly one selector: " + q.selector};
  auto problems = check_selector(q.where, refs.selectors[0], e);
  if (problems.empty() && !target_label(q.label) && label_names(e, refs.selectors[0].metric).count(q.label) == 0)
    problems.push_back(q.where + ": " + refs.selectors[0].metric + " has no label " + q.label);
  return problems;
}

std::string url_encode(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace bgtest::monitoring
