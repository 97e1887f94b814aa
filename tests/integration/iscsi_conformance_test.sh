#!/usr/bin/env bash
# libiscsi's conformance suite (iscsi-test-cu, Debian's libiscsi-bin 1.19.0) against the iSCSI
# target, served by iscsi_test_target: discovery (iscsi-ls) and INQUIRY (iscsi-inq) first, then
# `iscsi-test-cu -t ALL` (51 suites, 230 tests; --dataloss, the same LUN given twice as the
# second path for MultipathIO) on LUN 0 (512-byte blocks) and LUN 1 (4096-byte blocks), and
# the ReadOnly suite on the read-only node. About a minute on 2 cores.
#
# CUnit counts a test the suite skipped as passed; this script counts those apart: a skipped
# test must be in the table below with the reason (a feature the target lacks on purpose, or
# one the suite needs to be told about), every other test must pass, and at least MIN_PASSED
# (CUnit's count, skips included) and MIN_RAN (skips excluded) must pass on each LUN.
#   iscsi_conformance_test.sh ISCSI_TEST_TARGET
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
TARGET=$1
MIN_PASSED=226
MIN_RAN=186

for tool in iscsi-test-cu iscsi-ls iscsi-inq; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool not found (Debian package libiscsi-bin)"
    exit 77
  fi
done

# Tests the suite skips against this target: NAME|REASON.
expected_skips="
CompareAndWrite.InvalidDataOutSize|needs LBPPB > 1 (READ CAPACITY 16 reports one logical block per physical block)
WriteSame10.InvalidDataOutSize|needs LBPPB > 1
WriteSame10.UnmapUnaligned|needs LBPPB > 1
WriteSame16.InvalidDataOutSize|needs LBPPB > 1
WriteSame16.UnmapUnaligned|needs LBPPB > 1
WriteSame10.ZeroBlocks|WSNZ 1: WRITE SAME of 0 blocks is refused (VPD B0h), by design
WriteSame16.ZeroBlocks|WSNZ 1
ExtendedCopy.Simple|EXTENDED COPY not implemented (docs/scsi.md: not here yet)
ExtendedCopy.ParamHdr|EXTENDED COPY not implemented
ExtendedCopy.DescrLimits|RECEIVE COPY RESULTS not implemented
ExtendedCopy.DescrType|EXTENDED COPY not implemented
ExtendedCopy.ValidTgtDescr|EXTENDED COPY not implemented
ExtendedCopy.ValidSegDescr|EXTENDED COPY not implemented
ReceiveCopyResults.CopyStatus|RECEIVE COPY RESULTS not implemented
ReceiveCopyResults.OpParams|RECEIVE COPY RESULTS not implemented
WriteAtomic16.Simple|WRITE ATOMIC 16 not implemented (SBC-4)
WriteAtomic16.BeyondEol|WRITE ATOMIC 16 not implemented
WriteAtomic16.ZeroBlocks|WRITE ATOMIC 16 not implemented
WriteAtomic16.WriteProtect|WRITE ATOMIC 16 not implemented
WriteAtomic16.DpoFua|WRITE ATOMIC 16 not implemented
WriteAtomic16.VPD|WRITE ATOMIC 16 not implemented
PreventAllow.Simple|the medium is not removable (RMB 0), as for any disk
PreventAllow.Eject|the medium is not removable
PreventAllow.ITNexusLoss|the medium is not removable
PreventAllow.Logout|the medium is not removable
PreventAllow.WarmReset|the medium is not removable
PreventAllow.ColdReset|the medium is not removable
PreventAllow.LUNReset|the medium is not removable
PreventAllow.2ITNexuses|the medium is not removable
StartStopUnit.Simple|the medium is not removable
ReadOnly.ReadOnlySBC|LUNs 0 and 1 are writable; it runs on the read-only node below
Reserve6.TargetColdReset|TARGET COLD RESET not supported (it must close every session: server.cc)
Sanitize.BlockErase|run without --allow-sanitize (SANITIZE is not implemented either)
Sanitize.BlockEraseReserved|run without --allow-sanitize
Sanitize.CryptoErase|run without --allow-sanitize
Sanitize.CryptoEraseReserved|run without --allow-sanitize
Sanitize.ExitFailureMode|run without --allow-sanitize
Sanitize.InvalidServiceAction|run without --allow-sanitize
Sanitize.Overwrite|run without --allow-sanitize
Sanitize.OverwriteReserved|run without --allow-sanitize
Sanitize.Readonly|run without --allow-sanitize
Sanitize.Reservations|run without --allow-sanitize
Sanitize.Reset|run without --allow-sanitize
"

make_tmp iscsi-conformance
export STDIN_FIFO="$TMP/stdin"
iqn=iqn.2026-12.io.sluice:conformance
# The target reads stdin to its end: a FIFO only this script holds open for writing, so that
# the target stops when the script goes, however it goes (and bg_start's SIGKILL covers the
# rest). A background job's stdin would be /dev/null: the inner shell redirects it.
mkfifo "$TMP/stdin"
exec 3<>"$TMP/stdin"
bg_start bash -c 'exec "$0" "$@" <"$STDIN_FIFO" 3>&-' "$TARGET" "$iqn" 64M >"$TMP/target.out" 2>"$TMP/target.err"
target_pid=$BG_PID
if ! wait_for_output "$target_pid" "$TMP/target.out" '^port [0-9]+$' 30; then
  fail "iscsi_test_target did not start: $(cat "$TMP/target.err")"
  finish
fi
port=$(awk '/^port/ { print $2 }' "$TMP/target.out")
portal=127.0.0.1:$port
pass "iscsi_test_target serving $iqn at $portal"

# Discovery: both nodes, their LUNs, both block sizes.
if timeout 30 iscsi-ls -s "iscsi://$portal" >"$TMP/ls" 2>&1 &&
  grep -q "^Target:$iqn Portal:$portal,1" "$TMP/ls" && grep -q "^Target:$iqn-ro " "$TMP/ls" &&
  [[ $(grep -c '^Lun:[01] *Type:DIRECT_ACCESS' "$TMP/ls") -eq 3 ]]; then
  pass "iscsi-ls: both nodes and their three LUNs"
else
  fail "iscsi-ls: $(cat "$TMP/ls")"
fi
if timeout 30 iscsi-inq "iscsi://$portal/$iqn/0" >"$TMP/inq" 2>&1 &&
  grep -q '^Vendor:SLUICE' "$TMP/inq" && grep -q '^Peripheral Device Type:DIRECT_ACCESS' "$TMP/inq" &&
  timeout 30 iscsi-inq -e 1 -c 0x80 "iscsi://$portal/$iqn/1" >"$TMP/inq80" 2>&1 &&
  grep -qi 'serial' "$TMP/inq80"; then
  pass "iscsi-inq: standard INQUIRY and the unit serial number page"
else
  fail "iscsi-inq: $(cat "$TMP/inq" "$TMP/inq80" 2>/dev/null)"
fi

# skipped_tests LOG: "Suite.Test|why" for each test that printed [SKIPPED], with the first
# reason it gave. A test that runs and skips only a step counts as skipped here, so the "ran"
# count is a floor.
skipped_tests() {
  awk '/^Suite: / { suite = $2 }
       /^  Test: / { flush(); name = suite "." $2; why = "" }
       /\[SKIPPED\]/ { if (why == "") { why = $0; sub(/.*\[SKIPPED\] */, "", why) } }
       function flush() { if (name != "" && why != "") print name "|" why; name = "" }
       END { flush() }' "$1"
}

# run_suite LABEL URL MIN_PASSED MIN_RAN ARGS...: runs iscsi-test-cu, prints CUnit's counts and
# the skips, and checks them.
run_suite() {
  local label=$1 url=$2 min_passed=$3 min_ran=$4; shift 4
  local log="$TMP/$label.log"
  timeout 180 iscsi-test-cu --dataloss --verbose \
    --initiator-name=iqn.2026-12.io.sluice:conformance-a --initiator-name-2=iqn.2026-12.io.sluice:conformance-b \
    "$@" "$url" >"$log" 2>&1
  local rc=$?
  local counts total passed failed skipped ran
  counts=$(awk '$1 == "tests" { print $2, $4, $5 }' "$log")
  if [[ $rc -ne 0 || -z $counts ]]; then
    fail "$label: iscsi-test-cu exited $rc without a summary: $(tail -5 "$log")"
    return
  fi
  read -r total passed failed <<<"$counts"
  skipped_tests "$log" >"$TMP/$label.skips"
  skipped=$(wc -l <"$TMP/$label.skips")
  ran=$((passed - skipped))
  echo "$label: $total tests, $passed passed by CUnit's count ($skipped of them skipped by the suite," \
    "$ran ran and passed), $failed failed"
  if [[ $failed -gt 0 ]]; then
    echo "$label: failed tests:"
    awk '/^Suite: / { suite = $2 } /^  Test: / { name = suite "." $2 } /FAILED$/ && name != "" { print "  " name; name = "" }' "$log"
  fi
  local name why unexpected=0
  while IFS='|' read -r name why; do
    if ! grep -q "^$name|" <<<"$expected_skips"; then
      echo "$label: unexpected skip: $name ($why)"
      unexpected=$((unexpected + 1))
    fi
  done <"$TMP/$label.skips"
  if [[ $failed -eq 0 && $passed -ge $min_passed && $ran -ge $min_ran && $unexpected -eq 0 ]]; then
    pass "$label: no failures, $passed >= $min_passed passed, $ran >= $min_ran ran, every skip listed"
  else
    fail "$label: $failed failed, $passed passed (minimum $min_passed), $ran ran (minimum $min_ran), $unexpected unlisted skip(s); log: $(grep -E 'FAILED|\[FAILED\]' "$log" | head -20)"
  fi
}

echo "skips expected (listed in this script):"
grep -v '^$' <<<"$expected_skips" | sed 's/|/: /; s/^/  /'
for lun in 0 1; do
  url="iscsi://$portal/$iqn/$lun"
  run_suite "lun$lun" "$url" "$MIN_PASSED" "$MIN_RAN" --test=ALL "$url"
done
# ReadOnly.ReadOnlySBC on a write-protected LUN: every write refused with DATA PROTECT.
run_suite readonly "iscsi://$portal/$iqn-ro/0" 1 1 --test=ALL.ReadOnly
if grep -q 'not write-protected' "$TMP/readonly.skips"; then fail "readonly: the suite did not see a write-protected LUN"; fi

exec 3>&-  # end of stdin: the target stops
wait_or_kill "$target_pid" 20
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "iscsi_test_target stopped cleanly"; else fail "iscsi_test_target: exit $RC, killed $KILLED: $(tail -5 "$TMP/target.err")"; fi
finish
