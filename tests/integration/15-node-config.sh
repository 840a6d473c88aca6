#!/usr/bin/env bash
# The node's config file: --check passes a good file and names the bad line of a bad one,
# without binding anything; a node runs from --config FILE; SIGHUP applies allowed hosts, log
# level, max-sessions and max-body to live requests while a session opened before (and its GET
# stream) keeps working, and reports a setting that needs a restart without applying it; a file
# that does not parse or validate changes nothing on SIGHUP.
source "$(dirname "$0")/../lib/common.sh"

P=18150
BIN=$MCPGW_BUILD/node/mcpgw-node
URL=http://127.0.0.1:$P/mcp
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"node-config","version":"1"}}}'
conf=$MCPGW_TMP/node.conf
log=$MCPGW_TMP/n1.log
out=$MCPGW_TMP/resp.body
export MCPGW_T15_HOST=127.0.0.1

# write_conf MAX_SESSIONS HOSTS LEVEL MAX_BODY [EXTRA-LINE]: the node's config file.
write_conf() {
    cat >"$conf" <<EOF
# node.conf for 15-node-config.sh
listen 127.0.0.1:$P
node-id n1      # the prefix of session ids
store "memory"
allowed-hosts localhost \${MCPGW_T15_HOST}
allowed-hosts $2
max-sessions $1
log-level $3
max-body $4
${5:-}
EOF
}

# initialize HOST: an initialize with this Host header; status in $code, session id in $sid.
initialize() {
    local hdr=$MCPGW_TMP/init.head
    code=$(curl -sS -o "$out" -D "$hdr" -w '%{http_code}' --max-time 5 -H "Host: $1" -H "$CT" \
        -H "$ACC" --data-binary "$INIT" "$URL") || fail "curl initialize failed"
    sid=$(tr -d '\r' <"$hdr" | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
    if [ "$code" = 200 ]; then
        c=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H "$CT" -H "$ACC" -H "$PV" \
            -H "Mcp-Session-Id: $sid" \
            --data-binary '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$URL")
        [ "$c" = 202 ] || fail "notifications/initialized on $sid: HTTP $c"
    fi
}

# echo_call SID TEXT: an echo tools/call; status in $code.
echo_call() {
    printf '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}}}' \
        "$2" >"$MCPGW_TMP/call.json"
    code=$(curl -sS -o "$out" -w '%{http_code}' --max-time 5 -H "$CT" -H "$ACC" -H "$PV" \
        -H "Mcp-Session-Id: $1" --data-binary "@$MCPGW_TMP/call.json" "$URL") ||
        fail "curl echo failed"
}

# wait_log COUNT REGEX: wait until the node's log has COUNT lines matching REGEX.
wait_log() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ "$(grep -cE "$2" "$log" || true)" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "the node did not log '$2' ($1 times): $(tail -n 5 "$log")"
}

# bad_request: a request refused at the HTTP layer (two Content-Lengths), which the node logs
# at debug level only.
bad_request() {
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$P" || fail "cannot connect to :$P"
    env printf 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n' 1>&"$fd"
    timeout 5 head -n 1 <&"$fd" >/dev/null || true
    exec {fd}<&-
}

big=$(head -c 6000 /dev/zero | tr '\0' 'x') # an echo body over 4k

echo "# --check"
write_conf 2 127.0.0.2 info 4k
res=$("$BIN" --config "$conf" --check 2>&1) || fail "--check refused a good file: $res"
[ "$res" = "config ok" ] || fail "--check on a good file said: $res"
pass "--check on a good file: $res"

printf 'listen 127.0.0.1:%s\n# a comment\nlisen 127.0.0.1:1\n' "$P" >"$MCPGW_TMP/bad.conf"
rc=0
res=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) || rc=$?
[ "$rc" = 2 ] || fail "--check on a bad file exited $rc, want 2"
[[ "$res" == *"bad.conf:3: unknown key 'lisen' (did you mean 'listen'?)"* ]] ||
    fail "--check error does not name the line: $res"
pass "--check on an unknown key: exit 2, $res"

printf 'node-id n1\nmax-sessions lots\n' >"$MCPGW_TMP/bad.conf"
res=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) && fail "--check accepted 'max-sessions lots'"
[[ "$res" == *"bad.conf:2: max-sessions wants a whole number, not 'lots'"* ]] || fail "--check said: $res"
pass "--check on a bad value: $res"

printf 'allowed-hosts ${MCPGW_T15_UNSET}\n' >"$MCPGW_TMP/bad.conf"
res=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) && fail "--check accepted an unset variable"
[[ "$res" == *'bad.conf:1: ${MCPGW_T15_UNSET} is not set in the environment'* ]] || fail "--check said: $res"
pass "--check on an unset variable: $res"

echo "# a node from --config"
mcpgw_spawn n1 "$BIN" --config "$conf"
mcpgw_wait_http "http://127.0.0.1:$P/healthz"
# The port is taken now: --check still passes because it binds nothing.
res=$("$BIN" --config "$conf" --check 2>&1) || fail "--check with the port in use: $res"
pass "--check binds nothing (passes while the node holds :$P)"

initialize "127.0.0.1:$P"
[ "$code" = 200 ] || fail "initialize: HTTP $code $(head -c 300 "$out")"
S1=$sid
initialize "127.0.0.2:$P" # the second allowed-hosts line added to the list
[ "$code" = 200 ] || fail "initialize with Host 127.0.0.2: HTTP $code"
initialize "127.0.0.1:$P"
[ "$code" = 503 ] || fail "a third session with max-sessions 2: HTTP $code, want 503"
initialize "gw.example"
[ "$code" = 403 ] || fail "Host gw.example before the reload: HTTP $code, want 403"
echo_call "$S1" "$big"
[ "$code" = 413 ] || fail "a 6k body with max-body 4k: HTTP $code, want 413"
bad_request
[ "$(grep -c 'level=debug' "$log" || true)" = 0 ] || fail "debug lines at log-level info"
pass "as configured: 2 sessions then 503, Host gw.example 403, a 6k body 413, no debug lines"

# A GET stream on S1, held across the reload.
curl -sS -N --max-time 60 -H "$ACC" -H "$PV" -H "Mcp-Session-Id: $S1" "$URL" \
    >"$MCPGW_TMP/stream.out" 2>&1 &
stream=$!
for ((i = 0; i < 100; i++)); do
    [ "$(curl -sS "http://127.0.0.1:$P/metrics" | awk '$1 ~ /^mcpgw_node_get_streams/ { print $2 }')" = 1 ] && break
    sleep 0.05
done
[ "$i" -lt 100 ] || fail "the GET stream did not open"

echo "# SIGHUP with new allowed hosts, log level, max-sessions, max-body (and a new listen)"
write_conf 4 gw.example debug 64k
sed -i "s/^listen .*/listen 127.0.0.1:$((P + 1))/" "$conf"
kill -HUP "$PID_n1"
wait_log 1 'msg="reloaded .*node.conf: 4 settings changed"'
grep -q 'listen changed in the configuration but needs a restart' "$log" ||
    fail "the listen change was not reported as needing a restart"
curl -fsS -o /dev/null "http://127.0.0.1:$P/healthz" || fail "the node left :$P"
pass "reloaded: 4 settings applied; listen reported as needing a restart, still on :$P"

initialize "gw.example"
[ "$code" = 200 ] || fail "Host gw.example after the reload: HTTP $code $(head -c 300 "$out")"
initialize "127.0.0.2:$P"
[ "$code" = 403 ] || fail "Host 127.0.0.2, no longer listed: HTTP $code, want 403"
initialize "127.0.0.1:$P"
[ "$code" = 200 ] || fail "a fourth session with max-sessions 4: HTTP $code"
initialize "127.0.0.1:$P"
[ "$code" = 503 ] || fail "a fifth session with max-sessions 4: HTTP $code, want 503"
echo_call "$S1" "$big"
[ "$code" = 200 ] || fail "a 6k echo on the session opened before the reload: HTTP $code"
grep -q "$big" "$out" || fail "the echo did not come back"
bad_request
wait_log 1 'level=debug .*http: 400'
kill -0 "$stream" 2>/dev/null || fail "the GET stream opened before the reload was closed"
pass "live: Host gw.example allowed and 127.0.0.2 refused, max-sessions 4, a 6k body accepted on the old session, debug lines; its GET stream still open"

echo "# SIGHUP with files that do not parse or validate: nothing changes"
write_conf 10 127.0.0.2 error 4k "lisen 127.0.0.1:1"
kill -HUP "$PID_n1"
wait_log 1 'reload refused, the running configuration stays: .*node.conf:10: unknown key .lisen.'
write_conf 10 127.0.0.2 error 4k "node-id bad.id"
kill -HUP "$PID_n1"
wait_log 1 "reload refused, the running configuration stays: node-id 'bad.id' must be"
initialize "gw.example"
[ "$code" = 503 ] || fail "after the refused reloads: HTTP $code, want 503 (max-sessions 4 kept, gw.example kept)"
initialize "127.0.0.2:$P"
[ "$code" = 403 ] || fail "after the refused reloads, Host 127.0.0.2: HTTP $code, want 403"
echo_call "$S1" "$big"
[ "$code" = 200 ] || fail "after the refused reloads, a 6k echo: HTTP $code (max-body 64k kept)"
bad_request
wait_log 2 'level=debug .*http: 400'
kill -0 "$stream" 2>/dev/null || fail "the GET stream was closed"
kill -0 "$PID_n1" || fail "the node died"
pass "refused reloads (a bad key on line 10, a bad node id) changed nothing"

kill "$stream" 2>/dev/null || true
kill -TERM "$PID_n1"
wait "$PID_n1" || fail "the node did not exit cleanly on SIGTERM"
pass "SIGTERM: clean exit"
