#!/usr/bin/env bash
# Every subcommand on bad input: a missing device, a directory, a 4 KiB file, random bytes, a
# truncated image, an image whose super block copies are zeroed, bad specs, malformed and
# out-of-range numbers, unknown subcommands. Each must fail the way the CLI promises (cli.h):
# exit 1 or 2 (never a signal, never 0) and exactly one line on stderr, "sluice ...: why".
# Commands that would write (mkfs, init, create-store) only meet devices they must refuse
# whatever the format guard decides (missing, a directory, too small).
# Shared helpers: lib.sh (make_tmp, pass/fail); the case runner `bad` is this script's own.
# Usage: cli_bad_input_test.sh path/to/sluice
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice}
. "$(dirname "$0")/lib.sh"
make_tmp cli_bad_input
CASES=0

# bad ARGS...: one case. The exit status is 1 or 2 and stderr is one "sluice ...: " line.
bad() {
  CASES=$((CASES + 1))
  timeout 60 "$SLUICE" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  local rc=$? lines
  lines=$(wc -l <"$TMP/err")
  if [[ $rc -ne 1 && $rc -ne 2 ]]; then
    fail "sluice $*: exit $rc (want 1 or 2$([[ $rc -gt 128 ]] && echo ", got signal $((rc - 128))")); stderr: $(head -c 400 "$TMP/err")"
  elif [[ $lines -ne 1 ]] || ! grep -q '^sluice[ a-z-]*: ' "$TMP/err"; then
    fail "sluice $*: want one 'sluice ...: ' line on stderr, got $lines: $(head -c 400 "$TMP/err")"
  else
    pass "sluice $* -> $rc: $(cat "$TMP/err")"
  fi
}

# ---- the devices ---------------------------------------------------------------------------
MISSING=$TMP/no/such/image
DIR=$TMP/dir; mkdir "$DIR"
SMALL=$TMP/small; head -c 4096 /dev/urandom >"$SMALL"
RANDOM_IMG=$TMP/random; head -c $((8 << 20)) /dev/urandom >"$RANDOM_IMG"
GOOD=$TMP/good; truncate -s 64M "$GOOD"
if ! "$SLUICE" mkfs "$GOOD" >/dev/null 2>&1; then echo "FAIL setup: mkfs of a fresh image"; exit 1; fi
"$SLUICE" fs cp "$GOOD" "$SMALL" fs:/file >/dev/null 2>&1 || { echo "FAIL setup: fs cp"; exit 1; }
TRUNC=$TMP/truncated; head -c $((1 << 20)) "$GOOD" >"$TRUNC"
ZEROED=$TMP/zeroed; cp "$GOOD" "$ZEROED"; dd if=/dev/zero of="$ZEROED" bs=4096 count=2 conv=notrunc status=none
LVS=$TMP/lvs; truncate -s 64M "$LVS"
"$SLUICE" lvol create-store "$LVS" pool >/dev/null 2>&1 || { echo "FAIL setup: lvol create-store"; exit 1; }

# ---- readers: every device above that holds no valid store ---------------------------------
for dev in "$MISSING" "$DIR" "$SMALL" "$RANDOM_IMG" "$TRUNC" "$ZEROED"; do
  bad fsck "$dev"
  bad fs ls "$dev"
  bad fs stat "$dev" /file
  bad fs cat "$dev" /file
  bad fs df "$dev"
  bad fs cp "$dev" fs:/file "$TMP/copied"
  bad fs mkdir "$dev" /d
  bad fs rm "$dev" /file
  bad blob ls -d "$dev"
  bad blob show -d "$dev" 1
  bad blob check -d "$dev"
  bad lvol list -d "$dev"
  bad lvol create -d "$dev" vol 1M
  bad perf -T "lvol:$dev/vol" -t 0.1
done
[[ -e $TMP/copied ]] && fail "fs cp out of a bad device left $TMP/copied behind"
# dump decodes what it can from a readable device; a missing one, a directory and a short file fail.
for dev in "$MISSING" "$DIR" "$SMALL"; do bad blob dump -d "$dev"; done
# perf reads and writes raw devices: only what cannot be opened or is too small fails.
for dev in "$MISSING" "$DIR"; do bad perf -T "$dev" -t 0.1; done
bad perf -T "$SMALL" -o 8k -t 0.1

# ---- writers on devices they must refuse whatever they hold ---------------------------------
for dev in "$MISSING" "$DIR" "$SMALL"; do
  bad mkfs "$dev"
  bad blob init -d "$dev"
  bad lvol create-store "$dev" pool2
done

# ---- fs cp: a directory on either side, nothing left behind ---------------------------------
bad fs cp "$GOOD" "$DIR" fs:/dir-copy
"$SLUICE" fs stat "$GOOD" /dir-copy >/dev/null 2>&1 && fail "fs cp of a directory left fs:/dir-copy behind"
"$SLUICE" fs mkdir "$GOOD" /sub >/dev/null 2>&1 || fail "setup: fs mkdir /sub"
bad fs cp "$GOOD" fs:/sub "$TMP/sub-copy"
[[ -e $TMP/sub-copy ]] && fail "fs cp of a SluiceFS directory left $TMP/sub-copy behind"
bad fs cp "$GOOD" fs:/missing "$TMP/missing-copy"
[[ -e $TMP/missing-copy ]] && fail "fs cp of a missing file left $TMP/missing-copy behind"
bad fs cp "$GOOD" "$TMP/no-such-file" fs:/x
bad fs cp "$GOOD" "$SMALL" "$TMP/both-host"

# ---- bad specs -----------------------------------------------------------------------------
for spec in floppy:1G uring: malloc:abc malloc:0 null:1G?qd=1abc null:1G?colour=red lvol: lvol:pool lvol:nostore/vol \
  "lvol:$LVS/novol" "lvol:uring:$LVS/novol" error: crashsim:floppy:1G nvme:banana nvme:0000:77:00.0/1abc; do
  bad perf -T "$spec" -t 0.1
done
bad fs ls floppy:1G
bad blob ls -d uring:
bad migrate status sluice://
bad migrate status "sluice://$GOOD"
bad migrate export "sluice://$MISSING" --db /db "$TMP/export"

# ---- numbers: malformed and out of range ----------------------------------------------------
for q in 0 1abc -1 010x 0x10 99999999999999999999999 65537; do bad perf -T null:1G -q "$q" -t 0.1; done
for t in 0 1abc -1 1e3 inf nan; do bad perf -T null:1G -t "$t"; done
for o in 0 1abc 3 4k1 2G; do bad perf -T null:1G -o "$o" -t 0.1; done
bad perf -T null:1G -M 101 -t 0.1
bad perf -T null:1G -c 1abc -t 0.1
bad perf -T null:1G -c 99999 -t 0.1
bad perf -T null:1G --seed 1abc -t 0.1
bad perf -T null:1G --spin-us -5 -t 0.1
bad nvme perf 0000:77:00.0/1abc -t 0.1
bad nvme perf 0000:77:00.0 -q 1abc
bad nvme perf 0000:77:00.0 -q 70000
bad nvme perf 0000:77:00.0 -t 1abc
bad nvme smart-log 0000:77:00.0 -n 1abc
bad nvme identify banana
bad setup --sysfs-root "$TMP" --proc-root "$TMP" hugepages 1abc
bad setup --sysfs-root "$TMP" --proc-root "$TMP" hugepages -1
bad setup --sysfs-root "$TMP" --proc-root "$TMP" hugepages 99999999999999999999999
bad setup --sysfs-root "$TMP" --proc-root "$TMP" bind 12:34
bad blob show -d "$GOOD" 1abc
bad blob show -d "$GOOD" 99999999999999999999999
bad blob create -d "$GOOD" --size 1abc
bad mkfs "$TMP/never" --cluster-size 3
bad lvol create -d "$LVS" vol 1abc
bad lvol create -d "$LVS" vol 0
bad lvol create-store "$TMP/never" 'bad name!'
bad mount "$GOOD" "$DIR" --threads 1abc
bad mount "$GOOD" "$DIR" --threads 0

# ---- the command line itself ----------------------------------------------------------------
bad
bad bogus
bad help bogus
bad fs bogus
bad lvol bogus
bad perf
bad perf -T null:1G --bogus
bad fs cp "$GOOD" only-one

grep -q "^sluice: unknown subcommand 'bogus'" <(timeout 10 "$SLUICE" bogus 2>&1) || fail "sluice bogus: no 'unknown subcommand'"
grep -q "^sluice fs: unknown subcommand 'bogus' (see sluice fs --help)" <(timeout 10 "$SLUICE" fs bogus 2>&1) ||
  fail "sluice fs bogus: does not name 'sluice fs'"
grep -q "^Usage: sluice" <(timeout 10 "$SLUICE" help) || fail "sluice help: no usage on stdout"
[[ $(timeout 10 "$SLUICE" --version) == "sluice "[0-9]* ]] || fail "sluice --version: no version"
grep -q "lvol:" <(timeout 10 "$SLUICE" perf --help) || fail "sluice perf --help does not name lvol:"

echo "cli_bad_input: $CASES cases, $FAILS failure(s)"
[[ $FAILS -eq 0 ]]
