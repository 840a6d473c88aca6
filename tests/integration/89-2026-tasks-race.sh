#!/usr/bin/env bash
# 89-2026-tasks-race.sh - the tasks extension (2026-07-28) where nodes disagree: three nodes on
# Redis behind the balancer, with API-key authentication (alice, bob).
# - Status notifications: a listen stream that follows a task id (notifications.taskIds) on one
#   node gets notifications/tasks, once, when the task changes status on another node (an
#   update that completes it, a cancel); bob's stream following the same ids gets nothing of
#   alice's tasks, only his own; taskIds without the extension declared is -32021.
# - Concurrent tasks/update: two answers to one input_required task through two nodes, the
#   second node paused (SIGSTOP) between its read of the record and its write, are both kept
#   (without the versioned write the paused node's write drops the other's answer).
# - Leases by Redis's clock: n2's wall clock is an hour behind, n3's an hour ahead (a preloaded
#   clock shift); tasks running on n1 and n2 stay working when read through the others (with
#   leases in the nodes' own clocks they were declared dead at once).
# - The memory store: a node notifies its own listen streams of its own task writes.
# Ports 13200-13219.
# mcpgw-timeout: 300
source "$(dirname "$0")/../lib/common.sh"
command -v redis-server >/dev/null || mcpgw_skip "redis-server is not installed"
command -v ss >/dev/null || mcpgw_skip "ss (iproute2) is not installed"
SKEW=$MCPGW_BUILD/tests/tools/libmcpgw-clockskew.so
[ -f "$SKEW" ] || fail "$SKEW is not built"
# A sanitized node needs its runtime first among preloaded libraries.
PRELOAD="$(ldd "$MCPGW_BUILD/node/mcpgw-node" | awk '/libasan/ {print $3 " "}')$SKEW"

RP=13201 P=13200 A=13209
URL=http://127.0.0.1:$P/mcp
KEY_A=key-a-$(openssl rand -hex 16) KEY_B=key-b-$(openssl rand -hex 16)
printf 'alice %s\nbob %s\n' "$(printf %s "$KEY_A" | sha256sum | cut -d' ' -f1)" \
    "$(printf %s "$KEY_B" | sha256sum | cut -d' ' -f1)" >"$MCPGW_TMP/apikeys"

# DEBUG SLEEP holds Redis still while the race is set up (below).
mcpgw_spawn redis redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$MCPGW_TMP" --enable-debug-command yes
for ((i = 0; i < 200; i++)); do
    [ "$(redis-cli -p $RP ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
done
declare -A skew=([1]=0 [2]=-3600000 [3]=3600000)
nodes=""
for i in 1 2 3; do
    LD_PRELOAD=$PRELOAD MCPGW_CLOCK_SKEW_MS=${skew[$i]} \
        mcpgw_spawn n$i "$MCPGW_BUILD/node/mcpgw-node" --listen 127.0.0.1:$((13201 + i)) \
        --node-id n$i --store redis://127.0.0.1:$RP --auth apikey \
        --auth-apikeys "$MCPGW_TMP/apikeys" --auth-resource "$URL"
    mcpgw_wait_http "http://127.0.0.1:$((13201 + i))/healthz"
    nodes=$nodes${nodes:+,}n$i=127.0.0.1:$((13201 + i))
done
N1=http://127.0.0.1:13202/mcp N2=http://127.0.0.1:13203/mcp N3=http://127.0.0.1:13204/mcp
mcpgw_spawn balancer "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$P \
    --nodes "$nodes" --workers 1 --admin 127.0.0.1:$A
mcpgw_wait_http "http://127.0.0.1:$A/healthz"

META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}'
# post URL BODY: one 2026-07-28 request with the API key of $TOKEN; prints the response body.
post() {
    local method name
    method=$(jq -r .method <<<"$2")
    name=$(jq -r '.params.name // .params.taskId // empty' <<<"$2")
    curl -sS --max-time 30 -X POST "$1" -H 'Content-Type: application/json' \
        ${TOKEN:+-H "Authorization: Bearer $TOKEN"} \
        -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
        -H "Mcp-Method: $method" ${name:+-H "Mcp-Name: $name"} --data-binary "$2"
}
start() { # start URL TOOL ARGS: a task-augmented tools/call; prints the task id
    local r
    r=$(post "$1" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"$2\",\"arguments\":$3,$META}}")
    jq -e '.result.resultType == "task"' <<<"$r" >/dev/null || fail "$2 did not start a task: $r"
    jq -r .result.taskId <<<"$r"
}
task() { # task URL METHOD ID: tasks/get or tasks/cancel; prints the response
    post "$1" "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"$2\",\"params\":{\"taskId\":\"$3\",$META}}"
}
answer() { # answer URL ID KEY NAME: tasks/update answering question KEY with name NAME
    post "$1" "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tasks/update\",\"params\":{\"taskId\":\"$2\",\"inputResponses\":{\"$3\":{\"action\":\"accept\",\"content\":{\"name\":\"$4\",\"confirm\":true}}},$META}}"
}
status() { task "$1" tasks/get "$2" | jq -r '.result.status // .error.message'; }
# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() {
    local t=$1 i
    shift
    for ((i = 0; i < t * 20; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

export TOKEN=$KEY_A

# ---- concurrent tasks/update through two nodes ----
# The request n2 got for a task must be in Redis's receive queue (its read of the record).
queued_from_n2() {
    local p q
    for p in $(ss -Htnp state established "( dport = :$RP )" | grep "pid=$PID_n2," |
        awk '{print $3}' | sed 's/.*://'); do
        q=$(ss -Htn state established "( sport = :$RP and dport = :$p )" | awk '{print $1}')
        [ "${q:-0}" -gt 0 ] && return 0
    done
    return 1
}
raced=""
for try in 1 2 3 4 5; do
    t=$(start "$N1" multi_input '{}') || exit 1
    [ "$(status "$N1" "$t")" = input_required ] || fail "multi_input is not input_required"
    # Redis sleeps 2.5 s (under the nodes' 3 s watchdog); n2's tasks/update reads the record
    # into that sleep, and n2 is stopped before the answer reaches it: when it runs again it
    # writes what it computed from the record as it was before n1's update.
    redis-cli -p $RP DEBUG SLEEP 2.5 >/dev/null &
    sleeper=$!
    # asleep once a ping goes unanswered
    wait_for 2 bash -c "! timeout 0.2 redis-cli -p $RP ping >/dev/null 2>&1"
    answer "$N2" "$t" first from-n2 >"$MCPGW_TMP/n2-update" &
    upd=$!
    if wait_for 2 queued_from_n2 && kill -STOP "$PID_n2" && kill -0 "$sleeper" 2>/dev/null; then
        wait "$sleeper"
        r=$(answer "$N1" "$t" second from-n1)
        jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null || fail "n1's update: $r"
        [ "$(status "$N1" "$t")" = input_required ] || fail "n1's answer completed the task alone"
        kill -CONT "$PID_n2"
        wait "$upd"
        raced=$t
        break
    fi
    # the machine was too slow to set the race up this time: undo and try again
    kill -CONT "$PID_n2" 2>/dev/null
    wait "$sleeper" "$upd" || true
    task "$N1" tasks/cancel "$t" >/dev/null
done
[ -n "$raced" ] || fail "could not pause n2 between its read and its write in 5 tries"
jq -e '.result.resultType == "complete"' "$MCPGW_TMP/n2-update" >/dev/null ||
    fail "n2's update: $(cat "$MCPGW_TMP/n2-update")"
r=$(task "$N3" tasks/get "$raced")
jq -e '.result.status == "completed" and
    .result.result.content[0].text == "Answers: from-n2, from-n1"' <<<"$r" >/dev/null ||
    fail "an answer was lost in the race: $r"
pass "two tasks/update through two nodes, one paused between read and write: both answers kept ($(jq -c .result.result.content[0].text <<<"$r"))"

# ---- leases by Redis's clock ----
t1=$(start "$N1" slow_compute '{"seconds":600,"label":"on-n1"}') || exit 1
t2=$(start "$N2" slow_compute '{"seconds":600,"label":"on-n2"}') || exit 1
# Past one renewal period, so that each lease has been renewed by its (skewed) runner too.
sleep 2.5
for via in "$N1" "$N2" "$N3"; do
    for t in "$t1" "$t2"; do
        s=$(status "$via" "$t")
        [ "$s" = working ] || fail "task $t read through $via: $s (its lease was misjudged)"
    done
done
pass "tasks on n1 and n2 (clock 1 h behind) stay working when read through n3 (1 h ahead) and each other"
for t in "$t1" "$t2"; do task "$N1" tasks/cancel "$t" >/dev/null; done

# ---- status notifications on listen streams ----
# listen NAME ID...: a listen stream through the balancer following the task ids, its events
# in $MCPGW_TMP/NAME, its curl's pid in LISTEN_NAME; waits for the acknowledgement and sets NODE
# to the node serving it.
listen() {
    local name=$1 ids
    shift
    ids=$(printf '"%s",' "$@")
    curl -sS -N --max-time 120 -X POST "$URL" -H 'Content-Type: application/json' \
        ${TOKEN:+-H "Authorization: Bearer $TOKEN"} -H 'Accept: application/json, text/event-stream' \
        -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: subscriptions/listen' \
        --data-binary "{\"jsonrpc\":\"2.0\",\"id\":\"$name\",\"method\":\"subscriptions/listen\",\"params\":{\"notifications\":{\"taskIds\":[${ids%,}]},$META}}" \
        >"$MCPGW_TMP/$name" 2>/dev/null &
    eval "LISTEN_$name=$!"
    wait_for 10 grep -q 'subscriptions/acknowledged' "$MCPGW_TMP/$name" ||
        fail "listen stream $name: no acknowledgement: $(cat "$MCPGW_TMP/$name")"
    NODE=$(events "$name" | head -1 | jq -r '.params._meta["io.mcpgw/node"]')
}
events() { grep '^data: ' "$MCPGW_TMP/$1" | sed 's/^data: //'; }
# count NAME ID STATUS: notifications/tasks of task ID with STATUS on stream NAME
count() {
    events "$1" | jq -c --arg id "$2" --arg st "$3" \
        'select(.method == "notifications/tasks" and .params.taskId == $id and .params.status == $st)' |
        wc -l
}
has() { [ "$(count "$@")" -ge 1 ]; }

ta=$(TOKEN=$KEY_A start "$URL" confirm_delete '{"filename":"a.txt"}') || exit 1
tc=$(TOKEN=$KEY_A start "$URL" slow_compute '{"seconds":600,"label":"to-cancel"}') || exit 1
td=$(TOKEN=$KEY_A start "$URL" slow_compute '{"seconds":600,"label":"sentinel"}') || exit 1
tb=$(TOKEN=$KEY_B start "$URL" confirm_delete '{"filename":"b.txt"}') || exit 1
on=${ta%%.*}
# Alice's stream on another node than her task's (the balancer places streams by load).
for ((i = 0; i < 20; i++)); do
    listen alice "$ta" "$tc" "$tb" "$td"
    [ "$NODE" != "$on" ] && [ "$NODE" != null ] && break
    kill "$LISTEN_alice"
    wait "$LISTEN_alice" 2>/dev/null || true
done
node=$NODE
[ "$node" != "$on" ] || fail "every listen stream landed on $on"
events alice | head -1 | jq -e --arg a "$ta" --arg c "$tc" --arg b "$tb" --arg d "$td" \
    '.params.notifications.taskIds == [$a, $c, $b, $d] and
     .params._meta["io.modelcontextprotocol/subscriptionId"] == "alice"' >/dev/null ||
    fail "the acknowledgement does not agree to the task ids: $(events alice | head -1)"
TOKEN=$KEY_B listen bob "$ta" "$tc" "$tb"

r=$(answer "$URL" "$ta" confirm alice)
jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null || fail "alice's update: $r"
wait_for 20 has alice "$ta" completed || fail "no completed notification for $ta on $node"
events alice | jq -e --arg id "$ta" 'select(.method == "notifications/tasks" and .params.taskId == $id) |
    (.params.result.content[0].text == "Deleted a.txt") and
    (.params._meta["io.modelcontextprotocol/subscriptionId"] == "alice")' >/dev/null ||
    fail "the notification is not the task as tasks/get shows it: $(events alice)"
pass "a listen stream on $node got notifications/tasks (completed, with its result) of task $ta updated on $on"

r=$(task "$URL" tasks/cancel "$tc")
jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null || fail "cancel: $r"
wait_for 20 has alice "$tc" cancelled || fail "no cancelled notification for $tc"
pass "and notifications/tasks (cancelled) of task $tc, cancelled on ${tc%%.*}"

# Bob's own task changes last: once his stream has that, it has had its chance at alice's.
r=$(TOKEN=$KEY_B answer "$URL" "$tb" confirm bob)
jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null || fail "bob's update: $r"
wait_for 20 has bob "$tb" completed || fail "bob's stream did not get his own task's notification"
[ "$(count bob "$ta" completed)" = 0 ] && [ "$(count bob "$tc" cancelled)" = 0 ] ||
    fail "bob's stream got alice's task notifications: $(events bob)"
# Alice's sentinel changes after bob's task did: once her stream has it, it had bob's chance.
task "$URL" tasks/cancel "$td" >/dev/null
wait_for 20 has alice "$td" cancelled || fail "no cancelled notification for $td"
[ "$(count alice "$tb" completed)" = 0 ] || fail "alice's stream got bob's task notification"
pass "bob's stream following the same ids got only his own task's notification"

[ "$(count alice "$ta" completed)" = 1 ] && [ "$(count alice "$tc" cancelled)" = 1 ] &&
    [ "$(events alice | jq -c 'select(.method == "notifications/tasks")' | wc -l)" = 3 ] ||
    fail "alice's stream got a notification more than once: $(events alice)"
pass "each status change was notified once"

r=$(curl -sS -X POST "$URL" -H 'Content-Type: application/json' -H "Authorization: Bearer $KEY_A" \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: subscriptions/listen' --data-binary "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"subscriptions/listen\",\"params\":{\"notifications\":{\"taskIds\":[\"$ta\"]},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}")
jq -e '.error.code == -32021 and .error.data.requiredCapabilities.extensions["io.modelcontextprotocol/tasks"] == {}' \
    <<<"$r" >/dev/null || fail "taskIds without the extension declared: $r"
pass "taskIds without the extension declared: -32021 naming it"
kill "$LISTEN_alice" "$LISTEN_bob" 2>/dev/null

# ---- the memory store: the same notification from a node's own writes ----
unset TOKEN
mcpgw_node m1 13210
URL=http://127.0.0.1:13210/mcp
tm=$(start "$URL" confirm_delete '{"filename":"m.txt"}') || exit 1
TOKEN="" listen mem "$tm"
r=$(answer "$URL" "$tm" confirm nobody)
jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null || fail "update on the memory store: $r"
wait_for 20 has mem "$tm" completed || fail "no notification on the memory store: $(events mem)"
pass "the memory store notifies a listen stream of its node's task changes too"
kill "$LISTEN_mem" 2>/dev/null
