#!/usr/bin/env bash
# 28-balancer-stream-failover.sh - a GET event stream survives its node (docs/balancer.md,
# "Stream failover"). Redis, two nodes, one balancer worker. A session subscribed to a note
# holds its GET stream through the balancer; the node holding it is killed (-9); notes written
# afterwards still arrive on the SAME client connection, each exactly once, because the
# balancer re-sent the GET with the last relayed event id to the other node. A stream of a
# session the other node cannot take over (memory store) still ends, as before.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

REDIS=18590 N1=18591 N2=18592 BAL=18595 ADMIN=18599
mcpgw_spawn redis redis-server --bind 127.0.0.1 --port "$REDIS" --save "" --appendonly no
for _ in $(seq 50); do redis-cli -p "$REDIS" ping >/dev/null 2>&1 && break; sleep 0.1; done
mcpgw_node n1 "$N1" --store "redis://127.0.0.1:$REDIS"
mcpgw_node n2 "$N2" --store "redis://127.0.0.1:$REDIS"
for p in "$N1" "$N2"; do
    for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$p/readyz" 2>/dev/null && break; sleep 0.1; done
done
mcpgw_spawn bal "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen "127.0.0.1:$BAL" \
    --nodes "n1=127.0.0.1:$N1,n2=127.0.0.1:$N2" --workers 1 --admin "127.0.0.1:$ADMIN"
mcpgw_wait_http "http://127.0.0.1:$ADMIN/healthz"

URL="http://127.0.0.1:$BAL/mcp"
H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
    -H 'MCP-Protocol-Version: 2025-11-25')
init() { # -> session id
    local sid
    sid=$(curl -sS -D - -o /dev/null "${H[@]}" "$URL" -d \
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t28","version":"1"}}}' |
        tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
    [ -n "$sid" ] || fail "initialize through the balancer gave no session id"
    curl -fsS -o /dev/null "${H[@]}" -H "Mcp-Session-Id: $sid" "$URL" \
        -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    echo "$sid"
}
rpc() { curl -fsS "${H[@]}" -H "Mcp-Session-Id: $1" "$URL" -d "$2"; }
write() {
    rpc "$W" "{\"jsonrpc\":\"2.0\",\"id\":$RANDOM,\"method\":\"tools/call\",\"params\":{\"name\":\"notes_write\",\"arguments\":{\"name\":\"fo\",\"text\":\"$1\"}}}" |
        grep -q 'is at version' || fail "notes_write failed"
}
versions() { grep -o '"io.mcpgw/version":[0-9]*' "$MCPGW_TMP/stream.out" | cut -d: -f2 | tr '\n' ' '; }

# The watched session and the writer must live on different nodes: open sessions until so.
A=$(init)
owner() { redis-cli -p "$REDIS" hget "mcpgw:{$1}:s" owner; }
W=$(init)
for _ in $(seq 20); do [ "$(owner "$W")" != "$(owner "$A")" ] && break; W=$(init); done
[ "$(owner "$W")" != "$(owner "$A")" ] || fail "could not place the writer on the other node"
victim=$(owner "$A")
rpc "$A" '{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"mcpgw://notes/fo"}}' |
    grep -q '"result"' || fail "subscribe failed"

curl -sSN -H 'Accept: text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' \
    -H "Mcp-Session-Id: $A" "$URL" >"$MCPGW_TMP/stream.out" 2>"$MCPGW_TMP/stream.err" &
CURL=$!
_mcpgw_pids+=("$CURL")
sleep 0.5
write v1
for _ in $(seq 50); do [ "$(versions)" = "1 " ] && break; sleep 0.1; done
[ "$(versions)" = "1 " ] || fail "the stream did not carry version 1 (got '$(versions)')"

eval "kill -9 \$PID_$victim"
sleep 0.3
write v2
write v3
for _ in $(seq 100); do [ "$(versions)" = "1 2 3 " ] && break; sleep 0.1; done
kill -0 "$CURL" 2>/dev/null || fail "the client's stream ended when $victim died ($(cat "$MCPGW_TMP/stream.err"))"
[ "$(versions)" = "1 2 3 " ] || fail "after $victim died the same stream carried versions '$(versions)', want '1 2 3 '"
[ "$(owner "$A")" != "$victim" ] || fail "the session was not taken over"
resumes=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk '/^mcpgw_balancer_stream_resumes_total/ {s += $2} END {print s + 0}')
[ "$resumes" -ge 1 ] || fail "mcpgw_balancer_stream_resumes_total is $resumes"
pass "the GET stream outlived $victim: versions 1 2 3 on one connection, each once ($resumes resume)"
kill "$CURL" 2>/dev/null || true

# With the memory store nobody can take the session over: the stream ends as before.
mcpgw_node m1 18593
mcpgw_node m2 18594
mcpgw_spawn bal2 "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:18596 \
    --nodes "m1=127.0.0.1:18593,m2=127.0.0.1:18594" --workers 1 --admin 127.0.0.1:18598
mcpgw_wait_http "http://127.0.0.1:18598/healthz"
URL="http://127.0.0.1:18596/mcp"
B=$(init)
curl -sSN -H 'Accept: text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' \
    -H "Mcp-Session-Id: $B" "$URL" >"$MCPGW_TMP/stream2.out" 2>/dev/null &
CURL2=$!
_mcpgw_pids+=("$CURL2")
sleep 0.5
mine=${B%%.*}
eval "kill -9 \$PID_$mine"
for _ in $(seq 50); do kill -0 "$CURL2" 2>/dev/null || break; sleep 0.1; done
kill -0 "$CURL2" 2>/dev/null && fail "a stream no node can take over was kept open"
pass "a stream no other node can resume (memory store) ends when its node dies"
