#!/usr/bin/env bash
# bench/auth.sh - the cost of authentication on the echo path: the same mcpgw-node build with
# --auth off, with --auth jwt (an ES256 access token validated on every request: signature,
# iss, aud, exp, scope; verified tokens are cached by hash) and with --auth apikey, measured
# in the same run.
#
# Each node is pinned to CPU 0 and the load generator to CPU 1. For each payload (256 B, 4 KiB)
# and each mode, ROUNDS rounds are interleaved (off, jwt, apikey, off, jwt, ...) so that
# whatever else the machine does falls on every mode alike; a round is a closed loop with C
# calls in flight for D. Printed: the median req/s and p99 per mode, and jwt/off and
# apikey/off (goal: >= 0.90). Prints figures only; nothing is written into the tree.
# Environment: MCPGW_BUILD (build/), MCPGW_NPM (jose), BENCH_DURATION (8s), BENCH_ROUNDS (3),
# BENCH_CONCURRENCY (32), BENCH_PORT (14350; uses 14350-14353).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${MCPGW_BUILD:-$ROOT/build}
export MCPGW_NPM=${MCPGW_NPM:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-npm}
DURATION=${BENCH_DURATION:-8s}
ROUNDS=${BENCH_ROUNDS:-3}
CONC=${BENCH_CONCURRENCY:-32}
PORT=${BENCH_PORT:-14350}
NODE_BIN="$BUILD/node/mcpgw-node"
LG_BIN="$BUILD/loadgen/mcpgw-loadgen"
if [ ! -x "$NODE_BIN" ] || [ ! -x "$LG_BIN" ]; then
    echo "bench: building mcpgw-node and mcpgw-loadgen into $BUILD" >&2
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target mcpgw-node mcpgw-loadgen >/dev/null
fi

TMP=$(mktemp -d /tmp/mcpgw-bench-auth.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench: nothing listens on port $1" >&2
    return 1
}
jget() {
    node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
             console.log(eval(process.argv[2]))' "$1" "$2"
}

ISS="http://127.0.0.1:$((PORT + 3))"
node "$ROOT/bench/jwt-issuer.mjs" "$((PORT + 3))" "$ISS" "http://127.0.0.1:$((PORT + 1))/mcp" \
    "$TMP/token" >"$TMP/issuer.log" 2>&1 &
pids+=($!)
wait_port "$((PORT + 3))"
for _ in $(seq 100); do [ -s "$TMP/token" ] && break; sleep 0.1; done
KEY=bench-$(openssl rand -hex 24)
printf 'bench %s mcp:tools\n' "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" >"$TMP/apikeys"

declare -A port=([off]=$PORT [jwt]=$((PORT + 1)) [apikey]=$((PORT + 2)))
declare -A hdr=([off]="" [jwt]="Authorization: Bearer $(cat "$TMP/token")"
    [apikey]="Authorization: Bearer $KEY")
common=(--store memory --log-level warn)
taskset -c 0 "$NODE_BIN" --listen "127.0.0.1:${port[off]}" --node-id off "${common[@]}" \
    >"$TMP/off.log" 2>&1 &
pids+=($!)
taskset -c 0 "$NODE_BIN" --listen "127.0.0.1:${port[jwt]}" --node-id jwt "${common[@]}" \
    --auth jwt --auth-issuer "$ISS" --auth-jwks-url "$ISS/jwks" \
    --auth-resource "http://127.0.0.1:${port[jwt]}/mcp" --auth-scopes mcp:tools \
    >"$TMP/jwt.log" 2>&1 &
pids+=($!)
taskset -c 0 "$NODE_BIN" --listen "127.0.0.1:${port[apikey]}" --node-id apikey "${common[@]}" \
    --auth apikey --auth-apikeys "$TMP/apikeys" \
    --auth-resource "http://127.0.0.1:${port[apikey]}/mcp" >"$TMP/apikey.log" 2>&1 &
pids+=($!)
for m in off jwt apikey; do wait_port "${port[$m]}"; done
# The JWT node answers 503 until its first JWKS fetch: wait for a 200 with the token.
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}'
for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:${port[jwt]}/mcp" \
        -H "${hdr[jwt]}" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -d "$INIT")
    [ "$code" = 200 ] && break
    sleep 0.1
done
[ "$code" = 200 ] || { echo "bench: the JWT node refuses the token ($code)" >&2; exit 1; }

run() { # run MODE PAYLOAD OUT: one closed-loop round
    local m=$1 extra=()
    [ -z "${hdr[$m]}" ] || extra=(--header "${hdr[$m]}")
    taskset -c 1 "$LG_BIN" --quiet --url "http://127.0.0.1:${port[$m]}/mcp" --sessions "$CONC" \
        --duration "$4" --rate max --concurrency "$CONC" --payload "$2" "${extra[@]}" \
        --report-json "$3" >/dev/null
}

echo "== echo with and without authentication: node on CPU 0, load on CPU 1, $CONC in flight," \
    "$ROUNDS interleaved rounds of $DURATION per mode and payload" >&2
for payload in 256 4096; do
    for m in off jwt apikey; do run "$m" "$payload" "$TMP/warm.json" 2s; done
    for r in $(seq "$ROUNDS"); do
        for m in off jwt apikey; do
            run "$m" "$payload" "$TMP/$m-$payload-$r.json" "$DURATION"
            echo "  round $r $m $payload B: $(jget "$TMP/$m-$payload-$r.json" \
                'r.requests.rps.toFixed(0) + " req/s, p99 " + r.requests.latency_ms.p99 + " ms, failed " + (r.requests.failed + r.sessions.failed)')" >&2
        done
    done
done

echo
printf '%-7s %-7s %12s %10s %10s\n' payload mode "median req/s" "p99 ms" "vs off"
for payload in 256 4096; do
    node -e '
const fs = require("fs");
const [dir, payload, rounds] = process.argv.slice(1);
const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
const res = {};
for (const m of ["off", "jwt", "apikey"]) {
  const rs = [];
  for (let r = 1; r <= Number(rounds); r++)
    rs.push(JSON.parse(fs.readFileSync(`${dir}/${m}-${payload}-${r}.json`, "utf8")));
  res[m] = { rps: med(rs.map((x) => x.requests.rps)), p99: med(rs.map((x) => x.requests.latency_ms.p99)),
             failed: rs.reduce((n, x) => n + x.requests.failed + x.sessions.failed, 0) };
}
for (const m of ["off", "jwt", "apikey"]) {
  const ratio = res[m].rps / res.off.rps;
  console.log(`${payload.padEnd(7)} ${m.padEnd(7)} ${res[m].rps.toFixed(0).padStart(12)} ` +
    `${String(res[m].p99).padStart(10)} ${(ratio.toFixed(2) + "x").padStart(10)}` +
    (m === "off" ? "" : `  (goal >= 0.90x: ${ratio >= 0.9 ? "met" : "NOT met"})`) +
    (res[m].failed ? `  FAILURES ${res[m].failed}` : ""));
}' "$TMP" "$payload" "$ROUNDS"
done
