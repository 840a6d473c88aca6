#!/usr/bin/env bash
# Limits per principal on a 4-node cluster sharing one redis-server, behind the balancer too
# (docs/security.md, "Limits"): a principal over its rate budget gets 429 with Retry-After on
# every node while other principals are served; the budget is one for the cluster (requests
# spread over the nodes count together); a per-tool rate; calls in flight; sessions per
# principal (a deleted or expired session gives its place back); SIGHUP changes a limit; bad `limit`
# lines fail --check with file:line; Redis stopped -> each node limits with its local share
# and keeps serving. Principals are API keys.
# Ports 14000 (redis), 14001-14006 (nodes), 14011-14014 (gossip), 14020 (balancer), 14021.
source "$(dirname "$0")/../lib/common.sh"

RP=14000
BP=14020
BIN=$MCPGW_BUILD/node/mcpgw-node
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
PING='{"jsonrpc":"2.0","id":7,"method":"ping"}'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"limits","version":"1"}}}'
INITED='{"jsonrpc":"2.0","method":"notifications/initialized"}'
hdr=$MCPGW_TMP/h
body=$MCPGW_TMP/b

mcpgw_spawn redis redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no --dir "$MCPGW_TMP" \
    --enable-debug-command local
for ((i = 0; i < 200; i++)); do
    [ "$(redis-cli -p $RP ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
done

# One API key per principal: key$NAME, 32+ characters.
declare -A KEY
: >"$MCPGW_TMP/apikeys"
for who in alice bob carol dave erin frank gina hank ivan; do
    KEY[$who]="key-$who-$RANDOM-0123456789abcdefghijklmnopqrstuv"
    printf '%s %s\n' "$who" "$(printf %s "${KEY[$who]}" | sha256sum | cut -d' ' -f1)" >>"$MCPGW_TMP/apikeys"
done

# Every principal: 8 requests at once, then one a minute (so nothing refills during the test).
# bob has no request rate but a tool rate; carol a session cap; gina a concurrency cap.
cat >"$MCPGW_TMP/limits.conf" <<CONF
limit rate 1/m burst=8
limit rate unlimited principal=bob
limit rate unlimited principal=carol
limit rate unlimited principal=gina
limit rate 1/m burst=2 tool=echo
limit sessions 3 principal=carol
limit concurrency 2 principal=gina
CONF
for i in 1 2 3 4; do
    cp "$MCPGW_TMP/limits.conf" "$MCPGW_TMP/n$i.conf"
    seeds=127.0.0.1:14011
    mcpgw_spawn n$i "$BIN" --config "$MCPGW_TMP/n$i.conf" --listen 127.0.0.1:$((14000 + i)) \
        --node-id n$i --store redis://127.0.0.1:$RP --gossip-bind 127.0.0.1:$((14010 + i)) \
        --gossip-seeds $seeds --auth apikey --auth-apikeys "$MCPGW_TMP/apikeys" \
        --auth-resource http://127.0.0.1:$BP/mcp
done
for i in 1 2 3 4; do
    mcpgw_wait_http "http://127.0.0.1:$((14000 + i))/healthz"
    for ((k = 0; k < 200; k++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((14000 + i))/readyz")" = 200 ] && break
        sleep 0.05
    done
done
mcpgw_spawn balancer "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$BP \
    --nodes n1=127.0.0.1:14001,n2=127.0.0.1:14002,n3=127.0.0.1:14003,n4=127.0.0.1:14004 \
    --workers 1 --admin 127.0.0.1:14021
mcpgw_wait_routable 4 1 20 curl -s "http://127.0.0.1:14021/healthz" || fail "balancer not routable"

post() { # post PORT WHO BODY [headers...]: sets $code
    local port=$1 who=$2 data=$3
    shift 3
    code=$(curl -sS -o "$body" -D "$hdr" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/mcp" \
        -H "$CT" -H "$ACC" -H "Authorization: Bearer ${KEY[$who]}" "$@" -d "$data")
}
retry_after() { grep -i '^retry-after:' "$hdr" | cut -d' ' -f2 | tr -d '\r'; }
expect_429() { # expect_429 WHAT LIMIT: the last answer was a 429 naming LIMIT with Retry-After
    [ "$code" = 429 ] || fail "$1: HTTP $code, not 429: $(head -c 300 "$body")"
    local ra
    ra=$(retry_after)
    [ -n "$ra" ] && [ "$ra" -ge 1 ] || fail "$1: no Retry-After in the 429"
    [ "$(jq -r .error.data.limit "$body")" = "$2" ] || fail "$1: the body does not name limit $2: $(cat "$body")"
    jq -e '.jsonrpc == "2.0" and .error.code == -32000' "$body" >/dev/null || fail "$1: not a JSON-RPC error"
}
metric() { # metric PORT NAME-WITH-LABELS: its value (0 when absent)
    curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($0, m) == 1 { print $2; f = 1 } END { if (!f) print 0 }'
}

# 1. The budget is the cluster's: alice's 12 pings spread over 4 nodes, 8 admitted in all.
ok=0
for ((r = 0; r < 3; r++)); do
    for i in 1 2 3 4; do
        post $((14000 + i)) alice "$PING"
        case $code in 200) ok=$((ok + 1)) ;; 429) ;; *) fail "alice's ping on n$i: HTTP $code" ;; esac
    done
done
[ "$ok" = 8 ] || fail "alice's pings spread over 4 nodes: $ok admitted, the shared budget is 8"
pass "requests spread over 4 nodes draw on one budget (8 of 12 admitted)"
for i in 1 2 3 4; do
    post $((14000 + i)) alice "$PING"
    expect_429 "alice on n$i" rate
    ra=$(retry_after)
    [ "$ra" -ge 30 ] && [ "$ra" -le 61 ] || fail "Retry-After $ra is not the bucket's wait (~60 s)"
done
pass "over budget, alice gets 429 with Retry-After (~60 s) and a JSON-RPC error on every node"
for i in 1 2 3 4; do
    post $((14000 + i)) dave "$PING"
    [ "$code" = 200 ] || fail "dave (another principal) refused on n$i: HTTP $code"
done
pass "other principals are unaffected"
grep -a 'audit=limits status=429 reason=rate principal="alice"' "$MCPGW_TMP"/n1.log | grep -aq 'request_id="7" remote="127.0.0.1"' ||
    fail "no audit line for alice's 429 on n1"
[ "$(metric 14001 'mcpgw_node_limited_total{node="n1",kind="rate"}')" -ge 1 ] || fail "n1 did not count its 429s"
pass "each 429 is audited (principal, session, request id, remote) and counted by kind"

# 2. Behind the balancer: alice still refused; dave's budget is the same one.
post $BP alice "$PING"
expect_429 "alice through the balancer" rate
ok=0
for ((r = 0; r < 8; r++)); do
    post $BP dave "$PING"
    case $code in 200) ok=$((ok + 1)) ;; 429) ;; *) fail "dave through the balancer: HTTP $code" ;; esac
done
[ "$ok" = 4 ] || fail "dave had 4 of 8 left after 4 direct pings, got $ok through the balancer"
pass "through the balancer the same cluster-wide budget applies (dave: 4 direct + 4 balanced)"

# 3. A tool's rate: bob (no request rate) calls echo 3 times in one session.
post 14001 bob "$INIT"
[ "$code" = 200 ] || fail "bob's initialize: HTTP $code"
sid=$(grep -i '^mcp-session-id:' "$hdr" | cut -d' ' -f2 | tr -d '\r')
post 14001 bob "$INITED" -H "$PV" -H "Mcp-Session-Id: $sid"
ECHO='{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
for n in 1 2; do
    post 1400$((n + 1)) bob "$ECHO" -H "$PV" -H "Mcp-Session-Id: $sid"
    [ "$code" = 200 ] || fail "bob's echo $n: HTTP $code $(head -c 200 "$body")"
done
post 14004 bob "$ECHO" -H "$PV" -H "Mcp-Session-Id: $sid"
expect_429 "bob's third echo" tool_rate
grep -q 'tool=echo' "$body" || fail "the 429 does not name the tool's limit: $(cat "$body")"
post 14004 bob '{"jsonrpc":"2.0","id":12,"method":"tools/list"}' -H "$PV" -H "Mcp-Session-Id: $sid"
[ "$code" = 200 ] || fail "bob's tools/list after the echo limit: HTTP $code"
pass "a per-tool rate refuses the third echo (on another node) and nothing else"

# 4. Sessions per principal, cluster-wide: carol may hold 3; a DELETE gives one back.
sids=()
for i in 1 2 3; do
    post $((14000 + i)) carol "$INIT"
    [ "$code" = 200 ] || fail "carol's session $i: HTTP $code"
    sids+=("$(grep -i '^mcp-session-id:' "$hdr" | cut -d' ' -f2 | tr -d '\r')")
done
post 14004 carol "$INIT"
expect_429 "carol's fourth session" sessions
post 14002 carol '' -X DELETE -H "$PV" -H "Mcp-Session-Id: ${sids[0]}"
[ "$code" = 200 ] || fail "carol's DELETE: HTTP $code"
post 14004 carol "$INIT"
[ "$code" = 200 ] || fail "carol's session after a DELETE: HTTP $code $(head -c 200 "$body")"
pass "a session cap counts sessions on every node, and a deleted session frees its place"
post 14001 carol "$INIT"
expect_429 "carol's fourth session again" sessions
# A record that expires (its TTL, here cut short) frees the place without any node telling.
redis-cli -p $RP PEXPIRE "mcpgw:{${sids[1]}}:s" 1 >/dev/null
for ((k = 0; k < 100; k++)); do
    [ "$(redis-cli -p $RP EXISTS "mcpgw:{${sids[1]}}:s")" = 0 ] && break
    sleep 0.05
done
post 14003 carol "$INIT"
[ "$code" = 200 ] || fail "carol's session after a record expired: HTTP $code $(head -c 200 "$body")"
[ "$(redis-cli -p $RP SCARD 'mcpgw:lim:{carol}:s')" = 3 ] || fail "the expired id was not pruned from the set"
pass "an expired session record frees its place too (the count follows the records)"

# 5. Calls in flight: gina may run 2 at once on a node; the third waits for none, it is refused.
SLEEP='{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":3000}}}'
post 14001 gina "$INIT"
gsid=$(grep -i '^mcp-session-id:' "$hdr" | cut -d' ' -f2 | tr -d '\r')
post 14001 gina "$INITED" -H "$PV" -H "Mcp-Session-Id: $gsid"
sleepers=()
for n in 1 2; do
    curl -sS -o "$MCPGW_TMP/sleep$n" --max-time 20 http://127.0.0.1:14001/mcp -H "$CT" -H "$ACC" -H "$PV" \
        -H "Authorization: Bearer ${KEY[gina]}" -H "Mcp-Session-Id: $gsid" \
        -d "${SLEEP/\"id\":21/\"id\":2$n}" &
    sleepers+=($!)
done
for ((k = 0; k < 200; k++)); do
    [ "$(metric 14001 'mcpgw_node_calls_inflight{node="n1"}')" -ge 2 ] && break
    sleep 0.05
done
post 14001 gina "$SLEEP" -H "$PV" -H "Mcp-Session-Id: $gsid"
expect_429 "gina's third call in flight" concurrency
wait "${sleepers[@]}"
grep -q '"result"' "$MCPGW_TMP/sleep1" && grep -q '"result"' "$MCPGW_TMP/sleep2" ||
    fail "gina's two admitted calls did not complete"
post 14001 gina "${SLEEP/3000/10}" -H "$PV" -H "Mcp-Session-Id: $gsid"
[ "$code" = 200 ] || fail "gina's call after the others finished: HTTP $code"
pass "a concurrency cap refuses a third call in flight, and frees its slots when calls end"

# 6. --check names file:line of a bad limit line; SIGHUP lifts erin's limit on n1.
printf 'node-id x\nlimit rate 5/s\nlimit rate 10/fortnight\n' >"$MCPGW_TMP/bad.conf"
out=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) && fail "--check accepted a bad limit line"
grep -q 'bad.conf:3: limit rate' <<<"$out" || fail "--check does not name file:line: $out"
printf 'limit sessions lots\n' >"$MCPGW_TMP/bad.conf"
out=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1) && fail "--check accepted 'sessions lots'"
grep -q 'bad.conf:1:' <<<"$out" || fail "--check does not name file:line: $out"
pass "--check refuses bad limit lines with file:line"
for ((r = 0; r < 9; r++)); do post 14001 erin "$PING"; done
expect_429 "erin before the reload" rate
echo 'limit rate unlimited principal=erin' >>"$MCPGW_TMP/n1.conf"
kill -HUP "$PID_n1"
for ((k = 0; k < 200; k++)); do
    post 14001 erin "$PING"
    [ "$code" = 200 ] && break
    sleep 0.05
done
[ "$code" = 200 ] || fail "erin still refused after SIGHUP lifted the limit"
post 14002 erin "$PING"
expect_429 "erin on n2 (not reloaded)" rate
pass "SIGHUP changes a limit (only on the node that reloaded it)"
sed -i 's|^limit rate 1/m burst=8$|limit rate 1/m burst=20|' "$MCPGW_TMP/n2.conf"
kill -HUP "$PID_n2"
for ((k = 0; k < 200; k++)); do
    post 14002 alice "$PING"
    [ "$code" = 200 ] && break
    sleep 0.05
done
[ "$code" = 200 ] || fail "raising the budget by SIGHUP did not admit alice on n2"
pass "SIGHUP raising a rate applies at once (a fresh bucket, not the old timestamp)"

# Redis forgot the script (SCRIPT FLUSH, a fail-over): NOSCRIPT, then EVAL, not a fallback.
redis-cli -p $RP SCRIPT FLUSH >/dev/null
before=$(metric 14002 'mcpgw_node_limit_fallbacks_total{node="n2",why="redis_error"}')
post 14002 ivan "$PING"
[ "$code" = 200 ] || fail "ivan's ping after SCRIPT FLUSH: HTTP $code"
[ "$(metric 14002 'mcpgw_node_limit_fallbacks_total{node="n2",why="redis_error"}')" = "$before" ] ||
    fail "NOSCRIPT was treated as a Redis error"
[ "$(redis-cli -p $RP --scan --pattern 'mcpgw:lim:{ivan}:r:*' | wc -l)" = 1 ] || fail "ivan's bucket is not in Redis"
pass "after SCRIPT FLUSH the script is sent again (EVAL) and the request decided by Redis"

# 7. Redis slow (a 3 s DEBUG SLEEP): hank's requests are decided locally after 250 ms, not
# held for the whole stall.
redis-cli -p $RP DEBUG SLEEP 3 >/dev/null &
slept=$!
for ((k = 0; k < 100; k++)); do
    redis-cli -p $RP ping >/dev/null 2>&1 & p=$!
    sleep 0.05
    kill -0 $p 2>/dev/null && { kill $p 2>/dev/null; break; } # Redis is asleep
done
t0=$(date +%s%N)
post 14003 hank "$PING"
t1=$(date +%s%N)
[ "$code" = 200 ] || fail "hank's ping while redis sleeps: HTTP $code"
[ $(((t1 - t0) / 1000000)) -lt 2500 ] || fail "hank's ping waited $(((t1 - t0) / 1000000)) ms for a sleeping redis"
wait $slept
[ "$(metric 14003 'mcpgw_node_limit_fallbacks_total{node="n3",why="redis_slow"}')" -ge 1 ] ||
    fail "the slow answer is not counted as a fallback"
pass "a slow redis is not waited for: decided locally in $(((t1 - t0) / 1000000)) ms, counted"

# 8. Redis stopped: each node limits frank with its share (8 / 4 live nodes = 2) and serves.
kill "$PID_redis"
wait "$PID_redis" 2>/dev/null || true
for ((k = 0; k < 200; k++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:14001/readyz)" = 503 ] && break
    sleep 0.05
done
ok=0
for ((r = 0; r < 4; r++)); do
    post 14001 frank "$PING"
    case $code in 200) ok=$((ok + 1)) ;; 429) expect_429 "frank without redis" rate ;; *) fail "frank without redis: HTTP $code" ;; esac
done
[ "$ok" = 2 ] || fail "without redis n1 admitted $ok of frank's 4 pings, its share is 2"
post 14001 dave "$PING"
[ "$code" = 429 ] || true # dave may have his own local budget left; the node must answer
post 14001 bob "$PING"
[ "$code" = 200 ] || fail "n1 stopped serving without redis: HTTP $code"
[ "$(metric 14001 'mcpgw_node_limit_fallbacks_total{node="n1",why="redis_down"}')" -ge 4 ] ||
    fail "the fallbacks are not counted"
pass "with redis stopped the local share (burst 8 / 4 nodes) still limits, counted, and the node serves"

# 9. Without authentication the principal is the client's address; X-Forwarded-For counts only
# on a node that trusts its balancer (--balancer-secret; here the test plays the balancer).
printf 'limit rate 1/m burst=2\nbalancer-secret t94-secret\n' >"$MCPGW_TMP/n5.conf"
printf 'limit rate 1/m burst=2\n' >"$MCPGW_TMP/n6.conf"
mcpgw_node n5 14005 --config "$MCPGW_TMP/n5.conf"
mcpgw_node n6 14006 --config "$MCPGW_TMP/n6.conf"
anon() { # anon PORT XFF [headers...]
    local port=$1 xff=$2
    shift 2
    code=$(curl -sS -o "$body" -D "$hdr" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$port/mcp" \
        -H "$CT" -H "$ACC" -H "X-Forwarded-For: $xff" "$@" -d "$PING")
}
for x in 1 2; do anon 14005 "10.0.0.9, 192.0.2.1" -H 'X-Mcpgw-Balancer: t94-secret'; [ "$code" = 200 ] || fail "n5: HTTP $code"; done
anon 14005 "10.0.0.8, 192.0.2.1" -H 'X-Mcpgw-Balancer: t94-secret'
expect_429 "192.0.2.1 (the balancer's entry) over its budget" rate
grep -aq 'principal="192.0.2.1"' "$MCPGW_TMP/n5.log" || fail "n5 did not limit the forwarded address"
anon 14005 "192.0.2.2" -H 'X-Mcpgw-Balancer: t94-secret'
[ "$code" = 200 ] || fail "another forwarded address shares the budget: HTTP $code"
for x in 1 2; do anon 14006 "198.51.100.$x"; [ "$code" = 200 ] || fail "n6: HTTP $code"; done
anon 14006 "198.51.100.3"
expect_429 "an untrusted X-Forwarded-For" rate
grep -aq 'principal="127.0.0.1"' "$MCPGW_TMP/n6.log" || fail "n6 did not limit the peer address"
pass "auth off: the peer address, or the trusted balancer's X-Forwarded-For entry, is the principal (memory store)"
