#!/usr/bin/env bash
# tests/run.sh - the one test command: installs what is missing, builds (release, and
# ASan+UBSan), runs the unit tests of both builds, every integration script, the conformance
# suite and real-client tests, and a short fuzzing pass. Ends with "N passed, M failed" (and
# ", K skipped" when a test could not run here: it exited 77, e.g. without root or network).
#   tests/run.sh                 everything
#   tests/run.sh PATTERN         only integration scripts whose name matches PATTERN (no fuzzing)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/deps.sh"
cd "$MCPGW_ROOT"

only=${1:-}
passed=0
failed=0
skipped=0
failures=()
log_dir=$(mktemp -d /tmp/mcpgw-run.XXXXXX)

step() { # step NAME CMD...: run, count, keep going
    local name=$1; shift
    local t0=$SECONDS rc=0
    echo "=== $name"
    "$@" >"$log_dir/step.log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        tail -n 3 "$log_dir/step.log" | sed 's/^/    /'
        echo "--- PASS $name ($((SECONDS - t0))s)"
    elif [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1))
        tail -n 3 "$log_dir/step.log" | sed 's/^/    /'
        echo "--- SKIP $name ($((SECONDS - t0))s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        tail -n 60 "$log_dir/step.log" | sed 's/^/    /'
        echo "--- FAIL $name ($((SECONDS - t0))s, exit $rc)"
    fi
}

mcpgw_install_test_deps || { echo "installing dependencies failed"; exit 1; }

echo "=== build (release) and build-asan (AddressSanitizer + UndefinedBehaviorSanitizer)"
mcpgw_build "$MCPGW_ROOT/build" || { echo "release build failed"; exit 1; }
mcpgw_build "$MCPGW_ROOT/build-asan" -DMCPGW_SANITIZE=ON || { echo "sanitizer build failed"; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ -z "$only" ]; then
    step "unit tests (release)" ctest --test-dir build --output-on-failure -j2
    step "unit tests (asan+ubsan)" ctest --test-dir build-asan --output-on-failure -j2
fi

run_script() { # run_script FILE BUILD; a script may ask for more than 600 s: "# mcpgw-timeout: S"
    local f=$1 build=$2 limit
    limit=$(sed -n 's/^# mcpgw-timeout: *\([0-9][0-9]*\).*/\1/p' "$f" | head -n 1)
    MCPGW_BUILD="$build" MCPGW_TMP="$(mktemp -d "$log_dir/t.XXXXXX")" \
        timeout -k 5 "${limit:-600}" bash -c 'case "$0" in *.mjs) node "$0" ;; *) bash "$0" ;; esac' "$f"
}

for f in tests/integration/[0-9]*; do
    name=$(basename "$f")
    [ -n "$only" ] && [[ "$name" != *$only* ]] && continue
    step "integration $name" run_script "$f" "$MCPGW_ROOT/build"
    # The node's own tests and the cluster tests (Redis store, fan-out, failover) run again
    # against the sanitized build: a memory error fails them.
    case "$name" in
    1[0-9]-* | 3[0-9]-*) step "integration $name (asan+ubsan)" run_script "$f" "$MCPGW_ROOT/build-asan" ;;
    esac
done

if [ -z "$only" ] && [ -f tests/fuzz/CMakeLists.txt ]; then
    fuzz_build() {
        cmake -S "$MCPGW_ROOT" -B "$MCPGW_ROOT/build-fuzz" -DCMAKE_C_COMPILER=clang \
            -DMCPGW_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
            cmake --build "$MCPGW_ROOT/build-fuzz" -j"$(nproc)" >/dev/null
    }
    step "fuzz targets build" fuzz_build
    for fz in build-fuzz/tests/fuzz/fuzz_*; do
        [ -x "$fz" ] || continue
        corpus=$(mktemp -d "$log_dir/corpus.XXXXXX")
        # Seeds in tests/fuzz/corpus/<driver>/ are read, never written (new inputs go to $corpus).
        seeds=tests/fuzz/corpus/$(basename "$fz")
        [ -d "$seeds" ] || seeds=
        step "fuzz $(basename "$fz") (30s)" "$fz" -max_total_time=30 -timeout=5 -rss_limit_mb=2048 "$corpus" ${seeds:+"$seeds"}
    done
fi

echo
if [ "$failed" -gt 0 ]; then
    echo "failed: ${failures[*]}"
fi
rm -rf "$log_dir"
echo "$passed passed, $failed failed$([ "$skipped" -eq 0 ] || echo ", $skipped skipped")"
[ "$failed" -eq 0 ]
