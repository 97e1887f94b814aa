#!/usr/bin/env bash
# End-to-end test of `sluice perf`: JSON output, every workload, verify (and that it catches a
# corrupted byte), bad input and Ctrl-C. No timing assertions: only that numbers are present
# and positive. Usage: perf_cli_test.sh path/to/sluice
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice}
. "$(dirname "$0")/lib.sh"
make_tmp perf_cli
T=0.5


# check_json FILE JOBS: the schema bench/ parses, with positive rates and latencies.
check_json() {
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
jobs = int(sys.argv[2])
def num(x): return isinstance(x, (int, float)) and not isinstance(x, bool)
assert isinstance(d["target"], str) and d["target"], "target"
assert isinstance(d["workload"], str), "workload"
for k in ("io_size", "queue_depth"): assert isinstance(d[k], int) and d[k] > 0, k
assert num(d["duration_s"]) and d["duration_s"] > 0, "duration_s"
assert isinstance(d["cores"], list) and all(isinstance(c, int) for c in d["cores"]), "cores"
assert len(d["jobs"]) == jobs, f"{len(d['jobs'])} jobs, want {jobs}"
def check(m, what):
    assert isinstance(m["ios"], int) and m["ios"] > 0, what + ".ios"
    assert isinstance(m["errors"], int) and m["errors"] == 0, what + ".errors"
    for k in ("iops", "mib_s", "cpu_ns_per_io"): assert num(m[k]) and m[k] > 0, what + "." + k
    for k in ("avg", "p50", "p99", "p999"): assert num(m["lat_us"][k]) and m["lat_us"][k] > 0, what + ".lat_us." + k
for j in d["jobs"]:
    assert isinstance(j["core"], int), "core"
    check(j, "job")
assert "core" not in d["total"], "total has no core"
check(d["total"], "total")
PY
}

# run_json NAME JOBS ARGS...: runs perf --json, expects exit 0 and a valid report.
run_json() {
  local name=$1 jobs=$2; shift 2
  if "$SLUICE" perf "$@" --json >"$TMP/out.json" 2>"$TMP/err"; then
    if check_json "$TMP/out.json" "$jobs" 2>"$TMP/py"; then pass "$name"; else fail "$name: $(tail -1 "$TMP/py")"; fi
  else
    fail "$name: exit $? $(cat "$TMP/err")"
  fi
}

# expect_error NAME CODE ARGS...: exits with CODE and one clear line on stderr, no crash.
expect_error() {
  local name=$1 code=$2; shift 2
  "$SLUICE" perf "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [[ $rc -ne $code ]]; then fail "$name: exit $rc, want $code ($(cat "$TMP/err"))"; return; fi
  if [[ $(wc -l <"$TMP/err") -ne 1 ]] || ! grep -q '^sluice perf: ' "$TMP/err"; then
    fail "$name: want one 'sluice perf: ...' line on stderr, got: $(cat "$TMP/err")"; return
  fi
  pass "$name ($(cat "$TMP/err"))"
}

run_json "randread null" 1 -T null:1G -w randread -q 32 -o 4k -t $T -c 0
run_json "randread malloc" 1 -T malloc:64M -w randread -q 32 -o 4k -t $T
if [[ $(nproc) -ge 2 ]]; then
  run_json "randread null, 2 cores" 2 -T null:1G -t $T -c 0-1
  run_json "two targets, 2 cores" 4 -T null:1G -T malloc:64M -t $T -c 0,1
fi
for w in read write randwrite rw; do run_json "$w malloc" 1 -T malloc:64M -w $w -M 70 -o 8k -q 8 -t $T; done
run_json "verify malloc" 1 -T malloc:64M -w verify -q 16 -t $T
run_json "verify malloc, 512-byte blocks, 2 jobs" 2 -T 'malloc:8M?bs=512' -w verify -o 1536 -c 0-1 -t $T
run_json "queue depth above the channel's" 1 -T 'malloc:64M?qd=4' -w rw -q 64 -t $T
run_json "verify crashsim" 1 -T crashsim:malloc:16M -w verify -t $T
run_json "randread null, plain threads" 1 -T null:1G -t $T --threads
if [[ $(nproc) -ge 2 ]]; then
  run_json "verify malloc, plain threads, 2 cores" 2 -T malloc:16M -w verify -c 0-1 -t $T --threads
fi

# null stores nothing: verify must notice.
"$SLUICE" perf -T null:64M -w verify -t $T >"$TMP/out" 2>"$TMP/err"
if [[ $? -eq 1 ]] && grep -q "verify failed at byte offset" "$TMP/err"; then pass "verify fails on null"
else fail "verify on null: $(cat "$TMP/err")"; fi

# uring file targets, when the backend works here.
IMG=$TMP/disk.img
truncate -s 8M "$IMG"
if "$SLUICE" perf -T "uring:$IMG" -w randread -t 0.1 >/dev/null 2>"$TMP/err"; then
  run_json "verify uring" 1 -T "uring:$IMG" -w verify -t $T
  # Sleeping on the wake descriptor instead of spinning, from a reactor and from a plain thread.
  run_json "randread uring, --poll sleep" 1 -T "uring:$IMG" -t $T --poll sleep
  run_json "randread uring, plain threads, --poll sleep" 1 -T "uring:$IMG" -t $T --threads --poll sleep
  run_json "rw aio, plain threads, adaptive with a spin" 1 -T "aio:$IMG" -w rw -t $T --threads --spin-us 10
  run_json "randread uring, --poll spin" 1 -T "uring:$IMG" -t $T --poll spin
  if "$SLUICE" perf -T "uring:$IMG" -w write -o 64k --seed 42 -t $T >/dev/null 2>"$TMP/err" &&
     "$SLUICE" perf -T "uring:$IMG" -w verify --verify-only -o 16k --seed 42 -t $T >/dev/null 2>"$TMP/err"; then
    pass "write, then verify-only with the same seed"
  else
    fail "write + verify-only: $(cat "$TMP/err")"
  fi
  OFF=5242901
  python3 -c "
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x40]))" "$IMG" $OFF
  "$SLUICE" perf -T "uring:$IMG" -w verify --verify-only --seed 42 -t $T >"$TMP/out" 2>"$TMP/err"
  rc=$?
  if [[ $rc -eq 1 ]] && grep -q "byte offset $OFF " "$TMP/err"; then pass "verify-only finds the flipped byte at $OFF"
  else fail "corruption at $OFF: exit $rc, $(cat "$TMP/err")"; fi
  "$SLUICE" perf -T "uring:$IMG" -w verify --verify-only --seed 43 -t $T >"$TMP/out" 2>"$TMP/err"
  if [[ $? -eq 1 ]] && grep -q "another run" "$TMP/err"; then pass "verify-only with another seed fails"
  else fail "verify-only with another seed: $(cat "$TMP/err")"; fi
else
  echo "skip uring tests: $(cat "$TMP/err")"
fi

expect_error "unknown workload" 2 -T null:1G -w sideways
expect_error "bad io size" 2 -T null:1G -o 4q
expect_error "io size not a multiple of 512" 2 -T null:1G -o 1000
expect_error "io size not a multiple of the block size" 2 -T 'null:1G?bs=4096' -o 512
expect_error "io size larger than the device" 2 -T null:64k -o 1M
expect_error "bad core list" 2 -T null:1G -c 0-x
expect_error "reversed core range" 2 -T null:1G -c 1-0
expect_error "unavailable core" 2 -T null:1G -c 1000
expect_error "no target" 2 -w randread
expect_error "unknown device type" 2 -T floppy:1G
expect_error "missing file" 1 -T "uring:$TMP/missing.img" -t $T
expect_error "missing file (aio)" 1 -T "aio:$TMP/missing.img" -t $T
expect_error "verify-only without verify" 2 -T null:1G --verify-only
expect_error "zero time" 2 -T null:1G -t 0
expect_error "unknown poll mode" 2 -T null:1G --poll lazy

# Ctrl-C stops the run early and still reports.
"$SLUICE" perf -T null:1G -t 60 --json >"$TMP/int.json" 2>"$TMP/err" &
PID=$!
sleep 1
kill -INT $PID
wait $PID
rc=$?
if [[ $rc -eq 130 ]] && check_json "$TMP/int.json" 1 && grep -q '"interrupted": true' "$TMP/int.json"; then
  pass "Ctrl-C reports what ran"
else
  fail "Ctrl-C: exit $rc, $(cat "$TMP/err")"
fi
"$SLUICE" perf -T malloc:64M -w rw -t 60 --threads >"$TMP/int.txt" 2>"$TMP/err" &
PID=$!
sleep 1
kill -INT $PID
wait $PID
rc=$?
if [[ $rc -eq 130 ]] && grep -q "(interrupted)" "$TMP/int.txt"; then pass "Ctrl-C, plain threads, table"
else fail "Ctrl-C, plain threads: exit $rc, $(cat "$TMP/int.txt" "$TMP/err")"; fi

finish
