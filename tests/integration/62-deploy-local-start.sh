#!/usr/bin/env bash
# 62-deploy-local-start.sh - deploy/local/start.sh returns only once every balancer worker can
# send new sessions to every node. (1) Right after it returns, 400 sessions opened at once spread
# over the 4 nodes within +-40% (the routing test's tolerance): sessions are sticky, so any node
# missing from the balancer's table at that moment would have lost its share for good (a load run
# started right after the old start.sh put its 500 sessions on 2 or 3 of the 4 nodes). (2) A
# cluster whose nodes n3 and n4 never join the balancer's gossip (their seeds point nowhere):
# start.sh must not hand out the URL; it fails within MCPGW_START_TIMEOUT naming what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

BAL=19000 # start.sh: nodes 19001-19004, admin 19099, gossip 19100-19104, redis 19190
export MCPGW_BALANCER_PORT=$BAL MCPGW_RUN="$MCPGW_TMP/run"
START=("$MCPGW_ROOT/deploy/local/start.sh")
start_cleanup() {
    local rc=$?
    bash "${START[@]}" stop >/dev/null 2>&1 || true
    if [ "$rc" -ne 0 ]; then cp "$MCPGW_RUN"/*.log "$MCPGW_TMP"/ 2>/dev/null || true; fi
    mcpgw_cleanup "$rc"
}
trap start_cleanup EXIT

cat >"$MCPGW_TMP/spread.mjs" <<'EOF'
// Open N sessions through the balancer, C at a time; print {"n1": count, ...} by minting node.
const [url, total, conc] = [process.argv[2], +process.argv[3], +process.argv[4]];
const body = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: {
  protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'spread', version: '1' } } });
const per = {};
let next = 0;
async function worker() {
  while (next < total) {
    next++;
    const r = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' } });
    await r.text();
    const sid = r.headers.get('mcp-session-id');
    if (!sid) throw new Error(`initialize answered ${r.status} without a session`);
    const node = sid.split('.')[0];
    per[node] = (per[node] || 0) + 1;
  }
}
await Promise.all(Array.from({ length: conc }, worker));
console.log(JSON.stringify(per));
EOF

# (1) A load right after start.sh returns reaches every node.
bash "${START[@]}" >"$MCPGW_TMP/start1.log" 2>&1 || { cat "$MCPGW_TMP/start1.log" >&2; fail "start.sh failed"; }
grep -q "^MCP URL: http://127.0.0.1:$BAL/mcp" "$MCPGW_TMP/start1.log" || fail "start.sh printed no MCP URL"
per=$(node "$MCPGW_TMP/spread.mjs" "http://127.0.0.1:$BAL/mcp" 400 50) || fail "opening 400 sessions failed"
echo "# sessions per node right after start.sh returned: $per (allowed 60..140 each)"
for i in 1 2 3 4; do
    n=$(jq -r ".n$i // 0" <<<"$per")
    [ "$n" -ge 60 ] && [ "$n" -le 140 ] || fail "node n$i got $n of 400 sessions opened right after start.sh returned: $per"
done
pass "400 sessions opened right after start.sh returned spread over all 4 nodes within +-40%"
bash "${START[@]}" stop >/dev/null 2>&1

# (2) Two nodes that never join the balancer's gossip: no URL, a failure that names the cause.
t0=$SECONDS
rc=0
MCPGW_START_TIMEOUT=5 MCPGW_NODE_ARGS="--gossip-seeds 127.0.0.1:9" \
    timeout 120 bash "${START[@]}" >"$MCPGW_TMP/start2.log" 2>&1 || rc=$?
cat "$MCPGW_TMP/start2.log" | grep -v "^mcpgw: building" | sed 's/^/# /'
[ "$rc" -ne 0 ] || fail "start.sh returned success while the balancer could reach only some nodes"
[ "$rc" -ne 124 ] || fail "start.sh did not give up within its MCPGW_START_TIMEOUT"
grep -q "^MCP URL" "$MCPGW_TMP/start2.log" && fail "start.sh printed the URL of an incomplete cluster"
grep -q "cannot send new sessions to every node: its table holds 2 of 4 nodes" "$MCPGW_TMP/start2.log" ||
    fail "start.sh's failure does not say which part of the cluster the balancer cannot reach"
pass "with n3 and n4 outside the balancer's gossip, start.sh refused to return the URL and said so ($((SECONDS - t0)) s)"
