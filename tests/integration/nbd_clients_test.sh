#!/usr/bin/env bash
# `sluice serve` exporting over NBD, with Debian's clients as peers: nbdinfo, nbdsh, nbdcopy
# (libnbd-bin; nbdsh needs python3-libnbd) and qemu-img (qemu-utils). The daemon starts from
# a config that makes a malloc bdev, exports it read-write as "disk" and read-only as
# "disk-ro" and serves NBD on a Unix socket. A random image goes onto the export with
# qemu-img convert and comes back with nbdcopy over four connections; nbdsh drives flush,
# trim, zero and FUA writes and the read-only export's refusal; nbdinfo --map and qemu-img map
# read a thin volume's holes (BLOCK_STATUS); then TCP on 127.0.0.1, the
# saved config, a device deleted under a connected client, and SIGTERM.
#   nbd_clients_test.sh SLUICE
# Exit 77 (skipped) when a client is not installed.
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SLUICE=$1

for tool in nbdinfo nbdsh nbdcopy qemu-img; do
  command -v "$tool" >/dev/null || { echo "skip: $tool is not installed (scripts/deps.sh installs it)"; exit 77; }
done

# nbdsh is a Python script of Debian's python3 (python3-libnbd): run it with that one even
# where another python3 comes first on PATH.
NBDSH=(env PATH=/usr/bin:/bin nbdsh)

make_tmp nbd-clients
sock=$TMP/nbd.sock
rpc_sock=$TMP/rpc.sock
uri="nbd+unix:///disk?socket=$sock"
size=$((8 << 20))
nbd_config "$TMP/config.json" "$size" "$sock" disk disk-ro:ro
rpc() { serve_rpc "$@"; }

if ! serve_start "$rpc_sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi

pass "sluice serve up with two exports from its config"

# Bad calls: each one error, the daemon unchanged.
bad() {  # NAME METHOD PARAMS PATTERN
  if ! rpc "$2" "$3" && grep -q -- "$4" "$TMP/err"; then pass "refused: $1"; else fail "$1: $(cat "$TMP/out" "$TMP/err")"; fi
}
bad "export of a missing bdev" nbd_export_add '{"name": "x", "bdev_name": "nope"}' "nope"
bad "export name in use" nbd_export_add '{"name": "disk", "bdev_name": "Malloc0"}' "disk"
bad "second server" nbd_server_start '{"socket": "'"$TMP"'/other.sock"}' "code"
bad "port out of range" nbd_server_start '{"address": "127.0.0.1", "port": 70000}' "70000"
bad "socket and port" nbd_server_start '{"socket": "/x", "port": 1}' "not both"
bad "unknown parameter" nbd_export_add '{"name": "y", "bdev_name": "Malloc0", "readonly": true}' "readonly"
bad "remove a missing export" nbd_export_remove '{"name": "nope"}' "nope"
if rpc nbd_get_exports && [[ $(python3 -c "import json; print(len(json.load(open('$TMP/out'))))") == 2 ]]; then
  pass "still two exports"
else
  fail "exports after bad calls: $(cat "$TMP/out")"
fi

# nbdinfo: size and the export list.
if timeout 60 nbdinfo --size "$uri" >"$TMP/out" 2>&1 && [[ $(cat "$TMP/out") == "$size" ]]; then
  pass "nbdinfo --size"
else
  fail "nbdinfo --size: $(cat "$TMP/out")"
fi
if timeout 60 nbdinfo --list "nbd+unix://?socket=$sock" >"$TMP/out" 2>&1 && grep -q 'disk-ro' "$TMP/out"; then
  pass "nbdinfo --list"
else
  fail "nbdinfo --list: $(cat "$TMP/out")"
fi

# qemu-img writes a random image onto the export, nbdcopy reads it back.
head -c "$size" /dev/urandom >"$TMP/in.raw"
if timeout 120 qemu-img convert -n -f raw -O raw "$TMP/in.raw" "$uri" 2>"$TMP/err"; then
  pass "qemu-img convert onto the export"
else
  fail "qemu-img convert: $(cat "$TMP/err")"
fi
if timeout 120 nbdcopy --connections=4 "$uri" "$TMP/out.raw" 2>"$TMP/err" && cmp -s "$TMP/in.raw" "$TMP/out.raw"; then
  pass "nbdcopy back over 4 connections: identical"
else
  fail "nbdcopy back: $(cat "$TMP/err")"
fi
if timeout 120 qemu-img compare -f raw -F raw "$TMP/in.raw" "$uri" >"$TMP/out" 2>&1; then
  pass "qemu-img compare"
else
  fail "qemu-img compare: $(cat "$TMP/out")"
fi

# nbdsh: FUA write, flush, trim and zero read back as expected.
if timeout 60 "${NBDSH[@]}" -u "$uri" -c '
buf = b"\x5a" * 4096
h.pwrite(buf, 65536, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 65536) == buf
h.flush()
assert h.can_trim() and h.can_zero() and h.can_multi_conn() and h.can_fua()
h.trim(4096, 65536)
h.zero(8192, 131072, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(8192, 131072) == bytes(8192)
try:
    h.pread(512, h.get_size())
    raise SystemExit("a read past the end succeeded")
except nbd.Error:
    pass
assert h.pread(512, 0) is not None
' >"$TMP/out" 2>&1; then
  pass "nbdsh: fua, flush, trim, zero, out of range"
else
  fail "nbdsh: $(cat "$TMP/out")"
fi
if timeout 60 "${NBDSH[@]}" -u "nbd+unix:///disk-ro?socket=$sock" -c '
assert h.is_read_only()
try:
    h.pwrite(b"x" * 512, 0)
    raise SystemExit("a write to a read-only export succeeded")
except nbd.Error as e:
    assert "EPERM" in str(e), e  # libnbd refuses it itself (nbd_test covers the server reply)
' >"$TMP/out" 2>&1; then
  pass "nbdsh: read-only export refuses writes"
else
  fail "nbdsh read-only: $(cat "$TMP/out")"
fi

# BLOCK_STATUS (base:allocation): a thin volume with 1 MiB clusters reads as holes except
# the one cluster written; nbdinfo --map and qemu-img map both see that layout.
thin_uri="nbd+unix:///thin?socket=$sock"
if rpc bdev_malloc_create '{"name": "Malloc1", "num_blocks": 65536, "block_size": 512}' &&
   rpc bdev_lvol_create_lvstore '{"bdev_name": "Malloc1", "lvs_name": "lvs", "cluster_sz": 1048576}' &&
   rpc bdev_lvol_create '{"lvs_name": "lvs", "lvol_name": "thin", "size_in_mib": 16, "thin_provision": true}' &&
   rpc nbd_export_add '{"name": "thin", "bdev_name": '"$(cat "$TMP/out")"'}'; then
  if timeout 60 "${NBDSH[@]}" -u "$thin_uri" -c 'h.pwrite(b"\x77" * 4096, 5 << 20)' >"$TMP/out" 2>&1 &&
     timeout 60 nbdinfo --map --json "$thin_uri" >"$TMP/map.json" 2>"$TMP/err" &&
     timeout 60 qemu-img map --output=json -f raw "$thin_uri" >"$TMP/qmap.json" 2>>"$TMP/err" &&
     python3 - "$TMP/map.json" "$TMP/qmap.json" <<'PY'
import json, sys
MiB = 1 << 20
# nbdinfo: base:allocation extents; type bit 0 = hole, bit 1 = reads as zero.
m = [(e["offset"], e["length"], e["type"]) for e in json.load(open(sys.argv[1]))]
assert m == [(0, 5 * MiB, 3), (5 * MiB, MiB, 0), (6 * MiB, 10 * MiB, 3)], m
# qemu-img: the same, as data/zero runs (it may split or merge runs of one kind).
q = json.load(open(sys.argv[2]))
assert sum(r["length"] for r in q) == 16 * MiB, q
for r in q:
    written = r["start"] < 6 * MiB and r["start"] + r["length"] > 5 * MiB
    assert r["data"] == written and r["zero"] == (not written), (r, q)
PY
  then
    pass "BLOCK_STATUS: nbdinfo --map and qemu-img map see the thin volume's one written cluster"
  else
    fail "BLOCK_STATUS: $(cat "$TMP/out" "$TMP/err" "$TMP/map.json" "$TMP/qmap.json" 2>/dev/null)"
  fi
  rpc nbd_export_remove '{"name": "thin"}' || fail "removing the thin export: $(cat "$TMP/err")"
else
  fail "making a thin volume to export: $(cat "$TMP/err")"
fi

# TCP on loopback, an ephemeral port: the server moves there, serving what it served.
timeout 120 nbdcopy "$uri" "$TMP/now.raw" 2>"$TMP/err" || fail "nbdcopy before the move: $(cat "$TMP/err")"
port=0
if rpc nbd_server_stop && rpc nbd_server_start '{"address": "127.0.0.1", "port": 0}'; then
  port=$(python3 -c "import json; print(json.load(open('$TMP/out'))['port'])")
  if timeout 60 nbdinfo --size "nbd://127.0.0.1:$port/disk" >"$TMP/out" 2>&1 && [[ $(cat "$TMP/out") == "$size" ]] &&
     timeout 120 qemu-img compare -f raw -F raw "$TMP/now.raw" "nbd://127.0.0.1:$port/disk" >/dev/null 2>&1; then
    pass "TCP 127.0.0.1:$port serves the same image"
  else
    fail "TCP: $(cat "$TMP/out")"
  fi
else
  fail "restarting the NBD server on TCP: $(cat "$TMP/err")"
fi
if rpc save_config && python3 - "$TMP/out" <<'PY'
import json, sys
cfg = {s["subsystem"]: s["config"] for s in json.load(open(sys.argv[1]))["subsystems"]}
methods = [(c["method"], c["params"].get("name")) for c in cfg["nbd"]]
assert methods[:2] == [("nbd_export_add", "disk"), ("nbd_export_add", "disk-ro")], methods
assert cfg["nbd"][2]["method"] == "nbd_server_start" and cfg["nbd"][2]["params"]["address"] == "127.0.0.1", cfg["nbd"]
PY
then
  pass "save_config lists the exports and the server"
else
  fail "save_config: $(cat "$TMP/out")"
fi

# The device deleted under a connected client: the client sees errors or a disconnect,
# the daemon carries on.
timeout 60 "${NBDSH[@]}" -u "nbd://127.0.0.1:$port/disk" -c '
import time
h.pread(4096, 0)
open("'"$TMP"'/connected", "w").close()
deadline = time.time() + 20
while time.time() < deadline:
    try:
        h.pread(4096, 0)
    except nbd.Error:
        raise SystemExit(0)
    time.sleep(0.05)
raise SystemExit("reads still succeed after the device was deleted")
' >"$TMP/hot.out" 2>&1 &
hot=$!
for _ in $(seq 1 100); do [[ -e $TMP/connected ]] && break; sleep 0.1; done
rpc bdev_malloc_delete '{"name": "Malloc0"}' || fail "bdev_malloc_delete: $(cat "$TMP/err")"
if wait "$hot"; then pass "deleting the exported device ends the client's I/O"; else fail "hot-remove: $(cat "$TMP/hot.out")"; fi
if rpc nbd_get_exports && rpc spdk_get_version; then pass "the daemon carries on"; else fail "daemon after hot-remove"; fi

serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then
  pass "sluice serve stops cleanly on SIGTERM"
else
  fail "server stop: rc $RC killed $KILLED: $(cat "$TMP/server.err")"
fi
finish
