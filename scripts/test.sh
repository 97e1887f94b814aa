#!/usr/bin/env bash
# README command 2: installs what is needed, builds, and runs every test.
#   release build   — every ctest suite
#   ASan + UBSan    — every ctest suite
#   TSan            — the threading suites (labels: base, thread, bdev)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/deps.sh

# Crash and fault-injection suites append "N points tried, M failed" lines here.
export SLUICE_CRASH_REPORT=$PWD/build/crash-report.txt
mkdir -p build && : > "$SLUICE_CRASH_REPORT"

run_suite() {  # name build-dir ctest-args...
  local name=$1 dir=$2; shift 2
  echo "== $name: build"
  local start=$SECONDS
  scripts/build.sh "$dir" "${cmake_args[@]}"
  echo "== $name: test"
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure --timeout 600 "$@"
  echo "== $name: done in $((SECONDS - start)) s"
}

cmake_args=(-DCMAKE_BUILD_TYPE=Release)
run_suite release build/release

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=address)
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite asan+ubsan build/asan

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=thread)
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_suite tsan build/tsan -L 'base|thread|bdev'

echo "== crash and fault-injection suites (all builds):"
cat "$SLUICE_CRASH_REPORT"
echo "all test suites passed"
