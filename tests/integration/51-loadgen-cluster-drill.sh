#!/usr/bin/env bash
# Load-generator smoke through the replicated cluster (the README's start command: redis, 4
# nodes, balancer): 2,000 sessions with GET streams and subscriptions, a notes writer, and
# --drill kill:n2 in the middle, then the same with --drill drain:n3. Zero sessions and zero
# notifications may be lost.
source "$(dirname "$0")/../lib/common.sh"

export MCPGW_RUN="$MCPGW_TMP/run" MCPGW_BALANCER_PORT=15100
stop_cluster() { bash "$MCPGW_ROOT/deploy/local/start.sh" stop >/dev/null 2>&1 || true; }
trap 'rc=$?; stop_cluster; (exit $rc); mcpgw_cleanup' EXIT
bash "$MCPGW_ROOT/deploy/local/start.sh" >"$MCPGW_TMP/start.log" 2>&1 ||
    { cat "$MCPGW_TMP/start.log"; fail "the start command failed"; }
grep -q "MCP URL: http://127.0.0.1:15100/mcp" "$MCPGW_TMP/start.log" || fail "no MCP URL printed"
sleep 1

# One run of the load generator with drill $1 (named $2 in messages), checked from its JSON report.
drill() {
    local spec=$1 what=$2 json="$MCPGW_TMP/drill-$2.json"
    "$MCPGW_BUILD/loadgen/mcpgw-loadgen" --url http://127.0.0.1:15100/mcp --sessions 2000 \
        --ramp 1000/s --duration 8s --rate 300/s --get-streams --subscribe cl --notes-writer 5/s \
        --workers 2 --source-addrs 127.0.0.2-127.0.0.3 --drill "$spec" --pidfile-dir "$MCPGW_RUN" \
        --quiet --report-json "$json" >"$MCPGW_TMP/loadgen-$what.log" 2>&1 ||
        { cat "$MCPGW_TMP/loadgen-$what.log"; fail "mcpgw-loadgen exited with $?"; }
    cat "$MCPGW_TMP/loadgen-$what.log"
    node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const d = r.drills[0], bad = [];
    const want = (what, got, exp) => { if (got !== exp) bad.push(`${what}: ${got}, want ${exp}`); };
    want("sessions.established", r.sessions.established, 2000);
    want("sessions.lost", r.sessions.lost, 0);
    want("notifications.lost", r.notifications.lost, 0);
    want("notifications.duplicated", r.notifications.duplicated, 0);
    want("drill performed", d && d.performed, true);
    if (!(d && d.affected_sessions > 0)) bad.push("the drill affected no session");
    want("drill lost_sessions", d && d.lost_sessions, 0);
    want("drill recovered_sessions", d && d.recovered_sessions, d && d.affected_sessions);
    if (!(r.notifications.received > 0 && r.notifications.received === r.notifications.expected))
        bad.push(`notifications received ${r.notifications.received} of ${r.notifications.expected}`);
    if (r.requests.failed > r.requests.ok / 1000) bad.push(`${r.requests.failed} failed requests`);
    // A killed node: the balancer carries each of its streams on at another node (a seam
    // comment, no break), so no stream drops and every affected session saw one such seam.
    if (process.argv[2] === "kill") {
        want("streams.dropped", r.streams.dropped, 0);
        want("streams.resumed", r.streams.resumed, d && d.affected_sessions);
    }
    if (bad.length) { console.error(bad.join("\n")); process.exit(1); }
    console.log(`${process.argv[2]} drill: ${d.affected_sessions} sessions affected, all recovered; error window ${d.error_window.duration_ms} ms; recovery p99 ${d.recovery_ms.p99} ms; notifications ${r.notifications.received}/${r.notifications.expected}`);
    ' "$json" "$what" || fail "the $what drill report shows a problem"
}

drill kill:n2@3s kill
pass "kill drill through the cluster: 0 sessions lost, 0 notifications lost or duplicated"
# A draining node ends its streams cleanly: the load generator resumes each on the connection
# it kept (as the SDK's fetch does), on another node.
drill drain:n3@3s drain
pass "drain drill through the cluster: 0 sessions lost, 0 notifications lost or duplicated"
