#!/usr/bin/env bash
# README command 1: installs what is needed, builds (Release) and runs the main job: Debian's
# stock RocksDB db_bench on SluiceFS (through the plugin) side by side with ext4 on the same
# kind of device, printing the comparison (bench/rocksdb_bench.py). Needs root (loop devices).
# Pass --quick for a short run; other arguments go to the benchmark (--help lists them).
# The block-layer comparison with fio is bench/perf_vs_fio.py.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build/release -DCMAKE_BUILD_TYPE=Release -- sluice sluice_rocksdb  # what the benchmark runs

args=()
for a in "$@"; do
  if [ "$a" = "--quick" ]; then
    args+=(--num 20000 --reads 5000 --sync-writes 300 --repeat 1 --size-mb 512)
  else
    args+=("$a")
  fi
done
exec /usr/bin/python3 bench/rocksdb_bench.py "${args[@]}"
