#!/usr/bin/env bash
# 61-deploy-image.sh - the container image, built from deploy/Dockerfile without a container
# engine (tests/lib/dockerfile.sh carries out the Dockerfile's own FROM/RUN/COPY/WORKDIR/USER/
# ENTRYPOINT lines in fresh Debian 12 roots), then run: the image's programs start as its USER
# in a network namespace of their own, every shared library they need is in the image, the
# node (the ENTRYPOINT) and the balancer answer /healthz, and an MCP initialize through the
# balancer gets a session. A Dockerfile whose build or runtime stage lacks a package fails here.
#
# The RUN lines download from Debian's mirror, as `docker build` does: skips (exit 77) in a
# network namespace with no route out (e.g. an isolated test namespace) and without root.
# MCPGW_DOCKERFILE checks another Dockerfile (the build context stays the repository).
# mcpgw-timeout: 1500 (a fresh base root, two stages of apt-get and a build take ~10 min)
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
source "$MCPGW_ROOT/tests/lib/dockerfile.sh"

[ "$(id -u)" -eq 0 ] || mcpgw_skip "chroot and namespaces need root"
if [ -z "$(ip route show default 2>/dev/null)$(ip -6 route show default 2>/dev/null)" ]; then
    mcpgw_skip "no route out of this network namespace: the Dockerfile's RUN lines need Debian's mirror"
fi
for tool in mmdebstrap jq unshare chroot; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/deps.sh installs the test tools)"
done

dockerfile=${MCPGW_DOCKERFILE:-$MCPGW_ROOT/deploy/Dockerfile}
work=$(mktemp -d /var/tmp/mcpgw-image.XXXXXX) # not tmpfs: the build root is ~1 GB
image_cleanup() {
    local rc=$?
    rm -rf "$work"
    mcpgw_cleanup "$rc"
}
trap image_cleanup EXIT

t0=$SECONDS
# In a subshell: a failing step ends df_build with exit, and this script has more to say.
(df_build "$dockerfile" "$MCPGW_ROOT" "$work") >"$MCPGW_TMP/build.log" 2>&1 || {
    tail -n 40 "$MCPGW_TMP/build.log" >&2
    fail "the image cannot be built from $dockerfile: $(grep '^dockerfile: ' "$MCPGW_TMP/build.log" | tail -n 1)"
}
pass "built every stage of $(basename "$dockerfile") in fresh Debian 12 roots ($((SECONDS - t0)) s)"

last=$(cat "$work/last-stage")
root="$work/stage$last"
# shellcheck disable=SC1090
source "$work/stage$last.meta"
[ -n "$DF_ENTRYPOINT" ] || fail "the image has no ENTRYPOINT"
mapfile -d '' -t entry < <(jq -j '.[] | (. + "\u0000")' <<<"$DF_ENTRYPOINT" 2>/dev/null)
[ "${#entry[@]}" -ge 1 ] || fail "ENTRYPOINT is not in exec form: $DF_ENTRYPOINT"
bindir=$(dirname "${entry[0]}")
[ "$(basename "${entry[0]}")" = mcpgw-node ] || fail "the ENTRYPOINT is ${entry[0]}, not mcpgw-node"
[ -n "$DF_USER" ] && [ "$(_df_user "$root" "$DF_USER" | cut -d: -f1)" != 0 ] ||
    fail "the image runs as root (USER '${DF_USER:-}')"

# Every program's libraries resolve in the image, whatever its build stage linked them to.
for prog in mcpgw-node mcpgw-balancer mcpgw-loadgen; do
    [ -x "$root$bindir/$prog" ] || fail "$bindir/$prog is not in the image"
    missing=$(DF_ENV="$DF_ENV" df_chroot "$root" "$DF_USER" ldd "$bindir/$prog" 2>&1 | grep 'not found' || true)
    [ -z "$missing" ] || fail "$prog needs libraries the image lacks: $(echo "$missing" | awk '{print $1}' | xargs)"
done
pass "mcpgw-node, mcpgw-balancer and mcpgw-loadgen find every shared library they need in the image"

# Run the image: its own network namespace (like a container's), loopback only, as its USER.
cat >"$work/run.sh" <<'EOF'
set -uo pipefail
source "$MCPGW_ROOT/tests/lib/dockerfile.sh"
source "$1"
root=$2 bindir=$3
shift 3
ip link set lo up
in_image() { DF_ENV="$DF_ENV" DF_WORKDIR="$DF_WORKDIR" df_chroot "$root" "$DF_USER" "$@"; }
in_image "$@" --listen 127.0.0.1:8801 --node-id n1 --store memory >"$MCPGW_TMP/node.log" 2>&1 &
in_image "$bindir/mcpgw-balancer" --listen 127.0.0.1:8800 --nodes n1=127.0.0.1:8801 \
    --admin 127.0.0.1:8900 --workers 2 >"$MCPGW_TMP/balancer.log" 2>&1 &
# Ask with the image's own curl (what the compose file's health checks run).
wait_ok() {
    for _ in $(seq 200); do
        in_image curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "FAIL: $1 did not answer 2xx within 10 s" >&2
    return 1
}
wait_ok http://127.0.0.1:8801/healthz || exit 1
echo "ok - the node (the image's ENTRYPOINT) answers /healthz as $DF_USER"
wait_ok http://127.0.0.1:8900/healthz || exit 1
echo "ok - the balancer's admin answers /healthz"
in_image curl -sS -i -m 10 http://127.0.0.1:8800/mcp -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"image-check","version":"1"}}}' \
    >"$MCPGW_TMP/initialize.txt" 2>&1
grep -qi '^mcp-session-id: n1\.' "$MCPGW_TMP/initialize.txt" && grep -q '"protocolVersion"' "$MCPGW_TMP/initialize.txt" || {
    echo "FAIL: initialize through the balancer did not create a session:" >&2
    cat "$MCPGW_TMP/initialize.txt" >&2
    exit 1
}
echo "ok - an MCP initialize through the balancer got a session from the node"
in_image "$bindir/mcpgw-loadgen" --help >/dev/null || { echo "FAIL: mcpgw-loadgen --help failed" >&2; exit 1; }
echo "ok - mcpgw-loadgen runs"
EOF
MCPGW_ROOT="$MCPGW_ROOT" MCPGW_TMP="$MCPGW_TMP" \
    unshare --net --pid --fork --kill-child -- bash "$work/run.sh" "$work/stage$last.meta" "$root" \
    "$bindir" "${entry[@]}" || fail "the image does not run"
pass "the image runs: node and balancer up as $DF_USER, initialize answered ($((SECONDS - t0)) s in all)"
