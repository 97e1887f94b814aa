#!/usr/bin/env bash
# README command 2: installs what is needed, builds, and runs every test.
#   release build   — every ctest suite (unit, crash, integration)
#   ASan + UBSan    — every ctest suite
#   TSan            — the suites with threads (labels base, env, thread, bdev, blob, fs, rpc, net, nbd, nvmf, scsi, iscsi, vhost)
#   libFuzzer       — each fuzz target for FUZZ_SECONDS (default 10) from its seed corpus
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
total_start=$SECONDS

scripts/deps.sh

# Crash and fault-injection suites append "N points tried, M failed" lines here.
export SLUICE_CRASH_REPORT=$PWD/build/crash-report.txt
mkdir -p build && : > "$SLUICE_CRASH_REPORT"

run_suite() {  # name build-dir [ninja targets...] -- ctest args...
  local name=$1 dir=$2; shift 2
  local targets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do targets+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  echo "== $name: build"
  local start=$SECONDS
  scripts/build.sh "$dir" "${cmake_args[@]}" -- "${targets[@]}"
  echo "== $name: test"
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure --timeout 900 "$@"
  echo "== $name: done in $((SECONDS - start)) s"
}

cmake_args=(-DCMAKE_BUILD_TYPE=Release)
run_suite release build/release

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=address)
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite asan+ubsan build/asan

# Only the test programs whose suites have threads: a whole TSan tree would double the time.
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=thread)
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_suite tsan build/tsan \
  base_test env_test thread_test bdev_conformance_test bdev_file_test bdev_virtual_test blob_store_test blob_io_test \
  fs_test rpc_test net_test nbd_test nvmf_test scsi_test iscsi_test iscsi_server_test vhost_test \
  -- -L 'base|env|thread|bdev|blob|fs|rpc|net|nbd|nvmf|scsi|iscsi|vhost'

echo "== fuzz"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh

echo "== crash and fault-injection suites (all builds):"
cat "$SLUICE_CRASH_REPORT"
echo "all test suites passed in $((SECONDS - total_start)) s"
