#!/usr/bin/env bash
# Nodes that serve only their balancer: with --balancer-secret (given in the config files as
# ${VAR}, never on a command line), a node answers /mcp only when the request carries the secret
# the balancer adds; a client reaching the node's port directly gets 403, also with a guessed
# secret, while a client's own X-Mcpgw-Balancer header through the balancer changes nothing.
# Health checks and the balancer's multiplexed GET streams keep working.
# Ports 17995 (balancer), 17996-17997 (nodes), 17998 (admin).
source "$(dirname "$0")/../lib/common.sh"

P=17995
A=17998
URL=http://127.0.0.1:$P/mcp
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bal-secret","version":"1"}}}'
INITED='{"jsonrpc":"2.0","method":"notifications/initialized"}'
hdr=$MCPGW_TMP/h
body=$MCPGW_TMP/b
export MCPGW_T93_SECRET="s3cret-$RANDOM-$RANDOM-$RANDOM"

for i in 1 2; do
    printf 'listen 127.0.0.1:%s\nnode-id n%s\nbalancer-secret ${MCPGW_T93_SECRET}\n' $((P + i)) $i >"$MCPGW_TMP/n$i.conf"
    mcpgw_spawn n$i "$MCPGW_BUILD/node/mcpgw-node" --config "$MCPGW_TMP/n$i.conf"
    mcpgw_wait_http "http://127.0.0.1:$((P + i))/healthz"
done
printf 'balancer-secret "${MCPGW_T93_SECRET}"\n' >"$MCPGW_TMP/bal.conf"
mcpgw_spawn balancer "$MCPGW_BUILD/balancer/mcpgw-balancer" --config "$MCPGW_TMP/bal.conf" \
    --listen 127.0.0.1:$P --nodes n1=127.0.0.1:$((P + 1)),n2=127.0.0.1:$((P + 2)) \
    --workers 2 --admin 127.0.0.1:$A
mcpgw_wait_routable 2 2 20 curl -s "http://127.0.0.1:$A/healthz" ||
    fail "the balancer's health checks do not reach nodes that require the secret"
pass "the balancer's health checks reach the nodes (/healthz needs no secret)"

post() { # post URL BODY [headers...]: sets $code
    local url=$1 data=$2
    shift 2
    code=$(curl -sS -o "$body" -D "$hdr" -w '%{http_code}' --max-time 10 "$url" -H "$CT" -H "$ACC" "$@" -d "$data")
}

post "$URL" "$INIT" -H "X-Mcpgw-Balancer: guessed"
[ "$code" = 200 ] || fail "initialize through the balancer: HTTP $code $(head -c 200 "$body")"
sid=$(grep -i '^mcp-session-id:' "$hdr" | cut -d' ' -f2 | tr -d '\r')
post "$URL" "$INITED" -H "$PV" -H "Mcp-Session-Id: $sid"
[ "$code" = 202 ] || fail "initialized through the balancer: HTTP $code"
pass "through the balancer a session works (a client's own X-Mcpgw-Balancer is replaced)"

# The balancer's GET stream of the session goes over its HTTP/2 mux to the node.
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "$URL" -H 'Accept: text/event-stream' \
    -H "$PV" -H "Mcp-Session-Id: $sid" 2>/dev/null || true)
[ "$code" = 200 ] || fail "the GET stream through the balancer: HTTP $code"
pass "the session's GET stream through the balancer (multiplexed) is served"

for i in 1 2; do
    post "http://127.0.0.1:$((P + i))/mcp" "$INIT"
    [ "$code" = 403 ] || fail "n$i served a direct request without the secret: HTTP $code"
    grep -q 'only through its balancer' "$body" || fail "n$i's 403 does not say why: $(cat "$body")"
    post "http://127.0.0.1:$((P + i))/mcp" "$INIT" -H "X-Mcpgw-Balancer: guessed"
    [ "$code" = 403 ] || fail "n$i served a direct request with a wrong secret: HTTP $code"
    post "http://127.0.0.1:$((P + i))/mcp" "$INIT" -H "X-Mcpgw-Balancer: ${MCPGW_T93_SECRET}x"
    [ "$code" = 403 ] || fail "n$i served a direct request with a longer secret: HTTP $code"
done
pass "a node reached directly refuses /mcp with 403 (no secret, a wrong one, a longer one)"

if grep -a "$MCPGW_T93_SECRET" "$MCPGW_TMP"/n1.log "$MCPGW_TMP"/n2.log "$MCPGW_TMP"/balancer.log >/dev/null; then
    fail "the secret reached a log"
fi
pass "the secret appears in no log"
