#!/usr/bin/env bash
# Bad input at the balancer: every row of the issue's table is answered as listed (request
# smuggling shapes 400 and closed, oversized head 431, oversized body 413, slowloris 408,
# connection cap 503 + Retry-After, no node up 503 with a JSON-RPC error naming the cause), and
# after each the balancer still serves a normal MCP request.
source "$(dirname "$0")/../lib/common.sh"

P=18500     # balancer under test: 1 worker, header timeout 1s, 8 clients max
A=18509     # its admin listener
N1=18501    # its node
PX=18505    # a second balancer whose nodes are all down
AX=18506
DEAD1=18507 # ports nothing listens on
DEAD2=18508
URL=http://127.0.0.1:$P/mcp
MAXC=8
req=$MCPGW_TMP/req.bin
resp=$MCPGW_TMP/resp.bin
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bad-input","version":"1"}}}'

mcpgw_node n1 $N1
mcpgw_spawn balancer "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$P \
    --nodes n1=127.0.0.1:$N1 --workers 1 --admin 127.0.0.1:$A --header-timeout 1s \
    --max-clients $MAXC --log-level debug
mcpgw_wait_http "http://127.0.0.1:$A/healthz"

# raw [PORT]: send $req as is and read until the balancer closes; the answer goes to $resp and
# its status line to $status. Fails if the connection stays open (the read times out).
raw() {
    local port=${1:-$P} rc=0
    timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 && cat "$2" >&3 && cat <&3' _ "$port" "$req" \
        >"$resp" 2>/dev/null || rc=$?
    [ "$rc" -ne 124 ] || fail "the connection was not closed after: $(head -c 120 "$req" | tr '\r\n' '  ')"
    status=$(head -n 1 "$resp" | tr -d '\r')
}

# expect_raw WANT WHAT: $req gets a response whose status line starts "HTTP/1.1 WANT", closed.
expect_raw() {
    local want=$1 what=$2
    raw
    [[ "$status" == "HTTP/1.1 $want"* ]] || fail "$what: got '$status', want $want"
    grep -qi '^Connection: close' "$resp" || fail "$what: answer lacks Connection: close"
    pass "$what -> $want, connection closed"
}

# still_serving: a normal initialize through the balancer succeeds.
still_serving() {
    local code
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$URL" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -d "$INIT") || fail "normal request failed"
    [ "$code" = 200 ] || fail "normal request after bad input: HTTP $code"
}

head_ok='POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'

# --- request smuggling shapes: 400, connection closed ---
printf "${head_ok}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" >"$req"
expect_raw 400 "Content-Length and Transfer-Encoding together"
printf "${head_ok}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" >"$req"
expect_raw 400 "Transfer-Encoding before Content-Length"
printf "${head_ok}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" >"$req"
expect_raw 400 "duplicate Content-Length"
printf "${head_ok}Content-Length: 5, 5\r\n\r\nhello" >"$req"
expect_raw 400 "Content-Length list"
printf "${head_ok}Content-Length: -5\r\n\r\n" >"$req"
expect_raw 400 "negative Content-Length"
printf "${head_ok}Content-Length: 0x10\r\n\r\n" >"$req"
expect_raw 400 "hex Content-Length"
printf "${head_ok}Content-Length : 5\r\n\r\nhello" >"$req"
expect_raw 400 "whitespace before the colon"
printf "${head_ok}X-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n" >"$req"
expect_raw 400 "obsolete line folding"
printf "${head_ok}X-Bad: a\rb\r\nContent-Length: 0\r\n\r\n" >"$req"
expect_raw 400 "bare CR inside a header value"
printf "${head_ok}X-Bad: a\nb\r\nContent-Length: 0\r\n\r\n" >"$req"
expect_raw 400 "bare LF inside a header value"
printf "${head_ok}X-Bad: a\0b\r\nContent-Length: 0\r\n\r\n" >"$req"
expect_raw 400 "NUL inside a header value"
printf "${head_ok}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" >"$req"
expect_raw 400 "chunk size that is not hex"
printf "${head_ok}Transfer-Encoding: chunked\r\n\r\n5 6\r\nhello\r\n0\r\n\r\n" >"$req"
expect_raw 400 "chunk size followed by junk"
printf "${head_ok}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n" >"$req"
expect_raw 400 "chunk size overflowing 64 bits"
printf "${head_ok}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" >"$req"
expect_raw 400 "chunk data longer than its size"
printf 'POST /mcp HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' >"$req"
expect_raw 400 "Transfer-Encoding in HTTP/1.0"
printf 'POST /mcp HTTP/1.1\r\nContent-Length: 0\r\n\r\n' >"$req"
expect_raw 400 "HTTP/1.1 request without Host"
printf 'POST /mcp HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n' >"$req"
expect_raw 400 "two Host headers"
still_serving
pass "a normal request still works after the smuggling shapes"

# --- headers over the limit: 431 ---
{ printf "${head_ok}"; printf 'X-Big: %s\r\n' "$(head -c 40000 /dev/zero | tr '\0' a)"; printf '\r\n'; } >"$req"
expect_raw 431 "a 40 KB header (limit 32 KiB)"
{ printf "${head_ok}"; for i in $(seq 1 80); do printf 'X-H%d: v\r\n' "$i"; done; printf 'Content-Length: 0\r\n\r\n'; } >"$req"
expect_raw 431 "80 header fields"

# --- body over the limit: 413 ---
printf "${head_ok}Content-Length: 17000000\r\n\r\n" >"$req"
expect_raw 413 "Content-Length of 17 MB (limit 16 MiB)"
{ printf "${head_ok}Transfer-Encoding: chunked\r\n\r\n"; for i in $(seq 1 17); do printf '100000\r\n'; head -c 1048576 /dev/zero; printf '\r\n'; done; printf '0\r\n\r\n'; } >"$req"
expect_raw 413 "a chunked body of 17 MiB"
still_serving
pass "a normal request still works after oversized input"

# --- slowloris: 408 ---
t0=$(date +%s%N)
rc=0
timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1; printf "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" >&3;
    sleep 0.5; printf "X-Slow: 1\r\n" >&3; cat <&3' _ $P >"$resp" 2>/dev/null || rc=$?
[ "$rc" -ne 124 ] || fail "slowloris: the connection was not closed"
ms=$((($(date +%s%N) - t0) / 1000000))
status=$(head -n 1 "$resp" | tr -d '\r')
[[ "$status" == "HTTP/1.1 408"* ]] || fail "slowloris: got '$status', want 408"
[ "$ms" -ge 900 ] && [ "$ms" -le 3000 ] || fail "slowloris: answered after ${ms} ms, want about 1 s"
pass "a head not complete within the header timeout -> 408 after ${ms} ms"

# --- more clients than the cap: 503 with Retry-After, no crash ---
holders=()
for i in $(seq 1 $MAXC); do
    # Each holder keeps one connection open with a request begun, never finished (the
    # listener defers accepts until a connection's first bytes: a silent one is not ours yet).
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1; printf "GET " >&3; sleep 5' _ $P &
    holders+=($!)
done
sleep 0.3
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >"$req"
raw
[[ "$status" == "HTTP/1.1 503"* ]] || fail "client over the cap: got '$status', want 503"
grep -qi '^Retry-After: ' "$resp" || fail "client over the cap: 503 without Retry-After"
pass "client connection over the cap of $MAXC -> 503 with Retry-After"
kill "${holders[@]}" 2>/dev/null || true
wait "${holders[@]}" 2>/dev/null || true
sleep 0.3
still_serving
kill -0 "$PID_balancer" || fail "the balancer died"
pass "a normal request still works once the extra clients are gone"

# --- no node up: 503 with a JSON-RPC error naming the cause ---
mcpgw_spawn balancer-dead "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$PX \
    --nodes d1=127.0.0.1:$DEAD1,d2=127.0.0.1:$DEAD2 --workers 1 --admin 127.0.0.1:$AX
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$AX/metrics" && break
    sleep 0.05
done
check_no_node() {
    local body code
    code=$(curl -sS -o "$resp" -D "$MCPGW_TMP/h" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PX/mcp" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -d "$INIT") ||
        fail "no node up: curl failed"
    body=$(cat "$resp")
    [ "$code" = 503 ] || fail "no node up ($1): HTTP $code, want 503: $body"
    grep -qi '^Retry-After: ' "$MCPGW_TMP/h" || fail "no node up ($1): no Retry-After"
    [ "$(jq -r .jsonrpc <<<"$body")" = "2.0" ] || fail "no node up ($1): not JSON-RPC: $body"
    [[ "$(jq -r .error.message <<<"$body")" == *"no MCP node"* ]] ||
        fail "no node up ($1): message does not name the cause: $body"
    pass "no node up ($1) -> 503 JSON-RPC error: $(jq -r .error.message <<<"$body")"
}
check_no_node "nodes not yet known to be down"
sleep 2.5 # two failed active checks (health-fall 2, every 1 s)
check_no_node "nodes marked down by the health checks"

still_serving
metrics=$(curl -s "http://127.0.0.1:$A/metrics")
grep -q '^mcpgw_balancer_client_errors_total{status="400"} [1-9]' <<<"$metrics" ||
    fail "metrics do not count the 400s"
grep -q '^mcpgw_balancer_workers 1$' <<<"$metrics" || fail "the worker is gone: $(grep workers <<<"$metrics")"
pass "the balancer served every bad input and is still whole"
