# shellcheck shell=dash disable=SC1091
# The guest half of the vhost-user lane (busybox sh in a TCG guest whose RAM is a shared memfd):
# the guest kernel's virtio-blk driver on a disk that a vhost-user-blk back end on the host
# serves from the guest's own memory.
#
#   the disk: its size, its number of queues (one blk-mq hardware context per virtqueue)
#   fio write+verify at 4 KiB and 128 KiB, two jobs at once (two queues busy)
#   mkfs.ext4, a file copied in and read back after a remount, fstrim (DISCARD), fsck
#   blkdiscard -z (WRITE ZEROES) over the first MiB, then zeros read back
#
# Environment (make-initramfs --env): SIZE_SECTORS (512-byte), QUEUES.
. /guest/lib.sh

modprobe crc32c_generic && modprobe virtio_pci && modprobe virtio_blk && modprobe ext4 || { fail "modprobe"; exit 1; }
wait_for /sys/block/vda 20 || { fail "no /dev/vda: $(ls /sys/block)"; exit 1; }
DEV=/dev/vda
wait_for $DEV 5 || { fail "$DEV has no node"; exit 1; }
size=$(cat /sys/block/vda/size)
if [ "$size" = "$SIZE_SECTORS" ]; then pass "$DEV: $size sectors"; else fail "$DEV has $size sectors, want $SIZE_SECTORS"; fi
queues=$(ls -d /sys/block/vda/mq/* | wc -l)
if [ "$queues" = "$QUEUES" ]; then pass "$DEV: $queues queues"; else fail "$DEV has $queues queues, want $QUEUES"; fi

# verify NAME BS: two fio jobs write 8 MiB each at random with block size BS, in separate
# halves of the disk, and verify it (crc32c).
verify() {
  fio_json "$1" --name="$1" --filename=$DEV --ioengine=libaio --direct=1 --rw=randwrite --bs="$2" \
    --size=8M --offset_increment=16M --numjobs=2 --group_reporting --iodepth=16 --verify=crc32c \
    --do_verify=1 --verify_fatal=1 --randrepeat=0
}
verify vhost-verify-4k 4k
verify vhost-verify-128k 128k

run_step "mkfs.ext4 $DEV" mkfs.ext4 -q -F $DEV
mkdir -p /mnt
dd if=/dev/urandom of=/tmp/file bs=1M count=6 2>/dev/null
if mount -t ext4 $DEV /mnt && cp /tmp/file /mnt/file && sync && umount /mnt &&
   mount -t ext4 $DEV /mnt && cmp /tmp/file /mnt/file; then
  pass "ext4: a 6 MiB file copied in reads back the same after a remount"
else
  fail "ext4 copy"
fi
if [ "$(cat /sys/block/vda/queue/discard_max_bytes)" -gt 0 ]; then
  run_step "fstrim /mnt (DISCARD)" fstrim /mnt
else
  fail "$DEV offers no DISCARD"
fi
umount /mnt 2>/dev/null
run_step "e2fsck -fn $DEV (clean)" e2fsck -fn $DEV

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

if dmesg | grep -E "BUG:|Oops|WARNING:|Call Trace" >/tmp/bad; then fail "guest kernel: $(head -5 /tmp/bad)"; fi
echo "guest: $FAILS failed"
[ "$FAILS" -eq 0 ]
