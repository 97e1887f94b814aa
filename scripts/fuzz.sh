#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, tree build/fuzz) and runs each for a
# bounded time on a scratch copy of its seed corpus (tests/fuzz/corpus/<target>/, which is
# never grown by a run). Exits non-zero if any target crashes, leaks, times out or runs out
# of memory; the input that did it is kept in build/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                  every target (tests/fuzz/*_fuzz.cc), FUZZ_SECONDS each
#   scripts/fuzz.sh records_fuzz     only the named targets
#   scripts/fuzz.sh --build          build only
#   scripts/fuzz.sh --seeds          regenerate tests/fuzz/corpus (and tests/fuzz/repro)
#
# Environment: FUZZ_SECONDS (default 60 per target), FUZZ_WORKERS (default 1: parallel
# libFuzzer workers per target, -fork=N), FUZZ_KEEP_CORPUS=DIR (copy each grown corpus to
# DIR/<target> instead of discarding it), FUZZ_ARGS (extra libFuzzer flags).
#
# To reproduce or minimize a finding:
#   build/fuzz/bin/<target> build/fuzz/artifacts/<target>/crash-...
#   build/fuzz/bin/<target> -minimize_crash=1 -runs=10000 build/fuzz/artifacts/<target>/crash-...
# blob_load_fuzz: SLUICE_FUZZ_LOG=1 prints each load's outcome, SLUICE_FUZZ_DUMP=FILE saves
# the corrupted metadata image.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build/fuzz
seconds=${FUZZ_SECONDS:-60}
workers=${FUZZ_WORKERS:-1}
corpus_root=tests/fuzz/corpus

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is needed (Debian package clang; scripts/deps.sh installs it)" >&2
  exit 2
fi

mapfile -t all_targets < <(ls tests/fuzz/*_fuzz.cc | xargs -n1 basename | sed 's/\.cc$//')

build_tree() {
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DSLUICE_FUZZ=ON -DSLUICE_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  # Only the fuzz targets: the rest of the tree is instrumented too, but not needed here.
  ninja -C "$build" "${all_targets[@]}" fuzz_seed_gen
}

case "${1:-}" in
  --build)
    build_tree
    exit 0
    ;;
  --seeds)
    build_tree
    rm -rf "$corpus_root" tests/fuzz/repro
    "$build/bin/fuzz_seed_gen" "$corpus_root" tests/fuzz/repro
    echo "seed corpus: $(cat "$corpus_root"/*/* | wc -c) bytes in $(ls "$corpus_root"/*/* | wc -l) files"
    exit 0
    ;;
esac

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
build_tree

scratch=$(mktemp -d /tmp/sluice-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  bin=$build/bin/$t
  [[ -x $bin ]] || { echo "fuzz: no target $t (have: ${all_targets[*]})" >&2; exit 2; }
  corpus=$scratch/$t
  artifacts=$build/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  [[ -d $corpus_root/$t ]] && cp "$corpus_root/$t"/* "$corpus"/ 2>/dev/null || true
  log=$scratch/$t.log
  echo "== fuzz $t: ${seconds}s, $(ls "$corpus" | wc -l) seeds, workers $workers"
  fork=()
  [[ $workers -gt 1 ]] && fork=(-fork="$workers" -ignore_crashes=0)
  set +e
  # shellcheck disable=SC2086
  "$bin" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${fork[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  # The last status line (cov/ft/corp/exec/s) and the totals.
  grep -E '^#[0-9]+' "$log" | tail -1 || true
  execs=$(awk '/^stat::number_of_executed_units:/ {s += $2} END {print s + 0}' "$log")
  if [[ $execs -eq 0 ]]; then  # -fork mode reports no final stats: take the last status line
    execs=$(awk '/^#[0-9]+/ {n = substr($1, 2)} END {print n + 0}' "$log")
  fi
  echo "   $t: ${execs:-0} executions in ${seconds}s"
  if [[ $rc -ne 0 ]]; then
    echo "!! fuzz $t FAILED (exit $rc); the report:"
    grep -vE '^#[0-9]+|^INFO:' "$log" | tail -60
    echo "!! inputs kept in $artifacts/:"
    ls -l "$artifacts"
    failed+=("$t")
  fi
  if [[ -n ${FUZZ_KEEP_CORPUS:-} ]]; then
    mkdir -p "$FUZZ_KEEP_CORPUS/$t"
    cp "$corpus"/* "$FUZZ_KEEP_CORPUS/$t"/ 2>/dev/null || true
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${targets[*]}: no findings"
