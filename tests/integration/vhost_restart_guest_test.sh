#!/usr/bin/env bash
# The vhost-user restart lane: what a guest sees when its back end dies and when its disk goes.
# `sluice serve -S DIR` serves a 64 MiB file (io_uring bdev, so what the daemon acknowledged
# survives the daemon) as a vhost-user-blk controller; a TCG guest uses it through QEMU with
# chardev reconnect. vhost_restart_guest_inside.sh:
#   1. writes 16 MiB at random, rate-limited so that it runs for several seconds, and then
#      verifies every block (fio, crc32c). While it writes, the host SIGKILLs the daemon and
#      starts it again with the same config: QEMU reconnects, the new daemon resumes the
#      requests the old one had taken (the inflight region), the guest's writes go on, and the
#      verify proves that no acknowledged write was lost.
#   2. reads until a read fails. Meanwhile the host deletes the file bdev under the controller
#      (a hot-remove): the guest's reads and writes get I/O errors; neither QEMU nor the daemon
#      crashes, and the daemon still answers RPC and stops cleanly.
#
# Usage: vhost_restart_guest_test.sh path/to/sluice
# Environment: VHOST_GUEST_TIMEOUT (s, default 300), VHOST_GUEST_LOG (keep the console log there).
# Exit 0 pass, 1 fail, 77 skip: only when qemu or fio is missing or the kernel package cannot
# be fetched.
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SLUICE=${1:?usage: $0 path/to/sluice}
start=$SECONDS
timeout=${VHOST_GUEST_TIMEOUT:-300}

guest_kernel fio

make_tmp vhost-restart
size=$((64 << 20))
queues=2
mkdir -p "$TMP/sockets"
truncate -s "$size" "$TMP/disk.img"
cat >"$TMP/config.json" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_uring_create", "params": {"name": "Disk0", "filename": "$TMP/disk.img", "block_size": 512}}]},
  {"subsystem": "vhost_blk", "config": [
    {"method": "vhost_create_blk_controller", "params": {"ctrlr": "vhost.0", "dev_name": "Disk0"}}]}]}
JSON
SERVE_ARGS=(-S "$TMP/sockets")
if ! serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi

if ! "$GUEST_DIR/make-initramfs.sh" --kernel-dir "$KDIR" --out "$TMP/initrd.cpio" \
    --script "$here/vhost_restart_guest_inside.sh" \
    --module virtio_pci --module virtio_blk --module crc32c_generic \
    --bin "$(command -v fio)"; then
  fail "make-initramfs.sh"
  finish
fi

log=${VHOST_GUEST_LOG:-$TMP/console.log}
guest_start --initrd "$TMP/initrd.cpio" --vhost-user-blk "$TMP/sockets/vhost.0,$queues" \
  --vhost-reconnect 1 --log "$log" --timeout "$timeout" --ns 16M

front_end_connected() {
  serve_rpc vhost_get_controllers '{"name": "vhost.0"}' && [[ $(json 'len(d[0]["sessions"])') -gt 0 ]] 2>/dev/null
}
# requests_served: how many requests the live connection has taken (0 when none).
requests_served() {
  serve_rpc vhost_get_controllers '{"name": "vhost.0"}' && json 'd[0]["stats"]["requests"]' 2>/dev/null || echo 0
}

# 1. The daemon killed in the middle of the guest's writes, and started again.
if wait_for_output "$GUEST_PID" "$log" "SLUICE-PHASE writing" "$timeout"; then
  sleep 2
  before=$(requests_served)
  kill -KILL "$SERVER"
  wait_or_kill "$SERVER" 5
  if serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
    pass "daemon SIGKILLed after it had served $before requests of the guest's writes, and started again"
    guest_watch 60 front_end_connected
    if [[ $SEEN -eq 1 ]]; then pass "QEMU reconnected to the new daemon"; else fail "QEMU never reconnected"; fi
  else
    fail "sluice serve did not start again: $(cat "$TMP/server.err")"
  fi
else
  fail "the guest never started writing"
fi

# 2. The disk hot-removed while the guest reads.
if wait_for_output "$GUEST_PID" "$log" "SLUICE-PHASE hot-remove" "$timeout"; then
  after=$(requests_served)
  if [[ $after -gt 0 ]]; then pass "the new daemon served $after requests"; else fail "the new daemon served no request"; fi
  if serve_rpc bdev_uring_delete '{"name": "Disk0"}'; then pass "bdev_uring_delete under the running guest"
  else fail "bdev_uring_delete: $(cat "$TMP/err")"; fi
else
  fail "the guest never reached the hot-remove step"
fi

guest_wait
guest_rc=$?
if [[ $guest_rc -eq 0 ]]; then pass "guest script passed (QEMU ran to the end)"; else fail "guest script exit $guest_rc"; fi
if python3 "$here/guest_reports.py" "$log" vhost-restart-verify; then pass "fio report: every block written across the restart verified"
else fail "fio reports"; fi

if serve_rpc vhost_get_controllers && [[ $(json 'len(d)') -eq 1 ]]; then pass "the daemon answers after the hot-remove"
else fail "vhost_get_controllers after the hot-remove: $(cat "$TMP/err")"; fi
serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "sluice serve stops cleanly on SIGTERM"; else fail "server stop: rc $RC killed $KILLED: $(tail -5 "$TMP/server.err")"; fi
echo "vhost restart lane: $((SECONDS - start)) s"
finish
