#!/usr/bin/env bash
# Redis that is not open to everyone: a redis-server with a default-user password and an ACL user.
# A node without credentials (or with wrong ones) is refused (store down: /readyz 503, a clear
# log line) and never serves sessions it cannot store; a node with redis://USER:PASSWORD@HOST or
# MCPGW_REDIS_PASSWORD from the environment works; the password never reaches the log.
# Ports 17985 (redis), 17986-17990 (nodes).
source "$(dirname "$0")/../lib/common.sh"

RP=17985
BIN=$MCPGW_BUILD/node/mcpgw-node
PW=default-$RANDOM-pw
UPW=acl-$RANDOM-pw
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"redis-auth","version":"1"}}}'

mcpgw_spawn redis redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no \
    --requirepass "$PW" --dir "$MCPGW_TMP"
for ((i = 0; i < 200; i++)); do
    [ "$(redis-cli -p $RP -a "$PW" --no-auth-warning ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
done
# An ACL user that may do what the node does, and nothing else.
redis-cli -p $RP -a "$PW" --no-auth-warning ACL SETUSER mcpgw on ">$UPW" '~mcpgw:*' '&mcpgw:*' \
    +@all -@dangerous +info >/dev/null

node() { # node NAME PORT [extra flags...]: start a node on the password-protected Redis
    local name=$1 port=$2
    shift 2
    mcpgw_spawn "$name" "$@" --listen "127.0.0.1:$port" --node-id "$name"
    mcpgw_wait_http "http://127.0.0.1:$port/healthz"
}
readyz() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz"; }
wait_ready() { # wait_ready PORT: /readyz 200 within 10 s (the store connected and loaded)
    for ((i = 0; i < 200; i++)); do [ "$(readyz "$1")" = 200 ] && return 0; sleep 0.05; done
    return 1
}
init() {
    curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$1/mcp" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -d "$INIT"
}

node nopw 17986 "$BIN" --store "redis://127.0.0.1:$RP"
node wrong 17987 "$BIN" --store "redis://:not-the-password@127.0.0.1:$RP"
node acl 17988 "$BIN" --store "redis://mcpgw:$UPW@127.0.0.1:$RP"
MCPGW_REDIS_PASSWORD=$PW node env 17989 "$BIN" --store "redis://127.0.0.1:$RP"
MCPGW_REDIS_USER=mcpgw MCPGW_REDIS_PASSWORD=$UPW node envacl 17990 "$BIN" --store "redis://127.0.0.1:$RP"

wait_ready 17988 || fail "the node with the ACL user's credentials in the URL is not ready"
pass "a node with redis://USER:PASSWORD@HOST is ready"
wait_ready 17989 || fail "the node with MCPGW_REDIS_PASSWORD is not ready"
pass "a node with MCPGW_REDIS_PASSWORD from the environment is ready"
wait_ready 17990 || fail "the node with MCPGW_REDIS_USER/PASSWORD is not ready"
pass "a node with MCPGW_REDIS_USER and MCPGW_REDIS_PASSWORD is ready"
[ "$(init 17988)" = 200 ] || fail "initialize on the ACL node"
keys=$(redis-cli -p $RP -a "$PW" --no-auth-warning --scan --pattern 'mcpgw:{*}:s' | wc -l)
[ "$keys" -ge 1 ] || fail "the session record is not in Redis"
pass "sessions are stored through the ACL user ($keys record)"

# The nodes without (right) credentials: by now they have tried (the good ones connected).
for p in 17986 17987; do
    [ "$(readyz $p)" = 503 ] || fail "node on $p without the right password says ready"
    [ "$(init $p)" = 503 ] || fail "node on $p without the right password accepted a session"
done
pass "nodes without the password, or with a wrong one, are not ready and refuse sessions (503)"
for ((i = 0; i < 100; i++)); do
    grep -qa 'refused our credentials' "$MCPGW_TMP/wrong.log" && break
    sleep 0.05
done
grep -a 'refused our credentials' "$MCPGW_TMP/wrong.log" | head -1 | grep -a WRONGPASS >/dev/null ||
    fail "no clear log line for the wrong password"
grep -a 'NOAUTH' "$MCPGW_TMP/nopw.log" >/dev/null || fail "no log line saying Redis wants a password"
pass "the refused nodes say why in their logs (WRONGPASS / NOAUTH)"
if grep -a -e "$PW" -e "$UPW" "$MCPGW_TMP"/{nopw,wrong,acl,env,envacl}.log >/dev/null; then
    fail "a password reached a node's log"
fi
grep -a 'store redis://mcpgw:\*\*\*@127.0.0.1' "$MCPGW_TMP/acl.log" >/dev/null ||
    fail "the start line does not show the redacted store URL"
pass "no password in any log (the store URL is logged redacted)"
