#!/usr/bin/env bash
# `sluice serve` exporting over NBD, driven by fio's nbd engine (libnbd) with data
# verification: 4 KiB random writes, iodepth 16, two jobs (one NBD connection each, on
# regions of their own), every block read back and checked with crc32c while the run goes
# on (verify_backlog), first on a Unix socket, then on TCP 127.0.0.1 at an ephemeral port.
# Then 200 connections held open at once, each doing the handshake and a read with the raw
# protocol (nbd_many_conns.py), and the daemon still answering RPC. Not a benchmark: no
# timing is checked.
#   nbd_fio_test.sh SLUICE
# Exit 77 (skipped) when fio has no nbd engine.
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SLUICE=$1

command -v fio >/dev/null || { echo "skip: fio is not installed (scripts/deps.sh installs it)"; exit 77; }
fio --enghelp=nbd 2>/dev/null | grep -q '^uri' || { echo "skip: this fio has no nbd engine"; exit 77; }

make_tmp nbd-fio
sock=$TMP/nbd.sock
size=$((64 << 20))
nbd_config "$TMP/config.json" "$size" "$sock" disk

if ! serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi
pass "sluice serve up, exporting a 64 MiB malloc bdev on a Unix socket"

# fio_verify NAME URI: 3 s of verified random writes; fails NAME unless fio exits 0, every
# job reports error 0, wrote something and read back (verified) something.
fio_verify() {
  local name=$1 uri=$2
  # The nbd engine prints "fio: connected to NBD server" on stdout before the JSON.
  (cd "$TMP" && timeout 120 fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
    --iodepth=16 --numjobs=2 --size=16M --offset_increment=16M --time_based --runtime=3 \
    --verify=crc32c --verify_backlog=1024 --verify_fatal=1 --verify_state_save=0 \
    --output-format=json >"$TMP/fio.out" 2>"$TMP/fio.err")
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    fail "$name: fio exit $rc: $(tail -5 "$TMP/fio.err") $(grep -i verify "$TMP/fio.out" | head -5)"
    return
  fi
  if grep -qi 'verify.*\(bad\|fail\|mismatch\)' "$TMP/fio.err"; then
    fail "$name: fio reports verify errors: $(grep -i verify "$TMP/fio.err" | head -5)"
    return
  fi
  if python3 - "$TMP/fio.out" >"$TMP/fio.sum" 2>&1 <<'PY'
import json, sys
s = open(sys.argv[1]).read()
jobs = json.loads(s[s.index("{"):])["jobs"]
assert len(jobs) == 2, f"{len(jobs)} jobs"
for j in jobs:
    w, r = j["write"]["total_ios"], j["read"]["total_ios"]
    assert j["error"] == 0, f"job error {j['error']}"
    assert w > 0 and r > 0, f"wrote {w}, verified {r}"
print(", ".join(f"{j['write']['total_ios']} writes/{j['read']['total_ios']} verified" for j in jobs))
PY
  then
    pass "$name: fio randwrite + crc32c verify, 2 jobs x QD16: $(cat "$TMP/fio.sum")"
  else
    fail "$name: $(cat "$TMP/fio.sum")"
  fi
}

fio_verify "Unix socket" "nbd+unix:///disk?socket=$sock"

if serve_rpc nbd_server_stop && serve_rpc nbd_server_start '{"address": "127.0.0.1", "port": 0}'; then
  port=$(python3 -c "import json; print(json.load(open('$TMP/out'))['port'])")
  fio_verify "TCP 127.0.0.1:$port" "nbd://127.0.0.1:$port/disk"
else
  fail "restarting the NBD server on TCP: $(cat "$TMP/err")"
fi

# 200 connections at once, back on a Unix socket.
if serve_rpc nbd_server_stop && serve_rpc nbd_server_start "{\"socket\": \"$sock\"}"; then
  if timeout 90 python3 "$here/nbd_many_conns.py" "$sock" disk --connections 200 --seconds 60 >"$TMP/many.out" 2>&1; then
    pass "$(cat "$TMP/many.out")"
  else
    fail "200 connections: $(cat "$TMP/many.out")"
  fi
else
  fail "restarting the NBD server on the Unix socket: $(cat "$TMP/err")"
fi
if serve_rpc nbd_get_exports && serve_rpc spdk_get_version; then
  pass "the daemon still answers RPC"
else
  fail "RPC after 200 connections: $(cat "$TMP/err")"
fi

serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then
  pass "sluice serve stops cleanly on SIGTERM"
else
  fail "server stop: rc $RC killed $KILLED: $(cat "$TMP/server.err")"
fi
finish
