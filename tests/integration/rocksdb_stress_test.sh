#!/usr/bin/env bash
# RocksDB's own stress and crash test on SluiceFS: db_stress 7.8 (built from Debian's source
# package by rocksdb_source_build.sh) through the plugin, on a fresh image, the expected
# state (what every acknowledged write left) on the host, outside the crash.
#   run     a normal run: two clean reopens, then db_stress's full verification; exit 0
#   sync0   blackbox crash rounds as db_crashtest.py runs them: SIGKILL after some seconds,
#   sync1   restart with the same flags, which first checks every key against the expected
#   flush   state ("Crash-recovery verification"); --sync=0 (RocksDB's default: a process
#           crash must lose nothing), --sync=1, and --sync=0 with tiny memtables and files so
#           that flushes and compactions run all the time. After the last kill a short run
#           with the same flags verifies it and must end cleanly: every crash is verified.
# A round fails when its verification fails, when db_stress exits before its kill, or when
# the verification did not happen; the first failure ends the variant (the expected state
# no longer matches the DB). --posix runs the same on the host's file system, in $TMPDIR:
# the control, where every round must pass.
# Usage: rocksdb_stress_test.sh run|sync0|sync1|flush SLUICE PLUGIN.so BIN-DIR [--posix]
set -uo pipefail
. "$(dirname "$0")/lib.sh"

usage="usage: $0 run|sync0|sync1|flush sluice libsluice_rocksdb.so bin-dir [--posix]"
VARIANT=${1:?$usage}
SLUICE=${2:?$usage}
PLUGIN=${3:?$usage}
STRESS=${4:?$usage}/db_stress
FS=sluice
[[ "${5:-}" == --posix ]] && FS=posix
if [[ ! -x $STRESS ]]; then echo "SKIP: $STRESS not built (rocksdb_source_build.sh)"; exit 77; fi
make_tmp "rocksdb_stress_$VARIANT"

# Crash rounds: seconds of operations before the SIGKILL, varied so the kills land in
# different states. Kept short: all RocksDB tests together stay within a few minutes on the
# 2-core machine.
KILL_AFTER=(6 10 8)
FINAL_OPS=2000      # ops per thread of the run that verifies the last crash, then ends
RUN_OPS=30000       # ops per thread of the normal run
# Every wait is bounded by what is left of 240 s (ctest's TIMEOUT is 300): a run that hangs
# fails the test instead of running into the timeout.
DEADLINE=$((SECONDS + 240))
left() { local n=$((DEADLINE - SECONDS)); echo $((n > 0 ? n : 1)); }

EXP=$TMP/expected
mkdir -p "$EXP"
if [[ $FS == sluice ]]; then
  IMG=$TMP/image
  truncate -s 4G "$IMG"
  if ! "$SLUICE" mkfs "$IMG" >"$TMP/mkfs.out" 2>&1; then fail "sluice mkfs: $(cat "$TMP/mkfs.out")"; finish; fi
  # Env::CreateFromUri reads '=' as an option list: the image is formatted, the URI is bare.
  where=(--fs_uri="sluice://uring:$IMG" --db=/stress)
  preload=(LD_PRELOAD="$PLUGIN")
  label="SluiceFS"
else
  where=(--db="$TMP/db")
  preload=()
  label="POSIX"
fi

# db_crashtest.py's defaults where they matter, fixed rather than drawn at random so that a
# failure repeats (a later flag overrides an earlier one). 7.8 needs
# --clear_column_family_one_in=0 beside --expected_values_dir.
flags=("${where[@]}" --expected_values_dir="$EXP" --clear_column_family_one_in=0
       --destroy_db_initially=0 --threads=2 --max_key=100000 --value_size_mult=32
       --write_buffer_size=4194304 --target_file_size_base=2097152
       --max_bytes_for_level_base=10485760 --max_write_buffer_number=3 --verify_checksum=1)
case $VARIANT in
  run)   flags+=(--sync=0); desc="--sync=0" ;;
  sync0) flags+=(--sync=0); desc="--sync=0" ;;
  sync1) flags+=(--sync=1); desc="--sync=1" ;;
  flush) desc="flush-heavy --sync=0"
         flags+=(--sync=0 --write_buffer_size=131072 --target_file_size_base=131072
                 --max_bytes_for_level_base=524288 --level0_file_num_compaction_trigger=2
                 --max_write_buffer_number=2 --flush_one_in=20000 --compact_range_one_in=50000
                 --compact_files_one_in=50000) ;;
  *) echo "$usage"; exit 2 ;;
esac

# stress NAME EXTRA-FLAGS...: starts db_stress in the background, output in $TMP/NAME.out/.err
# (line-buffered: a SIGKILL must not eat what it printed). TEST_TMPDIR keeps its scratch
# directories (secondaries) in $TMP.
stress() {
  local name=$1; shift
  bg_start env "${preload[@]}" TEST_TMPDIR="$TMP" stdbuf -oL -eL "$STRESS" "${flags[@]}" "$@" \
    >"$TMP/$name.out" 2>"$TMP/$name.err"
}
has() { grep -q -- "$2" "$TMP/$1.out" "$TMP/$1.err"; }
# Why a run failed: the end of its stderr (warnings left out) and of its stdout.
show() {
  echo "  stderr: $(grep -v '^WARNING' "$TMP/$1.err" | head -5 | tr '\n' '|')"
  echo "  stdout: $(tail -3 "$TMP/$1.out" | tr '\n' '|')"
}
# The WAL files on the device as a kill left them, before the restart recovers them (a
# read-only look: write buffers are replayed only by a read-write mount): the evidence when
# a verification finds writes missing.
list_wals() {
  if [[ $FS == sluice ]]; then
    "$SLUICE" fs ls -l "$IMG" /stress 2>&1 | grep '\.log' | tr -s ' ' | tr '\n' '|'
  else
    ls -l "$TMP/db"/*.log 2>&1 | tr -s ' ' | tr '\n' '|'
  fi
}

# The DB's info LOGs (one per open) count the flushes and compactions that finished.
log_events() {  # EVENT: how many times the LOGs record it
  local f n=0
  if [[ $FS == sluice ]]; then
    for f in $("$SLUICE" fs ls "$IMG" /stress 2>/dev/null | grep '^LOG'); do
      n=$((n + $("$SLUICE" fs cat "$IMG" "/stress/$f" 2>/dev/null | grep -c "\"event\": \"$1\"")))
    done
  else
    for f in "$TMP/db"/LOG*; do n=$((n + $(grep -c "\"event\": \"$1\"" "$f"))); done
  fi
  echo "$n"
}

start=$SECONDS
if [[ $VARIANT == run ]]; then
  stress run --ops_per_thread=$RUN_OPS --reopen=2
  wait_or_kill "$BG_PID" "$(left)"
  if [[ $KILLED -eq 1 ]]; then fail "db_stress ($label): not done after $((SECONDS - start)) s"; show run
  elif [[ $RC -ne 0 ]]; then fail "db_stress ($label): exit $RC"; show run
  elif ! has run "Verification successful"; then fail "db_stress ($label): no 'Verification successful'"; show run
  else pass "db_stress ($label): $RUN_OPS ops x 2 threads, 2 reopens, verified in $((SECONDS - start)) s"; fi
  report_points "rocksdb db_stress $desc on $label" "runs with 2 reopens" 1 "$FAILS"
else
  planned=${#KILL_AFTER[@]}
  verified=0 tried=0 ok=1 wals="" last_wals=""
  # Round 0 starts on an empty DB; each later start verifies the crash before it.
  for ((round = 0; round <= planned && ok; round++)); do
    name=round$round
    last_wals=$wals
    if [[ $SECONDS -ge $DEADLINE ]]; then fail "out of time (240 s) before round $round ($label, $desc)"; break; fi
    if [[ $round -lt $planned ]]; then
      stress $name --ops_per_thread=100000000 --reopen=0
      # The clock starts with the operations, after the open and the verification (which
      # take seconds more on a loaded machine): every kill lands in the write phase.
      wait_for_output "$BG_PID" "$TMP/$name.out" "Starting database operations" "$(left)"
      wait_or_kill "$BG_PID" "${KILL_AFTER[$round]}"
      wals=$(list_wals)
    else
      stress $name --ops_per_thread=$FINAL_OPS --reopen=0
      wait_or_kill "$BG_PID" "$(left)"
    fi
    if [[ $round -gt 0 ]]; then
      tried=$((tried + 1))
      if has $name "Crash-recovery verification failed"; then
        fail "crash $round of $planned ($label, $desc): recovery verification failed"; show $name
        echo "  WAL files at the kill (size, allocated): $last_wals"; ok=0; break
      elif ! has $name "Crash-recovery verification passed"; then
        fail "crash $round of $planned ($label, $desc): no verification (exit $RC, killed $KILLED)"; show $name; ok=0; break
      fi
      verified=$((verified + 1))
      pass "crash $round of $planned ($label, $desc): every key as expected after the SIGKILL"
    fi
    if [[ $round -lt $planned && $KILLED -eq 0 ]]; then
      fail "round $round ($label, $desc): db_stress exited ($RC) before its kill at ${KILL_AFTER[$round]} s"; show $name; ok=0
    elif [[ $round -eq $planned ]]; then
      if [[ $KILLED -eq 1 ]]; then fail "final run ($label, $desc): not done by the deadline (240 s)"; show $name
      elif [[ $RC -ne 0 ]] || ! has $name "Verification successful"; then
        fail "final run ($label, $desc): exit $RC, no clean end"; show $name
      else pass "final run ($label, $desc): ended cleanly, verified"; fi
    fi
  done
  if [[ $verified -ne $planned ]]; then fail "$verified of $planned crash rounds verified ($label, $desc)"; fi
  # Rounds after a failure are not run: "tried" counts the verifications that happened.
  report_points "rocksdb db_stress blackbox $desc on $label, $planned rounds planned" "crash rounds" \
    "$tried" $((tried - verified))
  if [[ $VARIANT == flush && $ok -eq 1 ]]; then
    flushes=$(log_events flush_finished) compactions=$(log_events compaction_finished)
    if [[ $flushes -ge 20 && $compactions -ge 5 ]]; then pass "flush-heavy: $flushes flushes, $compactions compactions"
    else fail "flush-heavy variant ran only $flushes flushes and $compactions compactions"; fi
  fi
  echo "$desc ($label): $verified of $planned crash rounds verified in $((SECONDS - start)) s"
fi

if [[ $FS == sluice ]]; then
  # It ran in the image (an --fs_uri without the plugin fails, but be sure), and left it sound.
  if "$SLUICE" fs ls "$IMG" /stress 2>/dev/null | grep -q '^CURRENT'; then pass "the DB is in the image"
  else fail "no /stress/CURRENT in the image"; fi
  if "$SLUICE" fsck "$IMG" >"$TMP/fsck.out" 2>&1; then pass "fsck clean"
  else fail "fsck: $(tail -5 "$TMP/fsck.out")"; fi
fi
finish
