#!/usr/bin/env bash
# The load generator against a node that requires authentication: --header carries the bearer
# token on every request (initialize, calls, GET streams, DELETE), so every session is
# established and every call succeeds; without it every session is refused with 401 and --check
# says so; a header the load generator sets itself is refused up front. Port 14310.
source "$(dirname "$0")/../lib/common.sh"

LG="$MCPGW_BUILD/loadgen/mcpgw-loadgen"
KEY=lg-$(openssl rand -hex 24)
printf 'loadgen %s\n' "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" >"$MCPGW_TMP/apikeys"
mcpgw_node auth1 14310 --auth apikey --auth-apikeys "$MCPGW_TMP/apikeys" \
    --auth-resource http://127.0.0.1:14310/mcp

run() { # run JSON [flags...]: a short run with --check; returns its exit status
    local json=$1
    shift
    "$LG" --url http://127.0.0.1:14310/mcp --sessions 50 --ramp 500/s --duration 2s \
        --rate 100/s --concurrency 4 --get-streams --quiet --check --setup-window 5s \
        --grace 1s --report-json "$json" "$@" >"$json.log" 2>&1
}

run "$MCPGW_TMP/with.json" --header "Authorization: Bearer $KEY" ||
    { cat "$MCPGW_TMP/with.json.log"; fail "the run with the token failed (exit $?)"; }
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (r.sessions.established !== 50 || r.streams.opened !== 50 || r.requests.failed !== 0 ||
    !(r.requests.ok >= 100))
  { console.error(JSON.stringify({s: r.sessions, st: r.streams, rq: r.requests})); process.exit(1); }
' "$MCPGW_TMP/with.json" || fail "with the token: not every session, stream and call succeeded"
pass "with --header Authorization every session, GET stream and call succeeded"

set +e
run "$MCPGW_TMP/without.json"
rc=$?
set -e
[ "$rc" = 3 ] || { cat "$MCPGW_TMP/without.json.log"; fail "without the token: exit $rc, want 3"; }
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (r.sessions.established !== 0) { console.error(JSON.stringify(r.sessions)); process.exit(1); }
' "$MCPGW_TMP/without.json" || fail "without the token some session was established"
grep -q 'reason=no_token\|"no_token"\|no_token' "$MCPGW_TMP/auth1.log" ||
    fail "the node did not log the refusals as no_token"
pass "without it every session was refused (401, audit-logged) and --check exited 3"

set +e
out=$("$LG" --url http://127.0.0.1:14310/mcp --header "Mcp-Session-Id: x" 2>&1)
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "set by the load generator itself" <<<"$out" ||
    fail "--header Mcp-Session-Id was not refused: $rc $out"
pass "a header the load generator sets itself is refused"
