#!/usr/bin/env bash
# `sluice migrate import|export` with Debian's stock RocksDB tools: a database made by
# db_bench on the host filesystem is imported into SluiceFS (interrupted by the test hook
# SLUICE_MIGRATE_FAIL_AFTER, then resumed), every key compared through the plugin with
# `ldb scan` (also after an import killed by SIGKILL and resumed), exported to a new host
# directory (interrupted and resumed too) and compared
# again with plain RocksDB; the source's checksums never change; a corrupt SST, a missing
# source, a bad URI, an occupied destination and a full device each fail with a message.
# Usage: migrate_test.sh path/to/sluice path/to/libsluice_rocksdb.so
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice path/to/libsluice_rocksdb.so}
PLUGIN=${2:?usage: $0 path/to/sluice path/to/libsluice_rocksdb.so}
for tool in db_bench ldb sha256sum python3; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not installed (rocksdb-tools)"; exit 77; }
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/migrate.XXXXXX")
HOLDER=
trap '[[ -n "$HOLDER" ]] && kill $HOLDER 2>/dev/null; rm -rf "$TMP"' EXIT
# pass, fail and finish from lib.sh; this script's own run/expect follow where it has them.
. "$(dirname "$0")/lib.sh"

# run [ENV=V...] CMD ARGS...: stdout in $TMP/out, stderr in $TMP/err, status in $RC.
run() {
  env "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  RC=$?
}
expect() {  # NAME WANT-RC WANT-TEXT (grep in stderr+stdout; "" for none)
  if [[ $RC -ne $2 ]]; then fail "$1: exit $RC, want $2; stderr: $(tail -3 "$TMP/err")"; return 1; fi
  if [[ -n "$3" ]] && ! grep -q -- "$3" "$TMP/err" "$TMP/out"; then
    fail "$1: no '$3' in output: $(tail -3 "$TMP/err" "$TMP/out")"; return 1
  fi
  pass "$1"
}
migrate() { run timeout 120 "$SLUICE" migrate "$@"; }
sums() { (cd "$1" && sha256sum -- *) ; }
# scan DB [FS_URI]: every key and value, hex, into stdout.
scan() {
  if [[ $# -eq 2 ]]; then LD_PRELOAD=$PLUGIN timeout 120 ldb "--fs_uri=$2" "--db=$1" --hex scan
  else timeout 120 ldb "--db=$1" --hex scan; fi
}

# A database on the host filesystem with several SSTs and a WAL.
SRC=$TMP/src
timeout 120 db_bench --db="$SRC" --benchmarks=fillrandom --num=5000 --value_size=100 --compression_type=none \
  --write_buffer_size=65536 --target_file_size_base=65536 --statistics=0 >"$TMP/bench.out" 2>&1 \
  || { echo "FAIL db_bench fillrandom: $(tail -3 "$TMP/bench.out")"; exit 1; }
nsst=$(ls "$SRC"/*.sst | wc -l)
[[ $nsst -ge 3 ]] && pass "db_bench made $nsst SST files" || fail "db_bench made only $nsst SST files"
sums "$SRC" >"$TMP/src.sums"
# ldb opens a database read-write: the expected contents come from a copy.
cp -a "$SRC" "$TMP/ref"
scan "$TMP/ref" >"$TMP/want.scan" || fail "ldb scan of the reference copy"
nkeys=$(wc -l <"$TMP/want.scan")
[[ $nkeys -gt 1000 ]] && pass "reference holds $nkeys keys" || fail "reference holds only $nkeys keys"
nfiles=$(ls "$SRC" | wc -l)

IMG=$TMP/image
truncate -s 256M "$IMG"
URI="sluice://uring:$IMG?format=1"
PLAIN="sluice://uring:$IMG"

# Interrupted import: 3 files verified, the 4th half written, then resume.
run SLUICE_MIGRATE_FAIL_AFTER=3 timeout 120 "$SLUICE" migrate import "$SRC" "$URI" --db /db
expect "interrupted import fails" 1 "SLUICE_MIGRATE_FAIL_AFTER"
run timeout 60 "$SLUICE" fs ls "$IMG" /db
if grep -q '^SLUICE-MIGRATE$' "$TMP/out" && grep -q '\.migrating$' "$TMP/out"; then
  pass "interrupted import left its manifest and a partial file"
else fail "after the interruption /db holds: $(tr '\n' ' ' <"$TMP/out")"; fi
run timeout 120 "$SLUICE" migrate import "$SRC" "$PLAIN" --db /db --progress
if expect "resumed import" 0 "import: files $nfiles/$nfiles"; then
  grep -q "resuming: 3 file(s) already verified" "$TMP/err" && grep -q "3 file(s), .* skipped" "$TMP/err" \
    && pass "resume skipped the 3 verified files" || fail "resume did not skip 3 files: $(cat "$TMP/err")"
fi
run timeout 60 "$SLUICE" fs ls "$IMG" /db
if grep -q -e '^SLUICE-MIGRATE$' -e '\.migrating$' "$TMP/out"; then fail "import left its own files: $(tr '\n' ' ' <"$TMP/out")"
elif [[ $(wc -l <"$TMP/out") -eq $nfiles ]]; then pass "imported $nfiles files"
else fail "/db holds $(wc -l <"$TMP/out") files, want $nfiles"; fi

if scan /db "$PLAIN" >"$TMP/got.scan" 2>"$TMP/err"; then
  cmp -s "$TMP/want.scan" "$TMP/got.scan" && pass "every key and value matches through the plugin" \
    || fail "ldb scan through the plugin differs ($(wc -l <"$TMP/got.scan") lines, want $nkeys)"
else fail "ldb scan through the plugin: $(tail -3 "$TMP/err")"; fi

# Killed by SIGKILL half way through a file (no cleanup, no unmount): the next run recovers
# the image, skips what the manifest lists and ends with the same database.
run SLUICE_MIGRATE_FAIL_AFTER=5:kill timeout 120 "$SLUICE" migrate import "$SRC" "$PLAIN" --db /killed
[[ $RC -eq 137 ]] && pass "import killed by SIGKILL" || fail "killed import: exit $RC, want 137: $(tail -3 "$TMP/err")"
migrate import "$SRC" "$PLAIN" --db /killed
expect "import after a kill resumes" 0 "5 file(s), .* skipped"
if scan /killed "$PLAIN" >"$TMP/killed.scan" 2>"$TMP/err"; then
  cmp -s "$TMP/want.scan" "$TMP/killed.scan" && pass "every key and value matches after kill and resume" \
    || fail "ldb scan after kill and resume differs"
else fail "ldb scan after kill and resume: $(tail -3 "$TMP/err")"; fi

# A file that is not immutable (not an SST) and changed at the same size between two runs
# is copied again, not skipped.
cp -a "$SRC" "$TMP/mut"
run SLUICE_MIGRATE_FAIL_AFTER=$((nfiles - 1)) timeout 120 "$SLUICE" migrate import "$TMP/mut" "$PLAIN" --db /mut
expect "import stopped before CURRENT" 1 "SLUICE_MIGRATE_FAIL_AFTER"
ident=$(cat "$TMP/mut/IDENTITY")
printf '%s' "X${ident:1}" >"$TMP/mut/IDENTITY"
migrate import "$TMP/mut" "$PLAIN" --db /mut
expect "resume after a same-size change" 0 "$((nfiles - 2)) file(s), .* skipped"
run timeout 60 "$SLUICE" fs cat "$IMG" /mut/IDENTITY
[[ "$(cat "$TMP/out")" == "X${ident:1}" ]] && pass "the changed IDENTITY was copied again" \
  || fail "IDENTITY in SluiceFS is '$(cat "$TMP/out")', want 'X${ident:1}'"

# An occupied destination is refused, --force replaces it.
migrate import "$SRC" "$PLAIN" --db /db
expect "import over an existing database is refused" 1 "already holds"
migrate import "$SRC" "$PLAIN" --db /db --force
expect "import --force replaces it" 0 "$nfiles file(s)"

# Export back, interrupted and resumed, and compare with plain RocksDB.
run SLUICE_MIGRATE_FAIL_AFTER=2 timeout 120 "$SLUICE" migrate export "$PLAIN" --db /db "$TMP/back"
expect "interrupted export fails" 1 "SLUICE_MIGRATE_FAIL_AFTER"
migrate export "$PLAIN" --db /db "$TMP/back"
expect "resumed export" 0 "2 file(s), .* skipped"
if [[ -e "$TMP/back/SLUICE-MIGRATE" ]] || ls "$TMP/back" | grep -q '\.migrating$'; then fail "export left its own files"; fi
if scan "$TMP/back" >"$TMP/back.scan" 2>"$TMP/err"; then
  cmp -s "$TMP/want.scan" "$TMP/back.scan" && pass "every key and value matches after export" \
    || fail "ldb scan of the export differs ($(wc -l <"$TMP/back.scan") lines, want $nkeys)"
else fail "ldb scan of the export: $(tail -3 "$TMP/err")"; fi

# A corrupt SST in the source: the import names it and fails.
cp -a "$SRC" "$TMP/bad"
victim=$(ls -S "$TMP/bad"/*.sst | head -1)
size=$(stat -c %s "$victim")
printf '\xa5' | dd of="$victim" bs=1 seek=$((size / 3)) conv=notrunc status=none
cmp -s "$victim" "$SRC/$(basename "$victim")" && fail "the corruption changed nothing"
migrate import "$TMP/bad" "$PLAIN" --db /bad
if expect "import of a corrupt SST fails" 1 "checksum"; then
  grep -q "$(basename "$victim")" "$TMP/err" && pass "the failure names $(basename "$victim")" \
    || fail "the failure does not name $(basename "$victim"): $(cat "$TMP/err")"
fi

# Clear errors.
migrate import "$TMP/missing" "$PLAIN" --db /x
expect "missing source" 1 "no such directory"
migrate import "$TMP" "$PLAIN" --db /x
expect "source without a database" 2 "no CURRENT"
migrate import "$SRC" "sluice://" --db /x
expect "bad URI" 2 "bad SluiceFS URI"
migrate import "$SRC" "sluice://uring:$TMP/nofile" --db /x
expect "missing device" 1 "cannot open device"
migrate import "$SRC" "$PLAIN" --db relative
expect "relative --db" 2 "absolute"
migrate export "$PLAIN" --db /nothing "$TMP/none"
expect "export of a missing database" 1 "no CURRENT"
truncate -s 8M "$TMP/small"
migrate import "$SRC" "sluice://uring:$TMP/small?format=1" --db /db
expect "a full device" 1 "space"

# A source open in another process (RocksDB holds LOCK with fcntl; python's lockf does the
# same) is refused.
cp -a "$SRC" "$TMP/held"
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(60)' \
  "$TMP/held/LOCK" >"$TMP/lock.out" &
HOLDER=$!
for _ in $(seq 100); do grep -q locked "$TMP/lock.out" && break; sleep 0.1; done
migrate import "$TMP/held" "$PLAIN" --db /held
expect "a source open in another process is refused" 1 "is open in process"
kill $HOLDER 2>/dev/null; wait $HOLDER 2>/dev/null; HOLDER=

sums "$SRC" >"$TMP/src.sums.after"
cmp -s "$TMP/src.sums" "$TMP/src.sums.after" && pass "the source is unchanged (sha256 of every file)" \
  || fail "the source changed: $(diff "$TMP/src.sums" "$TMP/src.sums.after" | head -5)"

finish
