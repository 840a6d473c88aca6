#!/usr/bin/env bash
# Operating the balancer: --help and --check; a config file; SIGHUP reloads the node list (a
# node added, one set draining) without dropping an open stream or restarting workers, and a
# broken file is refused while the old list stays; TCP keep-alive probes on client sockets
# (--tcp-keepalive) and on the node's; TLS termination (TLS 1.2+ only); SIGTERM drains: an
# in-flight request finishes, new connections are refused, the process exits.
source "$(dirname "$0")/../lib/common.sh"

P=18550   # balancer (plain); nodes n1..n3 on P+1..P+3
A=18559   # admin
PT=18555  # balancer with TLS
AT=18556
BIN=$MCPGW_BUILD/balancer/mcpgw-balancer
URL=http://127.0.0.1:$P/mcp
CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
PV='MCP-Protocol-Version: 2025-11-25'
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ops","version":"1"}}}'
INITED='{"jsonrpc":"2.0","method":"notifications/initialized"}'
INFO='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"node_info","arguments":{}}}'
conf=$MCPGW_TMP/balancer.conf
hdr=$MCPGW_TMP/h
body=$MCPGW_TMP/b

# --- --help and --check ---
"$BIN" --help >"$body" || fail "--help exited non-zero"
for f in --listen --nodes --workers --config --check --tls-cert --tls-key --admin --max-clients \
    --max-header-size --max-body-size --header-timeout --health-interval --health-rise --health-fall \
    --drain-timeout; do
    grep -q -- "$f" "$body" || fail "--help does not list $f"
done
pass "--help lists the flags"

write_conf() { # write_conf NODE-LINES...
    {
        echo "# written by 25-balancer-ops.sh"
        echo "listen 127.0.0.1:$P"
        echo "admin 127.0.0.1:$A"
        echo "workers 2"
        echo "health-interval 250ms"
        echo "drain-timeout 3s"
        echo "tcp-keepalive 45s"
        for l in "$@"; do echo "$l"; done
    } >"$conf"
}
write_conf "node n1 127.0.0.1:$((P + 1))" "node n2 127.0.0.1:$((P + 2))"
out=$("$BIN" --config "$conf" --check) || fail "--check refused a good file"
[[ "$out" == "configuration OK"*"2 nodes"* ]] || fail "--check said: $out"
pass "--check validates a good file: $out"
echo "bogus-setting 1" >>"$MCPGW_TMP/bad.conf"
if out=$("$BIN" --config "$MCPGW_TMP/bad.conf" --check 2>&1); then fail "--check accepted a bad file"; fi
[[ "$out" == *"bad.conf:1"*"bogus-setting"* ]] || fail "--check error does not name the line: $out"
pass "--check refuses a bad file, naming the line: $out"

# --- a running balancer from the file ---
for i in 1 2 3; do mcpgw_node n$i $((P + i)); done
mcpgw_spawn balancer "$BIN" --config "$conf"
mcpgw_wait_http "http://127.0.0.1:$A/healthz"
workers_before=$(pgrep -P "$PID_balancer" | sort | tr '\n' ' ')

new_session() { # sets $sid
    local code
    code=$(curl -sS -o "$body" -D "$hdr" -w '%{http_code}' --max-time 5 "$URL" -H "$CT" -H "$ACC" \
        -d "$INIT") || fail "initialize: curl failed"
    [ "$code" = 200 ] || fail "initialize: HTTP $code: $(head -c 200 "$body")"
    sid=$(grep -i '^mcp-session-id:' "$hdr" | cut -d' ' -f2 | tr -d '\r')
    curl -sS -o /dev/null --max-time 5 "$URL" -H "$CT" -H "$ACC" -H "$PV" -H "Mcp-Session-Id: $sid" \
        -d "$INITED" || fail "initialized: curl failed"
}
served_by() { # served_by SID: node_info through the balancer; prints the node id
    curl -sS --max-time 5 "$URL" -H "$CT" -H "$ACC" -H "$PV" -H "Mcp-Session-Id: $1" -d "$INFO" |
        jq -r '.result.structuredContent.node // "error"'
}

# A session on n1 with an open GET stream through the balancer.
for _ in $(seq 1 20); do
    new_session
    [ "${sid%%.*}" = n1 ] && break
done
[ "${sid%%.*}" = n1 ] || fail "no session landed on n1"
n1sid=$sid
curl -sN --max-time 60 "$URL" -H 'Accept: text/event-stream' -H "$PV" -H "Mcp-Session-Id: $n1sid" \
    >"$MCPGW_TMP/stream.out" 2>/dev/null &
stream=$!
sleep 0.3
kill -0 "$stream" || fail "the GET stream did not stay open"

# --- TCP keep-alive (issue 20: a client gone behind a NAT held its stream forever) ---
# keepalive_s PORT: the seconds left on the keep-alive timer of each established socket whose
# local port is PORT ("none" for a socket without one); ss prints e.g. timer:(keepalive,44sec,0).
keepalive_s() {
    ss -tnoH state established "( sport = :$1 )" |
        sed -E 's/.*timer:\(keepalive,([0-9]+)sec,.*/\1/; t; s/.*/none/'
}
ka=$(keepalive_s "$P" | tr '\n' ' ')
[ -n "$ka" ] || fail "no client connection of the balancer found by ss"
for t in $ka; do
    [ "$t" != none ] && [ "$t" -le 45 ] && [ "$t" -ge 30 ] ||
        fail "a client socket of the balancer has keep-alive timers '$ka', want 30-45 s (tcp-keepalive 45s)"
done
ka_node=$(keepalive_s $((P + 1)) | tr '\n' ' ')
[ -n "$ka_node" ] || fail "no connection to n1 found by ss"
for t in $ka_node; do
    [ "$t" != none ] && [ "$t" -le 60 ] ||
        fail "a socket n1 accepted has keep-alive timers '$ka_node', want at most 60 s (the node's default)"
done
pass "keep-alive probes: the balancer's client sockets in ${ka}s, n1's accepted sockets in ${ka_node}s"

# --- SIGHUP: add n3, set n1 draining ---
write_conf "node n1 127.0.0.1:$((P + 1)) drain" "node n2 127.0.0.1:$((P + 2))" "node n3 127.0.0.1:$((P + 3))"
kill -HUP "$PID_balancer"
sleep 0.8
metrics=$(curl -s "http://127.0.0.1:$A/metrics")
grep -q '^mcpgw_balancer_node_up{node="n3"} 1' <<<"$metrics" || fail "n3 not in the table after SIGHUP"
grep -q '^mcpgw_balancer_node_draining{node="n1"} 1' <<<"$metrics" || fail "n1 not draining after SIGHUP"
kill -0 "$stream" || fail "SIGHUP dropped the open GET stream"
[ "$(pgrep -P "$PID_balancer" | sort | tr '\n' ' ')" = "$workers_before" ] || fail "SIGHUP restarted workers"
declare -A landed
for _ in $(seq 1 12); do
    new_session
    landed[${sid%%.*}]=1
done
[ -z "${landed[n1]:-}" ] || fail "a new session landed on draining n1"
[ -n "${landed[n3]:-}" ] || fail "no new session landed on the added n3"
[ "$(served_by "$n1sid")" = n1 ] || fail "n1's session left its draining node"
pass "SIGHUP: n3 added, n1 draining (keeps its sessions, gets no new ones), stream and workers kept"

# A broken file: the reload is refused and the running list stays.
cp "$conf" "$MCPGW_TMP/good.conf"
echo "node n1 127.0.0.1:1 extra words here" >>"$conf"
kill -HUP "$PID_balancer"
sleep 0.5
grep -q 'reload failed' "$MCPGW_TMP/balancer.log" || fail "a broken reload was not reported"
new_session
[ "$(served_by "$sid")" != error ] || fail "the balancer stopped serving after a broken reload"
kill -0 "$stream" || fail "a broken reload dropped the stream"
pass "SIGHUP with a broken file: refused, the running node list stays"
cp "$MCPGW_TMP/good.conf" "$conf"

# --- TLS ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$MCPGW_TMP/key.pem" -out "$MCPGW_TMP/cert.pem" >/dev/null 2>&1 || fail "openssl req failed"
mcpgw_spawn balancer-tls "$BIN" --listen 127.0.0.1:$PT --admin 127.0.0.1:$AT --workers 1 \
    --nodes "n1=127.0.0.1:$((P + 1)),n2=127.0.0.1:$((P + 2))" \
    --tls-cert "$MCPGW_TMP/cert.pem" --tls-key "$MCPGW_TMP/key.pem"
mcpgw_wait_http "http://127.0.0.1:$AT/healthz"
code=$(curl -sk -o "$body" -w '%{http_code}' --max-time 5 "https://127.0.0.1:$PT/mcp" -H "$CT" -H "$ACC" \
    -d "$INIT") || fail "TLS initialize: curl failed"
[ "$code" = 200 ] || fail "TLS initialize: HTTP $code"
if curl -sk -o /dev/null --max-time 5 --tls-max 1.1 "https://127.0.0.1:$PT/healthz" 2>/dev/null; then
    fail "TLS 1.1 was accepted"
fi
for i in 1 2 3; do # keep-alive over TLS
    echo "url = \"https://127.0.0.1:$PT/healthz\""
done >"$MCPGW_TMP/curl.cfg"
curl -sk --max-time 5 -K "$MCPGW_TMP/curl.cfg" -o /dev/null -w '%{num_connects}\n' >"$body" ||
    fail "TLS keep-alive requests failed"
[ "$(paste -sd+ "$body" | bc)" = 1 ] || fail "TLS keep-alive used $(paste -sd+ "$body" | bc) connections"
if "$BIN" --listen 127.0.0.1:1 --nodes n1=127.0.0.1:2 --tls-cert "$MCPGW_TMP/cert.pem" \
    --tls-key /nonexistent.pem --check 2>"$body"; then fail "--check accepted a missing TLS key"; fi
grep -q nonexistent.pem "$body" || fail "TLS key error does not name the file: $(cat "$body")"
pass "TLS termination: initialize over TLS 1.2+, keep-alive, TLS 1.1 refused, bad key named by --check"

# --- --source-addrs: upstream connections come from the listed addresses, in turn ---
PS=18557
if "$BIN" --listen 127.0.0.1:$PS --nodes "n1=127.0.0.1:$((P + 1))" --source-addrs 192.0.2.1 \
    2>"$body"; then fail "a source address that is not local was accepted"; fi
grep -q "192.0.2.1" "$body" || fail "the foreign source address is not named: $(cat "$body")"
mcpgw_spawn balancer-src "$BIN" --listen 127.0.0.1:$PS --workers 1 --pool-size 8 \
    --nodes "n1=127.0.0.1:$((P + 1)),n2=127.0.0.1:$((P + 2))" --source-addrs 127.0.1.1-127.0.1.2
mcpgw_wait_http "http://127.0.0.1:$PS/healthz"
# Four sessions, each with an open GET stream: each stream holds its own upstream connection, so
# a node with two or more streams has connections from both sources (in turn).
streams=()
for i in 1 2 3 4; do
    URL=http://127.0.0.1:$PS/mcp new_session
    curl -sN --max-time 30 "http://127.0.0.1:$PS/mcp" -H 'Accept: text/event-stream' -H "$PV" \
        -H "Mcp-Session-Id: $sid" >/dev/null 2>&1 &
    streams+=($!)
done
sleep 0.5
# Every connection to n1/n2 from this balancer's worker comes from 127.0.1.1 or 127.0.1.2.
wpid=$(pgrep -P "$PID_balancer_src" | head -1)
[ -n "$wpid" ] || wpid=$PID_balancer_src
ss -tnpH state established "( dport = :$((P + 1)) or dport = :$((P + 2)) )" 2>/dev/null |
    grep "pid=$wpid," | awk '{print $3}' | sed 's/:[0-9]*$//' | sort | uniq -c >"$body"
[ -s "$body" ] || fail "no upstream connection of the --source-addrs balancer found by ss"
if grep -vqE ' 127\.0\.1\.[12]$' "$body"; then
    fail "upstream connections from other addresses: $(cat "$body")"
fi
[ "$(wc -l <"$body")" = 2 ] || fail "not both source addresses used: $(cat "$body")"
kill "${streams[@]}" 2>/dev/null
pass "--source-addrs: a foreign address refused at start; upstream connections from $(awk '{printf "%s x%s ", $2, $1}' "$body")"

# --- SIGTERM drains ---
sleepcall='{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":1500}}}'
new_session
curl -sS -o "$MCPGW_TMP/inflight.out" -w '%{http_code}' --max-time 10 "$URL" -H "$CT" -H "$ACC" -H "$PV" \
    -H "Mcp-Session-Id: $sid" -d "$sleepcall" >"$MCPGW_TMP/inflight.code" &
inflight=$!
sleep 0.3
t0=$(date +%s%N)
kill -TERM "$PID_balancer"
sleep 0.3
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$P/healthz"; then
    fail "a new connection was accepted while draining"
fi
wait "$inflight" || fail "the in-flight request failed during the drain"
[ "$(cat "$MCPGW_TMP/inflight.code")" = 200 ] || fail "in-flight request: HTTP $(cat "$MCPGW_TMP/inflight.code")"
grep -q 'slept 1500 ms' "$MCPGW_TMP/inflight.out" || fail "in-flight answer: $(cat "$MCPGW_TMP/inflight.out")"
for _ in $(seq 1 100); do kill -0 "$PID_balancer" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID_balancer" 2>/dev/null && fail "the balancer did not exit after draining"
wait "$PID_balancer" && rc=0 || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 0 ] || fail "the balancer exited with $rc after SIGTERM"
[ "$ms" -ge 2500 ] && [ "$ms" -le 6000 ] || fail "drain took ${ms} ms; the open stream should end it at the 3 s deadline"
kill -0 "$stream" 2>/dev/null && fail "the open GET stream outlived the drain deadline"
wait "$stream" 2>/dev/null || true
pass "SIGTERM: new connections refused, the in-flight request finished, the open stream was cut at the 3 s deadline, exit 0 after ${ms} ms"
