#!/usr/bin/env bash
# The vhost-user lane: `sluice serve -S DIR` serves malloc bdevs through two controllers with a
# Unix socket each in DIR: vhost.0, vhost-user-blk over a 64 MiB disk, and vhost.1,
# vhost-user-scsi with a 32 MiB disk as target 0. A TCG guest (scripts/guest/, its RAM a shared
# memfd) boots with a vhost-user-blk-pci disk and a vhost-user-scsi-pci controller, two queues
# each. Inside, vhost_guest_inside.sh runs the guest kernel's virtio-blk and virtio-scsi drivers
# on them: sizes and queues, fio verify with two jobs, ext4 copy, fstrim, fsck, WRITE ZEROES on
# the blk disk, INQUIRY data on the SCSI one; then SCSI hot-plug: when the guest asks, the host
# adds target 1 (vhost_scsi_controller_add_target) and later removes it, and the guest sees its
# disk come and go. The guest's exit code, its fio reports, vhost_get_controllers showing both
# front ends connected, and the daemon's clean stop decide the result.
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
size=$((64 << 20)) scsi_size=$((32 << 20)) hotplug_size=$((16 << 20))
queues=2
timeout=${VHOST_GUEST_TIMEOUT:-300}
mkdir -p "$TMP/sockets"
cat >"$TMP/config.json" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": $((size / 512)), "block_size": 512}},
    {"method": "bdev_malloc_create", "params": {"name": "Malloc1", "num_blocks": $((scsi_size / 512)), "block_size": 512}},
    {"method": "bdev_malloc_create", "params": {"name": "Malloc2", "num_blocks": $((hotplug_size / 512)), "block_size": 512}}]},
  {"subsystem": "vhost_blk", "config": [
    {"method": "vhost_create_blk_controller", "params": {"ctrlr": "vhost.0", "dev_name": "Malloc0"}}]},
  {"subsystem": "vhost_scsi", "config": [
    {"method": "vhost_create_scsi_controller", "params": {"ctrlr": "vhost.1"}},
    {"method": "vhost_scsi_controller_add_target", "params": {"ctrlr": "vhost.1", "scsi_target_num": 0, "bdev_name": "Malloc1"}}]}]}
JSON
SERVE_ARGS=(-S "$TMP/sockets")
if ! serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi
if [[ -S $TMP/sockets/vhost.0 && -S $TMP/sockets/vhost.1 ]]; then
  pass "sluice serve: controllers vhost.0 (blk) and vhost.1 (scsi) on $TMP/sockets"
else
  fail "no sockets in $TMP/sockets: $(ls "$TMP/sockets")"
  finish
fi

if ! "$GUEST_DIR/make-initramfs.sh" --kernel-dir "$KDIR" --out "$TMP/initrd.cpio" \
    --script "$here/vhost_guest_inside.sh" \
    --module virtio_pci --module virtio_blk --module virtio_scsi --module sd_mod --module ext4 --module crc32c_generic \
    --bin "$(command -v fio)" --bin "$(command -v mkfs.ext4)" --bin "$(command -v e2fsck)" \
    --bin "$(command -v blkdiscard)" \
    --env "SIZE_SECTORS=$((size / 512))" --env "QUEUES=$queues" --env "SCSI_SECTORS=$((scsi_size / 512))" \
    --env "SCSI_QUEUES=$queues" --env "HOTPLUG_SECTORS=$((hotplug_size / 512))"; then
  fail "make-initramfs.sh"
  finish
fi

log=${VHOST_GUEST_LOG:-$TMP/console.log}
guest_start --initrd "$TMP/initrd.cpio" --vhost-user-blk "$TMP/sockets/vhost.0,$queues" \
  --vhost-user-scsi "$TMP/sockets/vhost.1,$queues" --log "$log" --timeout "$timeout" --ns 16M

# While the guest runs, the daemon lists QEMU's two connections.
front_ends_connected() {
  serve_rpc vhost_get_controllers && [[ $(json 'sum(len(c["sessions"]) > 0 for c in d)') -eq 2 ]] 2>/dev/null
}
# scsi_targets: vhost.1's target numbers as vhost_get_controllers lists them ("0 1").
scsi_targets() {
  serve_rpc vhost_get_controllers '{"name": "vhost.1"}' &&
    json '" ".join(str(t["scsi_dev_num"]) for t in d[0]["backend_specific"]["scsi"])'
}
guest_watch 60 front_ends_connected  # QEMU connects before the guest boots: 60 s is plenty
connected=$SEEN
# SCSI hot-plug, when the guest asks for it.
if wait_for_output "$GUEST_PID" "$log" "SLUICE-PHASE scsi-hotplug" "$timeout"; then
  if serve_rpc vhost_scsi_controller_add_target '{"ctrlr": "vhost.1", "scsi_target_num": 1, "bdev_name": "Malloc2"}' &&
     [[ $(cat "$TMP/out") == 1 ]]; then
    pass "vhost_scsi_controller_add_target: Malloc2 as target 1 under the running guest"
  else
    fail "vhost_scsi_controller_add_target: $(cat "$TMP/out" "$TMP/err")"
  fi
  targets=$(scsi_targets)
  if [[ $targets == "0 1" ]]; then pass "vhost_get_controllers lists targets $targets"; else fail "targets listed: '$targets'"; fi
  if wait_for_output "$GUEST_PID" "$log" "SLUICE-PHASE scsi-unplug" "$timeout"; then
    if serve_rpc vhost_scsi_controller_remove_target '{"ctrlr": "vhost.1", "scsi_target_num": 1}'; then
      pass "vhost_scsi_controller_remove_target: target 1 under the running guest"
    else
      fail "vhost_scsi_controller_remove_target: $(cat "$TMP/err")"
    fi
  fi
else
  fail "the guest never reached the hot-plug step"
fi
guest_wait
guest_rc=$?
if [[ $guest_rc -eq 0 ]]; then pass "guest script passed"
else fail "guest script exit $guest_rc; the daemon's last words: $(tail -5 "$TMP/server.err")"; fi
if [[ $connected -eq 1 ]]; then pass "vhost_get_controllers showed QEMU connected to vhost.0 and vhost.1"
else fail "vhost_get_controllers never showed both sessions: $(cat "$TMP/out" "$TMP/err")"; fi

# The fio reports the guest printed: I/Os done, no errors, every one there. No kernel trouble.
if python3 "$here/guest_reports.py" "$log" vhost-verify-4k vhost-verify-128k scsi-verify-4k scsi-verify-128k \
    scsi-hotplug-verify; then pass "fio reports"; else fail "fio reports"; fi

serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "sluice serve stops cleanly on SIGTERM"; else fail "server stop: rc $RC killed $KILLED: $(tail -5 "$TMP/server.err")"; fi
echo "vhost guest lane: $((SECONDS - start)) s"
finish
