#!/usr/bin/env bash
# bench/gossip.sh - what authenticated gossip costs per datagram (docs/gossip.md, "Cost"):
# version-1 encode + decode, then the version-2 envelope's seal + open (AES-256-GCM), the open
# of a forged datagram, and the replay check, in ns per datagram on one core. A microbenchmark
# of the library (tests/tools/gossip_bench.c), nothing on the network; figures only.
# Environment: MCPGW_BUILD (default build/), BENCH_ITERATIONS (200000).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${MCPGW_BUILD:-$ROOT/build}
cmake --build "$BUILD" --target gossip-bench >/dev/null
taskset -c 0 "$BUILD/tests/tools/gossip-bench" "${BENCH_ITERATIONS:-200000}"
