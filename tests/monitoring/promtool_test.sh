#!/usr/bin/env bash
# promtool on the shipped alert rules (issue 16, SPEC §15):
#   promtool_test.sh SOURCE_DIR check   promtool check rules conf/prometheus/bgproxy-alerts.yml
#   promtool_test.sh SOURCE_DIR test    promtool test rules tests/monitoring/bgproxy-alerts.test.yml
# A missing promtool fails the test: scripts/install-deps installs it (Debian package prometheus).
set -euo pipefail
src=$1
mode=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v promtool >/dev/null || fail "promtool not found: install the Debian package prometheus (scripts/install-deps)"
case $mode in
  check) promtool check rules "$src/conf/prometheus/bgproxy-alerts.yml" ;;
  # rule_files in the test file are relative to its own directory.
  test) promtool test rules "$src/tests/monitoring/bgproxy-alerts.test.yml" ;;
  *) fail "unknown mode $mode (check or test)" ;;
esac
