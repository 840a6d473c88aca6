#!/usr/bin/env bash
# 42-gossip-soak.sh - a healthy 5-member gossip cluster with default timing, session-count
# churn and a CPU hog on the side must report no suspicion and no death for the whole run.
# MCPGW_GOSSIP_SOAK_S sets the duration (default 60; the acceptance run uses 600).
# Ports 17100-17104.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

AGENT="$MCPGW_BUILD/gossip/mcpgw-gossip-agent"
[ -x "$AGENT" ] || fail "$AGENT not built"
DURATION=${MCPGW_GOSSIP_SOAK_S:-60}
N=5
BASE=17100
seeds=$(for ((i = 0; i < N; i++)); do printf '127.0.0.1:%d,' $((BASE + i)); done)
seeds=${seeds%,}

for ((i = 0; i < N; i++)); do
    mcpgw_spawn "soak$i" "$AGENT" --node-id "s$i" --gossip-bind "127.0.0.1:$((BASE + i))" \
        --gossip-seeds "$seeds" --http-addr "127.0.0.1:$((18400 + i))" --sessions-every-ms 100
done
# one busy loop competes for the CPU (2 cores on the test machines) for the whole run
mcpgw_spawn hog bash -c 'while :; do :; done'

converged() {
    local i n
    for ((i = 0; i < N; i++)); do
        n=$(awk '$3 == "alive" && $4 ~ /^gen=/ {seen[$2] = 1} END {print length(seen)}' \
            "$MCPGW_TMP/soak$i.log")
        [ "$n" -ge $((N - 1)) ] || return 1
    done
}
for ((t = 0; t < 100; t++)); do converged && break; sleep 0.1; done
converged || fail "the cluster did not converge within 10 s"
pass "5 members converged"

sleep "$DURATION"
bad=$(cat "$MCPGW_TMP"/soak*.log | awk '$3 == "suspect" || $3 == "dead" || $3 == "left"' | wc -l)
if [ "$bad" -ne 0 ]; then
    cat "$MCPGW_TMP"/soak*.log | awk '$3 == "suspect" || $3 == "dead" || $3 == "left"' | head >&2
    fail "$bad false suspicions/deaths in ${DURATION}s"
fi
updates=$(cat "$MCPGW_TMP"/soak*.log | awk '$3 == "alive"' | wc -l)
pass "no suspicion, no false death in ${DURATION}s of a healthy cluster ($updates metadata updates seen)"
