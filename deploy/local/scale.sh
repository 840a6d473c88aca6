#!/usr/bin/env bash
# deploy/local/scale.sh - the local launcher's scale mode: enough node processes and balancer
# workers for SESSIONS concurrent sessions with GET streams under the per-process file limit,
# on loopback, plus the mcpgw-loadgen command that fits. Called as
#   deploy/local/start.sh scale [SESSIONS]     (default 100000)
# Environment: MCPGW_RUN (pids and logs, default .run), MCPGW_BUILD, MCPGW_STORE (memory, or
# redis://HOST:PORT for a replicated cluster), MCPGW_BALANCER_PORT (8800; nodes 8801...).
# Sizing (docs/loadgen.md, "Limits and sysctls"): a node holds one socket per stream plus the
# balancer's pooled connections -> at most 15,000 sessions per node, and at least 4 nodes; a
# balancer worker holds two sockets per stream -> at most 8,000 streams per worker (SO_REUSEPORT
# spreads connections unevenly); a load-generator worker at most 15,000 sessions.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deps.sh"

RUN=${MCPGW_RUN:-$MCPGW_ROOT/.run}
BUILD=${MCPGW_BUILD:-$MCPGW_ROOT/build}
STORE=${MCPGW_STORE:-memory}
BAL_PORT=${MCPGW_BALANCER_PORT:-8800}
SESSIONS=${1:-100000}

ceil_div() { echo $(( ($1 + $2 - 1) / $2 )); }

nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
per_node=$(( nofile * 3 / 4 < 15000 ? nofile * 3 / 4 : 15000 ))
per_bal=$(( (nofile - 1000) / 2 < 8000 ? (nofile - 1000) / 2 : 8000 ))
nodes=$(ceil_div "$SESSIONS" "$per_node"); [ "$nodes" -lt 4 ] && nodes=4
workers=$(ceil_div "$SESSIONS" "$per_bal"); [ "$workers" -lt 2 ] && workers=2
lg_workers=$(ceil_div "$SESSIONS" 15000)
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
ports=$(( port_hi - port_lo + 1 ))
src_needed=$(ceil_div "$SESSIONS" $(( ports * 9 / 10 )))
[ "$src_needed" -lt "$lg_workers" ] && src_needed=$lg_workers
somaxconn=$(cat /proc/sys/net/core/somaxconn)

mcpgw_install_build_deps
echo "mcpgw: building into $BUILD" >&2
mcpgw_build "$BUILD"
mkdir -p "$RUN"
"$MCPGW_ROOT/deploy/local/start.sh" stop >/dev/null

echo "mcpgw scale: $SESSIONS sessions -> $nodes nodes, $workers balancer workers" \
    "(open files per process: $nofile; local ports: $ports; somaxconn: $somaxconn)" >&2
if [ "$nofile" -lt 20000 ]; then
    echo "mcpgw scale: warning: ulimit -n is $nofile; the sizing above assumes 20000" >&2
fi
if [ "$somaxconn" -lt 4096 ]; then
    echo "mcpgw scale: warning: net.core.somaxconn is $somaxconn; ramps above ~1000/s will see" \
        "SYN retransmissions (sysctl -w net.core.somaxconn=4096)" >&2
fi

node_list=()
for i in $(seq "$nodes"); do
    port=$(( BAL_PORT + i ))
    gport=$(( BAL_PORT + 100 + i )) # UDP
    seeds="127.0.0.1:$(( BAL_PORT + 101 ))"
    "$BUILD/node/mcpgw-node" --listen "127.0.0.1:$port" --node-id "n$i" --store "$STORE" \
        --gossip-bind "127.0.0.1:$gport" --gossip-seeds "$seeds" --log-level warn \
        >"$RUN/n$i.log" 2>&1 &
    echo $! >"$RUN/n$i.pid"
    node_list+=("n$i=127.0.0.1:$port")
done
for i in $(seq "$nodes"); do
    port=$(( BAL_PORT + i ))
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || {
        echo "mcpgw scale: node n$i did not come up; see $RUN/n$i.log" >&2
        exit 1
    }
done

# Each balancer worker holds client connections and as many upstream ones.
"$BUILD/balancer/mcpgw-balancer" --listen "127.0.0.1:$BAL_PORT" \
    --nodes "$(IFS=,; echo "${node_list[*]}")" --workers "$workers" \
    --max-clients "$per_bal" --admin "127.0.0.1:$(( BAL_PORT + 99 ))" --log-level warn \
    >"$RUN/balancer.log" 2>&1 &
echo $! >"$RUN/balancer.pid"
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$(( BAL_PORT + 99 ))/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

last=$(( 1 + src_needed ))
[ "$last" -gt 254 ] && last=254
echo "mcpgw: logs and pids in $RUN; stop with: deploy/local/start.sh stop" >&2
echo "MCP URL: http://127.0.0.1:$BAL_PORT/mcp"
echo "Load it with:"
echo "  $BUILD/loadgen/mcpgw-loadgen --url http://127.0.0.1:$BAL_PORT/mcp --sessions $SESSIONS" \
    "--ramp 1000/s --get-streams --workers $lg_workers --source-addrs 127.0.0.2-127.0.0.$last" \
    "--rate 2000/s --duration 60s --pidfile-dir $RUN --report-html run.html"
