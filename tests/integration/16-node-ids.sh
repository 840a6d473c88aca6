#!/usr/bin/env bash
# 16-node-ids.sh - JSON-RPC ids come back exactly or are refused, and request text is UTF-8
# (issue 20; docs/design.md, "JSON-RPC ids are exact"). With a Redis store, so that
# side-effecting calls record their results under mcpgw:{sid}:rq:<id>:
#   - ids at the ends of -2^63..2^64-1 are echoed byte for byte; ids beyond are refused with
#     -32600 naming no id (json-c clamped them, and the reply carried another id);
#   - two ids json-c read as one, or two long string ids with a common prefix, never share a
#     recorded result: each call runs and answers with its own id;
#   - notifications/cancelled cancels exactly the request it names (2^63 is not 2^63-1,
#     "a\u0000b" is not "a\u0000c");
#   - ill-formed UTF-8 gets -32700 and none of it comes back; a lone surrogate escape gets
#     -32600; error messages quoting a header or a cut name stay UTF-8.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

REDIS=18160
P=18161
URL=http://127.0.0.1:$P/mcp
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
req=$MCPGW_TMP/req.json
out=$MCPGW_TMP/resp.body

mcpgw_spawn redis redis-server --bind 127.0.0.1 --port "$REDIS" --save "" --appendonly no
for _ in $(seq 50); do redis-cli -p "$REDIS" ping >/dev/null 2>&1 && break; sleep 0.1; done
mcpgw_node n1 $P --store "redis://127.0.0.1:$REDIS"
mcpgw_wait_http "http://127.0.0.1:$P/readyz"

# post SID [CURL-ARGS...]: POST the bytes of $req; status in $code, raw body in $out.
post() {
    local sid=$1
    shift
    code=$(curl -sS -o "$out" -w '%{http_code}' --max-time 10 -H "$CT" -H "$ACC" -H "$PV" \
        ${sid:+-H "Mcp-Session-Id: $sid"} "$@" --data-binary @"$req" "$URL") ||
        fail "curl failed (exit $?)"
}

metric() { # metric NAME: the value of one sample on /metrics
    local text
    text=$(curl -sS --max-time 5 "http://127.0.0.1:$P/metrics") || fail "GET /metrics"
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { print $2; exit }' <<<"$text"
}

utf8_ok() { iconv -f UTF-8 -t UTF-8 "$out" >/dev/null 2>&1; }

# expect_exact WHAT ID-TEXT: a 200 answer whose raw body names exactly this id.
expect_exact() {
    [ "$code" = 200 ] || fail "$1: HTTP $code: $(head -c 300 "$out")"
    grep -Fq "\"id\":$2," "$out" || fail "$1: the answer does not carry id $2: $(head -c 300 "$out")"
}

# expect_refused WHAT: HTTP 400, JSON-RPC -32600, and no id in the error (the id that was read is
# not the one that was sent).
expect_refused() {
    [ "$code" = 400 ] || fail "$1: HTTP $code, want 400: $(head -c 300 "$out")"
    jq -e '.error.code == -32600' "$out" >/dev/null || fail "$1: not -32600: $(head -c 300 "$out")"
    grep -Fq '"id":null' "$out" || fail "$1: the error names an id: $(head -c 300 "$out")"
}

S=$(curl -sS -D - -o /dev/null --max-time 5 -H "$CT" -H "$ACC" --data-binary \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t16","version":"1"}}}' \
    "$URL" | tr -d '\r' | awk -F': ' 'tolower($1) == "mcp-session-id" { print $2 }')
[ -n "$S" ] || fail "initialize gave no Mcp-Session-Id"
printf '{"jsonrpc":"2.0","method":"notifications/initialized"}' >"$req"
post "$S"
[ "$code" = 202 ] || fail "notifications/initialized: HTTP $code"

echo "# ids at the ends of -2^63..2^64-1: echoed byte for byte"
for id in 18446744073709551615 9223372036854775808 9223372036854775807 -9223372036854775808 0; do
    printf '{"jsonrpc":"2.0","id":%s,"method":"ping"}' "$id" >"$req"
    post "$S"
    expect_exact "ping id $id" "$id"
    pass "ping id $id -> answered with id $id"
done

echo "# ids beyond the range: echoed exactly or refused with -32600 naming no id"
for id in 18446744073709551616 18446744073709551617 -9223372036854775809 \
    123456789012345678901234567890; do
    printf '{"jsonrpc":"2.0","id":%s,"method":"ping"}' "$id" >"$req"
    post "$S"
    if [ "$code" = 200 ]; then expect_exact "ping id $id" "$id"; else expect_refused "ping id $id"; fi
    pass "ping id $id -> $code $(head -c 120 "$out")"
done
for id in -01 00 -0.; do
    printf '{"jsonrpc":"2.0","id":%s,"method":"ping"}' "$id" >"$req"
    post "$S"
    [ "$code" = 400 ] && jq -e '.error.code == -32700 and .id == null' "$out" >/dev/null ||
        fail "id $id (not a JSON number): HTTP $code $(head -c 300 "$out")"
    pass "id $id (not a JSON number) -> 400 -32700"
done

echo "# recorded results: one per id, never shared"
# write ID-JSON TEXT: notes_write on mcpgw://notes/t16; $version gets the version it reports.
write() {
    printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"notes_write","arguments":{"name":"t16","text":"%s"}}}' \
        "$1" "$2" >"$req"
    post "$S"
    version=$(jq -r '.result.content[0].text // empty' "$out" 2>/dev/null | sed -n 's/.* is at version //p')
}
write 41 a
expect_exact "notes_write id 41" 41
v1=$version
write 41 a # the same request again: a retry (another request with id 41 runs: 37-node-review.mjs)
expect_exact "notes_write id 41 again" 41
[ "$version" = "$v1" ] || fail "a retry of id 41 ran again (version $version, first $v1)"
[ "$(metric mcpgw_node_retries_answered_total)" = 1 ] || fail "the retry of id 41 was not answered from its record"
pass "control: a retry of id 41 gets the recorded result (version $v1), so records are kept"

seen=" $v1 "
for id in 18446744073709551616 18446744073709551615 18446744073709551617 -9223372036854775809 \
    -9223372036854775808; do
    write "$id" "text of $id"
    if [ "$code" = 200 ]; then
        expect_exact "notes_write id $id" "$id"
        [ -n "$version" ] || fail "notes_write id $id: no version in $(head -c 300 "$out")"
        [[ "$seen" != *" $version "* ]] || fail "notes_write id $id was answered with another call's result (version $version)"
        seen="$seen$version "
        pass "notes_write id $id -> its own result (version $version)"
    else
        expect_refused "notes_write id $id"
        pass "notes_write id $id -> refused -32600"
    fi
done
long=$(head -c 400 /dev/zero | tr '\0' x)
for tail in 1 2; do
    write "\"$long$tail\"" "long $tail"
    [ "$code" = 200 ] && [ "$(jq -r .id "$out")" = "$long$tail" ] ||
        fail "notes_write with a 401-character id ending in $tail: HTTP $code $(head -c 200 "$out")"
    [[ "$seen" != *" $version "* ]] || fail "two 401-character ids with a common prefix shared one recorded result (version $version)"
    seen="$seen$version "
done
pass "two 401-character ids that differ in the last character: their own results"
[ "$(metric mcpgw_node_retries_answered_total)" = 1 ] ||
    fail "retries_answered_total is $(metric mcpgw_node_retries_answered_total): a call was answered from another id's record"
pass "versions$seen: one per call, the only answer from a record was the real retry"

echo "# notifications/cancelled cancels exactly the request it names"
# cancel_exactly CALL-ID WRONG-ID: a 30 s sleep under CALL-ID survives a cancel of WRONG-ID,
# then ends with a cancel of CALL-ID.
cancel_exactly() {
    local sleeper=$MCPGW_TMP/sleep.json cpid i
    printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":30000}}}' \
        "$1" >"$sleeper"
    curl -sS -o /dev/null -w '%{http_code}' --max-time 40 -H "$CT" -H "$ACC" -H "$PV" \
        -H "Mcp-Session-Id: $S" --data-binary @"$sleeper" "$URL" >"$MCPGW_TMP/sleep.code" &
    cpid=$!
    for i in $(seq 100); do [ "$(metric mcpgw_node_calls_inflight)" = 1 ] && break; sleep 0.05; done
    [ "$(metric mcpgw_node_calls_inflight)" = 1 ] || fail "the sleep under id $1 is not in flight"
    printf '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%s}}' "$2" >"$req"
    post "$S"
    [ "$code" = 202 ] || fail "cancel of $2: HTTP $code"
    # The node handles the cancel before it answers 202: the gauge is already up to date.
    [ "$(metric mcpgw_node_calls_inflight)" = 1 ] || fail "a cancel of $2 cancelled the call $1"
    printf '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%s}}' "$1" >"$req"
    post "$S"
    wait "$cpid" || fail "the sleeping request $1 failed"
    [ "$(metric mcpgw_node_calls_inflight)" = 0 ] || fail "a cancel of $1 did not cancel it"
    pass "a cancel of $2 left the call $1 running; a cancel of $1 ended it"
}
cancel_exactly 9223372036854775808 9223372036854775807
cancel_exactly 18446744073709551615 18446744073709551614
cancel_exactly '"a\u0000b"' '"a\u0000c"'

echo "# ill-formed UTF-8: -32700, and none of it comes back"
for bytes in '\xc0\xaf' '\xe0\x80\xaf' '\xed\xa0\x80' '\xf0\x8f\xbf\xbf' '\xf4\x90\x80\x80' \
    '\xf5\x80\x80\x80' '\xff' '\x80' '\xe2\x82'; do
    # shellcheck disable=SC2059 # the bytes are the format's \x escapes
    printf "{\"jsonrpc\":\"2.0\",\"id\":\"u$bytes\",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"$bytes\"}}}" >"$req"
    post "$S"
    [ "$code" = 400 ] || fail "UTF-8 $bytes: HTTP $code, want 400"
    jq -e '.error.code == -32700 or .error.code == -32600' "$out" >/dev/null ||
        fail "UTF-8 $bytes: not -32700/-32600: $(head -c 300 "$out")"
    grep -Fq '"id":null' "$out" || fail "UTF-8 $bytes: the error names an id"
    utf8_ok || fail "UTF-8 $bytes: the answer is not UTF-8 itself"
    pass "UTF-8 $bytes in the id and the text -> 400 $(jq -r .error.code "$out"), nothing echoed"
done

echo "# lone surrogate escapes: -32600"
printf '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x\\ud800y"}}}' >"$req"
post "$S"
[ "$code" = 400 ] && jq -e '.error.code == -32600 and .id == 7' "$out" >/dev/null ||
    fail "a lone \\ud800 in the text: HTTP $code $(head -c 300 "$out")"
LC_ALL=C grep -q $'\xef\xbf\xbd' "$out" && fail "a lone \\ud800 came back as U+FFFD"
pass "a lone \\ud800 in the text -> 400 -32600 naming id 7"
for id in '"\ud800"' '"\udc00"'; do
    printf '{"jsonrpc":"2.0","id":%s,"method":"ping"}' "$id" >"$req"
    post "$S"
    expect_refused "id $id"
    pass "id $id -> 400 -32600 naming no id"
done

echo "# control: well-formed UTF-8 and surrogate pairs are echoed"
printf '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo","arguments":{"text":"\xc3\xa9\xf0\x9f\x98\x80\\ud83d\\ude00\xef\xbf\xbf"}}}' >"$req"
post "$S"
[ "$code" = 200 ] && [ "$(jq -r '.result.content[0].text' "$out")" = $'\xc3\xa9\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xef\xbf\xbf' ] ||
    fail "echo of well-formed text: HTTP $code $(head -c 300 "$out")"
pass "echo of e-acute, an emoji raw and as an escaped pair, U+FFFF"

echo "# error messages quoting client bytes stay UTF-8"
printf '{"jsonrpc":"2.0","id":1,"method":"ping"}' >"$req"
post "" -H $'Host: \xff\xfeevil'
[ "$code" = 403 ] || fail "Host with obs-text: HTTP $code"
utf8_ok || fail "the 403 for a Host with obs-text is not UTF-8: $(head -c 200 "$out" | od -c | head -3)"
pass "Host: \\xff\\xfeevil -> 403, the message quoting it is UTF-8"
name="$(head -c 99 /dev/zero | tr '\0' n)"$'\xc3\xa9'
printf '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"%s","arguments":{}}}' "$name" >"$req"
post "$S"
[ "$code" = 200 ] && jq -e '.error.code == -32602' "$out" >/dev/null || fail "unknown tool: HTTP $code"
utf8_ok || fail "the error naming a tool cut inside a character is not UTF-8"
pass "an unknown tool name cut at 100 bytes inside a character -> -32602, the message is UTF-8"

# A clean stop, so that a sanitized build reports leaks; no sanitizer report.
kill -TERM "$PID_n1"
rc=0
wait "$PID_n1" || rc=$?
[ "$rc" = 0 ] || fail "the node exited with $rc on SIGTERM"
if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$MCPGW_TMP/n1.log"; then
    fail "sanitizer report in $MCPGW_TMP/n1.log"
fi
pass "the node stopped cleanly, no sanitizer report"
