#!/usr/bin/env bash
# RocksDB's own FileSystem tests on SluiceFS: env_basic_test's CustomEnv suites (built from
# Debian's source package by rocksdb_source_build.sh) with TEST_FS_URI=sluice://uring:IMG on
# a fresh image, the plugin preloaded. Every test the suites list must pass. The same suites
# on RocksDB's POSIX FileSystem first, as the control: if they fail there, the binary or
# this harness is wrong, not SluiceFS.
# Usage: rocksdb_env_basic_test.sh SLUICE PLUGIN.so BIN-DIR (holding env_basic_test)
set -uo pipefail
. "$(dirname "$0")/lib.sh"

SLUICE=${1:?usage: $0 sluice libsluice_rocksdb.so bin-dir}
PLUGIN=${2:?usage: $0 sluice libsluice_rocksdb.so bin-dir}
TEST=${3:?usage: $0 sluice libsluice_rocksdb.so bin-dir}/env_basic_test
if [[ ! -x $TEST ]]; then echo "SKIP: $TEST not built (rocksdb_source_build.sh)"; exit 77; fi
make_tmp rocksdb_env_basic
FILTER='CustomEnv/*'

# run_suites NAME [VAR=VALUE...]: runs the CustomEnv suites in $TMP/NAME.out and checks that
# each listed test ran and passed; sets PASSED and LISTED.
run_suites() {
  local name=$1; shift
  # GetChildrenIgnoresDotAndDotDot works through Env::Default() (the host) on the custom
  # Env's test path, /tmp/rocksdbtest-UID/env_basic_test_PID_...: its parent must exist on
  # the host (made here, and removed after if this run made it and it is empty).
  local host_dir=/tmp/rocksdbtest-$(id -u) made=0
  [[ -d $host_dir ]] || { mkdir -p "$host_dir" && made=1; }
  LISTED=$(env "$@" "$TEST" --gtest_filter="$FILTER" --gtest_list_tests | grep -c '^  ')
  bg_start env "$@" "$TEST" --gtest_filter="$FILTER" >"$TMP/$name.out" 2>&1
  local pid=$BG_PID rc
  wait_or_kill "$pid" 120
  rc=$RC
  [[ $KILLED -eq 0 ]] || echo "(killed after 120 s)" >>"$TMP/$name.out"
  rm -rf "$host_dir/env_basic_test_${pid}_"*  # what that test left on the host
  [[ $made -eq 0 ]] || rmdir "$host_dir" 2>/dev/null
  PASSED=$(grep -c '^\[       OK \]' "$TMP/$name.out")
  if [[ $LISTED -eq 0 ]]; then
    fail "$name: the suites listed no test (TEST_FS_URI not seen?)"
  elif [[ $rc -ne 0 || $PASSED -ne $LISTED ]]; then
    fail "$name: $PASSED of $LISTED tests passed (exit $rc):"
    grep -E '^\[  FAILED  \]|Failure$|^(Expected|  Actual|Value of|Which is)|Status|Error' "$TMP/$name.out" | head -40
  else
    pass "$name: $PASSED of $LISTED tests passed"
  fi
}

# The control: TEST_FS_URI=posix is RocksDB's own POSIX FileSystem, in a directory of ours.
run_suites "env_basic_test on POSIX (control)" TEST_FS_URI=posix TEST_TMPDIR="$TMP"

IMG=$TMP/image
truncate -s 256M "$IMG"
if ! "$SLUICE" mkfs "$IMG" >"$TMP/mkfs.out" 2>&1; then fail "sluice mkfs: $(cat "$TMP/mkfs.out")"; finish; fi
# Env::CreateFromUri reads '=' as an option list: the image is formatted, the URI is bare.
run_suites "env_basic_test on SluiceFS" LD_PRELOAD="$PLUGIN" TEST_FS_URI="sluice://uring:$IMG"
# The suites really ran on the image: their test directory is there. (Without the plugin,
# Env::CreateFromUri quietly gives the POSIX Env and all pass; after a plugin error, the
# tests after the first fall back to POSIX.) If not, none of them counts.
failed=$((LISTED - PASSED))
if "$SLUICE" fs ls "$IMG" /tmp 2>/dev/null | grep -q rocksdbtest; then pass "the tests worked in the image (/tmp/rocksdbtest-*)"
else fail "no /tmp/rocksdbtest-* in the image: the suites did not run on SluiceFS"; failed=$LISTED; fi
report_points "rocksdb env_basic_test (SluiceFS)" tests "$LISTED" "$failed"
if ! "$SLUICE" fsck "$IMG" >"$TMP/fsck.out" 2>&1; then fail "fsck after the suites: $(tail -5 "$TMP/fsck.out")"
else pass "fsck clean after the suites"; fi
finish
