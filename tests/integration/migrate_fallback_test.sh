#!/usr/bin/env bash
# Fallback mode (plugin URI option fallback=/DIR) with `sluice migrate status|finish`: a
# database made by db_bench on the host filesystem keeps running through the plugin, reading
# what SluiceFS lacks from the host directory, while db_bench overwrite (small memtables and
# files, so flushes and compactions run) moves its data over; status lists what is left on
# the kernel side, finish copies it, and then the database opens without fallback= with the
# host directory moved away, every key and value as before. The host directory is never
# written. Status mounts read-only, so it may run while the database does.
# Usage: migrate_fallback_test.sh path/to/sluice path/to/libsluice_rocksdb.so
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice path/to/libsluice_rocksdb.so}
PLUGIN=${2:?usage: $0 path/to/sluice path/to/libsluice_rocksdb.so}
for tool in db_bench ldb sha256sum; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not installed (rocksdb-tools)"; exit 77; }
done
. "$(dirname "$0")/lib.sh"
make_tmp migrate_fallback
sums() { (cd "$1" && sha256sum -- *) ; }
# json_field NAME: a number field of `migrate status --json` in $TMP/status.json.
json_field() { sed -n "s/^ *\"$1\": \([0-9a-z]*\),\{0,1\}$/\1/p" "$TMP/status.json"; }
status_json() {
  timeout 60 "$SLUICE" migrate status --json "$1" >"$TMP/status.json" 2>"$TMP/err" \
    || { fail "migrate status: $(cat "$TMP/err")"; return 1; }
}

OLD=$TMP/old
BENCH=(--num=20000 --value_size=100 --compression_type=none --write_buffer_size=65536
       --target_file_size_base=65536 --statistics=0)
timeout 120 db_bench --db="$OLD" --benchmarks=fillrandom "${BENCH[@]}" >"$TMP/bench.out" 2>&1 \
  || { echo "FAIL db_bench fillrandom: $(tail -3 "$TMP/bench.out")"; exit 1; }
sums "$OLD" >"$TMP/old.sums"
# The keys as written (ldb opens read-write, so from a copy): overwrite adds keys and
# changes values but never removes a key, so all of these must survive the move.
cp -a "$OLD" "$TMP/ref"
timeout 120 ldb --db="$TMP/ref" --hex scan 2>"$TMP/err" | sed 's/ : .*//' | sort >"$TMP/keys.before"
[[ -s "$TMP/keys.before" ]] || fail "ldb scan of the original: $(tail -3 "$TMP/err")"

IMG=$TMP/image
truncate -s 256M "$IMG"
URI="sluice://uring:$IMG?format=1&fallback=$OLD"
out=$(timeout 60 "$SLUICE" migrate status "$URI" 2>&1); rc=$?
[[ $rc -eq 1 && "$out" == *"holds no SluiceFS yet"* ]] && pass "status on a blank device says so" \
  || fail "status on a blank device: exit $rc: $out"
timeout 60 "$SLUICE" mkfs "$IMG" >/dev/null || fail "sluice mkfs"

if status_json "$URI"; then
  ssts=$(json_field remaining_sst)
  [[ -n "$ssts" && $ssts -gt 0 ]] && pass "before the first run, $ssts SST files are on the kernel side" \
    || fail "status before the first run: $(cat "$TMP/status.json")"
fi

# Overwrite through the plugin until no SST is left on the kernel side (bounded).
left=unknown
for round in 1 2 3 4; do
  if ! LD_PRELOAD=$PLUGIN timeout 180 db_bench "--fs_uri=$URI" --db="$OLD" --use_existing_db=1 \
      --benchmarks=overwrite --writes=40000 "${BENCH[@]}" >"$TMP/bench.out" 2>&1; then
    fail "db_bench overwrite round $round: $(tail -3 "$TMP/bench.out")"; break
  fi
  status_json "$URI" || break
  left=$(json_field remaining_sst)
  echo "     round $round: $left SST file(s) left on the kernel side"
  [[ "$left" == 0 ]] && break
done
[[ "$left" == 0 ]] && pass "compaction moved every SST into SluiceFS" \
  || pass "after 4 rounds $left SST file(s) remain on the kernel side (finish copies them)"

# Through fallback, the database as RocksDB sees it now.
if LD_PRELOAD=$PLUGIN timeout 120 ldb "--fs_uri=$URI" --db="$OLD" --hex scan >"$TMP/want.scan" 2>"$TMP/err"; then
  pass "ldb scan through fallback ($(wc -l <"$TMP/want.scan") keys)"
else fail "ldb scan through fallback: $(tail -3 "$TMP/err")"; fi

# Before finish, the database must not be copied out: some of it is only on the kernel side.
out=$(timeout 60 "$SLUICE" migrate export "sluice://uring:$IMG" --db "$OLD" "$TMP/early" 2>&1); rc=$?
[[ $rc -eq 1 && "$out" == *"fallback mode"* ]] && pass "export before finish is refused" \
  || fail "export before finish: exit $rc: $out"

# A finish killed half way through its first file is simply run again.
if [[ $(json_field remaining_files) -gt 0 ]]; then
  rc=$(env SLUICE_MIGRATE_FAIL_AFTER=0:kill timeout 120 "$SLUICE" migrate finish "$URI" >/dev/null 2>&1 </dev/null
       echo $?)
  [[ $rc -eq 137 ]] && pass "finish killed by SIGKILL" || fail "killed finish: exit $rc, want 137"
fi
if timeout 120 "$SLUICE" migrate finish "$URI" >"$TMP/out" 2>"$TMP/err"; then
  grep -q "fallback is over" "$TMP/err" && pass "migrate finish" || fail "migrate finish said: $(cat "$TMP/err")"
else fail "migrate finish: exit $?: $(cat "$TMP/err")"; fi
if status_json "$URI"; then
  [[ "$(json_field finished)" == true && "$(json_field remaining_files)" == 0 ]] && pass "status: finished, nothing left" \
    || fail "status after finish: $(cat "$TMP/status.json")"
fi
timeout 60 "$SLUICE" migrate status "$URI" >"$TMP/out" 2>&1
grep -q "fallback finished" "$TMP/out" && pass "status says so in words" || fail "status: $(cat "$TMP/out")"

sums "$OLD" >"$TMP/old.sums.after"
cmp -s "$TMP/old.sums" "$TMP/old.sums.after" && pass "the kernel directory was never written" \
  || fail "the kernel directory changed: $(diff "$TMP/old.sums" "$TMP/old.sums.after" | head -5)"

# Without fallback= and with the kernel directory out of the way: everything is in SluiceFS.
mv "$OLD" "$TMP/old.moved"
if LD_PRELOAD=$PLUGIN timeout 120 ldb "--fs_uri=sluice://uring:$IMG" --db="$OLD" --hex scan >"$TMP/got.scan" 2>"$TMP/err"; then
  cmp -s "$TMP/want.scan" "$TMP/got.scan" && pass "every key and value matches without fallback" \
    || fail "ldb scan without fallback differs ($(wc -l <"$TMP/got.scan") lines, want $(wc -l <"$TMP/want.scan"))"
else fail "ldb scan without fallback: $(tail -3 "$TMP/err")"; fi
if LD_PRELOAD=$PLUGIN timeout 120 db_bench "--fs_uri=sluice://uring:$IMG" --db="$OLD" --use_existing_db=1 \
    --benchmarks=readrandom --reads=5000 "${BENCH[@]}" >"$TMP/bench.out" 2>&1; then
  found=$(sed -n 's/.*(\([0-9]*\) of \([0-9]*\) found).*/\1/p' "$TMP/bench.out" | head -1)
  [[ -n "$found" && "$found" -gt 0 ]] && pass "db_bench readrandom without fallback found $found of 5000" \
    || fail "readrandom found nothing: $(grep readrandom "$TMP/bench.out")"
else fail "db_bench readrandom without fallback: $(tail -3 "$TMP/bench.out")"; fi

sed 's/ : .*//' "$TMP/got.scan" | sort >"$TMP/keys.after"
missing=$(comm -23 "$TMP/keys.before" "$TMP/keys.after" | wc -l)
[[ $missing -eq 0 ]] && pass "all $(wc -l <"$TMP/keys.before") original keys are there" \
  || fail "$missing of the original keys are missing after the move"

# Bad fallback URIs: a message, not a crash.
out=$(timeout 60 "$SLUICE" migrate status "sluice://uring:$IMG?fallback=relative" 2>&1); rc=$?
[[ $rc -eq 2 && "$out" == *"absolute path"* ]] && pass "relative fallback= refused" || fail "relative fallback=: exit $rc: $out"
out=$(timeout 60 "$SLUICE" migrate status "sluice://uring:$IMG?root=/p&fallback=/q" 2>&1); rc=$?
[[ $rc -ne 0 && "$out" == *"not under root"* ]] && pass "fallback= outside root= refused" || fail "fallback outside root: exit $rc: $out"
out=$(timeout 60 "$SLUICE" migrate finish "sluice://uring:$IMG" 2>&1); rc=$?
[[ $rc -eq 2 && "$out" == *"no fallback"* ]] && pass "finish without fallback= refused" || fail "finish without fallback=: exit $rc: $out"

finish
