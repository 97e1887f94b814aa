#!/usr/bin/env bash
# Debian's stock RocksDB tools on SluiceFS through the plugin (LD_PRELOAD): db_bench
# fillrandom then readrandom in a second process on the same uring image, ldb scan/get,
# sst_dump verify, --env_uri, direct I/O, several DBs in one image; a successful run says
# nothing about errors on stderr; a bad URI (db_bench and ldb) fails with a message and a
# plain non-zero exit; format=1 leaves a device that is not blank exactly as it was.
# Usage: rocksdb_tools_test.sh path/to/libsluice_rocksdb.so [path/to/sluice]
set -uo pipefail

PLUGIN=${1:?usage: $0 path/to/libsluice_rocksdb.so [path/to/sluice]}
SLUICE=${2:-}
for tool in db_bench ldb sst_dump; do
  command -v $tool >/dev/null || { echo "SKIP: $tool not installed (rocksdb-tools)"; exit 77; }
done
. "$(dirname "$0")/lib.sh"
make_tmp rocksdb_tools

IMG=$TMP/image
truncate -s 256M "$IMG"
URI="sluice://uring:$IMG?format=1"
BENCH=(db_bench "--fs_uri=$URI" --db=/bench --num=20000 --value_size=100 --compression_type=none
       --write_buffer_size=1048576 --target_file_size_base=1048576 --statistics=0)

plugin_ok "db_bench fillrandom" "${BENCH[@]}" --benchmarks=fillrandom,flush
grep -q "fillrandom" "$TMP/out" || fail "db_bench fillrandom printed no result: $(tail -3 "$TMP/out")"

# A second process: the image is mounted again and recovered or loaded.
if plugin_ok "db_bench readrandom (existing db)" "${BENCH[@]}" --use_existing_db=1 --benchmarks=readrandom --reads=5000; then
  found=$(db_bench_found)
  if [[ -n "$found" && "$found" -gt 0 ]]; then pass "readrandom found $found of 5000 keys"
  else fail "readrandom found no keys: $(grep readrandom "$TMP/out")"; fi
fi

plugin_ok "db_bench multireadrandom (MultiRead batches)" "${BENCH[@]}" --use_existing_db=1 \
  --benchmarks=multireadrandom --reads=2000 --multiread_batched=1 --batch_size=16

plugin_ok "db_bench direct I/O + async reads" "${BENCH[@]}" --use_existing_db=1 --benchmarks=readrandom,seekrandom \
  --reads=2000 --use_direct_reads=1 --use_direct_io_for_flush_and_compaction=1 --async_io=1 --seek_nexts=10

# Several DBs in one image, opened side by side by one process.
plugin_ok "db_bench --num_multi_db=3" db_bench "--fs_uri=$URI" --db=/multi --num_multi_db=3 --num=3000 \
  --benchmarks=fillrandom,readrandom --reads=1000

if plugin_ok "ldb scan" ldb "--fs_uri=$URI" --db=/bench --hex scan --max_keys=5; then
  lines=$(grep -c ' : ' "$TMP/out")
  [[ $lines -eq 5 ]] && pass "ldb scan listed 5 keys" || fail "ldb scan listed $lines keys, want 5: $(cat "$TMP/out")"
  key=$(head -1 "$TMP/out" | sed 's/ : .*//')
  want=$(head -1 "$TMP/out" | sed 's/.* : //')
  if plugin_ok "ldb get" ldb "--fs_uri=$URI" --db=/bench --hex get "$key"; then
    [[ "$(cat "$TMP/out")" == "$want" ]] && pass "ldb get returns the scanned value" || fail "ldb get $key: '$(cat "$TMP/out")', want '$want'"
  fi
fi

plugin_ok "ldb put" ldb "--fs_uri=$URI" --db=/bench put sluice-key sluice-value
if plugin_ok "ldb get (written key)" ldb "--fs_uri=$URI" --db=/bench get sluice-key; then
  [[ "$(cat "$TMP/out")" == "sluice-value" ]] && pass "ldb reads back its put" || fail "ldb get sluice-key: '$(cat "$TMP/out")'"
fi

if plugin_ok "sst_dump verify" sst_dump "--fs_uri=$URI" --file=/bench --command=verify; then
  grep -q "\.sst" "$TMP/out" && pass "sst_dump visited SST files" || fail "sst_dump listed no SST file: $(head -5 "$TMP/out")"
fi

# RocksDB reads an --env_uri containing '=' as an option list: the image is formatted by now.
plugin_ok "db_bench --env_uri" db_bench "--env_uri=sluice://uring:$IMG" --db=/envdb --num=2000 --benchmarks=fillseq,readseq

# Wrong URIs: a message, exit 1 (not a signal, not silence).
bad_run() {  # NAME EXPECTED-TEXT TOOL ARGS...
  local name=$1 want=$2; shift 2
  plugin_run "$@"
  if [[ $RC -eq 0 || $RC -ge 124 ]]; then fail "$name: exit $RC, want a plain failure; stderr: $(cat "$TMP/err")"
  elif ! grep -q -- "$want" "$TMP/out" "$TMP/err"; then fail "$name: no '$want' in output: $(cat "$TMP/err" "$TMP/out" | tail -5)"
  else pass "$name: exit $RC with '$want'"; fi
}
bad_uri() { bad_run "$1" "$3" db_bench "--fs_uri=$2" --num=10 --benchmarks=fillseq; }
bad_uri "missing device file" "sluice://uring:$TMP/missing" "cannot open device"
bad_uri "unknown device type" "sluice://floppy:/dev/fd0" "unknown device type"
bad_uri "bad option" "sluice://malloc:64M?cache=lots" "cache"
bad_uri "no device" "sluice://" "no device"
bad_run "ldb, no device" "no device" ldb --fs_uri=sluice:// --db=/x scan
bad_uri "a mistyped scheme" "sluice:/dev/null" "does not start with sluice://"
bad_uri "a cache beyond memory" "sluice://malloc:64M?cache=100T" "more than this machine's memory"
bad_uri "a repeated option" "sluice://malloc:64M?cache=1M&cache=2M" "given twice"
bad_run "fallback= unrelated to --db" "does not name this database" \
  db_bench "--fs_uri=sluice://malloc:64M?fallback=/var/lib/mydb" --db=/db1 --num=10 --benchmarks=fillseq
truncate -s 64M "$TMP/blank"
bad_uri "unformatted device" "sluice://uring:$TMP/blank" "format=1"

# format=1 formats a blank device only: an lvol store with a volume stays exactly as it was.
if [[ -n "$SLUICE" ]]; then
  truncate -s 64M "$TMP/lvs"
  if "$SLUICE" lvol create-store "$TMP/lvs" keep >/dev/null && "$SLUICE" lvol create -d "$TMP/lvs" vol 8M >/dev/null; then
    sum=$(md5sum <"$TMP/lvs")
    bad_run "format=1 on an lvol store" "lvol store 'keep' with 1 volume(s) (vol)" \
      db_bench "--fs_uri=sluice://uring:$TMP/lvs?format=1" --db=/db --num=10 --benchmarks=fillseq
    [[ $(md5sum <"$TMP/lvs") == "$sum" ]] && pass "the lvol store is unchanged" || fail "format=1 changed the lvol store"
  else
    fail "could not make an lvol store with $SLUICE"
  fi
fi

finish
