#pragma once
/// Monitoring tests (issue 16, SPEC §15): what the shipped Grafana dashboard and Prometheus alert
/// rules query, read from the files themselves (no list of names kept here), and what a bgproxy
/// really exports, read from its /metrics text.
/// Thread: the test's thread.

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

namespace bgtest::monitoring {

/// The files under test, in the source tree.
std::filesystem::path dashboard_path();
std::filesystem::path rules_path();
std::filesystem::path rules_test_path();

/// Absolute path of `name` on $PATH. Throws std::runtime_error naming the Debian package to
/// install when it is missing: a missing tool fails the test, it never skips it.
std::filesystem::path find_tool(const std::string& name);

/// One PromQL expression of a file, and where it is (for failure messages).
struct Query {
  std::string where;   ///< e.g. `panel "Error rate per color" target B`
  std::string promql;  ///< as written, Grafana variables included
};

/// A Grafana `label_values(SELECTOR, LABEL)` variable query.
struct LabelValuesQuery {
  std::string where;
  std::string selector;
  std::string label;
};

/// Every non-row panel of the dashboard, rows' nested panels included, in order.
std::vector<const boost::json::object*> dashboard_panels(const boost::json::object& dashboard);
/// Every PromQL expression of the dashboard: panel targets and annotation queries.
std::vector<Query> dashboard_queries(const boost::json::object& dashboard);
/// Every template variable of type query, as label_values(); throws for another form.
std::vector<LabelValuesQuery> dashboard_variable_queries(const boost::json::object& dashboard);
/// Number of "expr" keys anywhere in `v`, to prove dashboard_queries() missed none.
std::size_t count_expr_keys(const boost::json::value& v);
/// Every rule's expression of a rules file (the whole file parsed with yaml-cpp).
std::vector<Query> rule_queries(const std::filesystem::path& rules_file);

/// Grafana's variables replaced the way Grafana would for "All" selected: $__rate_interval and
/// $__interval by `rate_interval`, $__range by `range`, any other $name or ${name} by `.*`
/// (they only appear inside =~ matchers).
std::string substitute_variables(std::string_view promql, const std::string& rate_interval,
                                 const std::string& range);

struct Matcher {
  std::string label, op, value;  ///< op: = != =~ !~
};

/// A metric name as written in a query, with its label matchers.
struct Selector {
  std::string metric;
  std::vector<Matcher> matchers;
};

/// What a PromQL expression refers to: its selectors, and the label names of its by/without/
/// on/ignoring/group_left/group_right clauses.
struct PromqlRefs {
  std::vector<Selector> selectors;
  std::set<std::string> grouping_labels;
};

/// Scans PromQL far enough to find the above (not a full parser: promtool checks the syntax).
/// Throws std::runtime_error on an unterminated string, selector or range.
PromqlRefs scan_promql(std::string_view promql);

using Labels = std::map<std::string, std::string>;

/// A Prometheus text exposition: family types from `# TYPE` lines, and the label sets of every
/// sample by sample name (a histogram family F has samples F_bucket, F_sum and F_count).
struct Exposition {
  std::map<std::string, std::string> types;
  std::map<std::string, std::vector<Labels>> samples;
};

Exposition parse_exposition(std::string_view text);

/// Problems of `q` against what a bgproxy exported: a name it does not export (a histogram named
/// without its _bucket/_sum/_count suffix included), a label a selector matches that its metric
/// does not carry, an `=` matcher's value no sample has, a grouping label none of the query's
/// metrics carries. `job` and `instance` are Prometheus's target labels and always allowed; the
/// only foreign series allowed is Prometheus's own `up`, restricted to a job.
std::vector<std::string> check_against(const Query& q, const Exposition& e);
std::vector<std::string> check_against(const LabelValuesQuery& q, const Exposition& e);

/// URL query-component encoding (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view s);

}  // namespace bgtest::monitoring
