#!/usr/bin/env bash
# The NVMe/TCP guest lane: `sluice serve` exports a 64 MiB malloc namespace over NVMe/TCP on
# 127.0.0.1 (an ephemeral port), and a TCG guest (scripts/guest/, a virtio NIC on QEMU's user
# network) runs the Linux kernel's initiator against it through 10.0.2.2:
# nvmf_guest_inside.sh (nvme-cli discover and connect, fio verify, ext4, digests).
# The guest's exit code, its fio reports (I/Os done, no errors) and the daemon's clean stop
# decide the result.
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
ROOT=$(cd "$here/../.." && pwd)
GUEST=$ROOT/scripts/guest
start=$SECONDS

for tool in qemu-system-x86_64 nvme fio; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 77; }
done
kdir=$("$GUEST/fetch-kernel.sh")
rc=$?
if [[ $rc -eq 77 ]]; then echo "SKIP: the guest kernel package could not be downloaded (see above)"; exit 77; fi
if [[ $rc -ne 0 ]]; then echo "FAIL: fetch-kernel.sh exit $rc"; exit 1; fi

make_tmp nvmf-guest
nqn=nqn.2026-12.io.sluice:guest-disk
size=$((64 << 20))
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
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

if ! "$GUEST/make-initramfs.sh" --kernel-dir "$kdir" --out "$TMP/initrd.cpio" \
    --script "$ROOT/tests/integration/nvmf_guest_inside.sh" \
    --module virtio_pci --module virtio_net --module nvme-tcp --module ext4 --module crc32c_generic \
    --bin "$(command -v nvme)" --bin "$(command -v fio)" --bin "$(command -v mkfs.ext4)" --bin "$(command -v e2fsck)" \
    --env "PORT=$port" --env "NQN=$nqn" --env "SIZE_SECTORS=$((size / 512))"; then
  fail "make-initramfs.sh"
  finish
fi

log=${NVMF_GUEST_LOG:-$TMP/console.log}
setpriv --pdeathsig TERM "$GUEST/run-guest.sh" --kernel "$kdir/vmlinux" --initrd "$TMP/initrd.cpio" --net \
  --log "$log" --timeout "${NVMF_GUEST_TIMEOUT:-300}" --ns 16M &
runner=$!
trap 'kill -TERM $runner 2>/dev/null; wait $runner; exit 143' TERM
trap 'kill -TERM $runner 2>/dev/null; wait $runner; exit 130' INT
wait $runner
guest_rc=$?
trap - TERM INT
if [[ $guest_rc -eq 0 ]]; then pass "guest script passed"; else fail "guest script exit $guest_rc"; fi

# The fio reports the guest printed: I/Os done, no errors, every one there. No kernel trouble.
if python3 - "$log" <<'PY'
import json, sys
want = {"tcp-verify-4k", "tcp-verify-128k", "tcp-verify-digests"}
seen, bad = set(), []
for line in open(sys.argv[1], errors="replace").read().replace("\r", "").splitlines():
    if any(k in line for k in ("BUG:", "Oops", "WARNING:", "Call Trace")):
        bad.append(f"guest kernel: {line.strip()}")
    at = line.find("GUEST-JSON ")
    if at < 0:
        continue
    _, name, text = line[at:].split(" ", 2)
    try:
        job = json.loads(text)["jobs"][0]
        assert job["error"] == 0, f"fio error {job['error']}"
        assert job["write"]["total_ios"] > 0 and job["read"]["total_ios"] > 0, "no I/Os"
        print(f"ok   report {name}: {job['write']['total_ios']} writes verified by {job['read']['total_ios']} reads")
        seen.add(name)
    except Exception as e:
        bad.append(f"report {name}: {e!r}")
for b in bad:
    print(f"FAIL {b}")
if want - seen:
    print(f"FAIL reports missing: {' '.join(sorted(want - seen))}")
sys.exit(1 if bad or want - seen else 0)
PY
then pass "fio reports"; else fail "fio reports"; fi

serve_stop
if [[ $KILLED -eq 0 && $RC -eq 0 ]]; then pass "sluice serve stops cleanly on SIGTERM"; else fail "server stop: rc $RC killed $KILLED: $(tail -5 "$TMP/server.err")"; fi
echo "nvmf guest lane: $((SECONDS - start)) s"
finish
