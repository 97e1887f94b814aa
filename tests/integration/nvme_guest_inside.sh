# shellcheck shell=dash disable=SC1091
# The guest half of nvme_guest_test.sh (busybox sh, run as /guest/run.sh in a TCG guest with
# QEMU's NVMe controller: namespace 1 of 64 MiB, namespace 2 of 16 MiB, behind intel-iommu).
#
# The controller goes round the drivers, and data written under one is verified under the next:
#   kernel nvme  -> vfio-pci (Sluice's driver) -> uio_pci_generic (Sluice's driver) -> kernel nvme
# Under the kernel driver: `sluice perf` on uring:/dev/nvme0nX and fio, and `sluice setup`
# refusing the controller while a filesystem on it is mounted. Under vfio-pci and
# uio_pci_generic: the binding itself (/dev/vfio/GROUP, /dev/uio0), then, when this sluice has
# the driver (`sluice nvme`), identify, smart-log, the test binaries in NVME_TESTS with
# SLUICE_NVME_BDF / SLUICE_TEST_BDEV / SLUICE_CONFORMANCE_SPEC set, verify and randread through
# `nvme:BDF[/NSID]`.
#
# Environment (make-initramfs --env): PERF_T seconds per perf run, NVME_TESTS the test binaries
# in /bin as NAME[@GTEST_FILTER], space-separated.
. /guest/lib.sh
T=${PERF_T:-1}
SERIAL=sluice-guest  # run-guest.sh's controller serial: identify must show it

BDF=$(nvme_bdfs | head -1)
if [ -z "$BDF" ]; then fail "no NVMe-class PCI function in the guest"; exit 1; fi
pass "NVMe controller at $BDF"
# What this sluice has of the driver: the `nvme` subcommand, and the nvme: scheme in perf.
if sluice --help 2>/dev/null | grep -qE '^ +nvme +'; then HAVE_CLI=1; else HAVE_CLI=0; fi
if sluice perf -T nvme:none -t 0.001 2>&1 | grep -q "unknown device type 'nvme'"; then HAVE_SCHEME=0; else HAVE_SCHEME=1; fi
[ $HAVE_CLI -eq 1 ] || echo "NOTE this sluice has no 'nvme' subcommand: list/identify/smart-log are skipped"
if sluice --help 2>/dev/null | grep -qE '^ +setup +'; then HAVE_SETUP=1; else HAVE_SETUP=0; fi
[ $HAVE_SETUP -eq 1 ] || echo "NOTE this sluice has no 'setup' subcommand: bindings are made by hand only"
[ $HAVE_SCHEME -eq 1 ] || echo "NOTE this sluice's perf has no nvme: scheme: the driver's perf and data checks are skipped"

# kernel_ns NSID: /dev/nvmeXnNSID of the controller at $BDF under the kernel driver.
kernel_ns() {
  local c
  for c in /sys/bus/pci/devices/$BDF/nvme/nvme*; do
    [ -e "$c" ] && echo "/dev/$(basename "$c")n$1" && return 0
  done
  return 1
}

# bind_kernel: back to the kernel nvme driver, both namespaces visible.
bind_kernel() {
  modprobe nvme || { fail "modprobe nvme"; return 1; }
  bind "$BDF" nvme || { fail "bind $BDF to nvme"; return 1; }
  local i=0
  while ! { N1=$(kernel_ns 1) && [ -b "$N1" ] && N2=$(kernel_ns 2) && [ -b "$N2" ]; }; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then fail "kernel nvme: namespaces of $BDF did not appear"; return 1; fi
    sleep 0.1
  done
  local s1 s2
  s1=$(cat "/sys/block/$(basename "$N1")/size") s2=$(cat "/sys/block/$(basename "$N2")/size")
  if [ "$s1" = 131072 ] && [ "$s2" = 32768 ]; then pass "kernel nvme: $N1 64 MiB and $N2 16 MiB"
  else fail "kernel nvme: namespace sizes $s1 and $s2 sectors, want 131072 and 32768"; return 1; fi
}

# sluice_driver MODE: Sluice's own driver on the controller, bound to MODE's kernel stub.
# Namespace 2 holds the pattern of seed $SEED from the previous driver; this driver verifies
# it, then leaves the pattern of seed $((SEED + 1)) for the next one.
sluice_driver() {
  local mode=$1 t
  if [ $HAVE_CLI -eq 1 ]; then
    if run_step "$mode: sluice nvme list" sluice nvme list; then
      grep -q "$BDF" /tmp/step.out && pass "$mode: list shows $BDF" || fail "$mode: list does not show $BDF: $(head -5 /tmp/step.out)"
    fi
    if run_step "$mode: sluice nvme identify" sluice nvme identify "$BDF"; then
      grep -q "$SERIAL" /tmp/step.out && pass "$mode: identify shows serial $SERIAL" ||
        fail "$mode: identify does not show serial $SERIAL: $(head -5 /tmp/step.out)"
    fi
    run_step "$mode: sluice nvme smart-log" sluice nvme smart-log "$BDF"
    if run_step "$mode-nvme-perf" sluice nvme perf "$BDF" -w randread -q 32 -t $T --json; then
      emit_json "$mode-nvme-perf" /tmp/step.out
    fi
  else
    skip "$mode: sluice nvme list/identify/smart-log (no 'nvme' subcommand in this sluice)"
  fi
  for t in $NVME_TESTS; do
    local bin=${t%%@*} filter=""
    [ "$bin" != "$t" ] && filter=${t#*@}
    # A filter that matched nothing passes silently in gtest: insist that tests ran.
    if run_step "$mode: $t on nvme:$BDF" env SLUICE_NVME_BDF="$BDF" SLUICE_TEST_BDEV="nvme:$BDF" \
        SLUICE_CONFORMANCE_SPEC="nvme:$BDF" "$bin" --gtest_brief=1 ${filter:+"--gtest_filter=$filter"}; then
      grep -q '^\[  PASSED  \] [1-9]' /tmp/step.out || fail "$mode: $t ran no tests: $(tail -3 /tmp/step.out)"
    fi
  done
  if [ $HAVE_SCHEME -eq 0 ]; then skip "$mode: sluice perf on nvme:$BDF (no nvme: scheme in this sluice)"; return; fi
  run_step "$mode: nvme:$BDF/2 holds seed $SEED" sluice perf -T "nvme:$BDF/2" -w verify --verify-only --seed $SEED -t $T
  perf_json "$mode-verify" -T "nvme:$BDF" -w verify -q 16 -t $T
  perf_json "$mode-randread-qd32" -T "nvme:$BDF" -w randread -q 32 -t $T
  perf_json "$mode-randread-qd1-ns2" -T "nvme:$BDF/2" -w randread -q 1 -t $T
  SEED=$((SEED + 1))
  run_step "$mode: write seed $SEED over nvme:$BDF/2" sluice perf -T "nvme:$BDF/2" -w write -o 128k --seed $SEED -t 2
}

# 1. The kernel's driver: Sluice over io_uring and fio, then seed 42 left on namespace 2.
SEED=42
if bind_kernel; then
  perf_json kernel-uring-verify -T "uring:$N1" -w verify -q 16 -t $T
  perf_json kernel-uring-randread-qd32 -T "uring:$N1" -w randread -q 32 -t $T
  fio_json kernel-fio-io_uring --name=randread --filename="$N1" --ioengine=io_uring --direct=1 --rw=randread \
    --bs=4k --iodepth=32 --time_based --runtime=$T
  fio_json kernel-fio-libaio --name=randread --filename="$N1" --ioengine=libaio --direct=1 --rw=randread \
    --bs=4k --iodepth=32 --time_based --runtime=$T
  run_step "kernel: write seed $SEED over $N2" sluice perf -T "uring:$N2" -w write -o 128k --seed $SEED -t 2
  run_step "kernel: $N2 holds seed $SEED" sluice perf -T "uring:$N2" -w verify --verify-only --seed $SEED -t $T
  # `sluice setup` must refuse to pull a disk with a mounted filesystem from under it.
  if [ $HAVE_SETUP -eq 1 ]; then
    run_step "sluice setup status" sluice setup status
    mkdir -p /mnt
    # (ext4's crc32c is a soft dependency, which busybox modprobe does not follow.)
    if modprobe crc32c_generic && modprobe ext4 && mke2fs -q "$N1" >/tmp/mkfs.out 2>&1 &&
       mount -t ext2 "$N1" /mnt 2>>/tmp/mkfs.out; then
      if sluice setup bind "$BDF" -d vfio-pci >/tmp/setup.out 2>&1; then
        fail "sluice setup bind moved $BDF while $N1 was mounted"
      elif [ "$(driver_of "$BDF")" = nvme ] && grep -q mounted /tmp/setup.out; then
        pass "sluice setup bind refuses while $N1 is mounted ($(head -1 /tmp/setup.out))"
      else
        fail "sluice setup bind with $N1 mounted: driver '$(driver_of "$BDF")', said: $(head -3 /tmp/setup.out)"
      fi
      umount /mnt
    else
      fail "could not make and mount an ext2 filesystem on $N1: $(tail -3 /tmp/mkfs.out)"
    fi
  fi
fi

# 2. vfio-pci: the controller in its own IOMMU group, /dev/vfio/GROUP for Sluice.
# (Busybox modprobe ignores softdeps: vfio_iommu_type1 first or VFIO_SET_IOMMU fails.)
if modprobe vfio_iommu_type1 && modprobe vfio-pci && bind "$BDF" vfio-pci; then
  pass "vfio-pci: $BDF bound"
  GROUP=$(iommu_group_of "$BDF")
  if [ -n "$GROUP" ] && wait_for "/dev/vfio/$GROUP" 5 && [ -c /dev/vfio/vfio ]; then
    pass "vfio-pci: /dev/vfio/vfio and /dev/vfio/$GROUP present"
    sluice_driver vfio
  else
    fail "vfio-pci: no /dev/vfio/${GROUP:-?} (iommu group '${GROUP}')"
  fi
else
  fail "vfio-pci: could not bind $BDF"
fi

# 3. uio_pci_generic: DMA to physical addresses of hugepage memory. `sluice setup` does the
# hugepages and the binding when this sluice has it (the vfio-pci binding above is by hand).
if [ $HAVE_SETUP -eq 1 ]; then
  run_step "sluice setup hugepages 64" sluice setup hugepages 64
  run_step "sluice setup bind $BDF -d uio_pci_generic" sluice setup bind "$BDF" -d uio_pci_generic
else
  echo 64 >/proc/sys/vm/nr_hugepages
  modprobe uio_pci_generic && bind "$BDF" uio_pci_generic
fi
HP=$(cat /proc/sys/vm/nr_hugepages)
if [ "$HP" -ge 32 ]; then pass "hugepages: $HP reserved"; else fail "hugepages: only $HP of 64 reserved"; fi
if [ "$(driver_of "$BDF")" = uio_pci_generic ] && wait_for /dev/uio0 5; then
  pass "uio_pci_generic: $BDF bound, /dev/uio0 present"
  sluice_driver uio
else
  fail "uio_pci_generic: $BDF not bound (driver '$(driver_of "$BDF")') or no /dev/uio0"
fi

# 4. Back to the kernel (`sluice setup reset` when there is one): what the last driver wrote is there.
if [ $HAVE_SETUP -eq 1 ]; then run_step "sluice setup reset $BDF" sluice setup reset "$BDF"; fi
if bind_kernel; then
  run_step "kernel again: $N2 holds seed $SEED" sluice perf -T "uring:$N2" -w verify --verify-only --seed $SEED -t $T
fi

echo "guest: $FAILS failure(s)"
[ $FAILS -eq 0 ]
