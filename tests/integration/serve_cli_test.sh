#!/usr/bin/env bash
# `sluice serve` and `sluice rpc`: the daemon's lifecycle, config load and save_config round
# trip, bad requests and bad configs, and an orderly exit on SIGTERM.
set -u
SLUICE=$1
. "$(dirname "$0")/lib.sh"
make_tmp sluice-serve
SOCK=$TMP/rpc.sock

# start_daemon ARGS...: `sluice serve -r $SOCK ARGS` in the background; waits (bounded) until
# it answers. Sets DAEMON.
start_daemon() {
  bg_start "$SLUICE" serve -r "$SOCK" "$@" >"$TMP/daemon.out" 2>"$TMP/daemon.err"
  DAEMON=$BG_PID
  local end=$((SECONDS + 20))
  while [[ $SECONDS -lt $end ]]; do
    "$SLUICE" rpc -s "$SOCK" spdk_get_version >/dev/null 2>&1 && return 0
    kill -0 "$DAEMON" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# stop_daemon: SIGTERM, then at most 20 s for an exit; sets RC.
stop_daemon() {
  kill -TERM "$DAEMON"
  wait_or_kill "$DAEMON" 20
}
rpc() { run rpc -s "$SOCK" "$@"; }

start_daemon -m 0 && pass "serve starts and answers" || fail "serve did not start: $(cat "$TMP/daemon.err")"
[[ $(stat -c %a "$SOCK") == 600 ]] && pass "RPC socket is mode 0600" || fail "socket mode $(stat -c %a "$SOCK")"

expect "version" 0 rpc -s "$SOCK" spdk_get_version && [[ $(json 'd["version"]') == sluice* ]] &&
  pass "spdk_get_version" || fail "spdk_get_version: $(cat "$TMP/out")"
truncate -s 64M "$TMP/disk.img"
expect "malloc" 0 rpc -s "$SOCK" bdev_malloc_create '{"name":"Malloc0","num_blocks":16384,"block_size":4096}' &&
  [[ $(json 'd') == Malloc0 ]] && pass "bdev_malloc_create" || fail "bdev_malloc_create: $(cat "$TMP/out")"
expect "uring" 0 rpc -s "$SOCK" bdev_uring_create "{\"name\":\"Disk\",\"filename\":\"$TMP/disk.img\",\"block_size\":4096}" &&
  pass "bdev_uring_create" || true
expect "error bdev" 0 rpc -s "$SOCK" bdev_error_create '{"base_name":"Malloc0"}' && pass "bdev_error_create" || true
expect "list" 0 rpc -s "$SOCK" bdev_get_bdevs &&
  [[ $(json '",".join(sorted(b["name"] for b in d))') == Disk,EE_Malloc0,Malloc0 ]] &&
  pass "bdev_get_bdevs lists all three" || fail "bdev_get_bdevs: $(cat "$TMP/out")"

# Errors: one line on stderr naming the method and the problem, exit 1.
expect "unknown method" 1 rpc -s "$SOCK" bdev_bogus && err_has "Method not found" &&
  pass "unknown method refused" || fail "unknown method: $(cat "$TMP/err")"
expect "bad param" 1 rpc -s "$SOCK" bdev_malloc_create '{"num_blocks":8,"block_sz":512}' && err_has "block_sz" &&
  pass "unknown parameter named" || fail "bad param: $(cat "$TMP/err")"
expect "bad json" 2 rpc -s "$SOCK" bdev_get_bdevs '{"name":' && pass "malformed PARAMS is a usage error" || true
expect "no daemon" 1 rpc -s "$TMP/none.sock" spdk_get_version && pass "no daemon: one clear line" || true

# A client writing garbage, and one that vanishes mid-request, affect nobody else.
python3 - "$SOCK" <<'PY' && pass "garbage gets a parse error and a close" || fail "garbage client"
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(b"\x00\xffnot json at all")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk: break
    data += chunk
sys.exit(0 if json.loads(data)["error"]["code"] == -32700 else 1)
PY
python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{\"jsonrpc\":\"2.0\",\"method\":'); s.close()" "$SOCK"
expect "alive after bad clients" 0 rpc -s "$SOCK" bdev_get_bdevs '{"name":"Malloc0"}' && pass "daemon alive after bad clients" || true

# An idle daemon sleeps: its reactor has slept, and its loop does not turn while nothing
# happens (a spinning reactor turns millions of times a second).
rpc framework_get_reactors; i1=$(json 'd["reactors"][0]["busy"] + d["reactors"][0]["idle"]')
sleeps=$(json 'd["reactors"][0]["sleeps"]')
sleep 1
rpc framework_get_reactors; i2=$(json 'd["reactors"][0]["busy"] + d["reactors"][0]["idle"]')
[[ $sleeps -gt 0 && $((i2 - i1)) -lt 1000 ]] && pass "idle reactor sleeps ($sleeps sleeps, $((i2 - i1)) iterations in 1 s)" ||
  fail "idle reactor: $sleeps sleeps, $((i2 - i1)) iterations in 1 s"

# sluice top: one JSON interval, and two text refreshes when stdout is not a terminal.
expect "top json" 0 top -s "$SOCK" --json -d 0.2 &&
  [[ $(json '",".join(sorted(b["name"] for b in d["bdevs"]))') == Disk,EE_Malloc0,Malloc0 && $(json 'len(d["reactors"])') == 1 ]] &&
  pass "top --json" || fail "top --json: $(cat "$TMP/out")"
expect "top text" 0 top -s "$SOCK" -n 2 -d 0.1 && [[ $(grep -c '^BDEV' "$TMP/out") == 2 ]] && out_has "Malloc0" &&
  pass "top: two refreshes" || fail "top text: $(cat "$TMP/out")"
expect "top no daemon" 1 top -s "$TMP/none.sock" --json && pass "top without a daemon: one clear line" || true
expect "qos" 0 rpc -s "$SOCK" bdev_set_qos_limit '{"name":"Disk","rw_ios_per_sec":20000,"w_mbytes_per_sec":64}' &&
  pass "bdev_set_qos_limit" || true
expect "save_config" 0 rpc -s "$SOCK" save_config && cp "$TMP/out" "$TMP/config.json" && pass "save_config" || true
stop_daemon
[[ $KILLED -eq 0 && $RC -eq 0 ]] && pass "SIGTERM: exit 0" || fail "SIGTERM: rc $RC killed $KILLED: $(cat "$TMP/daemon.err")"
[[ ! -e $SOCK ]] && pass "socket removed at exit" || fail "socket left behind"

# The saved config recreates the same devices.
start_daemon -c "$TMP/config.json" && pass "restart with the saved config" || fail "restart: $(cat "$TMP/daemon.err")"
rpc bdev_get_bdevs
[[ $(json '",".join(sorted(b["name"]+":"+str(b["block_size"])+":"+str(b["num_blocks"]) for b in d))') == \
   Disk:4096:16384,EE_Malloc0:4096:16384,Malloc0:4096:16384 ]] && pass "same devices after restart" ||
  fail "devices after restart: $(cat "$TMP/out")"
rpc save_config
cmp -s <(python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))" "$TMP/out") \
  <(python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))" "$TMP/config.json") &&
  pass "save_config round trip is identical" || fail "save_config differs after restart"
stop_daemon

# A bad config names the entry and serves nothing.
echo '{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_malloc_create","params":{"num_blocks":8}},{"method":"bdev_frobnicate"}]}]}' \
  >"$TMP/bad.json"
expect "bad config" 2 serve -r "$SOCK" -c "$TMP/bad.json" && err_has "entry 2 (bdev_frobnicate)" && [[ ! -e $SOCK ]] &&
  pass "bad config refused, naming the entry" || fail "bad config: $(cat "$TMP/err")"
echo '{"subsystems":' >"$TMP/broken.json"
expect "broken config" 2 serve -r "$SOCK" -c "$TMP/broken.json" && pass "config that is not JSON refused" || true
expect "bad cores" 2 serve -r "$SOCK" -m 5-3 && pass "bad core list is a usage error" || true

finish
