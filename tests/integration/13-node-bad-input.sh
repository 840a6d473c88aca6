#!/usr/bin/env bash
# Bad input at every layer of the node (HTTP framing, transport rules, JSON-RPC, MCP session
# rules): each is refused with the exact status (and JSON-RPC error code and message), and a
# session opened before them still works afterwards on a node that is still alive.
source "$(dirname "$0")/../lib/common.sh"

P=18120    # the node under test (defaults)
PI=18121   # a second node with --session-idle 1s, for expiry
URL=http://127.0.0.1:$P/mcp
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bad-input","version":"1"}}}'
out=$MCPGW_TMP/resp.body
hdr=$MCPGW_TMP/resp.head

# http CURL-ARGS...: one request; status in $code, body in $out, head in $hdr.
http() {
    code=$(curl -sS -o "$out" -D "$hdr" -w '%{http_code}' --max-time 10 "$@") ||
        fail "curl $* failed (exit $?)"
}

# expect_status WANT WHAT CURL-ARGS...
expect_status() {
    local want=$1 what=$2
    shift 2
    http "$@"
    [ "$code" = "$want" ] || fail "$what: HTTP $code, want $want: $(head -c 300 "$out")"
    pass "$what -> $want"
}

# expect_error STATUS CODE REGEX WHAT CURL-ARGS...: a JSON-RPC error object with this code whose
# message matches REGEX (extended regex), in an HTTP response with this status.
expect_error() {
    local status=$1 ecode=$2 re=$3 what=$4 got="" msg=""
    shift 4
    http "$@"
    IFS=$'\t' read -r got msg < <(jq -r '"\(.error.code)\t\(.error.message)"' "$out" 2>/dev/null) || true
    [ "$code" = "$status" ] || fail "$what: HTTP $code, want $status: $(head -c 300 "$out")"
    [ "$got" = "$ecode" ] || fail "$what: error code '$got', want $ecode: $(head -c 300 "$out")"
    [[ "$msg" =~ $re ]] || fail "$what: message '$msg' does not match /$re/"
    pass "$what -> $status $ecode ($msg)"
}

# rpc SID BODY [CURL-ARGS...]: arguments (in $args) for a well-formed POST of BODY on session SID
# ("" for none); a -H in CURL-ARGS replaces the default header of that name.
rpc() {
    local sid=$1 body=$2 a d
    shift 2
    args=()
    for d in "$CT" "$ACC" "$PV" ${sid:+"Mcp-Session-Id: $sid"}; do
        for a in "$@"; do
            [ "${a%%:*}" = "${d%%:*}" ] && continue 2
        done
        args+=(-H "$d")
    done
    args+=("$@" --data-binary "$body" "$URL")
}

call() { # call NAME ARGS-JSON: a tools/call body
    printf '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"%s","arguments":%s}}' "$1" "$2"
}

# session PORT [ready]: initialize a session, print its id; "ready" also sends
# notifications/initialized.
session() {
    local port=$1 sid c
    sid=$(curl -sS -D - -o /dev/null --max-time 5 -H "$CT" -H "$ACC" --data-binary "$INIT" \
        "http://127.0.0.1:$port/mcp" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
    [ -n "$sid" ] || { echo "FAIL: initialize on :$port gave no Mcp-Session-Id" >&2; return 1; }
    if [ "${2:-}" = ready ]; then
        c=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H "$CT" -H "$ACC" -H "$PV" \
            -H "Mcp-Session-Id: $sid" --data-binary '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
            "http://127.0.0.1:$port/mcp")
        [ "$c" = 202 ] || { echo "FAIL: notifications/initialized: HTTP $c" >&2; return 1; }
    fi
    echo "$sid"
}

echo_round_trip() { # echo_round_trip SID TEXT
    rpc "$1" "$(call echo "{\"text\":\"$2\"}")"
    http "${args[@]}"
    if [ "$code" != 200 ] || [ "$(jq -r '.result.content[0].text' "$out")" != "$2" ]; then
        fail "echo on session $1: HTTP $code $(head -c 300 "$out")"
    fi
}

metric() { # metric PORT NAME: the value of one sample on /metrics
    local text
    text=$(curl -sS --max-time 5 "http://127.0.0.1:$1/metrics") || fail "GET :$1/metrics"
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { print $2; exit }' <<<"$text"
}

# raw FORMAT: send printf-formatted bytes (curl cannot send these) on a fresh connection; prints
# the status code of the answer. The node closes after refusing, which ends the read. The
# external printf writes the request in one piece (bash's builtin flushes at every newline, and
# a write after the node has refused would kill this shell with SIGPIPE).
raw() {
    local fd line
    exec {fd}<>"/dev/tcp/127.0.0.1/$P" || fail "cannot connect to :$P"
    # shellcheck disable=SC2059
    env printf "$1" 1>&"$fd" 2>/dev/null || true
    line=$(timeout 5 head -n 1 <&"$fd" | tr -d '\r') || true
    exec {fd}<&-
    awk '{ print $2 }' <<<"$line"
}

expect_raw() { # expect_raw WANT WHAT FORMAT
    local got
    got=$(raw "$3")
    [ "$got" = "$1" ] || fail "$2: HTTP '$got', want $1"
    pass "$2 -> $1"
}

t0=$(date +%s%N)
mcpgw_node n1 $P
mcpgw_node idle $PI --session-idle 1s

# The witness: a session opened before any bad input, and one on the expiring node.
S0=$(session $P ready) || exit 1
echo_round_trip "$S0" "before"
pass "session $S0 initialized, echo round trip"
SE=$(session $PI ready) || exit 1
SE_BORN=$(date +%s%N)
[ "$(metric $PI mcpgw_node_sessions)" = 1 ] || fail "the idle node's session gauge is not 1"

echo "# Origin / Host (DNS rebinding): 403"
rpc "" "$INIT" -H 'Host: evil.example'
expect_error 403 -32000 "Host 'evil.example' is not allowed" "POST with Host: evil.example" "${args[@]}"
rpc "" "$INIT" -H "Host: evil.example:$P"
expect_error 403 -32000 "Host 'evil.example:$P'" "POST with Host: evil.example:$P" "${args[@]}"
rpc "" "$INIT" -H 'Host:'
expect_error 403 -32000 "Host '\(none\)'" "POST without Host" "${args[@]}"
rpc "" "$INIT" -H 'Origin: http://evil.example'
expect_error 403 -32000 "Origin 'http://evil.example' is not allowed" "POST with Origin: http://evil.example" "${args[@]}"
rpc "" "$INIT" -H 'Origin: null'
expect_error 403 -32000 "Origin 'null'" "POST with Origin: null" "${args[@]}"
expect_error 403 -32000 "Host 'evil.example'" "GET with Host: evil.example" \
    -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $S0" -H 'Host: evil.example' "$URL"
rpc "" '{"jsonrpc":"2.0","id":1,"method":"ping"}' -H "Origin: http://localhost:$P"
expect_status 200 "control: Origin http://localhost:$P is allowed" "${args[@]}"

echo "# body over the limit (16 MiB): 413"
ping='{"jsonrpc":"2.0","id":1,"method":"ping"}'
{ printf '%s' "$ping"; head -c $((16 * 1024 * 1024 - ${#ping})) /dev/zero | tr '\0' ' '; } >"$MCPGW_TMP/16m.json"
{ printf '%s' "$ping"; head -c $((17 * 1024 * 1024 - ${#ping})) /dev/zero | tr '\0' ' '; } >"$MCPGW_TMP/17m.json"
expect_status 200 "control: a ping padded to exactly 16 MiB" \
    -H "$CT" -H "$ACC" --data-binary @"$MCPGW_TMP/16m.json" "$URL"
expect_status 413 "17 MiB body (Expect: 100-continue)" \
    -H "$CT" -H "$ACC" -H 'Expect: 100-continue' --data-binary @"$MCPGW_TMP/17m.json" "$URL"
# Not asserted yet: a Content-Length body over the limit sent without Expect (as fetch does) gets
# its 413 only ~95% of the time; otherwise the close with unread input resets the connection
# first (common/httpd.c closes without lingering; balancer/proxy.c lingers). Add
#   expect_status 413 ... -H 'Expect:' --data-binary @17m.json
# here once the node lingers on close.
expect_status 413 "17 MiB chunked body" \
    -H "$CT" -H "$ACC" -H 'Expect:' -H 'Transfer-Encoding: chunked' --data-binary @"$MCPGW_TMP/17m.json" "$URL"
rm -f "$MCPGW_TMP/16m.json" "$MCPGW_TMP/17m.json"

echo "# headers over the limit (32 KiB, 64 fields): 431"
big=$(head -c 40000 /dev/zero | tr '\0' a)
rpc "$S0" "$ping" -H "X-Big: $big"
expect_status 431 "a 40 KB header" "${args[@]}"
many=()
for i in $(seq 1 70); do many+=(-H "X-Field-$i: v"); done
rpc "$S0" "$ping" "${many[@]}"
expect_status 431 "70 header fields" "${args[@]}"

echo "# Content-Type: 415"
rpc "$S0" "$ping" -H 'Content-Type: text/plain'
expect_error 415 -32000 "Content-Type must be application/json" "Content-Type: text/plain" "${args[@]}"
rpc "$S0" "$ping" -H 'Content-Type:'
expect_error 415 -32000 "Content-Type" "no Content-Type" "${args[@]}"
rpc "$S0" "$ping" -H 'Content-Type: application/jsonx'
expect_error 415 -32000 "Content-Type" "Content-Type: application/jsonx" "${args[@]}"
rpc "$S0" "$ping" -H 'Content-Type: application/json; charset=utf-8'
expect_status 200 "control: Content-Type application/json; charset=utf-8" "${args[@]}"
rpc "$S0" "$ping" -H 'Content-Type: application/json' -H 'Content-Type: text/plain'
expect_error 400 -32000 "more than one Content-Type" "two Content-Type headers" "${args[@]}"

echo "# Accept: 406"
rpc "$S0" "$ping" -H 'Accept: application/json'
expect_error 406 -32000 "Accept must list both" "POST Accept: application/json only" "${args[@]}"
rpc "$S0" "$ping" -H 'Accept: text/event-stream'
expect_error 406 -32000 "Accept must list both" "POST Accept: text/event-stream only" "${args[@]}"
rpc "$S0" "$ping" -H 'Accept:'
expect_error 406 -32000 "Accept must list both" "POST without Accept" "${args[@]}"
expect_error 406 -32000 "Accept must list text/event-stream" "GET Accept: application/json" \
    -H 'Accept: application/json' -H "Mcp-Session-Id: $S0" "$URL"

echo "# JSON-RPC framing: -32700, -32600"
rpc "$S0" '{"jsonrpc":"2.0","id":1,'
expect_error 400 -32700 "Parse error" "truncated JSON" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":9,"method":"ping","params":{"x":NaN}}'
expect_error 400 -32700 "Parse error" "NaN in the params (not JSON, though json-c reads it)" "${args[@]}"
rpc "$S0" ''
expect_error 400 -32700 "Parse error" "empty body" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":1,"method":"ping"} x'
expect_error 400 -32700 "Parse error" "trailing garbage after the JSON" "${args[@]}"
rpc "$S0" '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]'
expect_error 400 -32600 "batches are not supported" "a batch (JSON array)" "${args[@]}"
rpc "$S0" '[]'
expect_error 400 -32600 "batches" "an empty batch" "${args[@]}"
rpc "$S0" '"ping"'
expect_error 400 -32600 "must be a JSON object" "a JSON string" "${args[@]}"
rpc "$S0" '{"jsonrpc":"1.0","id":1,"method":"ping"}'
expect_error 400 -32600 '"jsonrpc" must be "2.0"' 'jsonrpc "1.0"' "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":1}'
expect_error 400 -32600 "not a request, notification, result or error" "no method" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":1,"method":""}'
expect_error 400 -32600 '"method" must be a non-empty string' "empty method" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}'
expect_error 400 -32600 '"id" must be a string or an integer' "an object id" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}'
expect_error 400 -32600 '"params" must be an object or an array' "string params" "${args[@]}"

echo "# unknown method: -32601"
rpc "$S0" '{"jsonrpc":"2.0","id":4,"method":"no/such/method"}'
expect_error 200 -32601 "Method not found: no/such/method" "method no/such/method" "${args[@]}"

echo "# bad or missing params: -32602 naming the field"
rpc "$S0" '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{}}'
expect_error 200 -32602 'params\.name is required' "tools/call without name" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":[1]}}'
expect_error 200 -32602 'params\.arguments must be an object' "tools/call with array arguments" "${args[@]}"
rpc "$S0" "$(call echo '{}')"
expect_error 200 -32602 'arguments\.text is required' "echo without text" "${args[@]}"
rpc "$S0" "$(call echo '{"text":5}')"
expect_error 200 -32602 'arguments\.text must be a string' "echo with a number as text" "${args[@]}"
rpc "$S0" "$(call notes_write '{"name":"no spaces/allowed","text":"x"}')"
expect_error 200 -32602 'arguments\.name must be' "notes_write with a bad name" "${args[@]}"
rpc "$S0" "$(call sleep '{"ms":-1}')"
expect_error 200 -32602 'arguments\.ms must be' "sleep with ms -1" "${args[@]}"
rpc "$S0" "$(call no_such_tool '{}')"
expect_error 200 -32602 "unknown tool 'no_such_tool'" "unknown tool" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{}}'
expect_error 200 -32602 'params\.uri is required' "resources/read without uri" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":5,"method":"resources/read"}'
expect_error 200 -32602 'params\.uri is required' "resources/read without params" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":"loud"}}'
expect_error 200 -32602 'params\.level must be one of' "logging/setLevel loud" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":5,"method":"tools/list","params":[1,2]}'
expect_error 200 -32602 'params must be an object' "tools/list with array params" "${args[@]}"
rpc "$S0" '{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"cursor":"bogus"}}'
expect_error 200 -32602 'params\.cursor' "tools/list with a bogus cursor" "${args[@]}"
rpc "" '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{},"clientInfo":{"name":"x"}}}'
expect_error 200 -32602 'params\.protocolVersion is required' "initialize without protocolVersion" "${args[@]}"
rpc "" '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","clientInfo":{"name":"x"}}}'
expect_error 200 -32602 'params\.capabilities is required' "initialize without capabilities" "${args[@]}"
rpc "" '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}'
expect_error 200 -32602 'params\.clientInfo\.name is required' "initialize without clientInfo" "${args[@]}"

echo "# requests before the session is initialized"
S1=$(session $P) || exit 1
rpc "$S1" '{"jsonrpc":"2.0","id":6,"method":"tools/list"}'
expect_error 200 -32600 "state 'initializing'" "tools/list before notifications/initialized" "${args[@]}"
rpc "$S1" "$(call echo '{"text":"early"}')"
expect_error 200 -32600 "state 'initializing'" "tools/call before notifications/initialized" "${args[@]}"
rpc "$S1" "$ping"
expect_status 200 "control: ping is allowed while initializing" "${args[@]}"
rpc "$S1" '{"jsonrpc":"2.0","method":"notifications/initialized"}'
expect_status 202 "notifications/initialized" "${args[@]}"
echo_round_trip "$S1" "after initialized"
pass "the same session works once initialized"
rpc "$S1" "$INIT"
expect_error 400 -32600 "already initialized" "initialize again on a session" "${args[@]}"
rpc "" '{"jsonrpc":"2.0","id":6,"method":"tools/list"}'
expect_error 400 -32000 "Mcp-Session-Id header is required" "tools/list with no session at all" "${args[@]}"

echo "# missing session id: 400"
rpc "" "$(call echo '{"text":"x"}')"
expect_error 400 -32000 "Mcp-Session-Id header is required" "POST tools/call without Mcp-Session-Id" "${args[@]}"
rpc "" '{"jsonrpc":"2.0","method":"notifications/initialized"}'
expect_error 400 -32000 "Mcp-Session-Id" "POST notification without Mcp-Session-Id" "${args[@]}"
rpc "" '{"jsonrpc":"2.0","id":9,"result":{}}'
expect_error 400 -32000 "Mcp-Session-Id" "POST response without Mcp-Session-Id" "${args[@]}"
expect_error 400 -32000 "Mcp-Session-Id header is required" "GET without Mcp-Session-Id" \
    -H 'Accept: text/event-stream' "$URL"
expect_error 400 -32000 "Mcp-Session-Id header is required" "DELETE without Mcp-Session-Id" \
    -X DELETE "$URL"

echo "# unknown session id: 404"
rpc "n1.AAAAAAAAAAAAAAAAAAAAAA" "$(call echo '{"text":"x"}')"
expect_error 404 -32001 "Session not found" "POST with an unknown session id" "${args[@]}"
rpc "not-even-an-id" "$ping"
expect_error 404 -32001 "Session not found" "POST with a malformed session id" "${args[@]}"
expect_error 404 -32001 "Session not found" "GET with an unknown session id" \
    -H 'Accept: text/event-stream' -H 'Mcp-Session-Id: n1.AAAAAAAAAAAAAAAAAAAAAA' "$URL"
expect_error 404 -32001 "Session not found" "DELETE with an unknown session id" \
    -X DELETE -H 'Mcp-Session-Id: n1.AAAAAAAAAAAAAAAAAAAAAA' "$URL"

echo "# DELETE ends a session"
S2=$(session $P ready) || exit 1
expect_status 200 "DELETE session" -X DELETE -H "Mcp-Session-Id: $S2" -H "$PV" "$URL"
rpc "$S2" "$(call echo '{"text":"x"}')"
expect_error 404 -32001 "Session not found" "POST on the deleted session" "${args[@]}"
expect_error 404 -32001 "Session not found" "DELETE it again" -X DELETE -H "Mcp-Session-Id: $S2" "$URL"

echo "# MCP-Protocol-Version: 400"
# A POST is answered as the 2026-07-28 revision asks of any version we do not speak: -32022,
# with the request's id and the versions we do (docs/protocol-2026.md).
rpc "$S0" "$ping" -H 'MCP-Protocol-Version: 1999-01-01'
expect_error 400 -32022 "Unsupported protocol version '1999-01-01'" "POST MCP-Protocol-Version 1999-01-01" "${args[@]}"
jq -e '.id == 1 and .error.data.requested == "1999-01-01" and (.error.data.supported | index("2025-11-25"))' "$out" >/dev/null ||
    fail "the -32022 error does not carry the id, the requested and the supported versions: $(cat "$out")"
rpc "$S0" "$ping" -H 'MCP-Protocol-Version: 2025-11-25x'
expect_error 400 -32022 "Unsupported protocol version" "POST MCP-Protocol-Version 2025-11-25x" "${args[@]}"
expect_error 400 -32000 "unsupported MCP-Protocol-Version" "GET MCP-Protocol-Version 1999-01-01" \
    -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $S0" -H 'MCP-Protocol-Version: 1999-01-01' "$URL"
expect_error 400 -32000 "unsupported MCP-Protocol-Version" "DELETE MCP-Protocol-Version 1999-01-01" \
    -X DELETE -H "Mcp-Session-Id: $S0" -H 'MCP-Protocol-Version: 1999-01-01' "$URL"
for v in 2025-06-18 2025-03-26; do
    rpc "$S0" "$ping" -H "MCP-Protocol-Version: $v"
    expect_status 200 "control: MCP-Protocol-Version $v" "${args[@]}"
done

echo "# GET stream rules"
for lei in garbage 7 0. .5 0.x 4294967296.1 0.1.2 '-1.5'; do
    expect_error 400 -32000 "Last-Event-ID is not an event id" "GET Last-Event-ID '$lei'" \
        -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $S0" -H "Last-Event-ID: $lei" "$URL"
done

echo "# paths and methods"
rpc "$S0" "$ping"
expect_error 404 -32000 "the MCP endpoint is /mcp" "POST /other" "${args[@]/%$URL/http://127.0.0.1:$P/other}"
expect_error 404 -32000 "the MCP endpoint is /mcp" "POST /mcp/ (trailing slash)" "${args[@]/%$URL/$URL/}"
expect_error 405 -32000 "Method Not Allowed" "PUT /mcp" -X PUT "${args[@]}"
grep -qi '^Allow: POST, GET, DELETE' "$hdr" || fail "405 without Allow: POST, GET, DELETE"
expect_error 405 -32000 "Method Not Allowed" "PATCH /mcp" -X PATCH "${args[@]}"

echo "# HTTP framing curl cannot produce (raw bytes)"
H="Host: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
B='{"jsonrpc":"2.0","id":1,"method":"ping"}'
expect_raw 400 "Content-Length with Transfer-Encoding (smuggling)" \
    "POST /mcp HTTP/1.1\r\n${H}Content-Length: ${#B}\r\nTransfer-Encoding: chunked\r\n\r\n$B"
expect_raw 400 "two different Content-Length" \
    "POST /mcp HTTP/1.1\r\n${H}Content-Length: ${#B}\r\nContent-Length: 5\r\n\r\n$B"
expect_raw 400 "Content-Length not a number" "POST /mcp HTTP/1.1\r\n${H}Content-Length: 4x\r\n\r\n$B"
expect_raw 400 "NUL in a header value" "GET /mcp HTTP/1.1\r\nHost: local\0host\r\n\r\n"
expect_raw 400 "bare LF inside the head" "GET /mcp HTTP/1.1\r\nHost: localhost\nX-A: b\r\n\r\n"
expect_raw 400 "obsolete line folding" "GET /mcp HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n  c\r\n\r\n"
expect_raw 400 "invalid chunk size" \
    "POST /mcp HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\n$B\r\n0\r\n\r\n"
expect_raw 400 "garbage request line" "HELLO\r\n\r\n"
expect_raw 501 "Transfer-Encoding: gzip" \
    "POST /mcp HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n"
expect_raw 505 "HTTP/2.0 request line" "GET /mcp HTTP/2.0\r\nHost: localhost\r\n\r\n"

echo "# idle expiry (second node, --session-idle 1s)"
# Expiry runs every second, so 2.5 s after the last request the session is gone; a loaded
# machine gets 3 s more (polling /metrics does not touch the session).
while (( ($(date +%s%N) - SE_BORN) / 1000000 < 2500 )); do sleep 0.1; done
for _ in $(seq 1 30); do
    [ "$(metric $PI mcpgw_node_sessions)" = 0 ] && break
    sleep 0.1
done
[ "$(metric $PI mcpgw_node_sessions)" = 0 ] || fail "the session gauge is $(metric $PI mcpgw_node_sessions) after expiry, want 0"
[ "$(metric $PI mcpgw_node_sessions_expired_total)" = 1 ] || fail "sessions_expired_total is not 1"
pass "idle session expired: mcpgw_node_sessions 0, mcpgw_node_sessions_expired_total 1"
expect_error 404 -32001 "Session not found" "POST on the expired session" \
    -H "$CT" -H "$ACC" -H "Mcp-Session-Id: $SE" --data-binary "$(call echo '{"text":"x"}')" \
    "http://127.0.0.1:$PI/mcp"

echo "# after all that"
echo_round_trip "$S0" "still here"
pass "session $S0 (opened before the bad input): echo round trip"
# shellcheck disable=SC2154 # PID_n1 is set by mcpgw_spawn
kill -0 "$PID_n1" 2>/dev/null || fail "mcpgw-node n1 died"
curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$P/healthz" || fail "n1 /healthz"
rejects=$(metric $P mcpgw_node_http_rejects_total)
pass "node n1 alive and healthy ($rejects requests refused at the HTTP layer)"

# A clean stop, so that a sanitized build reports leaks; no sanitizer report anywhere.
for n in n1 idle; do
    pid_var=PID_$n
    kill -TERM "${!pid_var}"
    rc=0
    wait "${!pid_var}" || rc=$?
    [ "$rc" = 0 ] || fail "node $n exited with $rc on SIGTERM"
    if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$MCPGW_TMP/$n.log"; then
        fail "sanitizer report in $MCPGW_TMP/$n.log"
    fi
done
pass "both nodes stopped cleanly, no sanitizer report ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
