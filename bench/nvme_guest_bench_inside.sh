# shellcheck shell=dash disable=SC1091
# The guest half of nvme_guest_bench.py (busybox sh, /guest/run.sh in the TCG guest).
# 4 KiB random reads on namespace 1 at each queue depth in BENCH_QDS, one core (CPU 0):
#   kernel nvme driver:  fio io_uring, fio libaio, sluice perf -T uring:/dev/nvme0n1
#   vfio-pci:            sluice perf -T nvme:BDF  (and `sluice nvme perf`, when it exists)
#   uio_pci_generic:     the same
# Every run prints "GUEST-JSON <qdN>/<runner>/<round> <json>"; the host takes medians.
# Environment: BENCH_T seconds per run, BENCH_REPEAT rounds, BENCH_QDS queue depths.
. /guest/lib.sh
T=${BENCH_T:-5}
REPEAT=${BENCH_REPEAT:-1}
QDS=${BENCH_QDS:-1 32}

BDF=$(nvme_bdfs | head -1)
[ -n "$BDF" ] || { fail "no NVMe controller"; exit 1; }
if sluice perf -T nvme:none -t 0.001 2>&1 | grep -q "unknown device type 'nvme'"; then HAVE_DRIVER=0; else HAVE_DRIVER=1; fi
HAVE_NVME_PERF=0  # `sluice nvme perf`; `sluice nvme --help` alone would show the top-level help without nvme
if sluice --help 2>/dev/null | grep -qE '^ +nvme +' && sluice nvme --help 2>/dev/null | grep -qE '^ +perf +'; then
  HAVE_NVME_PERF=1
fi

# fio options as in bench/perf_vs_fio.py: the same batching freedom Sluice has.
fio_run() {  # fio_run NAME ENGINE DEV QD
  local extra="--fixedbufs=1 --registerfiles=1"
  [ "$2" = libaio ] && extra=""
  [ "$4" -gt 1 ] && extra="$extra --iodepth_batch_submit=$4 --iodepth_batch_complete_max=$4"
  fio_json "$1" --name=bench --filename="$3" --ioengine="$2" --direct=1 --rw=randread --bs=4k \
    --iodepth="$4" --time_based --runtime="$T" --cpus_allowed=0 --norandommap --randrepeat=0 $extra
}
sluice_run() {  # sluice_run NAME TARGET QD
  perf_json "$1" -T "$2" -w randread -o 4k -q "$3" -t "$T" -c 0
}

modprobe nvme && bind "$BDF" nvme && wait_for /dev/nvme0n1 10 || { fail "kernel nvme driver"; exit 1; }
# Real data on the device: reads of never-written blocks can take shortcuts.
run_step "fill namespace 1" fio --name=fill --filename=/dev/nvme0n1 --rw=write --bs=1M --direct=1 \
  --ioengine=libaio --iodepth=8
r=0
while [ $r -lt "$REPEAT" ]; do
  for qd in $QDS; do
    fio_run "qd$qd/fio-io_uring/$r" io_uring /dev/nvme0n1 "$qd"
    fio_run "qd$qd/fio-libaio/$r" libaio /dev/nvme0n1 "$qd"
    sluice_run "qd$qd/sluice-uring/$r" uring:/dev/nvme0n1 "$qd"
  done
  r=$((r + 1))
done

if [ $HAVE_DRIVER -eq 0 ]; then
  skip "Sluice's nvme driver rows: this sluice's perf has no nvme: scheme"
  echo "guest: $FAILS failure(s)"
  [ $FAILS -eq 0 ]
  exit
fi

modprobe vfio_iommu_type1 && modprobe vfio-pci && bind "$BDF" vfio-pci || { fail "vfio-pci bind"; exit 1; }
wait_for "/dev/vfio/$(iommu_group_of "$BDF")" 5 || fail "no /dev/vfio group node"
echo 64 >/proc/sys/vm/nr_hugepages
# driver_rows MODE: Sluice's driver through the bdev layer, and `sluice nvme perf` beside it.
driver_rows() {
  local r=0 qd
  while [ $r -lt "$REPEAT" ]; do
    for qd in $QDS; do
      sluice_run "qd$qd/sluice-nvme-$1/$r" "nvme:$BDF" "$qd"
      if [ $HAVE_NVME_PERF -eq 1 ]; then
        run_step "qd$qd/sluice-nvme-perf-$1/$r" sluice nvme perf "$BDF" -q "$qd" -o 4k -w randread -t "$T" --json &&
          emit_json "qd$qd/sluice-nvme-perf-$1/$r" /tmp/step.out
      fi
    done
    r=$((r + 1))
  done
}
driver_rows vfio

modprobe uio_pci_generic && bind "$BDF" uio_pci_generic && wait_for /dev/uio0 5 || { fail "uio_pci_generic bind"; exit 1; }
driver_rows uio

echo "guest: $FAILS failure(s)"
[ $FAILS -eq 0 ]
