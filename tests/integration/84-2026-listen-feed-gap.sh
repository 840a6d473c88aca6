#!/usr/bin/env bash
# 84-2026-listen-feed-gap.sh - a listen stream on a node whose pub/sub connection to Redis breaks
# and comes back is caught up with what was published meanwhile: resource updates and the
# resource list's changes (which have event ids of their own), each once, in order, then live
# ones. The gap is made by killing the nodes' pub/sub connections while Redis refuses new ones
# (its password changed: connections already open stay), writing through the command
# connection another node keeps, then letting the nodes reconnect.
# Ports 14620 (redis), 14621-14622 (nodes).
source "$(dirname "$0")/../lib/common.sh"
command -v redis-server >/dev/null || mcpgw_skip "redis-server is not installed"

RP=14620 N1=14621 N2=14622
PW=pw-$RANDOM$RANDOM PW2=other-$RANDOM$RANDOM
mcpgw_spawn redis redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no \
    --requirepass "$PW" --dir "$MCPGW_TMP"
rcli() { redis-cli -p $RP -a "$1" --no-auth-warning "${@:2}"; }
for ((i = 0; i < 200; i++)); do
    [ "$(rcli "$PW" ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
done
for n in 1 2; do
    port_var=N$n
    mcpgw_spawn n$n "$MCPGW_BUILD/node/mcpgw-node" --listen "127.0.0.1:${!port_var}" --node-id n$n \
        --store "redis://:$PW@127.0.0.1:$RP"
done
wait_ready() { # wait_ready PORT: /readyz 200 within 20 s
    for ((i = 0; i < 400; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ] && return 0
        sleep 0.05
    done
    fail "the node on $1 is not ready"
}
wait_ready $N1
wait_ready $N2

META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
write() { # write NAME TEXT: notes_write through n2
    local r
    r=$(curl -sS -X POST "http://127.0.0.1:$N2/mcp" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
        -H 'Mcp-Method: tools/call' -H 'Mcp-Name: notes_write' \
        --data-binary "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"notes_write\",\"arguments\":{\"name\":\"$1\",\"text\":\"$2\"},$META}}")
    jq -e '.result.isError != true and .result.resultType == "complete"' <<<"$r" >/dev/null ||
        fail "notes_write $1 failed: $r"
}
OUT=$MCPGW_TMP/listen.sse
curl -sSN -X POST "http://127.0.0.1:$N1/mcp" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: subscriptions/listen' \
    --data-binary "{\"jsonrpc\":\"2.0\",\"id\":\"gap\",\"method\":\"subscriptions/listen\",\"params\":{$META,\"notifications\":{\"resourcesListChanged\":true,\"resourceSubscriptions\":[\"mcpgw://notes/a\"]}}}" \
    >"$OUT" 2>/dev/null &
_mcpgw_pids+=("$!")
# events: one line per notification on the stream: "<method> <uri or -> <version or ->".
events() {
    sed -n 's/^data: //p' "$OUT" | jq -r '[.method, (.params.uri // "-"), (.params._meta["io.mcpgw/version"] // "-" | tostring)] | join(" ")'
}
wait_events() { # wait_events N WHAT: until the stream holds N notifications
    for ((i = 0; i < 400; i++)); do
        [ "$(events | wc -l)" -ge "$1" ] && return 0
        sleep 0.05
    done
    events
    fail "the listen stream got $(events | wc -l) notifications, want $1: $2"
}
wait_events 1 "the acknowledgement"

# Before any event, a node learns the cluster's event counter from the store for its first
# listen stream's mark; later streams reuse it instead of asking again (a ramp of 100,000
# streams would otherwise be 100,000 store round trips).
evalsha() { rcli "$PW" info commandstats | awk -F'[:=,]' '/^cmdstat_evalsha:/ {print $3}'; }
e0=$(evalsha)
for k in 1 2 3 4 5 6 7 8; do
    curl -sSN -X POST "http://127.0.0.1:$N1/mcp" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
        -H 'Mcp-Method: subscriptions/listen' \
        --data-binary "{\"jsonrpc\":\"2.0\",\"id\":$k,\"method\":\"subscriptions/listen\",\"params\":{$META,\"notifications\":{\"resourceSubscriptions\":[\"mcpgw://notes/c\"]}}}" \
        >"$MCPGW_TMP/more$k.sse" 2>/dev/null &
    _mcpgw_pids+=("$!")
    for ((i = 0; i < 400; i++)); do
        grep -q acknowledged "$MCPGW_TMP/more$k.sse" && break
        sleep 0.05
    done
    grep -q acknowledged "$MCPGW_TMP/more$k.sse" || fail "listen stream $k was not acknowledged"
done
[ $(($(evalsha) - e0)) -le 1 ] || fail "8 more listen streams cost $(($(evalsha) - e0)) store scripts, want at most 1"
pass "listen streams opened before any event share one read of the event counter"
write a v1 # a new note: its update, then the list's change
wait_events 3 "the first update"

# The gap: Redis takes no new connection (new password), the nodes' pub/sub connections are cut.
rcli "$PW" config set requirepass "$PW2" >/dev/null
rcli "$PW2" client kill type pubsub >/dev/null
[ "$(rcli "$PW2" pubsub numsub mcpgw:ev | tail -n 1)" = 0 ] || fail "a node is still subscribed"
write a v2
write b v1 # the resource list changes during the gap
write a v3
[ "$(rcli "$PW2" pubsub numsub mcpgw:ev | tail -n 1)" = 0 ] || fail "a node subscribed again during the gap"
[ "$(events | wc -l)" = 3 ] || fail "events reached the stream during the gap: $(events)"
pass "three events published while n1 was not subscribed"

# The end of the gap: the old password again, the half-open connections cut, the nodes reconnect.
rcli "$PW2" config set requirepass "$PW" >/dev/null
rcli "$PW" client kill type normal skipme yes >/dev/null
wait_events 6 "the events of the gap, read after the pub/sub connection came back"
wait_ready $N2
write a v4
wait_events 7 "a live update after the gap"
want='notifications/subscriptions/acknowledged - -
notifications/resources/updated mcpgw://notes/a 1
notifications/resources/list_changed - -
notifications/resources/updated mcpgw://notes/a 2
notifications/resources/list_changed - -
notifications/resources/updated mcpgw://notes/a 3
notifications/resources/updated mcpgw://notes/a 4'
[ "$(events)" = "$want" ] || fail "the stream got:
$(events)
want:
$want"
grep -q 'catching [0-9]* listen streams up' "$MCPGW_TMP/n1.log" || fail "n1 did not log its catch-up"
pass "after the pub/sub gap the listen stream got the updates and the list change published meanwhile, once each, in order"

# A clean stop, so that a sanitized build (MCPGW_BUILD=build-asan) reports leaks.
for n in n1 n2; do
    pid_var=PID_$n
    kill -TERM "${!pid_var}"
    rc=0
    wait "${!pid_var}" || rc=$?
    [ "$rc" = 0 ] || fail "$n exited with $rc on SIGTERM"
    if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$MCPGW_TMP/$n.log"; then
        fail "sanitizer report in $MCPGW_TMP/$n.log"
    fi
done
