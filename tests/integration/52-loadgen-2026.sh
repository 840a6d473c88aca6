#!/usr/bin/env bash
# Load generator with --protocol 2026-07-28 through the replicated cluster (the README's start
# command: redis, 4 nodes, balancer): 600 clients holding subscriptions/listen streams on a note,
# stateless echo calls, a notes writer, and --drill kill:n2 in the middle. The balancer carries
# the dead node's listen streams on at other nodes: zero streams dropped, zero updates lost or
# duplicated. (Ports: balancer 15500, nodes 15501-15504, admin 15599; start.sh puts gossip at
# 15600.. and redis at 15690.)
source "$(dirname "$0")/../lib/common.sh"

export MCPGW_RUN="$MCPGW_TMP/run" MCPGW_BALANCER_PORT=15500
stop_cluster() { bash "$MCPGW_ROOT/deploy/local/start.sh" stop >/dev/null 2>&1 || true; }
trap 'rc=$?; stop_cluster; (exit $rc); mcpgw_cleanup' EXIT
bash "$MCPGW_ROOT/deploy/local/start.sh" >"$MCPGW_TMP/start.log" 2>&1 ||
    { cat "$MCPGW_TMP/start.log"; fail "the start command failed"; }
grep -q "MCP URL: http://127.0.0.1:15500/mcp" "$MCPGW_TMP/start.log" || fail "no MCP URL printed"

json="$MCPGW_TMP/drill-2026.json"
"$MCPGW_BUILD/loadgen/mcpgw-loadgen" --url http://127.0.0.1:15500/mcp --protocol 2026-07-28 \
    --sessions 600 --ramp 600/s --duration 8s --rate 300/s --get-streams --subscribe l26 \
    --notes-writer 5/s --workers 2 --source-addrs 127.0.0.2-127.0.0.3 --drill kill:n2@3s \
    --pidfile-dir "$MCPGW_RUN" --quiet --report-json "$json" >"$MCPGW_TMP/loadgen.log" 2>&1 ||
    { cat "$MCPGW_TMP/loadgen.log"; fail "mcpgw-loadgen exited with $?"; }
cat "$MCPGW_TMP/loadgen.log"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const d = r.drills[0], bad = [];
const want = (what, got, exp) => { if (got !== exp) bad.push(`${what}: ${got}, want ${exp}`); };
want("sessions.established", r.sessions.established, 600);
want("sessions.lost", r.sessions.lost, 0);
want("notifications.lost", r.notifications.lost, 0);
want("notifications.duplicated", r.notifications.duplicated, 0);
want("drill performed", d && d.performed, true);
if (!(d && d.affected_sessions > 0)) bad.push("the drill affected no listen stream");
want("drill lost_sessions", d && d.lost_sessions, 0);
want("drill recovered_sessions", d && d.recovered_sessions, d && d.affected_sessions);
if (!(r.notifications.received > 0 && r.notifications.received === r.notifications.expected))
    bad.push(`notifications received ${r.notifications.received} of ${r.notifications.expected}`);
if (!(r.requests.ok > 0)) bad.push("no stateless call succeeded");
if (r.requests.failed > r.requests.ok / 1000) bad.push(`${r.requests.failed} failed requests`);
want("streams.dropped", r.streams.dropped, 0);
want("streams.resumed", r.streams.resumed, d && d.affected_sessions);
if (bad.length) { console.error(bad.join("\n")); process.exit(1); }
console.log(`2026-07-28 kill drill: ${d.affected_sessions} listen streams affected, all carried on; recovery p99 ${d.recovery_ms.p99} ms; updates ${r.notifications.received}/${r.notifications.expected}; calls ${r.requests.ok}`);
' "$json" || fail "the 2026-07-28 kill drill report shows a problem"
pass "2026-07-28 loadgen kill drill: listen streams carried on, 0 updates lost or duplicated"
