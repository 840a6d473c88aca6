#!/usr/bin/env bash
# 41-gossip-partition.sh - partitions with network namespaces: 5 agents, each in its own
# namespace, joined by a bridge living in a sixth namespace (the host's network is never
# touched; addresses are 198.18.0.1-5, the RFC 2544 benchmarking range, and exist only inside
# these namespaces). Scenario 1: cut one member off (its bridge port down): the others declare
# it dead and it declares them dead; heal: it is alive everywhere again. Scenario 2: a 3/2
# split (two members moved to a second bridge): each side declares the other dead and keeps
# its own side alive; heal: the cluster converges. Skips (exit 77) without netns permissions.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

AGENT="$MCPGW_BUILD/gossip/mcpgw-gossip-agent"
[ -x "$AGENT" ] || fail "$AGENT not built"
N=5
PORT=17200
TAG="mcpgw-gp$$"
BR="$TAG-br"
NS=()
for ((i = 0; i < N; i++)); do NS[i]="$TAG-$i"; done
ip_of() { echo "198.18.0.$(($1 + 1))"; }

skip() { mcpgw_skip "$@"; }

netns_cleanup() {
    local rc=$? p ns
    for p in "${_mcpgw_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "$BR" "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    mcpgw_cleanup "$rc" # (exit "$rc") here ended the trap under set -e: no logs on failure
}
trap netns_cleanup EXIT

[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
ip netns add "$BR" 2>/dev/null || skip "ip netns add is not permitted here"
ip -n "$BR" link add br0 type bridge 2>/dev/null || skip "cannot create a bridge in a namespace"
ip -n "$BR" link add br1 type bridge
ip -n "$BR" link set br0 up
ip -n "$BR" link set br1 up
for ((i = 0; i < N; i++)); do
    ip netns add "${NS[i]}"
    ip -n "$BR" link add "p$i" type veth peer name eth0 netns "${NS[i]}" 2>/dev/null ||
        skip "cannot create veth pairs"
    ip -n "$BR" link set "p$i" master br0 up
    ip -n "${NS[i]}" addr add "$(ip_of "$i")/24" dev eth0
    ip -n "${NS[i]}" link set lo up
    ip -n "${NS[i]}" link set eth0 up
done

seeds=$(for ((i = 0; i < N; i++)); do printf '%s:%d,' "$(ip_of "$i")" "$PORT"; done)
seeds=${seeds%,}
for ((i = 0; i < N; i++)); do
    mcpgw_spawn "n$i" ip netns exec "${NS[i]}" "$AGENT" --node-id "n$i" \
        --gossip-bind "$(ip_of "$i"):$PORT" --gossip-seeds "$seeds"
done

gen_of() { awk '$3 == "self" {sub("gen=", "", $5); print $5; exit}' "$MCPGW_TMP/n$1.log"; }

# state_seen I J: the latest state agent I printed about member nJ ("" if none)
state_seen() {
    awk -v id="n$2" '$2 == id && $4 ~ /^gen=/ {s = $3} END {print s}' "$MCPGW_TMP/n$1.log"
}

# expect "I... : STATE : J..." holds for every pair (I != J)
holds() { # holds "0 1 2" STATE "3 4"
    local i j
    for i in $1; do
        for j in $3; do
            [ "$i" -eq "$j" ] && continue
            [ "$(state_seen "$i" "$j")" = "$2" ] || return 1
        done
    done
}

wait_for() { # wait_for SECONDS WHAT CMD... : poll CMD every 100 ms; prints the time taken
    local secs=$1 what=$2 t0 t
    shift 2
    t0=$(date +%s%3N)
    for ((t = 0; t < secs * 10; t++)); do
        if "$@"; then
            echo "ok - $what ($(($(date +%s%3N) - t0)) ms)"
            return 0
        fi
        sleep 0.1
    done
    fail "$what: not within ${secs}s"
}

ALL="0 1 2 3 4"
for ((i = 0; i < N; i++)); do
    for ((t = 0; t < 50; t++)); do [ -n "$(gen_of "$i")" ] && break; sleep 0.1; done
done
wait_for 10 "5 members in 5 namespaces converged" holds "$ALL" alive "$ALL"

# Scenario 1: one member cut off
ip -n "$BR" link set p4 down
wait_for 10 "the others declare the cut-off n4 dead" holds "0 1 2 3" dead "4"
wait_for 10 "n4 declares every other member dead" holds "4" dead "0 1 2 3"
holds "0 1 2 3" alive "0 1 2 3" || fail "a member on the majority side was declared dead"
ip -n "$BR" link set p4 up
wait_for 20 "after healing, n4 is alive everywhere and sees everyone alive" \
    holds "$ALL" alive "$ALL"
for ((i = 0; i < N; i++)); do
    [ "$(awk '$3 == "self" {print $5; exit}' "$MCPGW_TMP/n$i.log")" = "gen=$(gen_of "$i")" ] ||
        fail "n$i restarted"
done

# Scenario 2: a 3/2 split
ip -n "$BR" link set p3 master br1
ip -n "$BR" link set p4 master br1
wait_for 10 "{n0,n1,n2} declare {n3,n4} dead" holds "0 1 2" dead "3 4"
wait_for 10 "{n3,n4} declare {n0,n1,n2} dead" holds "3 4" dead "0 1 2"
holds "0 1 2" alive "0 1 2" || fail "the majority side lost one of its own"
holds "3 4" alive "3 4" || fail "the minority side lost one of its own"
ip -n "$BR" link set p3 master br0
ip -n "$BR" link set p4 master br0
wait_for 30 "after healing the 3/2 split, everyone is alive everywhere" holds "$ALL" alive "$ALL"
pass "partitions are detected and healed"
