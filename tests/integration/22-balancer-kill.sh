#!/usr/bin/env bash
# kill -9 one of 4 nodes behind the balancer: sessions initialized right after the kill see no
# error; requests for the dead node's sessions get a prompt answer (404: the memory store does
# not replicate) and its open GET stream ends instead of hanging; the other nodes' sessions go
# on. Restarted, the node is back in rotation (takes new sessions) within 3 s.
source "$(dirname "$0")/../lib/common.sh"

P=18520 # balancer; nodes n1..n4 on P+1..P+4
A=18529 # admin
URL=http://127.0.0.1:$P/mcp
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"kill-test","version":"1"}}}'
INITED='{"jsonrpc":"2.0","method":"notifications/initialized"}'
INFO='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"node_info","arguments":{}}}'
hdr=$MCPGW_TMP/h
body=$MCPGW_TMP/b

for i in 1 2 3 4; do mcpgw_node n$i $((P + i)); done
nodes=n1=127.0.0.1:$((P + 1)),n2=127.0.0.1:$((P + 2)),n3=127.0.0.1:$((P + 3)),n4=127.0.0.1:$((P + 4))
mcpgw_spawn balancer "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$P --nodes "$nodes" \
    --workers 2 --admin 127.0.0.1:$A
mcpgw_wait_http "http://127.0.0.1:$A/healthz"

# new_session: initialize + initialized through the balancer; sets $sid. Fails on any error.
new_session() {
    local code
    code=$(curl -sS -o "$body" -D "$hdr" -w '%{http_code}' --max-time 5 "$URL" -H "$CT" -H "$ACC" \
        -d "$INIT") || fail "initialize: curl failed"
    [ "$code" = 200 ] || fail "initialize: HTTP $code: $(head -c 300 "$body")"
    sid=$(grep -i '^mcp-session-id:' "$hdr" | cut -d' ' -f2 | tr -d '\r')
    [ -n "$sid" ] || fail "initialize: no Mcp-Session-Id"
    code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 5 "$URL" -H "$CT" -H "$ACC" -H "$PV" \
        -H "Mcp-Session-Id: $sid" -d "$INITED") || fail "initialized: curl failed"
    [ "$code" = 202 ] || fail "initialized for $sid: HTTP $code"
}

# call SID: tools/call node_info; sets $code, $ms (elapsed) and $served (node id or "").
call() {
    local t0
    t0=$(date +%s%N)
    code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 5 "$URL" -H "$CT" -H "$ACC" -H "$PV" \
        -H "Mcp-Session-Id: $1" -d "$INFO") || code=timeout
    ms=$((($(date +%s%N) - t0) / 1000000))
    served=$(jq -r '.result.structuredContent.node // empty' "$body" 2>/dev/null || true)
}

declare -A before
for i in $(seq 1 24); do
    new_session
    before[$sid]=${sid%%.*}
done
on_n2=0
for s in "${!before[@]}"; do [ "${before[$s]}" = n2 ] && on_n2=$((on_n2 + 1)); done
[ "$on_n2" -gt 0 ] || fail "no session landed on n2 before the kill"
pass "24 sessions before the kill ($on_n2 on n2)"

# An open GET stream on an n2 session, through the balancer.
for s in "${!before[@]}"; do [ "${before[$s]}" = n2 ] && victim=$s && break; done
curl -sN --max-time 30 "$URL" -H 'Accept: text/event-stream' -H "$PV" -H "Mcp-Session-Id: $victim" \
    >"$MCPGW_TMP/stream.out" 2>/dev/null &
stream_pid=$!
sleep 0.3

kill -9 "$PID_n2"
t_kill=$(date +%s%N)

# Sessions initialized right after the kill: no error at all.
for i in $(seq 1 20); do
    new_session
    call "$sid"
    [ "$code" = 200 ] || fail "session $sid created after the kill: node_info HTTP $code"
    [ "$served" = "${sid%%.*}" ] || fail "session $sid served by '$served'"
    [ "$served" != n2 ] || fail "a new session landed on the dead node"
done
pass "20 sessions initialized after the kill -9 of n2 saw no error"

# The open stream ends (the client sees it close) instead of hanging.
for _ in $(seq 1 40); do kill -0 "$stream_pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$stream_pid" 2>/dev/null && fail "the GET stream of a dead-node session still hangs"
wait "$stream_pid" 2>/dev/null || true
pass "the dead node's open GET stream ended promptly"

# Requests for the dead node's sessions: a prompt 404, never a hang. Others: served as before.
for s in "${!before[@]}"; do
    call "$s"
    if [ "${before[$s]}" = n2 ]; then
        [ "$code" = 404 ] || fail "dead-node session $s: HTTP $code, want 404"
        [ "$ms" -lt 1000 ] || fail "dead-node session $s: answered after ${ms} ms"
    else
        [ "$code" = 200 ] && [ "$served" = "${before[$s]}" ] ||
            fail "session $s of ${before[$s]}: HTTP $code served by '$served'"
    fi
done
pass "the $on_n2 sessions of the dead node got a prompt 404; the others stayed on their nodes"

sleep 1.5 # the active checks now agree n2 is down
metrics=$(curl -s "http://127.0.0.1:$A/metrics")
grep -q '^mcpgw_balancer_node_up{node="n2"} 0' <<<"$metrics" ||
    fail "n2 is not reported down on /metrics: $(grep node_up <<<"$metrics")"
pass "n2 reported down on /metrics"

# Restart n2: back in rotation (it takes new sessions) within 3 s.
mcpgw_node n2 $((P + 2))
t_up=$(date +%s%N)
back=""
while [ $((($(date +%s%N) - t_up) / 1000000)) -lt 3000 ]; do
    new_session
    if [ "${sid%%.*}" = n2 ]; then
        back=$((($(date +%s%N) - t_up) / 1000000))
        break
    fi
done
[ -n "$back" ] || fail "n2 took no new session within 3 s of its restart"
call "$sid"
[ "$code" = 200 ] && [ "$served" = n2 ] || fail "new n2 session: HTTP $code served by '$served'"
pass "restarted n2 took a new session ${back} ms after it was listening"

# Nothing is in flight now: no upstream connection may still count as load.
sleep 0.3
metrics=$(curl -s "http://127.0.0.1:$A/metrics")
active=$(grep '^mcpgw_balancer_upstream_active_connections' <<<"$metrics" | awk '{s += $2} END {print s + 0}')
[ "$active" = 0 ] || fail "$active upstream connections still count as active: $(grep -E '^mcpgw_balancer_upstream_(active|idle)' <<<"$metrics")"
pass "no upstream connection is left counted as load"
