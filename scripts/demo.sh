#!/usr/bin/env bash
# README command 1: installs what is needed, builds (Release) and runs the main job.
# Until SluiceFS and the RocksDB plugin exist, the main job is the block-layer benchmark:
# `sluice perf` and fio side by side on the same targets (bench/perf_vs_fio.py).
# Pass --quick for a short run; other arguments go to the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build/release -DCMAKE_BUILD_TYPE=Release

args=()
for a in "$@"; do
  if [ "$a" = "--quick" ]; then args+=(--seconds 1 --repeat 1 --size-mb 256); else args+=("$a"); fi
done
exec /usr/bin/python3 bench/perf_vs_fio.py "${args[@]}"
