#!/usr/bin/env bash
# The official MCP conformance suite (every active scenario, each with a fresh session) through
# mcpgw-balancer with 4 nodes behind it: every check must pass, as against one node.
source "$(dirname "$0")/../lib/common.sh"

P=18530 # balancer; nodes on P+1..P+4
A=18539 # admin
nodes=""
for i in 1 2 3 4; do
    mcpgw_node n$i $((P + i))
    nodes+="${nodes:+,}n$i=127.0.0.1:$((P + i))"
done
mcpgw_spawn balancer "$MCPGW_BUILD/balancer/mcpgw-balancer" --listen 127.0.0.1:$P --nodes "$nodes" \
    --workers 2 --admin 127.0.0.1:$A
mcpgw_wait_http "http://127.0.0.1:$A/healthz"

bash "$MCPGW_ROOT/tests/conformance/run.sh" "http://127.0.0.1:$P/mcp"
pass "conformance suite through the balancer to 4 nodes"

# The suite's sessions went to more than one node, so stickiness was exercised.
metrics=$(curl -s "http://127.0.0.1:$A/metrics")
used=$(grep -c '^mcpgw_balancer_requests_total{node="n[1-4]"} [1-9]' <<<"$metrics" || true)
[ "$used" -ge 2 ] || fail "the suite's sessions reached only $used node(s)"
pass "the suite's sessions were spread over $used nodes"
