#!/usr/bin/env bash
# 83-2026-cluster-conformance.sh - the official conformance suites through mcpgw-balancer to 4
# nodes on one Redis, as a client meets the cluster: 0.2.0-alpha.12 with --requirements
# 2026-07-28 and --requirements 2025-11-25, and 0.1.16. Every scenario passes, the tasks
# extension's included (tasks/* follow the task id in Mcp-Name to its node; SKIP_26 can leave
# scenarios out by name prefix). Stateless requests spread by load, so MRTR retries
# land on other nodes than their first round: the nodes share one state key ring.
# Ports 14600 (balancer), 14601-14604 (nodes), 14609 (admin), 14610 (redis).
# mcpgw-timeout: 1500
source "$(dirname "$0")/../lib/common.sh"
CONF_NEXT="$MCPGW_NPM/node_modules/conformance-next/dist/index.js"
CONF_OLD="$MCPGW_NPM/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[ -f "$CONF_NEXT" ] && [ -f "$CONF_OLD" ] || mcpgw_skip "the conformance suites are not installed"
command -v redis-server >/dev/null || mcpgw_skip "redis-server is not installed"
# Scenario names (a prefix each) left out of the 2026-07-28 run: none.
SKIP_26=''

P=14600 A=14609 RP=14610
mcpgw_spawn redis redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no --dir "$MCPGW_TMP"
for ((i = 0; i < 200; i++)); do
    [ "$(redis-cli -p $RP ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
done
openssl rand -hex 32 >"$MCPGW_TMP/state.keys"
nodes=""
for i in 1 2 3 4; do
    mcpgw_spawn n$i "$MCPGW_BUILD/node/mcpgw-node" --listen "127.0.0.1:$((P + i))" --node-id n$i \
        --store "redis://127.0.0.1:$RP" --state-keyring "$MCPGW_TMP/state.keys"
    nodes+="${nodes:+,}n$i=127.0.0.1:$((P + i))"
done
for i in 1 2 3 4; do
    for ((t = 0; t < 400; t++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((P + i))/readyz")" = 200 ] && break
        sleep 0.05
    done
done
mcpgw_spawn balancer "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$P --nodes "$nodes" \
    --workers 2 --admin 127.0.0.1:$A
mcpgw_wait_routable 4 2 20 curl -s "http://127.0.0.1:$A/healthz"
URL=http://localhost:$P/mcp

# summary FILE: the suite's per-scenario lines.
summary() { sed -n '/=== SUMMARY ===/,/^Total/p' "$1" | grep -E '^[✓✗]' || true; }
# run_suite NAME SUITE [ARGS...]: the suite against the balancer; fails on a failed scenario that
# is not left out.
run_suite() {
    local name=$1 suite=$2 out="$MCPGW_TMP/conformance-$1.out" failed
    shift 2
    "$MCPGW_NODE22" "$suite" server --url "$URL" "$@" >"$out" 2>&1 || true
    summary "$out" | sed 's/^/    /'
    [ "$(summary "$out" | wc -l)" -ge 20 ] || { tail -n 40 "$out"; fail "the $name suite did not finish"; }
    failed=$(summary "$out" | grep '^✗' || true)
    if [ "$name" = 2026-07-28 ] && [ -n "$SKIP_26" ]; then
        failed=$(grep -v "^✗ $SKIP_26" <<<"$failed" || true)
    fi
    [ -z "$failed" ] || { grep -E 'FAILURE|Error|✗' "$out" | head -60 >&2; fail "$name: $failed"; }
    pass "$name through the balancer to 4 nodes: $(summary "$out" | grep -c '^✓') scenarios pass"
}
run_suite 2026-07-28 "$CONF_NEXT" --requirements 2026-07-28
grep -q '^✓ input-required-result-request-state: [1-9]' "$MCPGW_TMP/conformance-2026-07-28.out" ||
    grep -q '^✓ input-required-result-tampered-state: [1-9]' "$MCPGW_TMP/conformance-2026-07-28.out" ||
    fail "the MRTR scenarios did not run"
# The SHOULD checks for tools and prompts list changes on a listen stream pass through the
# balancer: the fixture's announcement lands on any node, the stream is on any node.
"$MCPGW_NODE22" "$CONF_NEXT" server --url "$URL" --scenario server-stateless \
    >"$MCPGW_TMP/stateless.out" 2>&1 || true
for c in tools prompts; do
    grep -Eq "sep-2575-server-sends-$c-list-changed-on-subscription *\].*SUCCESS" \
        "$MCPGW_TMP/stateless.out" || fail "the $c list-change check on a listen stream did not pass"
done
pass "the listen stream's tools and prompts list-change checks pass across the cluster"
run_suite 2025-11-25 "$CONF_NEXT" --requirements 2025-11-25
run_suite 0.1.16 "$CONF_OLD"

# The stateless requests were spread: more than one node served them.
used=$(curl -s "http://127.0.0.1:$A/metrics" | grep -c '^mcpgw_balancer_requests_total{node="n[1-4]"} [1-9]' || true)
[ "$used" -ge 2 ] || fail "the suites' requests reached only $used node(s)"
pass "the suites' requests were spread over $used nodes"
