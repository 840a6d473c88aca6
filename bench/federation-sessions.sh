#!/usr/bin/env bash
# bench/federation-sessions.sh (run as `bench/federation.sh sessions`) - per-client upstream
# sessions at scale: BENCH_SESSIONS (10,000) client sessions through the balancer and 4 gateway
# nodes on Redis (deploy/local/start.sh), each node fronting one stateful upstream (an
# mcpgw-node, memory store) with no session= on its line, so every client session gets its own
# session at the upstream (docs/federation.md). mcpgw-loadgen opens the sessions and calls the
# upstream's echo round-robin over them (every session is called well before the kill), and
# kills n1 mid-load. Prints:
#   - memory per session: the gateway nodes' RSS growth from idle to the peak before the kill,
#     divided by the sessions (a client session and its upstream session), and the upstream's
#     RSS growth divided by the sessions (its side of the upstream sessions), separately;
#   - the kill drill: sessions affected, recovered, lost; recovery p50/p99/max (loadgen);
#   - initializes the upstream saw: before the kill (one per client session, plus the nodes'
#     own) and after it (goal: 0 new: the surviving nodes adopt the sessions of the dead one).
# Env: MCPGW_BUILD (build), BENCH_SESSIONS (10000), BENCH_RATE calls/s (1000), BENCH_DURATION
# load seconds (40; the kill at 60% of it), BENCH_UPSTREAM_KEYS more keys for the upstream line
# (e.g. h2c=1: the upstream sessions' streams share HTTP/2 connections), BENCH_KEEP=1 keeps the logs. Ports 18740-18749, 18839-18843, 18930; run it in a
# network namespace of its own. Prints figures only (not a CI test).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${MCPGW_BUILD:-$ROOT/build}
SESSIONS=${BENCH_SESSIONS:-10000}
RATE=${BENCH_RATE:-1000}
DUR=${BENCH_DURATION:-40}
KILL_AT=$((DUR * 6 / 10))
BAL=18740 UP=18749
TMP=$(mktemp -d /tmp/mcpgw-bench-sessions.XXXXXX)
RUN=$TMP/run
up_pid=

cleanup() {
    MCPGW_RUN=$RUN MCPGW_BUILD=$BUILD MCPGW_BALANCER_PORT=$BAL bash "$ROOT/deploy/local/start.sh" stop \
        >/dev/null 2>&1 || true
    [ -n "$up_pid" ] && kill -9 "$up_pid" 2>/dev/null
    [ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null
    wait 2>/dev/null || true
    if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
nodes_rss() { # the gateway nodes' RSS in kB, and whether n1 is alive
    local sum=0 alive=1
    for i in 1 2 3 4; do
        local p
        p=$(cat "$RUN/n$i.pid" 2>/dev/null || echo 0)
        # a killed node may stay a zombie until reaped: kill -0 would still succeed
        if [ "$p" != 0 ] && grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$p/status"; then
            sum=$((sum + $(rss_kb "$p")))
        else
            [ "$i" = 1 ] && alive=0
        fi
    done
    echo "$sum $alive"
}
created() { # the upstream's sessions_created_total
    curl -s "http://127.0.0.1:$UP/metrics" | awk '$1 ~ /^mcpgw_node_sessions_created_total/ {print $2}'
}

"$BUILD/node/mcpgw-node" --listen "127.0.0.1:$UP" --node-id up --store memory --log-level warn \
    >"$TMP/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$UP/healthz" && break; sleep 0.1; done
echo "upstream up http http://127.0.0.1:$UP/mcp prefix= ${BENCH_UPSTREAM_KEYS:-}" >"$TMP/gw.conf"
MCPGW_RUN=$RUN MCPGW_BUILD=$BUILD MCPGW_BALANCER_PORT=$BAL \
    MCPGW_NODE_ARGS="--config $TMP/gw.conf --log-level warn" \
    bash "$ROOT/deploy/local/start.sh" >"$TMP/start.log" 2>&1 ||
    { cat "$TMP/start.log" >&2; exit 1; }
# Each node's own session at the upstream (it tells the node the upstream is stateful).
for _ in $(seq 300); do [ "$(created)" -ge 4 ] 2>/dev/null && break; sleep 0.1; done
sleep 1
read -r idle_nodes _ <<<"$(nodes_rss)"
idle_up=$(rss_kb "$up_pid")
created0=$(created)

# Sample memory and the upstream's count every second; the last sample with n1 alive is the peak
# before the kill.
(
    while :; do
        read -r r a <<<"$(nodes_rss)"
        echo "$r $a $(rss_kb "$up_pid") $(created)"
        sleep 1
    done
) >"$TMP/samples" 2>/dev/null &
sampler=$!

"$BUILD/loadgen/mcpgw-loadgen" --url "http://127.0.0.1:$BAL/mcp" --sessions "$SESSIONS" \
    --ramp 1000/s --duration "${DUR}s" --rate "$RATE/s" --concurrency 64 --workers 2 --get-streams \
    --source-addrs 127.0.0.2-127.0.0.3 --drill "kill:n1@${KILL_AT}s" --pidfile-dir "$RUN" \
    --quiet --report-json "$TMP/report.json" >"$TMP/loadgen.log" 2>&1 || true
sleep 2
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=
created_end=$(created)
[ -f "$TMP/report.json" ] || { echo "bench: loadgen failed:" >&2; tail -n 20 "$TMP/loadgen.log" >&2; exit 1; }

# The peak before the kill, and the upstream's count then.
read -r peak_nodes _ peak_up created_kill <<<"$(awk '$2 == 1' "$TMP/samples" | tail -n 1)"
node -e '
const [sessions, idleN, peakN, idleU, peakU, c0, cKill, cEnd, load] = process.argv.slice(1);
const r = JSON.parse(require("fs").readFileSync(process.argv[10], "utf8"));
const d = r.drills[0] || {};
const kb = (a, b) => ((Number(b) - Number(a)) * 1024 / Number(sessions) / 1024).toFixed(1);
console.log(`Per-client upstream sessions at scale (${require("fs").readFileSync(process.argv[11], "utf8").trim()}): ${r.sessions.established} client sessions through the balancer and 4 nodes (Redis store), one upstream (mcpgw-node, memory store); loadgen echo at ${load}; the machine is shared (2 cores, other work running: load average at the start ${require("fs").readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")})`);
console.log(`memory per session: gateway nodes ${kb(idleN, peakN)} KiB (RSS ${(idleN / 1024).toFixed(0)} -> ${(peakN / 1024).toFixed(0)} MiB over 4 nodes: the client session and its upstream session), upstream ${kb(idleU, peakU)} KiB (RSS ${(idleU / 1024).toFixed(0)} -> ${(peakU / 1024).toFixed(0)} MiB)`);
console.log(`upstream initializes: ${Number(cKill) - Number(c0)} before the kill (sessions opened), ${Number(cEnd) - Number(cKill)} after it (goal 0)`);
console.log(`kill drill (${d.spec}): ${d.affected_sessions} sessions affected, ${d.recovered_sessions} recovered, ${d.lost_sessions} lost; recovery p50 ${d.recovery_ms?.p50} ms, p99 ${d.recovery_ms?.p99} ms, max ${d.recovery_ms?.max} ms; error window ${d.error_window?.duration_ms} ms`);
console.log(`requests: ${r.requests.ok} ok, ${r.requests.failed} failed`);
' "$SESSIONS" "$idle_nodes" "$peak_nodes" "$idle_up" "$peak_up" "$created0" "$created_kill" "$created_end" \
    "$RATE/s" "$TMP/report.json" "$TMP/gw.conf"
