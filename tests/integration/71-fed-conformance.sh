#!/usr/bin/env bash
# The official conformance suite (0.1.16, 30 scenarios) against a node whose only upstream is
# another mcpgw-node, with an empty prefix: every scenario crosses the federation layer (the
# outer node serves no built-ins), the sampling and elicitation scenarios included (the inner
# node's requests to the client are forwarded on the call's stream: node/s2c.c). Every scenario
# must pass.
source "$(dirname "$0")/../lib/common.sh"

INNER=16871
OUTER=16870
mcpgw_node inner "$INNER"
printf 'listen 127.0.0.1:%s\nnode-id outer\nupstream inner http http://127.0.0.1:%s/mcp prefix=""\n' \
    "$OUTER" "$INNER" >"$MCPGW_TMP/outer.conf"
mcpgw_spawn outer "$MCPGW_BUILD/node/mcpgw-node" --config "$MCPGW_TMP/outer.conf"
mcpgw_wait_http "http://127.0.0.1:$OUTER/healthz"
for ((i = 0; i < 200; i++)); do
    grep -qE 'upstream inner: [0-9]+ tools' "$MCPGW_TMP/outer.log" && break
    sleep 0.05
done
grep -qE 'upstream inner: [0-9]+ tools' "$MCPGW_TMP/outer.log" || fail "the outer node never listed the inner one's tools"

out=$MCPGW_TMP/conformance.out
"$MCPGW_NODE22" "$MCPGW_NPM/node_modules/@modelcontextprotocol/conformance/dist/index.js" \
    server --url "http://localhost:$OUTER/mcp" >"$out" 2>&1 || true
grep -E '^[✓✗]' "$out" | sed 's/^/    /'
total=$(grep -c '^[✓✗]' "$out" || true)
passed=$(grep -c '^✓' "$out" || true)
unexpected=$(grep '^✗' "$out" || true)
[ "$total" -ge 30 ] || fail "only $total scenarios ran: $(tail -n 20 "$out")"
[ -z "$unexpected" ] || fail "scenarios failing through the federation layer: $unexpected"
pass "conformance through an upstream with an empty prefix: $passed of $total scenarios pass"
