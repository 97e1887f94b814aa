# shellcheck shell=dash disable=SC1091
# The guest half of vhost_bench.py (busybox sh, /guest/run.sh in the TCG guest): fio 4 KiB
# random reads on /dev/vda at each queue depth in BENCH_QDS, BENCH_REPEAT rounds of BENCH_T
# seconds. Each run is framed by "GUEST-CELL-START <name>" and "GUEST-CELL-END <name>" lines,
# between which the host samples the serving process's CPU time, then reported as
# "GUEST-JSON qdN/<round> <fio json>".
. /guest/lib.sh
T=${BENCH_T:-5}
REPEAT=${BENCH_REPEAT:-1}
QDS=${BENCH_QDS:-1 32}

modprobe virtio_pci && modprobe virtio_blk && wait_for /dev/vda 20 || { fail "no /dev/vda"; exit 1; }
# Real data on the disk: reads of never-written blocks can take shortcuts.
run_step "fill /dev/vda" fio --name=fill --filename=/dev/vda --rw=write --bs=1M --direct=1 --ioengine=libaio \
  --iodepth=4 || exit 1
r=0
while [ $r -lt "$REPEAT" ]; do
  for qd in $QDS; do
    name=qd$qd/$r
    echo "GUEST-CELL-START $name"
    fio --output-format=json --output=/tmp/fio.json --name=bench --filename=/dev/vda --ioengine=libaio --direct=1 \
      --rw=randread --bs=4k --iodepth="$qd" --time_based --runtime="$T" --norandommap --randrepeat=0 >/tmp/fio.err 2>&1
    rc=$?
    echo "GUEST-CELL-END $name"
    if [ $rc -eq 0 ]; then emit_json "$name" /tmp/fio.json; else fail "fio $name: exit $rc: $(tail -3 /tmp/fio.err)"; fi
  done
  r=$((r + 1))
done
echo "guest: $FAILS failed"
[ "$FAILS" -eq 0 ]
