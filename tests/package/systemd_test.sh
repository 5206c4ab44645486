#!/usr/bin/env bash
# systemd/bgproxy.service: `systemd-analyze verify` accepts it, and its exposure
# score from `systemd-analyze security --offline=yes` stays below 3.0.
set -euo pipefail
src=$1
bin=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# verify checks that ExecStart's binary exists: point it at the one just built.
sed "s#/usr/bin/bgproxy#$bin#g" "$src/systemd/bgproxy.service" >"$dir/bgproxy.service"
out=$(systemd-analyze verify "$dir/bgproxy.service" 2>&1) || { echo "$out"; fail "systemd-analyze verify"; }
[[ -z "$out" ]] || { echo "$out"; fail "systemd-analyze verify printed warnings"; }

score=$(systemd-analyze security --offline=yes "$src/systemd/bgproxy.service" 2>/dev/null |
        sed -n 's/.*Overall exposure level for bgproxy.service: \([0-9.]*\).*/\1/p')
[[ -n "$score" ]] || fail "no exposure score"
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s < 3.0) }' || fail "exposure $score is not below 3.0"
echo "1 passed, 0 failed"
