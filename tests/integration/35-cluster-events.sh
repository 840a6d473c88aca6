#!/usr/bin/env bash
# 35-cluster-events.sh - resource-update events in the shared store: one stream per URI,
# replayed per session (docs/replication.md, "Events and resumption"). With Redis and two nodes:
#   - a session that subscribes after a note was written resumes from "0.0-0" and gets only the
#     versions written after its subscription;
#   - a session subscribed to two notes, claimed by the other node, gets both notes' updates
#     merged in one increasing order;
#   - the event counter set back (a restore without it) does not break ids: the next update
#     still gets an id after every earlier one;
#   - after an unsubscribe, nothing more of that URI is replayed;
#   - a Last-Event-ID far beyond every event replays nothing and does not break the replay;
#   - an update published between the replay sent with a claim and the claiming node's
#     registration of the session still reaches the resumed stream.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

REDIS=16750 N1=16751 N2=16752
mcpgw_spawn redis redis-server --bind 127.0.0.1 --port "$REDIS" --save "" --appendonly no
for _ in $(seq 50); do redis-cli -p "$REDIS" ping >/dev/null 2>&1 && break; sleep 0.1; done
for i in 1 2; do
    port=$((16750 + i))
    mcpgw_node "n$i" "$port" --store "redis://127.0.0.1:$REDIS"
done
for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$N1/readyz" 2>/dev/null &&
        curl -fsS -o /dev/null "http://127.0.0.1:$N2/readyz" 2>/dev/null && break
    sleep 0.1
done

H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
    -H 'MCP-Protocol-Version: 2025-11-25')
init() { # init PORT -> session id
    local sid
    sid=$(curl -sS -D - -o /dev/null "${H[@]}" "http://127.0.0.1:$1/mcp" -d \
        '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t35","version":"1"}}}' |
        tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
    [ -n "$sid" ] || fail "initialize on :$1 gave no session id"
    curl -fsS -o /dev/null "${H[@]}" -H "Mcp-Session-Id: $sid" "http://127.0.0.1:$1/mcp" \
        -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    echo "$sid"
}
rpc() { # rpc PORT SID JSON -> response body
    curl -fsS "${H[@]}" -H "Mcp-Session-Id: $2" "http://127.0.0.1:$1/mcp" -d "$3"
}
write() { # write NAME TEXT (through the writer session on n1)
    rpc "$N1" "$W" "{\"jsonrpc\":\"2.0\",\"id\":$RANDOM,\"method\":\"tools/call\",\"params\":{\"name\":\"notes_write\",\"arguments\":{\"name\":\"$1\",\"text\":\"$2\"}}}" |
        grep -q 'is at version' || fail "notes_write $1 failed"
}
sub() { # sub PORT SID URI on|off
    local m=resources/subscribe
    [ "$4" = off ] && m=resources/unsubscribe
    rpc "$1" "$2" "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"$m\",\"params\":{\"uri\":\"$3\"}}" |
        grep -q '"result"' || fail "$m $3 failed"
}
# events PORT SID LAST-EVENT-ID [SECONDS] -> "id uri version" per resource update (the stream is
# held for SECONDS, 1 by default; the notes list's changes, events of their own, are left out)
events() {
    curl -sS --max-time "${4:-1}" -H 'Accept: text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' \
        -H "Mcp-Session-Id: $2" -H "Last-Event-ID: $3" "http://127.0.0.1:$1/mcp" 2>/dev/null |
        tr -d '\r' | awk '
            /^id: / { id = substr($0, 5) }
            /^data: \{/ && /resources\/updated/ {
                match($0, /"uri":"[^"]*"/); u = substr($0, RSTART + 7, RLENGTH - 8)
                match($0, /"io.mcpgw\/version":[0-9]+/); v = substr($0, RSTART + 19, RLENGTH - 19)
                print id, u, v
            }' || true
}

W=$(init "$N1")
A=$(init "$N1")
for v in 1 2 3; do write alpha "a$v"; done
sub "$N1" "$A" mcpgw://notes/alpha on
write alpha a4
write alpha a5
got=$(events "$N1" "$A" 0.0-0 | awk '{print $3}' | tr '\n' ' ')
[ "$got" = "4 5 " ] || fail "a session subscribed after version 3 resumed from 0.0-0 got versions '$got', want '4 5 '"
pass "a late subscriber replays only what was written after its subscription (versions $got)"

# Two notes, interleaved; the session is then claimed by n2 and resumes from the start.
sub "$N1" "$A" mcpgw://notes/beta on
write beta b1
write alpha a6
write beta b2
out=$(events "$N2" "$A" 0.0-0)
got=$(echo "$out" | awk '{print $2 "#" $3}' | sed 's|mcpgw://notes/||' | tr '\n' ' ')
[ "$got" = "alpha#4 alpha#5 beta#1 alpha#6 beta#2 " ] ||
    fail "merged replay on n2 gave '$got', want 'alpha#4 alpha#5 beta#1 alpha#6 beta#2 '"
echo "$out" | awk '{split($1, a, /[.-]/); if (a[2] + 0 <= prev) exit 1; prev = a[2] + 0}' ||
    fail "replayed ids are not increasing: $out"
owner=$(redis-cli -p "$REDIS" hget "mcpgw:{$A}:s" owner)
[ "$owner" = n2 ] || fail "the resume on n2 did not claim the session (owner $owner)"
pass "two URIs' updates merged in one increasing order after a claim ($got)"

# The counter set back: the next id must still follow the last one of the stream.
last=$(echo "$out" | tail -n 1 | awk '{print $1}')
redis-cli -p "$REDIS" set mcpgw:evseq 1 >/dev/null
write beta b3
got=$(events "$N2" "$A" "$last")
[ "$(echo "$got" | awk '{print $2 "#" $3}')" = "mcpgw://notes/beta#3" ] ||
    fail "after the counter went back, resuming from $last gave '$got', want beta version 3"
pass "a counter set back continues after the stream ($last -> $(echo "$got" | awk '{print $1}'))"

# Unsubscribed: alpha's later versions are not replayed, beta's are.
last=$(echo "$got" | awk '{print $1}')
sub "$N2" "$A" mcpgw://notes/alpha off
write alpha a7
write beta b4
got=$(events "$N2" "$A" "$last" | awk '{print $2 "#" $3}' | sed 's|mcpgw://notes/||' | tr '\n' ' ')
[ "$got" = "beta#4 " ] || fail "after unsubscribing alpha, the replay gave '$got', want 'beta#4 '"
pass "after an unsubscribe only the remaining subscription is replayed"

# A Last-Event-ID far beyond any event (a counter Lua cannot print as an integer) replays
# nothing and the stream stays open: the replay must not fail on it.
rc=0
curl -sS --max-time 1 -o /dev/null -H 'Accept: text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' \
    -H "Mcp-Session-Id: $A" -H "Last-Event-ID: 0.999999999999999999-0" "http://127.0.0.1:$N2/mcp" || rc=$?
[ "$rc" = 28 ] || fail "a resume from a far-future id ended at once (curl exit $rc), want a stream held open"
grep -q "resume of $A failed" "$MCPGW_TMP/n2.log" && fail "the far-future resume failed in the store"
pass "a resume from a far-future id replays nothing and stays open"

# A resume on a node that must claim the session sends the claim and the replay together: the
# replay reads the streams before that node has registered the session. An update published
# after the replay that the node has fanned out before the claim's answer arrives reached no
# stream of the session: the node must catch it up. To open that window: with writes paused in
# Redis, the claim from n2, then 500 writes of other clients, then the update from n1 queue up.
# Resumed, Redis runs them in that order and answers the clients it served last first: the
# update reaches n2 first, the claim's answer 500 replies later.
R=$(init "$N1")
sub "$N1" "$R" mcpgw://notes/race on
write race r1
seq=$(redis-cli -p "$REDIS" get mcpgw:evseq)
redis-cli -p "$REDIS" client pause 1500 write >/dev/null
events "$N2" "$R" "0.$seq-0" 4 >"$MCPGW_TMP/race.txt" &
reader=$!
sleep 0.2
redis-benchmark -p "$REDIS" -c 500 -n 500 -t set -q >/dev/null 2>&1 &
sleep 0.5
write race r2
wait "$reader"
got=$(awk '$2 == "mcpgw://notes/race" {print $3}' "$MCPGW_TMP/race.txt" | tr '\n' ' ')
[ "$got" = "2 " ] ||
    fail "the stream resumed on n2 (claimed with its replay) got versions '$got', want '2 ': an update published between the replay and the claim was lost"
owner=$(redis-cli -p "$REDIS" hget "mcpgw:{$R}:s" owner)
[ "$owner" = n2 ] || fail "the resume on n2 did not claim the session (owner $owner)"
pass "an update published between a claim's replay and the session's registration reaches the stream"
