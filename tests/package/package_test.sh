#!/usr/bin/env bash
# Builds the .deb with CPack and checks what an operator would get from `dpkg -i`:
# the file list, the conffile, and that the installed bgproxy accepts the installed config.
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$root/out" >"$root/cpack.log" 2>&1) || { cat "$root/cpack.log"; fail "cpack"; }
deb=$(ls "$root"/out/bgproxy_*.deb)
echo "package: $(basename "$deb")"

contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/bgproxy ./usr/bin/bgctl ./etc/bgproxy/bgproxy.yaml \
            ./lib/systemd/system/bgproxy.service ./usr/share/bash-completion/completions/bgctl \
            ./usr/share/man/man8/bgproxy.8 ./usr/share/man/man8/bgctl.8 \
            ./usr/share/bgproxy/grafana/bgproxy-dashboard.json ./usr/share/bgproxy/prometheus/bgproxy-alerts.yml; do
  grep -q " $path\$" <<<"$contents" || fail "$path missing from the package"
done
dpkg-deb -e "$deb" "$root/control"
grep -qx /etc/bgproxy/bgproxy.yaml "$root/control/conffiles" || fail "bgproxy.yaml is not a conffile"
grep -q '^Depends:.*libboost-json' "$root/control/control" || fail "shared-library dependencies not computed"

dpkg-deb -x "$deb" "$root/fs"
"$root/fs/usr/bin/bgproxy" -c "$root/fs/etc/bgproxy/bgproxy.yaml" --check || fail "installed config rejected"
"$root/fs/usr/bin/bgctl" help >/dev/null || fail "installed bgctl does not run"
grep -q "canary" "$root/fs/usr/share/man/man8/bgctl.8" || fail "bgctl(8) lacks the commands"
promtool check rules "$root/fs/usr/share/bgproxy/prometheus/bgproxy-alerts.yml" >/dev/null ||
  fail "installed alert rules rejected by promtool"
python3 -m json.tool "$root/fs/usr/share/bgproxy/grafana/bgproxy-dashboard.json" >/dev/null ||
  fail "installed dashboard is not JSON"
echo "1 passed, 0 failed"
