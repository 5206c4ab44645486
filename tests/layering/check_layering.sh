#!/usr/bin/env bash
# Who may include whom (docs/architecture.md), checked on the #include lines of the tree:
#   control/  includes nothing of proxy/;
#   proxy/    includes nothing of control/, except proxy/main.cpp, which wires the two;
#   core/, include/  include no Asio, Beast, spdlog, prometheus-cpp, nothing of proxy/,
#             control/ or tls/, and yaml-cpp only in core/config/ (bg_core links yaml-cpp alone);
#   tls/      includes nothing of proxy/ or control/ (both use it).
# proxy/ and control/ meet only through include/bgproxy/ (api/ above all).
#
# Usage: check_layering.sh SOURCE_DIR   exit 0 when every rule holds, else 1 with one line per
#                                       offending include: FILE:LINE: the line   <- the rule
#        check_layering.sh --self-test  plants each kind of forbidden include in a scratch tree
#                                       and fails unless every one is caught
set -euo pipefail

# Extended regexes for the path inside <...> or "..."; "../" prefixes count as the same path.
readonly up='(\.\./)*'
readonly io_libs='boost/asio|boost/beast|spdlog/|prometheus/'

violations=0

# forbid DIR PATH_REGEX RULE [FILES_EXEMPT_REGEX]
forbid() {
  local dir=$1 path=$2 rule=$3 exempt=${4:-}
  [[ -d $dir ]] || return 0
  local hits
  hits=$(grep -rnE --include='*.cpp' --include='*.hpp' --include='*.h' --include='*.ipp' \
           "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($path)" "$dir" || true)
  if [[ -n $exempt && -n $hits ]]; then hits=$(grep -vE "^($exempt):" <<<"$hits" || true); fi
  if [[ -n $hits ]]; then
    sed "s|\$|   <- $rule|" <<<"$hits"
    violations=$((violations + 1))
  fi
}

check_tree() {
  cd "$1"
  local d
  for d in core include control proxy tls; do
    [[ -d $d ]] || { echo "check_layering: $1/$d is missing: not a bgproxy source tree" >&2; exit 2; }
  done
  forbid control "${up}proxy/" "control/ never includes proxy/ (they meet in include/bgproxy/api)"
  forbid proxy "${up}control/" "proxy/ never includes control/ (only proxy/main.cpp wires them)" 'proxy/main\.cpp'
  forbid core "$io_libs" "core/ is I/O-free: no Asio, Beast, spdlog or prometheus-cpp"
  forbid core "yaml-cpp/" "core/ reads YAML only in core/config/" 'core/config/[^:]*'
  forbid core "${up}(proxy|control|tls)/|bgproxy/tls/" "core/ includes nothing of proxy/, control/ or tls/"
  forbid include "$io_libs|yaml-cpp/" "include/bgproxy/ holds contracts: no Asio, Beast, spdlog, prometheus-cpp or yaml-cpp"
  forbid include "${up}(proxy|control|tls)/" "include/bgproxy/ includes nothing of proxy/, control/ or tls/"
  forbid tls "${up}(proxy|control)/" "tls/ (bg_tls) is used by proxy/ and control/ and includes neither"
  if ((violations > 0)); then
    echo "check_layering: $violations rule(s) broken; see docs/architecture.md" >&2
    return 1
  fi
}

# Every rule must catch what it is there for, and the tree as planted must pass without it.
self_test() {
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  mkdir -p "$scratch"/{core/config,core/stats,include/bgproxy/x,control/core,proxy/http,tls}
  # What is allowed: each of these stays in the tree for every case below.
  printf '#include <yaml-cpp/yaml.h>\n' >"$scratch/core/config/parse.cpp"
  printf '#include "control/server/control_server.hpp"\n' >"$scratch/proxy/main.cpp"
  printf '#include "bgproxy/api/data_plane.hpp"\n#include <boost/asio.hpp>\n' >"$scratch/proxy/http/ok.cpp"
  printf '#include "bgproxy/config/config.hpp"\n#include <boost/json.hpp>\n' >"$scratch/control/core/ok.cpp"
  printf '#include <boost/asio/ssl/context.hpp>\n' >"$scratch/tls/ok.cpp"
  (check_tree "$scratch" >/dev/null) || { echo "self-test: a clean tree was refused" >&2; return 1; }

  local planted=(
    'control/core/bad.cpp|#include "proxy/http/client_session.hpp"'
    'control/core/bad.hpp|#include "../../proxy/net/worker.hpp"'
    'proxy/http/bad.cpp|#include "control/core/state.hpp"'
    'proxy/http/bad.hpp|  #  include <control/core/command.hpp>'
    'core/stats/bad.cpp|#include <boost/asio/post.hpp>'
    'core/stats/bad.cpp|#include <boost/beast/http.hpp>'
    'core/stats/bad.cpp|#include <spdlog/spdlog.h>'
    'core/stats/bad.cpp|#include <prometheus/counter.h>'
    'core/stats/bad.cpp|#include <yaml-cpp/yaml.h>'
    'core/stats/bad.cpp|#include "proxy/net/types.hpp"'
    'core/stats/bad.cpp|#include "control/core/state.hpp"'
    'core/stats/bad.cpp|#include "bgproxy/tls/upstream_tls.hpp"'
    'include/bgproxy/x/bad.hpp|#include <boost/asio/io_context.hpp>'
    'include/bgproxy/x/bad.hpp|#include <yaml-cpp/yaml.h>'
    'include/bgproxy/x/bad.hpp|#include <spdlog/spdlog.h>'
    'include/bgproxy/x/bad.hpp|#include "control/core/state.hpp"'
    'tls/bad.cpp|#include "proxy/net/types.hpp"'
  )
  local entry file line failed=0
  for entry in "${planted[@]}"; do
    file=${entry%%|*}
    line=${entry#*|}
    printf '%s\n' "$line" >"$scratch/$file"
    if (check_tree "$scratch" >/dev/null 2>&1); then
      echo "self-test: not caught: $file: $line" >&2
      failed=1
    fi
    rm "$scratch/$file"
  done
  return "$failed"
}

case ${1:-} in
  --self-test) self_test ;;
  '') echo "usage: check_layering.sh SOURCE_DIR | --self-test" >&2; exit 2 ;;
  *) check_tree "$1" ;;
esac
