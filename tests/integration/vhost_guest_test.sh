#!/usr/bin/env bash
# The vhost-user lane: `sluice serve -S DIR` serves a 64 MiB malloc bdev as a vhost-user-blk
# controller on a Unix socket in DIR, and a TCG guest (scripts/guest/, its RAM a shared memfd)
# boots with a vhost-user-blk-pci disk of two queues on that socket. Inside,
# vhost_guest_inside.sh runs the guest kernel's virtio-blk driver on it: size and queues, fio
# verify with two jobs, ext4 copy, fstrim, fsck, WRITE ZEROES. The guest's exit code, its fio
# reports, vhost_get_controllers showing the connected front end, and the daemon's clean stop
# decide the result.
#
# Usage: vhost_guest_test.sh path/to/sluice
# Environment: VHOST_GUEST_TIMEOUT (s, default 300), VHOST_GUEST_LOG (keep the console log there).
# Exit 0 pass, 1 fail, 77 skip: only when qemu or fio is missing or the kernel package cannot
# be fetched.
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SLUICE=${1:?usage: $0 path/to/sluice}
start=$SECONDS

guest_kernel fio blkdiscard

make_tmp vhost-guest
size=$((64 << 20))
queues=2
mkdir -p "$TMP/sockets"
cat >"$TMP/config.json" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": $((size / 512)), "block_size": 512}}]},
  {"subsystem": "vhost_blk", "config": [
    {"method": "vhost_create_blk_controller", "params": {"ctrlr": "vhost.0", "dev_name": "Malloc0"}}]}]}
JSON
SERVE_ARGS=(-S "$TMP/sockets")
if ! serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi
if [[ -S $TMP/sockets/vhost.0 ]]; then pass "sluice serve: vhost-user-blk controller vhost.0 on $TMP/sockets/vhost.0"
else fail "no socket $TMP/sockets/vhost.0"; finish; fi

if ! "$GUEST_DIR/make-initramfs.sh" --kernel-dir "$KDIR" --out "$TMP/initrd.cpio" \
    --script "$here/vhost_guest_inside.sh" \
    --module virtio_pci --module virtio_blk --module ext4 --module crc32c_generic \
    --bin "$(command -v fio)" --bin "$(command -v mkfs.ext4)" --bin "$(command -v e2fsck)" \
    --bin "$(command -v blkdiscard)" \
    --env "SIZE_SECTORS=$((size / 512))" --env "QUEUES=$queues"; then
  fail "make-initramfs.sh"
  finish
fi

log=${VHOST_GUEST_LOG:-$TMP/console.log}
guest_start --initrd "$TMP/initrd.cpio" \
  --vhost-user-blk "$TMP/sockets/vhost.0,$queues" --log "$log" --timeout "${VHOST_GUEST_TIMEOUT:-300}" --ns 16M

# While the guest runs, the daemon lists QEMU's connection.
front_end_connected() {
  serve_rpc vhost_get_controllers '{"name": "vhost.0"}' && [[ $(json 'len(d[0]["sessions"])') -gt 0 ]] 2>/dev/null
}
guest_watch "${VHOST_GUEST_TIMEOUT:-300}" front_end_connected
guest_wait
guest_rc=$?
if [[ $guest_rc -eq 0 ]]; then pass "guest script passed"; else fail "guest script exit $guest_rc"; fi
if [[ $SEEN -eq 1 ]]; then pass "vhost_get_controllers showed QEMU connected to vhost.0"
else fail "vhost_get_controllers never showed a session: $(cat "$TMP/out" "$TMP/err")"; fi

# The fio reports the guest printed: I/Os done, no errors, every one there. No kernel trouble.
if python3 "$here/guest_reports.py" "$log" vhost-verify-4k vhost-verify-128k; then pass "fio reports"; else fail "fio reports"; fi

serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "sluice serve stops cleanly on SIGTERM"; else fail "server stop: rc $RC killed $KILLED: $(tail -5 "$TMP/server.err")"; fi
echo "vhost guest lane: $((SECONDS - start)) s"
finish
