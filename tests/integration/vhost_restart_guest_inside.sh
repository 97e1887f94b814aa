# shellcheck shell=dash disable=SC1091
# The guest half of the vhost-user restart lane (busybox sh in a TCG guest whose RAM is a shared
# memfd): the guest's virtio-blk disk while its back end dies and comes back, then while its
# bdev is removed. The host acts on the "SLUICE-PHASE" lines this script prints.
#
#   SLUICE-PHASE writing     fio writes 16 MiB at random (4 KiB, rate-limited to ~10 s) and then
#                            verifies it: the host kills and restarts the daemon meanwhile
#   SLUICE-PHASE hot-remove  reads until one fails: the host removes the bdev meanwhile; then a
#                            write must fail too
. /guest/lib.sh

modprobe crc32c_generic && modprobe virtio_pci && modprobe virtio_blk || { fail "modprobe"; exit 1; }
wait_for /sys/block/vda 20 || { fail "no /dev/vda: $(ls /sys/block)"; exit 1; }
DEV=/dev/vda
wait_for $DEV 5 || { fail "$DEV has no node"; exit 1; }

echo "SLUICE-PHASE writing"
t0=$(now)
fio_json vhost-restart-verify --name=vhost-restart-verify --filename=$DEV --ioengine=libaio --direct=1 \
  --rw=randwrite --bs=4k --size=16M --iodepth=16 --rate_iops=400 --verify=crc32c --do_verify=1 \
  --verify_fatal=1 --randrepeat=0
echo "writes and verify across the restart took $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"

# read_one: one 4 KiB direct read of the first block; fails on an I/O error.
read_one() { fio --name=probe --filename=$DEV --ioengine=psync --direct=1 --rw=read --bs=4k --size=4k >/tmp/probe 2>&1; }

echo "SLUICE-PHASE hot-remove"
i=0
while read_one && [ $i -lt 600 ]; do
  i=$((i + 1))
  sleep 0.1
done
if [ $i -lt 600 ]; then
  pass "reads fail once the bdev is removed ($(grep -o 'err=[ 0-9]*' /tmp/probe | head -1))"
  if fio --name=probe --filename=$DEV --ioengine=psync --direct=1 --rw=write --bs=4k --size=4k >/tmp/probe 2>&1; then
    fail "a write succeeded on the removed disk"
  else
    pass "writes fail too"
  fi
else
  fail "reads still succeed 60 s after the hot-remove step began"
fi

if dmesg | grep -E "BUG:|Oops|WARNING:|Call Trace" >/tmp/bad; then fail "guest kernel: $(head -5 /tmp/bad)"; fi
echo "guest: $FAILS failed"
[ "$FAILS" -eq 0 ]
