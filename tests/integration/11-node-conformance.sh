#!/usr/bin/env bash
# The official conformance suite (30 active scenarios) against one node, plus the pending
# scenarios we implement (SSE polling / resumption, JSON Schema 2020-12).
source "$(dirname "$0")/../lib/common.sh"
mcpgw_node n1 18010
"$MCPGW_ROOT/tests/conformance/run.sh" "http://localhost:18010/mcp"
out="$MCPGW_TMP/pending.out"
"$MCPGW_NODE22" "$MCPGW_NPM/node_modules/@modelcontextprotocol/conformance/dist/index.js" \
    server --url http://localhost:18010/mcp --suite pending >"$out" 2>&1 || fail "pending scenarios failed"
grep -q '^✓ server-sse-polling: 3 passed, 0 failed' "$out" || { cat "$out"; fail "SSE polling/resumption"; }
grep -q '^✓ json-schema-2020-12: 4 passed, 0 failed' "$out" || { cat "$out"; fail "json-schema-2020-12"; }
pass "conformance 30/30 + pending scenarios"
