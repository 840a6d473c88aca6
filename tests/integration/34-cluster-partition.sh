#!/usr/bin/env bash
# 34-cluster-partition.sh - a node with live sessions cut off by a network partition, then healed.
# Redis, three nodes and the balancer each run in their own network namespace, joined by a
# bridge in another namespace (addresses 198.18.0.x exist only there; the host's network is not
# touched). The node holding the most sessions is cut off (its bridge port down): gossip
# declares it dead, its sessions are claimed by the others as clients use them. Healed, it
# rejoins, and no session has two owners: each node holds exactly the sessions Redis says it
# owns, and the nodes together hold each session once. Skips (exit 0) without netns rights.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

TAG="mcpgw-cp$$"
BRNS="$TAG-br" RNS="$TAG-r" BNS="$TAG-b"
NNS=("" "$TAG-1" "$TAG-2" "$TAG-3")
ALL=("$BRNS" "$RNS" "$BNS" "${NNS[@]:1}")
HTTP=16501 GOSSIP=16601 REDIS=16550
ip_node() { echo "198.18.0.$1"; }
REDIS_IP=198.18.0.10 BAL_IP=198.18.0.9
skip() { echo "SKIP: $*"; exit 0; }
netns_cleanup() {
    local rc=$? p ns
    for p in "${_mcpgw_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "${ALL[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    (exit "$rc")
    mcpgw_cleanup
}
trap netns_cleanup EXIT

[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
ip netns add "$BRNS" 2>/dev/null || skip "ip netns add is not permitted here"
ip -n "$BRNS" link add br0 type bridge 2>/dev/null || skip "cannot create a bridge in a namespace"
ip -n "$BRNS" link set br0 up
attach() { # attach NS PORTNAME IP
    ip netns add "$1"
    ip -n "$BRNS" link add "$2" type veth peer name eth0 netns "$1" || skip "cannot create veth pairs"
    ip -n "$BRNS" link set "$2" master br0 up
    ip -n "$1" addr add "$3/24" dev eth0
    ip -n "$1" link set lo up
    ip -n "$1" link set eth0 up
}
attach "$RNS" pr "$REDIS_IP"
attach "$BNS" pb "$BAL_IP"
for i in 1 2 3; do attach "${NNS[i]}" "p$i" "$(ip_node "$i")"; done

mcpgw_spawn redis ip netns exec "$RNS" redis-server --bind "$REDIS_IP" --port "$REDIS" \
    --save "" --appendonly no --protected-mode no
sleep 0.3
seeds="$(ip_node 1):$GOSSIP,$(ip_node 2):$GOSSIP"
nodes=""
for i in 1 2 3; do
    mcpgw_spawn "n$i" ip netns exec "${NNS[i]}" "$MCPGW_BUILD/node/mcpgw-node" \
        --listen "$(ip_node "$i"):$HTTP" --node-id "n$i" --store "redis://$REDIS_IP:$REDIS" \
        --gossip-bind "$(ip_node "$i"):$GOSSIP" --gossip-seeds "$seeds"
    nodes+="n$i=$(ip_node "$i"):$HTTP,"
done
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
for i in 1 2 3; do
    for _ in $(seq 100); do in_ns "${NNS[i]}" curl -fsS -o /dev/null "http://$(ip_node "$i"):$HTTP/healthz" 2>/dev/null && break; sleep 0.1; done
done
mcpgw_spawn bal ip netns exec "$BNS" "$MCPGW_BUILD/balancer/mcpgw-balancer" \
    --listen 127.0.0.1:16500 --nodes "${nodes%,}" --workers 1 --admin 127.0.0.1:16540 \
    --gossip-bind "$BAL_IP:$GOSSIP" --gossip-seeds "$seeds"
for _ in $(seq 100); do in_ns "$BNS" curl -fsS -o /dev/null http://127.0.0.1:16540/healthz 2>/dev/null && break; sleep 0.1; done
sleep 1.5

H=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream"
   -H "MCP-Protocol-Version: 2025-11-25")
post() { # post SID BODY -> body
    in_ns "$BNS" curl -s -m 5 "${H[@]}" ${1:+-H "Mcp-Session-Id: $1"} http://127.0.0.1:16500/mcp -d "$2"
}
sids=()
for k in $(seq 30); do
    sid=$(in_ns "$BNS" curl -si -m 5 "${H[@]}" http://127.0.0.1:16500/mcp -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"p","version":"1"}}}' |
        tr -d '\r' | awk 'tolower($1)=="mcp-session-id:"{print $2}')
    [ -n "$sid" ] || fail "initialize $k through the balancer failed"
    post "$sid" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
    post "$sid" '{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"mcpgw://notes/part"}}' | grep -q '"result":{}' ||
        fail "subscribe failed for $sid"
    sids+=("$sid")
done
victim=$(printf '%s\n' "${sids[@]}" | cut -d. -f1 | sort | uniq -c | sort -rn | awk 'NR==1{print $2}')
vi=${victim#n}
held=$(printf '%s\n' "${sids[@]}" | grep -c "^$victim\.")
echo "cutting off $victim (holding $held of 30 sessions)"

ip -n "$BRNS" link set "p$vi" down
t0=$(date +%s%3N)
for _ in $(seq 100); do
    in_ns "$BNS" curl -s http://127.0.0.1:16540/metrics | grep -q "mcpgw_balancer_node_up{node=\"$victim\"} 0" && break
    sleep 0.1
done
echo "the balancer saw $victim down after $(( $(date +%s%3N) - t0 )) ms"
# Clients use their sessions: the victim's move to the nodes still reachable.
for sid in "${sids[@]}"; do
    post "$sid" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"p"}}}' |
        grep -q '"text":"p"' || fail "session $sid did not carry on while $victim was cut off"
done
redis_owner() { in_ns "$RNS" redis-cli -h "$REDIS_IP" -p "$REDIS" hget "mcpgw:{$1}:s" owner; }
for sid in "${sids[@]}"; do
    [ "$(redis_owner "$sid")" != "$victim" ] || fail "$sid still owned by the cut-off $victim"
done
pass "all 30 sessions carried on while $victim was cut off ($held moved)"

ip -n "$BRNS" link set "p$vi" up
for _ in $(seq 100); do
    in_ns "$BNS" curl -s http://127.0.0.1:16540/metrics | grep -q "mcpgw_balancer_node_up{node=\"$victim\"} 1" && break
    sleep 0.1
done
in_ns "$BNS" curl -s http://127.0.0.1:16540/metrics | grep -q "mcpgw_balancer_node_up{node=\"$victim\"} 1" ||
    fail "$victim did not rejoin after the partition healed"
sleep 5 # the healed node reconnects to Redis and drops what moved (watchdog, then verify)
total=0
for i in 1 2 3; do
    local_n=$(in_ns "${NNS[i]}" curl -s "http://$(ip_node "$i"):$HTTP/metrics" | awk '/^mcpgw_node_sessions\{/{print $2}')
    owned=0
    for sid in "${sids[@]}"; do [ "$(redis_owner "$sid")" = "n$i" ] && owned=$((owned + 1)); done
    echo "n$i holds $local_n sessions; Redis names it owner of $owned"
    [ "$local_n" = "$owned" ] || fail "n$i holds $local_n sessions but owns $owned: a session has two owners"
    total=$((total + local_n))
done
[ "$total" -eq 30 ] || fail "the nodes hold $total session copies for 30 sessions"
pass "healed: $victim rejoined, and every session has exactly one owner"
for sid in "${sids[@]}"; do
    post "$sid" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"q"}}}' |
        grep -q '"text":"q"' || fail "session $sid failed after the heal"
done
pass "every session still works after the heal"
