#!/usr/bin/env bash
# 43-gossip-auth.sh - gossip trusts only the cluster (issue 23): real mcpgw-node processes and a
# balancer on 127.0.0.1:17300-17399.
#  1. Control: three nodes without a key ring; a version-1 "n2 is dead" datagram forged by
#     another process (tests/tools/gossip_meddler.c) makes them log n2 dead. So the forgery works.
#  2. The same three nodes and a balancer with a key ring: the same forgery, and an authentic
#     sealed datagram captured on lo and sent again, make nobody mark anyone suspect or dead;
#     /metrics of the nodes and the balancer count them (wrong_version, replayed).
#  3. A key rotation done live with SIGHUP (install the new key everywhere, make it primary
#     everywhere, remove the old one): nobody is suspected at any point, nothing is refused.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

NODE="$MCPGW_BUILD/node/mcpgw-node"
BAL="$MCPGW_BUILD/balancer/mcpgw-balancer"
MEDDLER="$MCPGW_BUILD/tests/tools/gossip-meddler"
for b in "$NODE" "$BAL" "$MEDDLER"; do [ -x "$b" ] || fail "$b not built"; done
GPORT=17300 # node i gossips on GPORT+i, the balancer on GPORT+9
HPORT=17310 # node i serves HTTP on HPORT+i; the balancer listens on 17320, admin 17321
OLD=$(openssl rand -hex 32)
NEW=$(openssl rand -base64 32)
SEEDS="127.0.0.1:$((GPORT + 1)),127.0.0.1:$((GPORT + 2)),127.0.0.1:$((GPORT + 3))"

start_node() { # start_node I RUN [flags]
    local i=$1 run=$2
    shift 2
    mcpgw_spawn "n$i-$run" "$NODE" --listen "127.0.0.1:$((HPORT + i))" --node-id "n$i" \
        --store memory --gossip-bind "127.0.0.1:$((GPORT + i))" --gossip-seeds "$SEEDS" "$@"
    eval "PID_n$i=${_mcpgw_pids[-1]}"
    mcpgw_wait_http "http://127.0.0.1:$((HPORT + i))/healthz"
}

metric() { # metric PORT NAME_AND_LABELS: the value, 0 when absent
    curl -fsS "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k {print $2; f = 1} END {if (!f) print 0}'
}

wait_for() { # wait_for WHAT SECONDS CMD...: poll CMD every 50 ms
    local what=$1 t=$2 i
    shift 2
    for ((i = 0; i < t * 20; i++)); do "$@" && return 0; sleep 0.05; done
    fail "$what (not within ${t}s)"
}

# Every node's log says the other two joined, and no node logged a suspicion or death since.
all_joined() { # all_joined RUN
    local i j
    for i in 1 2 3; do
        for j in 1 2 3; do
            [ "$i" = "$j" ] && continue
            grep -q "member n$j joined as alive" "$MCPGW_TMP/n$i-$1.log" || return 1
        done
    done
}

bad_news() { # bad_news LOG...: lines where a member became suspect or dead
    grep -hE -- "-> (suspect|dead)|node n[0-9] is (suspect|dead)" "$@" || true
}

# ---- 1. control: without keys a forged datagram kills ----
for i in 1 2 3; do start_node "$i" plain; done
wait_for "three unauthenticated nodes converge" 10 all_joined plain
grep -q "no key ring: datagrams are neither authenticated" "$MCPGW_TMP/n1-plain.log" ||
    fail "a node without a key ring did not warn at start"
"$MEDDLER" forge $((GPORT + 1)) n3 n2
wait_for "the forged death reaches n1" 5 grep -q "member n2 alive -> dead" "$MCPGW_TMP/n1-plain.log"
pass "without a key ring, a datagram forged by another process makes n1 mark n2 dead"
for i in 1 2 3; do
    eval "pid=\$PID_n$i"
    kill -INT "$pid" # SIGINT: leave the cluster and exit at once
    wait "$pid" || true
done

# ---- 2. with a key ring: forged and replayed datagrams are refused and counted ----
for i in 1 2 3 9; do
    printf '# the cluster gossip key (test)\n%s\n' "$OLD" >"$MCPGW_TMP/ring$i"
    chmod 600 "$MCPGW_TMP/ring$i"
done
for i in 1 2 3; do start_node "$i" keyed --gossip-keyring "$MCPGW_TMP/ring$i"; done
mcpgw_spawn bal "$BAL" --listen 127.0.0.1:17320 --admin 127.0.0.1:17321 --workers 1 \
    --gossip-bind "127.0.0.1:$((GPORT + 9))" --gossip-seeds "$SEEDS" \
    --gossip-keyring "$MCPGW_TMP/ring9"
PID_bal=${_mcpgw_pids[-1]}
mcpgw_wait_http "http://127.0.0.1:17321/healthz"
wait_for "three keyed nodes converge" 10 all_joined keyed
bal_sees_all() { [ "$(grep -cE "gossip: node n[123] is alive" "$MCPGW_TMP/bal.log")" -ge 3 ]; }
wait_for "the balancer sees the three nodes" 10 bal_sees_all
LOGS=("$MCPGW_TMP"/n?-keyed.log "$MCPGW_TMP/bal.log")
grep -q 'mcpgw_gossip_keys{node="n1"} 1' <(curl -fsS http://127.0.0.1:$((HPORT + 1))/metrics) ||
    fail "n1's /metrics does not show one gossip key"

for i in 1 2 3; do "$MEDDLER" forge $((GPORT + i)) n3 n2; done
"$MEDDLER" forge $((GPORT + 9)) n3 n2
refused_v1() { # every member counted the forged datagram
    local i
    for i in 1 2 3; do
        [ "$(metric $((HPORT + i)) "mcpgw_gossip_datagrams_refused_total{node=\"n$i\",reason=\"wrong_version\"}")" -ge 1 ] || return 1
    done
    [ "$(metric 17321 'mcpgw_gossip_datagrams_refused_total{reason="wrong_version"}')" -ge 1 ]
}
wait_for "every member counts the forged version-1 datagram as wrong_version" 5 refused_v1
pass "the forged version-1 death is refused by the three nodes and the balancer, and counted"

# An authentic sealed datagram to n2, captured on lo and sent to n2 three more times.
"$MEDDLER" replay $((GPORT + 2)) 3 5000 || fail "could not capture and replay a sealed datagram"
replayed() { [ "$(metric $((HPORT + 2)) 'mcpgw_gossip_datagrams_refused_total{node="n2",reason="replayed"}')" -ge 3 ]; }
wait_for "n2 counts the three copies as replayed" 5 replayed
pass "a captured authentic datagram sent again is refused as replayed, each copy counted"

# Let a few protocol periods pass (n1 sends a datagram a period or more) before judging.
sent0=$(metric $((HPORT + 1)) 'mcpgw_gossip_datagrams_sent_total{node="n1"}')
periods_passed() { [ "$(metric $((HPORT + 1)) 'mcpgw_gossip_datagrams_sent_total{node="n1"}')" -ge $((sent0 + 30)) ]; }
wait_for "n1 keeps gossiping" 10 periods_passed
news=$(bad_news "${LOGS[@]}")
[ -z "$news" ] || fail "a member was marked suspect or dead: $news"
for i in 1 2 3; do
    [ "$(metric $((HPORT + i)) "mcpgw_gossip_datagrams_refused_total{node=\"n$i\",reason=\"forged\"}")" -eq 0 ] ||
        fail "n$i counted forged datagrams in a healthy cluster"
done
pass "nobody marked anyone suspect or dead"

# ---- 3. live rotation with SIGHUP ----
members=(n1 n2 n3 bal)
rings=(1 2 3 9)
reload_member() { # reload_member K CONTENT: write member K's ring, SIGHUP it, wait until applied
    local k=$1 content=$2 pid port before
    printf '%s\n' "$content" >"$MCPGW_TMP/ring${rings[k]}"
    eval "pid=\$PID_${members[k]}"
    if [ "${members[k]}" = bal ]; then
        port=17321 key='mcpgw_gossip_keyring_reloads_total'
    else
        port=$((HPORT + ${rings[k]})) key="mcpgw_gossip_keyring_reloads_total{node=\"${members[k]}\"}"
    fi
    before=$(metric "$port" "$key")
    kill -HUP "$pid"
    reloaded() { [ "$(metric "$port" "$key")" -gt "$before" ]; }
    wait_for "${members[k]} applies its new key ring" 5 reloaded
    # a few periods with the new ring before the next member changes
    local s0
    s0=$(metric $((HPORT + 1)) 'mcpgw_gossip_datagrams_sent_total{node="n1"}')
    gossiped() { [ "$(metric $((HPORT + 1)) 'mcpgw_gossip_datagrams_sent_total{node="n1"}')" -ge $((s0 + 12)) ]; }
    wait_for "gossip runs on after ${members[k]} reloaded" 10 gossiped
}
step_rings=("$OLD
$NEW" "$NEW
$OLD" "$NEW")
for s in 0 1 2; do
    for k in 0 1 2 3; do reload_member "$k" "${step_rings[s]}"; done
    echo "step $((s + 1)) done on every member"
done
news=$(bad_news "${LOGS[@]}")
[ -z "$news" ] || fail "a member was marked suspect or dead during the rotation: $news"
for i in 1 2 3; do
    for r in no_key forged; do
        v=$(metric $((HPORT + i)) "mcpgw_gossip_datagrams_refused_total{node=\"n$i\",reason=\"$r\"}")
        [ "$v" -eq 0 ] || fail "n$i refused $v datagrams as $r during the rotation"
    done
    [ "$(metric $((HPORT + i)) "mcpgw_gossip_keys{node=\"n$i\"}")" -eq 1 ] || fail "n$i does not hold one key at the end"
    [ "$(metric $((HPORT + i)) "mcpgw_gossip_keyring_reloads_total{node=\"n$i\"}")" -eq 3 ] || fail "n$i did not reload three times"
done
[ "$(metric 17321 'mcpgw_gossip_datagrams_refused_total{reason="no_key"}')" -eq 0 ] || fail "the balancer refused datagrams as no_key"
grep -q "key ring $MCPGW_TMP/ring9: 1 key" "$MCPGW_TMP/bal.log" || fail "the balancer did not log its final ring"
pass "keys rotated live with SIGHUP on three nodes and the balancer; nobody suspected, nothing refused"
