#!/usr/bin/env bash
# The QEMU guest lane for the userspace NVMe driver: boots a TCG guest (scripts/guest/) with
# QEMU's NVMe controller (two namespaces) behind an emulated intel-iommu and runs
# nvme_guest_inside.sh in it: the kernel driver with `sluice perf -T uring:` and fio, then
# vfio-pci and uio_pci_generic with Sluice's own driver (`sluice nvme`, `nvme:BDF`) when this
# sluice has it, data checked across every driver change. The guest's exit code and every
# JSON report it prints (sluice perf and fio; ios > 0, no errors) decide the result.
#
# Usage: nvme_guest_test.sh path/to/sluice [TEST[@GTEST_FILTER]...]
#   TEST  a gtest binary run in the guest under vfio-pci and under uio_pci_generic, with
#         SLUICE_NVME_BDF=BDF, SLUICE_TEST_BDEV=nvme:BDF and SLUICE_CONFORMANCE_SPEC=nvme:BDF in
#         its environment, and --gtest_filter=GTEST_FILTER when given; or a directory: every
#         executable *_test in it (looked up at run time, so binaries built later count)
# Environment: NVME_GUEST_TIMEOUT (s, default 300), NVME_GUEST_PERF_T (s per perf run, default 1),
#   NVME_GUEST_LOG (keep the console log there).
# Exit 0 pass, 1 fail, 77 skip: only when qemu is missing or the kernel package cannot be fetched.
set -uo pipefail

SLUICE=${1:?usage: $0 path/to/sluice [TEST...]}
shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GUEST=$ROOT/scripts/guest
. "$GUEST/scratch.sh"
TMP=$(scratch_dir sluice-guest-test)
trap 'rm -rf "$TMP"' EXIT
start=$SECONDS

if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "SKIP: qemu-system-x86_64 is not installed (scripts/deps.sh installs qemu-system-x86)"
  exit 77
fi
kdir=$("$GUEST/fetch-kernel.sh")
rc=$?
if [[ $rc -eq 77 ]]; then echo "SKIP: the guest kernel package could not be downloaded (see above)"; exit 77; fi
if [[ $rc -ne 0 ]]; then echo "FAIL: fetch-kernel.sh exit $rc"; exit 1; fi

bins=(--bin "$SLUICE" --bin "$(command -v fio)")
names=""  # NAME[@FILTER] as the guest runs them from /bin
for arg in "$@"; do
  t=${arg%%@*} filter=""
  [[ $arg == *@* ]] && filter=@${arg#*@}
  if [[ -d $t ]]; then
    for f in "$t"/*_test; do
      if [[ -f $f && -x $f ]]; then bins+=(--bin "$f"); names+="$(basename "$f")$filter "; fi
    done
  elif [[ -x $t ]]; then
    bins+=(--bin "$t"); names+="$(basename "$t")$filter "
  else
    echo "FAIL: test binary $t does not exist (build it first)"; exit 1
  fi
done
echo "guest lane: kernel $(basename "$kdir"), tests in the guest: ${names:-none}"

if ! "$GUEST/make-initramfs.sh" --kernel-dir "$kdir" --out "$TMP/initrd.cpio" \
    --script "$ROOT/tests/integration/nvme_guest_inside.sh" \
    --module nvme --module vfio-pci --module vfio_iommu_type1 --module uio_pci_generic --module ext4 "${bins[@]}" \
    --env "PERF_T=${NVME_GUEST_PERF_T:-1}" --env "NVME_TESTS=$names"; then
  echo "FAIL: make-initramfs.sh"; exit 1
fi

log=${NVME_GUEST_LOG:-$TMP/console.log}
# In the background so a signal to this script reaches the guest runner at once (bash delays
# traps until a foreground child ends); --pdeathsig covers a SIGKILL of this script.
setpriv --pdeathsig TERM "$GUEST/run-guest.sh" --kernel "$kdir/vmlinux" --initrd "$TMP/initrd.cpio" \
  --log "$log" --timeout "${NVME_GUEST_TIMEOUT:-300}" --ns 64M --ns 16M &
runner=$!
trap 'kill -TERM $runner 2>/dev/null; wait $runner; exit 143' TERM
trap 'kill -TERM $runner 2>/dev/null; wait $runner; exit 130' INT
wait $runner
guest_rc=$?
trap - TERM INT
if [[ $guest_rc -eq 77 ]]; then echo "SKIP: run-guest.sh found no qemu"; exit 77; fi

# Every report the guest printed must be a real run: I/Os done and none failed. The reports the
# lane always makes must be there (no silent pass when a step vanished). No kernel complaints.
want="kernel-uring-verify kernel-uring-randread-qd32 kernel-fio-io_uring kernel-fio-libaio"
if [[ $("$SLUICE" perf -T nvme:none -t 0.001 2>&1) != *"unknown device type 'nvme'"* ]]; then
  want+=" vfio-verify vfio-randread-qd32 vfio-randread-qd1-ns2 uio-verify uio-randread-qd32 uio-randread-qd1-ns2"
fi
if grep -qE '^ +nvme +' <<<"$("$SLUICE" --help 2>/dev/null)"; then want+=" vfio-nvme-perf uio-nvme-perf"; fi
# shellcheck disable=SC2086
python3 "$ROOT/tests/integration/guest_reports.py" "$log" $want
reports_rc=$?

echo "guest lane: guest exit $guest_rc, reports $([[ $reports_rc -eq 0 ]] && echo ok || echo FAILED), $((SECONDS - start)) s"
[[ $guest_rc -eq 0 && $reports_rc -eq 0 ]] || exit 1
echo "all passed"
