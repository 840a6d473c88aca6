#!/usr/bin/env bash
# deploy/local/start.sh - installs what is missing, builds, and starts a local mcpgw cluster on
# loopback: redis-server, 4 nodes (Redis store, gossip) and the balancer; prints the MCP URL.
#   deploy/local/start.sh                start (or restart) the cluster
#   deploy/local/start.sh scale [N]      size nodes and balancer workers for N concurrent sessions
#                                        with GET streams (default 100000) and print the matching
#                                        mcpgw-loadgen command (docs/loadgen.md, "Scale mode")
#   deploy/local/start.sh stop           stop what an earlier start left running
# Environment: MCPGW_RUN (pids, logs, Redis data; default .run), MCPGW_BUILD (default build),
# MCPGW_BALANCER_PORT (8800: nodes 8801.., admin 8899, gossip UDP 8900.., redis 8990),
# MCPGW_STORE (default: the cluster's own redis-server; "memory" for unreplicated nodes),
# MCPGW_SESSIONS_PER_NODE (scale mode: at most this many sessions per node, 5000),
# MCPGW_NODES (scale mode: this node count instead), MCPGW_NODE_ARGS / MCPGW_BALANCER_ARGS (extra
# flags for every node / the balancer, e.g. "--log-level debug"), MCPGW_START_TIMEOUT (seconds to
# wait for the balancer to route to every node, 30).
# It returns once every balancer worker can send new sessions to every node: a load started
# right after it spreads over all of them (sessions are sticky, so an early imbalance would last).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deps.sh"

RUN=${MCPGW_RUN:-$MCPGW_ROOT/.run}
BUILD=${MCPGW_BUILD:-$MCPGW_ROOT/build}
BAL_PORT=${MCPGW_BALANCER_PORT:-8800}
ADMIN_PORT=$((BAL_PORT + 99))
GOSSIP_BASE=$((BAL_PORT + 100))
REDIS_PORT=$((BAL_PORT + 190))
START_TIMEOUT=${MCPGW_START_TIMEOUT:-30}
read -ra NODE_ARGS <<<"${MCPGW_NODE_ARGS:-}"
read -ra BALANCER_ARGS <<<"${MCPGW_BALANCER_ARGS:-}"

# Stop only processes that are ours: a pid file may outlive its process and the pid be reused.
stop_all() {
    [ -d "$RUN" ] || return 0
    local pids=()
    for f in "$RUN"/*.pid; do
        [ -f "$f" ] || continue
        local pid
        pid=$(cat "$f")
        if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qE 'mcpgw-|redis-server'; then
            # The balancer's workers too: until they are gone they still share its port
            # (SO_REUSEPORT) and would take a new cluster's first connections.
            pids+=($(pgrep -P "$pid" 2>/dev/null || true))
            kill "$pid" 2>/dev/null && pids+=("$pid")
        fi
        rm -f "$f"
    done
    for _ in $(seq 100); do
        local alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}

wait_http() { # URL WHAT
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "mcpgw: $2 did not come up; see $RUN" >&2
    exit 1
}

# The balancer's /healthz (balancer/admin.h) says how many nodes its table holds, how many every
# running worker can send new sessions to, and whether the table is still the --nodes list that
# stands in until gossip has found a node. Its first 200 comes as soon as one node is up: gossip
# fills the table in over the next moments, and sessions opened meanwhile would all land on the
# nodes found first and stay there. So wait for the whole cluster, and say what is missing if it
# does not come.
json_field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"; }
wait_routable() { # NODES WORKERS
    local h="" end=$((SECONDS + START_TIMEOUT))
    while [ "$SECONDS" -lt "$end" ]; do
        h=$(curl -s "http://127.0.0.1:$ADMIN_PORT/healthz" 2>/dev/null || true)
        [ "$(json_field "$h" fallback)" = false ] && [ "$(json_field "$h" nodes)" = "$1" ] &&
            [ "$(json_field "$h" routable)" = "$1" ] && [ "$(json_field "$h" workers)" = "$2" ] &&
            return 0
        sleep 0.1
    done
    local fb="" not
    [ -n "$h" ] || h='{"nodes":"?","routable":"?","workers":"?"} (no answer from its admin listener)'
    [ "$(json_field "$h" fallback)" = true ] && fb=" (gossip has found none yet)"
    not=$(sed -n 's/.*"not_routable":\[\(.*\)\].*/\1/p' <<<"$h" | tr -d '"')
    echo "mcpgw: after ${START_TIMEOUT}s the balancer still cannot send new sessions to every node:" \
        "its table holds $(json_field "$h" nodes) of $1 nodes$fb, $(json_field "$h" routable)" \
        "routable from every worker, $(json_field "$h" workers) of $2 workers running; not" \
        "routable: ${not:-none}. A node missing from the table has not joined the balancer's" \
        "gossip: see $RUN/n*.log and $RUN/balancer.log. The cluster is left running; stop it" \
        "with: deploy/local/start.sh stop" >&2
    exit 1
}

ceil_div() { echo $((($1 + $2 - 1) / $2)); }

mode=${1:-start}
case "$mode" in
stop)
    stop_all
    echo "mcpgw: stopped"
    exit 0
    ;;
start)
    SESSIONS=0
    ;;
scale)
    SESSIONS=${2:-100000}
    ;;
*)
    echo "usage: deploy/local/start.sh [start | scale [SESSIONS] | stop]" >&2
    exit 2
    ;;
esac

# Sizing (docs/loadgen.md, "Limits and sysctls"): a node counts each stream against its
# connection limit (a socket each over HTTP/1.1; an HTTP/2 stream of the balancer's connection
# otherwise), so at most 15,000 sessions per node; a balancer worker holds one socket per stream
# (the client's; the stream to the node is one of a few HTTP/2 connections) plus its pools, so at
# most 15,000 streams per worker; a load-generator worker 15,000.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
per_node=$((nofile * 3 / 4 < 15000 ? nofile * 3 / 4 : 15000))
# A node's failure moves all its sessions at once; on a 2-core machine that shares everything
# the cluster moves about 2,000-2,500 sessions a second, so scale mode keeps a node to
# MCPGW_SESSIONS_PER_NODE (5,000: recovery p99 about 2.5-3 s; docs/results.md).
fail_per_node=${MCPGW_SESSIONS_PER_NODE:-5000}
per_bal=$((nofile - 2000 < 15000 ? nofile - 2000 : 15000))
nodes=4
workers=2
# connect() searches the local port range for a port free towards the destination; the search
# grows long once one source address holds more than about a quarter of the range towards one
# node (connect() tries even ports first). The balancer therefore connects to the nodes from
# 127.0.1.1-127.0.1.K, sized for the most a node may hold after taking a failed node's share.
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
quarter=$(((port_hi - port_lo + 1) / 4))
if [ "$SESSIONS" -gt 0 ]; then
    [ "$fail_per_node" -lt "$per_node" ] && per_node=$fail_per_node
    nodes=${MCPGW_NODES:-$(ceil_div "$SESSIONS" "$per_node")}
    [ "$nodes" -lt 4 ] && nodes=4
    # SO_REUSEPORT spreads connections unevenly: 15% headroom per worker.
    workers=$(ceil_div $((SESSIONS * 115 / 100)) "$per_bal")
    [ "$workers" -lt 2 ] && workers=2
fi
bal_src=$(ceil_div $((per_node * 5 / 4)) "$quarter")
[ "$bal_src" -lt 2 ] && bal_src=2

mcpgw_install_build_deps
echo "mcpgw: building into $BUILD" >&2
mcpgw_build "$BUILD"
mkdir -p "$RUN/redis"
stop_all

STORE=${MCPGW_STORE:-redis://127.0.0.1:$REDIS_PORT}
if [ -z "${MCPGW_STORE:-}" ]; then
    # A scale run measures the sessions it creates: earlier runs' records (kept by the
    # append-only file, alive for their TTL) would only add to Redis's working set.
    [ "$SESSIONS" -gt 0 ] && rm -rf "$RUN/redis/appendonlydir"
    # Every failover's claims go through this one process, and here it shares the cores with
    # the nodes, the balancer and a load generator: at an equal share it waited ~90% of a
    # failover in the run queue (docs/operations.md). So it gets the CPU first when we may say
    # so (root); on a host or container of its own it needs nothing of the kind.
    first=()
    [ "$(nice -n -10 nice 2>/dev/null)" = "-10" ] && first=(nice -n -10)
    "${first[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis" --save "" \
        --appendonly yes --appendfsync everysec --hash-max-listpack-value 512 \
        >"$RUN/redis.log" 2>&1 &
    echo $! >"$RUN/redis.pid"
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
fi

seeds="127.0.0.1:$((GOSSIP_BASE + 1)),127.0.0.1:$((GOSSIP_BASE + 2))"
node_list=()
for i in $(seq "$nodes"); do
    "$BUILD/node/mcpgw-node" --listen "127.0.0.1:$((BAL_PORT + i))" --node-id "n$i" \
        --store "$STORE" --gossip-bind "127.0.0.1:$((GOSSIP_BASE + i))" --gossip-seeds "$seeds" \
        "${NODE_ARGS[@]}" >"$RUN/n$i.log" 2>&1 &
    echo $! >"$RUN/n$i.pid"
    node_list+=("n$i=127.0.0.1:$((BAL_PORT + i))")
done
# Ready, not just alive: /readyz answers 200 once the node's session store is connected, so the
# first initialize does not get a 503.
for i in $(seq "$nodes"); do
    wait_http "http://127.0.0.1:$((BAL_PORT + i))/readyz" "node n$i"
done
# --nodes only seeds the table until gossip has found the nodes.
"$BUILD/balancer/mcpgw-balancer" --listen "127.0.0.1:$BAL_PORT" \
    --nodes "$(IFS=,; echo "${node_list[*]}")" --workers "$workers" --max-clients "$per_bal" \
    --source-addrs "127.0.1.1-127.0.1.$bal_src" \
    --admin "127.0.0.1:$ADMIN_PORT" --gossip-bind "127.0.0.1:$GOSSIP_BASE" --gossip-seeds "$seeds" \
    "${BALANCER_ARGS[@]}" >"$RUN/balancer.log" 2>&1 &
echo $! >"$RUN/balancer.pid"
wait_http "http://127.0.0.1:$ADMIN_PORT/healthz" "the balancer"
wait_routable "$nodes" "$workers"

echo "mcpgw: redis, $nodes nodes and a balancer ($workers workers) are up; logs in $RUN;" \
    "metrics at http://127.0.0.1:$ADMIN_PORT/metrics; stop with: deploy/local/start.sh stop" >&2
if [ "$SESSIONS" -gt 0 ]; then
    lg_workers=$(ceil_div "$SESSIONS" 15000)
    src=$(ceil_div "$SESSIONS" "$quarter")
    [ "$src" -lt "$lg_workers" ] && src=$lg_workers
    last=$((1 + src))
    [ "$last" -gt 254 ] && last=254
    [ "$(cat /proc/sys/net/core/somaxconn)" -lt 4096 ] &&
        echo "mcpgw: net.core.somaxconn is below 4096: fast ramps will see SYN retransmissions" >&2
    # Not visible inside a network namespace (a host-wide setting): no warning then.
    [ "$(cat /proc/sys/net/core/netdev_max_backlog 2>/dev/null || echo 16384)" -lt 16384 ] &&
        echo "mcpgw: net.core.netdev_max_backlog is below 16384: bursts over loopback (a failover," \
            "a large fan-out) will drop packets; sysctl -w net.core.netdev_max_backlog=16384" >&2
    echo "Load it with:" >&2
    echo "  $BUILD/loadgen/mcpgw-loadgen --url http://127.0.0.1:$BAL_PORT/mcp --sessions $SESSIONS" \
        "--ramp 1000/s --get-streams --workers $lg_workers --source-addrs 127.0.0.2-127.0.0.$last" \
        "--rate 2000/s --duration 60s --pidfile-dir $RUN --report-html run.html" >&2
fi
echo "MCP URL: http://127.0.0.1:$BAL_PORT/mcp"
