#!/usr/bin/env bash
# bench/node.sh - node benchmark: one mcpgw-node against the official TypeScript SDK 1.x server.
#
#   bench/node.sh                 everything (about 3 minutes)
#   bench/node.sh throughput      only the echo throughput/latency table
#   bench/node.sh memory          only the memory per idle session
#
# Each server is pinned to CPU 0 and the load generator to CPU 1 (taskset), so "per core" means
# one core of server against one core of load. For each payload (256 B, 4 KiB):
#   1. max echo req/s, closed loop with C calls in flight (p50/p99 at that load);
#   2. p99 at half that rate, open loop (latency counted from each call's intended send time).
# Then 10,000 initialized sessions, each holding its GET stream, against a fresh node:
# (RSS after - RSS before) / 10000, read from /proc/PID/status VmRSS by this script and from the
# load generator's peak sample. Prints figures only; nothing is written into the tree.
# Environment: MCPGW_BUILD (default build/), MCPGW_NPM (the SDK), BENCH_DURATION (10s),
# BENCH_CONCURRENCY (32), BENCH_SESSIONS (10000), BENCH_PORT (15800, uses 15800-15803).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${MCPGW_BUILD:-$ROOT/build}
export MCPGW_NPM=${MCPGW_NPM:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-npm}
DURATION=${BENCH_DURATION:-10s}
CONC=${BENCH_CONCURRENCY:-32}
SESSIONS=${BENCH_SESSIONS:-10000}
PORT=${BENCH_PORT:-15800}
SERVER_CPU=0
LOAD_CPU=1
what=${1:-all}

NODE_BIN="$BUILD/node/mcpgw-node"
LG_BIN="$BUILD/loadgen/mcpgw-loadgen"
if [ ! -x "$NODE_BIN" ] || [ ! -x "$LG_BIN" ]; then
    echo "bench: building mcpgw-node and mcpgw-loadgen into $BUILD" >&2
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target mcpgw-node mcpgw-loadgen >/dev/null
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "bench: needs 2 CPUs (one for the server, one for the load)" >&2
    exit 1
fi

TMP=$(mktemp -d /tmp/mcpgw-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# start NAME CMD...: run pinned to the server CPU; sets $started to its pid.
start() {
    local name=$1; shift
    taskset -c "$SERVER_CPU" "$@" >"$TMP/$name.log" 2>&1 &
    started=$!
    pids+=("$started")
}

stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

wait_port() { # wait_port PORT: until something accepts on it
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench: nothing listens on port $1" >&2
    return 1
}

lg() { taskset -c "$LOAD_CPU" "$LG_BIN" --quiet "$@"; }

# jq-free JSON access: jget FILE EXPR (EXPR uses r).
jget() {
    node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
             console.log(eval(process.argv[2]))' "$1" "$2"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# CPU time used by finished children of this shell (the load generator and its workers), in
# centiseconds, into the variable named $1. `times` runs in this shell, not a subshell.
children_cs() {
    times >"$TMP/times"
    printf -v "$1" '%s' "$(tail -1 "$TMP/times" | awk '{
        n = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 6000 + a[2] * 100 }
        printf "%d\n", n }')"
}

# How busy the machine is without us: percent of CPU time not idle over one second.
machine_busy() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$6+$7+$8, $5}' /proc/stat); sleep 1
    b=$(awk '/^cpu / {print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
    echo "$a $b" | awk '{busy = $3 - $1; idle = $4 - $2; printf "%d\n", 100 * busy / (busy + idle)}'
}

# measure NAME URL PID: fills the row file $TMP/NAME.rows with
#   payload max_rps p50 p99 server_cpu% loadgen_cpu% half_rate half_p99 failures
# Server CPU % below ~95 at max means the server was not the limit (the load generator's core
# or other processes on the machine were): the max is then a lower bound.
measure() {
    local name=$1 url=$2 pid=$3 payload t0 t1 w0 w1 c0 c1 rps p50 p99 half hp99 cpu lcpu
    : >"$TMP/$name.rows"
    for payload in 256 4096; do
        # Warm-up (JIT for the SDK server, allocator for both), not measured.
        lg --url "$url" --sessions "$CONC" --duration 3s --rate max --concurrency "$CONC" \
            --payload "$payload" >/dev/null
        t0=$(cpu_ticks "$pid"); w0=$(date +%s%N); children_cs c0
        lg --url "$url" --sessions "$CONC" --duration "$DURATION" --rate max \
            --concurrency "$CONC" --payload "$payload" --report-json "$TMP/$name-$payload-max.json" \
            >"$TMP/$name-$payload-max.txt"
        t1=$(cpu_ticks "$pid"); w1=$(date +%s%N); children_cs c1
        rps=$(jget "$TMP/$name-$payload-max.json" 'r.requests.rps.toFixed(0)')
        p50=$(jget "$TMP/$name-$payload-max.json" 'r.requests.latency_ms.p50')
        p99=$(jget "$TMP/$name-$payload-max.json" 'r.requests.latency_ms.p99')
        cpu=$(( (t1 - t0) * 100 * 1000000000 / $(getconf CLK_TCK) / (w1 - w0) ))
        lcpu=$(( (c1 - c0) * 1000000000 / (w1 - w0) ))
        half=$(( rps / 2 ))
        lg --url "$url" --sessions "$CONC" --duration "$DURATION" --rate "$half/s" \
            --concurrency "$CONC" --payload "$payload" --report-json "$TMP/$name-$payload-half.json" \
            >"$TMP/$name-$payload-half.txt"
        hp99=$(jget "$TMP/$name-$payload-half.json" 'r.requests.latency_ms.p99')
        local failed
        failed=$(jget "$TMP/$name-$payload-max.json" 'r.requests.failed + r.sessions.failed')
        failed=$((failed + $(jget "$TMP/$name-$payload-half.json" 'r.requests.failed + r.sessions.failed')))
        echo "$payload $rps $p50 $p99 $cpu $lcpu $half $hp99 $failed" >>"$TMP/$name.rows"
        echo "  $name payload $payload B: max $rps req/s (p50 $p50 ms, p99 $p99 ms, server CPU" \
            "$cpu%, load generator CPU $lcpu%); open loop at $half/s: p99 $hp99 ms; failures" \
            "$failed" >&2
    done
}

throughput() {
    local node_pid sdk_pid busy
    busy=$(machine_busy)
    echo "== echo throughput: server on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU," \
        "$CONC calls in flight, $DURATION per measurement; machine $busy% busy before we start" >&2
    if [ "$busy" -gt 10 ]; then
        echo "bench: warning: other processes use $busy% of the CPUs; the figures below are" \
            "lower bounds with inflated tails" >&2
    fi
    start node "$NODE_BIN" --listen "127.0.0.1:$PORT" --node-id b1 --store memory --log-level warn
    node_pid=$started
    wait_port "$PORT"
    measure mcpgw "http://127.0.0.1:$PORT/mcp" "$node_pid"
    stop_server "$node_pid"

    start sdk node "$ROOT/bench/sdk-echo-server.mjs" "$((PORT + 1))"
    sdk_pid=$started
    wait_port "$((PORT + 1))"
    measure sdk "http://127.0.0.1:$((PORT + 1))/mcp" "$sdk_pid"
    stop_server "$sdk_pid"

    echo
    echo "Echo tool calls, one server core (taskset -c $SERVER_CPU) against one load core" \
        "(taskset -c $LOAD_CPU); closed loop with $CONC in flight for max, open loop at half of it."
    echo "Machine busy (other processes) before: $busy%; after: $(machine_busy)%."
    printf '%-6s %-7s %10s %13s %8s %8s %7s %7s %11s %12s %8s\n' server payload "max req/s" \
        "req/s/srvCPU" "p50 ms" "p99 ms" "srv CPU" "LG CPU" "half rate/s" "p99@half ms" failures
    for name in mcpgw sdk; do
        while read -r payload rps p50 p99 cpu lcpu half hp99 failed; do
            printf '%-6s %-7s %10s %13s %8s %8s %6s%% %6s%% %11s %12s %8s\n' "$name" "$payload" \
                "$rps" "$(( cpu > 0 ? rps * 100 / cpu : 0 ))" "$p50" "$p99" "$cpu" "$lcpu" "$half" \
                "$hp99" "$failed"
        done <"$TMP/$name.rows"
    done
    echo "(req/s/srvCPU: requests per second of server CPU time actually used. srv CPU below ~95%"
    echo " at max means the server was not the limit - the load generator's core or other"
    echo " processes were - and max req/s is then a lower bound for that server.)"
    echo
    paste "$TMP/mcpgw.rows" "$TMP/sdk.rows" |
        while read -r pl r1 _ _ c1 _ _ h1 _ _ r2 _ _ c2 _; do
            node -e 'const [pl, a, b, ca, cb, h] = process.argv.slice(1).map(Number);
                const raw = b > 0 ? a / b : Infinity;
                const eff = cb > 0 && ca > 0 ? (a / ca) / (b / cb) : Infinity;
                const goal = (x) => x >= 10 ? "met" : "NOT met";
                console.log(`payload ${pl} B: mcpgw/SDK = ${raw.toFixed(1)}x in req/s with one ` +
                    `core each (goal >= 10x: ${goal(raw)}), ${eff.toFixed(1)}x per second of ` +
                    `server CPU (${goal(eff)}); mcpgw p99 at half load ${h} ms ` +
                    `(goal < 2 ms: ${h < 2 ? "met" : "NOT met"})`)' \
                "$pl" "$r1" "$r2" "$c1" "$c2" "$h1"
        done
}

memory() {
    local node_pid before after lg_pid peak ss_before ss_after sessions i
    echo "== memory per idle session: $SESSIONS sessions, each with an open GET stream" >&2
    start memnode "$NODE_BIN" --listen "127.0.0.1:$((PORT + 2))" --node-id m1 --store memory \
        --log-level warn
    node_pid=$started
    wait_port "$((PORT + 2))"
    sleep 0.5
    before=$(awk '/^VmRSS/ {print $2}' "/proc/$node_pid/status")
    ss_before=$(awk '/^TCP:/ {print $11}' /proc/net/sockstat)
    # Hold the sessions long enough to sample; no calls (--rate 0).
    taskset -c "$LOAD_CPU" "$LG_BIN" --quiet --url "http://127.0.0.1:$((PORT + 2))/mcp" \
        --sessions "$SESSIONS" --ramp 2000/s --get-streams --rate 0 --duration 6s \
        --report-json "$TMP/mem.json" >"$TMP/mem.txt" 2>&1 &
    lg_pid=$!
    pids+=("$lg_pid")
    sessions=0
    for i in $(seq 600); do
        sessions=$(curl -fsS "http://127.0.0.1:$((PORT + 2))/metrics" 2>/dev/null |
            awk '/^mcpgw_node_sessions[{ ]/ {print $2}' | head -1)
        [ "${sessions:-0}" -ge "$SESSIONS" ] && break
        sleep 0.1
    done
    sleep 2 # streams attached, buffers settled
    after=$(awk '/^VmRSS/ {print $2}' "/proc/$node_pid/status")
    ss_after=$(awk '/^TCP:/ {print $11}' /proc/net/sockstat)
    wait "$lg_pid" || true
    peak=$(jget "$TMP/mem.json" \
        "(r.peak.processes.find(p => p.pid === $node_pid) || {rss_kb: 0}).rss_kb")
    echo
    echo "Memory per idle session (mcpgw-node, --store memory, $SESSIONS sessions with GET streams;" \
        "sessions established: $(jget "$TMP/mem.json" 'r.sessions.established'))"
    echo "  VmRSS before $before kB, with the sessions $after kB (this script, /proc/$node_pid/status)"
    node -e 'const [b, a, p, n, s0, s1, pg] = process.argv.slice(1).map(Number);
        const per = (a - b) * 1024 / n, per2 = (p - b) * 1024 / n;
        console.log(`  per session: ${per.toFixed(0)} bytes (VmRSS); ${per2.toFixed(0)} bytes ` +
            `(load generator peak sample, ${p} kB) — goal <= 4096: ${per <= 4096 ? "met" : "NOT met"}`);
        console.log(`  kernel TCP buffer memory (/proc/net/sockstat, whole machine): ${s0} -> ${s1} ` +
            `pages of ${pg} B; idle sockets hold no buffer pages, so this follows other traffic`);' \
        "$before" "$after" "$peak" "$SESSIONS" "$ss_before" "$ss_after" "$(getconf PAGESIZE)"
    stop_server "$node_pid"
}

case "$what" in
all) throughput; memory ;;
throughput) throughput ;;
memory) memory ;;
*) echo "usage: bench/node.sh [all|throughput|memory]" >&2; exit 2 ;;
esac
