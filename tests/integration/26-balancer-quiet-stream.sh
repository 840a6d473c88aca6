#!/usr/bin/env bash
# Regression: a quiet SSE stream through the balancer was cut when the response timeout (armed
# while waiting for the response head) expired, because libevent keeps a pending event's old
# timeout when it is re-added without one. Found in the 100,000-session run: every GET stream
# ended after exactly 60 s. Here the response timeout is 1 s and the stream must outlive it,
# over both transports to the node: an HTTP/2 stream of the node's mux (the default) and a
# connection of its own (--stream-mux 0).
source "$(dirname "$0")/../lib/common.sh"
mcpgw_node q1 18701
H=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream"
   -H "MCP-Protocol-Version: 2025-11-25")

quiet_stream() { # quiet_stream BALANCER_PORT ADMIN_PORT MUX
    local P=$1 A=$2 mux=$3 sid rc=0 streams probe
    mcpgw_spawn "bal$mux" "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$P \
        --nodes q1=127.0.0.1:18701 --workers 1 --admin 127.0.0.1:$A --response-timeout 1s \
        --stream-mux "$mux"
    mcpgw_wait_http http://127.0.0.1:$A/healthz
    sid=$(curl -si "${H[@]}" http://127.0.0.1:$P/mcp -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' |
        tr -d '\r' | awk 'tolower($1)=="mcp-session-id:"{print $2}')
    [ -n "$sid" ] || fail "initialize through the balancer gave no session id"
    curl -s "${H[@]}" -H "Mcp-Session-Id: $sid" http://127.0.0.1:$P/mcp \
        -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
    (sleep 2; curl -s http://127.0.0.1:$A/metrics >"$MCPGW_TMP/metrics$mux.txt") &
    probe=$!
    curl -sN -m 3 -H "Accept: text/event-stream" -H "Mcp-Session-Id: $sid" \
        -H "MCP-Protocol-Version: 2025-11-25" http://127.0.0.1:$P/mcp >"$MCPGW_TMP/stream.txt" || rc=$?
    wait "$probe"
    [ "$rc" -eq 28 ] || fail "the quiet stream ended after less than 3 s (curl exit $rc, want 28: still open)"
    grep -q '^id: ' "$MCPGW_TMP/stream.txt" || fail "the stream never started"
    streams=$(awk '/^mcpgw_balancer_upstream_mux_streams\{node="q1"\}/{print $2}' "$MCPGW_TMP/metrics$mux.txt")
    [ "$streams" = "$mux" ] || fail "stream-mux $mux: $streams HTTP/2 streams to the node while the stream was held"
}

quiet_stream 18700 18799 1
pass "a quiet SSE stream over the node's HTTP/2 connection outlives the 1 s response timeout"
quiet_stream 18702 18798 0
pass "a quiet SSE stream over a connection of its own outlives the 1 s response timeout"
