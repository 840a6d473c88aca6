#!/usr/bin/env bash
# deploy/local/start.sh - installs what is missing, builds, and starts a local mcpgw on loopback,
# then prints the MCP URL. Processes run in the background; logs and pids go to $MCPGW_RUN.
#   deploy/local/start.sh           start
#   deploy/local/start.sh stop      stop what an earlier start left running
#   deploy/local/start.sh scale [N] nodes and balancer workers for N sessions (deploy/local/scale.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deps.sh"

if [ "${1:-}" = "scale" ]; then
    shift
    exec "$(dirname "${BASH_SOURCE[0]}")/scale.sh" "$@"
fi

RUN=${MCPGW_RUN:-$MCPGW_ROOT/.run}
BUILD=${MCPGW_BUILD:-$MCPGW_ROOT/build}
NODE_PORT=${MCPGW_NODE_PORT:-8801}

stop_all() {
    [ -d "$RUN" ] || return 0
    for f in "$RUN"/*.pid; do
        [ -f "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

if [ "${1:-}" = "stop" ]; then
    stop_all
    echo "mcpgw: stopped"
    exit 0
fi

mcpgw_install_build_deps
echo "mcpgw: building into $BUILD" >&2
mcpgw_build "$BUILD"
mkdir -p "$RUN"
stop_all

"$BUILD/node/mcpgw-node" --listen "127.0.0.1:$NODE_PORT" --node-id n1 --store memory \
    >"$RUN/n1.log" 2>&1 &
echo $! >"$RUN/n1.pid"

for _ in $(seq 50); do
    curl -fsS "http://127.0.0.1:$NODE_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$NODE_PORT/healthz" >/dev/null || {
    echo "mcpgw: the node did not come up; see $RUN/n1.log" >&2
    exit 1
}
echo "mcpgw: logs in $RUN; stop with: deploy/local/start.sh stop" >&2
echo "MCP URL: http://127.0.0.1:$NODE_PORT/mcp"
