# shellcheck shell=dash disable=SC1091
# The guest half of the vhost-user lane (busybox sh in a TCG guest whose RAM is a shared memfd):
# the guest kernel's virtio-blk and virtio-scsi drivers on disks that vhost-user back ends on
# the host serve from the guest's own memory.
#
#   virtio-blk /dev/vda: its size, its number of queues (one blk-mq hardware context per
#     virtqueue), then the disk checks below, then blkdiscard -z (WRITE ZEROES) over the
#     first MiB and zeros read back
#   virtio-scsi target 0: the SCSI disk's size, vendor and request queues, the disk checks
#   hot-plug: "SLUICE-PHASE scsi-hotplug" asks the host to add target 1; its disk must appear
#     (the driver rescans on the event queue's report) and pass fio verify; "SLUICE-PHASE
#     scsi-unplug" asks the host to remove it again, and its disk must go
#
#   the disk checks: fio write+verify at 4 KiB and 128 KiB, two jobs at once (two queues
#   busy); mkfs.ext4, a file copied in and read back after a remount, fstrim (DISCARD), fsck
#
# Environment (make-initramfs --env): SIZE_SECTORS, QUEUES (the blk disk), SCSI_SECTORS,
# SCSI_QUEUES, HOTPLUG_SECTORS (the SCSI disks); sectors of 512 bytes.
. /guest/lib.sh

modprobe crc32c_generic && modprobe virtio_pci && modprobe virtio_blk && modprobe virtio_scsi &&
  modprobe sd_mod && modprobe ext4 || { fail "modprobe"; exit 1; }

# verify NAME DEV BS: two fio jobs write 8 MiB each at random with block size BS, in separate
# halves of the disk, and verify it (crc32c).
verify() {
  fio_json "$1" --name="$1" --filename="$2" --ioengine=libaio --direct=1 --rw=randwrite --bs="$3" \
    --size=8M --offset_increment=16M --numjobs=2 --group_reporting --iodepth=16 --verify=crc32c \
    --do_verify=1 --verify_fatal=1 --randrepeat=0
}

# disk_checks TAG DEV: fio verify (reports TAG-verify-4k, TAG-verify-128k), ext4, fstrim, fsck.
disk_checks() {
  local tag=$1 dev=$2 name
  name=$(basename "$2")
  verify "$tag-verify-4k" "$dev" 4k
  verify "$tag-verify-128k" "$dev" 128k
  run_step "mkfs.ext4 $dev" mkfs.ext4 -q -F "$dev"
  mkdir -p /mnt
  dd if=/dev/urandom of=/tmp/file bs=1M count=6 2>/dev/null
  if mount -t ext4 "$dev" /mnt && cp /tmp/file /mnt/file && sync && umount /mnt &&
     mount -t ext4 "$dev" /mnt && cmp /tmp/file /mnt/file; then
    pass "ext4 on $dev: a 6 MiB file copied in reads back the same after a remount"
  else
    fail "ext4 copy on $dev"
  fi
  if [ "$(cat "/sys/block/$name/queue/discard_max_bytes")" -gt 0 ]; then
    run_step "fstrim /mnt on $dev (DISCARD)" fstrim /mnt
  else
    fail "$dev offers no DISCARD"
  fi
  umount /mnt 2>/dev/null
  run_step "e2fsck -fn $dev (clean)" e2fsck -fn "$dev"
}

# expect_size DEV SECTORS
expect_size() {
  local size
  size=$(cat "/sys/block/$(basename "$1")/size")
  if [ "$size" = "$2" ]; then pass "$1: $size sectors"; else fail "$1 has $size sectors, want $2"; fi
}

# scsi_disk TARGET: the block device name of LUN 0 of that virtio-scsi target, empty if none.
scsi_disk() {
  local d
  for d in /sys/bus/scsi/devices/*:0:"$1":0/block/*; do
    [ -e "$d" ] && basename "$d"
  done
}

# wait_scsi_disk TARGET SECONDS [gone]: until the target's disk appears (or, with "gone", until
# it is gone); sets DISK.
wait_scsi_disk() {
  local i=0 limit=$(($2 * 10))
  while [ $i -lt $limit ]; do
    DISK=$(scsi_disk "$1")
    if [ "${3:-}" = gone ]; then [ -z "$DISK" ] && return 0; else [ -n "$DISK" ] && [ -e "/dev/$DISK" ] && return 0; fi
    i=$((i + 1))
    sleep 0.1
  done
  return 1
}

# ---- virtio-blk
wait_for /sys/block/vda 20 || { fail "no /dev/vda: $(ls /sys/block)"; exit 1; }
DEV=/dev/vda
wait_for $DEV 5 || { fail "$DEV has no node"; exit 1; }
expect_size $DEV "$SIZE_SECTORS"
queues=$(ls -d /sys/block/vda/mq/* | wc -l)
if [ "$queues" = "$QUEUES" ]; then pass "$DEV: $queues queues"; else fail "$DEV has $queues queues, want $QUEUES"; fi
disk_checks vhost $DEV

if [ "$(cat /sys/block/vda/queue/write_zeroes_max_bytes)" -gt 0 ]; then
  dd if=/dev/zero of=/tmp/zeros bs=1M count=1 2>/dev/null
  if ! dd if=/dev/urandom of=$DEV bs=1M count=1 conv=fsync 2>/tmp/dd.err; then
    fail "writing the first MiB: $(cat /tmp/dd.err)"
  elif ! /bin/blkdiscard -z -o 0 -l 1048576 $DEV 2>/tmp/bd.err; then  # util-linux's: busybox's has no -z
    fail "blkdiscard -z: $(cat /tmp/bd.err)"
  elif echo 3 >/proc/sys/vm/drop_caches && dd if=$DEV of=/tmp/first bs=1M count=1 2>/dev/null && cmp /tmp/first /tmp/zeros; then
    pass "blkdiscard -z (WRITE ZEROES): the first MiB reads back as zeros"
  else
    fail "WRITE ZEROES: the first MiB is not zeros"
  fi
else
  fail "$DEV offers no WRITE ZEROES"
fi

# ---- virtio-scsi
if wait_scsi_disk 0 20; then
  SDEV=/dev/$DISK
  pass "virtio-scsi target 0: $SDEV"
  expect_size "$SDEV" "$SCSI_SECTORS"
  vendor=$(tr -d " " <"/sys/block/$DISK/device/vendor")  # INQUIRY pads it to 8 characters
  if [ "$vendor" = SLUICE ]; then pass "$SDEV: INQUIRY vendor $vendor, model $(cat "/sys/block/$DISK/device/model")"
  else fail "$SDEV: vendor '$vendor'"; fi
  hwq=$(ls -d "/sys/block/$DISK/mq/"* | wc -l)
  if [ "$hwq" = "$SCSI_QUEUES" ]; then pass "$SDEV: $hwq request queues"; else fail "$SDEV has $hwq request queues, want $SCSI_QUEUES"; fi
  disk_checks scsi "$SDEV"
else
  fail "no disk for virtio-scsi target 0: $(ls /sys/bus/scsi/devices)"
fi

echo "SLUICE-PHASE scsi-hotplug"
if wait_scsi_disk 1 60; then
  pass "target 1 added on the host: /dev/$DISK appeared"
  expect_size "/dev/$DISK" "$HOTPLUG_SECTORS"
  fio_json scsi-hotplug-verify --name=scsi-hotplug-verify --filename="/dev/$DISK" --ioengine=libaio --direct=1 \
    --rw=randwrite --bs=4k --size=4M --iodepth=8 --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0
  echo "SLUICE-PHASE scsi-unplug"
  if wait_scsi_disk 1 60 gone; then pass "target 1 removed on the host: its disk went away"
  else fail "target 1's disk is still there 60 s after the unplug step"; fi
else
  fail "target 1's disk never appeared: $(ls /sys/bus/scsi/devices)"
fi
# Target 0 kept working through it.
if fio --name=after --filename="$SDEV" --ioengine=psync --direct=1 --rw=read --bs=1M --size=4M >/tmp/after 2>&1; then
  pass "$SDEV still reads after the unplug"
else
  fail "$SDEV after the unplug: $(tail -3 /tmp/after)"
fi

if dmesg | grep -E "BUG:|Oops|WARNING:|Call Trace" >/tmp/bad; then fail "guest kernel: $(head -5 /tmp/bad)"; fi
echo "guest: $FAILS failed"
[ "$FAILS" -eq 0 ]
