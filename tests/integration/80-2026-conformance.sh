#!/usr/bin/env bash
# 80-2026-conformance.sh - protocol revision 2026-07-28 on one node, beside the session era:
# the official conformance suite 0.2.0-alpha.12 with --requirements 2026-07-28 (every scenario
# passes, the tasks extension's included) and --requirements 2025-11-25 (all), and
# what the suite does not probe: a sealed requestState is refused once expired, on another
# request, or under another cluster's key, and continues on the node that did not issue it when
# both hold the same key ring, and only for the principal it was issued to; GET without a
# session is 405 for a 2026-07-28 client.
# mcpgw-timeout: 900
source "$(dirname "$0")/../lib/common.sh"
CONF="$MCPGW_NPM/node_modules/conformance-next/dist/index.js"
[ -f "$CONF" ] || { echo "SKIP: conformance 0.2.0-alpha.12 is not installed"; exit 77; }

openssl rand -hex 32 >"$MCPGW_TMP/state.keys"
openssl rand -hex 32 >"$MCPGW_TMP/other.keys"
mcpgw_node n1 17710 --state-keyring "$MCPGW_TMP/state.keys"
mcpgw_node n2 17711 --state-keyring "$MCPGW_TMP/state.keys" --state-ttl 4s
mcpgw_node n3 17712 --state-keyring "$MCPGW_TMP/other.keys"
# n4 authenticates with API keys: a requestState is bound to the principal it was issued to.
KEY_A=key-a-$(openssl rand -hex 16) KEY_B=key-b-$(openssl rand -hex 16)
printf 'alice %s\nbob %s\n' "$(printf %s "$KEY_A" | sha256sum | cut -d' ' -f1)" \
    "$(printf %s "$KEY_B" | sha256sum | cut -d' ' -f1)" >"$MCPGW_TMP/apikeys"
mcpgw_node n4 17713 --state-keyring "$MCPGW_TMP/state.keys" --auth apikey \
    --auth-apikeys "$MCPGW_TMP/apikeys" --auth-resource http://127.0.0.1:17713/mcp

# run_suite REVISION: the suite against n1; prints its summary; fails on any failed scenario.
run_suite() {
    local out="$MCPGW_TMP/conformance-$1.out" failed
    "$MCPGW_NODE22" "$CONF" server --url http://localhost:17710/mcp --requirements "$1" \
        >"$out" 2>&1 || true
    sed -n '/=== SUMMARY ===/,/^Total/p' "$out"
    grep -q '^Total:' "$out" || { cat "$out"; fail "the $1 suite did not finish"; }
    failed=$(sed -n '/=== SUMMARY ===/,/^Total/p' "$out" | grep '^✗' || true)
    [ -z "$failed" ] || fail "--requirements $1: $failed"
}
run_suite 2026-07-28
grep -q '^✓ server-stateless: [1-9]' "$MCPGW_TMP/conformance-2026-07-28.out" || fail "server-stateless did not run"
grep -q '^✓ input-required-result-tampered-state: [1-9]' "$MCPGW_TMP/conformance-2026-07-28.out" ||
    fail "the MRTR scenarios did not run"
for s in tasks-lifecycle tasks-mrtr-input tasks-dispatch-and-envelope tasks-mrtr-composition; do
    grep -q "^✓ $s: [1-9]" "$MCPGW_TMP/conformance-2026-07-28.out" || fail "scenario $s did not run"
done
# The suite's SHOULD checks for tools and prompts list changes on a listen stream run (through
# the fixtures test_trigger_tool_change / test_trigger_prompt_change) and pass: not skipped.
"$MCPGW_NODE22" "$CONF" server --url http://localhost:17710/mcp --scenario server-stateless \
    >"$MCPGW_TMP/stateless.out" 2>&1 || true
for c in tools prompts; do
    grep -Eq "sep-2575-server-sends-$c-list-changed-on-subscription *\].*SUCCESS" \
        "$MCPGW_TMP/stateless.out" || fail "the $c list-change check on a listen stream did not pass"
done
pass "the listen stream's tools and prompts list-change checks pass"
run_suite 2025-11-25
pass_26=$(sed -n '/=== SUMMARY ===/,/^Total/p' "$MCPGW_TMP/conformance-2026-07-28.out" | grep -c '^✓')
pass_25=$(sed -n '/=== SUMMARY ===/,/^Total/p' "$MCPGW_TMP/conformance-2025-11-25.out" | grep -c '^✓')

# post PORT BODY: one 2026-07-28 request (headers mirror the body); prints the response body.
post() {
    local method name
    method=$(jq -r .method <<<"$2")
    name=$(jq -r '.params.name // .params.uri // empty' <<<"$2")
    curl -sS -X POST "http://127.0.0.1:$1/mcp" -H 'Content-Type: application/json' \
        ${TOKEN:+-H "Authorization: Bearer $TOKEN"} \
        -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
        -H "Mcp-Method: $method" ${name:+-H "Mcp-Name: $name"} --data-binary "$2"
}
META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}'
call() { # call PORT TOOL [EXTRA-PARAMS]
    post "$1" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"$2\",\"arguments\":{},$META${3:+,$3}}}"
}
ANSWER='"inputResponses":{"confirm":{"action":"accept","content":{"ok":true}}}'

r=$(call 17710 test_input_required_result_request_state)
state=$(jq -r .result.requestState <<<"$r")
[ "$(jq -r .result.resultType <<<"$r")" = input_required ] && [ -n "$state" ] && [ "$state" != null ] ||
    fail "round 1 did not answer input_required with a requestState: $r"
r=$(call 17710 test_input_required_result_request_state "$ANSWER,\"requestState\":\"$state\"")
jq -e '.result.resultType == "complete" and (.result.content[0].text | contains("state-ok"))' <<<"$r" >/dev/null ||
    fail "the retry with the sealed state did not complete: $r"
pass "a sealed requestState continues its round"

r=$(call 17712 test_input_required_result_request_state "$ANSWER,\"requestState\":\"$state\"")
jq -e '.error.code == -32602 and (.error.message | contains("integrity"))' <<<"$r" >/dev/null ||
    fail "a node with another key ring took the state: $r"
r=$(call 17710 test_input_required_result_tampered_state "$ANSWER,\"requestState\":\"$state\"")
jq -e '.error.code == -32602' <<<"$r" >/dev/null || fail "the state of one tool opened for another: $r"
pass "requestState refused under another key ring and on another request"

r=$(call 17711 test_input_required_result_request_state)
state2=$(jq -r .result.requestState <<<"$r")
r=$(call 17711 test_input_required_result_request_state "$ANSWER,\"requestState\":\"$state2\"")
jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null || fail "n2 did not continue at once: $r"
sleep 4.5 # the state's lifetime (--state-ttl 4s: room for a loaded machine) must pass: only the clock
r=$(call 17711 test_input_required_result_request_state "$ANSWER,\"requestState\":\"$state2\"")
jq -e '.error.code == -32602 and (.error.message | contains("expired"))' <<<"$r" >/dev/null ||
    fail "an expired requestState was not refused as expired: $r"
pass "an expired requestState is refused"

r=$(TOKEN=$KEY_A call 17713 test_input_required_result_request_state)
state3=$(jq -r .result.requestState <<<"$r")
[ -n "$state3" ] && [ "$state3" != null ] || fail "alice's round 1 gave no requestState: $r"
r=$(TOKEN=$KEY_B call 17713 test_input_required_result_request_state "$ANSWER,\"requestState\":\"$state3\"")
jq -e '.error.code == -32602' <<<"$r" >/dev/null || fail "bob continued alice's round: $r"
r=$(TOKEN=$KEY_A call 17713 test_input_required_result_request_state "$ANSWER,\"requestState\":\"$state3\"")
jq -e '.result.resultType == "complete"' <<<"$r" >/dev/null || fail "alice could not continue her own round: $r"
pass "a requestState continues only for the principal it was issued to"

code=$(curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:17710/mcp \
    -H 'Accept: text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28')
[ "$code" = 405 ] || fail "GET without a session from a 2026-07-28 client: $code, expected 405"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE http://127.0.0.1:17710/mcp \
    -H 'MCP-Protocol-Version: 2026-07-28')
[ "$code" = 405 ] || fail "DELETE without a session from a 2026-07-28 client: $code, expected 405"
# A clean stop, so that a sanitized build (MCPGW_BUILD=build-asan) reports leaks.
for n in n1 n2 n3 n4; do
    pid_var=PID_$n
    kill -TERM "${!pid_var}"
    rc=0
    wait "${!pid_var}" || rc=$?
    [ "$rc" = 0 ] || fail "$n exited with $rc on SIGTERM"
    if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$MCPGW_TMP/$n.log"; then
        fail "sanitizer report in $MCPGW_TMP/$n.log"
    fi
done
pass "conformance 2026-07-28: $pass_26 scenarios passed (the tasks extension's included); 2025-11-25: $pass_25 passed"
