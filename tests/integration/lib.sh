# Helpers shared by the integration scripts (source it).
# Provides: pass/fail and $FAILS, a scratch directory $TMP (and a write-buffer directory)
# removed on exit, background jobs that cannot outlive the script, bounded waits,
# report_points (the crash report line), and run/expect for driving the sluice CLI.

FAILS=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }

# finish: the closing line and the exit status from $FAILS.
finish() {
  if [[ $FAILS -ne 0 ]]; then echo "$FAILS check(s) failed"; exit 1; fi
  echo "all checks passed"
  exit 0
}

# report_points SUITE WHAT TRIED FAILED: the line the C++ fault suites print
# (tests/crash/crash_report.cc), also appended to $SLUICE_CRASH_REPORT when set, so that
# scripts/test.sh lists it with theirs.
report_points() {
  local line="$1: $3 $2 tried, $4 failed"
  echo "$line"
  if [[ -n "${SLUICE_CRASH_REPORT:-}" ]]; then echo "$line" >>"$SLUICE_CRASH_REPORT"; fi
}

# Background jobs: started with bg_start, killed (SIGKILL) by the EXIT trap if still running,
# so that nothing outlives the test however it ends. setpriv --pdeathsig covers a SIGKILL of
# this script itself, where no trap runs. setpriv execs the command: $BG_PID is its pid.
BG_PIDS=()
bg_start() {  # COMMAND ARGS... (stdout/stderr as redirected by the caller); sets BG_PID
  setpriv --pdeathsig KILL -- "$@" &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}
bg_forget() {  # PID: reaped, so never signalled again (its number may be reused)
  local keep=() p
  for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  BG_PIDS=("${keep[@]}")
}
bg_kill_all() {
  local pid
  for pid in "${BG_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  BG_PIDS=()
}
# wait_or_kill PID SECONDS: waits for a bg_start job for at most SECONDS (fractions allowed),
# then SIGKILLs it. Sets RC (its exit status) and KILLED (1 when it was still running).
wait_or_kill() {
  local pid=$1 end_us
  end_us=$(( ${EPOCHREALTIME/./} + $(awk -v s="$2" 'BEGIN { printf "%d", s * 1000000 }') ))
  KILLED=0
  while kill -0 "$pid" 2>/dev/null && [[ ${EPOCHREALTIME/./} -lt $end_us ]]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; KILLED=1; fi
  { wait "$pid"; } 2>/dev/null  # no "Killed" job notice
  RC=$?
  bg_forget "$pid"
}
# wait_for_output PID FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN
# (grep -E), the job ends, or SECONDS pass. Returns 0 when the line came.
wait_for_output() {
  local pid=$1 file=$2 pattern=$3 end=$((SECONDS + $4))
  while [[ $SECONDS -lt $end ]]; do
    grep -qE -- "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -qE -- "$pattern" "$file" 2>/dev/null
}

# make_tmp PREFIX: $TMP, removed (after the background jobs are gone) when the script exits;
# SIGTERM/SIGINT (a ctest timeout, ^C) exit through the same trap. SluiceFS keeps unsynced
# appends in write-buffer files that outlive a killed process (docs/format/write-buffer.md):
# this script's go to a RAM directory of its own, $SLUICE_WRITE_BUFFER_DIR, removed with
# $TMP, so that a test that stops between a kill and the next mount leaves none behind. A
# caller's own setting wins (SLUICE_WRITE_BUFFER_DIR= keeps them in process memory, which a
# kill loses: the crash tests must then fail).
make_tmp() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  WBUF=""
  if [[ -z ${SLUICE_WRITE_BUFFER_DIR+set} ]]; then
    local ram=/dev/shm
    [[ -d $ram ]] || ram=$TMP
    WBUF=$(mktemp -d "$ram/sluice-$1.XXXXXX")
    export SLUICE_WRITE_BUFFER_DIR=$WBUF
  fi
  trap 'bg_kill_all; rm -rf "$TMP" ${WBUF:+"$WBUF"}' EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
}

# ---- Driving the sluice CLI: $SLUICE is the executable; $SLUICE_CMD (an array, optional)
# the words every call starts with, e.g. (blob) for a script that tests `sluice blob`.
SLUICE_CMD=()
# run ARGS...: runs `sluice [SLUICE_CMD...] ARGS` (bounded), leaving stdout in $TMP/out,
# stderr in $TMP/err and the exit status in $RC.
run() {
  timeout 60 "$SLUICE" "${SLUICE_CMD[@]}" "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
}
# expect NAME CODE ARGS...: runs, and fails NAME unless the exit status is CODE and, for an
# error, stderr is exactly one line that starts with the command ("sluice ...").
expect() {
  local name=$1 code=$2 prefix="sluice${SLUICE_CMD[*]:+ ${SLUICE_CMD[*]}}"; shift 2
  run "$@"
  if [[ $RC -ne $code ]]; then fail "$name: exit $RC, want $code; stderr: $(cat "$TMP/err"); stdout: $(tail -5 "$TMP/out")"; return 1; fi
  if [[ $code -ne 0 ]] && { [[ $(wc -l <"$TMP/err") -ne 1 ]] || ! grep -q "^$prefix" "$TMP/err"; }; then
    fail "$name: want one '$prefix...' line on stderr, got: $(cat "$TMP/err")"; return 1
  fi
  return 0
}
out_has() { grep -q -- "$1" "$TMP/out"; }
err_has() { grep -q -- "$1" "$TMP/err"; }
# json EXPR: evaluates a Python expression over the JSON in $TMP/out (as `d`); prints the value.
json() { python3 -c "import json,sys; d=json.load(open('$TMP/out')); print($1)"; }

# ---- Stock RocksDB tools (db_bench, ldb, sst_dump) with the plugin preloaded: $PLUGIN is the
# libsluice_rocksdb.so to load (a build tree's or an installed one).
# plugin_run TOOL ARGS...: LD_PRELOAD=$PLUGIN TOOL ARGS, bounded; stdout in $TMP/out, stderr in
# $TMP/err, the exit status in $RC.
plugin_run() {
  LD_PRELOAD=$PLUGIN timeout 120 "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
}
# plugin_ok NAME TOOL ARGS...: plugin_run; NAME passes on exit 0 with no "error" on stderr
# (RocksDB reports some failures there and still exits 0), and fails otherwise.
plugin_ok() {
  local name=$1; shift
  plugin_run "$@"
  if [[ $RC -ne 0 ]]; then fail "$name: exit $RC; stderr: $(tail -5 "$TMP/err"); stdout: $(tail -5 "$TMP/out")"; return 1; fi
  if grep -qi "error" "$TMP/err"; then fail "$name: succeeded, but stderr says: $(grep -i error "$TMP/err" | head -3)"; return 1; fi
  pass "$name"
}
# db_bench_found: how many keys the db_bench readrandom in $TMP/out found ("(N of M found)");
# empty if it printed no such line.
db_bench_found() { sed -n 's/.*(\([0-9]*\) of \([0-9]*\) found).*/\1/p' "$TMP/out" | head -1; }

# ---- `sluice serve`: started from a config, its RPC socket answering.
# nbd_config FILE SIZE SOCKET EXPORT...: writes a config that makes a malloc bdev "Malloc0"
# of SIZE bytes (512-byte blocks), exports it once per EXPORT ("disk", or "disk-ro:ro" for a
# read-only export) and serves NBD on the Unix socket SOCKET.
nbd_config() {
  local file=$1 size=$2 sock=$3 e exports=""; shift 3
  for e in "$@"; do
    local ro=false name=${e%:ro}
    [[ $e == *:ro ]] && ro=true
    exports+="{\"method\": \"nbd_export_add\", \"params\": {\"name\": \"$name\", \"bdev_name\": \"Malloc0\", \"read_only\": $ro}},"
  done
  cat >"$file" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": $((size / 512)), "block_size": 512}}]},
  {"subsystem": "nbd", "config": [$exports
    {"method": "nbd_server_start", "params": {"socket": "$sock"}}]}]}
JSON
}
# serve_start RPC_SOCKET CONFIG [CORES]: starts the daemon as a background job (stdout and
# stderr in $TMP/server.out, $TMP/server.err; more arguments in the array SERVE_ARGS) and
# waits (20 s at most) until RPC answers. Sets $SERVER (its pid) and returns 1 when it did
# not come up.
serve_start() {
  SERVE_RPC=$1
  bg_start "$SLUICE" serve -m "${3:-0-1}" -r "$1" -c "$2" ${SERVE_ARGS[@]+"${SERVE_ARGS[@]}"} \
    >"$TMP/server.out" 2>"$TMP/server.err"
  SERVER=$BG_PID
  local _
  for _ in $(seq 1 200); do
    serve_rpc spdk_get_version && return 0
    kill -0 "$SERVER" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# serve_rpc METHOD [PARAMS]: one call to the daemon serve_start started (bounded); the
# answer in $TMP/out, errors in $TMP/err.
serve_rpc() { timeout 60 "$SLUICE" rpc -s "$SERVE_RPC" "$@" >"$TMP/out" 2>"$TMP/err"; }
# serve_stop: SIGTERM, then waits 20 s at most; RC and KILLED as wait_or_kill sets them.
serve_stop() {
  kill -TERM "$SERVER" 2>/dev/null
  wait_or_kill "$SERVER" 20
}

# The QEMU guest lanes (scripts/guest/, docs/guest-lane.md).
GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts/guest" && pwd)
# guest_kernel [TOOL...]: the guest kernel's cache directory in $KDIR. Exits 77 (skip) when
# qemu or a TOOL is missing or the kernel package cannot be downloaded, 1 when fetching failed
# otherwise.
guest_kernel() {
  local tool rc
  for tool in qemu-system-x86_64 "$@"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 77; }
  done
  KDIR=$("$GUEST_DIR/fetch-kernel.sh")
  rc=$?
  if [[ $rc -eq 77 ]]; then echo "SKIP: the guest kernel package could not be downloaded (see above)"; exit 77; fi
  if [[ $rc -ne 0 ]]; then echo "FAIL: fetch-kernel.sh exit $rc"; exit 1; fi
}
# guest_start RUN_GUEST_ARGS...: boots the guest (run-guest.sh, --kernel $KDIR/vmlinux added)
# as a background job that dies with this script, in $GUEST_PID; a TERM or INT stops it first.
# guest_wait: waits for it; its exit code is the guest script's.
guest_start() {
  setpriv --pdeathsig TERM "$GUEST_DIR/run-guest.sh" --kernel "$KDIR/vmlinux" "$@" &
  GUEST_PID=$!
  trap 'kill -TERM $GUEST_PID 2>/dev/null; wait $GUEST_PID; exit 143' TERM
  trap 'kill -TERM $GUEST_PID 2>/dev/null; wait $GUEST_PID; exit 130' INT
}
# guest_watch SECONDS CHECK...: while the guest runs (SECONDS at most), runs the command CHECK
# every 0.5 s until it succeeds once, and returns then; SEEN is 1 when it did. For what the
# host should see while the guest works (a session, a connected front end).
guest_watch() {
  local limit=$(($1 * 2)) i=0
  shift
  SEEN=0
  while kill -0 "$GUEST_PID" 2>/dev/null && [[ $i -lt $limit ]]; do
    if "$@"; then SEEN=1; return; fi
    i=$((i + 1))
    sleep 0.5
  done
}
guest_wait() {
  local rc
  wait "$GUEST_PID"
  rc=$?
  trap - TERM INT
  return $rc
}
