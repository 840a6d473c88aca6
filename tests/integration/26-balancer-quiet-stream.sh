#!/usr/bin/env bash
# Regression: a quiet SSE stream through the balancer was cut when the response timeout (armed
# while waiting for the response head) expired, because libevent keeps a pending event's old
# timeout when it is re-added without one. Found in the 100,000-session run: every GET stream
# ended after exactly 60 s. Here the response timeout is 1 s and the stream must outlive it.
source "$(dirname "$0")/../lib/common.sh"
mcpgw_node q1 18701
mcpgw_spawn bal "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:18700 \
    --nodes q1=127.0.0.1:18701 --workers 1 --admin 127.0.0.1:18799 --response-timeout 1s
mcpgw_wait_http http://127.0.0.1:18799/healthz
H=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream"
   -H "MCP-Protocol-Version: 2025-11-25")
sid=$(curl -si "${H[@]}" http://127.0.0.1:18700/mcp -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' |
    tr -d '\r' | awk 'tolower($1)=="mcp-session-id:"{print $2}')
[ -n "$sid" ] || fail "initialize through the balancer gave no session id"
curl -s "${H[@]}" -H "Mcp-Session-Id: $sid" http://127.0.0.1:18700/mcp \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
rc=0
curl -sN -m 3 -H "Accept: text/event-stream" -H "Mcp-Session-Id: $sid" \
    -H "MCP-Protocol-Version: 2025-11-25" http://127.0.0.1:18700/mcp >"$MCPGW_TMP/stream.txt" || rc=$?
[ "$rc" -eq 28 ] || fail "the quiet stream ended after less than 3 s (curl exit $rc, want 28: still open)"
grep -q '^id: ' "$MCPGW_TMP/stream.txt" || fail "the stream never started"
pass "a quiet SSE stream outlives the 1 s response timeout"
