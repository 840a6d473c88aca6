#!/usr/bin/env bash
# 40-gossip-detect.sh - failure detection time with default gossip settings: 5 agents on
# 127.0.0.1:17000-17004; each round kill -9 one, time from the kill to each survivor's "dead"
# line, restart it and check it is alive again everywhere (new generation). Prints p50/p99
# over all survivors and rounds; fails if p99 > 2000 ms or a survivor misses a death.
# MCPGW_GOSSIP_ROUNDS sets the number of rounds (default 10).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

AGENT="$MCPGW_BUILD/gossip/mcpgw-gossip-agent"
[ -x "$AGENT" ] || fail "$AGENT not built"
ROUNDS=${MCPGW_GOSSIP_ROUNDS:-10}
N=5
BASE=17000
LIMIT_MS=2000
seeds=$(for ((i = 0; i < N; i++)); do printf '127.0.0.1:%d,' $((BASE + i)); done)
seeds=${seeds%,}

declare -a LOG PID
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

start_agent() { # start_agent I ROUND
    local i=$1 name="n$1-r$2"
    mcpgw_spawn "$name" "$AGENT" --node-id "n$i" --gossip-bind "127.0.0.1:$((BASE + i))" \
        --gossip-seeds "$seeds" --http-addr "127.0.0.1:$((18000 + i))"
    PID[i]=${_mcpgw_pids[-1]}
    LOG[i]="$MCPGW_TMP/$name.log"
}

gen_of() { # the generation agent I announced on its first line
    awk '$3 == "self" {sub("gen=", "", $5); print $5; exit}' "${LOG[$1]}" 2>/dev/null
}

# Every agent's latest line about every other member says alive with its current generation.
converged() {
    local i j want
    for ((i = 0; i < N; i++)); do
        for ((j = 0; j < N; j++)); do
            [ "$i" -eq "$j" ] && continue
            want=$(gen_of "$j")
            [ -n "$want" ] || return 1
            awk -v id="n$j" -v gen="gen=$want" '
                $2 == id && $4 ~ /^gen=/ {state = $3; g = $4}
                END {exit !(state == "alive" && g == gen)}' "${LOG[$i]}" || return 1
        done
    done
}

wait_converged() { # wait_converged WHAT
    local t
    for ((t = 0; t < 150; t++)); do converged && return 0; sleep 0.1; done
    fail "$1: the cluster did not converge within 15 s"
}

for ((i = 0; i < N; i++)); do start_agent "$i" 0; done
wait_converged "start"
pass "$N agents converged"

samples=()
for ((r = 1; r <= ROUNDS; r++)); do
    v=$((r % N))
    vgen=$(gen_of "$v")
    sleep 1 # let the probe rounds settle into random phases
    t0=$(now_ms)
    kill -9 "${PID[v]}"
    wait "${PID[v]}" 2>/dev/null || true # reap it quietly (no "Killed" notice)
    for ((i = 0; i < N; i++)); do
        [ "$i" -eq "$v" ] && continue
        ts=""
        for ((t = 0; t < 100; t++)); do
            ts=$(awk -v id="n$v" -v gen="gen=$vgen" -v t0="$t0" \
                '$2 == id && $3 == "dead" && $4 == gen && $1 >= t0 {print $1; exit}' "${LOG[i]}")
            [ -n "$ts" ] && break
            sleep 0.05
        done
        [ -n "$ts" ] || fail "round $r: n$i did not see n$v dead within 5 s"
        samples+=($((ts - t0)))
    done
    echo "round $r: killed n$v, detection (ms) by the survivors: ${samples[*]: -$((N - 1))}"
    start_agent "$v" "$r"
    wait_converged "round $r restart"
done

mapfile -t sorted < <(printf '%s\n' "${samples[@]}" | sort -n)
count=${#sorted[@]}
rank() { # nearest-rank percentile
    local p=$1 k
    k=$(((p * count + 99) / 100))
    [ "$k" -lt 1 ] && k=1
    echo "${sorted[k - 1]}"
}
p50=$(rank 50)
p99=$(rank 99)
echo "detection over $count samples ($ROUNDS kills x $((N - 1)) survivors): p50=${p50}ms p99=${p99}ms min=${sorted[0]}ms max=${sorted[count - 1]}ms"
[ "$p99" -le "$LIMIT_MS" ] || fail "p99 detection ${p99} ms > ${LIMIT_MS} ms"
pass "every kill detected by every survivor, p99 ${p99} ms <= ${LIMIT_MS} ms; every restart rejoined alive"
