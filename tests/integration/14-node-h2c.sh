#!/usr/bin/env bash
# The node over h2c with prior knowledge, as the balancer will talk to it: an MCP session is
# initialized, used and streamed (GET SSE) through the nghttp client; :authority is checked as
# Host; a client that leaves its stream frees the session's stream slot; HTTP/1.1 still works
# on the same port.
source "$(dirname "$0")/../lib/common.sh"

command -v nghttp >/dev/null || fail "nghttp not installed (Debian package nghttp2-client)"

P=18440
URL=http://127.0.0.1:$P/mcp
PV='mcp-protocol-version: 2025-11-25'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"h2c","version":"1"}}}'
out=$MCPGW_TMP/h2.out

# h2 BODY|- [NGHTTP-ARGS...]: one request over a new h2c connection (POST when BODY is not -);
# the verbose log in $out, the response status in $code, the JSON body in $json.
h2() {
    local body=$1 rc=0
    shift
    if [ "$body" != - ]; then
        printf '%s' "$body" >"$MCPGW_TMP/body.json"
        set -- -H ':method: POST' -H 'content-type: application/json' \
            -H 'accept: application/json, text/event-stream' -d "$MCPGW_TMP/body.json" "$@"
    fi
    timeout 10 nghttp -v "$@" "$URL" >"$out" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || fail "nghttp $* exited $rc: $(tail -n 5 "$out")"
    code=$(awk '/recv \(stream_id=[0-9]+\) :status:/ { print $NF; exit }' "$out")
    json=$(grep -o '{"jsonrpc".*}' "$out" | head -n 1 || true)
}

field() { # field NAME: a response header field from $out
    sed -n "s/^.* recv (stream_id=[0-9]*) $1: //p" "$out" | head -n 1
}

mcpgw_node n1 $P --drain-timeout 2s

h2 "$INIT"
[ "$code" = 200 ] || fail "initialize over h2c: status '$code': $(tail -n 20 "$out")"
grep -q 'recv SETTINGS frame' "$out" || fail "no SETTINGS from the node"
SID=$(field mcp-session-id)
[ -n "$SID" ] || fail "initialize over h2c gave no mcp-session-id"
[ "$(jq -r .result.protocolVersion <<<"$json")" = 2025-11-25 ] || fail "initialize result: $json"
pass "initialize over h2c -> 200, session $SID"

h2 '{"jsonrpc":"2.0","method":"notifications/initialized"}' -H "mcp-session-id: $SID" -H "$PV"
[ "$code" = 202 ] || fail "notifications/initialized over h2c: status '$code'"
pass "notifications/initialized -> 202"

h2 '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"over h2"}}}' \
    -H "mcp-session-id: $SID" -H "$PV"
[ "$code" = 200 ] || fail "tools/call over h2c: status '$code'"
[ "$(jq -r '.result.content[0].text' <<<"$json")" = "over h2" ] || fail "echo result: $json"
pass "tools/call echo over h2c -> 200 'over h2'"

h2 "$INIT" -H ':authority: evil.example'
[ "$code" = 403 ] || fail "initialize with :authority evil.example: status '$code', want 403"
pass ":authority is the Host: evil.example -> 403"

metric() { # metric NAME: the value of one sample on /metrics
    curl -sS --max-time 5 "http://127.0.0.1:$P/metrics" |
        awk -v n="$1" '$1 == n || index($1, n "{") == 1 { print $2; exit }'
}

wait_metric() { # wait_metric NAME VALUE
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(metric "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    fail "$1 is $(metric "$1"), want $2"
}

# The session's GET stream: opened, primed and held; when the client leaves, the node must be
# told (the stream's close callback) and let go of it.
mcpgw_spawn get1 nghttp -v -H 'accept: text/event-stream' -H "mcp-session-id: $SID" -H "$PV" "$URL"
for ((i = 0; i < 100; i++)); do
    grep -q '^id: ' "$MCPGW_TMP/get1.log" 2>/dev/null && break
    sleep 0.05
done
grep -q 'recv (stream_id=[0-9]*) :status: 200' "$MCPGW_TMP/get1.log" ||
    fail "GET stream over h2c: $(tail -n 20 "$MCPGW_TMP/get1.log")"
grep -q 'recv (stream_id=[0-9]*) content-type: text/event-stream' "$MCPGW_TMP/get1.log" ||
    fail "GET stream is not text/event-stream"
grep -q '^id: ' "$MCPGW_TMP/get1.log" || fail "GET stream carried no event"
wait_metric mcpgw_node_get_streams 1
sleep 0.3
kill -0 "$PID_get1" 2>/dev/null || fail "the GET stream ended while the client was still there"
pass "GET stream over h2c -> 200 text/event-stream, primed, held open"
kill "$PID_get1"
wait_metric mcpgw_node_get_streams 0
pass "client left the GET stream -> the node let go of it (get_streams 0)"

code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: $SID" \
    -H 'MCP-Protocol-Version: 2025-11-25' --data-binary '{"jsonrpc":"2.0","id":3,"method":"ping"}' "$URL")
[ "$code" = 200 ] || fail "HTTP/1.1 ping on the same port: $code"
pass "HTTP/1.1 on the same port -> 200"

kill -0 "$PID_n1" || fail "the node died"
pass "node alive"

# A clean stop with an h2 stream open, so that a sanitized build reports leaks or misuse.
mcpgw_spawn get2 nghttp -v -H 'accept: text/event-stream' -H "mcp-session-id: $SID" -H "$PV" "$URL"
wait_metric mcpgw_node_get_streams 1
kill -TERM "$PID_n1"
rc=0
wait "$PID_n1" || rc=$?
[ "$rc" = 0 ] || fail "node exited with $rc on SIGTERM"
if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$MCPGW_TMP/n1.log"; then
    fail "sanitizer report in $MCPGW_TMP/n1.log"
fi
pass "node stopped cleanly with an h2 stream open, no sanitizer report"
