#!/usr/bin/env bash
# The NBD server with Debian's clients as peers: nbdinfo, nbdsh, nbdcopy (libnbd-bin) and
# qemu-img (qemu-utils); nbdsh needs python3-libnbd. A random image goes onto the export with qemu-img convert and comes
# back with nbdcopy over four connections; nbdsh drives flush, trim, zero and FUA writes
# and the read-only export's refusal.
#   nbd_clients_test.sh NBD_TEST_SERVER
# Exit 77 (skipped) when a client is not installed.
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SERVER=$1

for tool in nbdinfo nbdsh nbdcopy qemu-img; do
  command -v "$tool" >/dev/null || { echo "skip: $tool is not installed (scripts/deps.sh installs it)"; exit 77; }
done

# nbdsh is a Python script of Debian's python3 (python3-libnbd): run it with that one even
# where another python3 comes first on PATH.
NBDSH=(env PATH=/usr/bin:/bin nbdsh)

make_tmp nbd-clients
sock=$TMP/nbd.sock
uri="nbd+unix:///disk?socket=$sock"
size=$((8 << 20))

bg_start "$SERVER" "$sock" "$size" >"$TMP/server.out" 2>"$TMP/server.err"
server=$BG_PID
if ! wait_for_output "$server" "$TMP/server.out" '^ready$' 30; then
  cat "$TMP/server.err"
  fail "server did not start"
  finish
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

kill -TERM "$server"
wait_or_kill "$server" 20
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then
  pass "server stops cleanly on SIGTERM"
else
  fail "server stop: rc $RC killed $KILLED: $(cat "$TMP/server.err")"
fi
finish
