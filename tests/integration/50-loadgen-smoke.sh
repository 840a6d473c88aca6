#!/usr/bin/env bash
# The load generator against one node: 2,000 sessions, each with a held GET stream and a
# subscription to one note, echo calls at a fixed rate and a notes writer, spread over two
# worker processes and two source addresses. Asserts from the JSON report that every session
# was established and none was lost, that no call failed, and that every subscriber received
# every note version exactly once; and that the HTML report is self-contained.
# TODO(loadgen-kill-drill-smoke): once the balancer and the Redis store run as a local cluster,
# add the kill drill here (kill:NODE@Ns through the balancer) asserting 0 lost sessions.
source "$(dirname "$0")/../lib/common.sh"

LG="$MCPGW_BUILD/loadgen/mcpgw-loadgen"
mcpgw_node lg1 15010

# Not "| grep -q" under pipefail: grep quits at its match and --help may die of SIGPIPE.
grep -q -- '--notes-writer' <<<"$("$LG" --help)" || fail "--help does not list the flags"

json="$MCPGW_TMP/loadgen.json"
html="$MCPGW_TMP/loadgen.html"
"$LG" --url http://127.0.0.1:15010/mcp --sessions 2000 --ramp 2000/s --duration 4s \
    --rate 400/s --concurrency 16 --payload 256 --get-streams --subscribe smoke \
    --notes-writer 5/s --workers 2 --source-addrs 127.0.0.2-127.0.0.3 --quiet \
    --report-json "$json" --report-html "$html" >"$MCPGW_TMP/loadgen.log" 2>&1 ||
    { cat "$MCPGW_TMP/loadgen.log"; fail "mcpgw-loadgen exited with $?"; }
cat "$MCPGW_TMP/loadgen.log"

# node (installed with the test dependencies) reads the report; jq is not required.
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const bad = [];
const want = (what, got, exp) => { if (got !== exp) bad.push(`${what}: ${got}, want ${exp}`); };
want("sessions.established", r.sessions.established, 2000);
want("sessions.failed", r.sessions.failed, 0);
want("sessions.lost", r.sessions.lost, 0);
want("streams.opened", r.streams.opened, 2000);
want("streams.dropped", r.streams.dropped, 0);
want("requests.failed", r.requests.failed, 0);
want("notifications.subscribers", r.notifications.subscribers, 2000);
want("notifications.lost", r.notifications.lost, 0);
want("notifications.duplicated", r.notifications.duplicated, 0);
want("notifications.writes_failed", r.notifications.writes_failed, 0);
if (!(r.notifications.writes_ok >= 10)) bad.push(`only ${r.notifications.writes_ok} writes`);
const versions = r.notifications.last_version - r.notifications.first_version + 1;
want("notifications.expected", r.notifications.expected, versions * 2000);
want("notifications.received", r.notifications.received, r.notifications.expected);
if (!(r.requests.ok >= 1000)) bad.push(`only ${r.requests.ok} echo calls answered`);
if (!(r.requests.latency_ms.p50 > 0 && r.requests.latency_ms.max >= r.requests.latency_ms.p99))
    bad.push("latency percentiles are not ordered");
const n = r.requests.histogram_us.reduce((a, b) => a + b[2], 0);
want("histogram sample count", n, r.requests.latency_ms.count);
want("sessions_per_node[0].node", r.sessions_per_node[0] && r.sessions_per_node[0].node, "lg1");
if (!r.peak.processes.some(p => p.comm === "mcpgw-node" && p.tag === "lg1"))
    bad.push("the node is missing from the peak process list");
if (!(r.timeline.length >= 4)) bad.push("timeline too short");
if (bad.length) { console.error(bad.join("\n")); process.exit(1); }
' "$json" || fail "the JSON report shows a problem"
pass "2000 sessions with streams and subscriptions: 0 lost sessions, 0 lost notifications"

grep -q '<svg' "$html" || fail "the HTML report has no plots"
if grep -Eq '(src|href)="(https?:)?//' "$html"; then fail "the HTML report loads external assets"; fi
pass "self-contained HTML report"

# --check turns a lost session into exit status 3: kill the node under load and restart it,
# so that every session answers 404 afterwards.
mcpgw_node lg2 15011
# exec: the pid mcpgw_spawn records (and the cleanup kills) is the restarted node's own.
mcpgw_spawn lg2-again bash -c "sleep 2.5; exec '$MCPGW_BUILD/node/mcpgw-node' \
    --listen 127.0.0.1:15011 --node-id lg2 --store memory"
rc=0
"$LG" --url http://127.0.0.1:15011/mcp --sessions 100 --duration 5s --rate 200/s \
    --get-streams --drill kill:lg2@1s --check --quiet --report-json "$MCPGW_TMP/kill.json" \
    >"$MCPGW_TMP/kill.log" 2>&1 || rc=$?
cat "$MCPGW_TMP/kill.log"
[ "$rc" -eq 3 ] || fail "--check after a kill drill exited $rc, want 3"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const d = r.drills[0];
if (!d.performed || d.affected_sessions !== 100 || d.lost_sessions !== 100 || r.sessions.lost !== 100) {
    console.error(JSON.stringify(d)); process.exit(1);
}
if (!(d.error_window.start_s >= d.at_s)) { console.error("error window before the fault"); process.exit(1); }
' "$MCPGW_TMP/kill.json" || fail "the kill drill is not reported as 100 lost sessions"
pass "kill drill on a lone node: 100 of 100 sessions reported lost (404 after restart)"
