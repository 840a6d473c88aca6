#!/usr/bin/env bash
# Out of descriptors at the balancer: a worker whose accept fails with EMFILE pauses its listener
# (100 ms at a time) instead of spinning on a readable listener, keeps serving the connections it
# has, and accepts again, the queued connections included, once descriptors are free.
source "$(dirname "$0")/../lib/common.sh"

P=18620 # balancer under test: 1 worker, at most 100 open files
A=18629 # its admin listener
N1=18621
HOLD=150 # connections held open: more than the worker has descriptors for
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"emfile","version":"1"}}}'

mcpgw_node n1 $N1
# A cap well above the descriptors, so accept() fails before the cap would answer 503.
mcpgw_spawn balancer bash -c "ulimit -n 100 && exec '$MCPGW_BUILD/balancer/mcpgw-balancer' \
    --listen 127.0.0.1:$P --nodes n1=127.0.0.1:$N1 --workers 1 --max-clients 1000 \
    --header-timeout 60s --admin 127.0.0.1:$A"
mcpgw_wait_http "http://127.0.0.1:$A/healthz"
grep -q 'above the open-file limit' "$MCPGW_TMP/balancer.log" ||
    fail "the balancer did not warn that max-clients is above its open-file limit"

worker=""
for _ in $(seq 50); do
    worker=$(pgrep -P "$PID_balancer" -f mcpgw-balancer | head -n 1 || true)
    [ -n "$worker" ] && break
    sleep 0.1
done
[ -n "$worker" ] || fail "no balancer worker process found"

# Each holder sends the start of a request head (the listener defers accepts until bytes come),
# then holds its connection until this script closes the holder's stdin.
mkfifo "$MCPGW_TMP/hold.in"
node -e '
const net = require("net");
const [port, n] = [Number(process.argv[1]), Number(process.argv[2])];
const socks = [];
let up = 0;
for (let i = 0; i < n; i++) {
    const s = net.connect(port, "127.0.0.1", () => {
        s.write("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if (++up === n) console.log("connected " + up);
    });
    s.on("error", () => {});
    socks.push(s);
}
process.stdin.on("end", () => { socks.forEach((s) => s.destroy()); process.exit(0); });
process.stdin.resume();
' "$P" "$HOLD" <"$MCPGW_TMP/hold.in" >"$MCPGW_TMP/hold.log" 2>&1 &
holder=$!
_mcpgw_pids+=("$holder")
exec 7>"$MCPGW_TMP/hold.in" # the holder's stdin: closing it releases the connections

for _ in $(seq 100); do
    grep -q 'accept failed: Too many open files' "$MCPGW_TMP/balancer.log" && break
    sleep 0.1
done
grep -q 'accept failed: Too many open files' "$MCPGW_TMP/balancer.log" ||
    fail "the worker never ran out of descriptors with $HOLD connections held"
grep -q "connected $HOLD" "$MCPGW_TMP/hold.log" ||
    fail "the kernel did not complete all $HOLD connections: $(cat "$MCPGW_TMP/hold.log")"
pass "the worker hit EMFILE with $HOLD connections held"

# Paused, not spinning: a listener left readable would burn a whole core.
ticks() { awk '{print $14 + $15}' "/proc/$worker/stat"; }
t0=$(ticks)
sleep 2
t1=$(ticks)
hz=$(getconf CLK_TCK)
[ $((t1 - t0)) -lt $((hz * 2 / 4)) ] ||
    fail "the worker used $((t1 - t0)) of $((hz * 2)) clock ticks in 2 s at EMFILE: it spins"
pass "at EMFILE the worker is idle ($((t1 - t0)) clock ticks in 2 s), not spinning on its listener"
# The log line is rate-limited: one warning a second at most.
warns=$(grep -c 'accept failed: Too many open files' "$MCPGW_TMP/balancer.log")
[ "$warns" -le 8 ] || fail "$warns EMFILE warnings in a few seconds: the warning is not rate-limited"
pass "the EMFILE warning is rate-limited ($warns lines)"

# Descriptors come back: the worker accepts again, and a normal request is served.
exec 7>&-
wait "$holder" 2>/dev/null || true
ok=0
for _ in $(seq 50); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$P/mcp" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -d "$INIT" 2>/dev/null || true)
    [ "$code" = 200 ] && ok=1 && break
    sleep 0.1
done
[ "$ok" = 1 ] || fail "after the held connections closed the balancer does not serve (last HTTP $code)"
[ "$(pgrep -P "$PID_balancer" -f mcpgw-balancer | head -n 1)" = "$worker" ] ||
    fail "the worker was replaced: it crashed at EMFILE"
pass "once descriptors were free the same worker accepted again and served an initialize"
