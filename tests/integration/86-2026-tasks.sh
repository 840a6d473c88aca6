#!/usr/bin/env bash
# 86-2026-tasks.sh - the tasks extension (2026-07-28) in a cluster. Three nodes on Redis behind
# the balancer, with API-key authentication: a task is answered only for the principal that
# started it (another's task id is unknown: -32602); after kill -9 of the node running them, a
# finished task still answers its result from any node, an unfinished one of a tool that is not
# idempotent (slow_compute) becomes failed with a clear error, and one of an idempotent tool
# (sleep) is run again by another node and completes. Then two nodes on the memory store behind
# a balancer: a task lives only on its node, so every tasks/get finding its task shows that the
# balancer routes tasks/* by the task id in Mcp-Name.
# Ports 14410-14429.
# mcpgw-timeout: 300
source "$(dirname "$0")/../lib/common.sh"
command -v redis-server >/dev/null || mcpgw_skip "redis-server is not installed"

RP=14411 P=14410 A=14419
URL=http://127.0.0.1:$P/mcp
KEY_A=key-a-$(openssl rand -hex 16) KEY_B=key-b-$(openssl rand -hex 16)
printf 'alice %s\nbob %s\n' "$(printf %s "$KEY_A" | sha256sum | cut -d' ' -f1)" \
    "$(printf %s "$KEY_B" | sha256sum | cut -d' ' -f1)" >"$MCPGW_TMP/apikeys"

mcpgw_spawn redis redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$MCPGW_TMP"
for ((i = 0; i < 200; i++)); do
    [ "$(redis-cli -p $RP ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
done
nodes=""
for i in 1 2 3; do
    mcpgw_spawn n$i "$MCPGW_BUILD/node/mcpgw-node" --listen 127.0.0.1:$((14411 + i)) --node-id n$i \
        --store redis://127.0.0.1:$RP --auth apikey --auth-apikeys "$MCPGW_TMP/apikeys" \
        --auth-resource "$URL"
    mcpgw_wait_http "http://127.0.0.1:$((14411 + i))/healthz"
    nodes=$nodes${nodes:+,}n$i=127.0.0.1:$((14411 + i))
done
mcpgw_spawn balancer "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$P \
    --nodes "$nodes" --workers 1 --admin 127.0.0.1:$A
mcpgw_wait_http "http://127.0.0.1:$A/healthz"

META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}'
# post URL BODY: one 2026-07-28 request (Mcp-Method and Mcp-Name mirror the body) with the
# API key of $TOKEN; prints the response body.
post() {
    local method name
    method=$(jq -r .method <<<"$2")
    name=$(jq -r '.params.name // .params.taskId // empty' <<<"$2")
    curl -sS --max-time 10 -X POST "$1" -H 'Content-Type: application/json' \
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
status() { task "$1" tasks/get "$2" | jq -r '.result.status // .error.message'; }
# wait_status URL ID STATUS SECONDS: poll tasks/get until the task has STATUS; prints the last
# response.
wait_status() {
    local r="" i
    for ((i = 0; i < $4 * 10; i++)); do
        r=$(task "$1" tasks/get "$2")
        [ "$(jq -r .result.status <<<"$r")" = "$3" ] && { echo "$r"; return 0; }
        sleep 0.1
    done
    echo "$r"
    return 1
}

export TOKEN=$KEY_A
# A long task of a tool that is not idempotent (slow_compute) names the victim node; then a short
# one and an idempotent one (sleep) until they have landed there too.
t_long=$(start "$URL" slow_compute '{"seconds":600,"label":"long"}') || exit 1
victim=${t_long%%.*}
t_done="" t_sleep=""
for ((i = 0; i < 60 && (${#t_done} == 0 || ${#t_sleep} == 0); i++)); do
    if [ -z "$t_done" ]; then
        t=$(start "$URL" slow_compute '{"seconds":0,"label":"short"}') || exit 1
        [ "${t%%.*}" = "$victim" ] && t_done=$t
    else
        t=$(start "$URL" sleep '{"ms":15000}') || exit 1
        [ "${t%%.*}" = "$victim" ] && t_sleep=$t || task "$URL" tasks/cancel "$t" >/dev/null
    fi
done
[ -n "$t_done" ] && [ -n "$t_sleep" ] || fail "no short or sleep task landed on $victim"
r=$(wait_status "$URL" "$t_done" completed 10) || fail "the short task did not complete: $r"
[ "$(status "$URL" "$t_long")" = working ] || fail "the long task is not working"
pass "tasks $t_sleep, $t_long (running) and $t_done (completed) on $victim"

r=$(TOKEN=$KEY_B task "$URL" tasks/get "$t_long")
jq -e '.error.code == -32602' <<<"$r" >/dev/null || fail "bob read alice's task: $r"
r=$(TOKEN=$KEY_B task "$URL" tasks/cancel "$t_long")
jq -e '.error.code == -32602' <<<"$r" >/dev/null || fail "bob cancelled alice's task: $r"
[ "$(status "$URL" "$t_long")" = working ] || fail "alice's task stopped after bob's cancel"
pass "another principal's task id is unknown (-32602), to read and to cancel"

pid_var=PID_$victim
kill -9 "${!pid_var}"
r=$(task "$URL" tasks/get "$t_done")
jq -e '.result.status == "completed" and (.result.result.content[0].text | contains("short"))' \
    <<<"$r" >/dev/null || fail "the finished task's result after the kill: $r"
pass "a finished task's result is answered by another node after kill -9 of $victim"

# The dead node's lease on its running tasks runs out (6 s), then the next tasks/get decides.
r=$(wait_status "$URL" "$t_long" failed 30) || fail "the unfinished task did not fail: $r"
jq -e '.result.error.code == -32603 and (.result.error.message | contains("stopped")) and
    (.result | has("result") | not)' <<<"$r" >/dev/null || fail "unclear failed state: $r"
pass "an unfinished task of a tool that is not idempotent: failed, $(jq -c .result.error.message <<<"$r")"

r=$(wait_status "$URL" "$t_sleep" completed 60) || fail "the idempotent task did not complete: $r"
jq -e '(.result.statusMessage | contains("restarted on node")) and (.result.result.content | length > 0)' \
    <<<"$r" >/dev/null || fail "the idempotent task was not re-run elsewhere: $r"
pass "an unfinished task of an idempotent tool was run again: $(jq -c .result.statusMessage <<<"$r")"

# Memory store: a task exists only on its node; the balancer must take tasks/* there.
unset TOKEN
M=14420 MA=14429
mcpgw_node m1 $((M + 1)) --task-tools echo
mcpgw_node m2 $((M + 2)) --task-tools echo
mcpgw_spawn balancer2 "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$M \
    --nodes m1=127.0.0.1:$((M + 1)),m2=127.0.0.1:$((M + 2)) --workers 1 --admin 127.0.0.1:$MA
mcpgw_wait_http "http://127.0.0.1:$MA/healthz"
declare -A on
for i in $(seq 1 12); do
    t=$(start "http://127.0.0.1:$M/mcp" slow_compute '{"seconds":600,"label":"routed"}') || exit 1
    on[${t%%.*}]=1
    [ "$(status "http://127.0.0.1:$M/mcp" "$t")" = working ] ||
        fail "tasks/get of $t through the balancer did not reach its node"
    r=$(task "http://127.0.0.1:$M/mcp" tasks/cancel "$t")
    jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null || fail "cancel of $t: $r"
    [ "$(status "http://127.0.0.1:$M/mcp" "$t")" = cancelled ] || fail "$t was not cancelled"
done
[ "${#on[@]}" = 2 ] || fail "the 12 tasks did not spread over both nodes: ${!on[*]}"
pass "tasks/get and tasks/cancel follow the task id to its node (12 tasks on m1 and m2)"

# --task-tools: any provider's tool runs as a task for clients of the extension (synchronously
# for the others).
t=$(start "http://127.0.0.1:$M/mcp" echo '{"text":"as a task"}') || exit 1
r=$(wait_status "http://127.0.0.1:$M/mcp" "$t" completed 10) || fail "echo as a task: $r"
jq -e '.result.result.content[0].text == "as a task"' <<<"$r" >/dev/null || fail "echo's task: $r"
r=$(curl -sS -X POST "http://127.0.0.1:$M/mcp" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: tools/call' -H 'Mcp-Name: echo' --data-binary '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"sync"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')
jq -e '.result.resultType == "complete" and .result.content[0].text == "sync"' <<<"$r" >/dev/null ||
    fail "echo without the extension: $r"
pass "a tool named by --task-tools runs as a task for clients of the extension only"
