# shellcheck shell=dash disable=SC1091
# The guest half of nvmf_guest_test.sh (busybox sh in a TCG guest with a virtio NIC on QEMU's
# user network): the Linux kernel's NVMe/TCP initiator against `sluice serve` on the host,
# reached at 10.0.2.2 (the host's 127.0.0.1). The guest's own PCI NVMe controller is left
# without a driver, so the fabrics controller is the only nvme device.
#
#   nvme discover: the subsystem and the discovery log's address
#   nvme connect (no digests): the namespace's size, fio write+verify at 4 KiB and 128 KiB
#     (in-capsule data and R2T), mkfs.ext4, a file copied in and read back, fsck, disconnect
#   nvme connect -g -G (header and data digests): fio verify again, disconnect
#   then the other way: the kernel's nvmet-tcp target on a RAM disk (brd) listening on the
#   guest's port 4420, which the host reaches through QEMU's forwarded port; "GUEST-READY
#   nvmet" tells the host to start Sluice's initiator, whose connection to port 4421 says it
#   is done
#
# Environment (make-initramfs --env): PORT, NQN, SIZE_SECTORS (the namespace, 512-byte),
# TARGET_NQN (the kernel target's subsystem).
. /guest/lib.sh
HOSTNQN=nqn.2026-12.io.sluice:guest

# crc32c: the digests' and ext4's checksum (busybox modprobe does not follow soft dependencies).
modprobe crc32c_generic && modprobe virtio_pci && modprobe virtio_net && modprobe nvme-tcp && modprobe ext4 ||
  { fail "modprobe"; exit 1; }
wait_for /sys/class/net/eth0 20 || { fail "no eth0"; exit 1; }
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || { fail "eth0 up"; exit 1; }
pass "network up: 10.0.2.15, the host at 10.0.2.2:$PORT"

if nvme discover -t tcp -a 10.0.2.2 -s "$PORT" -q "$HOSTNQN" >/tmp/disc 2>&1 && grep -q "subnqn: *$NQN" /tmp/disc &&
   grep -q "traddr: *127.0.0.1" /tmp/disc; then
  pass "nvme discover lists $NQN at 127.0.0.1:$PORT"
else
  fail "nvme discover: $(cat /tmp/disc)"
fi

# connect [FLAGS]: connects, waits for the namespace; sets DEV.
connect() {
  local what="nvme connect${*:+ $*}"
  if ! nvme connect -t tcp -a 10.0.2.2 -s "$PORT" -n "$NQN" -q "$HOSTNQN" "$@" >/tmp/conn 2>&1; then
    fail "$what: $(cat /tmp/conn)"; return 1
  fi
  DEV=/dev/nvme0n1
  wait_for "$DEV" 20 || { fail "$what: $DEV did not appear"; return 1; }
  local size
  size=$(cat /sys/block/nvme0n1/size)
  if [ "$size" = "$SIZE_SECTORS" ]; then pass "$what: $DEV, $size sectors"
  else fail "$what: $DEV has $size sectors, want $SIZE_SECTORS"; return 1; fi
}

disconnect() {
  if nvme disconnect -n "$NQN" >/tmp/disc 2>&1 && grep -q "disconnected 1 controller" /tmp/disc; then
    pass "nvme disconnect"
  else
    fail "nvme disconnect: $(cat /tmp/disc)"
  fi
}

# verify NAME BS: fio writes 8 MiB at random with block size BS and verifies it (crc32c).
verify() {
  if fio --name="$1" --filename="$DEV" --ioengine=libaio --direct=1 --rw=randwrite --bs="$2" --size=8M \
       --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=json >/tmp/fio.json 2>/tmp/fio.err; then
    echo "GUEST-JSON $1 $(tr -d '\n' </tmp/fio.json)"
    pass "fio write+verify, bs $2"
  else
    fail "fio $1: $(cat /tmp/fio.err)"
  fi
}

if connect; then
  verify tcp-verify-4k 4k
  verify tcp-verify-128k 128k
  mkdir -p /mnt
  if mkfs.ext4 -q -F "$DEV" && mount -t ext4 "$DEV" /mnt && cp /bin/fio /mnt/fio.copy && sync &&
     umount /mnt && mount -t ext4 "$DEV" /mnt && cmp /bin/fio /mnt/fio.copy && umount /mnt && e2fsck -fn "$DEV" >/tmp/fsck 2>&1; then
    pass "mkfs.ext4, a file copied in and read back after a remount, e2fsck clean"
  else
    fail "ext4 on $DEV: $(cat /tmp/fsck 2>/dev/null)"
    umount /mnt 2>/dev/null
  fi
  disconnect
fi

if connect -g -G; then
  verify tcp-verify-digests 16k
  disconnect
fi

# The kernel's target for Sluice's initiator. configfs by hand: nvmetcli is not in the guest.
serve_nvmet() {
  modprobe brd rd_nr=1 rd_size=65536 && modprobe nvmet && modprobe nvmet-tcp || { fail "modprobe nvmet"; return 1; }
  mount -t configfs none /sys/kernel/config 2>/dev/null
  local cfg=/sys/kernel/config/nvmet
  local sub=$cfg/subsystems/$TARGET_NQN
  mkdir "$sub" && echo 1 >"$sub/attr_allow_any_host" && mkdir "$sub/namespaces/1" &&
    echo -n /dev/ram0 >"$sub/namespaces/1/device_path" && echo 1 >"$sub/namespaces/1/enable" &&
    mkdir "$cfg/ports/1" && echo tcp >"$cfg/ports/1/addr_trtype" && echo ipv4 >"$cfg/ports/1/addr_adrfam" &&
    echo 10.0.2.15 >"$cfg/ports/1/addr_traddr" && echo 4420 >"$cfg/ports/1/addr_trsvcid" &&
    ln -s "$sub" "$cfg/ports/1/subsystems/$TARGET_NQN" || { fail "nvmet configfs"; return 1; }
  pass "nvmet-tcp serves $TARGET_NQN (64 MiB brd) on 10.0.2.15:4420"
  echo "GUEST-READY nvmet"
  if timeout 240 nc -l -p 4421 </dev/null >/dev/null; then
    pass "the host's initiator is done"
  else
    fail "the host never said it was done"
  fi
}
[ -n "${TARGET_NQN:-}" ] && serve_nvmet

[ "$FAILS" -eq 0 ]
