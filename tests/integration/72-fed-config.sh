#!/usr/bin/env bash
# Upstream configuration: --check names file:line for a bad `upstream` line of each kind (bad
# kind, URL, command line, unknown key, bad values, duplicate name, duplicate prefix, an unset
# variable) and never prints a header's value; `builtins` picks what is served. SIGHUP adds an
# upstream (another mcpgw-node) while a client session and its GET stream stay open: the same
# session then sees the upstream's tools, prefixed, and gets tools/list_changed on its stream;
# a bad reload changes nothing; changing the prefix and removing the upstream take effect
# without dropping the session. A client's cancel stops the call at the upstream. The upstream holds one shared session
# for all of it (session=shared: the default for a stateful server is per-client), and the
# secret header value appears in no log and no metric.
source "$(dirname "$0")/../lib/common.sh"

P=16860  # the gateway node
UP=16861 # the upstream node
BIN=$MCPGW_BUILD/node/mcpgw-node
URL=http://127.0.0.1:$P/mcp
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
conf=$MCPGW_TMP/gw.conf
log=$MCPGW_TMP/gw.log
out=$MCPGW_TMP/resp.body
export MCPGW_T72_SECRET=s3cr3t-t72-do-not-log

echo "# --check: one bad line of each kind"
# check_bad LINE2 EXPECTED: a file whose line 2 is LINE2 must fail --check with EXPECTED.
check_bad() {
    local res rc=0
    printf 'listen 127.0.0.1:%s\n%s\n' "$P" "$1" >"$MCPGW_TMP/bad.conf"
    res=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) || rc=$?
    [ "$rc" = 2 ] || fail "--check accepted (exit $rc) line: $1"
    [[ "$res" == *"$2"* ]] || fail "--check on '$1' said: $res (want: $2)"
    [[ "$res" != *"$MCPGW_T72_SECRET"* ]] || fail "--check printed a header value: $res"
    pass "--check: $res"
}
check_bad 'upstream a ftp x' "bad.conf:2: upstream a: unknown kind 'ftp' (http or stdio)"
check_bad 'upstream a http ftp://h/mcp' "bad.conf:2: upstream a: 'ftp://h/mcp' is not an http:// or https:// URL with a host"
check_bad 'upstream a http http:///mcp' "bad.conf:2: upstream a: 'http:///mcp' is not an http:// or https:// URL"
check_bad 'upstream a stdio "server --x \"unterminated"' 'bad.conf:2: upstream a: bad command line:'
check_bad 'upstream a stdio ""' 'bad.conf:2: upstream a: bad command line:'
check_bad 'upstream a http http://h/mcp colour=red' "bad.conf:2: upstream a: unknown key 'colour'"
check_bad 'upstream a http http://h/mcp prefix' "bad.conf:2: upstream a: 'prefix' is not key=value"
check_bad 'upstream a http http://h/mcp timeout=soon' "bad.conf:2: upstream a: timeout 'soon' is not a duration"
check_bad 'upstream a http http://h/mcp session=sometimes' "bad.conf:2: upstream a: session 'sometimes' is not shared or per-client"
check_bad 'upstream a http http://h/mcp max-inflight=-3' "bad.conf:2: upstream a: max-inflight '-3' is not a number"
check_bad 'upstream a http http://h/mcp prefix=x prefix=y' 'bad.conf:2: upstream a: prefix= is given twice'
check_bad 'upstream a http http://h/mcp prefix=a__b' "bad.conf:2: upstream a: prefix 'a__b' must be"
check_bad "upstream a http http://h/mcp header=\"Authorization Bearer \${MCPGW_T72_SECRET}\"" 'bad.conf:2: upstream a: header= wants "Name: value"'
check_bad 'upstream a stdio "srv" header="X-A: 1"' 'bad.conf:2: upstream a: header= applies to http upstreams only'
check_bad 'upstream a http http://h/mcp header="Authorization: ${MCPGW_T72_UNSET}"' 'bad.conf:2: ${MCPGW_T72_UNSET} is not set'
check_bad 'upstream a/b http http://h/mcp' "bad.conf:2: upstream name 'a/b' must be"
check_bad 'upstream a http' 'bad.conf:2: upstream wants NAME http URL'
check_bad 'builtins maybe' "bad.conf:2: builtins 'maybe' is not auto, on or off"
printf 'upstream a http http://h1/mcp\nupstream b http http://h2/mcp\n# x\nupstream a stdio "srv"\n' >"$MCPGW_TMP/bad.conf"
res=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) && fail "--check accepted a duplicate name"
[[ "$res" == *"bad.conf:4: upstream a is declared twice"* ]] || fail "--check said: $res"
pass "--check: $res"
printf 'upstream a http http://h1/mcp prefix=p\nupstream b http http://h2/mcp prefix=p\n' >"$MCPGW_TMP/bad.conf"
res=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) && fail "--check accepted a duplicate prefix"
[[ "$res" == *"bad.conf:2: upstream b: prefix 'p' is already the prefix of upstream a"* ]] || fail "--check said: $res"
pass "--check: $res"
printf 'upstream a http http://h1/mcp prefix=\nupstream b stdio "srv x" prefix=""\n' >"$MCPGW_TMP/bad.conf"
res=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) && fail "--check accepted two empty prefixes"
[[ "$res" == *"bad.conf:2: upstream b: an empty prefix is already taken by upstream a"* ]] || fail "--check said: $res"
pass "--check: $res"
printf 'upstream a http https://h1.example/mcp prefix=gh header="Authorization: Bearer ${MCPGW_T72_SECRET}" header="X-B: 2" tools=search_*,fetch exclude=admin_* timeout=30s session=per-client max-inflight=256\nupstream b stdio "npx -y some-server /srv" session=shared max-procs=200\nbuiltins on\n' >"$MCPGW_TMP/good.conf"
res=$("$BIN" --config "$MCPGW_TMP/good.conf" --check 2>&1) || fail "--check refused a good file: $res"
[ "$res" = "config ok" ] || fail "--check on a good file said: $res"
pass "--check accepts every key: $res"

# ---- a running gateway ----
# write_conf [UPSTREAM-LINE]: the gateway's config file.
write_conf() {
    printf 'listen 127.0.0.1:%s\nnode-id gw\nstore memory\n%s\n' "$P" "${1:-}" >"$conf"
}

# rpc SID JSON: a request on session SID; the body in $out, HTTP status in $code.
rpc() {
    code=$(curl -sS -o "$out" -w '%{http_code}' --max-time 10 -H "$CT" -H "$ACC" -H "$PV" \
        -H "Mcp-Session-Id: $1" --data-binary "$2" "$URL") || fail "curl failed: $2"
}
tools_list() { # tools_list SID: the tool names, one line, sorted
    rpc "$1" '{"jsonrpc":"2.0","id":10,"method":"tools/list"}'
    [ "$code" = 200 ] || fail "tools/list: HTTP $code $(head -c 200 "$out")"
    jq -r '[.result.tools[].name] | sort | join(" ")' "$out"
}
# wait_tools SID REGEX: wait until tools/list matches REGEX.
wait_tools() {
    local i t=""
    for ((i = 0; i < 300; i++)); do
        t=$(tools_list "$1")
        [[ "$t" =~ $2 ]] && return 0
        sleep 0.05
    done
    fail "tools/list never matched '$2': $t"
}
# wait_tools_without SID TEXT: wait until no tool name contains TEXT.
wait_tools_without() {
    local i t=""
    for ((i = 0; i < 300; i++)); do
        t=$(tools_list "$1")
        [[ "$t" != *"$2"* ]] && return 0
        sleep 0.05
    done
    fail "tools/list kept names with '$2': $t"
}
wait_log() { # wait_log COUNT REGEX
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(grep -cE "$2" "$log" || true)" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "the gateway did not log '$2' ($1 times): $(tail -n 5 "$log")"
}

mcpgw_node up "$UP" --log-level debug # the upstream: another mcpgw-node with its built-ins
write_conf
mcpgw_spawn gw "$BIN" --config "$conf"
mcpgw_wait_http "http://127.0.0.1:$P/healthz"

INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fed-config","version":"1"}}}'
code=$(curl -sS -o "$out" -D "$MCPGW_TMP/h" -w '%{http_code}' -H "$CT" -H "$ACC" --data-binary "$INIT" "$URL")
[ "$code" = 200 ] || fail "initialize: HTTP $code"
S=$(tr -d '\r' <"$MCPGW_TMP/h" | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
rpc "$S" '{"jsonrpc":"2.0","method":"notifications/initialized"}'
[ "$code" = 202 ] || fail "initialized: HTTP $code"
t=$(tools_list "$S")
[[ " $t " == *" echo "* ]] || fail "without upstreams the built-ins are served: $t"
pass "no upstream: the built-ins are served ($(wc -w <<<"$t") tools)"

curl -sS -N --max-time 120 -H "$ACC" -H "$PV" -H "Mcp-Session-Id: $S" "$URL" >"$MCPGW_TMP/stream.out" 2>&1 &
stream=$!
for ((i = 0; i < 200; i++)); do
    [ "$(curl -sS "http://127.0.0.1:$P/metrics" | awk '$1 ~ /^mcpgw_node_get_streams/ { print $2 }')" = 1 ] && break
    sleep 0.05
done
[ "$i" -lt 200 ] || fail "the GET stream did not open"

echo "# SIGHUP adds an upstream"
write_conf "upstream up1 http http://127.0.0.1:$UP/mcp prefix=u1 header=\"Authorization: Bearer \${MCPGW_T72_SECRET}\" timeout=20s session=shared"
kill -HUP "$PID_gw"
wait_log 1 'reload: upstream up1 added'
wait_tools "$S" '(^| )u1__echo( |$)'
t=$(tools_list "$S")
[[ " $t " != *" echo "* ]] || fail "builtins auto: with an upstream the built-ins must be gone: $t"
pass "after SIGHUP the same session sees the upstream's tools, prefixed, and no built-ins: $(wc -w <<<"$t") tools"
rpc "$S" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"u1__echo","arguments":{"text":"via upstream"}}}'
[ "$code" = 200 ] && grep -q 'via upstream' "$out" || fail "u1__echo: HTTP $code $(head -c 300 "$out")"
pass "u1__echo answered through the upstream on the session opened before the reload"
for ((i = 0; i < 200; i++)); do grep -q 'notifications/tools/list_changed' "$MCPGW_TMP/stream.out" && break; sleep 0.05; done
grep -q 'notifications/tools/list_changed' "$MCPGW_TMP/stream.out" || fail "no tools/list_changed on the GET stream: $(cat "$MCPGW_TMP/stream.out")"
kill -0 "$stream" 2>/dev/null || fail "the GET stream ended across the reload"
pass "the open GET stream got notifications/tools/list_changed and stays open"

echo "# a second session, and a bad reload"
code=$(curl -sS -o "$out" -D "$MCPGW_TMP/h" -w '%{http_code}' -H "$CT" -H "$ACC" --data-binary "$INIT" "$URL")
S2=$(tr -d '\r' <"$MCPGW_TMP/h" | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
rpc "$S2" '{"jsonrpc":"2.0","method":"notifications/initialized"}'
rpc "$S2" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"u1__echo","arguments":{"text":"second"}}}'
grep -q second "$out" || fail "second session's call: $(head -c 300 "$out")"
created=$(curl -sS "http://127.0.0.1:$UP/metrics" | awk '$1 ~ /^mcpgw_node_sessions_created_total/ { print $2 }')
[ "$created" = 1 ] || fail "the upstream saw $created sessions, want 1 (one shared session per node)"
pass "two client sessions share one upstream session (upstream sessions_created_total = 1)"

echo "# a resource subscription through the upstream"
rpc "$S" '{"jsonrpc":"2.0","id":8,"method":"resources/subscribe","params":{"uri":"mcpgw://notes/t72"}}'
[ "$code" = 200 ] && jq -e '.result' "$out" >/dev/null || fail "resources/subscribe: HTTP $code $(head -c 300 "$out")"
rpc "$S2" '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"u1__notes_write","arguments":{"name":"t72","text":"hello"}}}'
grep -q '"isError"' "$out" && fail "notes_write: $(head -c 300 "$out")"
for ((i = 0; i < 200; i++)); do grep -q 'notifications/resources/updated.*mcpgw://notes/t72' "$MCPGW_TMP/stream.out" && break; sleep 0.05; done
grep -q 'notifications/resources/updated.*mcpgw://notes/t72' "$MCPGW_TMP/stream.out" ||
    fail "no resources/updated for the note on the subscriber's GET stream: $(tail -c 600 "$MCPGW_TMP/stream.out")"
pass "a subscription through the gateway gets the upstream's resources/updated on its GET stream"

echo "# a client's cancel reaches the upstream"
inflight() { curl -sS "http://127.0.0.1:$UP/metrics" | awk '$1 ~ /^mcpgw_node_calls_inflight/ { print $2 }'; }
curl -sS -o "$MCPGW_TMP/sleep.out" --max-time 60 -H "$CT" -H "$ACC" -H "$PV" -H "Mcp-Session-Id: $S2" \
    --data-binary '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"u1__sleep","arguments":{"ms":60000}}}' "$URL" &
sleeper=$!
for ((i = 0; i < 200; i++)); do [ "$(inflight)" = 1 ] && break; sleep 0.05; done
[ "$(inflight)" = 1 ] || fail "the upstream never saw the sleep call"
rpc "$S2" '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"test"}}'
[ "$code" = 202 ] || fail "notifications/cancelled: HTTP $code"
for ((i = 0; i < 200; i++)); do [ "$(inflight)" = 0 ] && break; sleep 0.05; done
[ "$(inflight)" = 0 ] || fail "the upstream still runs the cancelled call"
wait "$sleeper" || true
grep -q 'request cancelled by the client' "$MCPGW_TMP/up.log" || fail "the upstream got no notifications/cancelled"
pass "notifications/cancelled from the client reached the upstream and stopped the call there (its calls_inflight back to 0)"

write_conf "upstream up1 http http://127.0.0.1:$UP/mcp prefix=u1 colour=red"
kill -HUP "$PID_gw"
wait_log 1 "reload refused.*unknown key 'colour'"
rpc "$S" '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"u1__echo","arguments":{"text":"still"}}}'
grep -q still "$out" || fail "after a bad reload: $(head -c 300 "$out")"
pass "a bad reload is refused with file:line and changes nothing"

echo "# SIGHUP changes the prefix (builtins on), then removes the upstream"
write_conf "upstream up1 http http://127.0.0.1:$UP/mcp prefix=v2 session=shared
builtins on"
kill -HUP "$PID_gw"
wait_log 1 'reload: upstream up1 was changed by a configuration reload'
wait_tools "$S" '(^| )v2__echo( |$)'
t=$(tools_list "$S")
[[ " $t " == *" echo "* && " $t " != *" u1__echo "* ]] || fail "builtins on + prefix v2: $t"
pass "prefix changed to v2 and built-ins back beside it: $(wc -w <<<"$t") tools"
write_conf ""
kill -HUP "$PID_gw"
wait_log 1 'reload: upstream up1 was removed by a configuration reload'
wait_tools_without "$S" __
rpc "$S" '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"v2__echo","arguments":{"text":"x"}}}'
grep -q "unknown tool 'v2__echo'" "$out" || fail "a removed upstream's tool: $(head -c 300 "$out")"
rpc "$S" '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"text":"home"}}}'
grep -q home "$out" || fail "echo after removing the upstream: $(head -c 300 "$out")"
kill -0 "$stream" 2>/dev/null || fail "the GET stream ended across the reloads"
pass "upstream removed: its tools are gone, the session and its GET stream live on"

! grep -rq "$MCPGW_T72_SECRET" "$MCPGW_TMP"/*.log || fail "a log holds the header's secret value"
! curl -sS "http://127.0.0.1:$P/metrics" | grep -q "$MCPGW_T72_SECRET" || fail "the metrics hold the secret"
pass "the header's secret value is in no log and no metric"
kill "$stream" 2>/dev/null || true

# Exit with an upstream configured: everything is released (a sanitized build checks leaks).
write_conf "upstream up1 http http://127.0.0.1:$UP/mcp prefix=u1 session=shared"
kill -HUP "$PID_gw"
wait_log 3 'upstream up1: [0-9]+ tools'
kill -INT "$PID_gw"
rc=0
wait "$PID_gw" || rc=$?
[ "$rc" = 0 ] || fail "the gateway exited $rc on SIGINT: $(tail -n 20 "$log")"
pass "SIGINT with an upstream running: clean exit"
echo "PASS 72-fed-config"
