#!/usr/bin/env bash
# The NVMe/TCP guest lane, both ways. `sluice serve` exports a 64 MiB malloc namespace over
# NVMe/TCP on 127.0.0.1 (an ephemeral port), and a TCG guest (scripts/guest/, a virtio NIC on
# QEMU's user network) runs the Linux kernel's initiator against it through 10.0.2.2:
# nvmf_guest_inside.sh (nvme-cli discover and connect, fio verify, ext4, digests). Then the
# guest serves a RAM disk with the kernel's nvmet-tcp target, reached from the host through a
# forwarded port, and Sluice's initiator checks it: `sluice nvme discover`, `sluice perf -w
# verify` at 4 KiB and 128 KiB, with digests too.
# The guest's exit code, its fio reports (I/Os done, no errors), the initiator's runs and the
# daemon's clean stop decide the result.
#
# Usage: nvmf_guest_test.sh path/to/sluice
# Environment: NVMF_GUEST_TIMEOUT (s, default 300), NVMF_GUEST_LOG (keep the console log there).
# Exit 0 pass, 1 fail, 77 skip: only when qemu or nvme-cli is missing or the kernel package
# cannot be fetched.
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=lib.sh
. "$here/lib.sh"
SLUICE=${1:?usage: $0 path/to/sluice}
start=$SECONDS

guest_kernel nvme fio

make_tmp nvmf-guest
nqn=nqn.2026-12.io.sluice:guest-disk
size=$((64 << 20))
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
target_nqn=nqn.2026-12.io.sluice:kernel-target
fwd_nvme=$(free_port)  # the host's ports QEMU forwards to the guest's 4420 (nvmet) and 4421 (done)
fwd_done=$(free_port)
cat >"$TMP/config.json" <<JSON
{"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": $((size / 512)), "block_size": 512}}]},
  {"subsystem": "nvmf", "config": [
    {"method": "nvmf_create_transport", "params": {"trtype": "TCP"}},
    {"method": "nvmf_create_subsystem", "params": {"nqn": "$nqn", "serial_number": "SLGUEST01", "allow_any_host": true}},
    {"method": "nvmf_subsystem_add_ns", "params": {"nqn": "$nqn", "namespace": {"bdev_name": "Malloc0"}}},
    {"method": "nvmf_subsystem_add_listener", "params": {"nqn": "$nqn",
      "listen_address": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "$port"}}}]}]}
JSON
if ! serve_start "$TMP/rpc.sock" "$TMP/config.json"; then
  fail "sluice serve did not start: $(cat "$TMP/server.err")"
  finish
fi
pass "sluice serve exports $nqn on 127.0.0.1:$port"

if ! "$GUEST_DIR/make-initramfs.sh" --kernel-dir "$KDIR" --out "$TMP/initrd.cpio" \
    --script "$here/nvmf_guest_inside.sh" \
    --module virtio_pci --module virtio_net --module nvme-tcp --module ext4 --module crc32c_generic \
    --module nvmet-tcp --module brd \
    --bin "$(command -v nvme)" --bin "$(command -v fio)" --bin "$(command -v mkfs.ext4)" --bin "$(command -v e2fsck)" \
    --env "PORT=$port" --env "NQN=$nqn" --env "SIZE_SECTORS=$((size / 512))" --env "TARGET_NQN=$target_nqn"; then
  fail "make-initramfs.sh"
  finish
fi

log=${NVMF_GUEST_LOG:-$TMP/console.log}
guest_start --initrd "$TMP/initrd.cpio" --net \
  --hostfwd "$fwd_nvme:4420" --hostfwd "$fwd_done:4421" \
  --log "$log" --timeout "${NVMF_GUEST_TIMEOUT:-300}" --ns 16M

# Sluice's initiator against the kernel's target, once the guest says it serves.
for _ in $(seq 1 "${NVMF_GUEST_TIMEOUT:-300}"); do
  grep -q "GUEST-READY nvmet" "$log" 2>/dev/null && break
  kill -0 $GUEST_PID 2>/dev/null || break
  sleep 1
done
if grep -q "GUEST-READY nvmet" "$log" 2>/dev/null; then
  kspec=nvme-tcp:127.0.0.1:$fwd_nvme/$target_nqn/1
  if timeout 60 "$SLUICE" nvme discover "127.0.0.1:$fwd_nvme" --json >"$TMP/disc" 2>&1 &&
     grep -q "$target_nqn" "$TMP/disc"; then
    pass "sluice nvme discover lists the kernel target's subsystem"
  else
    fail "discover against nvmet: $(cat "$TMP/disc")"
  fi
  for run in "4k" "128k" "16k?hdgst=1&ddgst=1"; do
    bs=${run%%\?*}
    opts=""; [[ $run == *\?* ]] && opts="?${run#*\?}"
    if timeout 120 "$SLUICE" perf -T "$kspec$opts" -w verify -o "$bs" -q 8 -t 2 --json >"$TMP/perf.json" 2>"$TMP/perf.err" &&
       python3 -c "import json,sys; t = json.load(open(sys.argv[1]))['total']; assert t['ios'] > 0 and t['errors'] == 0, t" "$TMP/perf.json"; then
      pass "sluice perf -w verify over NVMe/TCP to nvmet-tcp, bs $bs${opts:+ with digests}"
    else
      fail "verify against nvmet, bs $bs$opts: $(tail -3 "$TMP/perf.err")"
    fi
  done
else
  fail "the guest never served nvmet"
fi
python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10).close()" "$fwd_done" ||
  fail "could not tell the guest the initiator is done"
guest_wait
guest_rc=$?
if [[ $guest_rc -eq 0 ]]; then pass "guest script passed"; else fail "guest script exit $guest_rc"; fi

# The fio reports the guest printed: I/Os done, no errors, every one there. No kernel trouble.
if python3 "$here/guest_reports.py" "$log" tcp-verify-4k tcp-verify-128k tcp-verify-digests; then pass "fio reports"; else fail "fio reports"; fi

serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "sluice serve stops cleanly on SIGTERM"; else fail "server stop: rc $RC killed $KILLED: $(tail -5 "$TMP/server.err")"; fi
echo "nvmf guest lane: $((SECONDS - start)) s"
finish
