#!/usr/bin/env bash
# bench/balancer.sh - mcpgw-balancer vs HAProxy 2.6 vs clients talking to nodes directly.
#
# Same machine, same run, same 4 nodes (memory store). Drives `echo` tools/call requests with
# keep-alive wrk clients rotating through pre-initialized session ids, at 256 B and 4 KB of
# echo text, and prints requests/s and p50/p99 (closed loop, then paced at 70% of the
# balancer's own maximum), the proxies' CPU per request, and the balancer's userspace memory
# per idle client connection (15,000 idle keep-alive connections to one worker).
#
# CPU: the test machine has 2 cores shared by wrk, 4 nodes and the proxy. The proxies are
# limited to one core's worth of parallelism each (mcpgw-balancer --workers 1, HAProxy
# nbthread 1) and wrk runs one thread. By default (BENCH_PIN=1) the nodes and wrk are pinned to
# CPU 0 in every scenario and the proxy under test to CPU 1, so the proxy's added latency is not
# drowned in scheduling delays behind wrk or the nodes. BENCH_PIN=0 pins nothing: then a proxy
# that costs more CPU per request leaves less for the nodes and shows it in requests/s.
#
# `bench/balancer.sh ratio` is the head-to-head the balancer is held to: --workers 2 against
# HAProxy nbthread 2 (BENCH_WORKERS), nothing pinned, closed loop at 256 B and 4 KB, the two
# proxies measured in turns for BENCH_ROUNDS rounds; it prints each round, the median ratio
# (balancer req/s over HAProxy req/s), both proxies' system calls per request, and a short
# `perf` profile of the balancer's workers (top symbols, user and kernel) under the 256 B load.
#
# `bench/balancer.sh ratio26` is the same head-to-head for the stateless 2026-07-28 revision: no
# session, every `echo` call carries its version and capabilities in `_meta` and the
# `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers; the balancer spreads by load,
# HAProxy by `balance roundrobin` (there is no session to hash).
#
# Env: MCPGW_BUILD (default build), BENCH_DURATION seconds per run (10), BENCH_CONNS (64),
# BENCH_IDLE connections for the memory test (15000), BENCH_PIN (1; 0 in ratio mode),
# BENCH_WORKERS (1; 2 in ratio mode), BENCH_ROUNDS (3, ratio mode). Results are printed, not
# stored.
set -euo pipefail

MODE=${1:-full}
case $MODE in
full | ratio | ratio26) ;;
*) echo "usage: bench/balancer.sh [ratio|ratio26]" >&2; exit 2 ;;
esac
ERA26=0
[ "$MODE" = ratio26 ] && ERA26=1 MODE=ratio

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${MCPGW_BUILD:-$ROOT/build}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-64}
IDLE=${BENCH_IDLE:-15000}
if [ "$MODE" = ratio ]; then
    PIN=${BENCH_PIN:-0}
    WORKERS=${BENCH_WORKERS:-2}
else
    PIN=${BENCH_PIN:-1}
    WORKERS=${BENCH_WORKERS:-1}
fi
ROUNDS=${BENCH_ROUNDS:-3}
BASE=18600                     # nodes 18601-18604
BAL=18610 BAL_ADMIN=18611 HAP=18620
TMP=$(mktemp -d /tmp/mcpgw-bench.XXXXXX)
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

for tool in wrk haproxy curl jq node; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
[ -x "$BUILD/node/mcpgw-node" ] && [ -x "$BUILD/balancer/mcpgw-balancer" ] ||
    { echo "bench: build mcpgw-node and mcpgw-balancer in $BUILD first" >&2; exit 1; }

pin() { # pin CPU CMD...: run pinned when BENCH_PIN=1
    local cpu=$1; shift
    if [ "$PIN" = 1 ]; then taskset -c "$cpu" "$@"; else "$@"; fi
}

spawn() { # spawn NAME CPU CMD...: in the background; PID_NAME is the program's own pid
    local name=$1 cpu=$2; shift 2
    if [ "$PIN" = 1 ]; then set -- taskset -c "$cpu" "$@"; fi
    (exec "$@") >"$TMP/$name.log" 2>&1 &
    pids+=($!)
    eval "PID_$name=$!"
}

wait_http() { # wait_http URL PID: PID answers on URL (not some leftover process)
    for _ in $(seq 1 200); do
        kill -0 "$2" 2>/dev/null || { echo "bench: process for $1 exited: is the port taken?" >&2; exit 1; }
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench: $1 did not come up" >&2
    exit 1
}

# ---- processes ----
nodes=""
for i in 1 2 3 4; do
    spawn "n$i" 0 "$BUILD/node/mcpgw-node" --listen "127.0.0.1:$((BASE + i))" --node-id "n$i" \
        --store memory --log-level warn
    nodes+="${nodes:+,}n$i=127.0.0.1:$((BASE + i))"
done
for i in 1 2 3 4; do eval "wait_http http://127.0.0.1:$((BASE + i))/healthz \$PID_n$i"; done

spawn balancer 1 "$BUILD/balancer/mcpgw-balancer" --listen "127.0.0.1:$BAL" --nodes "$nodes" \
    --workers "$WORKERS" --admin "127.0.0.1:$BAL_ADMIN" --max-clients 16000 --idle-timeout 10m \
    --log-level warn
wait_http "http://127.0.0.1:$BAL_ADMIN/healthz" "$PID_balancer"
for _ in $(seq 1 100); do
    [ "$(pgrep -P "$PID_balancer" | wc -l)" -ge "$WORKERS" ] && break
    sleep 0.05
done
BAL_WORKERS=$(pgrep -P "$PID_balancer" | paste -sd, -)
BAL_WORKER=${BAL_WORKERS%%,*}

cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread $WORKERS
    maxconn 9000
defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    timeout client 600s
    timeout server 600s
    timeout http-request 10s
    timeout http-keep-alive 600s
frontend mcp
    bind 127.0.0.1:$HAP
    default_backend nodes
backend nodes
$(if [ "$ERA26" = 1 ]; then echo "    balance roundrobin"; else printf '    balance hdr(Mcp-Session-Id)\n    hash-type consistent\n'; fi)
$(for i in 1 2 3 4; do echo "    server n$i 127.0.0.1:$((BASE + i)) check inter 1s"; done)
EOF
spawn haproxy 1 haproxy -db -f "$TMP/haproxy.cfg"
wait_http "http://127.0.0.1:$HAP/healthz" "$PID_haproxy"

# ---- sessions ----
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
INITED='{"jsonrpc":"2.0","method":"notifications/initialized"}'

# session URL: initialize + initialized; prints the id, or nothing when the second request
# does not reach the node that minted the id (the case hashing on the header gets wrong).
session() {
    local sid code
    sid=$(curl -sS -D - -o /dev/null "$1" -H "$CT" -H "$ACC" -d "$INIT" |
        awk 'tolower($1) == "mcp-session-id:" {print $2}' | tr -d '\r')
    [ -n "$sid" ] || return 0
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$1" -H "$CT" -H "$ACC" -H "$PV" \
        -H "Mcp-Session-Id: $sid" -d "$INITED")
    [ "$code" = 202 ] && echo "$sid"
    return 0
}

per_node=$((CONNS / 4))
if [ "$ERA26" = 1 ]; then
    # Stateless: nothing to set up; the load script needs no ids (one placeholder line).
    for f in direct1 direct2 direct3 direct4 bal hap; do echo - >"$TMP/$f.ids"; done
    tries=0
fi
[ "$ERA26" = 1 ] || for i in 1 2 3 4; do
    for _ in $(seq 1 "$per_node"); do session "http://127.0.0.1:$((BASE + i))/mcp"; done >"$TMP/direct$i.ids"
done
[ "$ERA26" = 1 ] || for _ in $(seq 1 "$CONNS"); do session "http://127.0.0.1:$BAL/mcp"; done >"$TMP/bal.ids"
[ "$ERA26" = 1 ] || { tries=0; : >"$TMP/hap.ids"; }
while [ "$ERA26" = 0 ] && [ "$(wc -l <"$TMP/hap.ids")" -lt "$CONNS" ] && [ "$tries" -lt $((CONNS * 12)) ]; do
    session "http://127.0.0.1:$HAP/mcp" >>"$TMP/hap.ids"
    tries=$((tries + 1))
done
bal_ok=$(wc -l <"$TMP/bal.ids")
hap_ok=$(wc -l <"$TMP/hap.ids")

# ---- load ----
cat >"$TMP/echo.lua" <<'EOF'
-- Rotate through session ids; args: ids-file text-bytes delay-ms (0: closed loop).
local ids, n, body, pause = {}, 0, nil, 0
function init(args)
    for line in io.lines(args[1]) do ids[#ids + 1] = line end
    body = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"'
        .. string.rep("x", tonumber(args[2])) .. '"}}}'
    pause = tonumber(args[3])
    n = math.random(#ids)
end
function request()
    n = n % #ids + 1
    return wrk.format("POST", "/mcp", {
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json, text/event-stream",
        ["MCP-Protocol-Version"] = "2025-11-25",
        ["Mcp-Session-Id"] = ids[n],
    }, body)
end
function done(summary, latency, requests)
    io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99), summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF
if [ "$ERA26" = 1 ]; then
    # The same calls in the 2026-07-28 revision: no session id, _meta and the mirrored headers.
    cat >"$TMP/echo.lua" <<'EOF'
local body, pause = nil, 0
function init(args)
    body = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"'
        .. string.rep("x", tonumber(args[2])) .. '"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
        .. '"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}'
    pause = tonumber(args[3])
end
function request()
    return wrk.format("POST", "/mcp", {
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json, text/event-stream",
        ["MCP-Protocol-Version"] = "2026-07-28",
        ["Mcp-Method"] = "tools/call",
        ["Mcp-Name"] = "echo",
    }, body)
end
function done(summary, latency, requests)
    io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99), summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
EOF
    # Every call must succeed: one answered by hand through each proxy.
    for port in "$BAL" "$HAP"; do
        r=$(curl -sS "http://127.0.0.1:$port/mcp" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2026-07-28' \
            -H 'Mcp-Method: tools/call' -H 'Mcp-Name: echo' \
            -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')
        jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null ||
            { echo "bench: a 2026-07-28 echo through port $port failed: $r" >&2; exit 1; }
    done
fi
# The paced variant: wrk runs every request through a timer once delay() exists.
cp "$TMP/echo.lua" "$TMP/echo-paced.lua"
cat >>"$TMP/echo-paced.lua" <<'EOF'
function delay()
    -- wrk delays in whole milliseconds: dither to get the fractional mean right.
    return math.floor(pause + math.random())
end
EOF

cpu_ticks() { # cpu_ticks PID[,PID...]: user + system ticks, summed
    local t=0 p
    for p in ${1//,/ }; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$t"
}

# run NAME PORT IDS CONNS BYTES DELAY_MS -> RESULT line in $TMP/NAME.out
run_wrk() {
    local name=$1 port=$2 ids=$3 c=$4 bytes=$5 pause=$6 script=$TMP/echo.lua
    [ "$pause" = 0 ] || script=$TMP/echo-paced.lua
    pin 0 wrk -t1 -c"$c" -d"${DUR}s" --latency -s "$script" "http://127.0.0.1:$port/mcp" \
        -- "$ids" "$bytes" "$pause" >"$TMP/$name.wrk" 2>&1 || true
    grep '^RESULT' "$TMP/$name.wrk" | tail -n 1
}

# measure LABEL TARGET BYTES DELAY_MS: prints "req/s p50_us p99_us non2xx errors cpu_us_per_req"
measure() {
    local target=$1 bytes=$2 pause=$3 t0 t1 line reqs dur p50 p99 bad err cpu="-" pid=""
    case $target in
    balancer) pid=$BAL_WORKERS ;;
    haproxy) pid=$PID_haproxy ;;
    esac
    [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
    if [ "$target" = direct ]; then
        # Four wrk clients at once, one per node with that node's sessions.
        local w=()
        for i in 1 2 3 4; do
            run_wrk "d$i" $((BASE + i)) "$TMP/direct$i.ids" $((CONNS / 4)) "$bytes" "$pause" >"$TMP/d$i.res" &
            w+=($!)
        done
        wait "${w[@]}"
        line=$(cat "$TMP"/d[1-4].res | awk '{r += $2; d = ($3 > d ? $3 : d); p50 += $4 / 4; p99 += $5 / 4; s += $6; e += $7}
            END {printf "RESULT %d %d %d %d %d %d", r, d, p50, p99, s, e}')
    else
        local port=$BAL ids=$TMP/bal.ids
        [ "$target" = haproxy ] && port=$HAP ids=$TMP/hap.ids
        line=$(run_wrk "$target" "$port" "$ids" "$CONNS" "$bytes" "$pause")
    fi
    read -r _ reqs dur p50 p99 bad err <<<"$line"
    if [ -n "$pid" ]; then
        t1=$(cpu_ticks "$pid")
        cpu=$(awk -v t="$((t1 - t0))" -v r="$reqs" -v hz="$(getconf CLK_TCK)" \
            'BEGIN {printf "%.1f", r ? t / hz * 1e6 / r : 0}')
    fi
    awk -v r="$reqs" -v d="$dur" -v a="$p50" -v b="$p99" -v s="$bad" -v e="$err" -v c="$cpu" \
        'BEGIN {printf "%.0f %d %d %d %d %s\n", r / (d / 1e6), a, b, s, e, c}'
}

fmt_us() { awk -v u="$1" 'BEGIN {if (u >= 1000) printf "%.2f ms", u / 1000; else printf "%d us", u}'; }

# ---- ratio mode: balancer --workers N vs HAProxy nbthread N, then where the balancer's time goes
syscalls_per_req() { # syscalls_per_req TARGET PIDS PORT IDS: one 256 B run, counted by perf
    local target=$1 pids=$2 port=$3 ids=$4 line reqs total
    # perf stat counts every call exactly; perf trace -s names them, but may lose events under
    # load, so it gives the mix only.
    perf stat -x, -e raw_syscalls:sys_enter -p "$pids" -o "$TMP/$target.st" -- sleep "$DUR" \
        >/dev/null 2>&1 &
    local st=$!
    perf trace -s -p "$pids" -o "$TMP/$target.sc" -- sleep "$DUR" >/dev/null 2>&1 &
    local tr=$!
    line=$(run_wrk "$target-sc" "$port" "$ids" "$CONNS" 256 0)
    wait "$st" "$tr" 2>/dev/null || true
    read -r _ reqs _ <<<"$line"
    total=$(awk -F, '/raw_syscalls/ {print $1}' "$TMP/$target.st" 2>/dev/null)
    case $total in '' | *[!0-9]*) total=0 ;; esac
    # The summary has one table per thread: "   name   calls  errors  total ...". Sum by name.
    awk '$1 ~ /^[a-z_0-9]+$/ && $2 ~ /^[0-9]+$/ && NF >= 8 {n[$1] += $2}
        END {for (s in n) print n[s], s}' "$TMP/$target.sc" 2>/dev/null | sort -rn |
        awk -v r="$reqs" -v total="$total" '{c[NR] = $1; s[NR] = $2; t += $1}
            END {if (!r || (!t && !total)) {print "-"; exit}
                 if (!total) total = t
                 l = ""
                 for (i = 1; i <= NR; i++) if (c[i] / t * total / r >= 0.05)
                     l = l (l ? ", " : "") sprintf("%s %.2f", s[i], c[i] / t * total / r)
                 printf "%.2f per request (%s)\n", total / r, l}'
}

ratio_mode() {
    local bytes label r rb rh
    echo "mcpgw-balancer --workers $WORKERS vs HAProxy $(haproxy -v | head -n 1 | awk '{print $3}') nbthread $WORKERS: 4 nodes, wrk -t1 -c$CONNS, closed loop, ${DUR}s per run, $ROUNDS rounds"
    [ "$ERA26" = 0 ] || echo "revision 2026-07-28: stateless echo calls (HAProxy: balance roundrobin)"
    echo "CPU: $(nproc) cores, $([ "$PIN" = 1 ] && echo 'nodes + wrk on CPU 0, the proxy on CPU 1' || echo 'nothing pinned: a proxy that costs more CPU per request leaves less to the nodes'); load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ "$ERA26" = 1 ] || echo "sessions: balancer $bal_ok of $CONNS; HAProxy $hap_ok usable of $tries initialized"
    echo
    printf '%-6s %-6s %12s %10s %10s %14s %12s %10s %10s %14s %7s\n' payload round "bal req/s" p50 p99 "bal CPU/req" "hap req/s" p50 p99 "hap CPU/req" ratio
    for bytes in 256 4096; do
        label=$([ "$bytes" = 256 ] && echo "256 B" || echo "4 KB")
        : >"$TMP/ratios"
        for r in $(seq 1 "$ROUNDS"); do
            # Alternate which proxy goes first so a drift in the machine's load hits both.
            local first=balancer second=haproxy
            [ $((r % 2)) = 0 ] && first=haproxy second=balancer
            declare -A res
            res[$first]=$(measure "$first" "$bytes" 0)
            res[$second]=$(measure "$second" "$bytes" 0)
            read -r rb bp50 bp99 _ _ bcpu <<<"${res[balancer]}"
            read -r rh hp50 hp99 _ _ hcpu <<<"${res[haproxy]}"
            ratio=$(awk -v a="$rb" -v b="$rh" 'BEGIN {printf "%.2f", b ? a / b : 0}')
            echo "$ratio" >>"$TMP/ratios"
            printf '%-6s %-6s %12s %10s %10s %14s %12s %10s %10s %14s %7s\n' "$label" "$r" "$rb" \
                "$(fmt_us "$bp50")" "$(fmt_us "$bp99")" "$bcpu us" "$rh" "$(fmt_us "$hp50")" \
                "$(fmt_us "$hp99")" "$hcpu us" "${ratio}x"
            unset res
        done
        echo "$label: balancer/HAProxy req/s, median of $ROUNDS rounds: $(sort -n "$TMP/ratios" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')x"
    done
    echo
    if ! command -v perf >/dev/null; then
        echo "perf: not installed (Debian package linux-perf, in deploy/deps.sh's test packages): no profile"
        return 0
    fi
    echo "system calls per request (256 B; perf stat counts them, perf trace -s gives the mix):"
    echo "  balancer: $(syscalls_per_req balancer "$BAL_WORKERS" "$BAL" "$TMP/bal.ids")"
    echo "  HAProxy:  $(syscalls_per_req haproxy "$PID_haproxy" "$HAP" "$TMP/hap.ids")"
    # cpu-clock is a software event: it samples inside VMs without hardware counters too.
    perf record -e cpu-clock -F 1999 -g -p "$BAL_WORKERS" -o "$TMP/perf.data" -- \
        sleep "$DUR" >"$TMP/perf.log" 2>&1 &
    local prec=$!
    run_wrk balancer-perf "$BAL" "$TMP/bal.ids" "$CONNS" 256 0 >/dev/null
    wait "$prec" 2>/dev/null || true
    if [ ! -s "$TMP/perf.data" ]; then
        echo "perf could not sample the balancer ($(tail -n 1 "$TMP/perf.log")); is" \
            "/proc/sys/kernel/perf_event_paranoid > 1 for a non-root user? No profile."
        return 0
    fi
    echo "where the balancer's workers spend their time (perf, cpu-clock, 256 B, self time):"
    perf report -i "$TMP/perf.data" --stdio --no-children --sort sym -g none --percent-limit 0.8 \
        2>/dev/null | grep -E '^ +[0-9]' | head -n 30
    echo "kernel time by entry point (inclusive):"
    perf report -i "$TMP/perf.data" --stdio --children --sort sym -g none 2>/dev/null |
        awk '$3 == "[k]" && $4 ~ /^(vfs_readv|vfs_writev|do_epoll_wait|do_epoll_ctl|__sys_accept4|__x64_sys_close|__x64_sys_shutdown|__x64_sys_ioctl)$/ {printf "    %-8s %s\n", $1, $4}'
    echo "by object:"
    perf report -i "$TMP/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
        grep -E '^ +[0-9]' | head -n 8
}

if [ "$MODE" = ratio ]; then
    ratio_mode
    exit 0
fi

echo "mcpgw-balancer vs HAProxy $(haproxy -v | head -n 1 | awk '{print $3}') vs direct: 4 nodes, wrk -t1 -c$CONNS, ${DUR}s per run"
echo "CPU: $(nproc) cores; balancer --workers $WORKERS, HAProxy nbthread $WORKERS, wrk 1 thread; $([ "$PIN" = 1 ] && echo 'nodes + wrk pinned to CPU 0, the proxy to CPU 1' || echo 'no pinning')"
echo "sessions: direct $((per_node * 4)), balancer $bal_ok of $CONNS initialized; HAProxy $hap_ok usable of $tries initialized"
echo "  (HAProxy hashes Mcp-Session-Id, which initialize does not have yet: $((tries - hap_ok)) of $tries sessions' first request after initialize reached another node and got 404)"
echo
printf '%-8s %-9s %12s %10s %10s %8s %14s\n' payload target "req/s" p50 p99 non-2xx "proxy CPU/req"
for bytes in 256 4096; do
    label=$([ "$bytes" = 256 ] && echo "256 B" || echo "4 KB")
    declare -A max
    for target in direct balancer haproxy; do
        read -r rps p50 p99 bad err cpu <<<"$(measure "$target" "$bytes" 0)"
        max[$target]=$rps
        printf '%-8s %-9s %12s %10s %10s %8s %14s\n' "$label" "$target" "$rps" "$(fmt_us "$p50")" \
            "$(fmt_us "$p99")" "$((bad + err))" "$([ "$cpu" = - ] && echo - || echo "$cpu us")"
    done
    # Paced at 70% of the balancer's own maximum, the same offered rate for all three.
    rate=$((max[balancer] * 7 / 10))
    pause=$(awk -v c="$CONNS" -v r="$rate" 'BEGIN {printf "%.3f", c * 1000 / r}')
    declare -A p99s
    for target in direct balancer haproxy; do
        read -r rps p50 p99 bad err cpu <<<"$(measure "$target" "$bytes" "$pause")"
        p99s[$target]=$p99
        printf '%-8s %-9s %12s %10s %10s %8s %14s\n' "$label" "$target@70%" "$rps" "$(fmt_us "$p50")" \
            "$(fmt_us "$p99")" "$((bad + err))" "$([ "$cpu" = - ] && echo - || echo "$cpu us")"
    done
    echo "$label: at 70% of the balancer's max (offered ~$rate req/s), p99 added over direct: balancer $(fmt_us $((p99s[balancer] - p99s[direct]))), HAProxy $(fmt_us $((p99s[haproxy] - p99s[direct])))"
    unset max p99s
done

# ---- idle connections: userspace memory per client connection in one worker ----
echo
node "$ROOT/bench/idle-conns.mjs" "$BAL" 500 1 >/dev/null # warm the allocator up
sleep 0.5
r0=$(awk '/VmRSS/ {print $2}' "/proc/$BAL_WORKER/status")
node "$ROOT/bench/idle-conns.mjs" "$BAL" "$IDLE" 15 >"$TMP/idle.out" &
idle_pid=$!
pids+=("$idle_pid")
for _ in $(seq 1 240); do grep -q '^ready' "$TMP/idle.out" 2>/dev/null && break; sleep 0.25; done
sleep 1
r1=$(awk '/VmRSS/ {print $2}' "/proc/$BAL_WORKER/status")
open=$(curl -s "http://127.0.0.1:$BAL_ADMIN/metrics" | awk '/^mcpgw_balancer_client_connections / {print $2}')
echo "idle: $(cat "$TMP/idle.out") ($open open at the balancer); worker RSS ${r0} kB -> ${r1} kB:" \
    "$(((r1 - r0) * 1024 / IDLE)) bytes per idle client connection"
kill "$idle_pid" 2>/dev/null || true
